"""What only the SQLite store has: WAL, paths from URIs, in-memory refusal, the WAL switch.

The behaviour every engine shares is tested on each in test_store.py."""

import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest

from tracking import migrate
from tracking.engines import sqlite_connect, switch_to_wal
from tracking.errors import StoreError
from tracking.open import store_from_uri
from tracking.store_uri import sqlite_path


async def test_schema_is_created_at_the_head_in_wal_mode(tmp_path: Path) -> None:
    store = store_from_uri(str(tmp_path / "new" / "t.db"), "mlflow-artifacts:/")
    await store.open()
    await store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "new" / "t.db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        revision = conn.execute(f"SELECT version_num FROM {migrate.VERSION_TABLE}").fetchall()
        assert revision == [(migrate.head(),)]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///rel.db", "{cwd}/rel.db"),
        ("sqlite:////abs/dir/x.db", "/abs/dir/x.db"),
        ("sqlite://///abs/dir/x.db", "/abs/dir/x.db"),  # SQLAlchemy's, in MLflow's own tests
        ("sqlite+pysqlite:////abs/x.db?timeout=20", "/abs/x.db"),
        ("sqlite:///sp%20ace.db", "{cwd}/sp ace.db"),
        ("mlruns", "{cwd}/mlruns/mlflow.db"),
        ("./mlruns/", "{cwd}/mlruns/mlflow.db"),
        ("tracking.db", "{cwd}/tracking.db"),
        ("/abs/store", "/abs/store/mlflow.db"),
        ("file:///abs/mlruns", "/abs/mlruns/mlflow.db"),
    ],
)
def test_sqlite_path(uri: str, expected: str) -> None:
    assert sqlite_path(uri) == expected.format(cwd=Path.cwd())


async def test_the_sqlalchemy_form_of_an_absolute_path_opens(tmp_path: Path) -> None:
    """`sqlite://///abs.db` stopped `artgw serve` at start ("invalid uri authority")."""
    store = store_from_uri(f"sqlite:////{tmp_path}/five.db", "mlflow-artifacts:/")
    await store.open()
    try:
        assert (await store.get_experiment("0")).name == "Default"
    finally:
        await store.close()
    assert (tmp_path / "five.db").is_file()


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("mssql://h/db", "Unsupported"),
        ("s3://bucket/x", "Unsupported"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
    ],
)
def test_unsupported_store_uris(uri: str, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        store_from_uri(uri, "mlflow-artifacts:/")


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
    conn = sqlite_connect(str(path), create=True)
    try:
        switch_to_wal(conn, str(path))
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        release.join()
        conn.close()
        holder.close()
