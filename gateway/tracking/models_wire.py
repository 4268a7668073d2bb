"""Logged models, datasets and run inputs/outputs -> MLflow's JSON, as its server writes them
(API-TRACKING.md A.2, B.4): the location goes out as `artifact_uri`, the status by name, empty
lists left out, `data`/`inputs`/`outputs` always present (as `{}` when empty)."""

from gateway.tracking.wire import JsonObject, add_present, key_values, metric
from tracking.logged_models import DatasetInput, LoggedModel, ModelMetric, RunIo


def model_metric(m: ModelMetric, model_id: str) -> JsonObject:
    return add_present(
        metric(m.metric),
        dataset_name=m.dataset_name,
        dataset_digest=m.dataset_digest,
        model_id=model_id,
        run_id=m.run_id,
    )


def logged_model(m: LoggedModel) -> JsonObject:
    info: JsonObject = {
        "model_id": m.model_id,
        "experiment_id": m.experiment_id,
        "name": m.name,
        "creation_timestamp_ms": m.creation_timestamp_ms,
        "last_updated_timestamp_ms": m.last_updated_timestamp_ms,
        "artifact_uri": m.artifact_location,
        "status": m.status.name,
        "model_type": m.model_type,
        "source_run_id": m.source_run_id,
    }
    add_present(
        info,
        status_message=m.status_message,
        tags=key_values(m.tags),
        registrations=[{"name": r.name, "version": r.version} for r in m.registrations],
    )
    data = add_present(
        {},
        params=key_values(m.params),
        metrics=[model_metric(x, m.model_id) for x in m.metrics],
    )
    return {"info": info, "data": data}


def dataset_input(item: DatasetInput) -> JsonObject:
    d = item.dataset
    dataset: JsonObject = {
        "name": d.name,
        "digest": d.digest,
        "source_type": d.source_type,
        "source": d.source,
    }
    add_present(dataset, schema=d.schema, profile=d.profile)
    return add_present({}, tags=key_values(item.tags)) | {"dataset": dataset}


def with_io(run: JsonObject, io: RunIo | None, *, model_inputs: bool = True) -> JsonObject:
    """A run's JSON with its `inputs` and `outputs` (`runs/search` leaves out model inputs)."""
    io = io or RunIo()
    inputs = add_present(
        {},
        dataset_inputs=[dataset_input(item) for item in io.datasets],
        model_inputs=[{"model_id": m} for m in io.model_inputs] if model_inputs else [],
    )
    outputs = add_present(
        {}, model_outputs=[{"model_id": o.model_id, "step": o.step} for o in io.model_outputs]
    )
    return {**run, "inputs": inputs, "outputs": outputs}
