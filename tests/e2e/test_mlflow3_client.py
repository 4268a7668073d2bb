"""MLflow 3's client against real `artgw serve` processes, as a classic-ML user works: sklearn
models logged and loaded back, autolog compared with a real `mlflow server` 3.18, datasets, and an
MLflow 2 client's runs/log-model.

One artgw per module (combined and split topologies); sklearn on tiny data; the client runs in
the test thread (it blocks), pointed at a server for one test at a time.
"""

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression

from tests.artgw_process import REPO, ArtgwProcess
from tests.e2e.mlflow_server import MlflowServer
from tests.e2e.test_client_flow_clouds import option_flags, stored_files
from tests.stores import cloud_destination

pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::FutureWarning", "ignore::DeprecationWarning"
)
"""MLflow's own warnings (type hints, pickle safety, deprecations) are not what these test."""
X = np.random.default_rng(0).normal(size=(40, 3))
Y = (X[:, 0] > 0).astype(int)
MLFLOW2_VENV = REPO / ".emu" / "mlflow2-venv"
MLFLOW2_SPEC = "mlflow-skinny==2.22.*"


@pytest.fixture(scope="module")
def combined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArtgwProcess]:
    cwd = tmp_path_factory.mktemp("combined")
    with ArtgwProcess("--backend-store-uri=mlruns", cwd=cwd) as server:
        yield server


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArtgwProcess]:
    """A tracking server whose experiments live on an artifacts-only server."""
    cwd = tmp_path_factory.mktemp("split")
    with ArtgwProcess("--artifacts-only", cwd=cwd / "artifacts") as artifacts:
        root = f"{artifacts.url}/api/2.0/mlflow-artifacts/artifacts/experiments"
        args = ("--backend-store-uri=mlruns", "--default-artifact-root", root)
        with ArtgwProcess(*args, cwd=cwd / "tracking") as tracking:
            tracking.artifacts_root = cwd / "artifacts" / "mlartifacts" / "experiments"  # type: ignore[attr-defined]
            yield tracking


@pytest.fixture
def on_s3(
    request: pytest.FixtureRequest, artgw: Callable[..., ArtgwProcess], tmp_path: Path
) -> ArtgwProcess:
    """One server on an S3 destination (moto, started once per session)."""
    emulator, url, options = cloud_destination(request, "s3")
    flags = ["--artifacts-destination", url, *option_flags(options)]
    server = artgw("--backend-store-uri=mlruns", *flags, cwd=tmp_path / "s3", env=emulator.env)
    server.bucket = (url, options)  # type: ignore[attr-defined]
    return server


@pytest.fixture
def use_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

    def use(url: str) -> None:
        mlflow.set_tracking_uri(url)

    yield use
    while mlflow.active_run():
        mlflow.end_run("KILLED")
    mlflow.set_tracking_uri(None)


def model_files(server: ArtgwProcess, experiment_id: str, model_id: str) -> set[str]:
    """Names of the files in `<destination>/<experiment>/models/<model id>/artifacts/`."""
    folder = f"{experiment_id}/models/{model_id}/artifacts"
    if hasattr(server, "bucket"):
        url, options = server.bucket
        return {name.rpartition("/")[2] for name in stored_files(url, options) if folder in name}
    root = getattr(server, "artifacts_root", server.cwd / "mlartifacts")
    return {p.name for p in (root / folder).iterdir()}


@pytest.mark.parametrize(
    "topology", ["combined", "split", pytest.param("on_s3", marks=pytest.mark.cloud)]
)
def test_sklearn_model_round_trip(
    request: pytest.FixtureRequest, topology: str, use_server: Callable[[str], None]
) -> None:
    server: ArtgwProcess = request.getfixturevalue(topology)
    use_server(server.url)
    experiment_id = mlflow.set_experiment(f"models-{topology}").experiment_id
    with mlflow.start_run() as run:
        mlflow.log_param("C", 1.0)
        estimator = LogisticRegression().fit(X, Y)
        mlflow.log_metric("accuracy", estimator.score(X, Y))
        # pip_requirements given: no requirements inference (a subprocess that takes ~20 s)
        info = mlflow.sklearn.log_model(estimator, name="model", pip_requirements=["scikit-learn"])
    model_id = info.model_id
    expected = estimator.predict(X)
    for uri in (f"runs:/{run.info.run_id}/model", f"models:/{model_id}"):
        loaded = mlflow.pyfunc.load_model(uri)
        assert (loaded.predict(X) == expected).all()

    assert {"MLmodel", "requirements.txt"} <= model_files(server, experiment_id, model_id)
    model = mlflow.get_logged_model(model_id)
    assert model.status.to_proto() == 2  # LOGGED_MODEL_READY
    assert model.source_run_id == run.info.run_id
    assert model.params["C"] == "1.0"

    def found(filter_string: str) -> list[str]:
        models = mlflow.search_logged_models(filter_string=filter_string, output_format="list")
        return [m.model_id for m in models]

    assert found("name = 'model'") == [model_id]
    assert found("metrics.accuracy > 0.5") == [model_id]
    assert found("params.C = '1.0'") == [model_id]
    assert found("params.C = '2.0'") == []
    assert mlflow.last_logged_model().model_id == model_id
    outputs = MlflowClient().get_run(run.info.run_id).outputs.model_outputs
    assert [o.model_id for o in outputs] == [model_id]


def test_log_input_round_trip(combined: ArtgwProcess, use_server: Callable[[str], None]) -> None:
    use_server(combined.url)
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": [0, 1]})
    dataset = mlflow.data.from_pandas(frame, name="tiny", targets="y")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training", tags={"split": "a"})
    got = MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
    assert len(got) == 1
    sent = dataset._to_mlflow_entity()
    fields = ("name", "digest", "source_type", "source", "schema", "profile")
    assert [getattr(got[0].dataset, f) for f in fields] == [getattr(sent, f) for f in fields]
    assert got[0].dataset.name == "tiny"
    assert {t.key: t.value for t in got[0].tags} == {
        "mlflow.data.context": "training",
        "split": "a",
    }

    with mlflow.start_run() as parent, mlflow.start_run(nested=True) as child:
        pass
    client = MlflowClient()
    client.set_terminated(parent.info.run_id, "FAILED")
    found = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert [r.info.run_id for r in found] == [child.info.run_id]
    assert client.get_run(parent.info.run_id).info.status == "FAILED"


def tracking_reads(url: str, run_id: str) -> dict:
    """What `artifacts/list` and `/get-artifact` answer for the run's files (fields, paths, and
    the headers a browser acts on)."""
    listing = requests.get(f"{url}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id})
    body = listing.json()
    body["root_uri"] = re.sub(
        r":/\d+/", ":/<experiment>/", body["root_uri"].replace(run_id, "<run>")
    )
    headers = {}
    for name in ("estimator.html", "training_roc_curve.png"):
        got = requests.get(f"{url}/get-artifact", params={"run_uuid": run_id, "path": name})
        assert got.status_code == 200
        headers[name] = {
            key: got.headers.get(key)
            for key in ("Content-Type", "Content-Disposition", "X-Content-Type-Options")
        }
    return {"list": body, "headers": headers}


def autolog_summary(url: str) -> dict:
    """What `mlflow.autolog()` + `LogisticRegression().fit` records on the server at `url`."""
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("autolog")
    mlflow.autolog()
    try:
        with mlflow.start_run() as run:
            LogisticRegression().fit(X, Y)
    finally:
        mlflow.autolog(disable=True)
    client = MlflowClient()
    got = client.get_run(run.info.run_id)
    artifacts = sorted(f.path for f in client.list_artifacts(run.info.run_id))
    models = [client.get_logged_model(o.model_id) for o in got.outputs.model_outputs]
    return {
        "reads": tracking_reads(url, run.info.run_id),
        "metrics": sorted(got.data.metrics),
        "params": sorted(got.data.params),
        "artifacts": artifacts,
        "datasets": [
            (d.dataset.name, [t.value for t in d.tags]) for d in got.inputs.dataset_inputs
        ],
        "models": [
            (m.name, m.status.to_proto(), sorted({x.key for x in m.metrics})) for m in models
        ],
        "model_files": [
            sorted(f.path for f in mlflow.artifacts.list_artifacts(m.artifact_location))
            for m in models
        ],
    }


RECORDED_AUTOLOG = {
    "metrics": [
        "training_accuracy_score",
        "training_f1_score",
        "training_log_loss",
        "training_precision_score",
        "training_recall_score",
        "training_roc_auc",
        "training_score",
    ],
    "artifacts": [
        "estimator.html",
        "training_confusion_matrix.png",
        "training_precision_recall_curve.png",
        "training_roc_curve.png",
    ],
}
"""Recorded from `mlflow server` 3.18 on 2026-12-01 (the live comparison below re-checks it)."""


def test_autolog_records_what_mlflow_server_records(
    combined: ArtgwProcess, use_server: Callable[[str], None], tmp_path: Path
) -> None:
    use_server(combined.url)
    reference = MlflowServer(tmp_path / "mlflow-server")
    with ThreadPoolExecutor(1) as pool:
        starting = pool.submit(reference.start)  # it takes long: start it while artgw's runs
        try:
            ours = autolog_summary(combined.url)
            assert {k: ours[k] for k in RECORDED_AUTOLOG} == RECORDED_AUTOLOG
            starting.result()
            theirs = autolog_summary(reference.url)
        finally:
            starting.result()
            reference.stop()
    assert ours == theirs


def mlflow2_python() -> Path:
    """A venv with the MLflow 2 client, made once under .emu/ (`make test` makes it beforehand;
    made here when the suite runs without it)."""
    python = MLFLOW2_VENV / "bin" / "python"
    done = MLFLOW2_VENV / ".installed"
    if not done.exists():
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW2_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", MLFLOW2_SPEC, "numpy", "pandas"]
        subprocess.run(pip, check=True, timeout=600)
        done.write_text(MLFLOW2_SPEC)
    return python


MLFLOW2_SCRIPT = """
import mlflow, mlflow.pyfunc
class Identity(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input):
        return model_input
with mlflow.start_run() as run:
    mlflow.pyfunc.log_model("model", python_model=Identity())
print(run.info.run_id)
"""


@pytest.mark.timeout(900)
def test_mlflow2_client_logs_a_model_without_warning(
    combined: ArtgwProcess, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": combined.url,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }
    result = subprocess.run(
        [str(mlflow2_python()), "-c", MLFLOW2_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "has failed" not in result.stderr
    run_id = result.stdout.split()[-1]
    tags = MlflowClient(combined.url).get_run(run_id).data.tags
    history = json.loads(tags["mlflow.log-model.history"])
    assert [entry["artifact_path"] for entry in history] == ["model"]
