"""What every source yields: rows in artgw's column names (tracking/schema.py), in batches."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

Row = dict[str, Any]
Batch = list[Row]
BATCH = 5000
"""Rows per batch (and per write transaction)."""
STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
"""MLflow's RunStatus numbers, as the file store writes them."""


@dataclass
class SourceExperiment:
    row: Row
    """experiment_id (int), name, artifact_location, lifecycle_stage, creation_time,
    last_update_time."""
    tags: list[tuple[str, str]] = field(default_factory=list)


class Source(Protocol):
    """An MLflow store, read-only. Each iterator reads the store afresh, streaming."""

    where: str

    def experiments(self) -> Iterator[SourceExperiment]: ...

    def runs(self) -> Iterator[Batch]:
        """Rows of `runs` (deleted_with_experiment included)."""
        ...

    def params(self) -> Iterator[Batch]:
        """Rows of `params`: run_id, key, value."""
        ...

    def tags(self) -> Iterator[Batch]:
        """Rows of `tags`: run_id, key, value."""
        ...

    def metrics(self) -> Iterator[Batch]:
        """Rows of `metrics`: run_id, key, value, is_nan, timestamp, step."""
        ...

    def close(self) -> None: ...


def batched(rows: Iterator[Row], size: int = BATCH) -> Iterator[Batch]:
    batch: Batch = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def metric_row(run_id: str, key: str, value: float, timestamp: int, step: int) -> Row:
    nan = value != value
    return {
        "run_id": run_id,
        "key": key,
        "value": 0.0 if nan else value,
        "is_nan": int(nan),
        "timestamp": timestamp,
        "step": step,
    }


def with_experiment_deletion(run: Row, experiment: Row | None) -> Row:
    """Mark a run deleted together with its deleted experiment (restoring the experiment then
    restores it too, as MLflow does): deleted at or after the experiment's last update."""
    together = (
        experiment is not None
        and experiment["lifecycle_stage"] == "deleted"
        and run["lifecycle_stage"] == "deleted"
        and (run.get("deleted_time") or 0) >= experiment["last_update_time"]
    )
    run["deleted_with_experiment"] = int(together)
    return run
