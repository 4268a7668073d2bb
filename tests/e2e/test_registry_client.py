"""The model registry with the real mlflow client and scikit-learn against `artgw serve`: register,
alias, load by `models:/` URIs (predictions equal), search, rename, delete; on one server and in
the split topology (tracking on artgw, artifacts on an `--artifacts-only` artgw)."""

import json
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from tests.artgw_process import ArtgwProcess
from tests.e2e.test_client_flow import use_server  # noqa: F401 (a fixture)

# mlflow's own notices while saving and loading a model (not about the server)
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*type hint:UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
X = np.array([[0.0, 0.1], [0.2, 0.1], [0.9, 1.0], [1.0, 0.8], [0.1, 0.3], [0.8, 0.9]])
Y = np.array([0, 0, 1, 1, 0, 1])


def log_model_files(tmp_path: Path) -> tuple[str, LogisticRegression]:
    """A run whose artifacts hold `model/` (a saved sklearn model, MLmodel included)."""
    model = LogisticRegression().fit(X, Y)
    saved = tmp_path / "saved-model"
    # given requirements: inferring them runs the model in a subprocess (half a minute here)
    mlflow.sklearn.save_model(model, str(saved), pip_requirements=["scikit-learn"])
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(saved), "model")
    return run.info.run_id, model


def check_registry(tmp_path: Path) -> list[str]:
    """The whole registry round trip; returns the artifact URIs the versions pointed at."""
    run_id, model = log_model_files(tmp_path)
    expected = model.predict(X)
    client = MlflowClient()

    first = mlflow.register_model(f"runs:/{run_id}/model", "clf", tags={"checked": "yes"})
    assert (first.name, first.version, first.status) == ("clf", "1", "READY")
    assert first.tags == {"checked": "yes"}
    second = mlflow.register_model(f"runs:/{run_id}/model", "clf")  # exists: a new version
    assert second.version == "2"
    client.set_registered_model_alias("clf", "champion", "1")
    client.set_registered_model_tag("clf", "task", "classification")
    client.set_registered_model_tag("clf", "team", "ml")
    client.update_registered_model("clf", description="toy classifier")

    for uri in ("models:/clf@champion", "models:/clf/1", "models:/clf/latest"):
        loaded = mlflow.pyfunc.load_model(uri)
        assert list(loaded.predict(X)) == list(expected), uri
    assert client.get_model_version_by_alias("clf", "champion").version == "1"

    other = client.create_registered_model("regressor", tags={"team": "other"})
    assert other.name == "regressor"
    names = [m.name for m in client.search_registered_models(filter_string="name LIKE 'cl%'")]
    assert names == ["clf"]
    by_tag = client.search_registered_models(filter_string="tags.team = 'ml'")
    assert [m.name for m in by_tag] == ["clf"]
    assert sorted(m.name for m in client.search_registered_models()) == ["clf", "regressor"]
    versions = client.search_model_versions(f"run_id = '{run_id}'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    registered = client.get_registered_model("clf")
    assert registered.aliases == {"champion": "1"}
    assert registered.description == "toy classifier"
    assert registered.tags == {"team": "ml", "task": "classification"}

    uris = [client.get_model_version_download_uri("clf", v) for v in ("1", "2")]
    client.rename_registered_model("clf", "classifier")
    loaded = mlflow.pyfunc.load_model("models:/classifier@champion")
    assert list(loaded.predict(X)) == list(expected)

    client.delete_model_version("classifier", "1")
    with pytest.raises(MlflowException, match="not found"):
        client.get_model_version("classifier", "1")
    assert [v.version for v in client.search_model_versions("name = 'classifier'")] == ["2"]
    client.delete_registered_model("classifier")
    with pytest.raises(MlflowException) as error:
        client.get_registered_model("classifier")
    assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # the run still owns its files: loading it from the run works after the registry let go
    loaded = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    assert list(loaded.predict(X)) == list(expected)
    return uris


def test_registry_on_one_server(
    artgw: Callable[..., ArtgwProcess],
    tmp_path: Path,
    use_server: Callable[[str], None],  # noqa: F811
) -> None:
    cwd = tmp_path / "server"
    server = artgw("--backend-store-uri=sqlite:///mlflow.db", cwd=cwd)
    use_server(server.url)
    uris = check_registry(tmp_path)
    assert all(uri.startswith("mlflow-artifacts:/0/") for uri in uris)
    run_dir = uris[0].removeprefix("mlflow-artifacts:/")
    assert (cwd / "mlartifacts" / run_dir / "MLmodel").is_file()


def check_split(tmp_path: Path) -> list[str]:
    """Register and load by alias; returns the version's download URI."""
    run_id, model = log_model_files(tmp_path)
    version = mlflow.register_model(f"runs:/{run_id}/model", "clf")
    MlflowClient().set_registered_model_alias("clf", "champion", version.version)
    loaded = mlflow.pyfunc.load_model("models:/clf@champion")
    assert list(loaded.predict(X)) == list(model.predict(X))
    return [MlflowClient().get_model_version_download_uri("clf", version.version)]


def test_registry_in_the_split_topology(
    artgw: Callable[..., ArtgwProcess],
    tmp_path: Path,
    use_server: Callable[[str], None],  # noqa: F811
) -> None:
    artifacts = artgw("--artifacts-only", cwd=tmp_path / "artifacts-server")
    root = f"{artifacts.url}/api/2.0/mlflow-artifacts/artifacts/experiments"
    tracking = artgw(
        "--backend-store-uri=sqlite:///tracking.db",
        "--default-artifact-root",
        root,
        cwd=tmp_path / "tracking-server",
    )
    use_server(tracking.url)
    uris = check_split(tmp_path)
    assert all(uri.startswith(root + "/0/") for uri in uris)
    assert "mlflow-artifacts" not in tracking.log()
    # the tracking server relays a version's file from the artifacts server (its allow-list
    # holds the default root's host), as MLflow's UI downloads it
    query = {"name": "clf", "version": "1", "path": "MLmodel"}
    relayed = requests.get(f"{tracking.url}/model-versions/get-artifact", params=query, timeout=30)
    folder = uris[0].removeprefix(root + "/")
    stored = tmp_path / "artifacts-server" / "mlartifacts" / "experiments" / folder / "MLmodel"
    assert relayed.status_code == 200 and relayed.content == stored.read_bytes()
    assert relayed.headers["X-Content-Type-Options"] == "nosniff"


def test_log_model_with_a_registered_model_name(
    artgw: Callable[..., ArtgwProcess],
    tmp_path: Path,
    use_server: Callable[[str], None],  # noqa: F811
) -> None:
    """MLflow 3: the version's source is the logged model (`models:/m-...`), its files the
    model's; the logged model lists its registrations."""
    server = artgw("--backend-store-uri=sqlite:///mlflow.db", cwd=tmp_path / "server")
    use_server(server.url)
    model = LogisticRegression().fit(X, Y)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name="logged", pip_requirements=["scikit-learn"]
        )
    assert str(info.registered_model_version) == "1"
    loaded = mlflow.pyfunc.load_model("models:/logged/1")
    assert list(loaded.predict(X)) == list(model.predict(X))

    client = MlflowClient()
    first = client.get_model_version("logged", "1")
    assert first.source == f"models:/{info.model_id}" and first.run_id == run.info.run_id
    logged = client.get_logged_model(info.model_id)
    assert client.get_model_version_download_uri("logged", "1") == logged.artifact_location
    second = mlflow.register_model(f"models:/{info.model_id}", "logged")
    third = mlflow.register_model(f"runs:/{run.info.run_id}/model", "logged")  # finds the model
    assert (second.version, third.version) == ("2", "3")
    assert third.source == f"models:/{info.model_id}"
    # the client notes each registration on the model itself (MLflow's server does too, so its
    # tag lists each twice); artgw leaves the tag to the client and answers `registrations`
    tag = client.get_logged_model(info.model_id).tags["mlflow.modelVersions"]
    assert json.loads(tag) == [{"name": "logged", "version": v} for v in ("1", "2", "3")]
    body = requests.get(f"{server.url}/api/2.0/mlflow/logged-models/{info.model_id}").json()
    assert body["model"]["info"]["registrations"] == [
        {"name": "logged", "version": v} for v in ("1", "2", "3")
    ]
    client.delete_model_version("logged", "2")
    body = requests.get(f"{server.url}/api/2.0/mlflow/logged-models/{info.model_id}").json()
    assert [r["version"] for r in body["model"]["info"]["registrations"]] == ["1", "3"]
    assert list(mlflow.pyfunc.load_model("models:/logged/3").predict(X)) == list(model.predict(X))
