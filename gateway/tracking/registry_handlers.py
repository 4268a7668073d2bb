"""Handlers of the model registry REST API (MLflow's ModelRegistryService): parse and check the
request, call the store, answer MLflow's JSON. Sources of new versions are checked in
tracking/registry_sources.py; `get_artifact` reads only where that module allows."""

from typing import Any

from aiohttp import web

from gateway.artifacts import json_response
from gateway.errors import InvalidParameter, PermissionDenied
from gateway.tracking import artifact_reads
from gateway.tracking import registry_wire as wire
from gateway.tracking.handlers import page_body, store_of
from gateway.tracking.keys import REGISTRY
from gateway.tracking.registry_places import places_of
from gateway.tracking.validation import (
    Schema,
    Spec,
    boolean,
    integer,
    invalid,
    listed,
    record,
    request_fields,
    string,
)
from tracking import registry_search as rsearch
from tracking import registry_sources as sources
from tracking.errors import InvalidValue, NotFound
from tracking.registry import (
    ModelVersion,
    NewVersion,
    canonical_stage,
    check_alias,
    check_name,
    check_tag,
    check_version,
)
from tracking.registry_store import RegistryStore
from tracking.store import Tag
from tracking.uris import append_path

MAX_TAGS = 100


def version_value(path: str, value: Any) -> int:
    """Clients send the version as a string; a JSON integer is taken too."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise invalid(path, value, "a version number")
    return check_version(value, path)


def tag_value(path: str, value: Any) -> str:
    return string(path, value)


NAME = {"name": Spec(string, required=True)}
VERSION = {**NAME, "version": Spec(version_value, required=True)}
TAG = record(Tag, {"key": Spec(string, required=True), "value": Spec(tag_value)})
TAGS = listed(TAG, MAX_TAGS)
SEARCH: Schema = {
    "filter": Spec(string),
    "max_results": Spec(integer),
    "order_by": listed(string),
    "page_token": Spec(string),
}


def registry_of(request: web.Request) -> RegistryStore:
    return request.app[REGISTRY]


async def fields_of(request: web.Request, schema: Schema) -> dict[str, Any]:
    fields = await request_fields(request, schema)
    if "name" in fields:
        check_name(fields["name"])
    return fields


def tags_of(fields: dict[str, Any]) -> list[Tag]:
    tags = [check_tag(Tag(t.key, t.value or "")) for t in fields.get("tags", [])]
    return list({tag.key: tag for tag in tags}.values())  # the last value of a key wins


def version_body(version: ModelVersion) -> web.Response:
    return json_response({"model_version": wire.model_version(version)})


# -- registered models -------------------------------------------------------------------------


async def create_registered_model(request: web.Request) -> web.Response:
    schema = {**NAME, "tags": TAGS, "description": Spec(string)}
    fields = await fields_of(request, schema)
    model = await registry_of(request).create_registered_model(
        fields["name"], tags_of(fields), fields.get("description")
    )
    return json_response({"registered_model": wire.registered_model(model)})


async def get_registered_model(request: web.Request) -> web.Response:
    fields = await fields_of(request, NAME)
    model = await registry_of(request).get_registered_model(fields["name"])
    return json_response({"registered_model": wire.registered_model(model)})


async def rename_registered_model(request: web.Request) -> web.Response:
    fields = await fields_of(request, {**NAME, "new_name": Spec(string, required=True)})
    new_name = check_name(fields["new_name"], "new_name")
    model = await registry_of(request).rename_registered_model(fields["name"], new_name)
    return json_response({"registered_model": wire.registered_model(model)})


async def update_registered_model(request: web.Request) -> web.Response:
    fields = await fields_of(request, {**NAME, "description": Spec(string)})
    model = await registry_of(request).update_registered_model(
        fields["name"], fields.get("description")
    )
    return json_response({"registered_model": wire.registered_model(model)})


async def delete_registered_model(request: web.Request) -> web.Response:
    fields = await fields_of(request, NAME)
    await registry_of(request).delete_registered_model(fields["name"])
    return json_response({})


async def search_registered_models(request: web.Request) -> web.Response:
    fields = await request_fields(request, SEARCH)
    search = _search(fields, rsearch.MODELS, default_max=100)
    page = await registry_of(request).search_registered_models(search)
    body = {"registered_models": [wire.registered_model(m) for m in page.items]}
    return json_response(page_body(body, page.next_offset))


async def get_latest_versions(request: web.Request) -> web.Response:
    fields = await fields_of(request, {**NAME, "stages": listed(string)})
    stages = [canonical_stage(stage) for stage in fields.get("stages", [])]
    versions = await registry_of(request).get_latest_versions(fields["name"], stages)
    return json_response(
        page_body({"model_versions": [wire.model_version(v) for v in versions]}, None)
    )


async def set_registered_model_tag(request: web.Request) -> web.Response:
    schema = {**NAME, "key": Spec(string, required=True), "value": Spec(tag_value)}
    fields = await fields_of(request, schema)
    tag = check_tag(Tag(fields["key"], fields.get("value", "")))
    await registry_of(request).set_registered_model_tag(fields["name"], tag)
    return json_response({})


async def delete_registered_model_tag(request: web.Request) -> web.Response:
    fields = await fields_of(request, {**NAME, "key": Spec(string, required=True)})
    await registry_of(request).delete_registered_model_tag(fields["name"], fields["key"])
    return json_response({})


async def set_alias(request: web.Request) -> web.Response:
    schema = {**VERSION, "alias": Spec(string, required=True)}
    fields = await fields_of(request, schema)
    alias = check_alias(fields["alias"], for_set=True)
    await registry_of(request).set_alias(fields["name"], alias, fields["version"])
    return json_response({})


async def delete_alias(request: web.Request) -> web.Response:
    fields = await fields_of(request, {**NAME, "alias": Spec(string, required=True)})
    alias = check_alias(fields["alias"])
    await registry_of(request).delete_alias(fields["name"], alias)
    return json_response({})


async def get_version_by_alias(request: web.Request) -> web.Response:
    fields = await fields_of(request, {**NAME, "alias": Spec(string, required=True)})
    alias = check_alias(fields["alias"])
    return version_body(await registry_of(request).get_version_by_alias(fields["name"], alias))


# -- model versions ----------------------------------------------------------------------------


async def create_model_version(request: web.Request) -> web.Response:
    schema = {
        **NAME,
        "source": Spec(string, required=True),
        "run_id": Spec(string),
        "tags": TAGS,
        "run_link": Spec(string),
        "description": Spec(string),
        "model_id": Spec(string),
    }
    fields = await fields_of(request, schema)
    registry = registry_of(request)
    source = sources.check_source(
        fields["source"], fields.get("run_id"), fields.get("model_id"), places_of(request.app)
    )
    source, location, run_id, model_id = await _resolve_source(request, source)
    new = NewVersion(
        fields["name"],
        source.uri,
        location,
        run_id=run_id or fields.get("run_id") or None,
        run_link=fields.get("run_link"),
        description=fields.get("description"),
        tags=tuple(tags_of(fields)),
        model_id=model_id,
    )
    version = await registry.create_model_version(new)
    return version_body(version)


async def _resolve_source(
    request: web.Request, source: sources.Source
) -> tuple[sources.Source, str, str | None, str | None]:
    """(source, storage location, run id, logged model id) of a checked source: the run or
    logged model it names must exist (and hold an artifact URI given with its id); a registered
    source is copied from its version (MLflow's lineage: the canonical `models:/<name>/<version>`,
    its location, run and model)."""
    if source.kind == "registered":
        name, reference = source.model_name or "", source.reference or ""
        copied = await resolve_reference(registry_of(request), name, reference)
        canonical = sources.Source("registered", f"models:/{copied.name}/{copied.version}")
        return canonical, copied.download_uri, copied.run_id, copied.model_id
    if source.kind == "logged_model" or (source.kind == "artifact" and source.model_id):
        model = await _logged_model(request, source)
        if source.kind == "artifact":
            _require_inside(source, model.artifact_location, "model_id", "logged model")
        location = model.artifact_location if source.kind == "logged_model" else source.uri
        return source, location, model.source_run_id or None, source.model_id
    if source.run_id:
        run_id = source.run_id
        try:
            run = await store_of(request).get_run(run_id)
        except NotFound:
            raise sources.refuse(source.uri, f"The run '{run_id}' does not exist.") from None
        if source.kind == "artifact":
            _require_inside(source, run.info.artifact_uri, "run_id", "run")
        return source, source.uri, run_id, None
    return source, source.uri, None, None


def _require_inside(source: sources.Source, root: str, field: str, what: str) -> None:
    if sources.within(source.uri, root) is None:
        raise sources.refuse(
            source.uri, f"The {field} request parameter must identify the {what} that contains it."
        )


async def _logged_model(request: web.Request, source: sources.Source) -> Any:
    store: Any = store_of(request)
    model_id = source.model_id or ""
    getter = getattr(store, "get_logged_model", None)
    if getter is None:
        raise sources.refuse(source.uri, "This server keeps no logged models.")
    try:
        return await getter(model_id)
    except NotFound:
        raise sources.refuse(source.uri, f"The logged model '{model_id}' does not exist.") from None


async def resolve_reference(registry: RegistryStore, name: str, reference: str) -> ModelVersion:
    """`<version>`, `latest`, a stage or `@alias` of a registered model -> that version."""
    check_name(name)
    if reference.startswith("@"):
        return await registry.get_version_by_alias(name, check_alias(reference[1:]))
    if reference.isdigit():
        return await registry.get_model_version(name, int(reference))
    stages = [] if reference.lower() == "latest" else [canonical_stage(reference)]
    versions = await registry.get_latest_versions(name, stages)
    if not versions:
        raise NotFound(f"No versions of model with name '{name}' and stage '{reference}' found")
    return max(versions, key=lambda v: v.version)


async def get_model_version(request: web.Request) -> web.Response:
    fields = await fields_of(request, VERSION)
    return version_body(
        await registry_of(request).get_model_version(fields["name"], fields["version"])
    )


async def update_model_version(request: web.Request) -> web.Response:
    fields = await fields_of(request, {**VERSION, "description": Spec(string)})
    version = await registry_of(request).update_model_version(
        fields["name"], fields["version"], fields.get("description")
    )
    return version_body(version)


async def transition_stage(request: web.Request) -> web.Response:
    schema = {
        **VERSION,
        "stage": Spec(string, required=True),
        "archive_existing_versions": Spec(boolean),
    }
    fields = await fields_of(request, schema)
    stage = canonical_stage(fields["stage"])
    archive = fields.get("archive_existing_versions", False)
    if archive and stage not in ("Staging", "Production"):
        raise InvalidParameter(
            "Model version transition cannot archive existing model versions because "
            f"'{fields['stage']}' is not an Active stage. Valid stages are Staging, Production"
        )
    version = await registry_of(request).transition_stage(
        fields["name"], fields["version"], stage, archive
    )
    return version_body(version)


async def delete_model_version(request: web.Request) -> web.Response:
    fields = await fields_of(request, VERSION)
    await registry_of(request).delete_model_version(fields["name"], fields["version"])
    return json_response({})


async def search_model_versions(request: web.Request) -> web.Response:
    fields = await request_fields(request, SEARCH)
    search = _search(fields, rsearch.VERSIONS, default_max=rsearch.MAX_SEARCH_VERSIONS)
    page = await registry_of(request).search_model_versions(search)
    body = {"model_versions": [wire.model_version(v) for v in page.items]}
    return json_response(page_body(body, page.next_offset))


async def get_download_uri(request: web.Request) -> web.Response:
    fields = await fields_of(request, VERSION)
    version = await registry_of(request).get_model_version(fields["name"], fields["version"])
    return json_response({"artifact_uri": version.download_uri})


async def set_model_version_tag(request: web.Request) -> web.Response:
    schema = {**VERSION, "key": Spec(string, required=True), "value": Spec(tag_value)}
    fields = await fields_of(request, schema)
    tag = check_tag(Tag(fields["key"], fields.get("value", "")))
    await registry_of(request).set_model_version_tag(fields["name"], fields["version"], tag)
    return json_response({})


async def delete_model_version_tag(request: web.Request) -> web.Response:
    fields = await fields_of(request, {**VERSION, "key": Spec(string, required=True)})
    await registry_of(request).delete_model_version_tag(
        fields["name"], fields["version"], fields["key"]
    )
    return json_response({})


def _search(
    fields: dict[str, Any], grammar: rsearch.Grammar, default_max: int
) -> rsearch.RegistrySearch:
    return rsearch.parse_search(
        grammar,
        fields.get("filter"),
        fields.get("order_by"),
        fields.get("max_results", default_max),
        fields.get("page_token"),
    )


# -- files -------------------------------------------------------------------------------------


async def get_artifact(request: web.Request) -> web.StreamResponse:
    """`GET /model-versions/get-artifact?name=&version=&path=`: one file of a version, read as the
    tracking-side `/get-artifact` reads a run's (gateway/tracking/artifact_reads.py): from this
    destination or relayed from an allowed artifacts server, 403 anywhere else. The location is
    checked again here: a stored source is never trusted."""
    schema = {**VERSION, "path": Spec(string, required=True)}
    fields = await fields_of(request, schema)
    version = await registry_of(request).get_model_version(fields["name"], fields["version"])
    uri = await _concrete_uri(request, version.download_uri)
    if uri is None:
        raise PermissionDenied(
            f"This server does not read the files of model version {version.name}/"
            f"{version.version} at '{version.download_uri}'."
        )
    place = artifact_reads.where(request, uri, fields["path"])
    return await artifact_reads.send_file(request, place)


async def _concrete_uri(request: web.Request, uri: str) -> str | None:
    """`runs:/<run>/<path>` -> the run's artifact URI joined with the path; others unchanged."""
    if not uri.startswith("runs:"):
        return uri
    try:
        source = sources.check_source(uri, None, None, places_of(request.app))
        run = await store_of(request).get_run(source.run_id or "")
    except (InvalidValue, NotFound):
        return None
    return append_path(run.info.artifact_uri, source.path)
