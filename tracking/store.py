"""The tracking store interface: entities and the async operations the REST handlers need.

A store raises the exceptions of tracking/errors.py; the gateway's error table maps them to
MLflow's JSON errors. The implementation: `SqlStore` (sql_store.py), one class for SQLite,
PostgreSQL and MySQL/MariaDB.
"""

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Generic, TypeVar

ACTIVE = "active"
DELETED = "deleted"
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
"""MLflow's RunStatus names, in proto order (RUNNING = 1)."""
DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
RUN_NAME_TAG = "mlflow.runName"

T = TypeVar("T")


def now_ms() -> int:
    return int(time.time() * 1000)


class ViewType(IntEnum):
    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3

    @property
    def stages(self) -> tuple[str, ...]:
        return {1: (ACTIVE,), 2: (DELETED,), 3: (ACTIVE, DELETED)}[self.value]


@dataclass(frozen=True, slots=True)
class Tag:
    key: str
    value: str = ""


@dataclass(frozen=True, slots=True)
class Param:
    key: str
    value: str = ""


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int = 0


@dataclass(frozen=True, slots=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: tuple[Tag, ...] = ()


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    user_id: str
    status: str
    start_time: int | None
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str
    deleted_time: int | None = None


@dataclass(frozen=True, slots=True)
class NewRun:
    """What `TrackingStore.create_run` is given; without a name the run gets a random one (or
    its `mlflow.runName` tag's)."""

    experiment_id: str
    user_id: str
    start_time: int
    run_name: str | None = None
    tags: tuple[Tag, ...] = ()


@dataclass(frozen=True, slots=True)
class Run:
    info: RunInfo
    metrics: tuple[Metric, ...] = ()
    params: tuple[Param, ...] = ()
    tags: tuple[Tag, ...] = ()


@dataclass(frozen=True, slots=True)
class Clause:
    """One `<kind>.<key> <op> <value>` condition of a search filter (see search.py)."""

    kind: str  # "attribute", "metric", "param" or "tag"
    key: str
    op: str  # "=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE", "IN"
    value: str | float | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Order:
    kind: str
    key: str
    ascending: bool = True


@dataclass(frozen=True, slots=True)
class Search:
    """What runs/search and experiments/search ask for; `experiment_ids` only for runs."""

    view: ViewType = ViewType.ACTIVE_ONLY
    clauses: tuple[Clause, ...] = ()
    order_by: tuple[Order, ...] = ()
    max_results: int = 1000
    offset: int = 0
    experiment_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T] = field(default_factory=list)
    next_offset: int | None = None


class TrackingStore(ABC):
    """Experiments, runs and their params, metrics and tags. Every method is safe to await from
    the event loop: implementations do their blocking work elsewhere."""

    @abstractmethod
    async def open(self) -> None:
        """Connect, and create or upgrade the schema (with experiment 0) if needed."""

    @abstractmethod
    async def close(self) -> None: ...

    # -- experiments ---------------------------------------------------------------------------

    @abstractmethod
    async def create_experiment(
        self, name: str, artifact_location: str | None, tags: list[Tag]
    ) -> str:
        """Return the new id; the location defaults to `<default root>/<id>`."""

    @abstractmethod
    async def get_experiment(self, experiment_id: str) -> Experiment: ...

    @abstractmethod
    async def get_experiment_by_name(self, name: str) -> Experiment | None: ...

    @abstractmethod
    async def search_experiments(self, search: Search) -> Page[Experiment]: ...

    @abstractmethod
    async def rename_experiment(self, experiment_id: str, new_name: str) -> None: ...

    @abstractmethod
    async def delete_experiment(self, experiment_id: str) -> None:
        """Move an active experiment and all its runs to the deleted stage."""

    @abstractmethod
    async def restore_experiment(self, experiment_id: str) -> None: ...

    @abstractmethod
    async def hard_delete_experiment(self, experiment_id: str) -> None:
        """Remove a deleted experiment's rows for good (gc); it must hold no runs any more."""

    @abstractmethod
    async def set_experiment_tag(self, experiment_id: str, tag: Tag) -> None:
        """Set (or replace) a tag of an active experiment."""

    @abstractmethod
    async def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Remove a tag of an active experiment; NotFound if it has no such tag."""

    # -- runs ----------------------------------------------------------------------------------

    @abstractmethod
    async def create_run(self, new: NewRun) -> Run: ...

    @abstractmethod
    async def get_run(self, run_id: str) -> Run: ...

    @abstractmethod
    async def update_run(
        self, run_id: str, status: str | None, end_time: int | None, run_name: str | None
    ) -> RunInfo: ...

    @abstractmethod
    async def delete_run(self, run_id: str) -> None: ...

    @abstractmethod
    async def restore_run(self, run_id: str) -> None: ...

    @abstractmethod
    async def hard_delete_run(self, run_id: str) -> None:
        """Remove a run's rows for good (gc)."""

    @abstractmethod
    async def search_runs(self, search: Search) -> Page[Run]: ...

    @abstractmethod
    async def deleted_runs(self, experiment_ids: list[str] | None = None) -> list[RunInfo]:
        """Runs in the deleted stage, of the given experiments or of all (gc)."""

    # -- run data ------------------------------------------------------------------------------

    @abstractmethod
    async def log_batch(
        self, run_id: str, metrics: list[Metric], params: list[Param], tags: list[Tag]
    ) -> None:
        """Log all or nothing. A param may be logged again only with the same value."""

    @abstractmethod
    async def delete_tag(self, run_id: str, key: str) -> None: ...

    @abstractmethod
    async def get_metric_history(
        self, run_id: str, key: str, max_results: int | None, offset: int
    ) -> Page[Metric]: ...
