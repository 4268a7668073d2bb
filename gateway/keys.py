"""Typed keys of the state an app carries."""

from aiohttp import web

from backends import Backend
from gateway.settings import Settings

BACKEND = web.AppKey("backend", Backend)
SETTINGS = web.AppKey("settings", Settings)

FAILURE = web.RequestKey("failure", Exception)
"""The exception the error middleware turned into an error response."""
SENDFILE_BYTES = web.RequestKey("sendfile_bytes", int)
"""Body bytes the kernel's sendfile() sent, past aiohttp's writer and its count."""
SPLICED_BYTES = web.RequestKey("spliced_bytes", int)
"""Request body bytes splice() moved from the socket, past aiohttp's count (gateway/receive.py)."""
REQUEST_ID = web.RequestKey("request_id", str)
