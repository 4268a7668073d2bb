"""One way to reach every tracking database: transactions run off the event loop, on threads
that each hold one connection, retried when the engine reports a conflict with a concurrent one.

    db = Database(store_uri.parse(uri), create=True)
    await db.open(lambda conn: migrate.prepare(conn, ...))   # start-up work, under the lock
    run = await db.write(lambda conn: conn.execute(insert(runs).values(...)))
    rows = await db.read(lambda conn: conn.execute(select(runs)).all())
    await db.close()

`write` runs its function in one write transaction (committed when it returns, rolled back when
it raises; it may run again after a conflict, so it must not have other side effects); `read` on
one consistent snapshot. The function gets a SQLAlchemy `Connection` and runs Core statements on
it. The engines' details (isolation, locks, what is retried) are in tracking/engines.py.

Database errors become the store's: a refused value `InvalidValue`, a conflict that outlasts
the retries `Conflict`, a database that cannot be reached `Unavailable` (`StoreError` while
opening); their messages never hold the URI's password.
"""

import asyncio
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy import Connection, Engine, RootTransaction
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError

from tracking import sql_exec
from tracking.engines import Engines, make_engines
from tracking.errors import Conflict, InvalidValue, StoreError, TrackingError, Unavailable
from tracking.store_uri import StoreUri, scrub

T = TypeVar("T")
ATTEMPTS = 12
"""Tries of one transaction that keeps meeting concurrent ones."""
RECONNECTS = 1
"""Tries on a new connection when the old one turns out dead before anything was committed."""


class Database:
    def __init__(self, target: StoreUri, *, create: bool = True) -> None:
        self.target = target
        self.create = create
        self.engines: Engines | None = None
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None

    @property
    def dialect(self) -> str:
        """ "sqlite", "postgresql" or "mysql"."""
        return self.target.engine

    # -- life cycle ----------------------------------------------------------------------------

    async def open(self, setup: Callable[[Connection], None]) -> None:
        """Make the engines and run `setup` (the schema work) in one transaction of its own."""
        engines = await asyncio.to_thread(self._start, setup)
        self._writer = ThreadPoolExecutor(engines.writers, thread_name_prefix="artgw-db-write")
        self._readers = ThreadPoolExecutor(engines.readers, thread_name_prefix="artgw-db-read")

    def _start(self, setup: Callable[[Connection], None]) -> Engines:
        try:
            engines = self.engines = make_engines(self.target, create=self.create)
            with engines.writer.connect() as conn:
                if engines.setup_isolation:
                    conn = conn.execution_options(isolation_level=engines.setup_isolation)
                with self._begin(conn, "writer"):
                    setup(conn)
        except DBAPIError as exc:
            raise StoreError(f"{self.target.where}: {self._detail(exc)}") from None
        return engines

    async def close(self) -> None:
        for pool in (self._writer, self._readers):
            if pool is not None:
                await asyncio.to_thread(pool.shutdown)
        self._writer = self._readers = None
        with self._lock:
            connections, self._connections = self._connections, []
        await asyncio.to_thread(self._dispose, connections)

    def _dispose(self, connections: list[Connection]) -> None:
        for conn in connections:
            conn.close()
        if self.engines is not None:
            self.engines.writer.dispose()
            self.engines.reader.dispose()

    # -- transactions --------------------------------------------------------------------------

    async def write(self, work: Callable[[Connection], T]) -> T:
        return await self._run(self._writer, lambda: self._transaction("writer", work))

    async def read(self, work: Callable[[Connection], T]) -> T:
        return await self._run(self._readers, lambda: self._transaction("reader", work))

    def write_here(self, work: Callable[[Connection], T]) -> T:
        """`write`, in the calling thread: for command-line tools, which run no event loop
        while they work (`artgw import`)."""
        return self._transaction("writer", work)

    async def _run(self, pool: ThreadPoolExecutor | None, work: Callable[[], T]) -> T:
        if pool is None:
            raise RuntimeError("the tracking store is not open")
        return await asyncio.get_running_loop().run_in_executor(pool, work)

    def _transaction(self, role: str, work: Callable[[Connection], T]) -> T:
        """`work` in one transaction, tried again on conflicts; errors become the store's."""
        reconnects = 0
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._once(role, work)
            except _Retry as retry:
                dead = retry.error.connection_invalidated
                reconnects += dead
                if attempt == ATTEMPTS or reconnects > RECONNECTS:
                    raise self._translate(retry.error) from None
            except (OperationalError, InterfaceError, DataError, IntegrityError) as exc:
                raise self._translate(exc) from None
            time.sleep(0 if reconnects else random.uniform(0, 0.005 * 2 ** min(attempt, 7)))
        raise AssertionError("unreachable")

    def _once(self, role: str, work: Callable[[Connection], T]) -> T:
        conn = self._connection(role)
        transaction = self._begin(conn, role)
        try:
            result = work(conn)
        except DBAPIError as exc:
            transaction.rollback()
            if exc.connection_invalidated or self._retryable(exc):
                raise _Retry(exc) from exc
            raise
        except BaseException:
            transaction.rollback()
            raise
        try:
            transaction.commit()
        except DBAPIError as exc:  # a lost connection here may have committed: no retry
            transaction.rollback()
            if not exc.connection_invalidated and self._retryable(exc):
                raise _Retry(exc) from exc
            raise
        return result

    def _begin(self, conn: Connection, role: str) -> RootTransaction:
        """A transaction of `role`; when the engine's own BEGIN is refused (SQLite: the database
        is locked), SQLAlchemy's transaction is ended too, so the connection's next one can
        begin (it would answer "a transaction is already begun" for good)."""
        transaction = conn.begin()
        begin = self.engines.begin if self.engines else None
        if begin:
            try:
                sql_exec.text(conn, begin[role])  # on the driver's cursor, as the busy statements
            except BaseException:
                transaction.rollback()
                raise
        return transaction

    def _retryable(self, exc: DBAPIError) -> bool:
        return self.engines is not None and self.engines.retryable(exc)

    def _connection(self, role: str) -> Connection:
        conn: Connection | None = getattr(self._local, role, None)
        if conn is None or conn.closed:
            if self.engines is None:
                raise RuntimeError("the tracking store is not open")
            engine: Engine = getattr(self.engines, role)
            conn = engine.connect()
            setattr(self._local, role, conn)
            with self._lock:
                self._connections.append(conn)
        return conn

    # -- errors --------------------------------------------------------------------------------

    def _detail(self, exc: DBAPIError) -> str:
        return " ".join(scrub(str(exc.orig), self.target.uri).split())

    def _translate(self, exc: DBAPIError) -> TrackingError:
        detail = self._detail(exc)
        if isinstance(exc, DataError):
            return InvalidValue(f"The tracking database refused a value: {detail}")
        if isinstance(exc, IntegrityError):
            return Conflict(f"The tracking database met a concurrent change: {detail}")
        return Unavailable(f"The tracking database is unavailable: {detail}")


class _Retry(Exception):
    def __init__(self, error: DBAPIError) -> None:
        super().__init__(str(error))
        self.error = error
