"""Tracking: experiments and runs in SQLite, the subset of MLflow's REST the client uses."""

from aiohttp import web

from gateway.settings import Settings


def install(app: web.Application, settings: Settings) -> None:
    """Add the tracking routes and their store to `app` (filled in by the tracking work, #3)."""
