"""`GET .../artifacts/<dir>?archive=zip|tar|tar.gz`: a whole folder as one archive, streamed.

The folder is walked one listing at a time and its files are read from the store one by one, each
written into the archive as its bytes arrive; nothing is staged, so memory stays at a chunk or two
whatever the folder holds (zip's central directory, a few dozen bytes per member, is the one thing
that grows with the member count). Members are named `<folder name>/<path inside>`, exactly as
stored. Symbolic links, devices and FIFOs (`Entry.plain` false) are left out, so nothing outside
the folder ever gets in; a file that disappears meanwhile is skipped.

The response is chunked and has no length: once the first bytes are out, a failure (the store
errs, a file changes size under a tar header) closes the connection without the final chunk, so
no client can take a cut archive for a complete one. Writing the archive's bytes (CRC-32, gzip)
runs in a worker thread for every big chunk, so the event loop only moves bytes.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator

from aiohttp import web

from backends import Backend, Entry
from backends.paths import join
from gateway.archive_formats import FORMATS, ArchiveWriter
from gateway.errors import InvalidParameter, NotFound
from gateway.mime import content_disposition

THREAD_MIN = 64 << 10
"""Chunks at least this big are archived in a worker thread; smaller ones on the loop."""
SEND_MIN = 256 << 10
"""Small pieces (headers, small files) are gathered to this size before one socket write."""
log = logging.getLogger("artgw")


def archive_kind(value: str) -> type[ArchiveWriter]:
    try:
        return FORMATS[value]
    except KeyError:
        raise InvalidParameter(f"archive must be one of zip, tar, tar.gz, not '{value}'") from None


async def archive_response(
    request: web.Request, backend: Backend, path: str, kind: str
) -> web.StreamResponse:
    """Stream the folder `path` (confined; '' is the root) as an archive of `kind`."""
    writer_class = archive_kind(kind)
    await _require_folder(backend, path)
    top = path.rpartition("/")[2] or "artifacts"
    response = web.StreamResponse(
        headers={
            "Content-Type": writer_class.content_type,
            "Content-Disposition": content_disposition(top + writer_class.suffix),
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    try:
        async with contextlib.aclosing(_produce(backend, path, top, writer_class())) as pieces:
            await _send(response, pieces)
    except ConnectionError:
        raise
    except Exception as exc:
        if request.transport is not None:
            request.transport.close()
        log.warning("Archive of %r cut: %s", path, exc)
        raise ConnectionResetError(f"Archive of {path!r} failed midway: {exc}") from exc
    await response.write_eof()
    return response


async def _require_folder(backend: Backend, path: str) -> None:
    try:
        info = await backend.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"No such folder: '{path}'") from None
    if not info.is_dir:
        raise InvalidParameter(f"Only a folder can be downloaded as an archive: '{path}'")


async def _send(response: web.StreamResponse, pieces: AsyncIterator[bytes]) -> None:
    held: list[bytes] = []
    size = 0
    async for piece in pieces:
        if len(piece) >= SEND_MIN and not held:
            await response.write(piece)
            continue
        held.append(piece)
        size += len(piece)
        if size >= SEND_MIN:
            await response.write(b"".join(held))
            held, size = [], 0
    if held:
        await response.write(b"".join(held))


async def walk(backend: Backend, root: str) -> AsyncIterator[tuple[str, Entry]]:
    """(path inside `root`, entry) of every plain file and folder below `root`, depth first,
    in name order; folders come before what they hold."""
    pending = [""]
    while pending:
        folder = pending.pop()
        try:
            entries = await backend.list_dir(join(root, folder))
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed meanwhile
        folders = []
        for entry in entries:
            if not entry.plain:
                continue
            inside = join(folder, entry.name)
            if entry.is_dir:
                folders.append(inside)
            yield inside, entry
        pending.extend(reversed(folders))


async def _produce(
    backend: Backend, root: str, top: str, writer: ArchiveWriter
) -> AsyncGenerator[bytes, None]:
    try:
        async with contextlib.aclosing(_members(backend, root, top, writer)) as pieces:
            async for piece in pieces:
                yield piece
        yield await asyncio.to_thread(writer.finish)
    except BaseException:
        writer.abandon()
        raise


async def _members(
    backend: Backend, root: str, top: str, writer: ArchiveWriter
) -> AsyncGenerator[bytes, None]:
    now = time.time()
    yield writer.directory(top, now)
    async for inside, entry in walk(backend, root):
        name = f"{top}/{inside}"
        if not _encodable(name):
            log.warning("Archive of %r leaves out %r: not valid UTF-8", root, inside)
            continue
        mtime = entry.mtime if entry.mtime is not None else now
        if entry.is_dir:
            yield writer.directory(name, mtime)
            continue
        member = _member(backend, join(root, inside), name, mtime, writer)
        async with contextlib.aclosing(member):
            async for piece in member:
                yield piece


async def _member(
    backend: Backend, path: str, name: str, mtime: float, writer: ArchiveWriter
) -> AsyncGenerator[bytes, None]:
    try:
        opened = await backend.open(path)
    except (FileNotFoundError, IsADirectoryError):
        return  # removed (or replaced by a folder) since the listing
    try:
        size = opened.stat.size
        yield writer.file_header(name, size, mtime)
        received = 0
        async for chunk in opened.chunks(0, size):
            received += len(chunk)
            if len(chunk) >= THREAD_MIN:
                yield await asyncio.to_thread(writer.data, chunk)
            else:
                yield writer.data(chunk)
        if received != size:
            raise OSError(f"{path!r} changed size while it was archived ({received} of {size})")
        yield writer.file_end()
    finally:
        await opened.close()


def _encodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
