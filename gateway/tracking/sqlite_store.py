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

from gateway.tracking import sqlite_experiments as experiments
from gateway.tracking import sqlite_runs as runs
from gateway.tracking import uris
from gateway.tracking.sqlite_schema import connect, ensure_schema, in_transaction
from gateway.tracking.store import (
    ACTIVE,
    DELETED,
    Experiment,
    Metric,
    Page,
    Param,
    Run,
    RunInfo,
    Search,
    StoreError,
    Tag,
    TrackingStore,
    now_ms,
)

T = TypeVar("T")
Conn = sqlite3.Connection
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


class SqliteStore(TrackingStore):
    def __init__(self, uri: str, default_artifact_root: str, *, create: bool = True) -> None:
        """`uri` is a --backend-store-uri; it is resolved to a file when the store opens."""
        if uri.startswith("sqlite:"):
            _sqlite_path(uri)  # refuse in-memory stores now, not at start-up
        self.uri = uri
        self.path = ""
        self.default_root = default_artifact_root
        self.create = create
        self._local = threading.local()
        self._connections: list[Conn] = []
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

    def _conn(self) -> Conn:
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

    # -- experiments ---------------------------------------------------------------------------

    async def create_experiment(
        self, name: str, artifact_location: str | None, tags: list[Tag]
    ) -> str:
        return await self._write(
            lambda c: experiments.create(c, name, artifact_location, tags, self.default_root)
        )

    async def get_experiment(self, experiment_id: str) -> Experiment:
        return await self._read(lambda c: experiments.get(c, experiment_id))

    async def get_experiment_by_name(self, name: str) -> Experiment | None:
        return await self._read(lambda c: experiments.by_name(c, name))

    async def search_experiments(self, search: Search) -> Page[Experiment]:
        return await self._read(lambda c: experiments.search(c, search))

    async def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        await self._write(lambda c: experiments.rename(c, experiment_id, new_name))

    async def delete_experiment(self, experiment_id: str) -> None:
        await self._write(lambda c: experiments.delete(c, experiment_id))

    async def restore_experiment(self, experiment_id: str) -> None:
        await self._write(lambda c: experiments.restore(c, experiment_id))

    async def hard_delete_experiment(self, experiment_id: str) -> None:
        await self._write(lambda c: experiments.hard_delete(c, experiment_id))

    # -- runs ----------------------------------------------------------------------------------

    async def create_run(
        self,
        experiment_id: str,
        user_id: str,
        start_time: int,
        run_name: str | None,
        tags: list[Tag],
    ) -> Run:
        return await self._write(
            lambda c: runs.create(c, experiment_id, user_id, start_time, run_name, tags)
        )

    async def get_run(self, run_id: str) -> Run:
        return await self._read(lambda c: runs.load(c, [runs.info(c, run_id)])[0])

    async def update_run(
        self, run_id: str, status: str | None, end_time: int | None, run_name: str | None
    ) -> RunInfo:
        return await self._write(lambda c: runs.update(c, run_id, status, end_time, run_name))

    async def delete_run(self, run_id: str) -> None:
        await self._write(lambda c: runs.set_stage(c, run_id, DELETED, now_ms()))

    async def restore_run(self, run_id: str) -> None:
        await self._write(lambda c: runs.set_stage(c, run_id, ACTIVE, None))

    async def hard_delete_run(self, run_id: str) -> None:
        await self._write(lambda c: runs.hard_delete(c, run_id))

    async def search_runs(self, search: Search) -> Page[Run]:
        return await self._read(lambda c: runs.search(c, search))

    async def deleted_runs(self, experiment_ids: list[str] | None = None) -> list[RunInfo]:
        return await self._read(lambda c: runs.deleted(c, experiment_ids))

    async def log_batch(
        self, run_id: str, metrics: list[Metric], params: list[Param], tags: list[Tag]
    ) -> None:
        await self._write(lambda c: runs.log_batch(c, run_id, metrics, params, tags))

    async def delete_tag(self, run_id: str, key: str) -> None:
        await self._write(lambda c: runs.delete_tag(c, run_id, key))

    async def get_metric_history(
        self, run_id: str, key: str, max_results: int | None, offset: int
    ) -> Page[Metric]:
        return await self._read(lambda c: runs.metric_history(c, run_id, key, max_results, offset))
