"""Big transfers, dropped uploads and racing writers against the real `artgw serve` process."""

import asyncio
import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from tests.artgw_process import ArtgwProcess

pytestmark = pytest.mark.serial

A = "/api/2.0/mlflow-artifacts/artifacts"
GIB = 1 << 30
BLOCK = 1 << 20


def pattern_blocks(total: int) -> Iterator[bytes]:
    """Deterministic, non-repeating-per-block content so misplaced blocks are caught."""
    for index in range(total // BLOCK):
        yield index.to_bytes(8, "big") * (BLOCK // 8)


class RssSampler:
    """Samples a process's RSS every few ms in a thread; `peak` in bytes."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def settle_rss(server: ArtgwProcess) -> int:
    """RSS after a warm-up of small requests (imports, buffers and threads already in place)."""
    for i in range(20):
        requests.put(f"{server.url}{A}/warm/{i}", data=os.urandom(256 << 10), timeout=30)
        requests.get(f"{server.url}{A}/warm/{i}", timeout=30)
    time.sleep(0.3)
    return psutil.Process(server.proc.pid).memory_info().rss  # type: ignore[union-attr]


@pytest.mark.slow
def test_one_gib_round_trip_keeps_memory_flat(artgw, tmp_path: Path) -> None:
    server = artgw("--artifacts-only", "--workers", "1")
    rest = settle_rss(server)
    expected = hashlib.sha256()
    with RssSampler(server.proc.pid) as upload_rss:

        def body() -> Iterator[bytes]:
            for block in pattern_blocks(GIB):
                expected.update(block)
                yield block

        response = requests.put(f"{server.url}{A}/big/model.bin", data=body(), timeout=600)
    assert response.status_code == 200
    stored = tmp_path / "mlartifacts/big/model.bin"
    assert stored.stat().st_size == GIB
    got = hashlib.sha256()
    url = f"{server.url}{A}/big/model.bin"
    with RssSampler(server.proc.pid) as download_rss, requests.get(url, stream=True) as resp:
        assert resp.headers["Content-Length"] == str(GIB)
        for chunk in resp.iter_content(BLOCK):
            got.update(chunk)
    assert got.hexdigest() == expected.hexdigest()
    growth_up = (upload_rss.peak - rest) / 2**20
    growth_down = (download_rss.peak - rest) / 2**20
    print(
        f"RSS at rest {rest / 2**20:.1f} MiB; peak growth upload {growth_up:.1f} MiB, "
        f"download {growth_down:.1f} MiB"
    )
    assert growth_up < 6, f"upload grew RSS by {growth_up:.1f} MiB"  # issue #5: <= 5 MB
    assert growth_down < 24, f"download grew RSS by {growth_down:.1f} MiB"


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def drop_mid_upload(port: int, target: str, declared: int, sent: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        head = f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n\r\n"
        sock.sendall(head.encode() + b"x" * sent)
        time.sleep(0.2)
    # closing the socket is the disconnect


def wait_until(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_dropped_upload_leaves_nothing(artgw, tmp_path: Path) -> None:
    server = artgw("--artifacts-only", "--workers", "1")
    root = tmp_path / "mlartifacts"
    requests.put(f"{server.url}{A}/run/keep.bin", data=b"old content", timeout=10)
    drop_mid_upload(server.port, f"{A}/run/new.bin", 50 << 20, 3 << 20)
    drop_mid_upload(server.port, f"{A}/run/keep.bin", 50 << 20, 3 << 20)
    assert wait_until(lambda: leftovers(root) == ["run/keep.bin"]), leftovers(root)
    assert (root / "run/keep.bin").read_bytes() == b"old content"


def test_shutdown_aborts_uploads_cleanly(artgw, tmp_path: Path) -> None:
    server = artgw("--artifacts-only", "--workers", "1")
    root = tmp_path / "mlartifacts"
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        head = f"PUT {A}/slow.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {100 << 20}\r\n\r\n"
        sock.sendall(head.encode() + b"x" * (4 << 20))
        assert wait_until(lambda: any(root.rglob(".artgw.upload.*")))
        assert server.stop() == 0
    assert leftovers(root) == []


async def test_concurrent_writers_leave_one_whole_file(gateway, destination: Path) -> None:
    size = 8 << 20
    contents = [bytes([n]) * size for n in range(1, 5)]

    async def upload(content: bytes) -> int:
        async def chunks():
            for offset in range(0, size, 256 << 10):
                yield content[offset : offset + (256 << 10)]
                await asyncio.sleep(0)

        return (await gateway.put(f"{A}/race/same.bin", data=chunks())).status

    statuses = await asyncio.gather(*(upload(c) for c in contents))
    assert statuses == [200] * len(contents)
    assert (destination / "race/same.bin").read_bytes() in contents
    assert leftovers(destination) == ["race/same.bin"]
