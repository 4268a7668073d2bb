"""Transfers straight between the client and the store, as MLflow does them (API.md 1.6).

`POST mpu/{create,complete,abort}/<dir>` runs a multipart upload whose parts the client PUTs to
presigned store URLs; `GET presigned/<path>` gives a URL the client downloads ranges from. Only
with `--presigned-urls` and a store that can sign (`Capabilities.native_multipart`, `.presign`);
otherwise each answers MLflow's 501, and the client falls back to the proxied PUT/GET.
"""

import re
from typing import Any

from aiohttp import web

from backends import Backend, confine
from backends.paths import join
from gateway.artifacts import json_response
from gateway.errors import InvalidParameter, NotImplementedByStore
from gateway.keys import BACKEND, SETTINGS
from gateway.observability.metrics import multipart_upload_closed, multipart_upload_opened
from gateway.request_parts import backend_of, json_object
from gateway.urls import PRESIGNED_MARKER, directory_path, mpu_marker, url_tail

MAX_PARTS = 10_000
NO_MPU = "Multipart upload is not supported for the current artifact repository"
NO_DOWNLOAD = "Multipart download is not supported for the current artifact repository"


def uploads_enabled(app: web.Application, path: str | None = None) -> bool:
    """For `path`, or (None) for any of the mounted stores (what server-info advertises)."""
    return app[SETTINGS].presigned_urls and capable(app[BACKEND], path, "native_multipart")


def downloads_enabled(app: web.Application, path: str | None = None) -> bool:
    return app[SETTINGS].presigned_urls and capable(app[BACKEND], path, "presign")


def capable(backend: Backend, path: str | None, flag: str) -> bool:
    """Whether the store serving `path` (None: any of the stores) has capability `flag`."""
    if path is None:
        return any(getattr(c, flag) for c in backend.all_capabilities())
    return bool(getattr(backend.capabilities_at(path), flag))


def field(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidParameter(f"Missing or invalid '{name}' in the request body")
    return value


def upload_target(request: web.Request, action: str, body: dict[str, Any]) -> str:
    """The URL names the folder; `path` the file, whose (Windows-aware) basename is kept."""
    folder = directory_path(url_tail(request, mpu_marker(action)))
    name = re.split(r"[\\/]", field(body, "path", str))[-1]
    if name in ("", ".", ".."):
        raise InvalidParameter(f"Invalid file name in 'path': '{name}'")
    return confine(join(confine(folder, allow_root=True), name))


async def mpu_start(request: web.Request, action: str) -> tuple[str, dict[str, Any]]:
    if not uploads_enabled(request.app):
        raise NotImplementedByStore(NO_MPU)
    body = await json_object(request, typed=True)
    path = upload_target(request, action, body)
    if not uploads_enabled(request.app, path):
        raise NotImplementedByStore(NO_MPU)
    return path, body


async def create(request: web.Request) -> web.Response:
    path, body = await mpu_start(request, "create")
    num_parts = int_like(body.get("num_parts"))
    if not 1 <= num_parts <= MAX_PARTS:
        raise InvalidParameter(f"'num_parts' must be between 1 and {MAX_PARTS}")
    ttl = request.app[SETTINGS].presigned_url_ttl
    upload = await backend_of(request).create_multipart(path, num_parts, ttl)
    multipart_upload_opened()
    credentials = [
        {"url": part.url, "part_number": part.part_number, "headers": part.headers}
        for part in upload.parts
    ]
    answer: dict[str, Any] = {"credentials": credentials}
    if upload.upload_id is not None:
        answer["upload_id"] = upload.upload_id
    return json_response(answer)


def int_like(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise InvalidParameter("'num_parts' must be an integer") from None


async def complete(request: web.Request) -> web.Response:
    path, body = await mpu_start(request, "complete")
    parts = []
    for part in field(body, "parts", list):
        if not isinstance(part, dict):
            raise InvalidParameter("Each of 'parts' must be an object")
        parts.append((field(part, "part_number", int), field(part, "etag", str)))
    upload_id = body.get("upload_id")
    await backend_of(request).complete_multipart(path, upload_id, sorted(parts))
    multipart_upload_closed()
    return json_response({})


async def abort(request: web.Request) -> web.Response:
    path, body = await mpu_start(request, "abort")
    await backend_of(request).abort_multipart(path, body.get("upload_id"))
    multipart_upload_closed()
    return json_response({})


async def presigned(request: web.Request) -> web.Response:
    if not downloads_enabled(request.app):
        raise NotImplementedByStore(NO_DOWNLOAD)
    path = confine(url_tail(request, PRESIGNED_MARKER))
    if not downloads_enabled(request.app, path):
        raise NotImplementedByStore(NO_DOWNLOAD)
    ttl = request.app[SETTINGS].presigned_url_ttl
    link = await backend_of(request).presign_download(path, ttl)
    return json_response({"url": link.url, "headers": link.headers, "file_size": link.size})
