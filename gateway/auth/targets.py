"""Finding what a request acts on: its targets, read from the URL, the query or the JSON body.

A field that is missing (or a body that is not JSON) gives the target `EVERYTHING`, which only an
`all = true` grant covers: the handler would refuse the request anyway, and a caller without a
broad grant learns nothing from the difference.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from backends import confine
from gateway.auth import permissions as kinds
from gateway.auth.permissions import ANY, EVERYTHING, Target
from gateway.presign import upload_target
from gateway.request_parts import json_object
from gateway.urls import ARTIFACTS_MARKER, PRESIGNED_MARKER, directory_path, url_tail
from tracking.uris import destination_path

TargetsOf = Callable[[web.Request], Awaitable[list[Target]]]
BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


async def request_values(request: web.Request) -> dict[str, Any]:
    """The request's fields as the tracking handlers read them: the query of a GET, else the JSON
    body (read once: aiohttp keeps it for the handler), with the query as a fallback."""
    values: dict[str, Any] = {key: request.query.getall(key) for key in request.query}
    if request.method in BODY_METHODS and request.body_exists:
        try:
            body = json.loads(await request.read() or b"{}")
            body = json.loads(body) if isinstance(body, str) else body
        except (ValueError, RecursionError):
            body = None
        if isinstance(body, dict):
            values.update({key: _as_list(value) for key, value in body.items()})
    return values


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _texts(values: list[Any]) -> list[str]:
    return [
        str(v) for v in values if isinstance(v, str | int) and not isinstance(v, bool) and v != ""
    ]


# -- factories: each returns the function that finds one route's targets -----------------------


def fields(kind: str, *names: str, default: str | None = None, many: bool = False) -> TargetsOf:
    """The first of `names` present (all its values when `many`), as targets of `kind`."""

    async def find(request: web.Request) -> list[Target]:
        values = await request_values(request)
        for name in names:
            found = _texts(values.get(name, []))
            if found:
                return [Target(kind, v) for v in (found if many else found[:1])]
        return [Target(kind, default)] if default is not None else [EVERYTHING]

    return find


def query(kind: str, *names: str) -> TargetsOf:
    """Like `fields`, from the query only (for routes whose body is a file)."""

    async def find(request: web.Request) -> list[Target]:
        for name in names:
            if request.query.get(name):
                return [Target(kind, request.query[name])]
        return [EVERYTHING]

    return find


def match(kind: str) -> TargetsOf:
    """The first placeholder of the route's path (`logged-models/{model_id}/...`)."""

    async def find(request: web.Request) -> list[Target]:
        values = list(request.match_info.values())
        return [Target(kind, values[0])] if values and values[0] else [EVERYTHING]

    return find


def both(*finders: TargetsOf) -> TargetsOf:
    async def find(request: web.Request) -> list[Target]:
        return [target for finder in finders for target in await finder(request)]

    return find


async def everything(request: web.Request) -> list[Target]:
    return [EVERYTHING]


async def anything(request: web.Request) -> list[Target]:
    return [ANY]


async def nothing(request: web.Request) -> list[Target]:
    return []


async def version_source(request: web.Request) -> list[Target]:
    """What a new model version points at: it becomes readable through the registered model,
    so the caller must be able to read it already (a run, a logged model, an artifact path)."""
    values = await request_values(request)
    found = [Target(kinds.RUN, v) for v in _texts(values.get("run_id", []))]
    found += [Target(kinds.LOGGED_MODEL, v) for v in _texts(values.get("model_id", []))]
    for source in _texts(values.get("source", [])):
        found.append(source_target(source))
    return found or [EVERYTHING]


def source_target(source: str) -> Target:
    scheme, _, rest = source.partition(":")
    head = rest.lstrip("/").split("/", 1)[0]
    if scheme == "runs" and head:
        return Target(kinds.RUN, head)
    if scheme == "models" and head.startswith("m-"):
        return Target(kinds.LOGGED_MODEL, head)
    if scheme == "models" and head:
        return Target(kinds.REGISTERED_MODEL, head.split("@", 1)[0])
    path = destination_path(source)
    return Target(kinds.ARTIFACT, path) if path else EVERYTHING


# -- artifact paths, normalised exactly as the handlers do it -----------------------------------


async def artifact_url_path(request: web.Request) -> list[Target]:
    raw = directory_path(url_tail(request, ARTIFACTS_MARKER))
    return [Target(kinds.ARTIFACT, confine(raw, allow_root=True))]


async def artifact_query_path(request: web.Request) -> list[Target]:
    raw = directory_path(request.query.get("path", ""))
    return [Target(kinds.ARTIFACT, confine(raw, allow_root=True))]


def mpu_path(action: str) -> TargetsOf:
    """The file an `mpu/<action>/<folder>` request writes: the folder joined with the body's
    `path` basename, computed by the handler's own function."""

    async def find(request: web.Request) -> list[Target]:
        return [
            Target(
                kinds.ARTIFACT,
                upload_target(request, action, await json_object(request, typed=True)),
            )
        ]

    return find


async def presigned_path(request: web.Request) -> list[Target]:
    return [Target(kinds.ARTIFACT, confine(url_tail(request, PRESIGNED_MARKER)))]
