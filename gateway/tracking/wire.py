"""Entities -> MLflow's JSON, as its server writes them (protobuf's JSON mapping).

Empty repeated fields are left out; int64 values are numbers; a double that JSON cannot hold is
written as protobuf does: "NaN", "Infinity", "-Infinity".
"""

import math
from typing import Any

from tracking.store import Experiment, Metric, Run, RunInfo

JsonObject = dict[str, Any]


def add_present(body: JsonObject, **fields: Any) -> JsonObject:
    """`body` with those of `fields` that are set (not None, empty, zero or ''), in this order:
    protobuf's JSON mapping leaves the others out."""
    for key, value in fields.items():
        if value:
            body[key] = value
    return body


def key_values(items: tuple[Any, ...]) -> list[JsonObject]:
    return [{"key": item.key, "value": item.value} for item in items]


def double(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def experiment(e: Experiment) -> JsonObject:
    body: JsonObject = {
        "experiment_id": e.experiment_id,
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage,
        "last_update_time": e.last_update_time,
        "creation_time": e.creation_time,
    }
    return add_present(body, tags=key_values(e.tags))


def run_info(info: RunInfo) -> JsonObject:
    body: JsonObject = {
        "run_uuid": info.run_id,
        "run_id": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "user_id": info.user_id,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "artifact_uri": info.artifact_uri,
        "lifecycle_stage": info.lifecycle_stage,
    }
    return {key: value for key, value in body.items() if value is not None}


def metric(m: Metric) -> JsonObject:
    return {"key": m.key, "value": double(m.value), "timestamp": m.timestamp, "step": m.step}


def run(r: Run) -> JsonObject:
    data = add_present(
        {},
        metrics=[metric(m) for m in r.metrics],
        params=key_values(r.params),
        tags=key_values(r.tags),
    )
    return {"info": run_info(r.info), "data": data, "inputs": {}}
