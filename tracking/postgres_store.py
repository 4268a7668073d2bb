"""The tracking store in PostgreSQL, for tracking services that share one database.

It runs the very SQL of the SQLite store (sql_experiments.py, sql_runs.py) through psycopg 3, on a
small pool of threads that each hold one connection: the event loop only awaits. Writes are
SERIALIZABLE transactions, retried when PostgreSQL reports a conflict with a concurrent one, so
that check-then-write steps (a free experiment name, a param not logged with another value) hold
as they do under SQLite's single writer, across any number of processes. Reads are REPEATABLE
READ snapshots. The password of the URI never appears in a message.
"""

import asyncio
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from tracking import uris
from tracking.errors import InvalidValue, StoreError, Unavailable
from tracking.postgres_conn import PgConn, connect, conninfo, driver, redact, scrub
from tracking.postgres_schema import ensure_schema
from tracking.sql_query import Conn
from tracking.sql_store import SqlStore

T = TypeVar("T")
THREADS = 8
"""Connections (and threads) per process."""
ATTEMPTS = 12
"""Tries of one transaction that keeps meeting concurrent ones."""
BEGIN_WRITE = "BEGIN ISOLATION LEVEL SERIALIZABLE"
BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
RETRY_STATES = frozenset({"40001", "40P01", "23505"})
"""serialization_failure, deadlock_detected, and unique_violation (a concurrent insert of the
same key: the next try's check sees it and answers as SQLite would)."""


class PostgresStore(SqlStore):
    def __init__(self, uri: str, default_artifact_root: str, *, create: bool = True) -> None:
        conninfo(uri)  # refuse a foreign URI now, not at start-up
        self.uri = uri
        self.where = redact(uri)
        self.default_root = default_artifact_root
        self.create = create
        self._local = threading.local()
        self._connections: list[PgConn] = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    # -- threads and connections ---------------------------------------------------------------

    async def open(self) -> None:
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="artgw-postgres")
        await self._run(self._start)

    def _start(self) -> None:
        self.default_root = uris.resolve_if_local(self.default_root)
        psycopg = driver()
        try:
            ensure_schema(self._conn(), self.default_root, self.where, create=self.create)
        except psycopg.Error as exc:
            raise StoreError(f"{self.where}: {scrub(str(exc), self.uri)}") from None

    async def close(self) -> None:
        if self._pool is not None:
            await asyncio.to_thread(self._pool.shutdown)
        self._pool = None
        with self._lock:
            connections, self._connections = self._connections, []
        await asyncio.to_thread(lambda: [conn.close() for conn in connections])

    def _conn(self) -> PgConn:
        conn: PgConn | None = getattr(self._local, "conn", None)
        if conn is None or not conn.usable:
            conn = connect(self.uri)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def _run(self, work: Callable[[], T]) -> T:
        if self._pool is None:
            raise RuntimeError("the tracking store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    async def _write(self, work: Callable[[Conn], T]) -> T:
        return await self._run(lambda: self._call(BEGIN_WRITE, work))

    async def _read(self, work: Callable[[Conn], T]) -> T:
        return await self._run(lambda: self._call(BEGIN_READ, work))

    # -- transactions (in a pool thread) -------------------------------------------------------

    def _call(self, begin: str, work: Callable[[Conn], T]) -> T:
        """One transaction, its database errors turned into the API's."""
        psycopg = driver()
        try:
            return self._retrying(begin, work)
        except StoreError as exc:  # connecting failed
            raise Unavailable(str(exc)) from None
        except psycopg.DataError as exc:
            message = scrub(str(exc), self.uri)
            raise InvalidValue(f"The tracking database refused a value: {message}") from None
        except psycopg.OperationalError as exc:
            message = scrub(str(exc), self.uri)
            raise Unavailable(f"The tracking database is unavailable: {message}") from None

    def _retrying(self, begin: str, work: Callable[[Conn], T]) -> T:
        psycopg = driver()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._once(begin, work)
            except psycopg.Error as exc:
                if getattr(exc, "sqlstate", None) not in RETRY_STATES or attempt == ATTEMPTS:
                    raise
            time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 7)))
        raise AssertionError("unreachable")

    def _once(self, begin: str, work: Callable[[Conn], T]) -> T:
        conn = self._begin(begin)
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise
        return result

    def _begin(self, begin: str) -> PgConn:
        """BEGIN on this thread's connection; one that went stale (a database restart) is
        replaced once, as nothing was sent on it yet."""
        conn = self._conn()
        try:
            conn.execute(begin)
        except driver().OperationalError:
            self._local.conn = None
            conn = self._conn()
            conn.execute(begin)
        return conn
