"""Handlers of the mlflow-artifacts REST API: upload, download, list, delete (mpu/ and presigned/
are in gateway/presign.py)."""

import json
from collections.abc import Iterator, Sequence
from json.encoder import encode_basestring_ascii as encode_string  # type: ignore[attr-defined]
from urllib.parse import unquote

from aiohttp import web

from backends import Backend, Entry, confine
from backends.streams import received_pieces
from gateway.download import file_response
from gateway.errors import InvalidParameter
from gateway.keys import BACKEND
from gateway.web import browse
from gateway.web.negotiation import prefers_html

ARTIFACTS_MARKER = "/mlflow-artifacts/artifacts/"
ANY_PATH = "{path:[\\s\\S]*}"
"""The route pattern of an artifact path: anything, newlines included (they are refused later)."""


def backend_of(request: web.Request) -> Backend:
    return request.app[BACKEND]


def url_tail(request: web.Request, marker: str) -> str:
    """The request path after `marker`, percent-decoded exactly once from the raw request line."""
    raw = request.raw_path.split("?", 1)[0].split("#", 1)[0]
    tail = raw.split(marker, 1)[1] if marker in raw else ""
    try:
        return unquote(tail, errors="strict")
    except UnicodeDecodeError:
        raise InvalidParameter(f"Invalid path: not UTF-8 after decoding: '{tail}'") from None


def directory_path(raw: str) -> str:
    """A directory may be named with one trailing slash (as `mlflow gc` does)."""
    return raw[:-1] if raw.endswith("/") and raw != "/" else raw


async def upload(request: web.Request) -> web.Response:
    raw = url_tail(request, ARTIFACTS_MARKER)
    if raw == "" or raw.endswith("/"):
        raise InvalidParameter("Artifact path must include a filename (cannot end with '/').")
    path = confine(raw)
    await backend_of(request).write(path, received_pieces(request.content))
    return json_response({})


async def download(request: web.Request) -> web.StreamResponse:
    """A file; for a browser (`prefers_html`) a directory gets its HTML listing instead of a 400."""
    raw = url_tail(request, ARTIFACTS_MARKER)
    if raw == "" or raw.endswith("/"):
        if prefers_html(request):
            return await browse.listing_page(request, confine(directory_path(raw), allow_root=True))
        raise InvalidParameter(f"Artifact path refers to a directory, not a file: '{raw}'")
    path = confine(raw)
    try:
        opened = await backend_of(request).open(path)
    except IsADirectoryError:
        if prefers_html(request):
            return await browse.listing_page(request, path)
        raise
    try:
        name = path.rpartition("/")[2]
        inline = bool(request.query_string) and browse.wants_view(request)
        inline = inline and browse.viewable(name, opened.stat.size)
        return await file_response(request, opened, name, inline=inline)
    finally:
        await opened.close()


async def list_artifacts(request: web.Request) -> web.Response:
    path = confine(directory_path(request.query.get("path", "")), allow_root=True)
    if prefers_html(request):
        return await browse.listing_page(request, path)
    try:
        entries = await backend_of(request).list_dir(path)
    except (FileNotFoundError, NotADirectoryError):
        entries = []
    if len(entries) <= LISTING_PIECE:
        return web.Response(body=listing_json(entries), content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    for piece in listing_pieces(entries):
        await response.write(piece)  # waits while the client is slower than the encoding
    await response.write_eof()
    return response


LISTING_PIECE = 500
"""Entries encoded per piece of a streamed listing (about 40 KB). A folder of more is sent in
pieces (chunked) as they are encoded, so the body of 100,000 entries is never built whole and the
event loop serves other requests between pieces."""


def listing_json(entries: Sequence[Entry]) -> bytes:
    """MLflow's shape: basenames, sorted, `{}` when empty; file_size for every file."""
    return b"".join(listing_pieces(entries)) if entries else b"{}"


def listing_pieces(entries: Sequence[Entry]) -> Iterator[bytes]:
    """The listing JSON in pieces of LISTING_PIECE entries.

    Encoded by hand with the C string encoder: five times faster than json.dumps of dicts,
    which matters for folders of tens of thousands of files.
    """
    if not entries:
        yield b"{}"
        return
    head = '{"files": ['
    for start in range(0, len(entries), LISTING_PIECE):
        files = ", ".join(
            f'{{"path": {encode_string(name)}, "is_dir": true}}'
            if is_dir
            else f'{{"path": {encode_string(name)}, "is_dir": false, "file_size": {size}}}'
            for name, is_dir, size, _ in entries[start : start + LISTING_PIECE]
        )
        yield f"{head}{files}".encode()
        head = ", "
    yield b"]}"


async def delete(request: web.Request) -> web.Response:
    raw = directory_path(url_tail(request, ARTIFACTS_MARKER))
    if raw == "":
        raise InvalidParameter("Refusing to delete the artifact destination root")
    await backend_of(request).delete(confine(raw))
    return json_response({})


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/json"
    )


def routes(prefix: str) -> list[web.RouteDef]:
    base = f"{prefix}/mlflow-artifacts"
    return [
        web.get(f"{base}/artifacts", list_artifacts),
        web.get(f"{base}/artifacts/{ANY_PATH}", download),
        web.put(f"{base}/artifacts/{ANY_PATH}", upload),
        web.delete(f"{base}/artifacts/{ANY_PATH}", delete),
    ]
