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
REQUEST_ID = web.RequestKey("request_id", str)
