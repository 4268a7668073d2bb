"""Handlers of MLflow 3's logged-model API (`/mlflow/logged-models/...`, API-TRACKING.md A),
including the UI's reads of a model's files through the tracking server."""

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.artifacts import json_response
from gateway.errors import BadRequest, InvalidParameter
from gateway.tracking import artifact_reads, models_wire
from gateway.tracking.artifact_handlers import listing_body
from gateway.tracking.keys import MODELS
from gateway.tracking.validation import (
    Spec,
    boolean,
    bounded,
    enum,
    integer,
    limited,
    listed,
    record,
    request_fields,
    string,
)
from tracking import model_search
from tracking.logged_models import ModelSearch, ModelStatus, ModelStore, NewModel
from tracking.store import Param, Tag

MAX_NAME = 500
MAX_KEY = 255
MAX_VALUE = 65535
MAX_SEARCH_RESULTS = 50000
DEFAULT_SEARCH_RESULTS = 50
KEY = Spec(limited(MAX_KEY), required=True)
TAG = record(Tag, {"key": KEY, "value": Spec(limited(MAX_VALUE))})
PARAM = record(Param, {"key": KEY, "value": Spec(limited(MAX_VALUE))})
STATUS = enum([status.name for status in ModelStatus], first=0)
DATASET = record(
    dict, {"dataset_name": Spec(string, required=True), "dataset_digest": Spec(string)}
)
ORDER = record(
    dict,
    {
        "field_name": Spec(string, required=True),
        "ascending": Spec(boolean),
        "dataset_name": Spec(string),
        "dataset_digest": Spec(string),
    },
)


def models_of(request: web.Request) -> ModelStore:
    return request.app[MODELS]


def model_id_of(request: web.Request) -> str:
    return request.match_info["model_id"]


def answer(model: Any) -> web.Response:
    return json_response({"model": models_wire.logged_model(model)})


async def create(request: web.Request) -> web.Response:
    fields = await request_fields(
        request,
        {
            "experiment_id": Spec(string, required=True),
            "name": Spec(limited(MAX_NAME)),
            "model_type": Spec(limited(MAX_NAME)),
            "source_run_id": Spec(limited(32)),
            "params": listed(PARAM),
            "tags": listed(TAG),
        },
    )
    new = NewModel(
        fields["experiment_id"],
        fields.get("name") or None,
        fields.get("model_type", ""),
        fields.get("source_run_id", ""),
        tuple(fields.get("params", ())),
        tuple(fields.get("tags", ())),
    )
    model = await models_of(request).create_logged_model(new)
    return answer(model)


async def get(request: web.Request) -> web.Response:
    fields = await request_fields(request, {"allow_deleted": Spec(boolean)})
    model = await models_of(request).get_logged_model(
        model_id_of(request), fields.get("allow_deleted", False)
    )
    return answer(model)


async def finalize(request: web.Request) -> web.Response:
    fields = await request_fields(
        request, {"model_id": Spec(string), "status": Spec(STATUS, required=True)}
    )
    model_id = model_id_of(request)
    if fields.get("model_id", model_id) != model_id:
        raise InvalidParameter(
            f"The model_id in the body ({fields['model_id']!r}) differs from the path's "
            f"({model_id!r})."
        )
    model = await models_of(request).finalize_logged_model(model_id, ModelStatus[fields["status"]])
    return answer(model)


async def delete(request: web.Request) -> web.Response:
    await models_of(request).delete_logged_model(model_id_of(request))
    return json_response({})


async def set_tags(request: web.Request) -> web.Response:
    fields = await request_fields(request, {"tags": listed(TAG)})
    await models_of(request).set_logged_model_tags(model_id_of(request), fields.get("tags", []))
    return json_response({})


async def delete_tag(request: web.Request) -> web.Response:
    await models_of(request).delete_logged_model_tag(
        model_id_of(request), request.match_info["tag_key"]
    )
    return json_response({})


async def log_params(request: web.Request) -> web.Response:
    fields = await request_fields(request, {"model_id": Spec(string), "params": listed(PARAM)})
    await models_of(request).log_logged_model_params(model_id_of(request), fields.get("params", []))
    return json_response({})


async def search(request: web.Request) -> web.Response:
    fields = await request_fields(
        request,
        {
            "experiment_ids": listed(string, required=True),
            "filter": Spec(string),
            "datasets": listed(DATASET),
            "max_results": Spec(bounded(integer, 1, MAX_SEARCH_RESULTS)),
            "order_by": listed(ORDER),
            "page_token": Spec(string),
        },
    )
    if not fields["experiment_ids"]:
        raise InvalidParameter("Missing value for required parameter 'experiment_ids'.")
    order_by = [
        {**entry, "ascending": entry.get("ascending", True)} for entry in fields.get("order_by", [])
    ]
    token_query = {
        "experiment_ids": fields["experiment_ids"],
        "filter_string": fields.get("filter") or None,
        "order_by": order_by or None,
    }
    query = ModelSearch(
        experiment_ids=tuple(fields["experiment_ids"]),
        clauses=model_search.parse_filter(fields.get("filter")),
        datasets=tuple(
            (d["dataset_name"], d.get("dataset_digest") or "") for d in fields.get("datasets", [])
        ),
        order_by=model_search.parse_order(order_by),
        max_results=fields.get("max_results", DEFAULT_SEARCH_RESULTS),
        offset=model_search.decode_token(fields.get("page_token"), token_query),
    )
    page = await models_of(request).search_logged_models(query)
    body: dict = {}
    if page.items:
        body["models"] = [models_wire.logged_model(m) for m in page.items]
    if page.next_offset is not None:
        body["next_page_token"] = model_search.encode_token(token_query, page.next_offset)
    return json_response(body)


async def list_artifacts(request: web.Request) -> web.Response:
    fields = await request_fields(
        request, {"artifact_directory_path": Spec(string), "page_token": Spec(string)}
    )
    model = await models_of(request).get_logged_model(model_id_of(request))
    path = fields.get("artifact_directory_path", "")
    place = artifact_reads.where(request, model.artifact_location, path)
    entries = await artifact_reads.list_entries(request, place)
    return json_response(listing_body(model.artifact_location, path, entries))


async def get_artifact(request: web.Request) -> web.StreamResponse:
    path = request.query.get("artifact_file_path")
    if not path:
        raise BadRequest('Request must include the "artifact_file_path" query parameter.')
    model = await models_of(request).get_logged_model(model_id_of(request))
    place = artifact_reads.where(request, model.artifact_location, path)
    return await artifact_reads.send_file(request, place)


ENDPOINTS: tuple[tuple[str, str, Handler], ...] = (
    ("POST", "logged-models", create),
    ("POST", "logged-models/search", search),
    ("GET", "logged-models/{model_id}", get),
    ("PATCH", "logged-models/{model_id}", finalize),
    ("DELETE", "logged-models/{model_id}", delete),
    ("PATCH", "logged-models/{model_id}/tags", set_tags),
    ("DELETE", "logged-models/{model_id}/tags/{tag_key}", delete_tag),
    ("POST", "logged-models/{model_id}/params", log_params),
    ("GET", "logged-models/{model_id}/artifacts/directories", list_artifacts),
    ("GET", "logged-models/{model_id}/artifacts/files", get_artifact),
)
