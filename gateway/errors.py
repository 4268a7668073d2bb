"""The single place where failures become HTTP: MLflow's JSON error shape and status table.

Handlers raise `ApiError` subclasses (which carry their status) or let the backends' built-in
file errors through; `error_middleware` renders both, and turns aiohttp's own 404/405 into
the same shape. A browser's GET (one that prefers text/html) gets the same status and message
as a small HTML page instead, from the renderer the browser UI installs (`HTML_ERRORS`); API
clients always get the JSON.
"""

import errno
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from backends import DestinationError, UnsafePathError
from gateway.keys import FAILURE
from gateway.unsupported import not_found_message
from tracking import errors as tracking_errors

log = logging.getLogger("artgw")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    status = 400
    error_code = "INVALID_PARAMETER_VALUE"

    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class InvalidParameter(ApiError):
    pass


class BadRequest(ApiError):
    error_code = "BAD_REQUEST"


class BadDigest(ApiError):
    """An upload's body does not match the digest its headers claim; nothing was stored."""

    error_code = "BAD_DIGEST"


class AlreadyExists(ApiError):
    error_code = "RESOURCE_ALREADY_EXISTS"


class NotFound(ApiError):
    status = 404
    error_code = "RESOURCE_DOES_NOT_EXIST"


class EndpointNotFound(ApiError):
    status = 404
    error_code = "ENDPOINT_NOT_FOUND"


class Conflict(ApiError):
    status = 409
    error_code = "RESOURCE_CONFLICT"


class MethodNotAllowed(ApiError):
    status = 405
    error_code = "BAD_REQUEST"


class PermissionDenied(ApiError):
    status = 403
    error_code = "PERMISSION_DENIED"


class RangeNotSatisfiable(ApiError):
    status = 416
    error_code = "INVALID_PARAMETER_VALUE"


class NotImplementedByStore(ApiError):
    status = 501
    error_code = "NOT_IMPLEMENTED"


class StoreTimeout(ApiError):
    status = 504
    error_code = "DEADLINE_EXCEEDED"


class ServiceUnavailable(ApiError):
    """A service the gateway depends on (the tracking database) cannot be reached now."""

    status = 503
    error_code = "TEMPORARILY_UNAVAILABLE"


class BadGateway(ApiError):
    """The store answered with a failure of its own (a 5xx other than 503), after its retries.
    IO_ERROR is MLflow's code for a storage I/O failure; it has no status of its own there."""

    status = 502
    error_code = "IO_ERROR"


class InsufficientStorage(ApiError):
    """The destination is full (ENOSPC) or over quota (EDQUOT): nothing was stored."""

    status = 507
    error_code = "RESOURCE_EXHAUSTED"


class InternalError(ApiError):
    status = 500
    error_code = "INTERNAL_ERROR"


FULL = {errno.ENOSPC, errno.EDQUOT}
UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETRESET}
"""How backends report a store they cannot reach or that dropped the connection (plain OSErrors:
the ConnectionError family means the client went away)."""
BUSY = errno.EBUSY
"""A store that answered 503 or 429 (busy, throttling, down for now) after its SDK's retries."""
STORE_FAILED = errno.EREMOTEIO
"""A store that answered another 5xx (its internal error, a bad gateway of its own)."""
CLIENT_CAUSED = (
    ConnectionError,  # the client went away
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    FileExistsError,
)

ERRNO_ERRORS: dict[int, tuple[type[ApiError], str]] = {
    errno.ENAMETOOLONG: (InvalidParameter, "Artifact path is too long: '{path}'"),
    errno.EINVAL: (InvalidParameter, "The store rejected the request on '{path}': {reason}"),
    **dict.fromkeys(
        FULL, (InsufficientStorage, "The artifact store is full; '{path}' was not stored")
    ),
    **dict.fromkeys(
        UNREACHABLE, (ServiceUnavailable, "The artifact store cannot be reached: {reason}")
    ),
    BUSY: (ServiceUnavailable, "The artifact store is unavailable for now: {reason}"),
    STORE_FAILED: (BadGateway, "The artifact store failed on '{path}': {reason}"),
}
"""Built-in file errors by errno -> the API error a client sees (the exception classes, tried
first, are in `from_os_error`); anything else is a 500."""
STORE_ERROR_KINDS = {
    **dict.fromkeys(FULL, "full"),
    **dict.fromkeys(UNREACHABLE, "unreachable"),
    BUSY: "busy",
    STORE_FAILED: "failed",
}
"""Store failures by errno -> their kind in the metrics."""


def store_error_kind(exc: BaseException) -> str | None:
    """A store failure's kind for the metrics (None: not the store's fault, or not the store)."""
    if not isinstance(exc, OSError) or isinstance(exc, CLIENT_CAUSED):
        return None
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, PermissionError):
        return "denied"
    if exc.errno in (errno.ENAMETOOLONG, errno.EINVAL):
        return None
    return STORE_ERROR_KINDS.get(exc.errno or 0, "io")


def from_os_error(exc: OSError) -> ApiError:
    """Built-in file errors from a backend -> the API error a client should see."""
    path = exc.filename if isinstance(exc.filename, str) else ""
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"No such artifact: '{path}'")
    if isinstance(exc, IsADirectoryError):
        return InvalidParameter(f"Artifact path refers to a directory, not a file: '{path}'")
    if isinstance(exc, NotADirectoryError | FileExistsError):
        return InvalidParameter(f"A parent of '{path}' is a file, not a directory")
    if isinstance(exc, PermissionError):
        return PermissionDenied(f"Access denied to '{path}': {exc.strerror}")
    if isinstance(exc, TimeoutError):
        return StoreTimeout(f"The artifact store timed out on '{path}'")
    if exc.errno in ERRNO_ERRORS:
        kind, message = ERRNO_ERRORS[exc.errno]
        return kind(message.format(path=path, reason=exc.strerror))
    return InternalError(f"Storage error on '{path}': {exc.strerror or exc}")


TRACKING_ERRORS: dict[type[tracking_errors.TrackingError], type[ApiError]] = {
    tracking_errors.NotFound: NotFound,
    tracking_errors.AlreadyExists: AlreadyExists,
    tracking_errors.InvalidValue: InvalidParameter,
    tracking_errors.Conflict: Conflict,
    tracking_errors.Forbidden: PermissionDenied,
    tracking_errors.Unavailable: ServiceUnavailable,
}
"""The tracking store's exceptions -> the API error a client sees (most specific class first)."""


def from_tracking_error(exc: tracking_errors.TrackingError) -> ApiError:
    for kind in type(exc).__mro__:
        if kind in TRACKING_ERRORS:
            return TRACKING_ERRORS[kind](exc.message)
    return InternalError(exc.message)


def to_api_error(exc: BaseException) -> ApiError | None:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, tracking_errors.TrackingError):
        return from_tracking_error(exc)
    if isinstance(exc, UnsafePathError):
        return InvalidParameter(f"Invalid path: {exc.reason}: '{exc.path}'")
    if isinstance(exc, DestinationError):
        return InvalidParameter(str(exc))
    if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
        return from_os_error(exc)
    return None


def error_response(error: ApiError) -> web.Response:
    body = {"error_code": error.error_code, "message": error.message, **error.extra}
    return web.Response(
        status=error.status,
        text=json.dumps(body),
        content_type="application/json",
    )


HtmlErrors = Callable[[web.Request, ApiError], web.Response | None]
HTML_ERRORS: web.AppKey[HtmlErrors] = web.AppKey("html_errors")
"""The browser UI's renderer of error pages (gateway/web/error_pages.py): a page for a browser's
request, None for an API client's."""


def render_error(request: web.Request, error: ApiError) -> web.Response:
    html = request.app.get(HTML_ERRORS)
    if html is not None and request.method in ("GET", "HEAD"):
        page = html(request, error)
        if page is not None:
            return page
    return error_response(error)


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> ApiError:
    if exc.status == 404:
        return EndpointNotFound(not_found_message(request.method, request.path))
    if exc.status == 405:
        return MethodNotAllowed(f"Method {request.method} is not allowed on {request.path}")
    if exc.status == 413:
        error = BadRequest("Request body too large")
        error.status = 413
        return error
    error = BadRequest(exc.reason or "Bad request")
    error.status = exc.status
    return error


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = render_error(request, _from_http_exception(request, exc))
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception as exc:
        request[FAILURE] = exc
        error = to_api_error(exc)
        if error is None:
            if isinstance(exc, ConnectionError):
                raise
            log.exception("Unhandled error on %s %s", request.method, request.path)
            error = InternalError("Internal server error")
        elif error.status >= 500:
            log.error("%s %s: %s", request.method, request.path, error.message)
        return render_error(request, error)
