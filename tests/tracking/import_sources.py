"""MLflow stores written by the real mlflow client, for the import tests, and what a client
reads back from a store (to compare a source with artgw after the import)."""

import atexit
import functools
import hashlib
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, ViewType


def file_store_uri(path: Path) -> str:
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # maintenance mode in mlflow 3.18
    return f"file:{path}"


def mlflow_database(path: Path) -> str:
    """A new MLflow SQLite database at `path`, as MLflow 3.18 creates it (its migrations take
    20 s or more on a busy machine: they run once per process, into a template copied here)."""
    shutil.copyfile(_template(), path)
    return f"sqlite:///{path}"


@functools.cache
def _template() -> str:
    folder = tempfile.mkdtemp(prefix="artgw-mlflow-db-")
    atexit.register(shutil.rmtree, folder, True)
    path = os.path.join(folder, "mlflow.db")
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def write_store(uri: str, points: int = 20) -> dict[str, str]:
    """Experiments (one with tags, one deleted), a parent run with params, tags and metric
    histories (NaN included), a nested child, a deleted run; returns the ids made."""
    client = MlflowClient(tracking_uri=uri)
    kept = client.create_experiment("exp-a", tags={"team": "vision", "a/b": "nested key"})
    gone = client.create_experiment("exp-b")
    parent = client.create_run(kept, run_name="parent", tags={"stage": "dev"})
    run_id = parent.info.run_id
    client.log_batch(
        run_id,
        params=[_param("lr", "0.1"), _param("n/layers", "3")],
        metrics=[Metric("loss", 1.0 / (i + 1), 1_700_000_000_000 + i, i) for i in range(points)]
        + [Metric("acc/train", i * 0.5, 1_700_000_000_000 + i, i) for i in range(points)]
        + [Metric("odd", float("nan"), 1_700_000_000_000, 0)],
    )
    child = client.create_run(kept, run_name="child", tags={"mlflow.parentRunId": run_id})
    client.log_metric(child.info.run_id, "x", 3.0, step=7)
    client.set_terminated(child.info.run_id, "FAILED")
    client.set_terminated(run_id)
    default_run = client.create_run("0", run_name="in-default")
    client.delete_run(default_run.info.run_id)
    doomed = client.create_run(gone, run_name="doomed")
    client.log_param(doomed.info.run_id, "p", "v")
    client.delete_experiment(gone)
    return {"kept": kept, "gone": gone, "parent": run_id, "child": child.info.run_id}


def _param(key: str, value: str) -> Any:
    from mlflow.entities import Param

    return Param(key, value)


def snapshot(client: MlflowClient) -> dict[str, Any]:
    """Everything a client reads: experiments, runs (info, params, tags, latest metrics) and
    every metric's full history."""
    found: dict[str, Any] = {}
    for experiment in client.search_experiments(view_type=ViewType.ALL):
        runs = client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
        found[experiment.experiment_id] = {
            "name": experiment.name,
            "artifact_location": experiment.artifact_location,
            "lifecycle_stage": experiment.lifecycle_stage,
            "creation_time": experiment.creation_time,
            "tags": experiment.tags,
            "runs": {run.info.run_id: _run(client, run) for run in runs},
        }
    return found


def _run(client: MlflowClient, run: Any) -> dict[str, Any]:
    info = run.info
    return {
        "info": (
            info.experiment_id,
            info.run_name,
            info.user_id,
            info.status,
            info.start_time,
            info.end_time,
            info.artifact_uri,
            info.lifecycle_stage,
        ),
        "params": run.data.params,
        "tags": run.data.tags,
        "metrics": {k: _number(v) for k, v in run.data.metrics.items()},
        "history": {
            key: sorted(
                (m.timestamp, m.step, _number(m.value))
                for m in client.get_metric_history(info.run_id, key)
            )
            for key in run.data.metrics
        },
    }


def _number(value: float) -> Any:
    return "nan" if math.isnan(value) else value


def checksum(path: Path) -> str:
    """Of a file, or of every file (names and bytes) under a directory."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(str(file.relative_to(path.parent)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()
