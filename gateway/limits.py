"""`--max-upload-size`: a request whose declared body is larger is answered 413 before a byte of
it is read; with a limit set, a body of undeclared length (chunked) is refused with 411."""

from typing import Any

from aiohttp import web

from gateway.errors import ApiError, Handler


class TooLarge(ApiError):
    status = 413
    error_code = "BAD_REQUEST"


class LengthRequired(ApiError):
    status = 411
    error_code = "BAD_REQUEST"


def upload_limit_middleware(limit: int) -> Any:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists:
            length = request.content_length
            if length is None:
                raise LengthRequired(
                    "Content-Length is required: this server limits uploads (--max-upload-size)"
                )
            if length > limit:
                raise TooLarge(
                    f"Request body too large: {length} bytes, the limit (--max-upload-size) "
                    f"is {limit} bytes"
                )
        return await handler(request)

    return check
