"""Tracking: experiments and runs in SQLite or PostgreSQL, the subset of MLflow's REST the client
uses."""

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.landing import add_landing_source
from gateway.settings import Settings
from gateway.tracking.keys import STORE
from gateway.tracking.landing import experiment_sections
from gateway.tracking.postgres_conn import is_postgres_uri
from gateway.tracking.postgres_store import PostgresStore
from gateway.tracking.routes import artifacts_only_routes, routes
from gateway.tracking.sqlite_store import SqliteStore
from gateway.tracking.store import StoreError, TrackingStore

API_PREFIXES = ("/api/2.0", "/ajax-api/2.0")

__all__ = [
    "STORE",
    "StoreError",
    "TrackingStore",
    "install",
    "install_artifacts_only",
    "store_from_uri",
]


def store_from_uri(uri: str, default_artifact_root: str, *, create: bool = True) -> TrackingStore:
    """The (not yet opened) store a `--backend-store-uri` names."""
    if is_postgres_uri(uri):
        return PostgresStore(uri, default_artifact_root, create=create)
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    if scheme not in ("", "sqlite"):
        raise StoreError(
            f"Unsupported --backend-store-uri {scheme}://...: use sqlite:///path.db, a path, "
            "or postgresql://user:password@host:port/database"
        )
    return SqliteStore(uri, default_artifact_root, create=create)


def install(app: web.Application, settings: Settings) -> None:
    """Add the tracking routes, and the store (opened and closed with the app)."""
    app[STORE] = store_from_uri(settings.backend_store_uri, settings.default_artifact_root)
    app.cleanup_ctx.append(_store_context)
    for prefix in API_PREFIXES:
        app.add_routes(routes(prefix))
    add_landing_source(app, experiment_sections)


def install_artifacts_only(app: web.Application) -> None:
    """Tracking routes answer 404 ENDPOINT_NOT_FOUND, saying why (MLflow's 503 makes clients
    retry for minutes)."""
    for prefix in API_PREFIXES:
        app.add_routes(artifacts_only_routes(prefix))


async def _store_context(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    await store.open()
    yield
    await store.close()
