"""`artgw import` from MLflow databases on PostgreSQL and MariaDB (the servers the suite starts),
written by the real mlflow 3.18 client (its own schema, made by its migrations): read back
through `artgw serve` with the real client, equal to what the client reads from the source;
into a store on the same engine, counted and not imported twice."""

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from tests.tracking.import_models import models_snapshot, write_models
from tests.tracking.import_sources import snapshot, write_store
from tracking.importer.report import Report
from tracking.importer.run import run_import

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    # compose/mariadb.py's admin connection over the server's socket, collected unclosed
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]
DRIVERS = {"postgres": "postgresql+psycopg", "mariadb": "mysql+pymysql"}


class ServerSource:
    """An MLflow database on one of the suite's servers, and a way to make more databases."""

    def __init__(self, engine: str, server: Any) -> None:
        self.engine, self.server = engine, server
        self.uri = self.database()
        client_uri = DRIVERS[engine] + self.uri[self.uri.index("://") :]
        self.ids = {**write_store(client_uri), **write_models(client_uri)}
        client = MlflowClient(tracking_uri=client_uri, registry_uri=client_uri)
        self.expected = {"experiments": snapshot(client), **models_snapshot(client)}

    def database(self) -> str:
        return str(self.server.create_database(f"s_{secrets.token_hex(6)}"))


@pytest.fixture(scope="module", params=["postgres", "mariadb"])
def source(request: pytest.FixtureRequest) -> Iterator[ServerSource]:
    yield ServerSource(request.param, request.getfixturevalue(request.param))


def imported(source: str, target: str) -> Report:
    return asyncio.run(run_import(source, target, dry_run=False, progress=lambda _l: None))


def test_reads_back_equal(source: ServerSource, tmp_path: Path, artgw) -> None:
    target = f"sqlite:///{tmp_path / 'artgw.db'}"
    report = imported(source.uri, target)
    assert report.conflicting == 0 and report["model_versions"].imported == 2
    server = artgw("--backend-store-uri", target, "--artifacts-destination", str(tmp_path / "a"))
    client = MlflowClient(tracking_uri=server.url, registry_uri=server.url)
    assert {"experiments": snapshot(client), **models_snapshot(client)} == source.expected


def test_into_the_same_engine_once(source: ServerSource) -> None:
    target = source.database()
    first = imported(source.uri, target)
    assert first.conflicting == 0
    assert (first["metrics"].imported, first["logged_model_metrics"].imported) == (46, 4)
    again = imported(source.uri, target)
    assert all(tally.imported == 0 for tally in again.tallies.values())
    assert again["metrics"].skipped == 46 and again["registered_models"].skipped == 2
