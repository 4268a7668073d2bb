"""The model registry's routes (MLflow's ModelRegistryService), added under both API prefixes
by `gateway.tracking.routes.routes`."""

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.tracking import registry_handlers as h

ENDPOINTS: tuple[tuple[str, str, Handler], ...] = (
    ("POST", "registered-models/create", h.create_registered_model),
    ("GET", "registered-models/get", h.get_registered_model),
    ("POST", "registered-models/rename", h.rename_registered_model),
    ("PATCH", "registered-models/update", h.update_registered_model),
    ("DELETE", "registered-models/delete", h.delete_registered_model),
    ("GET", "registered-models/search", h.search_registered_models),
    ("POST", "registered-models/get-latest-versions", h.get_latest_versions),
    ("GET", "registered-models/get-latest-versions", h.get_latest_versions),
    ("POST", "registered-models/set-tag", h.set_registered_model_tag),
    ("DELETE", "registered-models/delete-tag", h.delete_registered_model_tag),
    ("POST", "registered-models/alias", h.set_alias),
    ("DELETE", "registered-models/alias", h.delete_alias),
    ("GET", "registered-models/alias", h.get_version_by_alias),
    ("POST", "model-versions/create", h.create_model_version),
    ("GET", "model-versions/get", h.get_model_version),
    ("PATCH", "model-versions/update", h.update_model_version),
    ("POST", "model-versions/transition-stage", h.transition_stage),
    ("DELETE", "model-versions/delete", h.delete_model_version),
    ("GET", "model-versions/search", h.search_model_versions),
    ("GET", "model-versions/get-download-uri", h.get_download_uri),
    ("POST", "model-versions/set-tag", h.set_model_version_tag),
    ("DELETE", "model-versions/delete-tag", h.delete_model_version_tag),
)


def root_routes() -> list[web.RouteDef]:
    """MLflow serves this one at the root, without an API prefix (its UI's download link)."""
    return [web.get("/model-versions/get-artifact", h.get_artifact)]
