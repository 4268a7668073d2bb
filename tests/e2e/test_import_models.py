"""`artgw import` of datasets, run inputs and outputs, logged models and the model registry, from
a file store and a SQLite database the real mlflow 3.18 client wrote (built once for the
module): read back through `artgw serve` with the real client, equal to what the client reads
from the source; counted per entity; nothing imported twice; version numbers continue after
the source's highest (a deleted one included); conflicts keep the target's rows."""

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from tests.e2e.test_import_client import artgw_import
from tests.tracking.import_models import models_snapshot, write_models
from tests.tracking.import_sources import (
    checksum,
    file_store_uri,
    mlflow_database,
    snapshot,
    write_store,
)
from tracking.importer.report import Report
from tracking.importer.run import run_import
from tracking.registry import NewVersion
from tracking.sql_store import SqlStore

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]
MODEL_ENTITIES = {
    "datasets": 2,
    "inputs": 3,
    "input_tags": 3,
    "logged_models": 3,
    "logged_model_params": 1,
    "model_inputs": 1,
    "model_outputs": 1,
    "registered_models": 2,
    "registered_model_tags": 1,
    "model_versions": 2,
    "model_version_tags": 2,
    "registered_model_aliases": 2,
}
"""Rows each source holds (deleted version 3 left out; its tags and aliases went with it)."""
URI = "mlflow-artifacts:/x"


class Source:
    def __init__(self, client_uri: str, path: Path, given: str) -> None:
        self.client_uri, self.path, self.given = client_uri, path, given
        self.ids = {**write_store(client_uri), **write_models(client_uri)}
        client = MlflowClient(tracking_uri=client_uri, registry_uri=client_uri)
        self.expected = {"experiments": snapshot(client), **models_snapshot(client)}
        self.checksum = checksum(path)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Source]:
    root = tmp_path_factory.mktemp("sources")
    database = root / "mlflow.db"
    return {
        "file": Source(file_store_uri(root / "mlruns"), root / "mlruns", str(root / "mlruns")),
        "sqlite": Source(mlflow_database(database), database, f"sqlite:///{database}"),
    }


def read_back(url: str) -> dict[str, Any]:
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    return {"experiments": snapshot(client), **models_snapshot(client)}


def imported(source: Source, target: str, *, dry_run: bool = False) -> Report:
    return asyncio.run(run_import(source.given, target, dry_run=dry_run, progress=lambda _: None))


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_models_and_registry_read_back_equal(
    kind: str, sources: dict[str, Source], tmp_path: Path, artgw
) -> None:
    source = sources[kind]
    target = f"sqlite:///{tmp_path / 'artgw.db'}"
    done = artgw_import(source.given, "--backend-store-uri", target)
    assert done.returncode == 0, done.stderr
    for entity, count in MODEL_ENTITIES.items():
        assert f"{entity}: {count} imported, 0 skipped" in done.stdout
    server = artgw("--backend-store-uri", target, "--artifacts-destination", str(tmp_path / "a"))
    got = read_back(server.url)
    assert got == source.expected
    reg = got["registry"]["reg"]
    assert reg["by_alias"] == {"champion": "2", "first": "1"} and "3" not in reg["versions"]
    assert reg["versions"]["2"][0] == f"models:/{source.ids['model']}"

    again = artgw_import(source.given, "--backend-store-uri", target)
    assert again.returncode == 0, again.stderr
    for entity, count in MODEL_ENTITIES.items():
        assert f"{entity}: 0 imported, {count} skipped" in again.stdout
    assert checksum(source.path) == source.checksum


def test_dry_run_counts_what_an_import_adds(sources: dict[str, Source], tmp_path: Path) -> None:
    target = f"sqlite:///{tmp_path / 'artgw.db'}"
    dry = imported(sources["sqlite"], target, dry_run=True)
    assert not (tmp_path / "artgw.db").exists()
    real = imported(sources["sqlite"], target)
    for entity in MODEL_ENTITIES:
        assert dry[entity].imported == real[entity].imported == MODEL_ENTITIES[entity]


async def _next_version(uri: str) -> tuple[int, int]:
    """(the number a new version of 'reg' gets, one of 'empty')."""
    store = SqlStore(uri, "mlflow-artifacts:/", create=False)
    await store.open()
    try:
        made = [
            await store.create_model_version(NewVersion(name, URI, URI))
            for name in ("reg", "empty")
        ]
        return made[0].version, made[1].version
    finally:
        await store.close()


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_version_numbers_continue_past_the_deleted_one(
    kind: str, sources: dict[str, Source], tmp_path: Path
) -> None:
    target = f"sqlite:///{tmp_path / 'artgw.db'}"
    imported(sources[kind], target)
    assert asyncio.run(_next_version(target)) == (4, 1)


def test_interrupted_import_resumes(sources: dict[str, Source], tmp_path: Path) -> None:
    path = tmp_path / "artgw.db"
    imported(sources["file"], f"sqlite:///{path}")
    with sqlite3.connect(path) as db:  # as if stopped after the logged models
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("DELETE FROM registered_models")
        db.execute("DELETE FROM logged_model_metrics")
        db.execute("DELETE FROM input_tags")
    resumed = imported(sources["file"], f"sqlite:///{path}")
    assert resumed.conflicting == 0
    assert resumed["logged_models"].skipped == 3 and resumed["input_tags"].imported == 3
    for entity in ("registered_models", "model_versions", "registered_model_aliases"):
        assert resumed[entity].imported == MODEL_ENTITIES[entity]
    assert resumed["logged_model_metrics"].imported == 4


def test_conflicts_keep_the_target_and_say_why(sources: dict[str, Source], tmp_path: Path) -> None:
    path = tmp_path / "artgw.db"
    imported(sources["sqlite"], f"sqlite:///{path}")
    model_id = sources["sqlite"].ids["model"]
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("UPDATE registered_models SET creation_time = 1 WHERE name = 'reg'")
        db.execute("UPDATE model_versions SET source = 'models:/other/1' WHERE version = 2")
        db.execute(f"UPDATE logged_models SET name = 'other' WHERE model_id = '{model_id}'")
        db.execute("DELETE FROM datasets WHERE name = 'test'")
    report = imported(sources["sqlite"], f"sqlite:///{path}")
    assert report["registered_models"].conflicting == 1
    assert (
        "registered model 'reg' (created at another time)" in report["registered_models"].reasons[0]
    )
    assert report["registered_model_aliases"].conflicting == 2  # of the blocked model
    assert report["model_versions"].conflicting == 2
    assert report["logged_models"].conflicting == 1
    assert report["logged_model_params"].conflicting == 1  # the blocked model's
    assert report["datasets"].imported == 1 and report["inputs"].imported == 1
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name FROM logged_models WHERE name = 'other'").fetchall()
