"""Typed keys of the state an app carries."""

from aiohttp import web

from backends import Backend
from gateway.settings import Settings

BACKEND = web.AppKey("backend", Backend)
SETTINGS = web.AppKey("settings", Settings)
