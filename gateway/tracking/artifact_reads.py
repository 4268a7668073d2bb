"""Reading artifacts for the tracking API: a listing or a file below a run's or a model's root,
from this server's destination or relayed from an allowed artifacts server.

`tracking.artifact_roots.locate` decides where (or refuses); this module only fetches. A remote
file is passed on piece by piece as it arrives (never staged), with the headers a download from
this server has; redirects are not followed, so an allowed server cannot send us elsewhere.
"""

import io
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from backends import Entry
from gateway.download import file_response
from gateway.errors import InvalidParameter, NotFound, ServiceUnavailable
from gateway.keys import BACKEND, SETTINGS
from gateway.mime import content_disposition, guess_mime_type
from tracking.artifact_roots import Where, allow_list, locate

SESSION = web.AppKey("artifact_reads_session", aiohttp.ClientSession)
RELAYED_HEADERS = (
    "Content-Length",
    "Content-Range",
    "Accept-Ranges",
    "ETag",
    "Last-Modified",
    "Cache-Control",
)
FORWARDED_HEADERS = ("Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since")
PASSED_STATUSES = (200, 206, 304, 412, 416)
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=300)


def where(request: web.Request, root: str, rel: str | None) -> Where:
    """Where `rel` below `root` is, if this server may read it (else PermissionDenied)."""
    settings = request.app[SETTINGS]
    allowed = allow_list(settings.default_artifact_root, settings.allowed_artifact_servers)
    return locate(root, rel, allowed)


async def list_entries(request: web.Request, place: Where) -> list[Entry]:
    """The children of a folder; none when it does not exist (as MLflow answers)."""
    if not place.base:
        try:
            return await request.app[BACKEND].list_dir(place.rel)
        except (FileNotFoundError, NotADirectoryError):
            return []
    url = f"{place.base}/mlflow-artifacts/artifacts"
    try:
        async with _get(request, url, params={"path": place.rel}) as response:
            await _raise_for(response, place)
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise _unreachable(place, exc) from exc
    files = body.get("files", []) if isinstance(body, dict) else []
    return [
        Entry(f["path"].rpartition("/")[2], bool(f.get("is_dir")), int(f.get("file_size") or 0))
        for f in files
        if isinstance(f, dict) and isinstance(f.get("path"), str)
    ]


async def send_file(request: web.Request, place: Where) -> web.StreamResponse:
    """The file at `place`, with the artifacts download's headers (MIME, Content-Disposition,
    nosniff, validators, Range)."""
    name = place.rel.rpartition("/")[2]
    if not name:
        raise InvalidParameter("Artifact path refers to a directory, not a file: ''")
    if place.base:
        return await _relay(request, place, name)
    opened = await request.app[BACKEND].open(place.rel)
    try:
        return await file_response(request, opened, name)
    finally:
        await opened.close()


async def store_file(request: web.Request, place: Where, body: bytes) -> None:
    """Write a (small) file at `place`: into this destination, or PUT to the artifacts server."""
    if not place.base:
        await request.app[BACKEND].write(place.rel, _once(body))
        return
    url = f"{place.base}/mlflow-artifacts/artifacts/{quote(place.rel)}"
    try:
        data = io.BytesIO(body)
        async with request.app[SESSION].put(url, data=data, allow_redirects=False) as response:
            await _raise_for(response, place)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _unreachable(place, exc) from exc


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _relay(request: web.Request, place: Where, name: str) -> web.StreamResponse:
    url = f"{place.base}/mlflow-artifacts/artifacts/{quote(place.rel)}"
    headers = {key: request.headers[key] for key in FORWARDED_HEADERS if key in request.headers}
    try:
        async with _get(request, url, headers=headers) as upstream:
            if upstream.status not in PASSED_STATUSES:
                await _raise_for(upstream, place)
            response = _relayed_head(upstream, name)
            await response.prepare(request)
            await _pass_body(request, upstream, response)
            return response
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _unreachable(place, exc) from exc


def _relayed_head(upstream: aiohttp.ClientResponse, name: str) -> web.StreamResponse:
    response = web.StreamResponse(status=upstream.status)
    for key in RELAYED_HEADERS:
        if key in upstream.headers:
            response.headers[key] = upstream.headers[key]
    if upstream.status in (200, 206):
        response.content_type = guess_mime_type(name)
        response.headers["Content-Disposition"] = content_disposition(name, "attachment")
        response.headers["X-Content-Type-Options"] = "nosniff"
    else:
        response.content_type = upstream.content_type
    return response


async def _pass_body(
    request: web.Request, upstream: aiohttp.ClientResponse, response: web.StreamResponse
) -> None:
    """Past the headers a failure can only cut the connection (the length promised is short)."""
    try:
        if request.method != "HEAD":
            async for piece in _pieces(upstream):
                await response.write(piece)
        await response.write_eof()
    except (aiohttp.ClientError, TimeoutError) as exc:
        if request.transport is not None:
            request.transport.close()
        raise ConnectionResetError(f"Relay of {upstream.url} failed midway: {exc}") from exc


async def _pieces(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    while True:
        piece, _ = await upstream.content.readchunk()
        if not piece:
            return
        yield piece


def _get(request: web.Request, url: str, **kwargs: Any) -> Any:
    """The session's GET (an async context manager of the response); no redirects followed."""
    return request.app[SESSION].get(url, allow_redirects=False, **kwargs)


async def _raise_for(response: aiohttp.ClientResponse, place: Where) -> None:
    if response.status < 300:
        return
    shown = f"'{place.rel}' on the artifacts server {place.base}"
    if response.status == 404:
        raise NotFound(f"No such artifact: {shown}")
    if response.status == 400:
        raise InvalidParameter(f"The artifacts server refused {shown}: {await _message(response)}")
    raise ServiceUnavailable(f"The artifacts server answered {response.status} for {shown}")


def _unreachable(place: Where, exc: BaseException) -> ServiceUnavailable:
    return ServiceUnavailable(f"The artifacts server {place.base} could not be read: {exc}")


async def _message(response: aiohttp.ClientResponse) -> str:
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return response.reason or ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""


async def session_context(app: web.Application) -> AsyncIterator[None]:
    """One client session for every relayed read, closed with the app."""
    app[SESSION] = aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False)
    yield
    await app[SESSION].close()
