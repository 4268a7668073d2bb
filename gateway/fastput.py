"""The fast lane's uploads: a small PUT stored and answered at the protocol level.

aiohttp's request machinery costs about as much CPU as a small file's whole write (see
gateway/fastlane.py, which does the same for small downloads). A PUT the lane takes is the
simple case: a request head of the plain form the download lane reads, a `Content-Length` of at
most `WHOLE_BODY` (the size the normal path reads whole), no chunked or compressed body, no
`Expect`. Its body is gathered by the connection (gateway/fastlane.py), then stored by the normal
path's own steps (`upload_path`, `claimed_digests`, `store_whole` of gateway/artifacts.py: the
same confinement, digest checks and atomic write) and answered with the bytes aiohttp would
send. Whatever goes wrong is not rendered here: a request the lane doubts is aiohttp's before a
byte is stored, and one whose store call fails (a folder at the path, a full disk, a digest
that does not match) is handed to aiohttp whole, which runs it again and answers its error
(nothing was stored by the failed attempt: the write is atomic).

Off, besides where the download lane is off: with `--read-only` (the auth middleware refuses
writes) and for bodies over `--max-upload-size` (its middleware answers them).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from backends.local import LocalBackend
from backends.paths import UnsafePathError
from backends.streams import WholeBody
from gateway.artifacts import UPLOADED, UPLOADED_TYPE, WHOLE_BODY, store_whole, upload_path
from gateway.digests import claimed_digests
from gateway.errors import ApiError

REFUSED = frozenset({b"content-encoding"})
"""Headers beyond the download lane's refusals that make an upload aiohttp's (it decompresses
an encoded body)."""
_DIGESTS = {
    b"content-digest": "Content-Digest",
    b"repr-digest": "Repr-Digest",
    b"content-md5": "Content-MD5",
    b"x-amz-checksum-sha256": "x-amz-checksum-sha256",
}
"""The headers `claimed_digests` reads, by the lane's lower-case names."""
UPLOADED_HEAD = f"Content-Type: {UPLOADED_TYPE}\r\nContent-Length: {len(UPLOADED)}\r\n".encode()
"""The header lines of `web.Response(body=UPLOADED, content_type=UPLOADED_TYPE)` up to where
aiohttp adds Date and Server."""


@dataclass(slots=True)
class Put:
    """An upload the lane takes, once its head is read: where, how long, what it claims."""

    path: str
    length: int
    claimed: dict[str, bytes]
    keep_alive: bool
    version: str
    target: str
    rid: str
    route: str


def upload_of(
    raw: str, headers: Mapping[bytes, bytes], limit: int
) -> tuple[str, int, dict[str, bytes]] | None:
    """The confined path, body length and claimed digests of a PUT to the URL tail `raw`, or
    None when the normal path must take it (an error to answer, a body it reads otherwise)."""
    length = _length(headers.get(b"content-length"))
    if length is None or length > WHOLE_BODY or (limit > 0 and length > limit):
        return None
    if not REFUSED.isdisjoint(headers):
        return None
    try:
        path = upload_path(unquote(raw, errors="strict"))
        given = {_DIGESTS[n]: v.decode("ascii") for n, v in headers.items() if n in _DIGESTS}
        claimed = claimed_digests(given) if given else {}
    except (UnicodeDecodeError, UnsafePathError, ApiError):
        return None
    return path, length, claimed


def _length(value: bytes | None) -> int | None:
    """A Content-Length of plain digits, as aiohttp's parser takes it; None for any other."""
    if value is None or not value.isdigit() or len(value) > 9:
        return None
    return int(value)


async def store(backend: LocalBackend, put: Put, body: bytes) -> None:
    """The upload's body stored by the normal path's steps; raises what they raise."""
    await store_whole(backend, put.path, WholeBody([body]), put.claimed)
