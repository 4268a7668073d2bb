"""The local twin (compose/twin.py) with the real mlflow client: the seed's flow through it, then
8 clients uploading and downloading while one gateway and one SeaweedFS volume server crash.

Runs in CI; skip it locally with `-m "not twin"`. ARTGW_TWIN_SECONDS sets the load's duration
(default 60). The closing summary (requests per gateway, nginx's retries, client errors) is
printed and written to <twin work dir>/summary.json.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from compose.example import FILES, run_example
from compose.nginx import nginx_binary
from compose.pg import server_bin
from compose.twin import ARTIFACTS_PATH, Twin
from tests.twin_load import Load

pytestmark = [pytest.mark.serial, pytest.mark.twin, pytest.mark.timeout(900)]
SECONDS = float(os.environ.get("ARTGW_TWIN_SECONDS", "60"))
CLIENTS = 8


def require_system_tools() -> None:
    """nginx and PostgreSQL come from Debian (tests/setup-system.sh): fail in CI, else skip."""
    try:
        nginx_binary(), server_bin()
    except RuntimeError as missing:
        if os.environ.get("CI"):
            pytest.fail(str(missing))
        pytest.skip(str(missing))


@pytest.fixture(scope="module")
def twin(pytestconfig: pytest.Config) -> Iterator[Twin]:
    require_system_tools()
    began = time.monotonic()
    started = Twin().start()
    say(pytestconfig, f"\ntwin started in {time.monotonic() - began:.1f} s")
    yield started
    began = time.monotonic()
    started.stop()
    seconds = time.monotonic() - began
    say(pytestconfig, f"\ntwin stopped in {seconds:.1f} s: {started.stop_seconds()}")
    if started.workdir is not None:
        shutil.rmtree(started.workdir, ignore_errors=True)


def say(config: pytest.Config, text: str) -> None:
    """Print past pytest's capture, into the CI log."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(text, flush=True)


@pytest.fixture
def client_env(twin: Twin, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mlflow client on the twin; no client-side retries, so every failure shows."""
    for name, value in twin.client_env.items():  # the tracking URI and the twin's user
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has stopped, whoever reaps it


def test_the_twin_script_stops_everything_it_started_on_ctrl_c(tmp_path: Path) -> None:
    require_system_tools()
    workdir, out = tmp_path / "twin", tmp_path / "twin.out"
    script = Path(__file__).resolve().parents[2] / "compose" / "twin.py"
    argv = [sys.executable, str(script), "--workdir", str(workdir), "--volume-servers", "2"]
    with out.open("w") as sink:
        twin = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while "Ready." not in out.read_text() and twin.poll() is None:
        assert time.monotonic() < deadline, out.read_text()
        time.sleep(0.2)
    pids = {path.stem: int(path.read_text()) for path in (workdir / "run").glob("*.pid")}
    expected = {"postgres", "master", "volume1", "volume2", "filer", "s3", "nginx", "tracking"}
    assert expected | {"gateway1", "gateway2"} == set(pids), out.read_text()
    assert all(alive(pid) for pid in pids.values())
    twin.send_signal(signal.SIGINT)
    assert twin.wait(timeout=180) == 0, out.read_text()
    assert [name for name, pid in pids.items() if alive(pid)] == []
    assert list((workdir / "run").glob("*.pid")) == []
    assert "seconds to stop" in out.read_text()


def bucket_keys(twin: Twin, prefix: str) -> set[str]:
    import boto3

    assert twin.seaweed is not None
    env = twin.seaweed.env
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    listed = s3.list_objects_v2(Bucket=twin.bucket, Prefix=prefix)
    s3.close()
    return {item["Key"].removeprefix(prefix) for item in listed.get("Contents", [])}


def test_the_seed_example_through_the_twin(twin: Twin, client_env: None, tmp_path: Path) -> None:
    run_id = run_example(tmp_path)
    run = MlflowClient().get_run(run_id)
    prefix = f"experiments/0/{run_id}/artifacts/"
    assert run.info.artifact_uri == f"{twin.nginx_url}{ARTIFACTS_PATH}/{prefix.rstrip('/')}"
    assert bucket_keys(twin, prefix) == set(FILES)  # in SeaweedFS, through the gateways
    assert twin.postgres is not None
    rows = twin.postgres.admin(f"SELECT status FROM runs WHERE run_id = '{run_id}'", "artgw")
    assert rows == [("FINISHED",)]  # in PostgreSQL, through the tracking service
    tracking_log = twin.tracking.log_path.read_text() if twin.tracking else ""
    assert "POST /api/2.0/mlflow/runs/create" in tracking_log
    assert " /api/2.0/mlflow-artifacts/" not in tracking_log  # the tracking service only tracks
    assert all(sum(counts.values()) > 0 for counts in twin.request_counts().values())
    listing = f"{twin.nginx_url}{ARTIFACTS_PATH}?path={prefix}"
    assert requests.get(listing, timeout=10).status_code == 401  # through nginx, auth is on
    signed_in = requests.get(listing, auth=(twin.user, twin.password), timeout=10)
    assert signed_in.status_code == 200 and signed_in.json()["files"]


def test_experiment_grants_hold_on_the_gateways(
    twin: Twin, client_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """twin-team may write to the team-* experiments only; the artifacts-only gateways behind
    nginx find each path's experiment in PostgreSQL (--auth-store-uri)."""
    admin = (twin.user, twin.password)
    made = requests.post(
        f"{twin.tracking_url}/api/2.0/mlflow/runs/create",
        json={"experiment_id": "0"},
        auth=admin,
        timeout=10,
    )
    others = made.json()["run"]["info"]["run_id"]
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", twin.team_user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", twin.team_password)
    mlflow.set_experiment("team-twin")
    (tmp_path / "note.txt").write_text("team\n")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "note.txt"))
    assert MlflowClient().download_artifacts(run.info.run_id, "note.txt", str(tmp_path / "d"))
    team = (twin.team_user, twin.team_password)
    base = f"{twin.nginx_url}{ARTIFACTS_PATH}/experiments"
    assert (
        requests.put(
            f"{base}/0/{others}/artifacts/x.txt", data=b"x", auth=team, timeout=10
        ).status_code
        == 403
    )
    assert (
        requests.get(f"{base}/0/{others}/artifacts/x.txt", auth=team, timeout=10).status_code == 403
    )


def test_multipart_parts_spread_over_both_gateways(
    twin: Twin, client_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client's parts go through nginx to both gateways, which share ARTGW_SECRET."""
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1 << 20))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 << 20))
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(40 << 20))
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(source), "models")
    back = MlflowClient().download_artifacts(run.info.run_id, "models/model.bin", str(tmp_path))
    assert Path(back).read_bytes() == source.read_bytes()
    parts = [
        g.log_path.read_text().count("PUT /api/2.0/mlflow-artifacts/mpu/part/")
        for g in twin.gateways
    ]
    assert sum(parts) == 8 and all(parts), parts


def test_no_byte_is_lost_when_a_gateway_and_a_volume_server_crash(
    twin: Twin, client_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert twin.seaweed is not None
    load = Load(twin.tracking_url, tmp_path / "load", clients=CLIENTS, seconds=SECONDS)
    load.start()
    time.sleep(SECONDS / 3)
    crashed_at = time.monotonic()
    gateway, volume = twin.gateways[0], twin.seaweed.volumes[0]
    gateway.kill()
    volume.kill()
    load.join()

    mismatched = load.verify_all()
    after = load.successes_since(crashed_at)
    summary = {
        "seconds": SECONDS,
        "clients": CLIENTS,
        "crashed": [gateway.name, volume.name],
        "artifacts": len(load.uploads),
        "bytes": sum(upload.size for upload in load.uploads),
        "after_crash": after,
        "client_errors": load.error_summary(),
        "mismatched_or_missing": mismatched,
        "gateway_requests": {k: dict(v) for k, v in twin.request_counts().items()},
        "nginx": twin.nginx_summary(),
    }
    (twin.root / "summary.json").write_text(json.dumps(summary, indent=2))
    with capsys.disabled():
        print("\ntwin load summary:", json.dumps(summary, indent=2))
    assert mismatched == []
    assert not load.gave_up, load.gave_up
    assert after["uploads"] > 0 and after["downloads"] > 0
    assert run_example(tmp_path / "after")  # the seed's flow on the survivors
