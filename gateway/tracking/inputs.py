"""What runs use and produce (API-TRACKING.md B, C): `runs/log-inputs` (datasets, model inputs),
`runs/outputs` (models), MLflow 2's `runs/log-model`, the UI's `experiments/search-datasets`, and
the metrics of `log-batch`/`log-metric` that name a model."""

import json
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.artifacts import json_response
from gateway.errors import InvalidParameter
from gateway.tracking import models_wire, wire
from gateway.tracking.keys import MODELS, STORE
from gateway.tracking.validation import (
    Spec,
    decoded_body,
    integer,
    limited,
    listed,
    number,
    one_to,
    parse_object,
    record,
    request_fields,
    string,
)
from tracking.logged_models import Dataset, DatasetInput, ModelMetric, ModelOutput
from tracking.store import Metric, Run, Tag

LOGGED_MODELS_TAG = "mlflow.log-model.history"
MODEL_JSON_FIELDS = ("artifact_path", "flavors", "utc_time_created", "run_id")
MAX_TAG_VALUE = 8000
MAX_SEARCH_DATASET_EXPERIMENTS = 20
RUN_ID = {"run_id": Spec(string, required=True)}
RUN_ID_ALIAS = {"run_uuid": "run_id"}

DATASET = record(
    Dataset,
    {
        "name": Spec(limited(500), required=True),
        "digest": Spec(limited(36), required=True),
        "source_type": Spec(limited(64), required=True),
        "source": Spec(limited(65535), required=True),
        "schema": Spec(limited(1048575)),
        "profile": Spec(limited(16777215)),
    },
)
INPUT_TAG = record(
    Tag, {"key": Spec(limited(255), required=True), "value": Spec(limited(500), required=True)}
)


def _dataset_input(path: str, value: Any) -> DatasetInput:
    fields = record(dict, {"dataset": Spec(DATASET, required=True), "tags": listed(INPUT_TAG)})(
        path, value
    )
    return DatasetInput(fields["dataset"], tuple(fields.get("tags", ())))


MODEL_INPUT = record(dict, {"model_id": Spec(string, required=True)})
MODEL_OUTPUT = record(
    ModelOutput, {"model_id": Spec(string, required=True), "step": Spec(integer, required=True)}
)


async def log_inputs(request: web.Request) -> web.Response:
    schema = {
        **RUN_ID,
        "datasets": listed(_dataset_input),
        "models": listed(MODEL_INPUT),
    }
    fields = await request_fields(request, schema, RUN_ID_ALIAS)
    model_ids = [m["model_id"] for m in fields.get("models", [])]
    await request.app[MODELS].log_inputs(fields["run_id"], fields.get("datasets", []), model_ids)
    return json_response({})


async def log_outputs(request: web.Request) -> web.Response:
    schema = {**RUN_ID, "models": listed(MODEL_OUTPUT, required=True)}
    fields = await request_fields(request, schema, RUN_ID_ALIAS)
    await request.app[MODELS].log_outputs(fields["run_id"], fields["models"])
    return json_response({})


async def log_model(request: web.Request) -> web.Response:
    """MLflow 2's model record: appended to the run's `mlflow.log-model.history` tag."""
    schema = {**RUN_ID, "model_json": Spec(string, required=True)}
    fields = await request_fields(request, schema, RUN_ID_ALIAS)
    model = _model_dict(fields["model_json"])
    store = request.app[STORE]
    run = await store.get_run(fields["run_id"])
    held = next((t.value for t in run.tags if t.key == LOGGED_MODELS_TAG), None)
    history = _history(held)
    history.append(model)
    value = json.dumps(history)
    if len(value) > MAX_TAG_VALUE:
        raise InvalidParameter(
            f"The '{LOGGED_MODELS_TAG}' tag of run {run.info.run_id} would be longer than "
            f"{MAX_TAG_VALUE} characters."
        )
    await store.log_batch(run.info.run_id, [], [], [Tag(LOGGED_MODELS_TAG, value)])
    return json_response({})


def _model_dict(text: str) -> dict[str, Any]:
    try:
        model = json.loads(text)
    except ValueError as exc:
        raise InvalidParameter(f"Malformed model info. \n {text} \n is not a valid JSON.") from exc
    if not isinstance(model, dict):
        raise InvalidParameter("Malformed model info: model_json must hold a JSON object.")
    missing = [key for key in MODEL_JSON_FIELDS if key not in model]
    if missing:
        raise InvalidParameter(f"Model json is missing mandatory fields: {missing}")
    flavors = model["flavors"] if isinstance(model["flavors"], dict) else {}
    kept = {
        k: model[k]
        for k in ("run_id", "utc_time_created", "artifact_path", "model_uuid")
        if k in model
    }
    kept["flavors"] = {
        name: {k: v for k, v in flavor.items() if k != "config"}
        if isinstance(flavor, dict)
        else flavor
        for name, flavor in flavors.items()
    }
    return kept


def _history(held: str | None) -> list[Any]:
    if not held:
        return []
    try:
        found = json.loads(held)
    except ValueError:
        return []
    return found if isinstance(found, list) else []


async def search_datasets(request: web.Request) -> web.Response:
    fields = await request_fields(request, {"experiment_ids": listed(string)})
    limit = MAX_SEARCH_DATASET_EXPERIMENTS
    ids = one_to(limit, fields.get("experiment_ids", []), "SearchDatasets", "experiment_id")
    found = await request.app[MODELS].search_datasets(ids)
    summaries = [
        {"experiment_id": s.experiment_id, "name": s.name, "digest": s.digest}
        | ({"context": s.context} if s.context else {})
        for s in found
    ]
    return json_response({"dataset_summaries": summaries} if summaries else {})


MODEL_METRIC_FIELDS = {
    "key": Spec(string, required=True),
    "value": Spec(number, required=True),
    "timestamp": Spec(integer, required=True),
    "step": Spec(integer),
    "model_id": Spec(string),
    "dataset_name": Spec(string),
    "dataset_digest": Spec(string),
}


MODEL_METRIC = record(dict, MODEL_METRIC_FIELDS)
DATASET_FIELDS = {name: MODEL_METRIC_FIELDS[name] for name in ("dataset_name", "dataset_digest")}


def _plain(value: Any) -> bool:
    """A metric with none of the fields only MLflow 3's model metrics have."""
    return (
        type(value) is dict
        and value.get("model_id") in (None, "")
        and "dataset_name" not in value
        and "dataset_digest" not in value
    )


def _model_metric(index: int, value: Any) -> tuple[str, ModelMetric] | None:
    """A metric that names a model, checked; None for one that does not. The request's own check
    (log-batch's, log-metric's) passed already, so a metric without a model is checked only for
    the fields that check does not know (a batch of 1,000 metrics is not checked twice)."""
    if isinstance(value, dict) and value.get("model_id") in (None, ""):
        if "dataset_name" in value or "dataset_digest" in value:
            parse_object(value, DATASET_FIELDS, prefix=f"metrics[{index}].")
        return None
    fields = MODEL_METRIC(f"metrics[{index}]", value)
    if not fields.get("model_id"):
        return None
    metric = Metric(fields["key"], fields["value"], fields["timestamp"], fields.get("step", 0))
    found = ModelMetric(
        metric, "", fields.get("dataset_name", ""), fields.get("dataset_digest", "")
    )
    return fields["model_id"], found


async def link_model_metrics(request: web.Request, run_id: str, *, single: bool) -> None:
    """After `log-batch` (or `log-metric` when `single`) logged the run's metrics: record those
    that carry a `model_id` as that model's metrics too (MLflow 3's model metrics)."""
    body = await decoded_body(request)
    raw = [body] if single else body.get("metrics") if isinstance(body, dict) else None
    items = raw if isinstance(raw, list) else []
    if all(_plain(item) for item in items):
        return  # the common batch: no metric names a model or a dataset
    found = [_model_metric(i, item) for i, item in enumerate(items)]
    linked = [
        (model_id, ModelMetric(m.metric, run_id, m.dataset_name, m.dataset_digest))
        for model_id, m in filter(None, found)
    ]
    if linked:
        await request.app[MODELS].log_model_metrics(run_id, linked)


ENDPOINTS: tuple[tuple[str, str, Handler], ...] = (
    ("POST", "runs/log-inputs", log_inputs),
    ("POST", "runs/outputs", log_outputs),
    ("POST", "runs/log-model", log_model),
    ("POST", "experiments/search-datasets", search_datasets),
)


async def runs_json(request: web.Request, runs: list[Run], *, search: bool = False) -> list[dict]:
    """Runs in MLflow's JSON with their inputs and outputs (`runs/search` shows no model
    inputs, as MLflow's)."""
    found = await request.app[MODELS].run_io([r.info.run_id for r in runs]) if runs else {}
    return [
        models_wire.with_io(wire.run(r), found.get(r.info.run_id), model_inputs=not search)
        for r in runs
    ]
