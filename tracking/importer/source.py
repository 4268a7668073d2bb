"""What every source yields: rows in artgw's column names (tracking/schema.py), in batches."""

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

Row = dict[str, Any]
Batch = list[Row]
BATCH = 5000
"""Rows per batch (and per write transaction)."""
STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
"""MLflow's RunStatus numbers, as the file store writes them."""
LOGGED_MODEL_SOURCE = re.compile(r"models:/m-[0-9a-f]{32}")


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

    # MLflow 2.4+ and 3: the rows of artgw's tables of the same names (tracking/schema.py). The
    # registry's rows name their model (`name`) instead of artgw's `model_key`.

    def datasets(self) -> Iterator[Batch]: ...
    def inputs(self) -> Iterator[Batch]: ...
    def input_tags(self) -> Iterator[Batch]: ...
    def model_inputs(self) -> Iterator[Batch]: ...
    def model_outputs(self) -> Iterator[Batch]: ...
    def logged_models(self) -> Iterator[Batch]: ...
    def logged_model_params(self) -> Iterator[Batch]: ...
    def logged_model_tags(self) -> Iterator[Batch]: ...
    def logged_model_metrics(self) -> Iterator[Batch]: ...
    def registered_models(self) -> Iterator[Batch]:
        """name, description, creation_time, last_updated_time, last_version (the highest
        number given, deleted versions included)."""
        ...

    def registered_model_tags(self) -> Iterator[Batch]: ...
    def model_versions(self) -> Iterator[Batch]:
        """Versions not deleted: name, version and the columns of `model_versions`."""
        ...

    def model_version_tags(self) -> Iterator[Batch]: ...
    def registered_model_aliases(self) -> Iterator[Batch]: ...


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


def model_metric_row(
    model_id: str,
    key: str,
    value: float,
    timestamp: int,
    step: int,
    *,
    run_id: str | None,
    dataset_name: str | None,
    dataset_digest: str | None,
) -> Row:
    """A row of `logged_model_metrics` ('' for no run or dataset)."""
    row = metric_row(run_id or "", key, value, timestamp, step)
    row.update(model_id=model_id, dataset_name=dataset_name or "")
    row["dataset_digest"] = dataset_digest or ""
    return row


def model_version_row(name: str, r: Any, creation_time: Any, last_updated_time: Any) -> Row:
    """A row of `model_versions` from MLflow's fields (a mapping: a meta.yaml or a SQL row).
    MLflow's SQL store keeps no model id: a `models:/m-<id>` source names it, as artgw's
    registry records it for such a source."""
    source = str(r.get("source") or "")
    model_id = r.get("model_id")
    if not model_id and LOGGED_MODEL_SOURCE.fullmatch(source):
        model_id = source.removeprefix("models:/")
    return {
        "name": name,
        "version": int(r["version"]),
        "creation_time": int(creation_time or 0),
        "last_updated_time": int(last_updated_time or 0),
        "description": r.get("description"),
        "source": source,
        "storage_location": str(r.get("storage_location") or source),
        "run_id": r.get("run_id") or None,
        "run_link": r.get("run_link") or None,
        "model_id": model_id or None,
        "current_stage": str(r.get("current_stage") or "None"),
    }
