"""Datasets, logged models and a model registry written by the real mlflow client into a store
(for the import tests), and what a client reads back of them."""

import math
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, ViewType

SCHEMA = '{"mlflow_colspec": [{"type": "long", "name": "a", "required": true}]}'


def write_models(uri: str) -> dict[str, str]:
    """An experiment with a run that used two datasets (tags, one shared with a second run), a
    logged model with params, tags and metrics on a dataset (a second one deleted, a third
    used as an input), and a registered model: versions from the run and from the model, one
    deleted, tags, aliases, a stage. Returns the ids made."""
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)  # MLflow's registry looks logged models up there
    try:
        return _write_models(MlflowClient(tracking_uri=uri, registry_uri=uri))
    finally:
        mlflow.set_tracking_uri(before)


def _write_models(client: MlflowClient) -> dict[str, str]:
    from mlflow.entities import LoggedModelInput, LoggedModelOutput, LoggedModelStatus

    experiment = client.create_experiment("models-exp", tags={"kind": "models"})
    run = client.create_run(experiment, run_name="trainer").info.run_id
    other = client.create_run(experiment, run_name="user").info.run_id
    train = Dataset("train", "d1g3st", "s3", '{"uri": "s3://b/train.csv"}', SCHEMA, '{"n": 2}')
    test = Dataset("test", "0th3r", "local", '{"uri": "/data/test.csv"}')
    context = [InputTag("mlflow.data.context", "training"), InputTag("split", "a")]
    client.log_inputs(run, [DatasetInput(train, context), DatasetInput(test, [])])
    client.log_inputs(other, [DatasetInput(train, [InputTag("mlflow.data.context", "eval")])])
    model = client.create_logged_model(
        experiment, name="clf", source_run_id=run, params={"depth": "3"}, tags={"team": "ml"}
    )
    model_id = model.model_id
    client.log_batch(
        run,
        metrics=[
            Metric("acc", 0.5 + i / 10, 1_700_000_000_000 + i, i, model_id=model_id)
            for i in range(3)
        ]
        + [
            Metric(
                "f1",
                0.7,
                1_700_000_000_100,
                0,
                model_id=model_id,
                dataset_name="train",
                dataset_digest="d1g3st",
            )
        ],
    )
    client.log_outputs(run, [LoggedModelOutput(model_id, 2)])
    client.finalize_logged_model(model_id, LoggedModelStatus.READY)
    gone = client.create_logged_model(experiment, name="gone", source_run_id=run)
    client.delete_logged_model(gone.model_id)
    used = client.create_logged_model(experiment, name="used").model_id
    client.log_inputs(other, models=[LoggedModelInput(used)])

    client.create_registered_model("reg", tags={"owner": "ml"}, description="the model")
    client.create_model_version("reg", f"runs:/{run}/model", run_id=run, tags={"from": "run"})
    client.create_model_version("reg", f"models:/{model_id}", model_id=model_id)
    client.create_model_version("reg", f"models:/{model_id}", model_id=model_id)
    client.delete_model_version("reg", "3")
    client.set_registered_model_alias("reg", "champion", "2")
    client.set_registered_model_alias("reg", "first", "1")
    client.transition_model_version_stage("reg", "1", "Staging")
    client.set_model_version_tag("reg", "2", "validated", "yes")
    client.create_registered_model("empty")
    return {"experiment": experiment, "run": run, "other": other, "model": model_id}


def models_snapshot(client: MlflowClient, logged_models: bool = True) -> dict[str, Any]:
    """Datasets and inputs/outputs of every run (as `get_run` has them: searches leave model
    inputs out), every logged model, the whole registry, and where `models:/` URIs lead.
    Runs with MLflow 2's client too (tests/e2e/mlflow2_writer.py), without logged models."""
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    runs = client.search_runs(experiments, run_view_type=ViewType.ALL)
    return {
        "runs": {run.info.run_id: _io(client.get_run(run.info.run_id)) for run in runs},
        "logged_models": {
            m.model_id: _logged_model(m) for m in client.search_logged_models(experiments)
        }
        if logged_models
        else {},
        "registry": _registry(client),
    }


def _io(run: Any) -> dict[str, Any]:
    inputs, outputs = run.inputs, getattr(run, "outputs", None)  # MLflow 2: no outputs
    return {
        "datasets": sorted(
            (
                d.dataset.name,
                d.dataset.digest,
                d.dataset.source_type,
                d.dataset.source,
                d.dataset.schema or "",
                d.dataset.profile or "",
                tuple(sorted((t.key, t.value) for t in d.tags)),
            )
            for d in inputs.dataset_inputs
        ),
        "model_inputs": sorted(m.model_id for m in getattr(inputs, "model_inputs", None) or []),
        "model_outputs": sorted((m.model_id, m.step) for m in outputs.model_outputs or [])
        if outputs
        else [],
    }


def _logged_model(m: Any) -> dict[str, Any]:
    return {
        "info": (
            m.experiment_id,
            m.name,
            m.artifact_location,
            str(m.status),
            m.model_type or "",
            m.source_run_id or "",
            m.creation_timestamp,
        ),
        "params": m.params,
        "tags": m.tags,
        "metrics": _latest(m.metrics or []),
    }


def _latest(metrics: list[Metric]) -> list[tuple[Any, ...]]:
    """Each metric's latest point per dataset: all a file store gives (a SQL store, and artgw,
    give every point)."""
    best: dict[tuple[str, str, str], Metric] = {}
    for x in metrics:
        group = (x.key, x.dataset_name or "", x.dataset_digest or "")
        if group not in best or (x.step, x.timestamp, x.value) > _rank(best[group]):
            best[group] = x
    return sorted(
        (*group, "nan" if math.isnan(x.value) else x.value, x.step, x.timestamp, x.run_id)
        for group, x in best.items()
    )


def _rank(x: Metric) -> tuple[int, int, float]:
    return (x.step, x.timestamp, x.value)


def _registry(client: MlflowClient) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for model in client.search_registered_models():
        found_versions = client.search_model_versions(f"name = '{model.name}'")
        # MLflow's SQL store fills a version's aliases in `get_model_version` only
        versions = [client.get_model_version(model.name, v.version) for v in found_versions]
        found[model.name] = {
            "info": (model.description or "", model.creation_timestamp),
            "tags": model.tags,
            "aliases": {alias: str(version) for alias, version in model.aliases.items()},
            "versions": {
                str(v.version): (
                    v.source,
                    v.run_id or "",
                    v.current_stage,
                    v.creation_timestamp,
                    v.description or "",
                    v.tags,
                    sorted(v.aliases),
                    client.get_model_version_download_uri(model.name, v.version),
                )
                for v in versions
            },
            "by_alias": {
                alias: str(client.get_model_version_by_alias(model.name, alias).version)
                for alias in model.aliases
            },
        }
    return found
