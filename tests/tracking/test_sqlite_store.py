"""The SQLite store on its own: schema at start-up, restarts, refusals, URIs, concurrency."""

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest

from gateway.tracking import StoreError, store_from_uri
from gateway.tracking.sqlite_schema import SCHEMA_VERSION, connect, switch_to_wal
from gateway.tracking.sqlite_store import SqliteStore, path_from_uri
from gateway.tracking.store import Metric, Param, Tag


async def opened(path: Path, root: str = "mlflow-artifacts:/") -> SqliteStore:
    store = SqliteStore(str(path), root)
    await store.open()
    return store


async def test_schema_is_created_versioned_in_wal_mode(tmp_path: Path) -> None:
    store = await opened(tmp_path / "new" / "t.db")
    await store.close()
    with sqlite3.connect(tmp_path / "new" / "t.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("SELECT experiment_id, name FROM experiments").fetchall() == [
            (0, "Default")
        ]


async def test_everything_survives_a_restart(tmp_path: Path) -> None:
    store = await opened(tmp_path / "t.db", "s3://bucket/root")
    experiment_id = await store.create_experiment("e", None, [Tag("k", "v")])
    run = await store.create_run(experiment_id, "me", 5, "r", [Tag("t", "1")])
    metrics = [Metric("m", 0.5, 1, 0), Metric("m", 0.7, 2, 1)]
    await store.log_batch(run.info.run_id, metrics, [Param("p", "1")], [])
    before = await store.get_run(run.info.run_id)
    await store.close()

    store = await opened(tmp_path / "t.db", "mlflow-artifacts:/")  # a new root moves nothing
    try:
        assert await store.get_run(run.info.run_id) == before
        experiment = await store.get_experiment(experiment_id)
        assert (experiment.name, experiment.tags) == ("e", (Tag("k", "v"),))
        assert experiment.artifact_location == "s3://bucket/root/1"
        assert (await store.get_experiment("0")).artifact_location == "s3://bucket/root/0"
        history = await store.get_metric_history(run.info.run_id, "m", None, 0)
        assert history.items == metrics
        assert await store.create_experiment("f", None, []) == "2"
        new = await store.get_experiment("2")
        assert new.artifact_location == "mlflow-artifacts:/2"
    finally:
        await store.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    await (await opened(tmp_path / "t.db")).close()
    with sqlite3.connect(tmp_path / "t.db") as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    store = SqliteStore(str(tmp_path / "t.db"), "mlflow-artifacts:/")
    with pytest.raises(StoreError, match="newer than this artgw"):
        await store.open()
    await store.close()


@pytest.mark.parametrize(
    ("table", "message"),
    [("alembic_version", "MLflow's own server"), ("something_else", "not artgw's")],
)
async def test_a_foreign_database_is_refused(tmp_path: Path, table: str, message: str) -> None:
    with sqlite3.connect(tmp_path / "t.db") as conn:
        conn.execute(f"CREATE TABLE {table} (x)")
    store = SqliteStore(str(tmp_path / "t.db"), "mlflow-artifacts:/")
    with pytest.raises(StoreError, match=message):
        await store.open()
    await store.close()


async def test_opening_without_create_needs_the_file(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "absent.db"), "mlflow-artifacts:/", create=False)
    with pytest.raises(StoreError, match="No tracking database"):
        await store.open()
    await store.close()
    assert not (tmp_path / "absent.db").exists()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///rel.db", "{cwd}/rel.db"),
        ("sqlite:////abs/dir/x.db", "/abs/dir/x.db"),
        ("mlruns", "{cwd}/mlruns/mlflow.db"),
        ("./mlruns/", "{cwd}/mlruns/mlflow.db"),
        ("tracking.db", "{cwd}/tracking.db"),
        ("/abs/store", "/abs/store/mlflow.db"),
    ],
)
def test_path_from_uri(uri: str, expected: str) -> None:
    assert path_from_uri(uri) == expected.format(cwd=Path.cwd())


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("postgresql://u:p@h/db", "PostgreSQL"),
        ("mysql://h/db", "Unsupported"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
    ],
)
def test_unsupported_store_uris(uri: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        store_from_uri(uri, "mlflow-artifacts:/")


async def test_two_stores_on_one_file_write_concurrently(tmp_path: Path) -> None:
    """As worker processes do: separate connections and writer threads on one file."""
    first, second = await opened(tmp_path / "t.db"), await opened(tmp_path / "t.db")
    try:
        runs = await asyncio.gather(
            *(
                store.create_run("0", "u", i, None, [])
                for i in range(20)
                for store in (first, second)
            )
        )
        await asyncio.gather(
            *(
                store.log_batch(run.info.run_id, [Metric("m", 1.0, 1)], [Param("p", "v")], [])
                for run, store in zip(runs, [first, second] * 20, strict=True)
            )
        )
        assert len({run.info.run_id for run in runs}) == 40
        fetched = await second.get_run(runs[0].info.run_id)
        assert fetched.params == (Param("p", "v"),)
    finally:
        await first.close()
        await second.close()


async def test_the_store_does_not_block_the_event_loop(tmp_path: Path) -> None:
    """While another connection holds the write lock, the loop keeps ticking."""
    store = await opened(tmp_path / "t.db")
    blocker = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    writing = asyncio.create_task(store.create_experiment("waits", None, []))
    await asyncio.sleep(0.3)
    assert not writing.done() and ticks >= 10
    assert (await store.get_experiment("0")).name == "Default"  # reads still go on
    blocker.execute("ROLLBACK")
    blocker.close()
    assert await writing == "1"
    ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
    await store.close()


def test_switching_to_wal_waits_for_another_process(tmp_path: Path) -> None:
    """Workers starting at once on a new file: when the WAL switch meets another writer, SQLite
    answers "locked" at once instead of calling the busy handler, so the store waits itself."""
    path = tmp_path / "t.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE x (y)")
    holder.execute("BEGIN IMMEDIATE")  # another worker writing
    holder.execute("INSERT INTO x VALUES (1)")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    conn = connect(str(path), create=True)
    try:
        assert switch_to_wal(conn) == "wal"
    finally:
        release.join()
        conn.close()
        holder.close()
