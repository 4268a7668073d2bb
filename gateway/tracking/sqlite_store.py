"""The tracking store in one SQLite file.

Writes go through one dedicated writer thread, each in an IMMEDIATE transaction; reads run on a
small pool of reader threads with their own connections (WAL lets them proceed during writes).
The event loop only awaits. Several processes may share the file: SQLite's locks and the busy
timeout serialise their writers.
"""

import asyncio
import math
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from gateway.errors import AlreadyExists, InvalidParameter, NotFound
from gateway.tracking import sqlite_query, uris
from gateway.tracking.names import random_run_name
from gateway.tracking.sqlite_schema import connect, ensure_schema, in_transaction
from gateway.tracking.store import (
    ACTIVE,
    DELETED,
    RUN_NAME_TAG,
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
)

T = TypeVar("T")
Conn = sqlite3.Connection
DEFAULT_FILE = "mlflow.db"
READERS = 4
CHUNK = 500
"""Run ids per `IN (...)` list, well under SQLite's limit on bound parameters."""


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


def now_ms() -> int:
    return int(time.time() * 1000)


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
            lambda c: _create_experiment(c, name, artifact_location, tags, self.default_root)
        )

    async def get_experiment(self, experiment_id: str) -> Experiment:
        return await self._read(lambda c: _experiment(c, experiment_id))

    async def get_experiment_by_name(self, name: str) -> Experiment | None:
        return await self._read(lambda c: _experiment_by_name(c, name))

    async def search_experiments(self, search: Search) -> Page[Experiment]:
        return await self._read(lambda c: _search_experiments(c, search))

    async def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        await self._write(lambda c: _rename_experiment(c, experiment_id, new_name))

    async def delete_experiment(self, experiment_id: str) -> None:
        await self._write(lambda c: _delete_experiment(c, experiment_id))

    async def restore_experiment(self, experiment_id: str) -> None:
        await self._write(lambda c: _restore_experiment(c, experiment_id))

    async def hard_delete_experiment(self, experiment_id: str) -> None:
        await self._write(lambda c: _hard_delete_experiment(c, experiment_id))

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
            lambda c: _create_run(c, experiment_id, user_id, start_time, run_name, tags)
        )

    async def get_run(self, run_id: str) -> Run:
        return await self._read(lambda c: _load_runs(c, [_run_info(c, run_id)])[0])

    async def update_run(
        self, run_id: str, status: str | None, end_time: int | None, run_name: str | None
    ) -> RunInfo:
        return await self._write(lambda c: _update_run(c, run_id, status, end_time, run_name))

    async def delete_run(self, run_id: str) -> None:
        await self._write(lambda c: _set_run_stage(c, run_id, DELETED, now_ms()))

    async def restore_run(self, run_id: str) -> None:
        await self._write(lambda c: _set_run_stage(c, run_id, ACTIVE, None))

    async def hard_delete_run(self, run_id: str) -> None:
        await self._write(lambda c: _hard_delete_run(c, run_id))

    async def search_runs(self, search: Search) -> Page[Run]:
        return await self._read(lambda c: _search_runs(c, search))

    async def deleted_runs(self, experiment_ids: list[str] | None = None) -> list[RunInfo]:
        return await self._read(lambda c: _deleted_runs(c, experiment_ids))

    async def log_batch(
        self, run_id: str, metrics: list[Metric], params: list[Param], tags: list[Tag]
    ) -> None:
        await self._write(lambda c: _log_batch(c, run_id, metrics, params, tags))

    async def delete_tag(self, run_id: str, key: str) -> None:
        await self._write(lambda c: _delete_tag(c, run_id, key))

    async def get_metric_history(
        self, run_id: str, key: str, max_results: int | None, offset: int
    ) -> Page[Metric]:
        return await self._read(lambda c: _metric_history(c, run_id, key, max_results, offset))


# -- experiments -------------------------------------------------------------------------------


def _experiment_key(experiment_id: str) -> int | None:
    text = str(experiment_id)
    return int(text) if text.isdigit() and len(text) < 19 else None


def _experiment(
    c: Conn, experiment_id: str, stages: Iterable[str] = (ACTIVE, DELETED)
) -> Experiment:
    key = _experiment_key(experiment_id)
    row = c.execute("SELECT * FROM experiments WHERE experiment_id = ?", (key,)).fetchone()
    if row is None or row["lifecycle_stage"] not in stages:
        stage = "" if set(stages) == {ACTIVE, DELETED} else f"{next(iter(stages))} "
        raise NotFound(f"No {stage}Experiment with id={experiment_id} exists")
    return _to_experiment(c, row)


def _to_experiment(c: Conn, row: sqlite3.Row) -> Experiment:
    tags = c.execute(
        "SELECT key, value FROM experiment_tags WHERE experiment_id = ? ORDER BY key",
        (row["experiment_id"],),
    )
    return Experiment(
        experiment_id=str(row["experiment_id"]),
        name=row["name"],
        artifact_location=row["artifact_location"],
        lifecycle_stage=row["lifecycle_stage"],
        creation_time=row["creation_time"],
        last_update_time=row["last_update_time"],
        tags=tuple(Tag(key, value) for key, value in tags),
    )


def _experiment_by_name(c: Conn, name: str) -> Experiment | None:
    row = c.execute("SELECT * FROM experiments WHERE name = ?", (name,)).fetchone()
    return None if row is None else _to_experiment(c, row)


def _check_name_free(c: Conn, name: str) -> None:
    if c.execute("SELECT 1 FROM experiments WHERE name = ?", (name,)).fetchone():
        raise AlreadyExists(f"Experiment(name={name}) already exists.")


def _create_experiment(
    c: Conn, name: str, location: str | None, tags: list[Tag], default_root: str
) -> str:
    _check_name_free(c, name)
    location = uris.resolve_if_local(location) if location else None
    now = now_ms()
    cursor = c.execute(
        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, "
        "last_update_time) VALUES (?, ?, ?, ?, ?)",
        (name, location or "", ACTIVE, now, now),
    )
    experiment_id = str(cursor.lastrowid)
    if not location:
        location = uris.append_path(default_root, experiment_id)
        c.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
            (location, cursor.lastrowid),
        )
    c.executemany(
        "INSERT OR REPLACE INTO experiment_tags VALUES (?, ?, ?)",
        [(cursor.lastrowid, tag.key, tag.value) for tag in tags],
    )
    return experiment_id


def _search_experiments(c: Conn, search: Search) -> Page[Experiment]:
    entity = sqlite_query.EXPERIMENTS
    where, params = sqlite_query.where(search.clauses, entity)
    order, order_params = sqlite_query.order_by(search.order_by, entity)
    stages = search.view.stages
    rows = c.execute(
        f"SELECT e.* FROM experiments e WHERE e.lifecycle_stage IN ({_marks(stages)})"
        f"{where}{order} LIMIT ? OFFSET ?",
        [*stages, *params, *order_params, search.max_results + 1, search.offset],
    ).fetchall()
    return _page([_to_experiment(c, row) for row in rows], search.max_results, search.offset)


def _rename_experiment(c: Conn, experiment_id: str, new_name: str) -> None:
    experiment = _experiment(c, experiment_id)
    if experiment.lifecycle_stage != ACTIVE:
        raise InvalidParameter("Cannot rename a non-active experiment.")
    if new_name != experiment.name:
        _check_name_free(c, new_name)
    c.execute(
        "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
        (new_name, now_ms(), int(experiment_id)),
    )


def _delete_experiment(c: Conn, experiment_id: str) -> None:
    key = int(_experiment(c, experiment_id, (ACTIVE,)).experiment_id)
    now = now_ms()
    c.execute(
        "UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?",
        (DELETED, now, key),
    )
    c.execute(
        "UPDATE runs SET lifecycle_stage = ?, deleted_time = ?, deleted_with_experiment = 1 "
        "WHERE experiment_id = ? AND lifecycle_stage = ?",
        (DELETED, now, key, ACTIVE),
    )


def _restore_experiment(c: Conn, experiment_id: str) -> None:
    """Restore the experiment and the runs deleted with it (not those deleted before)."""
    key = int(_experiment(c, experiment_id, (DELETED,)).experiment_id)
    c.execute(
        "UPDATE runs SET lifecycle_stage = ?, deleted_time = NULL, deleted_with_experiment = 0 "
        "WHERE experiment_id = ? AND deleted_with_experiment = 1",
        (ACTIVE, key),
    )
    c.execute(
        "UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?",
        (ACTIVE, now_ms(), key),
    )


def _hard_delete_experiment(c: Conn, experiment_id: str) -> None:
    key = int(_experiment(c, experiment_id, (DELETED,)).experiment_id)
    if c.execute("SELECT 1 FROM runs WHERE experiment_id = ? LIMIT 1", (key,)).fetchone():
        raise InvalidParameter(f"Experiment {experiment_id} still holds runs")
    c.execute("DELETE FROM experiments WHERE experiment_id = ?", (key,))


# -- runs --------------------------------------------------------------------------------------


def _to_run_info(row: sqlite3.Row) -> RunInfo:
    return RunInfo(
        run_id=row["run_id"],
        experiment_id=str(row["experiment_id"]),
        run_name=row["name"],
        user_id=row["user_id"],
        status=row["status"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        artifact_uri=row["artifact_uri"],
        lifecycle_stage=row["lifecycle_stage"],
        deleted_time=row["deleted_time"],
    )


def _run_info(c: Conn, run_id: str) -> RunInfo:
    row = c.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise NotFound(f"Run with id={run_id} not found")
    return _to_run_info(row)


def _active_run(c: Conn, run_id: str) -> RunInfo:
    info = _run_info(c, run_id)
    if info.lifecycle_stage != ACTIVE:
        raise InvalidParameter(
            f"The run {run_id} must be in the 'active' state. "
            f"Current state is {info.lifecycle_stage}."
        )
    return info


def _create_run(
    c: Conn, experiment_id: str, user_id: str, start_time: int, name: str | None, tags: list[Tag]
) -> Run:
    experiment = _experiment(c, experiment_id)
    if experiment.lifecycle_stage != ACTIVE:
        raise InvalidParameter(
            f"The experiment {experiment_id} must be in the 'active' state. "
            f"Current state is {experiment.lifecycle_stage}."
        )
    tag_name = next((tag.value for tag in tags if tag.key == RUN_NAME_TAG), None)
    if name and tag_name and name != tag_name:
        raise InvalidParameter(
            f"Both 'run_name' and the '{RUN_NAME_TAG}' tag are given, with different values "
            f"(run_name='{name}', {RUN_NAME_TAG}='{tag_name}')."
        )
    name = name or tag_name or random_run_name()
    run_id = uuid.uuid4().hex
    artifact_uri = uris.append_path(experiment.artifact_location, run_id, "artifacts")
    c.execute(
        "INSERT INTO runs VALUES (?, ?, ?, ?, 'RUNNING', ?, NULL, ?, ?, NULL, 0)",
        (run_id, int(experiment.experiment_id), name, user_id, start_time, artifact_uri, ACTIVE),
    )
    _upsert_tags(c, run_id, [*tags, Tag(RUN_NAME_TAG, name)])
    return _load_runs(c, [_run_info(c, run_id)])[0]


def _update_run(
    c: Conn, run_id: str, status: str | None, end_time: int | None, name: str | None
) -> RunInfo:
    info = _active_run(c, run_id)
    c.execute(
        "UPDATE runs SET status = ?, end_time = ?, name = ? WHERE run_id = ?",
        (status or info.status, end_time or info.end_time, name or info.run_name, run_id),
    )
    if name:
        _upsert_tags(c, run_id, [Tag(RUN_NAME_TAG, name)])
    return _run_info(c, run_id)


def _set_run_stage(c: Conn, run_id: str, stage: str, deleted_time: int | None) -> None:
    _run_info(c, run_id)
    c.execute(
        "UPDATE runs SET lifecycle_stage = ?, deleted_time = ?, deleted_with_experiment = 0 "
        "WHERE run_id = ?",
        (stage, deleted_time, run_id),
    )


def _hard_delete_run(c: Conn, run_id: str) -> None:
    _run_info(c, run_id)
    c.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))


def _search_runs(c: Conn, search: Search) -> Page[Run]:
    keys = [k for k in map(_experiment_key, search.experiment_ids) if k is not None]
    where, params = sqlite_query.where(search.clauses, sqlite_query.RUNS)
    order, order_params = sqlite_query.order_by(search.order_by, sqlite_query.RUNS)
    stages = search.view.stages
    rows = c.execute(
        f"SELECT r.* FROM runs r WHERE r.experiment_id IN ({_marks(keys)}) "
        f"AND r.lifecycle_stage IN ({_marks(stages)}){where}{order} LIMIT ? OFFSET ?",
        [*keys, *stages, *params, *order_params, search.max_results + 1, search.offset],
    ).fetchall()
    page = _page([_to_run_info(row) for row in rows], search.max_results, search.offset)
    return Page(_load_runs(c, page.items), page.next_offset)


def _deleted_runs(c: Conn, experiment_ids: list[str] | None) -> list[RunInfo]:
    sql, params = "SELECT * FROM runs WHERE lifecycle_stage = ?", [DELETED]
    if experiment_ids is not None:
        keys = [k for k in map(_experiment_key, experiment_ids) if k is not None]
        sql += f" AND experiment_id IN ({_marks(keys)})"
        params.extend(keys)
    return [_to_run_info(row) for row in c.execute(sql + " ORDER BY deleted_time", params)]


def _load_runs(c: Conn, infos: list[RunInfo]) -> list[Run]:
    """Attach latest metrics, params and tags, a few queries for the whole list."""
    found: dict[str, dict[str, list]] = {i.run_id: {"m": [], "p": [], "t": []} for i in infos}
    ids = list(found)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        marks = _marks(chunk)
        for row in c.execute(
            f"SELECT * FROM latest_metrics WHERE run_id IN ({marks}) ORDER BY key", chunk
        ):
            found[row["run_id"]]["m"].append(_to_metric(row))
        for table, kind, cls in (("params", "p", Param), ("tags", "t", Tag)):
            for run_id, key, value in c.execute(
                f"SELECT run_id, key, value FROM {table} WHERE run_id IN ({marks}) ORDER BY key",
                chunk,
            ):
                found[run_id][kind].append(cls(key, value))
    return [
        Run(
            i, tuple(found[i.run_id]["m"]), tuple(found[i.run_id]["p"]), tuple(found[i.run_id]["t"])
        )
        for i in infos
    ]


# -- run data ----------------------------------------------------------------------------------


def _log_batch(
    c: Conn, run_id: str, metrics: list[Metric], params: list[Param], tags: list[Tag]
) -> None:
    _active_run(c, run_id)
    _insert_params(c, run_id, params)
    _upsert_tags(c, run_id, tags)
    name = next((tag.value for tag in reversed(tags) if tag.key == RUN_NAME_TAG), None)
    if name:
        c.execute("UPDATE runs SET name = ? WHERE run_id = ?", (name, run_id))
    rows = [(run_id, m.key, *_stored_value(m.value), m.timestamp, m.step) for m in metrics]
    c.executemany("INSERT OR IGNORE INTO metrics VALUES (?, ?, ?, ?, ?, ?)", rows)
    c.executemany(
        "INSERT INTO latest_metrics VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, key) "
        "DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan, "
        "timestamp = excluded.timestamp, step = excluded.step "
        "WHERE (excluded.step, excluded.timestamp, excluded.value) >= (step, timestamp, value)",
        rows,
    )


def _insert_params(c: Conn, run_id: str, params: list[Param]) -> None:
    wanted: dict[str, str] = {}
    for param in params:
        if wanted.setdefault(param.key, param.value) != param.value:
            raise InvalidParameter(
                f"Param '{param.key}' is given twice with different values in one request."
            )
    existing = dict(
        c.execute("SELECT key, value FROM params WHERE run_id = ?", (run_id,)).fetchall()
    )
    for key, value in wanted.items():
        if key in existing and existing[key] != value:
            raise InvalidParameter(
                f"Changing param values is not allowed. Param with key='{key}' was already "
                f"logged with value='{existing[key]}' for run ID='{run_id}'. "
                f"Attempted logging new value '{value}'."
            )
    c.executemany(
        "INSERT OR IGNORE INTO params VALUES (?, ?, ?)",
        [(run_id, key, value) for key, value in wanted.items()],
    )


def _upsert_tags(c: Conn, run_id: str, tags: list[Tag]) -> None:
    c.executemany(
        "INSERT INTO tags VALUES (?, ?, ?) "
        "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
        [(run_id, tag.key, tag.value) for tag in tags],
    )


def _delete_tag(c: Conn, run_id: str, key: str) -> None:
    _active_run(c, run_id)
    if c.execute("DELETE FROM tags WHERE run_id = ? AND key = ?", (run_id, key)).rowcount == 0:
        raise NotFound(f"No tag with name: {key} in run with id {run_id}")


def _metric_history(
    c: Conn, run_id: str, key: str, max_results: int | None, offset: int
) -> Page[Metric]:
    _run_info(c, run_id)
    limit = -1 if max_results is None else max_results + 1
    rows = c.execute(
        "SELECT * FROM metrics WHERE run_id = ? AND key = ? "
        "ORDER BY timestamp, step, value LIMIT ? OFFSET ?",
        (run_id, key, limit, offset),
    ).fetchall()
    metrics = [_to_metric(row) for row in rows]
    return Page(metrics) if max_results is None else _page(metrics, max_results, offset)


def _stored_value(value: float) -> tuple[float, int]:
    return (0.0, 1) if math.isnan(value) else (value, 0)


def _to_metric(row: sqlite3.Row) -> Metric:
    value = math.nan if row["is_nan"] else row["value"]
    return Metric(row["key"], value, row["timestamp"], row["step"])


def _page(items: list[T], max_results: int, offset: int) -> Page[T]:
    if len(items) > max_results:
        return Page(items[:max_results], offset + max_results)
    return Page(items)


def _marks(values: Iterable[object]) -> str:
    return ", ".join("?" for _ in values)
