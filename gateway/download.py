"""Serving one stored file: validators, conditional requests, a single byte range, HEAD, streaming.

The rules follow RFC 9110: If-Match / If-Unmodified-Since can fail with 412, If-None-Match /
If-Modified-Since answer 304, If-Range falls back to the whole file, an unsatisfiable range gets
416 with `Content-Range: bytes */size`, and a Range we cannot honour (several ranges, bad syntax)
is ignored in favour of the whole file.
"""

import re
from email.utils import formatdate, parsedate_to_datetime
from functools import lru_cache

from aiohttp import web

from backends import OpenedFile, Stat
from gateway.errors import RangeNotSatisfiable, error_response
from gateway.keys import SENDFILE_BYTES
from gateway.mime import content_disposition, guess_mime_type
from gateway.sendfile import sendfile

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
SENDFILE_MIN = 64 << 10


def etag_of(info: Stat) -> str | None:
    if info.etag:
        return f'"{info.etag}"'
    if info.mtime is not None:
        return f'"{int(info.mtime * 1e6):x}-{info.size:x}"'
    return None


def validator_headers(info: Stat) -> dict[str, str]:
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-cache"}
    etag = etag_of(info)
    if etag:
        headers["ETag"] = etag
    if info.mtime is not None:
        headers["Last-Modified"] = http_date(int(info.mtime))
    if info.digests:
        headers["Repr-Digest"] = info.digests  # RFC 9530: of the whole file, also on a 206
    return headers


@lru_cache(maxsize=4096)
def http_date(seconds: int) -> str:
    """RFC 9110's IMF-fixdate; cached, as files written together share their second."""
    return formatdate(seconds, usegmt=True)


CONDITIONAL = ("If-Match", "If-Unmodified-Since", "If-None-Match", "If-Modified-Since", "Range")


def _etag_matches(header: str, etag: str | None, *, weak: bool) -> bool:
    if header.strip() == "*":
        return etag is not None
    if etag is None:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate.startswith("W/"):
            if not weak:
                continue
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def _not_modified_since(header: str, mtime: float | None) -> bool:
    """True when the file is no newer than the date in `header` (second precision)."""
    if mtime is None:
        return False
    try:
        return int(mtime) <= parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return False


def precondition_status(request: web.Request, info: Stat) -> int | None:
    """412 or 304 when a conditional header says so, else None."""
    etag = etag_of(info)
    headers = request.headers
    if "If-Match" in headers:
        if not _etag_matches(headers["If-Match"], etag, weak=False):
            return 412
    elif "If-Unmodified-Since" in headers and not _not_modified_since(
        headers["If-Unmodified-Since"], info.mtime
    ):
        return 412
    if "If-None-Match" in headers:
        return 304 if _etag_matches(headers["If-None-Match"], etag, weak=True) else None
    if "If-Modified-Since" in headers and _not_modified_since(
        headers["If-Modified-Since"], info.mtime
    ):
        return 304
    return None


def requested_range(request: web.Request, info: Stat) -> tuple[int, int] | None:
    """(offset, length) of a satisfiable single range, None for the whole file; may raise 416."""
    header = request.headers.get("Range")
    if header is None or not _if_range_holds(request, info):
        return None
    match = _RANGE.match(header.replace(" ", ""))
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    size = info.size
    if first == "":
        length = min(int(last), size)
        if length == 0:
            raise _unsatisfiable(size)
        return size - length, length
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size:
        raise _unsatisfiable(size)
    if end < start:
        return None
    return start, end - start + 1


def _if_range_holds(request: web.Request, info: Stat) -> bool:
    value = request.headers.get("If-Range")
    if value is None:
        return True
    if value.startswith(('"', "W/")):
        return not value.startswith("W/") and value == etag_of(info)
    return (
        info.mtime is not None
        and _not_modified_since(value, info.mtime)
        and (formatdate(info.mtime, usegmt=True) == value)
    )


def _unsatisfiable(size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(f"Requested range not satisfiable; the file has {size} bytes")


async def file_response(
    request: web.Request, opened: OpenedFile, name: str, *, inline: bool = False
) -> web.StreamResponse:
    head: bytes | None = getattr(opened, "head", None)  # a small local file, already read
    if head is not None and not inline and request.method == "GET" and _unconditional(request):
        return small_file_response(opened.stat, head, name)
    info = opened.stat
    headers = validator_headers(info)
    status = precondition_status(request, info)
    if status is not None:
        return web.Response(status=status, headers=headers)
    try:
        span = requested_range(request, info)
    except RangeNotSatisfiable as exc:
        return _range_error(exc, info.size)
    offset, length = span if span else (0, info.size)
    response = web.StreamResponse(status=206 if span else 200, headers=headers)
    if span:
        response.headers["Content-Range"] = f"bytes {offset}-{offset + length - 1}/{info.size}"
    response.content_type = "text/plain" if inline else guess_mime_type(name)
    if inline:
        response.charset = "utf-8"
    response.headers["Content-Disposition"] = content_disposition(
        name, "inline" if inline else "attachment"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.content_length = length
    await response.prepare(request)
    if request.method != "HEAD" and length:
        await _send_body(request, response, opened, offset, length)
    await response.write_eof()
    return response


def _unconditional(request: web.Request) -> bool:
    headers = request.headers
    return not any(name in headers for name in CONDITIONAL)


def small_file_response(info: Stat, body: bytes, name: str) -> web.Response:
    """A whole small file already read: headers and body leave in one write, with the same
    headers as the streamed path (validators, type, disposition, nosniff, length)."""
    return web.Response(body=body, headers=small_file_headers(info, name))


def small_file_headers(info: Stat, name: str) -> dict[str, str]:
    """`small_file_response`'s headers (gateway/fastlane.py sends the same)."""
    headers = validator_headers(info)
    headers["Content-Disposition"] = content_disposition(name, "attachment")
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Content-Type"] = guess_mime_type(name)
    return headers


def _range_error(error: RangeNotSatisfiable, size: int) -> web.Response:
    response = error_response(error)
    response.headers["Content-Range"] = f"bytes */{size}"
    response.headers["Accept-Ranges"] = "bytes"
    return response


async def _send_body(
    request: web.Request, response: web.StreamResponse, opened: OpenedFile, offset: int, length: int
) -> None:
    """Stream the bytes; past the headers, any failure can only cut the connection."""
    try:
        transport = request.transport
        plain = transport is not None and transport.get_extra_info("sslcontext") is None
        if opened.fileobj is not None and length >= SENDFILE_MIN and plain:
            assert transport is not None
            await sendfile(transport, opened.fileobj, offset, length)  # TLS needs the bytes
            request[SENDFILE_BYTES] = length
            return
        async for chunk in opened.chunks(offset, length):
            await response.write(chunk)
    except ConnectionError:
        raise
    except Exception as exc:
        if request.transport is not None:
            request.transport.close()
        raise ConnectionResetError(f"Download of {request.path} failed midway: {exc}") from exc
