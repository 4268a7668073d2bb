"""Schemas over time: a database written by artgw 0.1 opens, keeps every row, and ends with the
very schema a new database gets; stores starting at once prepare a schema once.

The fixtures in legacy/ were written by artgw 0.1 (commit 7691d64) through its own store: three
experiments (one deleted, with its run), tags with unicode and empty values, a finished run with
22 metric points (one NaN), params and tags, a deleted run. `artgw-0.1.db` is its SQLite file
(checkpointed, in rollback-journal mode); `artgw-0.1.postgres.sql` its PostgreSQL database, as
pg_dump printed it.
"""

import asyncio
import contextlib
import math
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.pool import NullPool

from compose.pg import PostgresCluster
from tests.tracking.conftest import StoreTarget
from tracking import migrate
from tracking.errors import StoreError
from tracking.open import store_from_uri
from tracking.sql_store import SqlStore
from tracking.store import Metric, Tag

LEGACY = Path(__file__).parent / "legacy"
LEGACY_RUN = "d1fd6c8e6a6846d3bdb7cac31b80bcf1"
LEGACY_PG_RUN = "08d121e33577406281c3ad6e16e3e78c"
LEGACY_TABLES = (
    "experiments",
    "experiment_tags",
    "runs",
    "params",
    "tags",
    "metrics",
    "latest_metrics",
)


async def opened(uri: str) -> SqlStore:
    store = store_from_uri(uri, "mlflow-artifacts:/")
    assert isinstance(store, SqlStore)
    await store.open()
    return store


def rows(uri: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of artgw 0.1's tables, sorted."""
    with _connection(uri) as conn:
        return {
            table: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {table}"))))
            for table in LEGACY_TABLES
        }


@contextlib.contextmanager
def _connection(uri: str) -> Iterator[Connection]:
    url = f"postgresql+psycopg://{uri.partition('://')[2]}" if uri.startswith("postgres") else uri
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def describe(uri: str) -> dict[str, Any]:
    """The schema as the database reports it: tables, columns, keys, indexes (SQLite keeps no
    names for unnamed constraints, so names count only elsewhere)."""
    with _connection(uri) as conn:
        inspector = inspect(conn)
        named = conn.dialect.name != "sqlite"
        found = {}
        for table in sorted(set(inspector.get_table_names()) - {migrate.VERSION_TABLE}):
            if table == "sqlite_sequence":
                continue
            primary = inspector.get_pk_constraint(table)
            keys = primary["constrained_columns"]
            found[table] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"] and c["name"] not in keys)
                    for c in inspector.get_columns(table)
                ],
                "primary": (keys, primary["name"] if named else None),
                "foreign": _foreign(conn, inspector, table, named),
                "indexes": sorted(
                    (ix["name"], ix["column_names"], ix["unique"])
                    for ix in inspector.get_indexes(table)
                ),
                "unique": _unique(conn, inspector, table, named),
            }
        return found


def _foreign(conn: Connection, inspector: Any, table: str, named: bool) -> list[Any]:
    """(columns, table, columns, ON DELETE, name); SQLAlchemy misses SQLite's ON DELETE where
    the referred columns are implied, as in artgw 0.1's schema, so SQLite's own list says."""
    deletes = {}
    if not named:
        listed = conn.exec_driver_sql(f"PRAGMA foreign_key_list({table})").all()
        deletes = {row[3]: row[6] for row in listed}
    return sorted(
        (
            fk["constrained_columns"],
            fk["referred_table"],
            fk["referred_columns"],
            fk["options"].get("ondelete") if named else deletes[fk["constrained_columns"][0]],
            fk["name"] if named else None,
        )
        for fk in inspector.get_foreign_keys(table)
    )


def _unique(conn: Connection, inspector: Any, table: str, named: bool) -> list[Any]:
    if named:
        return sorted(
            (u["name"], u["column_names"]) for u in inspector.get_unique_constraints(table)
        )
    listed = conn.exec_driver_sql(f"PRAGMA index_list({table})").all()
    return sorted(
        [r[2] for r in conn.exec_driver_sql(f"PRAGMA index_info({index[1]})")]
        for index in listed
        if index[3] == "u"
    )


async def check_legacy_store(uri: str, run_id: str) -> None:
    before = rows(uri)
    store = await opened(uri)
    try:
        run = await store.get_run(run_id)
        assert run.info.run_name == "baseline" and run.info.status == "FINISHED"
        assert [m.key for m in run.metrics] == ["acc", "loss", "nan"]
        assert math.isnan(run.metrics[2].value)
        assert {p.key: p.value for p in run.params} == {"lr": "0.01", "layers": "3"}
        assert Tag("note", "ünïcode ✓") in run.tags
        history = await store.get_metric_history(run_id, "loss", None, 0)
        assert [m.step for m in history.items] == list(range(20))
        assert (await store.get_experiment("3")).lifecycle_stage == "deleted"
        assert await store.create_experiment("after", None, []) == "4"
        await store.log_batch(run_id, [Metric("loss", 0.01, 1, 99)], [], [])
    finally:
        await store.close()
    after = rows(uri)
    assert len(after["metrics"]) == len(before["metrics"]) + 1
    for table in ("runs", "params", "tags", "experiment_tags"):
        assert after[table] == before[table], table
    assert set(before["metrics"]) < set(after["metrics"])


async def test_a_sqlite_database_of_artgw_0_1_opens_with_nothing_lost(tmp_path: Path) -> None:
    shutil.copy(LEGACY / "artgw-0.1.db", tmp_path / "old.db")
    uri = f"sqlite:///{tmp_path}/old.db"
    await check_legacy_store(uri, LEGACY_RUN)
    with contextlib.closing(sqlite3.connect(tmp_path / "old.db")) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    await (await opened(f"sqlite:///{tmp_path}/new.db")).close()
    assert describe(uri) == describe(f"sqlite:///{tmp_path}/new.db")


@pytest.fixture
def legacy_postgres(postgres: PostgresCluster) -> Iterator[str]:
    """A new database holding artgw 0.1's, owned by artgw's role (as its store made it)."""
    import psycopg

    name = f"legacy_{secrets.token_hex(4)}"
    uri = postgres.create_database(name)
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute((LEGACY / "artgw-0.1.postgres.sql").read_text())  # type: ignore[arg-type]
    yield uri
    postgres.drop_database(name)


async def test_a_postgres_database_of_artgw_0_1_opens_with_nothing_lost(
    legacy_postgres: str, postgres: PostgresCluster
) -> None:
    await check_legacy_store(legacy_postgres, LEGACY_PG_RUN)
    fresh = postgres.create_database(f"fresh_{secrets.token_hex(4)}")
    await (await opened(fresh)).close()
    assert describe(legacy_postgres) == describe(fresh)


async def test_artgw_0_1_refuses_a_migrated_database(tmp_path: Path) -> None:
    """Its schema_version now reads 2: an older artgw stops instead of writing."""
    shutil.copy(LEGACY / "artgw-0.1.db", tmp_path / "old.db")
    await (await opened(f"sqlite:///{tmp_path}/old.db")).close()
    with contextlib.closing(sqlite3.connect(tmp_path / "old.db")) as conn:
        conn.execute(f"DROP TABLE {migrate.VERSION_TABLE}")
        conn.commit()
    store = store_from_uri(f"sqlite:///{tmp_path}/old.db", "mlflow-artifacts:/")
    with pytest.raises(StoreError, match="schema version 2, newer than this artgw"):
        await store.open()
    await store.close()


async def test_stores_opening_a_new_database_at_once_create_it_once(store_uri: str) -> None:
    """As worker processes starting together: one creates the schema under the lock, the others
    find it made."""
    stores = [store_from_uri(store_uri, "mlflow-artifacts:/") for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        names = [(await store.get_experiment("0")).name for store in stores]
        assert names == ["Default"] * 4
        assert await stores[0].create_experiment("one", None, []) == "1"
    finally:
        for store in stores:
            await store.close()


def test_fresh_schema_is_the_metadata(store_target: StoreTarget) -> None:
    """What `create_all` made is what tracking/schema.py says, as Alembic compares them."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from tracking import schema

    asyncio.run(_open_close(store_target.uri))
    with _connection(store_target.uri) as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": migrate.VERSION_TABLE}
        )
        assert compare_metadata(context, schema.metadata) == []


async def _open_close(uri: str) -> None:
    await (await opened(uri)).close()
