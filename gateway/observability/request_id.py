"""Request ids: taken from the client's `X-Request-Id` when it is a sane token, else made here;
sent back on every response and attached to every log line written while the request runs."""

import contextvars
import logging
import os
import re

from aiohttp import web

from gateway.keys import REQUEST_ID

HEADER = "X-Request-Id"
KEY = REQUEST_ID
_SANE = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
"""What is echoed: no spaces or controls (it goes into headers and log lines), bounded."""

current: contextvars.ContextVar[str] = contextvars.ContextVar("artgw_request_id", default="")


def from_request(request: web.BaseRequest) -> str:
    given = request.headers.get(HEADER)
    return given if given is not None and is_sane(given) else os.urandom(16).hex()


def is_sane(given: str) -> bool:
    """Whether a client's id is echoed (gateway/fastlane.py asks too)."""
    return _SANE.match(given) is not None


def of(request: web.BaseRequest) -> str:
    return request.get(KEY, "")


async def stamp(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every response the app sends names its request."""
    request_id = of(request)
    if request_id:
        response.headers[HEADER] = request_id


class RequestIdFilter(logging.Filter):
    """Gives each record `request_id` (empty outside a request) for the formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current.get()
        return True
