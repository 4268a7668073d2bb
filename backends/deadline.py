"""A time limit on every call into a remote store (`--store-timeout`): a store that stalls, or
trickles, fails the call with TimeoutError instead of holding the request forever.

The limit is per store call: `stat`, `list_dir`, `open`, `delete`, the multipart calls, and each
piece of a download. An upload's time waiting for its own client does not count: the limit runs
only while the upload waits on the store (between two pieces of the request body), so a slow
client is never cut off for the store's sake, but a store that stops taking parts is.

Only object stores get it: their calls are plain awaits that a cancellation ends cleanly, where a
local file operation runs in a thread that cannot be interrupted.
"""

import asyncio
import dataclasses
import errno
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from backends.base import (
    Backend,
    Capabilities,
    Completion,
    Entry,
    MultipartUpload,
    OpenedFile,
    Part,
    PresignedDownload,
    Stat,
)
from backends.objstore import ObjectStoreBackend

T = TypeVar("T")
START_TIMEOUT = 30.0


def with_deadline(backend: Backend, seconds: float) -> Backend:
    """`backend` with every store call limited to `seconds` (0: unlimited); object stores only."""
    if seconds <= 0 or not isinstance(backend, ObjectStoreBackend):
        return backend
    return DeadlineBackend(backend, seconds)


class DeadlineBackend(Backend):
    def __init__(self, inner: Backend, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds
        self.url = inner.url
        self.capabilities = inner.capabilities  # type: ignore[misc]
        if isinstance(inner, ObjectStoreBackend):  # a failed upload answers within the limit too
            inner.abort_wait = min(inner.abort_wait, seconds / 2)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def limited(self, awaitable: Awaitable[T], path: str) -> T:
        try:
            async with asyncio.timeout(self.seconds):
                return await awaitable
        except TimeoutError as exc:
            raise self.timed_out(path) from exc

    def timed_out(self, path: str) -> TimeoutError:
        message = f"The store did not answer within {self.seconds:g} s"
        return TimeoutError(errno.ETIMEDOUT, message, path)

    async def start(self) -> None:
        """Starting makes the SDK's client too (files read, models loaded): a longer limit."""
        try:
            async with asyncio.timeout(max(self.seconds, START_TIMEOUT)):
                await self.inner.start()
        except TimeoutError as exc:
            if exc.errno:
                raise
            raise TimeoutError(errno.ETIMEDOUT, "The store did not answer at start", "") from exc

    async def close(self) -> None:
        await self.inner.close()

    async def probe(self) -> None:
        await self.limited(self.inner.probe(), "")

    async def stat(self, path: str) -> Stat:
        return await self.limited(self.inner.stat(path), path)

    async def list_dir(self, path: str) -> list[Entry]:
        return await self.limited(self.inner.list_dir(path), path)

    async def open(self, path: str) -> OpenedFile:
        opened = await self.limited(self.inner.open(path), path)
        return DeadlineFile(opened, self, path)

    async def delete(self, path: str) -> None:
        await self.limited(self.inner.delete(path), path)

    async def write(
        self, path: str, body: AsyncIterable[bytes], digests: str | None = None
    ) -> None:
        await self.paced(path, lambda paced: self.inner.write(path, paced, digests), body)

    async def paced(
        self,
        path: str,
        send: Callable[[AsyncIterable[bytes]], Awaitable[T]],
        body: AsyncIterable[bytes],
    ) -> T:
        """`send(body)` under the limit, which is off while the client's next piece is awaited."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.seconds) as deadline:  # checks before the body, too
                return await send(_paced(body, deadline, self.seconds, loop))
        except TimeoutError as exc:
            if exc.errno:  # the store's own, already explained
                raise
            raise self.timed_out(path) from exc

    async def create_multipart(self, path: str, num_parts: int, ttl: int) -> MultipartUpload:
        return await self.limited(self.inner.create_multipart(path, num_parts, ttl), path)

    async def complete_multipart(
        self, path: str, upload_id: str | None, parts: list[tuple[int, str]]
    ) -> None:
        await self.limited(self.inner.complete_multipart(path, upload_id, parts), path)

    async def abort_multipart(self, path: str, upload_id: str | None) -> None:
        await self.limited(self.inner.abort_multipart(path, upload_id), path)

    async def presign_download(self, path: str, ttl: int) -> PresignedDownload:
        return await self.limited(self.inner.presign_download(path, ttl), path)

    async def begin_parts(self, path: str, digests: str | None = None) -> str:
        return await self.limited(self.inner.begin_parts(path, digests), path)

    async def write_part(self, path: str, part: Part, body: AsyncIterable[bytes]) -> str:
        return await self.paced(path, lambda paced: self.inner.write_part(path, part, paced), body)

    async def finish_parts(self, path: str, upload: Completion) -> None:
        """Under the limit; with a check, which reads the whole file from the store, the limit
        is set again after each piece read (a big file takes as long as it must)."""
        check = upload.check
        if check is None:
            await self.limited(self.inner.finish_parts(path, upload), path)
            return
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.seconds) as deadline:

                def rearmed(stream: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
                    return _rearmed(check(stream), deadline, self.seconds, loop)

                await self.inner.finish_parts(path, dataclasses.replace(upload, check=rearmed))
        except TimeoutError as exc:
            if exc.errno:
                raise
            raise self.timed_out(path) from exc

    async def discard_parts(self, path: str, upload_id: str) -> None:
        await self.limited(self.inner.discard_parts(path, upload_id), path)

    async def sweep_parts(self, started_before: float) -> int:
        return await self.inner.sweep_parts(started_before)  # a background sweep of many calls

    def capabilities_at(self, path: str) -> Capabilities:
        return self.inner.capabilities_at(path)

    def all_capabilities(self) -> list[Capabilities]:
        return self.inner.all_capabilities()

    def is_root(self, path: str) -> bool:
        return self.inner.is_root(path)


async def _paced(
    body: AsyncIterable[bytes],
    deadline: asyncio.Timeout,
    seconds: float,
    loop: asyncio.AbstractEventLoop,
) -> AsyncIterator[bytes]:
    """The body, with the deadline off while its next piece is awaited from the client and set
    `seconds` ahead whenever the upload goes back to work (on the store)."""
    pieces = aiter(body)
    while True:
        deadline.reschedule(None)
        try:
            piece = await anext(pieces)
        except StopAsyncIteration:
            deadline.reschedule(loop.time() + seconds)
            return
        deadline.reschedule(loop.time() + seconds)
        yield piece


async def _rearmed(
    stream: AsyncIterable[bytes],
    deadline: asyncio.Timeout,
    seconds: float,
    loop: asyncio.AbstractEventLoop,
) -> AsyncIterator[bytes]:
    """The stream, with the deadline set `seconds` ahead after each of its pieces."""
    async for piece in stream:
        deadline.reschedule(loop.time() + seconds)
        yield piece


class DeadlineFile(OpenedFile):
    """Each piece of a download must come within the limit."""

    def __init__(self, inner: OpenedFile, backend: DeadlineBackend, path: str) -> None:
        self.inner = inner
        self.stat = inner.stat
        self.fileobj = inner.fileobj
        self.backend = backend
        self.path = path

    async def chunks(self, offset: int, length: int) -> AsyncIterator[bytes]:
        stream = self.inner.chunks(offset, length)
        try:
            while True:
                try:
                    chunk = await self.backend.limited(anext(stream), self.path)
                except StopAsyncIteration:
                    return
                yield chunk
        finally:
            close = getattr(stream, "aclose", None)  # an async generator: end it now
            if close is not None:
                await close()

    async def close(self) -> None:
        await self.inner.close()
