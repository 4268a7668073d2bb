"""Small PUTs on the local destination: a body declared up to 64 KiB is read whole (at once when it
has all arrived before the handler starts, else as it comes) and written by the small-writes
thread (many files per wake-up); a larger one is streamed. Either way the file appears whole or
not at all, and each upload gets its own answer.
"""

import asyncio
import base64
import hashlib
import json
import os
from pathlib import Path

from aiohttp.test_utils import TestClient

from backends.local import DIGEST_XATTR

A = "/api/2.0/mlflow-artifacts/artifacts"


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def raw_put(
    gateway: TestClient, target: str, body: bytes, *, split: int | None = None, extra: str = ""
) -> bytes:
    """One PUT over its own connection: all in one write, or the head and `split` bytes of the
    body first and the rest a moment later (so the handler starts before the body is all in)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    head = (
        f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}"
        "Connection: close\r\n\r\n"
    ).encode()
    try:
        if split is None:
            writer.write(head + body)
        else:
            writer.write(head + body[:split])
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(body[split:])
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_bodies_in_at_once_arriving_or_streamed_are_stored_alike(
    gateway: TestClient, destination: Path
) -> None:
    small, large = os.urandom(5000), os.urandom(70_000)
    cases = (
        ("whole.bin", small, None),
        ("arriving.bin", small, 1000),
        ("streamed.bin", large, 1000),
    )
    for name, body, split in cases:
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        answer = await raw_put(
            gateway, f"{A}/s/{name}", body, split=split, extra=f"Content-MD5: {md5}\r\n"
        )
        assert status_of(answer) == 200, answer
        assert answer.endswith(b"\r\n\r\n{}")
        assert (destination / "s" / name).read_bytes() == body
        assert os.getxattr(destination / "s" / name, DIGEST_XATTR) == f"md5=:{md5}:".encode()
    assert leftovers(destination) == ["s/arriving.bin", "s/streamed.bin", "s/whole.bin"]


async def test_a_wrong_digest_on_a_small_body_stores_nothing(
    gateway: TestClient, destination: Path
) -> None:
    assert (await gateway.put(f"{A}/d/keep.txt", data=b"old")).status == 200
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    for split in (None, 2):
        answer = await raw_put(
            gateway, f"{A}/d/keep.txt", b"new body", split=split, extra=f"Content-MD5: {wrong}\r\n"
        )
        assert status_of(answer) == 400, answer
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error_code"] == "BAD_DIGEST"
    assert (destination / "d" / "keep.txt").read_bytes() == b"old"
    assert leftovers(destination) == ["d/keep.txt"]


async def test_a_small_put_cut_midway_leaves_nothing(
    gateway: TestClient, destination: Path
) -> None:
    assert (await gateway.put(f"{A}/c/keep.txt", data=b"old")).status == 200
    for name in ("keep.txt", "new.txt"):
        _, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        head = f"PUT {A}/c/{name} HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n"
        writer.write(head.encode() + b"x" * 2000)
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()  # the rest never comes
        await writer.wait_closed()
    for _ in range(50):  # the handlers see the disconnect on this loop: give them turns
        await asyncio.sleep(0.02)
    assert leftovers(destination) == ["c/keep.txt"]
    assert (destination / "c" / "keep.txt").read_bytes() == b"old"
    assert (await gateway.put(f"{A}/c/new.txt", data=b"now whole")).status == 200
    assert (destination / "c" / "new.txt").read_bytes() == b"now whole"


async def test_concurrent_small_puts_to_one_path_leave_one_whole_content(
    gateway: TestClient, destination: Path
) -> None:
    contents = [bytes([n]) * 4096 for n in range(1, 41)]
    answers = await asyncio.gather(*(raw_put(gateway, f"{A}/r/same.bin", c) for c in contents))
    assert [status_of(a) for a in answers] == [200] * len(contents)
    assert (destination / "r" / "same.bin").read_bytes() in contents
    assert leftovers(destination) == ["r/same.bin"]


async def test_concurrent_small_puts_each_get_their_own_answer(
    gateway: TestClient, destination: Path
) -> None:
    """Good uploads and failing ones (onto a folder, below a file, a wrong digest) at once, so
    that they share the thread's batches: each answers as it does alone."""
    (destination / "m" / "folder").mkdir(parents=True)
    (destination / "m" / "file").write_bytes(b"a file")
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    cases = []
    for n in range(12):
        cases.append(("ok", f"{A}/m/ok-{n}.txt", f"body {n}".encode(), ""))
        cases.append(("folder", f"{A}/m/folder", b"onto a folder", ""))
        cases.append(("below", f"{A}/m/file/below-{n}", b"below a file", ""))
        cases.append(("digest", f"{A}/m/bad-{n}.txt", b"digest", f"Content-MD5: {wrong}\r\n"))
    alone = {}
    for kind, target, body, extra in cases[:4]:
        answer = await raw_put(gateway, target, body, extra=extra)
        alone[kind] = (status_of(answer), answer.partition(b"\r\n\r\n")[2])
    assert alone["ok"][0] == 200, alone
    assert all(400 <= alone[kind][0] < 500 for kind in ("folder", "below", "digest")), alone
    answers = await asyncio.gather(*(raw_put(gateway, t, b, extra=e) for _, t, b, e in cases))
    for (kind, target, _, _), answer in zip(cases, answers, strict=True):
        status, text = alone[kind]
        assert status_of(answer) == status, (target, answer)
        got = answer.partition(b"\r\n\r\n")[2]
        if status == 200:
            assert got == b"{}"
        else:
            assert json.loads(got)["error_code"] == json.loads(text)["error_code"], (target, got)
    for n in range(12):
        assert (destination / "m" / f"ok-{n}.txt").read_bytes() == f"body {n}".encode()
    assert leftovers(destination) == sorted(["m/file", *(f"m/ok-{n}.txt" for n in range(12))])


async def test_with_fsync_and_past_the_small_size_the_pool_writes_them(
    make_gateway, destination: Path
) -> None:
    """--fsync, and bodies over 64 KiB, stay off the small-writes thread: same files."""
    for fsync in (True, False):
        gateway = await make_gateway(fsync=fsync)
        bodies = {f"f{fsync}/{n}.bin": os.urandom(n) for n in (10, 4096, 70_000, 300_000)}
        answers = await asyncio.gather(
            *(raw_put(gateway, f"{A}/{k}", b) for k, b in bodies.items())
        )
        assert [status_of(a) for a in answers] == [200] * len(bodies)
        for name, body in bodies.items():
            assert (destination / name).read_bytes() == body
    assert len(leftovers(destination)) == 8
