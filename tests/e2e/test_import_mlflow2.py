"""`artgw import` of stores MLflow 2 wrote (mlflow-skinny 2.22 in its own venv, see
test_mlflow3_client.py): a file store and a SQLite database in MLflow 2's schema (no logged
models, no run outputs, inputs without steps). Read back through `artgw serve` with the real
mlflow 3.18 client: equal to what MLflow 2's client read from the source. The source stays as
it was (its schema is not migrated)."""

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from tests.artgw_process import REPO
from tests.e2e.test_import_client import artgw_import
from tests.e2e.test_mlflow3_client import mlflow2_python
from tests.tracking.import_models import models_snapshot
from tests.tracking.import_sources import checksum, snapshot

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
WRITER = REPO / "tests" / "e2e" / "mlflow2_writer.py"
SQL_DEPS = ["sqlalchemy>=1.4,<2.1", "alembic>=1.8,<2,!=1.10.0"]
"""MLflow 2.22's SQL store needs these; mlflow-skinny leaves them out (the Makefile adds them
to the venv it makes; one made earlier gets them here)."""


def with_sql_store(python: Path) -> Path:
    probe = "import sqlalchemy, alembic; assert sqlalchemy.__version__ < '2.1'"
    if subprocess.run([str(python), "-c", probe], capture_output=True).returncode != 0:
        pip = [str(python), "-m", "pip", "install", "-q", *SQL_DEPS]
        subprocess.run(pip, check=True, timeout=600, capture_output=True)
    return python


def write_with_mlflow2(python: Path, uri: str, cwd: Path) -> Any:
    done = subprocess.run(
        [str(python), str(WRITER), "write", uri],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str, Any]]:
    """kind -> (the store's path, what `artgw import` is given, what MLflow 2 read of it)."""
    python = with_sql_store(mlflow2_python())
    root = tmp_path_factory.mktemp("mlflow2")
    database = f"sqlite:///{root / 'mlflow2.db'}"
    return {
        "file": (
            root / "mlruns",
            str(root / "mlruns"),
            write_with_mlflow2(python, f"file:{root / 'mlruns'}", root),
        ),
        "sqlite": (root / "mlflow2.db", database, write_with_mlflow2(python, database, root)),
    }


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_mlflow2_store_reads_back_equal(
    kind: str, stores: dict[str, tuple[Path, str, Any]], tmp_path: Path, artgw
) -> None:
    path, given, expected = stores[kind]
    before = checksum(path)
    target = f"sqlite:///{tmp_path / 'artgw.db'}"
    done = artgw_import(given, "--backend-store-uri", target)
    assert done.returncode == 0, done.stderr
    for line in ("runs: 3 imported", "datasets: 1 imported", "model_versions: 2 imported"):
        assert line in done.stdout
    server = artgw("--backend-store-uri", target, "--artifacts-destination", str(tmp_path / "a"))
    client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
    got = {"experiments": snapshot(client), **models_snapshot(client, logged_models=False)}
    assert json.loads(json.dumps(got)) == expected
    assert expected["registry"]["v2-model"]["by_alias"] == {"prod": "3"}
    assert checksum(path) == before
