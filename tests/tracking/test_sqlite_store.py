"""What only the SQLite store has: WAL, paths from URIs, in-memory refusal, the WAL switch.

The behaviour both stores share is tested on both in test_store.py."""

import contextlib
import sqlite3
import threading
from pathlib import Path

import pytest

from tracking.errors import StoreError
from tracking.open import store_from_uri
from tracking.sqlite_schema import SCHEMA_VERSION, connect, switch_to_wal
from tracking.sqlite_store import SqliteStore, path_from_uri


async def opened(path: Path, root: str = "mlflow-artifacts:/") -> SqliteStore:
    store = SqliteStore(str(path), root)
    await store.open()
    return store


async def test_schema_is_created_versioned_in_wal_mode(tmp_path: Path) -> None:
    store = await opened(tmp_path / "new" / "t.db")
    await store.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "new" / "t.db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


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
        ("mysql://h/db", "Unsupported"),
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
    conn = connect(str(path), create=True)
    try:
        assert switch_to_wal(conn) == "wal"
    finally:
        release.join()
        conn.close()
        holder.close()
