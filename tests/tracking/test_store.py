"""The SQL store on its own, the same tests on every engine: schema at start-up, restarts,
refusals, concurrent writers, and an event loop that never waits for the database."""

import asyncio
import contextlib

import pytest
from sqlalchemy import select, text

from tests.tracking.conftest import StoreTarget
from tracking import migrate
from tracking.errors import StoreError
from tracking.open import store_from_uri
from tracking.schema import experiments, schema_version
from tracking.sql_store import SqlStore
from tracking.store import Metric, NewRun, Param, Tag, TrackingStore

REVISION = f"SELECT version_num FROM {migrate.VERSION_TABLE}"


async def opened(uri: str, root: str = "mlflow-artifacts:/") -> TrackingStore:
    store = store_from_uri(uri, root)
    await store.open()
    return store


async def test_schema_is_created_versioned_with_experiment_zero(store_uri: str) -> None:
    store = await opened(store_uri)
    assert isinstance(store, SqlStore)
    try:
        revision = await store._read(lambda c: c.execute(text(REVISION)).all())
        guard = await store._read(lambda c: c.execute(select(schema_version)).all())
        found = await store._read(
            lambda c: c.execute(select(experiments.c.experiment_id, experiments.c.name)).all()
        )
        assert [tuple(row) for row in found] == [(0, "Default")]
        assert [tuple(row) for row in revision] == [(migrate.head(),)]
        assert [tuple(row) for row in guard] == [(migrate.GUARD_VERSION,)]
    finally:
        await store.close()


async def test_everything_survives_a_restart(store_uri: str) -> None:
    store = await opened(store_uri, "s3://bucket/root")
    experiment_id = await store.create_experiment("e", None, [Tag("k", "v")])
    run = await store.create_run(NewRun(experiment_id, "me", 5, "r", (Tag("t", "1"),)))
    metrics = [Metric("m", 0.5, 1, 0), Metric("m", 0.7, 2, 1)]
    await store.log_batch(run.info.run_id, metrics, [Param("p", "1")], [])
    before = await store.get_run(run.info.run_id)
    await store.close()

    store = await opened(store_uri, "mlflow-artifacts:/")  # a new root moves nothing
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


async def test_a_newer_schema_is_refused(store_target: StoreTarget) -> None:
    """A revision this artgw does not know was written by a newer one."""
    await (await opened(store_target.uri)).close()
    store_target.execute(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '9999_future'")
    store = store_from_uri(store_target.uri, "mlflow-artifacts:/")
    with pytest.raises(StoreError, match="revision 9999_future, newer than this artgw"):
        await store.open()
    await store.close()


@pytest.mark.parametrize(
    ("table", "message"),
    [("alembic_version", "MLflow's own server"), ("something_else", "not artgw's")],
)
async def test_a_foreign_database_is_refused(
    store_target: StoreTarget, table: str, message: str
) -> None:
    store_target.execute(f"CREATE TABLE {table} (x INTEGER)")
    store = store_from_uri(store_target.uri, "mlflow-artifacts:/")
    with pytest.raises(StoreError, match=message):
        await store.open()
    await store.close()


async def test_opening_without_create_needs_an_artgw_store(store_uri: str) -> None:
    """As `artgw gc` opens it: nothing is created."""
    store = store_from_uri(store_uri, "mlflow-artifacts:/", create=False)
    with pytest.raises(StoreError, match="No tracking database"):
        await store.open()
    await store.close()
    await (await opened(store_uri)).close()  # an empty database or no file: created now
    store = store_from_uri(store_uri, "mlflow-artifacts:/", create=False)
    await store.open()
    assert (await store.get_experiment("0")).name == "Default"
    await store.close()


async def test_two_stores_on_one_database_write_concurrently(store_uri: str) -> None:
    """As worker processes and tracking replicas do: separate connections and threads."""
    first, second = await opened(store_uri), await opened(store_uri)
    try:
        runs = await asyncio.gather(
            *(store.create_run(NewRun("0", "u", i)) for i in range(20) for store in (first, second))
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


async def test_the_store_does_not_block_the_event_loop(store_target: StoreTarget) -> None:
    """While another connection holds a write lock, the loop keeps ticking and reads go on."""
    store = await opened(store_target.uri)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    with store_target.write_lock():
        writing = asyncio.create_task(store.create_experiment("waits", None, []))
        await asyncio.sleep(0.3)
        assert not writing.done() and ticks >= 10
        assert (await store.get_experiment("0")).name == "Default"  # reads still go on
    assert await writing == "1"
    ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
    await store.close()
