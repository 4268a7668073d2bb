"""The one app factory: the CLI and the tests both build the server with `make_app`."""

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from backends import Backend
from backends.mounts import open_mounted
from gateway import artifacts, auth, cors, meta, multipart, observability, sweep
from gateway.errors import error_middleware
from gateway.keys import BACKEND, SETTINGS
from gateway.limits import upload_limit_middleware
from gateway.settings import Settings
from gateway.urls import API_PREFIXES
from gateway.web import error_pages, landing

READ_BUFSIZE = 1 << 19
"""Request bytes buffered per connection (aiohttp pauses the socket past twice this): lets it keep
filling while a block is written. benchmarks, 1 GiB PUT: 256 KiB / 512 KiB / 1 MiB gave 795 /
855 / 870 MiB/s at 2.1 / 2.7 / 3.8 MB of RSS growth."""
log = logging.getLogger("artgw")


def make_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[observability.observe, error_middleware],
        client_max_size=64 << 20,
        handler_args={"read_bufsize": READ_BUFSIZE},
    )
    app[SETTINGS] = settings
    app[BACKEND] = open_backend(settings)
    app.cleanup_ctx.append(_backend_context)
    multipart.install(app)
    app.cleanup_ctx.append(sweep.sweeper)
    for prefix in API_PREFIXES:
        app.add_routes(artifacts.routes(prefix))
        app.add_routes(multipart.routes(prefix))
    app.add_routes(meta.routes())
    observability.install(app)
    landing.install(app)
    error_pages.install(app)
    from gateway.tracking import install as install_tracking
    from gateway.tracking import install_artifacts_only

    if settings.artifacts_only:
        install_artifacts_only(app)
    else:
        install_tracking(app, settings)
    _install_checks(app, settings)
    return app


def _install_checks(app: web.Application, settings: Settings) -> None:
    """Inside the error middleware: the upload limit, then authentication and authorization;
    outside it, CORS (so that refusals carry its headers too)."""
    if settings.max_upload_size > 0:
        app.middlewares.append(upload_limit_middleware(settings.max_upload_size))
    auth.install(app, settings)
    cors.install(app, settings.cors_origins)


def open_backend(settings: Settings) -> Backend:
    """The (not yet started) store of `settings`, each mount's calls limited to --store-timeout."""
    return open_mounted(
        settings.artifacts_destination,
        settings.storage_options,
        settings.mounts,
        fsync=settings.fsync,
        store_timeout=settings.store_timeout,
    )


async def _backend_context(app: web.Application) -> AsyncIterator[None]:
    backend = app[BACKEND]
    await backend.start()
    log.info("Serving artifacts from %s", backend.url)
    yield
    await backend.close()
