"""The tracking store in one SQLite file.

Writes go through one dedicated writer thread, each in an IMMEDIATE transaction; reads run on a
small pool of reader threads with their own connections (WAL lets them proceed during writes).
The event loop only awaits. Several processes may share the file: SQLite's locks and the busy
timeout serialise their writers.
"""

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from tracking import uris
from tracking.errors import StoreError
from tracking.sql_query import Conn
from tracking.sql_store import SqlStore
from tracking.sqlite_schema import connect, ensure_schema, in_transaction

T = TypeVar("T")
DEFAULT_FILE = "mlflow.db"
READERS = 4


def path_from_uri(uri: str) -> str:
    """`sqlite:///rel.db`, `sqlite:////abs.db`, or a plain path: a directory gets mlflow.db.

    Looks at the filesystem: call it off the event loop."""
    if uri.startswith("sqlite:"):
        return os.path.abspath(_sqlite_path(uri))
    if os.path.isfile(uri) or uri.endswith((".db", ".sqlite", ".sqlite3")):
        return os.path.abspath(uri)
    return os.path.join(os.path.abspath(uri), DEFAULT_FILE)


def _sqlite_path(uri: str) -> str:
    path = unquote(urlsplit(uri).path)
    path = path[1:] if path.startswith("/") else path
    if path in ("", ":memory:"):
        raise StoreError("An in-memory SQLite store cannot be shared; give a file path")
    return path


class SqliteStore(SqlStore):
    def __init__(self, uri: str, default_artifact_root: str, *, create: bool = True) -> None:
        """`uri` is a --backend-store-uri; it is resolved to a file when the store opens."""
        if uri.startswith("sqlite:"):
            _sqlite_path(uri)  # refuse in-memory stores now, not at start-up
        self.uri = uri
        self.path = ""
        self.default_root = default_artifact_root
        self.create = create
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None

    # -- threads and connections ---------------------------------------------------------------

    async def open(self) -> None:
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="artgw-sqlite-write")
        self._readers = ThreadPoolExecutor(READERS, thread_name_prefix="artgw-sqlite-read")
        await self._run(self._writer, self._start)

    def _start(self) -> None:
        self.path = path_from_uri(self.uri)
        self.default_root = uris.resolve_if_local(self.default_root)
        ensure_schema(self._conn(), self.default_root, self.path)

    async def close(self) -> None:
        for pool in (self._writer, self._readers):
            if pool is not None:
                await asyncio.to_thread(pool.shutdown)
        self._writer = self._readers = None
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, create=self.create)
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def _run(self, pool: ThreadPoolExecutor | None, work: Callable[[], T]) -> T:
        if pool is None:
            raise RuntimeError("the tracking store is not open")
        return await asyncio.get_running_loop().run_in_executor(pool, work)

    async def _write(self, work: Callable[[Conn], T]) -> T:
        return await self._run(self._writer, lambda: in_transaction(self._conn(), work))

    async def _read(self, work: Callable[[Conn], T]) -> T:
        return await self._run(self._readers, lambda: self._snapshot(work))

    def _snapshot(self, work: Callable[[Conn], T]) -> T:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            return work(conn)
        finally:
            conn.execute("COMMIT")
