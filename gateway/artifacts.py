"""Handlers of the mlflow-artifacts REST API: upload, download, list, delete (mpu/ and presigned/
are in gateway/presign.py)."""

import json
from collections.abc import AsyncIterable, Iterator, Mapping
from json.encoder import encode_basestring_ascii as encode_string

from aiohttp import web

from backends import Backend, Columns, confine
from backends.streams import WholeBody, received_pieces
from gateway.archive import archive_response
from gateway.digests import (
    check_whole,
    claimed_digests,
    field_value,
    listing_with_digests,
    verified,
)
from gateway.download import file_response
from gateway.errors import InvalidParameter, NotFound
from gateway.request_parts import backend_of
from gateway.urls import ANY_PATH, ARTIFACTS, ARTIFACTS_MARKER, directory_path, url_tail
from gateway.web import browse
from gateway.web.negotiation import prefers_html


async def upload(request: web.Request) -> web.Response:
    path = upload_path(url_tail(request, ARTIFACTS_MARKER))
    claimed = claimed_digests(request.headers)
    whole = await whole_body(request)
    backend = backend_of(request)
    if whole is not None:
        await store_whole(backend, path, whole, claimed)
    else:
        body: AsyncIterable[bytes] = received_pieces(request.content)
        if claimed:
            body = verified(body, claimed)
        await backend.write(path, body, digests=field_value(claimed) if claimed else None)
    return web.Response(body=UPLOADED, content_type=UPLOADED_TYPE)


def upload_path(raw: str) -> str:
    """The confined path of an upload to `raw` (the decoded URL tail); InvalidParameter or
    UnsafePathError for one that cannot be a file."""
    if raw == "" or raw.endswith("/"):
        raise InvalidParameter("Artifact path must include a filename (cannot end with '/').")
    return confine(raw)


async def store_whole(
    backend: Backend, path: str, whole: WholeBody, claimed: Mapping[str, bytes]
) -> None:
    """A body received whole, its digests checked first (nothing is stored if they differ).
    The fast lane's uploads (gateway/fastput.py) are stored here too."""
    if claimed:
        check_whole(whole.pieces, claimed)
    await backend.write(path, whole, digests=field_value(claimed) if claimed else None)


WHOLE_BODY = 64 << 10
"""A body declared up to this size is read whole before the store is called (`WholeBody`): no
stream of pieces, and its digests checked first. A streamed body that fits one block is
gathered whole before its write too (`LocalBackend.write`): this holds no more."""
UPLOADED = b"{}"
UPLOADED_TYPE = "application/json"
"""An upload's answer (the fast lane sends it too)."""


async def whole_body(request: web.Request) -> WholeBody | None:
    """The request body, read whole if it is declared small (it has usually all arrived when the
    handler starts); else None: streamed. A client that leaves midway fails the read."""
    length = request.content_length
    if length is None or length > WHOLE_BODY:
        return None
    content = request.content
    return WholeBody([content.read_nowait() if content.is_eof() else await content.read()])


async def download(request: web.Request) -> web.StreamResponse:
    """A file; for a browser (`prefers_html`) a directory gets its HTML listing instead of a 400."""
    raw = url_tail(request, ARTIFACTS_MARKER)
    if request.query_string and "archive" in request.query:
        path = confine(directory_path(raw), allow_root=True)
        return await archive_response(request, backend_of(request), path, request.query["archive"])
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
    except NotADirectoryError:  # below a file: nothing exists there (S3 and MLflow say 404)
        raise NotFound(f"No such artifact: '{path}'") from None
    try:
        name = path.rpartition("/")[2]
        inline = bool(request.query_string) and browse.wants_view(request)
        inline = inline and browse.viewable(name, opened.stat.size)
        return await file_response(request, opened, name, inline=inline)
    finally:
        await opened.close()


async def list_artifacts(request: web.Request) -> web.StreamResponse:
    path = confine(directory_path(request.query.get("path", "")), allow_root=True)
    if "archive" in request.query:
        return await archive_response(request, backend_of(request), path, request.query["archive"])
    if prefers_html(request):
        return await browse.listing_page(request, path)
    backend = backend_of(request)
    if request.query.get("digests") in ("1", "true"):
        return await _listing_with_digests(backend, path)
    try:
        listing = await backend.listing(path)
    except (FileNotFoundError, NotADirectoryError):
        listing = Columns.of([])
    if len(listing.names) <= LISTING_PIECE:
        return web.Response(body=listing_json(listing), content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    for piece in listing_pieces(listing):
        await response.write(piece)  # waits while the client is slower than the encoding
    await response.write_eof()
    return response


async def _listing_with_digests(backend: Backend, path: str) -> web.Response:
    try:
        entries = await backend.list_dir(path)
    except (FileNotFoundError, NotADirectoryError):
        entries = []
    if entries:
        body = await listing_with_digests(backend, path, entries)
    else:
        body = listing_json(Columns.of(entries))
    return web.Response(body=body, content_type="application/json")


LISTING_PIECE = 500
"""Entries encoded per piece of a streamed listing (about 30 KB). A folder of more is sent in
pieces (chunked) as they are encoded, so the body of 100,000 entries is never built whole and the
event loop serves other requests between pieces."""


def listing_json(listing: Columns) -> bytes:
    """MLflow's shape: basenames, sorted, `{}` when empty; file_size for every file."""
    return b"".join(listing_pieces(listing)) if listing.names else b"{}"


def listing_pieces(listing: Columns) -> Iterator[bytes]:
    """The listing JSON in pieces of LISTING_PIECE entries.

    Encoded by hand with the C string encoder (names escaped as `json.dumps` escapes them):
    five times faster than json.dumps of dicts, which matters for folders of tens of thousands
    of files."""
    if not listing.names:
        yield b"{}"
        return
    head = '{"files": ['
    for start in range(0, len(listing.names), LISTING_PIECE):
        stop = start + LISTING_PIECE
        files = _files_json(
            listing.names[start:stop], listing.is_dir[start:stop], listing.sizes[start:stop]
        )
        yield f"{head}{files}".encode()
        head = ", "
    yield b"]}"


def _files_json(names: list[str], dirs: list[bool], sizes: list[int]) -> str:
    """The `files` items of these entries; without folders one format per entry, no branch."""
    escaped = map(encode_string, names)
    if not any(dirs):
        return ", ".join(
            [
                f'{{"path": {name}, "is_dir": false, "file_size": {size}}}'
                for name, size in zip(escaped, sizes, strict=True)
            ]
        )
    return ", ".join(
        [
            f'{{"path": {name}, "is_dir": true}}'
            if is_dir
            else f'{{"path": {name}, "is_dir": false, "file_size": {size}}}'
            for name, is_dir, size in zip(escaped, dirs, sizes, strict=True)
        ]
    )


async def delete(request: web.Request) -> web.Response:
    raw = directory_path(url_tail(request, ARTIFACTS_MARKER))
    if raw == "":
        raise InvalidParameter("Refusing to delete the artifact destination root")
    path = confine(raw)
    backend = backend_of(request)
    if backend.is_root(path):
        raise InvalidParameter(f"Refusing to delete '{path}': it is or holds a mount point")
    await backend.delete(path)
    return json_response({})


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/json"
    )


def routes(prefix: str) -> list[web.RouteDef]:
    listing = f"{prefix}{ARTIFACTS}"
    return [
        web.get(listing, list_artifacts),
        web.get(f"{listing}/{ANY_PATH}", download),
        web.put(f"{listing}/{ANY_PATH}", upload),
        web.delete(f"{listing}/{ANY_PATH}", delete),
    ]
