"""The one observing middleware: request id, in-flight count, and per request its route, method,
status, latency and bytes each way, measured to the last byte sent."""

import asyncio
import time

from aiohttp import web

from gateway.errors import Handler, store_error_kind
from gateway.keys import FAILURE, SENDFILE_BYTES, SPLICED_BYTES
from gateway.observability import request_id
from gateway.observability.recorder import recorder

METHODS = {"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"}
CLIENT_GONE = 499
"""The status recorded when the client left before its answer was complete (nginx's)."""


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request_id.from_request(request)
    request[request_id.KEY] = rid
    token = request_id.current.set(rid)
    samples = recorder()
    started = time.perf_counter()
    status = 500
    response: web.StreamResponse | None = None
    samples.started()
    try:
        response = await handler(request)
        status = response.status
        # sent here, not after the middlewares, so that the time and bytes count all of it
        await response.prepare(request)
        await response.write_eof()
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except (asyncio.CancelledError, ConnectionError):
        status = CLIENT_GONE
        raise
    finally:
        request_id.current.reset(token)
        failure = request.get(FAILURE)
        method = request.method
        samples.finished(
            (route_of(request), method if method in METHODS else "other"),
            status,
            time.perf_counter() - started,
            getattr(request.content, "total_bytes", 0) + request.get(SPLICED_BYTES, 0),
            bytes_sent(request, response),
            store_error_kind(failure) if failure is not None else None,
        )


def route_of(request: web.BaseRequest) -> str:
    """The route template (`/api/2.0/mlflow-artifacts/artifacts/{path}`): bounded, unlike paths."""
    match_info = getattr(request, "match_info", None)
    resource = match_info.route.resource if match_info is not None else None
    return resource.canonical if resource is not None else "unmatched"


def bytes_sent(request: web.BaseRequest, response: web.StreamResponse | None) -> int:
    """Headers and body as written, plus what the kernel's sendfile() sent past the writer."""
    written = response.body_length if response is not None else 0
    return written + request.get(SENDFILE_BYTES, 0)
