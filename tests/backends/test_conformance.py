"""One conformance suite for every backend: the behaviour the gateway relies on."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from backends import Backend
from backends.objstore import ObjectStoreBackend


async def stream(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
        await asyncio.sleep(0)


async def read_all(store: Backend, path: str, offset: int = 0, length: int | None = None) -> bytes:
    opened = await store.open(path)
    try:
        size = opened.stat.size
        length = size - offset if length is None else length
        return b"".join([chunk async for chunk in opened.chunks(offset, length)])
    finally:
        await opened.close()


async def test_write_then_stat_and_read(backend: Backend) -> None:
    await backend.write("a/b/c.txt", stream(b"hello ", b"world"))
    info = await backend.stat("a/b/c.txt")
    assert (info.size, info.is_dir) == (11, False)
    assert await read_all(backend, "a/b/c.txt") == b"hello world"


async def test_ranged_reads(backend: Backend) -> None:
    data = bytes(range(256)) * 64
    await backend.write("r.bin", stream(data))
    assert await read_all(backend, "r.bin", 0, 10) == data[:10]
    assert await read_all(backend, "r.bin", 1000, 3000) == data[1000:4000]
    assert await read_all(backend, "r.bin", len(data) - 1, 1) == data[-1:]


async def test_empty_file(backend: Backend) -> None:
    await backend.write("empty", stream())
    assert (await backend.stat("empty")).size == 0
    assert await read_all(backend, "empty") == b""


async def test_overwrite_replaces_content(backend: Backend) -> None:
    await backend.write("o.txt", stream(b"first version, longer"))
    await backend.write("o.txt", stream(b"second"))
    assert await read_all(backend, "o.txt") == b"second"


async def test_large_streamed_write(backend: Backend) -> None:
    block = b"0123456789abcdef" * (1 << 16)  # 1 MiB
    await backend.write("big.bin", stream(*[block] * 12))
    assert (await backend.stat("big.bin")).size == 12 * len(block)
    assert await read_all(backend, "big.bin", 11 * len(block) + 5, 11) == block[5:16]


async def test_many_small_chunks_stored_in_order(backend: Backend) -> None:
    """More chunks than one vectored write may carry, of uneven sizes, some empty."""
    chunks = [bytes([i % 251]) * (i % 997) for i in range(3000)]
    await backend.write("many.bin", stream(*chunks))
    assert await read_all(backend, "many.bin") == b"".join(chunks)


async def test_failed_write_leaves_nothing(backend: Backend) -> None:
    await backend.write("keep.txt", stream(b"original"))

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (3 << 20)
        yield b"y" * (3 << 20)
        raise ConnectionResetError("client went away")

    for path in ("keep.txt", "new.txt"):
        with pytest.raises(ConnectionResetError):
            await backend.write(path, broken())
    assert await read_all(backend, "keep.txt") == b"original"
    assert [e.name for e in await backend.list_dir("")] == ["keep.txt"]


async def test_list_one_level_sorted(backend: Backend) -> None:
    for path in ("d/z.txt", "d/a.txt", "d/sub/x.txt", "d/sub/deeper/y.txt"):
        await backend.write(path, stream(path.encode()))
    entries = await backend.list_dir("d")
    assert [(e.name, e.is_dir) for e in entries] == [
        ("a.txt", False),
        ("sub", True),
        ("z.txt", False),
    ]
    assert entries[0].size == len(b"d/a.txt")
    assert [e.name for e in await backend.list_dir("")] == ["d"]


async def test_list_errors(backend: Backend) -> None:
    await backend.write("f.txt", stream(b"x"))
    with pytest.raises(FileNotFoundError):
        await backend.list_dir("missing")
    with pytest.raises(NotADirectoryError):
        await backend.list_dir("f.txt")


async def test_error_mapping(backend: Backend) -> None:
    await backend.write("d/f.txt", stream(b"x"))
    with pytest.raises(FileNotFoundError) as missing:
        await backend.stat("nope.txt")
    assert missing.value.filename == "nope.txt"
    with pytest.raises(FileNotFoundError):
        await backend.open("nope.txt")
    with pytest.raises(IsADirectoryError):
        await backend.open("d")
    with pytest.raises(IsADirectoryError):
        await backend.write("d", stream(b"x"))


async def test_delete_file_tree_and_missing(backend: Backend) -> None:
    for path in ("t/a.txt", "t/s/b.txt", "t/s/c/d.txt", "other.txt"):
        await backend.write(path, stream(b"x"))
    await backend.delete("t/a.txt")
    assert [e.name for e in await backend.list_dir("t")] == ["s"]
    await backend.delete("t")
    with pytest.raises(FileNotFoundError):
        await backend.stat("t/s/b.txt")
    await backend.delete("t")  # missing: fine
    assert [e.name for e in await backend.list_dir("")] == ["other.txt"]


async def test_root_is_never_deleted(backend: Backend) -> None:
    await backend.write("x.txt", stream(b"x"))
    with pytest.raises(PermissionError):
        await backend.delete("")
    assert (await backend.stat("x.txt")).size == 1


async def test_stat_directory(backend: Backend) -> None:
    await backend.write("dir/f.txt", stream(b"x"))
    assert (await backend.stat("dir")).is_dir


async def test_failed_multipart_write_leaves_nothing(backend: Backend) -> None:
    """A body that dies after several parts (8 MiB each on object stores): no trace of it."""
    await backend.write("keep.bin", stream(b"original"))

    async def broken() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"z" * (1 << 20)
        raise ConnectionResetError("client went away")

    for path in ("keep.bin", "new.bin"):
        with pytest.raises(ConnectionResetError):
            await backend.write(path, broken())
    assert await read_all(backend, "keep.bin") == b"original"
    assert [e.name for e in await backend.list_dir("")] == ["keep.bin"]


async def test_cancelled_write_leaves_nothing(backend: Backend) -> None:
    started = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"c" * (1 << 20)
            started.set()
            await asyncio.sleep(0.001)

    task = asyncio.create_task(backend.write("cancelled.bin", endless()))
    await started.wait()
    await asyncio.sleep(0.3)  # some parts are in the store by now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(FileNotFoundError):
        await backend.stat("cancelled.bin")
    assert await backend.list_dir("") == []


async def test_parts_sent_together_are_stored_in_order(backend: Backend) -> None:
    """Several 8 MiB parts go up at once on S3 and Azure; the object keeps the body's order."""
    mebibytes = [bytes([i]) * (1 << 20) for i in range(37)]
    await backend.write("ordered.bin", stream(*mebibytes))
    stored = await read_all(backend, "ordered.bin")
    assert [stored[i << 20] for i in range(37)] == list(range(37))
    assert stored == b"".join(mebibytes)


async def test_exact_multiple_of_part_size(backend: Backend) -> None:
    block = bytes(range(256)) * 4096  # 1 MiB
    await backend.write("16mib.bin", stream(*[block] * 16))
    assert (await backend.stat("16mib.bin")).size == 16 << 20
    assert await read_all(backend, "16mib.bin", (8 << 20) - 3, 6) == block[-3:] + block[:3]


async def test_write_refuses_a_file_as_parent(backend: Backend) -> None:
    await backend.write("f.txt", stream(b"x"))
    with pytest.raises((NotADirectoryError, FileExistsError)):
        await backend.write("f.txt/child.txt", stream(b"y"))


async def test_delete_more_than_a_thousand_files(backend: Backend) -> None:
    names = [f"many/{i % 3}/{i:05d}.txt" for i in range(1050)]
    semaphore = asyncio.Semaphore(64)

    async def put(name: str) -> None:
        async with semaphore:
            if isinstance(backend, ObjectStoreBackend):  # seed fast: one request per object
                await backend.put_small(backend.key(name), b"x")
            else:
                await backend.write(name, stream(b"x"))

    await asyncio.gather(*(put(name) for name in names))
    await backend.write("many.txt", stream(b"sibling with the same stem"))
    await backend.delete("many")
    with pytest.raises(FileNotFoundError):
        await backend.stat("many")
    assert [e.name for e in await backend.list_dir("")] == ["many.txt"]


async def test_list_root_of_empty_destination(backend: Backend) -> None:
    assert await backend.list_dir("") == []
    assert (await backend.stat("")).is_dir
