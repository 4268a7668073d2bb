"""A destination on any fsspec filesystem, sync (memory://) or async (s3://, gs://, az://, ...).

`Filesystem` is the fsspec part every fsspec-based backend holds: the object stores (objstore.py)
hold one too, for what fsspec does well there (info, listings), beside their SDK clients.
"""

import asyncio
import base64
import contextlib
import errno
import posixpath
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Any, ClassVar

import aiohttp
import fsspec

from backends.base import Capabilities, Entry, OpenedFile, Stat
from backends.parts import StagedParts
from backends.paths import UPLOAD_PREFIX
from backends.registry import DestinationError
from backends.streams import coalesce

READ_CHUNK = 8 << 20
WRITE_BLOCK = 8 << 20


class Filesystem:
    """An fsspec filesystem rooted at `root` (the URL without its scheme), and the one way to
    call it from the event loop: the component the generic and the object-store backends share."""

    def __init__(self, url: str, protocol: str, root: str) -> None:
        self.url = url
        self.protocol = protocol
        self.root = root
        self.fs: fsspec.AbstractFileSystem | None = None

    def kind(self) -> type[fsspec.AbstractFileSystem]:
        return fsspec.get_filesystem_class(self.protocol)

    def create(self, options: dict[str, Any]) -> fsspec.AbstractFileSystem:
        """Make the filesystem (in a thread where making it reads files: `asyncio.to_thread`)."""
        with configuring(self.url):
            self.fs = self.kind()(**options)
        return self.fs

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call an fsspec method without blocking the loop: natively if async, else in a thread."""
        fs = self.fs
        assert fs is not None, "backend not started"
        if fs.async_impl:
            return await getattr(fs, "_" + method)(*args, **kwargs)
        return await asyncio.to_thread(getattr(fs, method), *args, **kwargs)

    def full(self, path: str) -> str:
        return posixpath.join(self.root, path) if path else self.root

    async def stat(self, path: str) -> Stat:
        with translated(path):
            return to_stat(await self.call("info", self.full(path)))

    async def read_range(self, path: str, start: int, end: int) -> bytes:
        with translated(path):
            return await self.call("cat_file", self.full(path), start=start, end=end)


class FsspecBackend(StagedParts):
    """Any fsspec filesystem, through a `Filesystem`.

    Part uploads are staged as hidden files and joined through the gateway (`StagedParts`).
    """

    capabilities = Capabilities(part_uploads=True)

    def __init__(self, url: str, protocol: str, root: str, storage_options: dict[str, Any]) -> None:
        self.url = url
        self.files = Filesystem(url, protocol, root.rstrip("/"))
        self.storage_options = storage_options

    async def start(self) -> None:
        options = dict(self.storage_options)
        if self.files.kind().async_impl:
            options.setdefault("asynchronous", True)
            options.setdefault("loop", asyncio.get_running_loop())
        options.setdefault("skip_instance_cache", True)
        self.files.create(options)
        with translated(""), contextlib.suppress(NotImplementedError):  # read-only stores
            await self.files.call("makedirs", self.files.root, exist_ok=True)  # lists as empty

    # -- operations ----------------------------------------------------------------------------

    async def stat(self, path: str) -> Stat:
        return await self.files.stat(path)

    async def list_dir(self, path: str) -> list[Entry]:
        full = self.files.full(path)
        with translated(path):
            infos = await self.files.call("ls", full, detail=True)
            if len(infos) == 1 and infos[0]["type"] == "file" and _same(infos[0], full):
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", path)
        entries = {}
        for info in infos:
            name = posixpath.basename(info["name"].rstrip("/"))
            if name and not name.startswith(UPLOAD_PREFIX):
                entries[name] = to_entry(name, info)
        return [entries[name] for name in sorted(entries)]

    async def open(self, path: str) -> OpenedFile:
        info = await self.stat(path)
        if info.is_dir:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        return RangedFile(self.files, path, info)

    async def write(
        self, path: str, body: AsyncIterable[bytes], digests: str | None = None
    ) -> None:
        """A generic filesystem keeps no metadata: `digests` are checked (by the body) only."""
        target = self.files.full(path)
        await self._refuse_directory(path)
        temp = posixpath.join(posixpath.dirname(target), UPLOAD_PREFIX + secrets.token_hex(8))
        with translated(path):
            await self._write_temp(temp, body)
            try:
                await self.files.call("mv", temp, target)
            except BaseException:
                await _quietly(self.files.call("rm", temp))
                raise

    async def _refuse_directory(self, path: str) -> None:
        try:
            info = await self.stat(path)
        except FileNotFoundError:
            return
        if info.is_dir:
            raise IsADirectoryError(errno.EISDIR, "A directory exists at this path", path)

    async def _write_temp(self, temp: str, body: AsyncIterable[bytes]) -> None:
        await self.files.call("makedirs", posixpath.dirname(temp), exist_ok=True)
        handle = await asyncio.to_thread(self.files.fs.open, temp, "wb")  # type: ignore[union-attr]
        try:
            async for block in coalesce(body, WRITE_BLOCK):
                await asyncio.to_thread(handle.write, block)
            await asyncio.to_thread(handle.close)
        except BaseException:
            await _quietly(asyncio.to_thread(handle.close))
            await _quietly(self.files.call("rm", temp))
            raise

    async def delete(self, path: str) -> None:
        if not path:
            raise PermissionError(errno.EACCES, "The destination root is never deleted", path)
        with translated(path):
            try:
                await self.files.call("rm", self.files.full(path), recursive=True)
            except FileNotFoundError:
                return


def to_stat(info: dict[str, Any]) -> Stat:
    """An fsspec info dict as a `Stat`."""
    is_dir = info.get("type") == "directory"
    return Stat(
        size=0 if is_dir else int(info.get("size") or 0),
        is_dir=is_dir,
        mtime=_mtime(info),
        etag=_etag(info),
        digests=None if is_dir else stored_digests(info),
    )


def to_entry(name: str, info: dict[str, Any]) -> Entry:
    """An fsspec info dict as the listing `Entry` called `name`."""
    is_dir = info.get("type") == "directory"
    return Entry(name, is_dir, 0 if is_dir else int(info.get("size") or 0), _mtime(info))


def from_url(url: str, scheme: str, storage_options: dict[str, Any]) -> FsspecBackend:
    """Any fsspec protocol; an uninstalled one raises ImportError with fsspec's own hint."""
    try:
        fsspec.get_filesystem_class(scheme)
    except ValueError as exc:
        raise ImportError(str(exc), name=scheme) from exc
    root = url.split("://", 1)[1] if "://" in url else url.split(":", 1)[1]
    if scheme == "memory":
        root = "/" + root.strip("/")
    return FsspecBackend(url, scheme, root, storage_options)


@contextlib.contextmanager
def configuring(url: str) -> Iterator[None]:
    """A filesystem that refuses its options (missing credentials, unknown keys) is a bad
    destination, reported in one line at start-up; the message names no option values."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        raise DestinationError(f"cannot configure the store for {url}: {exc}") from None


class RangedFile(OpenedFile):
    """A remote file read as a sequence of ranged requests of bounded size."""

    def __init__(self, files: Filesystem, path: str, info: Stat) -> None:
        self.files = files
        self.path = path
        self.stat = info

    async def chunks(self, offset: int, length: int) -> AsyncIterator[bytes]:
        end = offset + length
        while offset < end:
            stop = min(offset + READ_CHUNK, end)
            chunk = await self.files.read_range(self.path, offset, stop)
            if not chunk:
                raise OSError(
                    errno.EIO, "The stored file is shorter than its listed size", self.path
                )
            offset += len(chunk)
            yield chunk


class translated:
    """Context manager at the store edge: provider errors become built-in file errors."""

    translators: ClassVar[list[Callable[[BaseException, str], BaseException | None]]] = []

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, asyncio.CancelledError):
            return
        converted = to_builtin(exc, self.path)
        if converted is not exc:
            raise converted from exc


def to_builtin(exc: BaseException, path: str) -> BaseException:
    """Map one provider exception to a built-in file error naming the relative path."""
    for translate in translated.translators:
        converted = translate(exc, path)
        if converted is not None:
            return converted
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return TimeoutError(errno.ETIMEDOUT, "The store did not answer in time", path)
    if isinstance(exc, aiohttp.ClientConnectionError):  # a store SDK's own HTTP session
        return OSError(errno.EHOSTUNREACH, "The store cannot be reached", path)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return OSError(errno.EIO, "The store's answer was cut short", path)
    if isinstance(exc, OSError) and exc.filename != path:
        return type(exc)(exc.errno, exc.strerror or str(exc), path)
    return exc


def _same(info: dict[str, Any], full: str) -> bool:
    return info["name"].strip("/") == full.strip("/")


def _mtime(info: dict[str, Any]) -> float | None:
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


DIGEST_METADATA = "artgw-digest"
"""The user-metadata key the object stores keep an upload's digests under (Azure: artgw_digest)."""


def stored_digests(info: dict[str, Any]) -> str | None:
    """The RFC 9530 field value of what an fsspec info dict knows: artgw's own metadata, else
    what the store computed itself (GCS md5Hash and crc32c, Azure Content-MD5)."""
    metadata = info.get("metadata") or info.get("Metadata") or {}
    if isinstance(metadata, dict):
        for key in (DIGEST_METADATA, DIGEST_METADATA.replace("-", "_")):
            if metadata.get(key):
                return str(metadata[key])
    native = []
    md5 = info.get("md5Hash")
    settings = info.get("content_settings")
    azure_md5 = getattr(settings, "content_md5", None) or (
        settings.get("content_md5") if isinstance(settings, dict) else None
    )
    if md5:
        native.append(f"md5=:{md5}:")
    elif azure_md5:
        native.append(f"md5=:{base64.b64encode(bytes(azure_md5)).decode()}:")
    if info.get("crc32c"):
        native.append(f"crc32c=:{info['crc32c']}:")
    return ", ".join(native) or None


def _etag(info: dict[str, Any]) -> str | None:
    for key in ("ETag", "etag", "md5Hash", "content_md5"):
        value = info.get(key)
        if value:
            return str(value).strip('"')
    return None


async def _quietly(awaitable: Any) -> None:
    with contextlib.suppress(Exception):
        await awaitable
