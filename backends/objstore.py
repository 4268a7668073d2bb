"""What the S3, Azure Blob and GCS backends share, over an async fsspec filesystem.

- Writes stream the body into the store part by part (S3 multipart upload, Azure staged blocks,
  GCS resumable upload), several parts at once where the protocol allows: memory stays at a few
  parts, and the object appears only when the last part is committed. A failed or cancelled
  write aborts the upload, so nothing is left behind.
  A body that fits one part goes up in one request.
- Reads are one ranged GET per response, streamed in bounded chunks.
- Folders are key prefixes. A file cannot be written where a folder is, nor under a file, as on a
  local disk; zero-byte `name/` marker objects made by other tools count as (empty) folders and
  are never listed as files.
- Deletes of a prefix page through the listing and delete in batches, whatever its size.

A provider module fills in the store calls marked abstract below with its SDK client; the
backend holds an fsspec `Filesystem` beside it for what fsspec does well (info, listings).
Errors are translated by the provider's translator, registered on `translated.translators`.
Part uploads are each provider's own (`Backend`'s part methods, or `StagedParts` mixed in).
"""

import asyncio
import contextlib
import errno
import logging
import posixpath
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Any, ClassVar

import fsspec

from backends.base import Backend, Entry, OpenedFile, Stat
from backends.fsspec_store import Filesystem, configuring, to_entry, translated
from backends.paths import UPLOAD_PREFIX
from backends.streams import exact_blocks, flag_last

log = logging.getLogger("artgw")

PART_SIZE = 8 << 20
"""Upload part size: a multiple of 256 KiB (GCS) and above 5 MiB (S3)."""
PARTS_PER_STEP = 1000
"""Parts grow by PART_SIZE every this many parts: 10,000 S3 parts then hold 430 GiB."""
PARTS_IN_FLIGHT = 2
"""Parts uploaded at once where the protocol allows; each costs one more part of memory (about
12 MB with the SDK's copy). On SeaweedFS (benchmarks/RESULTS.md) 1, 2, 3, 4 parts gave 95, 121,
129, 127 MiB/s for 1 GiB at 56, 76, 88, 107 MB of growth: 2 takes most of the gain."""
READ_CHUNK = 1 << 20
ABORT_WAIT = 5.0
"""Seconds a failed upload waits for its abort before answering (`abort_soon`)."""
ABORT_ATTEMPT = 10.0
ABORT_RETRIES = (0, 1, 2, 4, 8, 15, 30, 60, 120, 300)
"""Pauses before each abort attempt: about nine minutes of tries for a store that is down."""
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
"""Default seconds to connect to the store and to wait for its next bytes; storage options win."""


def part_size(index: int) -> int:
    return PART_SIZE * (1 + index // PARTS_PER_STEP)


class PartUpload(ABC):
    """One upload in progress, as the provider does it; `part` is called in order.

    Up to `concurrency` parts are in flight at once: a provider whose parts carry their own
    number (S3 part numbers, Azure block ids) numbers each part when `part` is called, before its
    first await, and may take several; a sequential protocol (GCS resumable) keeps one.
    """

    concurrency: ClassVar[int] = 1

    @abstractmethod
    async def part(self, data: bytes, last: bool) -> None: ...

    @abstractmethod
    async def commit(self) -> None: ...

    @abstractmethod
    async def abort(self) -> None: ...


class ObjectStoreBackend(Backend):
    """A bucket (container) with an optional key prefix: `<scheme>://bucket/prefix`."""

    client: Any = None
    delete_batch: ClassVar[int] = 100
    abort_wait: float = ABORT_WAIT

    def __init__(self, url: str, protocol: str, root: str, storage_options: dict[str, Any]):
        self.url = url
        self.files = Filesystem(url, protocol, root.strip("/"))
        self.storage_options = storage_options
        self.bucket, _, self.prefix = self.files.root.partition("/")

    @property
    def fs(self) -> fsspec.AbstractFileSystem | None:
        """The provider's fsspec filesystem (None before `start` and after `close`)."""
        return self.files.fs

    def key(self, path: str) -> str:
        return posixpath.join(self.prefix, path) if self.prefix and path else self.prefix or path

    # -- provider hooks --------------------------------------------------------------------------

    def default_options(self) -> dict[str, Any]:
        """Options the provider's filesystem gets unless the user set them."""
        return {}

    async def make_filesystem(self, options: dict[str, Any]) -> None:
        self.files.create(options)

    async def connect(self) -> None:
        """Open the client after the filesystem was created."""

    @abstractmethod
    async def check_bucket(self) -> None:
        """Raise FileNotFoundError / PermissionError / TimeoutError unless the bucket is usable."""

    @abstractmethod
    async def disconnect(self) -> None:
        """Close every client and session of `self.fs`."""

    async def head(self, key: str) -> Stat | None:
        """A file's metadata in one request, where the SDK's call beats fsspec's `info`; None:
        not a file (or no such call), and `stat` asks fsspec."""
        return None

    @abstractmethod
    async def is_file(self, key: str) -> bool: ...

    @abstractmethod
    async def list_keys(self, prefix: str, limit: int) -> list[str]:
        """Up to `limit` keys that start with `prefix`, from the start of the listing."""

    @abstractmethod
    async def delete_keys(self, keys: list[str]) -> None:
        """Delete these keys (at most `delete_batch` of them); a missing key is not an error."""

    @abstractmethod
    async def put_small(self, key: str, data: bytes, digests: str | None = None) -> None:
        """One request; `digests` (an RFC 9530 field value) kept with the object."""

    @abstractmethod
    async def begin_upload(self, key: str, digests: str | None = None) -> PartUpload: ...

    @abstractmethod
    def read_stream(
        self, key: str, offset: int, length: int, stat: Stat
    ) -> AsyncGenerator[bytes, None]:
        """One ranged GET of `length` bytes from `offset`, in bounded chunks (at most 4 MiB)."""

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        options = {**self.default_options(), **self.storage_options}
        options |= {"asynchronous": True, "loop": asyncio.get_running_loop()}
        options |= {"skip_instance_cache": True, "use_listings_cache": False}
        with configuring(self.url), translated(self.url):
            await self.make_filesystem(options)
        try:
            with translated(self.url):
                await self.connect()
                await self.check_bucket()
        except BaseException:
            await self.close()
            raise

    async def probe(self) -> None:
        with translated(self.url):
            await self.check_bucket()

    async def close(self) -> None:
        if self.files.fs is not None:
            await self.disconnect()
            self.files.fs = None

    # -- operations ------------------------------------------------------------------------------

    async def stat(self, path: str) -> Stat:
        if not path:
            return Stat(0, is_dir=True)
        with translated(path):
            found = await self.head(self.key(path))
        if found is not None:
            return found
        try:
            return await self.files.stat(path)
        except FileNotFoundError:
            with translated(path):
                below_a_file = await self.file_above(path)
            if below_a_file:
                message = "A parent of this path is a file"
                raise NotADirectoryError(errno.ENOTDIR, message, path) from None
            raise

    async def list_dir(self, path: str) -> list[Entry]:
        full = self.files.full(path)
        with translated(path):
            try:
                infos = await self.files.call("ls", full, detail=True)
            except FileNotFoundError:
                if path:
                    raise
                infos = []
        children = {}
        for info in infos:
            name = info["name"].rstrip("/")
            base = name.rpartition("/")[2]
            if name != full.rstrip("/") and not base.startswith(UPLOAD_PREFIX):
                children[base] = to_entry(base, info)
        if not children and path and not (await self.stat(path)).is_dir:
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", path)
        return [children[name] for name in sorted(children)]

    async def open(self, path: str) -> OpenedFile:
        info = await self.stat(path)
        if info.is_dir:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        return StreamedFile(self, path, info)

    async def write(
        self, path: str, body: AsyncIterable[bytes], digests: str | None = None
    ) -> None:
        key = self.key(path)
        with translated(path):
            await self.check_target(path)
            blocks = flag_last(exact_blocks(body, part_size))
            first, last = await anext(blocks)
            if last:
                await self.put_small(key, first, digests)
                return
            upload = await self.begin_upload(key, digests)
            sending = asyncio.ensure_future(upload.part(first, False))
            del first  # the part's task holds it while it is sent, and no longer
            await _send_parts(upload, sending, blocks, self.abort_wait)

    async def check_target(self, path: str) -> None:
        """Refuse a file where a folder is, or below a file: one request per level, at once."""
        is_folder, below_a_file = await asyncio.gather(
            self.has_children(self.key(path)), self.file_above(path)
        )
        if is_folder:
            raise IsADirectoryError(errno.EISDIR, "A directory exists at this path", path)
        if below_a_file:
            raise NotADirectoryError(errno.ENOTDIR, "A parent of this path is a file", path)

    async def file_above(self, path: str) -> bool:
        parents = [self.key(path[:i]) for i, c in enumerate(path) if c == "/"]
        return any(await asyncio.gather(*(self.is_file(key) for key in parents)))

    async def has_children(self, key: str) -> bool:
        return bool(await self.list_keys(key + "/", 1))

    async def delete(self, path: str) -> None:
        if not path:
            raise PermissionError(errno.EACCES, "The destination root is never deleted", path)
        with translated(path):
            await self.delete_tree(self.key(path))

    async def delete_tree(self, key: str) -> None:
        """The object `key` and everything under `key/`: list a page, delete it, until none left.

        Listing again from the start (rather than paging on) is right whatever the store's
        page tokens mean once their keys are gone.
        """
        await self.delete_keys([key])
        previous: list[str] = []
        while keys := await self.list_keys(key + "/", self.delete_batch):
            if keys == previous:
                raise OSError(errno.EIO, "The store still lists objects it deleted", "")
            await self.delete_keys(keys)
            previous = keys


async def _send_parts(
    upload: PartUpload,
    first: asyncio.Future[None],
    rest: AsyncIterator[tuple[bytes, bool]],
    abort_wait: float,
) -> None:
    """Upload parts while the next ones are received, at most `upload.concurrency` at a time;
    abort on any failure or cancellation. `first` is the first part, already being sent."""
    inflight = {first}
    try:
        async for block, last in rest:
            await _settle(inflight, upload.concurrency - 1)
            inflight.add(asyncio.ensure_future(upload.part(block, last)))
            del block  # held by its task until sent; not while the next block is gathered
        await _settle(inflight, 0)
        await upload.commit()
    except BaseException:
        for task in inflight:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*inflight, return_exceptions=True)
        await abort_soon(upload, abort_wait)
        raise


async def _settle(inflight: set[asyncio.Future[None]], keep: int) -> None:
    """Wait until at most `keep` parts are in flight; a failed part raises here."""
    while len(inflight) > keep:
        done, _ = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
        inflight -= done
        for task in done:
            task.result()


async def abort_soon(upload: PartUpload, wait: float) -> None:
    """Abort a failed upload: waited for up to `wait` seconds, then carried on in the background
    (retried with back-off while the store is unreachable), so that a stalled store cannot hold
    the failed request, and its parts are still dropped once the store is back."""
    task = asyncio.ensure_future(_abort_until_done(upload))
    _aborting.add(task)
    task.add_done_callback(_aborting.discard)
    with contextlib.suppress(BaseException):
        await asyncio.wait({task}, timeout=wait)


_aborting: set[asyncio.Future[None]] = set()
"""Aborts still running in the background (held here: the loop keeps only weak references)."""


async def _abort_until_done(upload: PartUpload) -> None:
    for pause in ABORT_RETRIES:
        await asyncio.sleep(pause)
        try:
            async with asyncio.timeout(ABORT_ATTEMPT):
                await upload.abort()
            return
        except Exception as exc:  # the store is down or stalled: try again later
            log.debug("aborting an upload failed (%s); retrying", type(exc).__name__)
    log.warning("gave up aborting an upload after %d tries", len(ABORT_RETRIES))


class StreamedFile(OpenedFile):
    """A stored object read with one ranged GET per `chunks()` call."""

    def __init__(self, backend: ObjectStoreBackend, path: str, info: Stat) -> None:
        self.backend = backend
        self.path = path
        self.stat = info

    async def chunks(self, offset: int, length: int) -> AsyncIterator[bytes]:
        if length <= 0:
            return
        received = 0
        key = self.backend.key(self.path)
        stream = self.backend.read_stream(key, offset, length, self.stat)
        with translated(self.path):
            async with contextlib.aclosing(stream):
                async for chunk in stream:
                    received += len(chunk)
                    yield chunk
        if received != length:
            raise OSError(errno.EIO, "The store sent fewer bytes than asked for", self.path)
