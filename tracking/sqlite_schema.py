"""The tracking store's SQLite schema: connections, and the schema created or upgraded at start-up.

The file is shared by every worker process (and by `artgw gc`), so connections use WAL and a long
busy timeout, and start-up runs in one IMMEDIATE transaction: exactly one process creates or
upgrades the schema, the others wait for it and then find it current.
"""

import os
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import quote

from tracking.errors import StoreError
from tracking.schema_rules import create, refuse_foreign, upgrade

T = TypeVar("T")
BUSY_TIMEOUT_MS = 30_000
SCHEMA_VERSION = 1

SCHEMA_V1 = (
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    """CREATE TABLE experiments (
        experiment_id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        artifact_location TEXT NOT NULL,
        lifecycle_stage TEXT NOT NULL,
        creation_time INTEGER NOT NULL,
        last_update_time INTEGER NOT NULL)""",
    """CREATE TABLE experiment_tags (
        experiment_id INTEGER NOT NULL REFERENCES experiments ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (experiment_id, key))""",
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        experiment_id INTEGER NOT NULL REFERENCES experiments,
        name TEXT NOT NULL,
        user_id TEXT NOT NULL,
        status TEXT NOT NULL,
        start_time INTEGER,
        end_time INTEGER,
        artifact_uri TEXT NOT NULL,
        lifecycle_stage TEXT NOT NULL,
        deleted_time INTEGER,
        deleted_with_experiment INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX runs_by_experiment ON runs (experiment_id, start_time)",
    """CREATE TABLE params (
        run_id TEXT NOT NULL REFERENCES runs ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key))""",
    """CREATE TABLE tags (
        run_id TEXT NOT NULL REFERENCES runs ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run_id, key))""",
    """CREATE TABLE metrics (
        run_id TEXT NOT NULL REFERENCES runs ON DELETE CASCADE,
        key TEXT NOT NULL,
        value REAL NOT NULL,
        is_nan INTEGER NOT NULL,
        timestamp INTEGER NOT NULL,
        step INTEGER NOT NULL,
        PRIMARY KEY (run_id, key, step, timestamp, value, is_nan))""",
    """CREATE TABLE latest_metrics (
        run_id TEXT NOT NULL REFERENCES runs ON DELETE CASCADE,
        key TEXT NOT NULL,
        value REAL NOT NULL,
        is_nan INTEGER NOT NULL,
        timestamp INTEGER NOT NULL,
        step INTEGER NOT NULL,
        PRIMARY KEY (run_id, key))""",
)

MIGRATIONS: dict[int, tuple[str, ...]] = {}
"""Statements that upgrade version N-1 to N, for N > 1, run in order at start-up."""


def connect(path: str, *, create: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread."""
    if create:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    elif not os.path.isfile(path):
        raise StoreError(f"No tracking database at {path}")
    mode = "rwc" if create else "rw"
    conn = sqlite3.connect(
        f"file:{quote(os.path.abspath(path))}?mode={mode}",
        uri=True,
        isolation_level=None,
        check_same_thread=False,
        timeout=BUSY_TIMEOUT_MS / 1000,
    )
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA case_sensitive_like = ON")  # MLflow's LIKE is case-sensitive
    conn.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL mode, and much faster
    return conn


def ensure_schema(conn: sqlite3.Connection, default_artifact_root: str, path: str) -> None:
    """Create the schema and experiment 0 on a new file, upgrade an older one, refuse others."""
    if switch_to_wal(conn).lower() != "wal":
        raise StoreError(f"{path}: could not switch the database to WAL mode")
    in_transaction(conn, lambda c: _ensure(c, default_artifact_root, path))


def switch_to_wal(conn: sqlite3.Connection) -> str:
    """Set WAL mode, waiting for other processes doing the same: SQLite answers "locked" here
    without calling the busy handler when several workers open a new file at once."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _ensure(conn: sqlite3.Connection, default_artifact_root: str, path: str) -> None:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "schema_version" not in tables:
        refuse_foreign(tables - {"sqlite_sequence"}, path)
        _create(conn, default_artifact_root)
        return
    upgrade(conn, path, SCHEMA_VERSION, MIGRATIONS)


def _create(conn: sqlite3.Connection, default_artifact_root: str) -> None:
    create(conn, SCHEMA_V1, SCHEMA_VERSION, MIGRATIONS, default_artifact_root)
