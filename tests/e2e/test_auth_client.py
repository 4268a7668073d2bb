"""The real mlflow client against `artgw serve --auth-file`: Basic credentials
(MLFLOW_TRACKING_USERNAME/PASSWORD) and tokens (MLFLOW_TRACKING_TOKEN), over HTTP and over HTTPS
with a certificate the test makes (MLFLOW_TRACKING_SERVER_CERT_PATH), with 2 workers."""

from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.artgw_process import ArtgwProcess
from tests.auth_users import ADMIN, READER, WRITER, UsersFile
from tests.e2e.test_client_flow import check_listing_and_download, make_files, tree
from tests.tls_certs import Pki, make_pki


@pytest.fixture
def client_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Point the client at a server with some credentials, for this test only."""
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    names = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")

    def use(url: str, **env: str) -> None:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        for name in names:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    yield use
    while mlflow.active_run():
        mlflow.end_run("KILLED")


def as_user(person) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"MLFLOW_TRACKING_USERNAME": person.name, "MLFLOW_TRACKING_PASSWORD": person.password}


def log_example(src: Path, experiment: str) -> str:
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        mlflow.log_param("p", 1)
        mlflow.log_metric("m", 0.5)
        mlflow.log_artifact(str(src / "a.txt"))
        mlflow.log_artifacts(str(src / "dir"), artifact_path="dir")
    return run.info.run_id


@pytest.fixture
def users(tmp_path: Path) -> Path:
    return UsersFile(tmp_path / "users.toml").write()


def test_basic_and_token_credentials_with_experiment_grants(
    artgw: Callable[..., ArtgwProcess], tmp_path: Path, users: Path, client_env
) -> None:
    server = artgw(
        "--auth-file", str(users), "--workers", "1", "--log-level", "debug", cwd=tmp_path / "server"
    )
    src = make_files(tmp_path / "src")
    client_env(server.url, **as_user(WRITER))
    run_id = log_example(src, "team-exp")  # the writer may create team-* experiments
    check_listing_and_download(run_id, src, tmp_path / "download")
    dest = tmp_path / "server" / "mlartifacts"
    experiment_id = MlflowClient().get_run(run_id).info.experiment_id
    assert (dest / experiment_id / run_id / "artifacts" / "a.txt").read_text() == "a\n"

    client_env(server.url, MLFLOW_TRACKING_TOKEN=WRITER.token)
    with mlflow.start_run(run_id=run_id):
        mlflow.log_artifact(str(src / "a.txt"), "by-token")
    assert (dest / experiment_id / run_id / "artifacts" / "by-token" / "a.txt").is_file()

    client_env(server.url, **as_user(READER))
    downloaded = Path(MlflowClient().download_artifacts(run_id, "", str(tmp_path / "reader")))
    assert tree(downloaded) == tree(src) | {"by-token": None, "by-token/a.txt": b"a\n"}
    with pytest.raises(MlflowException) as refused:
        MlflowClient().log_param(run_id, "q", 2)
    assert refused.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(Exception, match="PERMISSION_DENIED"):
        MlflowClient().log_text(run_id, "x", "reader.txt")

    client_env(server.url, **as_user(WRITER))
    with pytest.raises(MlflowException) as refused:
        mlflow.set_experiment("not-the-teams")
    assert refused.value.error_code == "PERMISSION_DENIED"

    client_env(server.url)
    with pytest.raises(MlflowException) as refused:
        MlflowClient().get_run(run_id)
    assert refused.value.error_code == "UNAUTHENTICATED"
    log = server.log()
    assert "user=writer" in log and "user=reader" in log
    for secret in (WRITER.password, WRITER.token, READER.password):
        assert secret not in log


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def test_https_with_two_workers(
    artgw: Callable[..., ArtgwProcess], tmp_path: Path, users: Path, pki: Pki, client_env
) -> None:
    server = artgw(
        "--auth-file", str(users), "--workers", "2",
        "--certfile", str(pki.cert), "--keyfile", str(pki.key),
        cwd=tmp_path / "server", verify=str(pki.ca),
    )  # fmt: skip
    assert server.url.startswith("https://")
    src = make_files(tmp_path / "src")
    client_env(server.url, MLFLOW_TRACKING_SERVER_CERT_PATH=str(pki.ca), **as_user(ADMIN))
    run_id = log_example(src, "anything")
    check_listing_and_download(run_id, src, tmp_path / "download")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(server.url + "/health", timeout=5)  # the system CAs do not know it
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(server.url.replace("https", "http") + "/health", timeout=5)


def test_client_certificates_with_ca_certs(
    artgw: Callable[..., ArtgwProcess], tmp_path: Path, pki: Pki, client_env
) -> None:
    server = artgw(
        "--artifacts-only", "--workers", "1",
        "--certfile", str(pki.cert), "--keyfile", str(pki.key), "--ca-certs", str(pki.ca),
        cwd=tmp_path / "server", verify=str(pki.ca), cert=str(pki.client),
    )  # fmt: skip
    assert requests.get(server.url + "/health", verify=str(pki.ca), cert=str(pki.client)).ok
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(server.url + "/health", verify=str(pki.ca), timeout=5)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--auth-file", "missing.toml"], "the users file does not exist"),
        (["--certfile", "missing.pem"], "No such file"),
        (["--keyfile", "k.pem"], "--keyfile and --ca-certs need --certfile"),
        (["--auth-store-uri", "sqlite:///x.db"], "--auth-store-uri is for --artifacts-only"),
    ],
)
def test_a_bad_security_setting_stops_the_server_with_one_line(
    tmp_path: Path, args: list[str], says: str
) -> None:
    import subprocess

    from tests.artgw_process import artgw_command

    result = subprocess.run(
        [*artgw_command(), "serve", "--artifacts-only", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_sighup_reloads_every_worker_without_dropping_connections(
    artgw: Callable[..., ArtgwProcess], tmp_path: Path
) -> None:
    import signal
    import time

    users = UsersFile(tmp_path / "users.toml")
    users.write()
    server = artgw(
        "--artifacts-only", "--auth-file", str(users.path), "--workers", "2", "--log-level", "debug"
    )
    server.wait_for_workers(2)  # a worker still starting would load the new file, not reload it
    session = requests.Session()  # one keep-alive connection, kept across the reload
    listing = server.url + "/api/2.0/mlflow-artifacts/artifacts?path="
    assert session.get(listing, auth=(READER.name, READER.password), timeout=10).status_code == 200
    users.people = [p for p in users.people if p.name != "reader"]
    users.write()
    assert server.proc is not None
    server.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while server.log().count("reloaded (") < 2:  # each worker, by SIGHUP or by the watcher
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.1)
    assert "SIGHUP" in server.log()
    assert server.proc.poll() is None  # the supervisor passed it on instead of dying
    statuses = {
        session.get(listing, auth=(READER.name, READER.password), timeout=10).status_code
        for _ in range(5)
    }
    assert statuses == {401}
    assert session.get(listing, auth=(ADMIN.name, ADMIN.password), timeout=10).status_code == 200


def test_an_oidc_jwt_as_mlflow_tracking_token(
    artgw: Callable[..., ArtgwProcess], tmp_path: Path, client_env
) -> None:
    import json

    from tests.oidc_keys import OIDC_GRANTS, Keys, oidc_table

    keys = Keys()
    keys.add("k1")
    (tmp_path / "jwks.json").write_text(json.dumps(keys.jwks()))
    users = UsersFile(
        tmp_path / "users.toml",
        grants=OIDC_GRANTS + '\n[[grants]]\nto = ["group:ml"]\npermission = "write"\nall = true\n',
        extra=oidc_table(str(tmp_path / "jwks.json")),
    ).write()
    server = artgw("--auth-file", str(users), "--workers", "1", cwd=tmp_path / "server")
    src = make_files(tmp_path / "src")
    client_env(server.url, MLFLOW_TRACKING_TOKEN=keys.token(roles=["ml"]))
    run_id = log_example(src, "from-the-idp")
    check_listing_and_download(run_id, src, tmp_path / "download")
    client_env(server.url, MLFLOW_TRACKING_TOKEN=keys.token(roles=["ml"], aud="not-artgw"))
    with pytest.raises(MlflowException) as refused:
        MlflowClient().get_run(run_id)
    assert refused.value.error_code == "UNAUTHENTICATED"


@pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::FutureWarning", "ignore::DeprecationWarning"
)  # MLflow's own warnings (type hints, pickle safety) are not what this tests
def test_a_writer_logs_and_loads_a_model_under_an_experiment_grant(
    artgw: Callable[..., ArtgwProcess], tmp_path: Path, users: Path, client_env
) -> None:
    """MLflow 3's log_model: a logged model in the writer's experiment, its artifacts under
    `<exp>/models/<model id>/artifacts`, covered by the experiment grant; a reader loads it."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    server = artgw("--auth-file", str(users), "--workers", "1", cwd=tmp_path / "server")
    client_env(server.url, **as_user(WRITER))
    mlflow.set_experiment("team-models")
    x, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(LogisticRegression().fit(x, y), name="model")
    experiment_id = mlflow.get_experiment_by_name("team-models").experiment_id
    folder = tmp_path / "server" / "mlartifacts" / experiment_id / "models" / info.model_id
    assert (folder / "artifacts" / "MLmodel").is_file()
    client_env(server.url, **as_user(READER))
    loaded = mlflow.pyfunc.load_model(f"models:/{info.model_id}")
    assert list(loaded.predict(x)) == [0, 0, 1, 1]
