"""The tracking store in a SQL database: SQLite, PostgreSQL or MySQL/MariaDB, one class.

Each operation runs the Core statements of sql_experiments.py or sql_runs.py in one write or
read transaction of the store's `Database` (tracking/db.py), off the event loop. Opening the
store prepares the schema (tracking/migrate.py).
"""

import asyncio
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection

from tracking import migrate, store_uri, uris
from tracking import sql_experiments as experiments
from tracking import sql_runs as runs
from tracking.db import Database
from tracking.sql_models import SqlModelStore
from tracking.sql_registry_store import SqlRegistryStore
from tracking.store import (
    ACTIVE,
    DELETED,
    Experiment,
    Metric,
    NewRun,
    Page,
    Param,
    Run,
    RunInfo,
    Search,
    Tag,
    TrackingStore,
    now_ms,
)

T = TypeVar("T")


class SqlStore(SqlModelStore, SqlRegistryStore, TrackingStore):
    def __init__(self, uri: str, default_artifact_root: str, *, create: bool = True) -> None:
        """`uri` is a --backend-store-uri (checked now; a SQLite path resolves at `open`)."""
        self.target = store_uri.parse(uri)
        self.db = Database(self.target, create=create)
        self.default_root = default_artifact_root

    @property
    def where(self) -> str:
        """The database, as messages name it (no password)."""
        return self.target.where

    async def open(self) -> None:
        self.default_root = await _resolved(self.default_root)
        await self.db.open(self._prepare)

    def _prepare(self, conn: Connection) -> None:
        migrate.prepare(conn, self.where, self.default_root, create=self.db.create)

    async def close(self) -> None:
        await self.db.close()

    async def _write(self, work: Callable[[Connection], T]) -> T:
        return await self.db.write(work)

    async def _read(self, work: Callable[[Connection], T]) -> T:
        return await self.db.read(work)

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
        await self._write(lambda c: experiments.delete_(c, experiment_id))

    async def restore_experiment(self, experiment_id: str) -> None:
        await self._write(lambda c: experiments.restore(c, experiment_id))

    async def hard_delete_experiment(self, experiment_id: str) -> None:
        await self._write(lambda c: experiments.hard_delete(c, experiment_id))

    async def set_experiment_tag(self, experiment_id: str, tag: Tag) -> None:
        await self._write(lambda c: experiments.set_tag(c, experiment_id, tag))

    async def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        await self._write(lambda c: experiments.delete_tag(c, experiment_id, key))

    # -- runs ----------------------------------------------------------------------------------

    async def create_run(self, new: NewRun) -> Run:
        return await self._write(lambda c: runs.create(c, new))

    async def get_run(self, run_id: str) -> Run:
        return await self._read(lambda c: runs.get(c, run_id))

    async def update_run(
        self, run_id: str, status: str | None, end_time: int | None, run_name: str | None
    ) -> RunInfo:
        return await self._write(lambda c: runs.update_(c, run_id, status, end_time, run_name))

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


async def _resolved(root: str) -> str:
    """A relative local root made absolute (it reads the working directory)."""
    return await asyncio.to_thread(uris.resolve_if_local, root)
