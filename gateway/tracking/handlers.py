"""Handlers of the tracking REST API: parse the request, call the store, answer MLflow's JSON."""

from aiohttp import web

from gateway.artifacts import json_response
from gateway.errors import InvalidParameter, NotFound
from gateway.keys import SETTINGS
from gateway.tracking import inputs, models_wire, wire
from gateway.tracking.keys import MODELS, STORE
from gateway.tracking.validation import (
    Schema,
    Spec,
    bounded,
    enum,
    integer,
    limited,
    listed,
    number,
    record,
    request_fields,
    string,
)
from tracking import search, uris
from tracking.store import (
    DEFAULT_EXPERIMENT_ID,
    RUN_STATUSES,
    Metric,
    NewRun,
    Param,
    Search,
    Tag,
    TrackingStore,
    ViewType,
    now_ms,
)

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_EXPERIMENT_TAG_VALUE = 20000
MAX_EXPERIMENT_NAME = 500
MAX_BATCH_ITEMS = 1000
MAX_SEARCH_RESULTS = 50000
MAX_HISTORY_RESULTS = 25000
RUN_ID = {"run_id": Spec(string, required=True)}
RUN_ID_ALIAS = {"run_uuid": "run_id"}
EXPERIMENT_ID = {"experiment_id": Spec(string, required=True)}

KEY = Spec(limited(MAX_KEY), required=True)
TAG = record(Tag, {"key": KEY, "value": Spec(limited(MAX_TAG_VALUE))})
PARAM = record(Param, {"key": KEY, "value": Spec(limited(MAX_PARAM_VALUE))})
METRIC_FIELDS: Schema = {
    "key": KEY,
    "value": Spec(number, required=True),
    "timestamp": Spec(integer, required=True),
    "step": Spec(integer),
}
METRIC = record(Metric, METRIC_FIELDS)
VIEW = enum([view.name for view in ViewType])
SEARCH_FIELDS: Schema = {
    "filter": Spec(string),
    "order_by": listed(string),
    "page_token": Spec(string),
    "max_results": Spec(bounded(integer, 1, MAX_SEARCH_RESULTS)),
}


def store_of(request: web.Request) -> TrackingStore:
    return request.app[STORE]


async def run_fields(request: web.Request, schema: Schema) -> dict:
    return await request_fields(request, {**RUN_ID, **schema}, RUN_ID_ALIAS)


# -- experiments -------------------------------------------------------------------------------


async def create_experiment(request: web.Request) -> web.Response:
    fields = await request_fields(
        request,
        {
            "name": Spec(limited(MAX_EXPERIMENT_NAME), required=True),
            "artifact_location": Spec(string),
            "tags": listed(TAG),
        },
    )
    location = fields.get("artifact_location") or None
    if location:
        location = uris.validate_location(location, request.app[SETTINGS].default_artifact_root)
    experiment_id = await store_of(request).create_experiment(
        fields["name"], location, fields.get("tags", [])
    )
    return json_response({"experiment_id": experiment_id})


async def get_experiment(request: web.Request) -> web.Response:
    fields = await request_fields(request, EXPERIMENT_ID)
    experiment = await store_of(request).get_experiment(fields["experiment_id"])
    return json_response({"experiment": wire.experiment(experiment)})


async def get_experiment_by_name(request: web.Request) -> web.Response:
    fields = await request_fields(request, {"experiment_name": Spec(string, required=True)})
    name = fields["experiment_name"]
    experiment = await store_of(request).get_experiment_by_name(name)
    if experiment is None:
        raise NotFound(f"Could not find experiment with name '{name}'")
    return json_response({"experiment": wire.experiment(experiment)})


async def search_experiments(request: web.Request) -> web.Response:
    fields = await request_fields(request, {**SEARCH_FIELDS, "view_type": Spec(VIEW)})
    query = search_request(fields, search.EXPERIMENTS, fields.get("view_type"))
    page = await store_of(request).search_experiments(query)
    body = {"experiments": [wire.experiment(e) for e in page.items]}
    return json_response(page_body(body, page.next_offset))


async def update_experiment(request: web.Request) -> web.Response:
    schema = {**EXPERIMENT_ID, "new_name": Spec(limited(MAX_EXPERIMENT_NAME), required=True)}
    fields = await request_fields(request, schema)
    await store_of(request).rename_experiment(fields["experiment_id"], fields["new_name"])
    return json_response({})


async def delete_experiment(request: web.Request) -> web.Response:
    fields = await request_fields(request, EXPERIMENT_ID)
    await store_of(request).delete_experiment(fields["experiment_id"])
    return json_response({})


async def restore_experiment(request: web.Request) -> web.Response:
    fields = await request_fields(request, EXPERIMENT_ID)
    await store_of(request).restore_experiment(fields["experiment_id"])
    return json_response({})


async def set_experiment_tag(request: web.Request) -> web.Response:
    schema = {**EXPERIMENT_ID, "key": KEY, "value": Spec(limited(MAX_EXPERIMENT_TAG_VALUE))}
    fields = await request_fields(request, schema)
    tag = Tag(fields["key"], fields.get("value", ""))
    await store_of(request).set_experiment_tag(fields["experiment_id"], tag)
    return json_response({})


async def delete_experiment_tag(request: web.Request) -> web.Response:
    fields = await request_fields(request, {**EXPERIMENT_ID, "key": Spec(string, required=True)})
    await store_of(request).delete_experiment_tag(fields["experiment_id"], fields["key"])
    return json_response({})


# -- runs --------------------------------------------------------------------------------------


async def create_run(request: web.Request) -> web.Response:
    fields = await request_fields(
        request,
        {
            "experiment_id": Spec(string),
            "user_id": Spec(string),
            "run_name": Spec(limited(MAX_TAG_VALUE)),
            "start_time": Spec(integer),
            "tags": listed(TAG),
        },
    )
    new = NewRun(
        experiment_id=fields.get("experiment_id") or DEFAULT_EXPERIMENT_ID,
        user_id=fields.get("user_id", ""),
        start_time=fields.get("start_time", now_ms()),
        run_name=fields.get("run_name") or None,
        tags=tuple(fields.get("tags", ())),
    )
    run = await store_of(request).create_run(new)
    return json_response({"run": wire.run(run)})


async def get_run(request: web.Request) -> web.Response:
    fields = await run_fields(request, {})
    run, io = await request.app[MODELS].get_run_with_io(fields["run_id"])
    return json_response({"run": models_wire.with_io(wire.run(run), io, model_inputs=True)})


async def update_run(request: web.Request) -> web.Response:
    fields = await run_fields(
        request,
        {
            "status": Spec(enum(RUN_STATUSES)),
            "end_time": Spec(integer),
            "run_name": Spec(limited(MAX_TAG_VALUE)),
        },
    )
    info = await store_of(request).update_run(
        fields["run_id"], fields.get("status"), fields.get("end_time"), fields.get("run_name")
    )
    return json_response({"run_info": wire.run_info(info)})


async def delete_run(request: web.Request) -> web.Response:
    fields = await run_fields(request, {})
    await store_of(request).delete_run(fields["run_id"])
    return json_response({})


async def restore_run(request: web.Request) -> web.Response:
    fields = await run_fields(request, {})
    await store_of(request).restore_run(fields["run_id"])
    return json_response({})


async def search_runs(request: web.Request) -> web.Response:
    schema = {**SEARCH_FIELDS, "experiment_ids": listed(string), "run_view_type": Spec(VIEW)}
    fields = await request_fields(request, schema)
    query = search_request(fields, search.RUNS, fields.get("run_view_type"))
    page = await store_of(request).search_runs(query)
    found = await inputs.runs_json(request, page.items, search=True)
    return json_response(page_body({"runs": found}, page.next_offset))


# -- run data ----------------------------------------------------------------------------------


async def log_metric(request: web.Request) -> web.Response:
    fields = await run_fields(request, METRIC_FIELDS)
    metric = Metric(fields["key"], fields["value"], fields["timestamp"], fields.get("step", 0))
    await store_of(request).log_batch(fields["run_id"], [metric], [], [])
    await inputs.link_model_metrics(request, fields["run_id"], single=True)
    return json_response({})


async def log_parameter(request: web.Request) -> web.Response:
    schema = {"key": KEY, "value": Spec(limited(MAX_PARAM_VALUE))}
    fields = await run_fields(request, schema)
    param = Param(fields["key"], fields.get("value", ""))
    await store_of(request).log_batch(fields["run_id"], [], [param], [])
    return json_response({})


async def set_tag(request: web.Request) -> web.Response:
    fields = await run_fields(request, {"key": KEY, "value": Spec(limited(MAX_TAG_VALUE))})
    tag = Tag(fields["key"], fields.get("value", ""))
    await store_of(request).log_batch(fields["run_id"], [], [], [tag])
    return json_response({})


async def delete_tag(request: web.Request) -> web.Response:
    fields = await run_fields(request, {"key": Spec(string, required=True)})
    await store_of(request).delete_tag(fields["run_id"], fields["key"])
    return json_response({})


async def log_batch(request: web.Request) -> web.Response:
    fields = await run_fields(
        request,
        {
            "metrics": listed(METRIC, MAX_BATCH_ITEMS),
            "params": listed(PARAM, 100),
            "tags": listed(TAG, 100),
        },
    )
    metrics, params, tags = (fields.get(name, []) for name in ("metrics", "params", "tags"))
    if len(metrics) + len(params) + len(tags) > MAX_BATCH_ITEMS:
        raise InvalidParameter(
            f"A batch may log at most {MAX_BATCH_ITEMS} metrics, params and tags in total."
        )
    await store_of(request).log_batch(fields["run_id"], metrics, params, tags)
    await inputs.link_model_metrics(request, fields["run_id"], single=False)
    return json_response({})


async def get_metric_history(request: web.Request) -> web.Response:
    fields = await run_fields(
        request,
        {
            "metric_key": Spec(string, required=True),
            "page_token": Spec(string),
            "max_results": Spec(bounded(integer, 1, MAX_HISTORY_RESULTS)),
        },
    )
    page = await store_of(request).get_metric_history(
        fields["run_id"],
        fields["metric_key"],
        fields.get("max_results"),
        search.decode_token(fields.get("page_token")),
    )
    body = {"metrics": [wire.metric(m) for m in page.items]}
    return json_response(page_body(body, page.next_offset))


# -- helpers -----------------------------------------------------------------------------------


def search_request(fields: dict, grammar: search.Grammar, view: str | None) -> Search:
    return Search(
        view=ViewType[view] if view else ViewType.ACTIVE_ONLY,
        clauses=search.parse_filter(fields["filter"], grammar) if fields.get("filter") else (),
        order_by=search.parse_order_by(fields.get("order_by", []), grammar),
        max_results=fields.get("max_results", 1000),
        offset=search.decode_token(fields.get("page_token")),
        experiment_ids=tuple(fields.get("experiment_ids", ())),
    )


def page_body(body: dict, next_offset: int | None) -> dict:
    """Leave out empty lists, as protobuf's JSON does; add the token of the next page."""
    body = {key: value for key, value in body.items() if value}
    if next_offset is not None:
        body["next_page_token"] = search.encode_token(next_offset)
    return body
