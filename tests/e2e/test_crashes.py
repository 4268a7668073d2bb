"""kill -9 during 20 concurrent uploads, of one worker and of the whole server: nothing partial is
ever visible, the temp files the dead left are swept at start, every upload that was answered 200
is intact, and the supervisor restarts a dead worker (and says so)."""

import asyncio
import hashlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import psutil
import pytest

from backends.paths import UPLOAD_PREFIX
from tests.artgw_process import ArtgwProcess

pytestmark = pytest.mark.serial

A = "/api/2.0/mlflow-artifacts/artifacts"
UPLOADS = 20
SIZE = 4 << 20
PIECE = 128 << 10


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(f"{UPLOAD_PREFIX}*") if p.is_file()]


async def slow_body(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), PIECE):
        yield data[start : start + PIECE]
        await asyncio.sleep(0.05)  # about 1.6 s per upload: all are in flight at the kill


async def put(session: aiohttp.ClientSession, url: str, data: bytes) -> int:
    try:
        async with session.put(url, data=slow_body(data)) as response:
            return response.status
    except (aiohttp.ClientError, OSError):
        return 0  # the server died under it


class Load:
    """Uploads answered before the kill, and uploads in flight at it."""

    def __init__(self, base: str, root: Path) -> None:
        self.base = base
        self.root = root
        self.payloads = {f"done/{i}.bin": os.urandom(256 << 10) for i in range(5)}
        self.payloads |= {f"inflight/{i}.bin": os.urandom(SIZE) for i in range(UPLOADS)}
        self.answered: dict[str, int] = {}

    async def run(self, kill) -> None:
        async with aiohttp.ClientSession() as session:
            for name in [n for n in self.payloads if n.startswith("done/")]:
                self.answered[name] = await put(
                    session, f"{self.base}{A}/{name}", self.payloads[name]
                )
            names = [n for n in self.payloads if n.startswith("inflight/")]
            tasks = [
                asyncio.ensure_future(put(session, f"{self.base}{A}/{n}", self.payloads[n]))
                for n in names
            ]
            started = time.monotonic()  # kill once uploads are being written to disk
            while len(temp_files(self.root)) < UPLOADS // 2 and time.monotonic() - started < 10:
                await asyncio.sleep(0.02)
            kill()
            for name, status in zip(names, await asyncio.gather(*tasks), strict=True):
                self.answered[name] = status

    def check_destination(self, root: Path) -> None:
        """Every 200 is stored whole; nothing else visible is partial."""
        visible = {
            str(p.relative_to(root)): p
            for p in root.rglob("*")
            if p.is_file()
            and not any(part.startswith(UPLOAD_PREFIX) for part in p.relative_to(root).parts)
        }
        for name, status in self.answered.items():
            if status == 200:
                assert name in visible, f"{name} was answered 200 but is not stored"
        for name, path in visible.items():
            want = hashlib.sha256(self.payloads[name]).hexdigest()
            assert hashlib.sha256(path.read_bytes()).hexdigest() == want, f"{name} is partial"


async def fetch(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.read()


def workers(server: ArtgwProcess) -> list[psutil.Process]:
    assert server.proc is not None
    return psutil.Process(server.proc.pid).children()


def wait_for(condition, seconds: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"not {what} within {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - started


async def test_kill_9_of_a_worker(artgw, tmp_path: Path) -> None:
    root = tmp_path / "art"
    server = artgw("--artifacts-only", "--workers", "2", "--artifacts-destination", str(root))
    wait_for(lambda: len(workers(server)) == 2, 10, "two workers")
    victim = workers(server)[0]
    load = Load(server.url, root)
    await load.run(lambda: os.kill(victim.pid, signal.SIGKILL))

    restarted = wait_for(
        lambda: len(workers(server)) == 2 and victim.pid not in {w.pid for w in workers(server)},
        15,
        "a new worker",
    )
    assert f"worker {victim.pid} was killed by SIGKILL" in server.log()
    said = "abandoned upload file(s)"  # the new worker's sweep removed them
    swept = wait_for(lambda: not temp_files(root) and said in server.log(), 10, "swept")
    load.check_destination(root)
    statuses = list(load.answered.values())
    assert statuses.count(200) >= 5  # the earlier ones, at least
    print(f"worker restarted after {restarted:.1f} s, temp files swept {swept:.1f} s later, "
          f"{statuses.count(200)} of {len(statuses)} uploads answered 200")  # fmt: skip
    assert await fetch(f"{server.url}{A}/done/0.bin") == load.payloads["done/0.bin"]


async def test_kill_9_of_the_whole_server(artgw, tmp_path: Path) -> None:
    root = tmp_path / "art"
    args = ("--artifacts-only", "--workers", "2", "--artifacts-destination", str(root))
    server = artgw(*args)
    wait_for(lambda: len(workers(server)) == 2, 10, "two workers")
    everyone = [psutil.Process(server.proc.pid), *workers(server)]  # type: ignore[union-attr]

    def kill_all() -> None:
        for process in everyone:
            os.kill(process.pid, signal.SIGKILL)

    load = Load(server.url, root)
    await load.run(kill_all)
    psutil.wait_procs(everyone, timeout=10)
    left = temp_files(root)
    assert left, "the kill should have left temp files of the uploads in flight"

    again = artgw(*args)
    said = f"removed {len(left)} abandoned upload file(s)"
    swept = wait_for(lambda: not temp_files(root) and said in again.log(), 10, "swept")
    load.check_destination(root)
    print(f"{len(left)} temp files swept {swept:.1f} s after the restart was ready")
    assert await fetch(f"{again.url}{A}/done/1.bin") == load.payloads["done/1.bin"]
