"""Moving off a real `mlflow server` 3.18: its SQLite database imported, its artifacts
destination served by artgw as it is. Through artgw, the real client reads what it read from
`mlflow server` (runs, datasets, logged models, the registry), and every reference MLflow wrote
keeps resolving: `models:/<name>@<alias>`, `models:/<name>/<version>`, `models:/m-<id>`,
`runs:/<run>/<path>` and the `mlflow-artifacts:/` URIs behind them.

`mlflow server` takes 20-60 s to start on a busy machine: it runs once, for the module."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from tests.e2e.mlflow_server import MlflowServer
from tests.e2e.test_import_client import artgw_import
from tests.tracking.import_models import models_snapshot
from tests.tracking.import_sources import mlflow_database, snapshot

pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::FutureWarning", "ignore::DeprecationWarning"
)
X = np.random.default_rng(1).normal(size=(20, 2))
Y = (X[:, 1] > 0).astype(int)


def read(url: str) -> dict[str, Any]:
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    return {"experiments": snapshot(client), **models_snapshot(client)}


def write_through(url: str, scratch: Path) -> dict[str, str]:
    """A run with a dataset, an artifact and a logged sklearn model; the model registered twice
    (from the logged model, from the run's artifact path), an alias."""
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("served")
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_numpy(X, name="x"), context="training")
        mlflow.log_text("hello", "notes/readme.txt")
        fitted = LogisticRegression().fit(X, Y)
        info = mlflow.sklearn.log_model(fitted, name="clf", params={"C": "1.0"})
        mlflow.log_metric("acc", 0.75, model_id=info.model_id)
        mlflow.sklearn.save_model(fitted, str(scratch / "saved"))
        mlflow.log_artifacts(str(scratch / "saved"), "exported")
    mlflow.register_model(f"models:/{info.model_id}", "served-model")
    mlflow.register_model(f"runs:/{run.info.run_id}/exported", "served-model")
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    client.set_registered_model_alias("served-model", "champion", "1")
    return {"run": run.info.run_id, "model": info.model_id}


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The mlflow server's database and artifacts, what its client read, and the ids made."""
    cwd = tmp_path_factory.mktemp("mlflow-server")
    before = mlflow.get_tracking_uri()
    mlflow_database(cwd / "mlflow.db")  # made by MLflow's migrations once per process
    with MlflowServer(cwd) as server:
        try:
            ids = write_through(server.url, tmp_path_factory.mktemp("scratch"))
            expected = read(server.url)
        finally:
            mlflow.set_tracking_uri(before)
    yield {"cwd": cwd, "ids": ids, "expected": expected}


def test_references_keep_resolving_through_artgw(
    moved: dict[str, Any], tmp_path: Path, artgw
) -> None:
    cwd, ids = moved["cwd"], moved["ids"]
    target = f"sqlite:///{tmp_path / 'artgw.db'}"
    done = artgw_import(f"sqlite:///{cwd / 'mlflow.db'}", "--backend-store-uri", target)
    assert done.returncode == 0, done.stderr
    assert "registered_model_aliases: 1 imported" in done.stdout
    server = artgw(
        "--backend-store-uri", target, "--artifacts-destination", str(cwd / "mlartifacts")
    )
    assert read(server.url) == moved["expected"]
    run = MlflowClient(server.url).get_run(ids["run"])
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(server.url)
    try:
        resolve_everything(ids)
    finally:
        mlflow.set_tracking_uri(before)


def resolve_everything(ids: dict[str, str]) -> None:
    want = LogisticRegression().fit(X, Y).predict(X)
    for uri in (
        "models:/served-model@champion",
        "models:/served-model/1",
        "models:/served-model/2",
        f"models:/{ids['model']}",
        f"runs:/{ids['run']}/exported",
    ):
        assert (mlflow.sklearn.load_model(uri).predict(X) == want).all(), uri
    notes = mlflow.artifacts.download_artifacts(f"runs:/{ids['run']}/notes/readme.txt")
    assert Path(notes).read_text() == "hello"
    location = MlflowClient().get_logged_model(ids["model"]).artifact_location
    assert location.startswith("mlflow-artifacts:/")
    assert Path(mlflow.artifacts.download_artifacts(f"{location}/MLmodel")).is_file()
