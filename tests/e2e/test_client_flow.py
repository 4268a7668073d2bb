"""The seed's quick start with the real mlflow client against real `artgw serve` processes.

The client is blocking, so it runs in the test thread against subprocesses started by the `artgw`
fixture; MLFLOW_TRACKING_URI is set for one test at a time.
"""

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from backends.paths import UPLOAD_PREFIX
from tests.artgw_process import ArtgwProcess, artgw_command, free_port

B_BYTES = os.urandom(70_000) + b"\x00\r\n\xff"


@pytest.fixture
def use_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Point the mlflow client at a tracking server, for this test only."""
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail fast, never wait minutes
    yield lambda url: monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    while mlflow.active_run():
        mlflow.end_run("KILLED")


def make_files(root: Path) -> Path:
    """The seed example's files: a.txt and dir/b.txt."""
    (root / "dir").mkdir(parents=True)
    (root / "a.txt").write_text("a\n")
    (root / "dir" / "b.txt").write_bytes(B_BYTES)
    return root


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under `root` -> its bytes (None for a directory)."""
    return {
        p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


def seed_example(src: Path) -> str:
    """example.py: a run that logs a param, a metric, a.txt and dir/ as "dir"."""
    with mlflow.start_run() as run:
        mlflow.log_param("p", 1)
        mlflow.log_metric("m", 0.5)
        mlflow.log_artifact(str(src / "a.txt"))
        mlflow.log_artifacts(str(src / "dir"), artifact_path="dir")
    return run.info.run_id


def check_listing_and_download(run_id: str, src: Path, dst: Path) -> None:
    client = MlflowClient()
    listed = [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id)]
    assert listed == [("a.txt", False, 2), ("dir", True, None)]
    listed = [(f.path, f.is_dir) for f in client.list_artifacts(run_id, "dir")]
    assert listed == [("dir/b.txt", False)]
    downloaded = Path(client.download_artifacts(run_id, "", str(dst)))
    assert tree(downloaded) == tree(src)


def check_run_data(run_id: str) -> None:
    run = MlflowClient().get_run(run_id)
    assert run.data.params == {"p": "1"}
    assert run.data.metrics == {"m": 0.5}
    assert run.info.status == "FINISHED"


def run_gc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*artgw_command(), "gc", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def artifact_files(root: Path) -> set[str]:
    """The stored artifacts, without artgw's own hidden records (the multipart sweep's lease,
    written whenever a worker's sweep comes round)."""
    found = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    return {name for name in found if not name.startswith(UPLOAD_PREFIX)}


def test_seed_flow_against_one_server(
    artgw: Callable[..., ArtgwProcess], tmp_path: Path, use_server: Callable[[str], None]
) -> None:
    cwd = tmp_path / "server"
    server = artgw(
        "--backend-store-uri=mlruns", "--artifacts-destination", "./mlartifacts", cwd=cwd
    )
    use_server(server.url)
    src = make_files(tmp_path / "src")
    run_id = seed_example(src)
    check_listing_and_download(run_id, src, tmp_path / "download")
    check_run_data(run_id)
    second = seed_example(src)

    client = MlflowClient()
    plain = client.create_experiment("plain")
    placed = client.create_experiment("placed", artifact_location="mlflow-artifacts:/placed-here")
    assert client.get_experiment_by_name("plain").artifact_location == f"mlflow-artifacts:/{plain}"
    assert client.get_experiment_by_name("placed").experiment_id == placed
    assert client.get_experiment_by_name("absent") is None
    with mlflow.start_run(experiment_id=placed) as third:
        mlflow.log_artifact(str(src / "a.txt"), "x")
    dest = cwd / "mlartifacts"
    assert (dest / "placed-here" / third.info.run_id / "artifacts" / "x" / "a.txt").is_file()
    assert (dest / "0" / run_id / "artifacts" / "dir" / "b.txt").read_bytes() == B_BYTES

    client.delete_run(run_id)
    before = artifact_files(dest)
    result = run_gc(cwd, "--backend-store-uri=mlruns", "--run-ids", run_id)
    assert result.returncode == 0, result.stderr
    assert "Freed 1 run(s), 2 file(s), 70006 bytes." in result.stdout
    assert artifact_files(dest) == {f for f in before if f"/{run_id}/" not in f}
    assert not (dest / "0" / run_id).exists()  # the emptied run folder goes too
    assert (dest / "0" / second).is_dir()
    with pytest.raises(MlflowException, match="not found") as error:
        client.get_run(run_id)
    assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    check_run_data(second)


def test_gc_refuses_an_active_run(
    artgw: Callable[..., ArtgwProcess], tmp_path: Path, use_server: Callable[[str], None]
) -> None:
    server = artgw("--backend-store-uri=mlruns", cwd=tmp_path)
    use_server(server.url)
    run_id = seed_example(make_files(tmp_path / "src"))
    result = run_gc(tmp_path, "--backend-store-uri=mlruns", "--run-ids", run_id)
    assert result.returncode == 1
    assert f"Run {run_id} is active" in result.stderr
    assert (tmp_path / "mlartifacts" / "0" / run_id / "artifacts" / "a.txt").is_file()
    check_run_data(run_id)


def test_seed_flow_in_the_split_topology(
    artgw: Callable[..., ArtgwProcess], tmp_path: Path, use_server: Callable[[str], None]
) -> None:
    artifacts_cwd, tracking_cwd = tmp_path / "artifacts-server", tmp_path / "tracking-server"
    artifacts = artgw(
        "--artifacts-only",
        "--artifacts-destination",
        "./mlartifacts",
        "--log-level",
        "debug",
        cwd=artifacts_cwd,
    )
    root = f"{artifacts.url}/api/2.0/mlflow-artifacts/artifacts/experiments"
    tracking = artgw(
        "--backend-store-uri",
        "sqlite:///tracking.db",
        "--default-artifact-root",
        root,
        "--log-level",
        "debug",
        cwd=tracking_cwd,
    )
    use_server(tracking.url)
    src = make_files(tmp_path / "src")
    run_id = seed_example(src)

    # exactly the seed's `tree mlartifacts`
    dest = artifacts_cwd / "mlartifacts"
    run_root = f"experiments/0/{run_id}"
    assert list(tree(dest)) == [
        "experiments",
        "experiments/0",
        run_root,
        f"{run_root}/artifacts",
        f"{run_root}/artifacts/a.txt",
        f"{run_root}/artifacts/dir",
        f"{run_root}/artifacts/dir/b.txt",
    ]
    check_listing_and_download(run_id, src, tmp_path / "download")
    check_run_data(run_id)
    assert "mlflow-artifacts" not in tracking.log()  # the tracking server only tracks
    assert f"PUT /api/2.0/mlflow-artifacts/artifacts/{run_root}/artifacts/a.txt" in artifacts.log()

    client = MlflowClient()
    custom = root.replace("/experiments", "/custom-exp")
    placed = client.create_experiment("placed", artifact_location=custom)
    with mlflow.start_run(experiment_id=placed) as other:
        mlflow.log_artifact(str(src / "a.txt"))
    assert (dest / "custom-exp" / other.info.run_id / "artifacts" / "a.txt").is_file()

    client.delete_run(run_id)
    result = run_gc(
        tracking_cwd,
        "--backend-store-uri",
        "sqlite:///tracking.db",
        "--tracking-uri",
        tracking.url,
        "--default-artifact-root",  # the artifacts server gc may send its DELETEs to
        root,
    )
    assert result.returncode == 0, result.stderr
    assert "Freed 1 run(s), 2 file(s), 70006 bytes." in result.stdout
    assert f"DELETE /api/2.0/mlflow-artifacts/artifacts/{run_root}/artifacts " in artifacts.log()
    assert list(tree(dest / "experiments")) == ["0"]
    assert (dest / "custom-exp" / other.info.run_id / "artifacts" / "a.txt").is_file()


def test_artifacts_only_server_refuses_tracking_clearly(
    artgw: Callable[..., ArtgwProcess], tmp_path: Path, use_server: Callable[[str], None]
) -> None:
    server = artgw("--artifacts-only", cwd=tmp_path)
    use_server(server.url)
    with pytest.raises(MlflowException, match="artifacts-only") as error:
        MlflowClient().create_experiment("x")
    assert error.value.error_code == "ENDPOINT_NOT_FOUND"


def snapshot(client: MlflowClient, run_id: str) -> tuple[dict, list[dict]]:
    experiments = client.search_experiments(view_type=3, order_by=["name"])
    return client.get_run(run_id).to_dictionary(), [dict(e) for e in experiments]


def test_seed_command_line_restarted_on_the_same_file(
    artgw: Callable[..., ArtgwProcess], tmp_path: Path, use_server: Callable[[str], None]
) -> None:
    """`artgw serve` with the seed's options verbatim (only --port added, port 5000 may be busy)."""
    port = free_port()
    seed_options = (
        "--backend-store-uri=mlruns",
        "--artifacts-destination",
        "./mlartifacts",
        "--default-artifact-root",
        f"http://localhost:{port}/api/2.0/mlflow-artifacts/artifacts/experiments",
        "--gunicorn-opts",
        "--log-level debug",
    )
    first = artgw(*seed_options, port=port)
    use_server(f"http://localhost:{port}")
    src = make_files(tmp_path / "src")
    run_id = seed_example(src)
    client = MlflowClient()
    kept = client.create_experiment("kept")
    before = snapshot(client, run_id)
    assert first.stop() == 0

    second = artgw(*seed_options, port=port)
    assert snapshot(client, run_id) == before
    check_listing_and_download(run_id, src, tmp_path / "download")
    assert client.create_experiment("after-restart") == str(int(kept) + 1)
    assert seed_example(src) != run_id
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    files = artifact_files(tmp_path / "mlartifacts" / "experiments" / "0" / run_id)
    assert files == {"artifacts/a.txt", "artifacts/dir/b.txt"}
    log = second.log()
    assert "[DEBUG] POST /api/2.0/mlflow/runs/create" in log
    assert f"[DEBUG] PUT /api/2.0/mlflow-artifacts/artifacts/experiments/0/{run_id}/" in first.log()
