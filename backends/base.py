"""The backend interface: the small set of storage operations the gateway needs.

Every backend speaks relative artifact paths that already passed `paths.confine`, and raises only
Python's built-in file errors (FileNotFoundError, IsADirectoryError, NotADirectoryError,
FileExistsError, PermissionError, TimeoutError, OSError) whose `filename` is that relative path.
A remote store's failures keep their kind in the errno, after the SDK's retries
(backends/retry.py): EHOSTUNREACH it cannot be reached, EBUSY it answered 503/429 (busy,
throttling), EREMOTEIO it answered another 5xx; gateway/errors.py turns each into its status.
"""

from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import BinaryIO, ClassVar, NamedTuple, cast

Checker = Callable[[AsyncIterable[bytes]], AsyncIterator[bytes]]
"""Passes a stream through and raises at its end if the bytes are not the ones expected (a
whole-object digest check, see `Backend.finish_parts`)."""


class Entry(NamedTuple):
    """One child of a listed directory (a tuple: listings build thousands of these)."""

    name: str
    is_dir: bool
    size: int = 0
    mtime: float | None = None
    plain: bool = True
    """A regular file or folder; False for a symbolic link (even one that stays inside the
    destination), a device, a FIFO or a socket, which folder archives leave out."""


class Columns(NamedTuple):
    """The children of one directory, sorted by name, as parallel lists (`Entry`'s fields)."""

    names: list[str]
    is_dir: list[bool]
    sizes: list[int]
    mtimes: list[float | None]
    plain: list[bool]

    @classmethod
    def of(cls, entries: Sequence[Entry]) -> "Columns":
        if not entries:
            return cls([], [], [], [], [])
        names, is_dir, sizes, mtimes, plain = map(list, zip(*entries, strict=True))
        return cls(names, is_dir, sizes, mtimes, plain)

    def entries(self) -> list[Entry]:
        """One `Entry` per child (made in C: `tuple.__new__` over the zipped columns)."""
        rows = zip(*self, strict=True)
        return cast(list[Entry], list(map(tuple.__new__, repeat(Entry), rows)))


@dataclass(frozen=True, slots=True)
class Stat:
    size: int
    is_dir: bool
    mtime: float | None = None
    etag: str | None = None
    """An opaque validator for the current content (without quotes), if the store has one."""
    digests: str | None = None
    """The content's digests as an RFC 9530 field value (`sha-256=:<base64>:, md5=:...:`), when
    the store keeps them (given with `write`, or computed by the store itself)."""


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What only some backends can do; the gateway asks instead of guessing from the type."""

    native_multipart: bool = False
    """The store takes parts uploaded straight to it (see `Backend.create_multipart`)."""
    presign: bool = False
    """The store signs URLs from which a client reads directly (`Backend.presign_download`)."""
    part_uploads: bool = False
    """Parts of one upload may arrive separately, in any order, through any worker
    (`Backend.begin_parts` and the methods after it)."""


@dataclass(frozen=True, slots=True)
class PartUrl:
    """Where and how a client uploads one part of a multipart upload, straight to the store."""

    part_number: int
    url: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class MultipartUpload:
    upload_id: str | None
    parts: list[PartUrl]


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a part upload as it arrives (`Backend.write_part`)."""

    upload_id: str
    """The store's id for the upload (`Backend.begin_parts`)."""
    number: int
    """From 1."""
    size: int | None = None
    """The part's length when the client announced it (Content-Length)."""


@dataclass(frozen=True, slots=True)
class Completion:
    """What `Backend.finish_parts` makes of an upload."""

    upload_id: str
    parts: list[tuple[int, str]]
    """(number, ETag) of every part, in the order they are joined."""
    digests: str | None = None
    """The whole file's digests (an RFC 9530 field value), kept with it as `write` keeps them."""
    check: Checker | None = None
    """What the joined bytes go through before the file appears."""


@dataclass(frozen=True, slots=True)
class PresignedDownload:
    url: str
    headers: dict[str, str]
    size: int


class OpenedFile(ABC):
    """A file opened for reading: its metadata, and its bytes on demand."""

    stat: Stat
    fileobj: BinaryIO | None = None
    """A real OS file the server may hand to sendfile(); None for remote stores."""

    @abstractmethod
    def chunks(self, offset: int, length: int) -> AsyncIterator[bytes]:
        """Yield `length` bytes starting at `offset`, in bounded chunks."""

    async def close(self) -> None:  # noqa: B027 - most remote files hold nothing to release
        """Release what the open holds."""


class Backend(ABC):
    capabilities: ClassVar[Capabilities] = Capabilities()
    url: str

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect to the store; fail here, at start-up, if it is unreachable or missing."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def capabilities_at(self, path: str) -> Capabilities:
        """What the store serving `path` can do (differs per mount under a mount table)."""
        return self.capabilities

    def all_capabilities(self) -> list[Capabilities]:
        """The capabilities of every store behind this backend (one, unless mounts)."""
        return [self.capabilities]

    def is_root(self, path: str) -> bool:
        """True for a path that is never deleted: the root (and, under a mount table, each
        mount point)."""
        return path == ""

    async def probe(self) -> None:
        """Ask the store one cheap question (readiness checks); raise as the operations do."""
        await self.stat("")

    @abstractmethod
    async def stat(self, path: str) -> Stat: ...

    @abstractmethod
    async def list_dir(self, path: str) -> list[Entry]:
        """Children of a directory, sorted by name, without in-progress uploads."""

    async def listing(self, path: str) -> Columns:
        """`list_dir` as columns: what the JSON listing encodes (a local folder makes them
        without an `Entry` per child: backends/listing.py)."""
        return Columns.of(await self.list_dir(path))

    @abstractmethod
    async def open(self, path: str) -> OpenedFile:
        """Open a file for reading; IsADirectoryError for a directory."""

    @abstractmethod
    async def write(
        self, path: str, body: AsyncIterable[bytes], digests: str | None = None
    ) -> None:
        """Store the stream at `path`, visible only once complete, replacing any old file.

        If the stream fails or is cancelled, nothing is left behind and the old file stays: this
        is also the verify-before-commit hook, since a checking body raises instead of ending.
        `digests` (an RFC 9530 field value the caller verifies that way) is kept with the object
        where the store can, and comes back as `Stat.digests`.
        """

    @abstractmethod
    async def delete(self, path: str) -> None:
        """Remove a file or a whole tree; a missing path is not an error. Never the root."""

    # -- only with capabilities.native_multipart / capabilities.presign ------------------------

    async def create_multipart(self, path: str, num_parts: int, ttl: int) -> MultipartUpload:
        """Start a multipart upload of `path` and sign one upload URL per part."""
        raise NotImplementedError

    async def complete_multipart(
        self, path: str, upload_id: str | None, parts: list[tuple[int, str]]
    ) -> None:
        """Assemble the uploaded parts, given as (part_number, etag) in order."""
        raise NotImplementedError

    async def abort_multipart(self, path: str, upload_id: str | None) -> None:
        raise NotImplementedError

    async def presign_download(self, path: str, ttl: int) -> PresignedDownload:
        """A URL from which a client may GET (with Range) the file at `path` for `ttl` seconds."""
        raise NotImplementedError

    # -- only with capabilities.part_uploads: multipart uploads through the gateway --------------

    async def begin_parts(self, path: str, digests: str | None = None) -> str:
        """Start an upload of `path` whose parts arrive separately; the store's id for it.

        `digests`: the whole file's, announced now (an RFC 9530 field value); a store whose
        parts cannot be read before they are joined (S3, Azure) then gathers them out of sight,
        so that `finish_parts` can check them before the file appears."""
        raise NotImplementedError

    async def write_part(self, path: str, part: Part, body: AsyncIterable[bytes]) -> str:
        """Store the part of the upload as it streams in; return its ETag.

        Parts may come in any order, at once, through any worker; a part sent again gets a new
        ETag, and `finish_parts` uses the one it is given. FileNotFoundError: unknown upload.
        """
        raise NotImplementedError

    async def finish_parts(self, path: str, upload: Completion) -> None:
        """Make the file at `path` the upload's parts, joined in their order, atomically.

        Nothing is visible before; finishing an upload that already finished succeeds again.
        FileNotFoundError for an unknown upload; OSError(EINVAL) when a part is missing or has
        another ETag; either way the file at `path` is untouched. With `upload.check`, what it
        raises is raised with the file untouched (the parts stay).
        """
        raise NotImplementedError

    async def discard_parts(self, path: str, upload_id: str) -> None:
        """Remove every part of the upload; an unknown upload is not an error."""
        raise NotImplementedError

    async def sweep_parts(self, started_before: float) -> int:
        """Discard the unfinished uploads begun before this time (epoch seconds); how many."""
        raise NotImplementedError
