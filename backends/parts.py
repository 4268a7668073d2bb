"""Part uploads on stores without a native multipart mechanism (local, memory, any fsspec store).

Each part is stored, as it arrives, as a hidden file of the destination, named by the upload, its
number and a fresh tag that is the part's ETag:

    .artgw.upload.multipart/<upload>/<number>.<etag>      a part (a resend gets a new tag)
    .artgw.upload.multipart/<upload>.done                 left by a finished upload, for retries

`<upload>` is `<start time>-<random>`, so the sweep knows each upload's age from its name alone.
Writing a part goes through the store's own atomic write, so a half-sent part is never seen; any
worker or replica may take any part. `finish_parts` checks that every listed part is there with
its ETag, then joins them into the target in one atomic step (the store's own, see `join_files`),
leaves the `.done` record and removes the parts. The hidden folder is invisible in listings and
no client path can name it (`paths.UPLOAD_PREFIX`).
"""

import errno
import re
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator

from backends.base import Backend, Checker, Completion, Part
from backends.paths import UPLOAD_PREFIX

FOLDER = UPLOAD_PREFIX + "multipart"
_UPLOAD = re.compile(r"^(\d{1,12})-[0-9a-f]{16}$")
_ETAG = re.compile(r"^[0-9a-f]{16}$")


def new_upload_id() -> str:
    return f"{int(time.time())}-{secrets.token_hex(8)}"


def started(upload_id: str) -> int | None:
    """When the upload began (epoch seconds), or None if the id is not one of ours."""
    match = _UPLOAD.match(upload_id)
    return int(match.group(1)) if match else None


def folder_of(upload_id: str) -> str:
    if started(upload_id) is None:
        raise FileNotFoundError(errno.ENOENT, "No such multipart upload", upload_id)
    return f"{FOLDER}/{upload_id}"


def part_name(number: int, etag: str) -> str:
    return f"{number:05d}.{etag}"


def done_marker(upload_id: str) -> str:
    return f"{folder_of(upload_id)}.done"


def not_uploaded(missing: list[int], path: str) -> OSError:
    message = f"Parts not uploaded (or with another ETag): {missing[:10]}"
    return OSError(errno.EINVAL, message, path)


def missing_parts(present: set[str], parts: list[tuple[int, str]]) -> list[int]:
    return [n for n, etag in parts if not _ETAG.match(etag) or part_name(n, etag) not in present]


class StagedParts(Backend):
    """The part-upload methods of `Backend`, over the backend's own write/list/open/delete.

    A backend built on this may override `join_parts` or `join_files` with a faster join.
    """

    async def begin_parts(self, path: str, digests: str | None = None) -> str:
        return new_upload_id()  # nothing is stored until the first part

    async def write_part(self, path: str, part: Part, body: AsyncIterable[bytes]) -> str:
        etag = secrets.token_hex(8)
        await self.write(f"{folder_of(part.upload_id)}/{part_name(part.number, etag)}", body)
        return etag

    async def finish_parts(self, path: str, upload: Completion) -> None:
        folder = folder_of(upload.upload_id)
        try:
            present = {entry.name for entry in await self.list_dir(folder)}
        except (FileNotFoundError, NotADirectoryError):
            if await self._exists(done_marker(upload.upload_id)):
                return  # finished before: a retried complete
            raise FileNotFoundError(errno.ENOENT, "No such multipart upload", path) from None
        await self.join_parts(path, folder, present, upload)
        await self.write(done_marker(upload.upload_id), _empty())
        await self.delete(folder)

    async def join_parts(
        self, path: str, folder: str, present: set[str], upload: Completion
    ) -> None:
        """Make `path` the upload's parts, found among the names `present` in its folder;
        OSError(EINVAL) naming the parts that are not there."""
        missing = missing_parts(present, upload.parts)
        if missing:
            raise not_uploaded(missing, path)
        sources = [f"{folder}/{part_name(n, etag)}" for n, etag in upload.parts]
        await self.join_files(path, sources, upload)

    async def join_files(self, path: str, sources: list[str], upload: Completion) -> None:
        """Write the sources, in order, as the file at `path` (atomically, as `write` does),
        through `upload.check` if given: the one read of the parts is also the check; the
        upload's digests are kept with it."""
        joined = self._concatenated(sources)
        check = upload.check
        await self.write(path, check(joined) if check else joined, upload.digests)

    async def check_files(self, sources: list[str], check: Checker) -> None:
        """Read the sources, in order, through `check` (for a join that reads nothing)."""
        async for _ in check(self._concatenated(sources)):
            pass

    async def _concatenated(self, sources: list[str]) -> AsyncIterator[bytes]:
        for source in sources:
            opened = await self.open(source)
            try:
                async for chunk in opened.chunks(0, opened.stat.size):
                    yield chunk
            finally:
                await opened.close()

    async def discard_parts(self, path: str, upload_id: str) -> None:
        await self.delete(folder_of(upload_id))

    async def sweep_parts(self, started_before: float) -> int:
        """Remove uploads (and `.done` records) begun before this time; return how many."""
        try:
            entries = await self.list_dir(FOLDER)
        except (FileNotFoundError, NotADirectoryError):
            return 0
        removed = 0
        for entry in entries:
            begun = started(entry.name.removesuffix(".done"))
            if begun is not None and begun < started_before:
                await self.delete(f"{FOLDER}/{entry.name}")
                removed += 1
        return removed

    async def _exists(self, path: str) -> bool:
        try:
            await self.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""
