"""The registry's part of the landing page: recent registered models, each with its newest
versions (stage and aliases beside them) linked to their files."""

from urllib.parse import quote, urlsplit

from aiohttp import web

from gateway.tracking.keys import REGISTRY
from gateway.tracking.registry_places import places_of
from gateway.web.landing import Link, Section, artifact_listing_href
from tracking import registry_search as rsearch
from tracking.registry import ModelVersion
from tracking.registry_sources import locate
from tracking.store import Clause

MAX_MODELS = 20
MAX_VERSIONS = 20
"""Per model; the landing page is not paginated."""


async def model_sections(app: web.Application) -> list[Section]:
    store = app.get(REGISTRY)
    if store is None:
        return []
    models = await store.search_registered_models(
        rsearch.parse_search(
            rsearch.MODELS, None, ["last_updated_timestamp DESC"], MAX_MODELS, None
        )
    )
    sections = []
    for model in models.items:
        query = rsearch.RegistrySearch(
            clauses=(Clause("attribute", "name", "=", model.name),),
            order_by=rsearch.parse_order_by(["version_number DESC"], rsearch.VERSIONS),
            max_results=MAX_VERSIONS,
        )
        versions = await store.search_model_versions(query)
        links = [
            Link(f"version {v.version}", version_href(app, v), note(v)) for v in versions.items
        ]
        sections.append(Section(f"Model {model.name}", links, empty="No versions yet."))
    return sections


def note(version: ModelVersion) -> str:
    parts = [f"@{alias}" for alias in version.aliases]
    if version.current_stage != "None":
        parts.append(version.current_stage)
    return " ".join(parts)


def version_href(app: web.Application, version: ModelVersion) -> str:
    """The listing of the version's files when this server holds them, the artifact server's
    listing when another one does, else the version's JSON."""
    location = locate(version.download_uri, places_of(app))
    if location is not None and not location.remote:
        return artifact_listing_href(location.path)
    if location is not None and urlsplit(location.remote).scheme in ("http", "https"):
        return location.remote.rstrip("/") + "/" + quote(location.path) + "/"
    name, number = quote(version.name), version.version
    return f"api/2.0/mlflow/model-versions/get?name={name}&version={number}"
