"""A destination on the local filesystem: atomic temp-file writes, sendfile reads, scandir listings.

Containment is checked on real (symlink-resolved) paths: a link inside the destination may point
elsewhere inside it, but nothing is ever read, written or deleted through a link that leaves it.
"""

import asyncio
import contextlib
import dataclasses
import errno
import fcntl
import itertools
import logging
import os
import secrets
import shutil
import stat as stat_mod
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import BinaryIO, TypeVar

from backends.base import Capabilities, Columns, Completion, Entry, OpenedFile, Part, Stat
from backends.batched import BatchedCalls
from backends.beneath import cached_opens_supported, open_beneath, read_cached
from backends.listing import scan
from backends.parts import StagedParts, folder_of, not_uploaded, part_name
from backends.paths import UPLOAD_PREFIX
from backends.streams import KernelBody, WholeBody, batches
from backends.sweep import sweep_stale_uploads

log = logging.getLogger("artgw")

WRITE_BUFFER = 1 << 20
READ_CHUNK = 1 << 20
CHECK_READ = 1 << 20
"""The reads of a multipart upload's whole-file digest check (one thread hop each)."""
SWEEP_MARGIN = 0.1
"""Seconds before start-up an abandoned temp file must be older than: far more than the moment
between creating a temp file and locking it, less than a dead worker's restart (sweep.py)."""
SMALL_FILE = 64 << 10
"""Files up to this size are read during open, saving a second thread hop."""
SETTLED_NS = 1_000_000_000
KNOWN_FILES = 4096
T = TypeVar("T")


class LocalBackend(StagedParts):
    """Part uploads are written in place into one hidden file, renamed onto the target on
    complete (`write_part`)."""

    capabilities = Capabilities(part_uploads=True)

    def __init__(self, root: str, *, fsync: bool = False) -> None:
        self.url = root
        self.root = root
        self.fsync = fsync
        self._umask_mode = 0o644
        self._root_fd = -1
        """The root opened as O_PATH, for `open_beneath`."""
        self._cached_opens = False
        self._temp_prefix = UPLOAD_PREFIX
        self._temp_numbers = itertools.count()
        self._unnamed_writes = False
        """Small files are written unnamed (O_TMPFILE) and linked when complete."""
        self._small_writes = BatchedCalls("artgw-small-writes", after_batch=self._forget_folders)
        """Small files written whole by one thread, many per wake-up (backends/batched.py)."""
        self._batch = threading.local()
        """`folders`: the ones opened for the current batch of that thread, by path."""
        self._stop = threading.Event()
        self._sweeping: asyncio.Future[None] | None = None

    async def start(self) -> None:
        started = time.time()
        self.root, self._umask_mode = await asyncio.to_thread(self._prepare_root)
        self._root_fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self._cached_opens = await asyncio.to_thread(cached_opens_supported, self.root)
        self._unnamed_writes = await asyncio.to_thread(_unnamed_files_supported, self._root_fd)
        # per process (workers start their backend after the fork): no random call per upload
        self._temp_prefix = f"{UPLOAD_PREFIX}{os.getpid()}.{secrets.token_hex(4)}."
        self._sweeping = asyncio.ensure_future(self._sweep(started - SWEEP_MARGIN))

    async def _sweep(self, before: float) -> None:
        """Remove what uploads killed with their process left (backends/sweep.py), in the
        background: a large tree takes a while, and serving need not wait for it."""
        try:
            removed = await asyncio.to_thread(sweep_stale_uploads, self.root, before, self._stop)
        except OSError as exc:
            log.warning("could not sweep abandoned uploads in %s: %s", self.root, exc)
            return
        if removed > 0:
            log.info("removed %d abandoned upload file(s) from %s", removed, self.root)

    async def close(self) -> None:
        self._stop.set()
        if self._sweeping is not None:
            await asyncio.wait({self._sweeping}, timeout=5)
        await asyncio.to_thread(self._small_writes.close)
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def _prepare_root(self) -> tuple[str, int]:
        root = os.path.realpath(os.path.expanduser(self.url))
        os.makedirs(root, exist_ok=True)
        return root, _default_file_mode()

    # -- paths ---------------------------------------------------------------------------------

    def _real(self, path: str) -> str:
        """The symlink-resolved absolute path, refused if it leaves the root.

        `path` is confined (no `..`, no empty segments) and the root is already resolved, so only
        the segments below the root are looked at, one `lstat` each, until one is missing; a
        symbolic link hands the whole path to `os.path.realpath` (which is several times slower).
        """
        current = self.root
        parts = path.split("/") if path else []
        for index, part in enumerate(parts):
            candidate = f"{current}{os.sep}{part}"
            try:
                mode = os.lstat(candidate).st_mode
            except (FileNotFoundError, NotADirectoryError):  # nothing below can be a link
                return os.path.join(candidate, *parts[index + 1 :])
            if stat_mod.S_ISLNK(mode):
                return self._resolved(path)
            current = candidate
        return current

    def _resolved(self, path: str) -> str:
        real = os.path.realpath(os.path.join(self.root, path))
        if real != self.root and not real.startswith(self.root + os.sep):
            raise PermissionError(errno.EACCES, "Path leads outside the artifact destination", path)
        return real

    def _real_parent(self, path: str) -> str:
        """The resolved parent directory of `path`; the last segment itself is not followed."""
        parent, _, name = path.rpartition("/")
        return os.path.join(self._real(parent), name)

    # -- operations ----------------------------------------------------------------------------

    async def stat(self, path: str) -> Stat:
        return await asyncio.to_thread(self._stat, path)

    def _stat(self, path: str) -> Stat:
        with _named(path):
            fd = self._open_beneath_or_resolve(path, os.O_PATH)
            try:
                info = _to_stat(os.fstat(fd))
                return info if info.is_dir else _with_digests(info, f"/proc/self/fd/{fd}")
            finally:
                os.close(fd)

    async def list_dir(self, path: str) -> list[Entry]:
        return (await self.listing(path)).entries()

    async def listing(self, path: str) -> Columns:
        return await asyncio.to_thread(self._listing, path)

    def _listing(self, path: str) -> Columns:
        """One pass over the folder opened below the root (backends/listing.py `scan`): each
        entry's stat is an `fstatat` of one name in that folder, not a walk of its whole path."""
        with _named(path):
            fd = self._open_beneath_or_resolve(path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                return scan(fd)
            finally:
                os.close(fd)

    def _open_beneath_or_resolve(self, path: str, flags: int) -> int:
        """A descriptor for `path`, opened by the kernel below the root where it can, else
        resolved here and re-checked on what was opened."""
        fd = open_beneath(self._root_fd, path or ".", flags) if self._root_fd >= 0 else None
        if fd is not None:
            return fd
        fd = os.open(self._real(path), flags | os.O_CLOEXEC)  # no openat2, or an absolute link
        try:
            self._check_fd(fd, path)
        except BaseException:
            os.close(fd)
            raise
        return fd

    async def open(self, path: str) -> OpenedFile:
        opened = self._open_cached(path) if self._cached_opens else None
        if opened is None:
            opened = await asyncio.to_thread(self._open, path)
        return opened

    def _open_cached(self, path: str) -> "LocalFile | None":
        """Opened on the event loop, saving the thread hop that dominates a small download, when
        the kernel can do it without waiting for a disk: the path resolved from its caches alone
        and a small file's bytes all in the page cache. Else None: the caller uses a thread.
        A small file read whole keeps no descriptor (nor a file object) past this call."""
        with _named(path):
            # O_NONBLOCK: opening a FIFO must not wait for a writer; no effect on regular files
            fd = open_beneath(self._root_fd, path or ".", os.O_RDONLY | os.O_NONBLOCK, cached=True)
            if fd is None:
                return None
            kept = False
            try:
                st = os.fstat(fd)
                if stat_mod.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
                if not stat_mod.S_ISREG(st.st_mode):  # a device or a FIFO: not on the loop
                    return None
                info = _with_digests(_to_stat(st), fd)
                head = read_cached(fd, info.size) if info.size <= SMALL_FILE else None
                if head is not None:
                    return LocalFile(info, None, head)
                fileobj = open(fd, "rb", buffering=0)  # noqa: SIM115 - closed by LocalFile.close
                kept = True
            finally:
                if not kept:
                    os.close(fd)
        return LocalFile(info, fileobj, None)

    @property
    def cached_reads(self) -> bool:
        """Whether `read_small_cached` can answer at all here (see `cached_opens_supported`)."""
        return self._cached_opens

    def read_small_cached(
        self, path: str, known: dict[tuple[object, ...], T], make: Callable[[str, Stat], T]
    ) -> tuple[T, bytes] | None:
        """A small regular file's bytes, read on the event loop without waiting for a disk (as
        `_open_cached` reads it), with `make(path, its Stat)`; or None for anything else, errors
        included: the caller then takes the normal path, which answers them
        (gateway/fastlane.py). `known` keeps what `make` answered per version of a file
        (inode, times, size), so a file read again costs no xattr lookup; files changed in the
        last second are not kept (their times may not yet tell two writes apart)."""
        if not self._cached_opens:
            return None
        try:
            fd = open_beneath(self._root_fd, path, os.O_RDONLY | os.O_NONBLOCK, cached=True)
        except OSError:
            return None
        if fd is None:
            return None
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode) or st.st_size > SMALL_FILE:
                return None
            key = (path, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
            made = known.get(key)
            if made is None:
                info = _to_stat(st)  # listxattr: no exception when a file has none
                made = make(path, _with_digests(info, fd) if os.listxattr(fd) else info)
                if time.time_ns() - st.st_ctime_ns > SETTLED_NS:
                    if len(known) >= KNOWN_FILES:
                        known.clear()
                    known[key] = made
            head = read_cached(fd, st.st_size)
            return None if head is None else (made, head)
        except OSError:  # listxattr where xattrs are not supported, say: the normal path's
            return None
        finally:
            os.close(fd)

    def _open(self, path: str) -> "LocalFile":
        with _named(path):
            fileobj = self._open_confined(path)
            try:
                info = _to_stat(os.fstat(fileobj.fileno()))
                if not info.is_dir:
                    info = _with_digests(info, fileobj.fileno())
                if info.is_dir:
                    raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
                head = fileobj.read(info.size) if info.size <= SMALL_FILE else None
            except BaseException:
                fileobj.close()
                raise
        return LocalFile(info, fileobj, head)

    def _open_confined(self, path: str) -> BinaryIO:
        """Opened by the kernel's beneath-the-root resolution where it can (one system call),
        else resolved here and re-checked on what was opened."""
        fd = open_beneath(self._root_fd, path or ".", os.O_RDONLY) if self._root_fd >= 0 else None
        if fd is not None:
            return open(fd, "rb", buffering=0)
        fileobj = open(self._real(path), "rb", buffering=0)  # noqa: SIM115 - as above
        try:
            self._check_fd(fileobj.fileno(), path)
        except BaseException:
            fileobj.close()
            raise
        return fileobj

    def _check_fd(self, fd: int, path: str) -> None:
        """Re-check containment on what was actually opened, closing the swap-a-link race."""
        try:
            opened = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:  # no /proc: the resolution before opening stands alone
            return
        if not opened.startswith(self.root + os.sep) and opened != self.root:
            raise PermissionError(errno.EACCES, "Path leads outside the destination", path)

    async def write(
        self, path: str, body: AsyncIterable[bytes], digests: str | None = None
    ) -> None:
        """`digests` go into the temp file's `user.artgw.digest` xattr before the rename, so the
        file and its digests appear together (a filesystem without user xattrs keeps none)."""
        if isinstance(body, WholeBody) and sum(map(len, body.pieces)) <= WRITE_BUFFER:
            await self._write_whole(path, body.pieces, digests)
            return
        blocks = aiter(batches(body, WRITE_BUFFER))
        first: list[bytes] = await anext(blocks, [])
        second = await anext(blocks, None) if first else None
        if second is None:  # the whole body fits one block: one thread hop does everything
            await self._write_whole(path, first, digests)
            return
        upload = await asyncio.to_thread(self._begin_upload, path, True, digests)
        try:
            await asyncio.to_thread(_write_all, upload.fd, first)
            await asyncio.to_thread(_write_all, upload.fd, second)
            async for block in blocks:
                await asyncio.to_thread(_write_all, upload.fd, block)
            await asyncio.to_thread(upload.commit, self.fsync)
        except Exception:  # the body failed (e.g. a digest that does not match): off the loop
            await asyncio.to_thread(upload.discard)
            raise
        except BaseException:  # cancelled: no await may be skipped, so here, at once
            upload.discard()  # unlink of our own temp file: a quick metadata call
            raise

    async def _write_whole(self, path: str, data: list[bytes], digests: str | None) -> None:
        """A body held whole: open, write, link in one call off the loop. A small file without
        --fsync goes to the small-writes thread (many files per wake-up); the others go to the
        pool, as an fsync or a large write would hold up the files in line behind it."""
        if self.fsync or sum(map(len, data)) > SMALL_FILE:
            await asyncio.to_thread(self._write_small, path, data, digests)
        else:
            await self._small_writes.call(self._write_batched, path, data, digests)

    def _write_small(self, path: str, data: list[bytes], digests: str | None) -> None:
        if self._unnamed_writes:
            self._write_unnamed(path, data, digests)
        else:
            self._write_named(path, data, digests)

    def _write_batched(self, path: str, data: list[bytes], digests: str | None) -> None:
        """`_write_small` on the small-writes thread, where the files of one batch that go to
        the same folder share its descriptor (opened by the first, closed after the batch: the
        same guarantee as a descriptor held for one file, for a few milliseconds longer). When
        a file fails in a folder removed meanwhile (no links left), the folder is opened (made)
        again for it."""
        if not self._unnamed_writes:
            self._write_named(path, data, digests)
            return
        folders: dict[str, int] | None = getattr(self._batch, "folders", None)
        if folders is None:
            folders = self._batch.folders = {}
        parent, _, name = path.rpartition("/")
        folder_fd = folders.get(parent)
        if folder_fd is not None:
            try:
                self._write_unnamed_in(folder_fd, name, path, list(data), digests)
                return
            except OSError:  # ext4 refuses to create in a removed folder with EPERM
                if os.fstat(folder_fd).st_nlink > 0:
                    raise
                del folders[parent]
                os.close(folder_fd)
        folder_fd, name = self._open_parent(path)
        folders[parent] = folder_fd
        self._write_unnamed_in(folder_fd, name, path, data, digests)

    def _forget_folders(self) -> None:
        """After each batch, on its thread: the folders it opened are closed."""
        folders: dict[str, int] = getattr(self._batch, "folders", {})
        for fd in folders.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        folders.clear()

    def _write_unnamed(self, path: str, data: list[bytes], digests: str | None) -> None:
        folder_fd, name = self._open_parent(path)
        try:
            self._write_unnamed_in(folder_fd, name, path, data, digests)
        finally:
            os.close(folder_fd)

    def _write_unnamed_in(
        self, folder_fd: int, name: str, path: str, data: list[bytes], digests: str | None
    ) -> None:
        """Written as an unnamed file in its folder (O_TMPFILE), then linked under its name:
        one directory update instead of two (create a temp name, rename it), and a failure at
        any point leaves nothing, not even a temp file. A name already taken (a file being
        replaced, or a folder) takes a temp link and the rename, as before."""
        with _named(path):
            flags = os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC
            fd = os.open(".", flags, self._umask_mode, dir_fd=folder_fd)
            try:
                if digests:
                    _store_digests(fd, digests)
                _write_all(fd, data)
                if self.fsync:
                    os.fsync(fd)
                self._link(fd, folder_fd, name)
            finally:
                os.close(fd)

    def _link(self, fd: int, folder_fd: int, name: str) -> None:
        source = f"/proc/self/fd/{fd}"
        try:
            os.link(source, name, dst_dir_fd=folder_fd, follow_symlinks=True)
            return
        except FileExistsError:
            pass
        _mark_in_progress(fd)  # the temp link is never swept (an unnamed file cannot be)
        temp = f"{self._temp_prefix}{next(self._temp_numbers)}"
        os.link(source, temp, dst_dir_fd=folder_fd, follow_symlinks=True)
        try:
            os.replace(temp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=folder_fd)
            raise

    def _write_named(self, path: str, data: list[bytes], digests: str | None) -> None:
        """A folder at the path is found by the final rename (EISDIR), not looked for first."""
        upload = self._begin_upload(path, False, digests)
        try:
            _write_all(upload.fd, data)
            upload.commit(self.fsync)
        except BaseException:
            upload.discard()
            raise

    def _begin_upload(self, path: str, check_folder: bool, digests: str | None) -> "_Upload":
        folder_fd, name = self._open_parent(path)
        try:
            with _named(path):
                if check_folder and _is_folder(name, folder_fd):
                    raise IsADirectoryError(errno.EISDIR, "A directory exists at this path", path)
                temp = f"{self._temp_prefix}{next(self._temp_numbers)}"
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                fd = os.open(temp, flags, self._umask_mode, dir_fd=folder_fd)
                _mark_in_progress(fd)
        except BaseException:
            os.close(folder_fd)
            raise
        upload = _Upload(path, folder_fd, name, temp, fd)
        if digests:
            try:
                _store_digests(fd, digests)
            except BaseException:
                upload.discard()
                raise
        return upload

    def _open_parent(self, path: str) -> tuple[int, str]:
        """The folder that holds `path`, opened (O_PATH) below the root and made if missing, and
        the file's name in it. The temp file and the rename are relative to that descriptor, so
        the folder cannot be swapped for a link while the body arrives."""
        parent, _, name = path.rpartition("/")
        with _named(path):
            try:
                return self._open_folder(parent), name
            except FileNotFoundError:
                os.makedirs(self._real(parent), exist_ok=True)
                return self._open_folder(parent), name

    def _open_folder(self, parent: str) -> int:
        return self._open_beneath_or_resolve(parent, os.O_PATH | os.O_DIRECTORY)

    async def delete(self, path: str) -> None:
        await asyncio.to_thread(self._delete, path)

    def _delete(self, path: str) -> None:
        if not path:
            raise PermissionError(errno.EACCES, "The destination root is never deleted", path)
        with _named(path):
            target = self._real_parent(path)
            try:
                mode = os.lstat(target).st_mode
            except FileNotFoundError:
                return
            if stat_mod.S_ISDIR(mode):
                shutil.rmtree(target)
            else:
                os.unlink(target)

    # -- part uploads: written in place into one file of the upload --------------------------

    async def write_part(self, path: str, part: Part, body: AsyncIterable[bytes]) -> str:
        """A part of announced size goes straight to its place in the upload's `data` file, at
        (number - 1) x the upload's part size (the first part's size: clients send equal parts
        but the last), so that `complete` has nothing to copy. A part that does not fit that
        layout (larger, size unknown, or sent again) is a part file of its own (StagedParts)."""
        slot = await asyncio.to_thread(self._claim_slot, folder_of(part.upload_id), part)
        if slot is None:
            return await super().write_part(path, part, body)
        try:
            if isinstance(body, KernelBody):  # spliced from the socket: no byte through Python
                written = await body.write_into(slot.data, slot.offset)
            else:
                written = 0
                async for pieces in batches(body, WRITE_BUFFER):
                    at = slot.offset + written
                    written += await asyncio.to_thread(_pwrite_all, slot.data, pieces, at)
            if written != part.size:
                raise OSError(errno.EIO, "The part is shorter than announced", path)
            return await asyncio.to_thread(slot.record)
        finally:
            slot.close()

    def _claim_slot(self, folder: str, part: Part) -> "_Slot | None":
        number, size = part.number, part.size
        if size is None:
            return None
        folder_fd, _ = self._open_parent(f"{folder}/{DATA}")
        try:
            part_size = _claim_part_size(folder_fd, size, self._umask_mode)
            if size > part_size:
                os.close(folder_fd)
                return None
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            try:
                slot_fd = os.open(f"{number:05d}{SLOT}", flags, 0o600, dir_fd=folder_fd)
            except FileExistsError:  # sent again: the first sending keeps the slot
                os.close(folder_fd)
                return None
            data = os.open(DATA, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, self._umask_mode,
                           dir_fd=folder_fd)  # fmt: skip
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(folder_fd)
            raise
        return _Slot(folder_fd, slot_fd, data, (number - 1) * part_size, size)

    async def join_parts(
        self, path: str, folder: str, present: set[str], upload: Completion
    ) -> None:
        """With a check, the parts are read once, in order, before they are joined (the join
        itself reads nothing)."""
        parts = upload.parts
        if upload.check is not None:
            async for _ in upload.check(self._read_parts(path, folder, present, parts)):
                pass
        await asyncio.to_thread(self._join_parts, path, folder, present, parts, upload.digests)

    async def _read_parts(
        self, path: str, folder: str, present: set[str], parts: list[tuple[int, str]]
    ) -> AsyncIterator[bytes]:
        folder_fd = await asyncio.to_thread(self._open_folder, folder)
        try:
            pieces = await asyncio.to_thread(_located, folder_fd, present, parts, path)
            for name, offset, length in pieces:
                with _named(path):
                    fd = await asyncio.to_thread(
                        os.open, name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=folder_fd
                    )
                try:
                    end = os.fstat(fd).st_size if length is None else offset + length
                    while offset < end:
                        size = min(CHECK_READ, end - offset)
                        chunk = await asyncio.to_thread(os.pread, fd, size, offset)
                        if not chunk:
                            raise OSError(errno.EIO, "A part is shorter than its size", path)
                        offset += len(chunk)
                        yield chunk
                finally:
                    os.close(fd)
        finally:
            os.close(folder_fd)

    def _join_parts(
        self,
        path: str,
        folder: str,
        present: set[str],
        parts: list[tuple[int, str]],
        digests: str | None,
    ) -> None:
        """Rename `data` into place when it holds every part; else copy the pieces (in the
        kernel) into a temp file beside the target and rename that."""
        folder_fd = self._open_folder(folder)
        try:
            pieces = _located(folder_fd, present, parts, path)
            if _all_in_place(pieces) and self._rename_data(folder_fd, path, pieces, digests):
                return
            upload = self._begin_upload(path, True, digests)
            try:
                for name, offset, length in pieces:
                    with _named(path):
                        source = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=folder_fd)
                    try:
                        _copy_range(source, upload.fd, offset, length)
                    finally:
                        os.close(source)
                upload.commit(self.fsync)
            except BaseException:
                upload.discard()
                raise
        finally:
            os.close(folder_fd)

    def _rename_data(
        self, folder_fd: int, path: str, pieces: list["_Piece"], digests: str | None
    ) -> bool:
        """`data`, cut to its length, renamed onto the target; False if across filesystems."""
        _, offset, length = pieces[-1]
        assert length is not None  # _all_in_place
        data = os.open(DATA, os.O_WRONLY | os.O_CLOEXEC, dir_fd=folder_fd)
        try:
            os.ftruncate(data, offset + length)
            if digests:
                _store_digests(data, digests)
            if self.fsync:
                os.fsync(data)
        finally:
            os.close(data)
        target_fd, target = self._open_parent(path)
        try:
            with _named(path):
                if _is_folder(target, target_fd):
                    raise IsADirectoryError(errno.EISDIR, "A directory exists at this path", path)
                try:
                    os.replace(DATA, target, src_dir_fd=folder_fd, dst_dir_fd=target_fd)
                except OSError as exc:
                    if exc.errno == errno.EXDEV:
                        return False
                    raise
        finally:
            os.close(target_fd)
        return True


DATA = "data"
SLOT = ".slot"
_Piece = tuple[str, int, int | None]
"""(file in the upload's folder, offset, length or None for all of it)."""


class _Slot:
    """A part being written into `data`; `record` makes it count (its ETag and length)."""

    def __init__(self, folder_fd: int, slot_fd: int, data: int, offset: int, size: int) -> None:
        self.folder_fd, self.slot_fd, self.data, self.offset, self.size = (
            folder_fd, slot_fd, data, offset, size
        )  # fmt: skip

    def record(self) -> str:
        etag = secrets.token_hex(8)
        os.write(self.slot_fd, f"{etag} {self.size}".encode())
        return etag

    def close(self) -> None:
        for fd in (self.data, self.slot_fd, self.folder_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def _claim_part_size(folder_fd: int, size: int, mode: int) -> int:
    """The upload's part size: the first part's, set once (written whole, then linked)."""
    try:
        return _read_small(folder_fd, "size")
    except FileNotFoundError:
        pass
    temp = f"size.{secrets.token_hex(4)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode, dir_fd=folder_fd)
    try:
        os.write(fd, str(size).encode())
    finally:
        os.close(fd)
    try:
        os.link(temp, "size", src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except FileExistsError:
        pass
    finally:
        os.unlink(temp, dir_fd=folder_fd)
    return _read_small(folder_fd, "size")


def _read_small(folder_fd: int, name: str) -> int:
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=folder_fd)
    try:
        return int(os.read(fd, 64))
    finally:
        os.close(fd)


def _located(
    folder_fd: int, present: set[str], parts: list[tuple[int, str]], path: str
) -> list[_Piece]:
    """Where each listed part is: its own file, or its range of `data`."""
    part_size = _read_small(folder_fd, "size") if "size" in present else None
    pieces: list[_Piece] = []
    missing = []
    for number, etag in parts:
        own = part_name(number, etag)
        if own in present:
            pieces.append((own, 0, None))
            continue
        recorded = _slot_record(folder_fd, f"{number:05d}{SLOT}", present)
        if recorded is not None and recorded[0] == etag and part_size is not None:
            pieces.append((DATA, (number - 1) * part_size, recorded[1]))
        else:
            missing.append(number)
    if missing:
        raise not_uploaded(missing, path)
    return pieces


def _slot_record(folder_fd: int, name: str, present: set[str]) -> tuple[str, int] | None:
    if name not in present:
        return None
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=folder_fd)
    try:
        etag, _, length = os.read(fd, 128).decode().partition(" ")
    finally:
        os.close(fd)
    return (etag, int(length)) if length.isdigit() else None  # empty: still being written


def _all_in_place(pieces: list[_Piece]) -> bool:
    """Every part in `data`, each right after the previous (all full but the last)."""
    expected = 0
    for name, offset, length in pieces:
        if name != DATA or offset != expected or length is None:
            return False
        expected = offset + length
    return True


def from_url(
    url: str, scheme: str, storage_options: dict[str, object], *, fsync: bool = False
) -> LocalBackend:
    from backends.registry import local_path

    return LocalBackend(local_path(url), fsync=fsync)


class LocalFile(OpenedFile):
    """`head`: the whole file, when it was small and read at open (then `fileobj` may be None)."""

    def __init__(self, info: Stat, fileobj: BinaryIO | None, head: bytes | None) -> None:
        self.stat = info
        self.fileobj = fileobj
        self.head = head

    async def chunks(self, offset: int, length: int) -> AsyncIterator[bytes]:
        if self.head is not None:
            yield self.head[offset : offset + length]
            return
        assert self.fileobj is not None
        fd = self.fileobj.fileno()
        while length > 0:
            chunk = await asyncio.to_thread(os.pread, fd, min(READ_CHUNK, length), offset)
            if not chunk:
                return
            offset += len(chunk)
            length -= len(chunk)
            yield chunk

    async def close(self) -> None:
        if self.fileobj is not None:
            self.fileobj.close()


class _named:
    """Context manager: re-raise OS errors with the relative artifact path, never the server's."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, OSError) and exc.filename != self.path:
            raise type(exc)(exc.errno, exc.strerror, self.path) from None


DIGEST_XATTR = "user.artgw.digest"


def _store_digests(fd: int, digests: str) -> None:
    try:
        os.setxattr(fd, DIGEST_XATTR, digests.encode())
    except OSError as exc:
        if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            raise


def _with_digests(info: Stat, where: int | str) -> Stat:
    """`info` with the digests kept in the file's xattr (by descriptor: no path resolution)."""
    try:
        value = os.getxattr(where, DIGEST_XATTR)
    except OSError:  # none stored (ENODATA), or no xattrs on this filesystem
        return info
    return dataclasses.replace(info, digests=value.decode(errors="replace"))


def _to_stat(st: os.stat_result) -> Stat:
    return Stat(
        size=st.st_size,
        is_dir=stat_mod.S_ISDIR(st.st_mode),
        mtime=st.st_mtime,
        etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
    )


def _write_all(fd: int, pieces: list[bytes]) -> None:
    """Write every piece, in order, with as few `writev` calls as the kernel allows.

    The list is emptied as it is written, so that the caller's references (the loop variable
    that still names it while the next block is gathered) do not keep a written block alive.
    """
    views = [memoryview(piece) for piece in pieces if piece]
    pieces.clear()
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if views:
            views[0] = views[0][written:]


def _copy_range(source: int, target: int, offset: int, length: int | None) -> None:
    """Append `length` bytes of `source` from `offset` (None: to its end) to `target` inside the
    kernel: copy_file_range (which shares blocks on filesystems that can), else sendfile."""
    end = os.fstat(source).st_size if length is None else offset + length
    ranged = hasattr(os, "copy_file_range")
    while offset < end:
        try:
            if ranged:
                copied = os.copy_file_range(source, target, end - offset, offset)
            else:
                copied = os.sendfile(target, source, offset, end - offset)
        except OSError as exc:
            if not ranged or exc.errno not in _NO_COPY_RANGE:
                raise
            ranged = False
            continue
        if copied == 0:
            raise OSError(errno.EIO, "A part is shorter than its size")
        offset += copied


def _pwrite_all(fd: int, pieces: list[bytes], offset: int) -> int:
    """Write the pieces at `offset` (pwritev, as many calls as the kernel needs); how many bytes."""
    views = [memoryview(piece) for piece in pieces if piece]
    pieces.clear()
    total = 0
    while views:
        written = os.pwritev(fd, views, offset + total)
        total += written
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if views:
            views[0] = views[0][written:]
    return total


_NO_COPY_RANGE = {errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM}


class _Upload:
    """A temp file being written in its folder, committed by a rename within that folder. Each
    descriptor is closed once: a closed one is marked -1, so `discard` after a failed `commit`
    cannot close a number the process has since reused."""

    def __init__(self, path: str, folder_fd: int, name: str, temp: str, fd: int) -> None:
        self.path, self.folder_fd, self.name, self.temp, self.fd = path, folder_fd, name, temp, fd

    def commit(self, fsync: bool) -> None:
        if fsync:
            os.fsync(self.fd)
        with _named(self.path):  # renamed while still open and locked: a sweep never takes it
            os.replace(self.temp, self.name, src_dir_fd=self.folder_fd, dst_dir_fd=self.folder_fd)
        fd, self.fd = self.fd, -1
        os.close(fd)
        folder_fd, self.folder_fd = self.folder_fd, -1
        os.close(folder_fd)

    def discard(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
        folder_fd, self.folder_fd = self.folder_fd, -1
        if folder_fd >= 0:
            with contextlib.suppress(OSError):
                os.unlink(self.temp, dir_fd=folder_fd)
            os.close(folder_fd)


def _mark_in_progress(fd: int) -> None:
    """Lock the temp file while it is written: a sweep (backends/sweep.py) leaves it alone. On a
    filesystem without flock the sweep cannot lock it either, so it is left alone all the same."""
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _is_folder(name: str, folder_fd: int) -> bool:
    try:
        return stat_mod.S_ISDIR(os.stat(name, dir_fd=folder_fd).st_mode)
    except FileNotFoundError:
        return False


def _unnamed_files_supported(root_fd: int) -> bool:
    """Whether the root's filesystem makes O_TMPFILE files and /proc can link them."""
    if not hasattr(os, "O_TMPFILE") or not os.path.isdir("/proc/self/fd"):
        return False
    try:
        fd = os.open(".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=root_fd)
    except OSError:  # EOPNOTSUPP, EISDIR (kernels before 3.11), EACCES ...
        return False
    os.close(fd)
    return True


def _default_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
