"""SQLAlchemy engines for each kind of database: how to connect, which isolation a write and a
read get, and which errors mean "try the transaction again".

- SQLite: the file opened by Python's sqlite3 in autocommit mode, WAL, a 30 s busy timeout;
  writes BEGIN IMMEDIATE (one writer thread per process; SQLite's lock orders processes),
  reads BEGIN (a snapshot; WAL lets them run during writes).
- PostgreSQL (psycopg 3, from the libpq form of the URI): SERIALIZABLE writes, retried on
  serialization failures, deadlocks and unique violations (the next try's checks see the
  concurrent row and answer as SQLite would); REPEATABLE READ READ ONLY reads.
- MySQL/MariaDB (PyMySQL, whatever driver the URI names): SERIALIZABLE writes, retried on
  deadlocks, lock wait timeouts and duplicate keys; REPEATABLE READ reads; a strict sql_mode
  that also lets experiment 0 be inserted as 0.
"""

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from tracking.errors import StoreError
from tracking.store_uri import StoreUri

BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT = 10
MYSQL_SQL_MODE = "TRADITIONAL,NO_AUTO_VALUE_ON_ZERO"
SQLITE_BEGIN = {"writer": "BEGIN IMMEDIATE", "reader": "BEGIN"}
PG_RETRY = frozenset({"40001", "40P01", "23505"})
"""serialization_failure, deadlock_detected, unique_violation."""
MYSQL_RETRY = frozenset({1213, 1205, 1062, 1020})
"""ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT, ER_DUP_ENTRY, ER_CHECKREAD."""
INSTALL_HINTS = {
    "postgresql": "The PostgreSQL tracking store needs psycopg: pip install 'artgw[postgres]'",
    "mysql": "The MySQL/MariaDB tracking store needs PyMySQL: pip install 'artgw[mysql]'",
}


@dataclass(frozen=True, slots=True)
class Engines:
    writer: Engine
    reader: Engine
    writers: int
    """Threads (each with its connection) running write transactions, per process."""
    readers: int
    setup_isolation: str | None
    """The isolation of start-up's schema work (None: the writer's)."""
    retryable: Callable[[DBAPIError], bool]
    begin: dict[str, str] | None = None
    """SQL that starts a transaction of a role ("writer", "reader"), when the driver's own
    beginning is off (SQLite's, in autocommit mode). Sent by the Database rather than from an
    engine event: any engine event makes SQLAlchemy dispatch events around every statement."""


def make_engines(target: StoreUri, *, create: bool) -> Engines:
    """The engines of a store (blocking for SQLite: it resolves the file's path)."""
    makers = {"sqlite": _sqlite, "postgresql": _postgres, "mysql": _mysql}
    try:
        return makers[target.engine](target, create)
    except ImportError:
        raise StoreError(INSTALL_HINTS[target.engine]) from None


# -- SQLite ------------------------------------------------------------------------------------


def sqlite_connect(path: str, *, create: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread."""
    if create:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    elif not os.path.isfile(path):
        raise StoreError(f"No tracking database at {path}")
    conn = sqlite3.connect(
        f"file:{quote(path)}?mode={'rwc' if create else 'rw'}",
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


def switch_to_wal(conn: sqlite3.Connection, path: str) -> None:
    """Set WAL mode, waiting for other processes doing the same: SQLite answers "locked" here
    without calling the busy handler when several workers open a new file at once."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    if mode.lower() != "wal":
        raise StoreError(f"{path}: could not switch the database to WAL mode")


def _sqlite(target: StoreUri, create: bool) -> Engines:
    path = target.path()

    def writer_connection() -> sqlite3.Connection:
        conn = sqlite_connect(path, create=create)
        switch_to_wal(conn, path)
        return conn

    writer = create_engine("sqlite+pysqlite://", creator=writer_connection, poolclass=NullPool)
    reader = create_engine(
        "sqlite+pysqlite://", creator=lambda: sqlite_connect(path, create=False), poolclass=NullPool
    )
    return Engines(writer, reader, 1, 4, None, lambda _exc: False, SQLITE_BEGIN)


# -- PostgreSQL --------------------------------------------------------------------------------


def conninfo(uri: str) -> str:
    """The libpq URI: SQLAlchemy's `postgresql+driver://` (as given to MLflow) loses its driver
    part; the rest (user, password, host, port, db, ?options) is kept."""
    return f"postgresql://{uri.partition('://')[2]}"


def _postgres(target: StoreUri, create: bool) -> Engines:
    import psycopg

    libpq = conninfo(target.uri)

    def connect() -> Any:
        return psycopg.connect(libpq, connect_timeout=CONNECT_TIMEOUT, application_name="artgw")

    def engine(isolation: str, **options: Any) -> Engine:
        return create_engine(
            "postgresql+psycopg://",
            creator=connect,
            poolclass=NullPool,
            isolation_level=isolation,
            execution_options=options,
        )

    writer = engine("SERIALIZABLE")
    reader = engine("REPEATABLE READ", postgresql_readonly=True)
    return Engines(writer, reader, 4, 4, "READ COMMITTED", _pg_retryable)


def _pg_retryable(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in PG_RETRY


# -- MySQL / MariaDB ---------------------------------------------------------------------------


def _mysql(target: StoreUri, create: bool) -> Engines:
    import pymysql  # noqa: F401 (the install hint when missing)

    url = make_url(target.uri).set(drivername="mysql+pymysql")
    if "charset" not in url.query:
        url = url.update_query_dict({"charset": "utf8mb4"})

    def engine(isolation: str) -> Engine:
        made = create_engine(
            url,
            poolclass=NullPool,
            isolation_level=isolation,
            connect_args={"connect_timeout": CONNECT_TIMEOUT},
        )
        event.listen(made, "connect", _mysql_session)
        return made

    return Engines(
        engine("SERIALIZABLE"), engine("REPEATABLE READ"), 4, 4, "AUTOCOMMIT", _mysql_retryable
    )


def _mysql_session(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET SESSION sql_mode = '{MYSQL_SQL_MODE}'")


def _mysql_retryable(exc: DBAPIError) -> bool:
    args: tuple[Any, ...] = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in MYSQL_RETRY
