"""Run by the MLflow 2 client's own venv:

- `python tests/e2e/mlflow2_writer.py write URI` makes an MLflow 2.x store at URI (a file store
  or a SQL database in MLflow 2's schema) with what MLflow 2 keeps: experiments (tags, one
  deleted), runs (params, tags, metric histories, nested, one deleted), dataset inputs with
  tags, and the model registry (tags, versions, one deleted, aliases, a stage), then prints
  what MLflow 2's client reads back of it, as JSON (the snapshots of
  tests/tracking/import_sources.py and import_models.py, which run on MLflow 2 too);
- `... read URI` prints only what it reads of any store.
"""

import json
import sys
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param


def write(uri: str) -> None:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    kept = client.create_experiment("v2-exp", tags={"era": "2.x"})
    gone = client.create_experiment("v2-gone")
    run = client.create_run(kept, run_name="v2-run", tags={"stage": "old"}).info.run_id
    points = [Metric("loss", 1.0 / (i + 1), 1_600_000_000_000 + i, i) for i in range(10)]
    client.log_batch(run, metrics=points, params=[Param("lr", "0.01")])
    child = client.create_run(kept, run_name="v2-child", tags={"mlflow.parentRunId": run})
    client.log_metric(child.info.run_id, "x", 2.0, step=3)
    client.set_terminated(child.info.run_id)
    data = Dataset("v2-data", "abc123", "local", '{"uri": "/data/v2.csv"}', '{"s": 1}', "")
    client.log_inputs(run, [DatasetInput(data, [InputTag("mlflow.data.context", "training")])])
    client.set_terminated(run)
    doomed = client.create_run(kept, run_name="doomed").info.run_id
    client.delete_run(doomed)
    client.delete_experiment(gone)

    client.create_registered_model("v2-model", tags={"team": "old"}, description="from 2.x")
    client.create_model_version("v2-model", f"runs:/{run}/model", run_id=run, tags={"k": "v"})
    client.create_model_version("v2-model", f"runs:/{run}/model", run_id=run)
    client.create_model_version("v2-model", f"runs:/{run}/other", run_id=run)
    client.delete_model_version("v2-model", "2")
    client.set_registered_model_alias("v2-model", "prod", "3")
    client.transition_model_version_stage("v2-model", "1", "Production")
    read(uri)


def read(uri: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository's root
    from tests.tracking.import_models import models_snapshot
    from tests.tracking.import_sources import snapshot

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    found = {"experiments": snapshot(client), **models_snapshot(client, logged_models=False)}
    print(json.dumps(found))


if __name__ == "__main__":
    {"write": write, "read": read}[sys.argv[1]](sys.argv[2])
