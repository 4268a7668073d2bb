"""Archive formats written as a stream, member by member: zip, tar and tar.gz.

Each writer turns calls (`file_header`, `data`, `file_end`, `directory`, `finish`) into the bytes
that go out next; nothing is ever seeked back to, so the archive can be sent while it is made.

- **zip** is Python's `zipfile` writing into a non-seekable sink: it then sets the data-descriptor
  flag on every member and writes sizes and CRC after the data, and it switches to zip64 records
  by itself (per member from the size given up front, and for offsets and member counts in the
  central directory). So the standard library streams zip64 archives and no third-party library
  is needed. Members are stored (not deflated): artifacts are mostly already compressed (models,
  images, parquet), and deflate runs at a few tens of MB/s on such data; `tar.gz` compresses.
- **tar** is POSIX.1-2001 (pax) headers from `tarfile.TarInfo.tobuf`, so any name (UTF-8, longer
  than 100 bytes) is kept exactly, then the data padded to 512 bytes, then the end-of-archive
  blocks padded to tar's 10 KiB record, as `tarfile` in stream mode ('w|') writes it.
- **tar.gz** is that tar stream through one gzip (zlib) compressor, level 6 as gzip's default.

The methods are plain CPU work; the caller runs big chunks through a worker thread.
"""

import contextlib
import io
import tarfile
import time
import zipfile
import zlib
from typing import ClassVar

MEMBER_MODE = 0o644
FOLDER_MODE = 0o755
DOS_EPOCH = (1980, 1, 1, 0, 0, 0)
DOS_END = (2107, 12, 31, 23, 59, 58)
"""The times a zip member can carry."""


class ArchiveWriter:
    suffix: ClassVar[str]
    content_type: ClassVar[str]

    def file_header(self, name: str, size: int, mtime: float) -> bytes:
        raise NotImplementedError

    def data(self, chunk: bytes) -> bytes:
        raise NotImplementedError

    def file_end(self) -> bytes:
        raise NotImplementedError

    def directory(self, name: str, mtime: float) -> bytes:
        raise NotImplementedError

    def finish(self) -> bytes:
        raise NotImplementedError

    def abandon(self) -> None:
        """Release what an archive cut midway still holds (its bytes are never sent)."""


class _Sink(io.RawIOBase):
    """Where zipfile writes: collects the bytes until taken; cannot seek (hence streaming)."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.pieces.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        taken = b"".join(self.pieces)
        self.pieces.clear()
        return taken


class ZipWriter(ArchiveWriter):
    suffix = ".zip"
    content_type = "application/zip"

    def __init__(self) -> None:
        self.sink = _Sink()
        self.zip = zipfile.ZipFile(self.sink, "w", zipfile.ZIP_STORED)
        self.member: zipfile._ZipWriteFile | None = None  # type: ignore[name-defined]

    def _info(self, name: str, mtime: float, mode: int) -> zipfile.ZipInfo:
        stamp = min(max(time.localtime(mtime)[:6], DOS_EPOCH), DOS_END)
        info = zipfile.ZipInfo(name, stamp)
        info.external_attr = mode << 16
        return info

    def file_header(self, name: str, size: int, mtime: float) -> bytes:
        info = self._info(name, mtime, 0o100000 | MEMBER_MODE)
        info.file_size = size  # decides zip64 for the member, before its header is written
        self.member = self.zip.open(info, "w")
        return self.sink.take()

    def data(self, chunk: bytes) -> bytes:
        assert self.member is not None
        self.member.write(chunk)
        return self.sink.take()

    def file_end(self) -> bytes:
        assert self.member is not None
        self.member.close()
        self.member = None
        return self.sink.take()

    def directory(self, name: str, mtime: float) -> bytes:
        info = self._info(name + "/", mtime, 0o040000 | FOLDER_MODE)
        info.external_attr |= 0x10  # MS-DOS directory flag
        self.zip.writestr(info, b"")
        return self.sink.take()

    def finish(self) -> bytes:
        self.zip.close()
        return self.sink.take()

    def abandon(self) -> None:
        """Close the open member, then the zip: left to the garbage collector, `ZipFile.__del__`
        raises while a member is still open for writing."""
        with contextlib.suppress(Exception):
            if self.member is not None:
                self.member.close()
        self.member = None
        with contextlib.suppress(Exception):
            self.zip.close()
        self.sink.pieces.clear()


class TarWriter(ArchiveWriter):
    suffix = ".tar"
    content_type = "application/x-tar"

    def __init__(self) -> None:
        self.written = 0
        self.remaining = 0
        self.member_size = 0

    def _out(self, data: bytes) -> bytes:
        self.written += len(data)
        return data

    def _header(self, name: str, kind: bytes, size: int, mtime: float, mode: int) -> bytes:
        info = tarfile.TarInfo(name)
        info.type, info.size, info.mtime, info.mode = kind, size, int(mtime), mode
        info.uname = info.gname = ""
        return self._out(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict"))

    def file_header(self, name: str, size: int, mtime: float) -> bytes:
        self.remaining = self.member_size = size
        return self._header(name, tarfile.REGTYPE, size, mtime, MEMBER_MODE)

    def data(self, chunk: bytes) -> bytes:
        if len(chunk) > self.remaining:
            raise OSError("a member grew while it was archived")
        self.remaining -= len(chunk)
        return self._out(chunk)

    def file_end(self) -> bytes:
        if self.remaining:
            raise OSError("a member shrank while it was archived")
        return self._out(bytes(-self.member_size % tarfile.BLOCKSIZE))

    def directory(self, name: str, mtime: float) -> bytes:
        return self._header(name + "/", tarfile.DIRTYPE, 0, mtime, FOLDER_MODE)

    def finish(self) -> bytes:
        end = bytes(2 * tarfile.BLOCKSIZE)
        self.written += len(end)
        return end + bytes(-self.written % tarfile.RECORDSIZE)


class TarGzWriter(TarWriter):
    suffix = ".tar.gz"
    content_type = "application/gzip"

    def __init__(self, level: int = 6) -> None:
        super().__init__()
        self.gzip = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def _out(self, data: bytes) -> bytes:
        return self.gzip.compress(super()._out(data))

    def finish(self) -> bytes:
        return self.gzip.compress(super().finish()) + self.gzip.flush()


FORMATS: dict[str, type[ArchiveWriter]] = {
    "zip": ZipWriter,
    "tar": TarWriter,
    "tar.gz": TarGzWriter,
    "tgz": TarGzWriter,
}
