"""The tracking REST API on the app: the subset of MLflow's REST the client uses, over the store of
the `tracking` package."""

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.observability.timed_store import timed
from gateway.settings import Settings
from gateway.tracking import artifact_handlers, artifact_reads, registry_routes
from gateway.tracking.keys import MODELS, REGISTRY, STORE
from gateway.tracking.landing import experiment_sections
from gateway.tracking.registry_landing import model_sections
from gateway.tracking.registry_places import PLACES, places_from
from gateway.tracking.routes import artifacts_only_routes, routes
from gateway.urls import API_PREFIXES
from gateway.web.landing import add_landing_source
from tracking.logged_models import ModelStore
from tracking.open import store_from_uri
from tracking.registry_store import RegistryStore

__all__ = ["STORE", "install", "install_artifacts_only"]


def install(app: web.Application, settings: Settings) -> None:
    """Add the tracking routes, and the store (opened and closed with the app)."""
    store = store_from_uri(settings.backend_store_uri, settings.default_artifact_root)
    app[STORE] = timed(store)  # each call's time in the metrics
    if isinstance(store, ModelStore):
        app[MODELS] = timed(store)
    if isinstance(store, RegistryStore):
        app[REGISTRY] = timed(store)
    app.cleanup_ctx.append(_store_context)
    app.cleanup_ctx.append(artifact_reads.session_context)
    app[PLACES] = places_from(settings)
    for prefix in API_PREFIXES:
        app.add_routes(routes(prefix))
        app.add_routes(routes(prefix, registry_routes.ENDPOINTS))
    app.add_routes(artifact_handlers.root_routes())
    app.add_routes(registry_routes.root_routes())
    add_landing_source(app, experiment_sections)
    add_landing_source(app, model_sections)


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
