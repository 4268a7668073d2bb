"""`artgw import` of stores the real mlflow 3.18 client wrote (a file store, a SQLite
database), read back through `artgw serve` with the real client: what the client reads from the
source directly, equal; the source untouched."""

import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.artgw_process import artgw_command
from tests.tracking.import_sources import (
    checksum,
    file_store_uri,
    mlflow_database,
    snapshot,
    write_store,
)

# mlflow's own notices (its SQL store uses deprecated SQLAlchemy loaders)
pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def _source(kind: str, tmp_path: Path) -> tuple[str, Path, str]:
    """(the client's URI, the source's path, what `artgw import` is given)."""
    if kind == "file":
        path = tmp_path / "mlruns"
        return file_store_uri(path), path, str(path)
    path = tmp_path / "mlflow-src.db"
    return mlflow_database(path), path, f"sqlite:///{path}"


def artgw_import(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*artgw_command(), "import", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_imported_store_reads_back_equal(kind: str, tmp_path: Path, artgw) -> None:
    client_uri, path, given = _source(kind, tmp_path)
    ids = write_store(client_uri)
    expected = snapshot(MlflowClient(tracking_uri=client_uri))
    before = checksum(path)
    target = f"sqlite:///{tmp_path / 'artgw.db'}"

    done = artgw_import(given, "--backend-store-uri", target)
    assert done.returncode == 0, done.stderr
    assert "runs: 4 imported, 0 skipped" in done.stdout
    assert "metrics: 42 imported" in done.stdout
    assert "runs: 4 imported" in done.stderr  # the progress line

    server = artgw("--backend-store-uri", target, "--artifacts-destination", str(tmp_path / "a"))
    got = snapshot(MlflowClient(tracking_uri=server.url))
    assert got == expected
    assert got[ids["gone"]]["lifecycle_stage"] == "deleted"
    assert got[ids["kept"]]["runs"][ids["child"]]["tags"]["mlflow.parentRunId"] == ids["parent"]

    again = artgw_import(given, "--backend-store-uri", target)
    assert again.returncode == 0, again.stderr
    for entity in ("experiments", "experiment_tags", "runs", "params", "tags", "metrics"):
        assert f"{entity}: 0 imported" in again.stdout
    assert checksum(path) == before


def test_serve_refuses_an_mlflow_file_store(tmp_path: Path) -> None:
    uri = file_store_uri(tmp_path / "mlruns")
    write_store(uri, points=1)
    done = subprocess.run(
        [*artgw_command(), "serve", "--backend-store-uri", str(tmp_path / "mlruns")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "holds an MLflow file store" in done.stderr and "artgw import" in done.stderr
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()
