"""The real mlflow client and `artgw serve`/`artgw gc` over a mount table: experiment A on an
S3 mount (its artifact_location), experiment B on a GCS mount (the default artifact root)."""

import json
import posixpath
import subprocess
from collections.abc import Callable
from pathlib import Path

import fsspec
import mlflow
import pytest
import requests
from mlflow import MlflowClient

from tests.artgw_process import ArtgwProcess, artgw_command
from tests.e2e.test_client_flow import (
    B_BYTES,
    check_listing_and_download,
    make_files,
    seed_example,
    use_server,  # noqa: F401 - a fixture
)
from tests.emulators import close_filesystem
from tests.stores import cloud_destination

pytestmark = pytest.mark.cloud


def stored_files(url: str, options: dict[str, object]) -> dict[str, bytes]:
    protocol, _, root = url.partition("://")
    fs = fsspec.filesystem(protocol, skip_instance_cache=True, **options)
    try:
        fs.invalidate_cache()
        return {posixpath.relpath(p, root): fs.cat_file(p) for p in fs.find(root)}
    finally:
        close_filesystem(fs)


def write_mounts(path: Path, mounts: dict[str, tuple[str, dict[str, object]]]) -> Path:
    table = {
        prefix: {"url": url, "storage_options": options}
        for prefix, (url, options) in mounts.items()
    }
    path.write_text(json.dumps(table))
    return path


def test_mlflow_client_across_two_mounts(
    request: pytest.FixtureRequest,
    artgw: Callable[..., ArtgwProcess],
    tmp_path: Path,
    use_server: Callable[[str], None],  # noqa: F811
) -> None:
    _, s3_url, s3_options = cloud_destination(request, "s3", prefix="hot")
    _, gs_url, gs_options = cloud_destination(request, "gcs", prefix="")
    mounts = write_mounts(
        tmp_path / "mounts.json", {"s3": (s3_url, s3_options), "cold": (gs_url, gs_options)}
    )
    cwd = tmp_path / "server"
    flags = ["--mounts-file", str(mounts), "--artifacts-destination", str(tmp_path / "default")]
    server = artgw(
        "--backend-store-uri=mlruns",
        "--default-artifact-root=mlflow-artifacts:/cold",
        *flags,
        cwd=cwd,
    )
    use_server(server.url)
    src = make_files(tmp_path / "src")

    client = MlflowClient()
    a = client.create_experiment("A", artifact_location="mlflow-artifacts:/s3/A")
    b = client.create_experiment("B")
    assert client.get_experiment(b).artifact_location == f"mlflow-artifacts:/cold/{b}"
    mlflow.set_experiment(experiment_id=a)
    run_a = seed_example(src)
    mlflow.set_experiment(experiment_id=b)
    run_b = seed_example(src)
    check_listing_and_download(run_a, src, tmp_path / "down-a")
    check_listing_and_download(run_b, src, tmp_path / "down-b")

    on_s3 = stored_files(s3_url, s3_options)
    on_gcs = stored_files(gs_url, gs_options)
    assert on_s3 == {
        f"A/{run_a}/artifacts/a.txt": b"a\n",
        f"A/{run_a}/artifacts/dir/b.txt": B_BYTES,
    }
    assert on_gcs == {
        f"{b}/{run_b}/artifacts/a.txt": b"a\n",
        f"{b}/{run_b}/artifacts/dir/b.txt": B_BYTES,
    }
    assert not (tmp_path / "default").exists() or not any((tmp_path / "default").rglob("*.txt"))
    root = requests.get(f"{server.url}/api/2.0/mlflow-artifacts/artifacts", timeout=10).json()
    assert {"path": "cold", "is_dir": True} in root["files"]

    client.delete_run(run_b)
    gc = [*artgw_command(), "gc", "--backend-store-uri=mlruns", "--run-ids", run_b, *flags]
    result = subprocess.run(gc, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Freed 1 run(s), 2 file(s)" in result.stdout
    assert stored_files(gs_url, gs_options) == {}
    assert len(stored_files(s3_url, s3_options)) == 2


def test_a_mount_that_cannot_be_used_stops_start_up_with_one_line(
    tmp_path: Path, s3_server
) -> None:
    mounts = write_mounts(
        tmp_path / "mounts.json", {"cold": ("s3://no-such-bucket-0", s3_server.storage_options)}
    )
    command = [*artgw_command(), "serve", "--artifacts-only", "--mounts-file", str(mounts)]
    command += ["--mount", "fast=memory://fast", "--artifacts-destination", str(tmp_path / "d")]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"Error: cannot use mount 'cold' (s3://no-such-bucket-0): {lines[0].split(': ', 2)[2]}"
    ]
    assert "does not exist" in lines[0]


def test_bad_mount_options_are_usage_errors(tmp_path: Path) -> None:
    command = [*artgw_command(), "serve", "--artifacts-only", "--mount", "../up=memory://x"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "mount prefix '../up'" in result.stderr
