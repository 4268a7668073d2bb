"""Checksums end to end: digests a client sends with an upload are checked before the file exists.

An upload may carry `Content-Digest` (RFC 9530: `sha-256=:<base64>:`, `sha-512=...`; several at
once are all checked), `Repr-Digest` (the same, for a whole-file PUT), `Content-MD5` (RFC 1864)
and `x-amz-checksum-sha256` (S3's). The body is hashed as it streams into the store, and when it
ends the digests are compared *before* the stream reports its end: a mismatch raises `BadDigest`
from the body itself, and every backend aborts a write whose body fails (temp file removed,
multipart upload aborted, blocks never committed), so nothing is stored and an old file stays.

The backend is given the claimed digests up front, as one RFC 9530 field value
(`sha-256=:...:, md5=:...:`), and stores it with the object where the store can (local xattr,
S3/GCS user metadata, Azure metadata and Content-MD5); downloads then answer `Repr-Digest`.

A multipart upload through the gateway has each part checked the same way, and the whole file's
digest (`object_digests`, on mpu/create or mpu/complete) checked by the backend's
`finish_parts`, which reads the joined parts once through `verified` before the file appears.
"""

import asyncio
import base64
import binascii
import hashlib
import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Mapping

from backends import Backend, Entry
from backends.paths import join
from backends.streams import batches
from gateway.errors import BadDigest, InvalidParameter

STATS_AT_ONCE = 16
"""`?digests=1` asks the store about each file: this many at a time."""

ALGORITHMS = {"sha-256": "sha256", "sha-512": "sha512", "md5": "md5"}
"""RFC 9530 algorithm names -> hashlib's."""
_MEMBER = re.compile(r"^\s*([a-z0-9-]+)\s*=\s*:([A-Za-z0-9+/=]*):\s*(?:;.*)?$")


def claimed_digests(headers: Mapping[str, str]) -> dict[str, bytes]:
    """The digests an upload's headers claim, by RFC 9530 name; malformed ones are a 400."""
    claimed: dict[str, bytes] = {}
    for header in ("Content-Digest", "Repr-Digest"):
        if header in headers:
            getall = getattr(headers, "getall", None)
            text = ", ".join(getall(header)) if getall else headers[header]
            for name, value in _field_members(header, text):
                _add(claimed, name, value, header)
    if "Content-MD5" in headers:
        _add(claimed, "md5", _base64("Content-MD5", headers["Content-MD5"]), "Content-MD5")
    if "x-amz-checksum-sha256" in headers:
        value = _base64("x-amz-checksum-sha256", headers["x-amz-checksum-sha256"])
        _add(claimed, "sha-256", value, "x-amz-checksum-sha256")
    return claimed


def _field_members(header: str, text: str) -> list[tuple[str, bytes]]:
    members = []
    for member in text.split(","):
        match = _MEMBER.match(member)
        if not match:
            raise InvalidParameter(f"Malformed {header} header: {text!r}")
        name, value = match.group(1), match.group(2)
        if name in ALGORITHMS:  # others (unixsum, ...) are ignored, as RFC 9530 allows
            members.append((name, _base64(header, value)))
    return members


def _base64(header: str, text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameter(f"Malformed {header} header: not base64: {text!r}") from None


def _add(claimed: dict[str, bytes], name: str, value: bytes, header: str) -> None:
    if len(value) != hashlib.new(ALGORITHMS[name]).digest_size:
        raise InvalidParameter(f"Malformed {header} header: a {name} digest of the wrong length")
    if claimed.setdefault(name, value) != value:
        raise BadDigest(f"The upload's headers claim two different {name} digests")


def field_value(digests: Mapping[str, bytes]) -> str:
    """`sha-256=:<base64>:, md5=:<base64>:` (RFC 9530's dictionary form)."""
    return ", ".join(
        f"{name}=:{base64.b64encode(value).decode()}:" for name, value in digests.items()
    )


def object_digests(headers: Mapping[str, str]) -> dict[str, bytes]:
    """The whole file's digests on `mpu/create` or `mpu/complete`: `Repr-Digest` (RFC 9530)
    or `x-amz-checksum-sha256`. Content-Digest and Content-MD5 would name the JSON body there,
    so they are refused rather than silently taken for the file's."""
    for header in ("Content-Digest", "Content-MD5"):
        if header in headers:
            raise InvalidParameter(
                f"{header} on mpu/create or mpu/complete would be the JSON body's digest: "
                "give the whole file's as Repr-Digest (or x-amz-checksum-sha256)"
            )
    return claimed_digests(headers)


def parsed(field: str | None) -> dict[str, bytes]:
    """An RFC 9530 field value this gateway wrote (`field_value`) back into digests."""
    claimed: dict[str, bytes] = {}
    if not field:
        return claimed
    for name, value in _field_members("Repr-Digest", field):
        _add(claimed, name, value, "Repr-Digest")
    return claimed


def merged(first: Mapping[str, bytes], second: Mapping[str, bytes]) -> dict[str, bytes]:
    """Both claims; BadDigest if they give one algorithm two values."""
    claimed = dict(first)
    for name, value in second.items():
        if claimed.setdefault(name, value) != value:
            raise BadDigest(
                f"mpu/create and mpu/complete claim two different {name} digests; "
                "the upload was discarded and nothing was stored"
            )
    return claimed


HASH_BATCH = 1 << 20
"""Bytes hashed per hop to a thread (hashlib lets go of the GIL), while they are passed on."""
HASH_INLINE = 64 << 10
"""A batch under this (a small upload) is hashed on the loop: the hop would cost more."""


async def verified(
    body: AsyncIterable[bytes], claimed: Mapping[str, bytes], stored: str = "nothing was stored"
) -> AsyncIterator[bytes]:
    """The body as received, hashed on the way (in a thread, while the pieces go on); raises
    `BadDigest` instead of ending when the bytes do not match, so the backend aborts the write
    before the file becomes visible. `stored` ends the message: what became of the upload."""
    hashes = {name: hashlib.new(ALGORITHMS[name]) for name in claimed}
    hashing: asyncio.Future[None] | None = None
    async for pieces in batches(body, HASH_BATCH):
        if hashing is not None:
            await hashing  # one batch at a time: a hash is updated in order
            hashing = None
        if sum(map(len, pieces)) < HASH_INLINE:
            _update(hashes, pieces)
        else:
            hashing = asyncio.ensure_future(asyncio.to_thread(_update, hashes, pieces))
        for piece in pieces:
            yield piece
    if hashing is not None:
        await hashing
    _compare(hashes, claimed, stored)


def check_whole(pieces: list[bytes], claimed: Mapping[str, bytes]) -> None:
    """`verified` for a small body received in full: hashed here, on the loop; BadDigest if it
    does not match (before the backend sees it, so nothing is stored)."""
    hashes = {name: hashlib.new(ALGORITHMS[name]) for name in claimed}
    _update(hashes, pieces)
    _compare(hashes, claimed, "nothing was stored")


def _compare(
    hashes: Mapping[str, "hashlib._Hash"], claimed: Mapping[str, bytes], stored: str
) -> None:
    wrong = [name for name, running in hashes.items() if running.digest() != claimed[name]]
    if wrong:
        got = field_value({name: hashes[name].digest() for name in wrong})
        raise BadDigest(
            f"The body does not match its {', '.join(wrong)} digest (received {got}); {stored}"
        )


def _update(hashes: Mapping[str, "hashlib._Hash"], pieces: list[bytes]) -> None:
    for piece in pieces:
        for running in hashes.values():
            running.update(piece)


async def listing_with_digests(backend: Backend, folder: str, entries: list[Entry]) -> bytes:
    """MLflow's listing with a `digest` (the file's Repr-Digest) on each file whose store knows
    one: one metadata request per file, so only when asked (`?digests=1`)."""
    gate = asyncio.Semaphore(STATS_AT_ONCE)

    async def digest_of(entry: Entry) -> str | None:
        if entry.is_dir:
            return None
        async with gate:
            try:
                return (await backend.stat(join(folder, entry.name))).digests
            except OSError:  # removed meanwhile
                return None

    digests = await asyncio.gather(*(digest_of(e) for e in entries))
    files: list[dict[str, object]] = []
    for entry, digest in zip(entries, digests, strict=True):
        item: dict[str, object] = {"path": entry.name, "is_dir": entry.is_dir}
        if not entry.is_dir:
            item["file_size"] = entry.size
            if digest:
                item["digest"] = digest
        files.append(item)
    return json.dumps({"files": files}).encode()
