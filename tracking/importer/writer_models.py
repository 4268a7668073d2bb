"""Writing datasets, run inputs and outputs, logged models and the model registry (the rule of
merge.py), after the experiments and runs they hang on.

Datasets are one per experiment by (name, digest) in artgw, as in MLflow: a source dataset the
target holds under another id is that one (its inputs are linked to it). Registered models are
matched by name (artgw gives them its own key); a model's last version number is the source's
highest (deleted versions included), so no number is given twice after the import.
"""

from typing import Any

from sqlalchemy import Column, Connection, Table, select, update

from tracking import sql_exec
from tracking.importer import merge
from tracking.importer.report import Report
from tracking.importer.source import Batch, Row
from tracking.schema import (
    datasets,
    experiments,
    input_tags,
    inputs,
    logged_model_metrics,
    logged_models,
    model_inputs,
    model_outputs,
    model_version_tags,
    model_versions,
    registered_model_aliases,
    registered_model_tags,
    registered_models,
    runs,
)

NATURAL = ("experiment_id", "name", "digest")


class ModelWriter:
    """Mixed into `Writer`, whose `report` and blocked experiments and runs it reads."""

    report: Report
    blocked_experiments: set[int]
    blocked_runs: set[str]

    def __init__(self) -> None:
        self.same_dataset: dict[str, str] = {}
        """Source dataset ids the target holds under its own id."""
        self.blocked_models: set[str] = set()
        self.blocked_names: set[str] = set()

    # -- parents ---------------------------------------------------------------------------------

    def _in_experiments(self, c: Connection, entity: str, batch: Batch) -> Batch:
        column = experiments.c.experiment_id
        return self._under(c, entity, batch, column, self.blocked_experiments, "experiment")

    def _of_runs(self, c: Connection, entity: str, batch: Batch) -> Batch:
        return self._under(c, entity, batch, runs.c.run_id, self.blocked_runs, "run")

    def _of_models(self, c: Connection, entity: str, batch: Batch) -> Batch:
        column = logged_models.c.model_id
        return self._under(c, entity, batch, column, self.blocked_models, "logged model")

    def _under(
        self,
        c: Connection,
        entity: str,
        batch: Batch,
        parent: Column[Any],
        blocked: set[Any],
        what: str,
    ) -> Batch:
        """The rows whose parent (named by the column of the same name) is in the target and
        not blocked; the others counted as conflicts."""
        key = parent.name
        known = merge.present(c, parent, (r[key] for r in batch)) - blocked
        return merge.with_parents(
            batch,
            self.report[entity],
            lambda r: r[key] in known,
            lambda r: f"{_name(entity)} of {what} {r[key]}, not imported",
        )

    def _keyed(self, c: Connection, entity: str, batch: Batch) -> Batch:
        """Registry rows with artgw's `model_key` of their model's name."""
        names = sorted({r["name"] for r in batch} - self.blocked_names)
        keys: dict[str, int] = {}
        statement = select(registered_models.c.name, registered_models.c.model_key)
        for part in merge.chunks(names):
            found = c.execute(statement.where(registered_models.c.name.in_(part))).all()
            keys.update((name, key) for name, key in found)
        kept = merge.with_parents(
            batch,
            self.report[entity],
            lambda r: r["name"] in keys,
            lambda r: f"{_name(entity)} of registered model {r['name']!r}, not imported",
        )
        return [{**r, "model_key": keys[r["name"]]} for r in kept]

    def _of_versions(self, c: Connection, entity: str, batch: Batch) -> Batch:
        there = merge.held(c, model_versions, ("model_key", "version"), batch)
        return merge.with_parents(
            batch,
            self.report[entity],
            lambda r: (r["model_key"], r["version"]) in there,
            lambda r: f"{_name(entity)} of {r['name']!r} version {r['version']}, not imported",
        )

    # -- datasets and run inputs/outputs ---------------------------------------------------------

    def datasets(self, c: Connection, batch: Batch) -> None:
        tally = self.report["datasets"]
        batch = self._in_experiments(c, "datasets", batch)
        by_natural = merge.held(c, datasets, NATURAL, batch)
        fresh = []
        for row in batch:
            there = by_natural.get(tuple(row[k] for k in NATURAL))
            if there is None:
                fresh.append(row)
                continue
            if there["dataset_uuid"] != row["dataset_uuid"]:
                self.same_dataset[row["dataset_uuid"]] = there["dataset_uuid"]
            tally.skipped += 1
        merge.merge(
            c,
            tally,
            datasets,
            ("dataset_uuid",),
            fresh,
            NATURAL,
            lambda r: f"dataset {r['dataset_uuid']}",
        )

    def _linked(self, batch: Batch) -> Batch:
        return [
            {**r, "dataset_uuid": self.same_dataset.get(r["dataset_uuid"], r["dataset_uuid"])}
            for r in batch
        ]

    def inputs(self, c: Connection, batch: Batch) -> None:
        batch = self._of_runs(c, "inputs", self._linked(batch))
        known = merge.present(c, datasets.c.dataset_uuid, (r["dataset_uuid"] for r in batch))
        batch = merge.with_parents(
            batch,
            self.report["inputs"],
            lambda r: r["dataset_uuid"] in known,
            lambda r: f"input of run {r['run_id']}: dataset {r['dataset_uuid']} not imported",
        )
        merge.merge(
            c, self.report["inputs"], inputs, ("run_id", "dataset_uuid"), batch, (), _run_row
        )

    def input_tags(self, c: Connection, batch: Batch) -> None:
        tally = self.report["input_tags"]
        batch = self._of_runs(c, "input_tags", self._linked(batch))
        there = merge.held(c, inputs, ("run_id", "dataset_uuid"), batch)
        batch = merge.with_parents(
            batch,
            tally,
            lambda r: (r["run_id"], r["dataset_uuid"]) in there,
            lambda r: f"input tag of run {r['run_id']}: its input was not imported",
        )
        keys = ("run_id", "dataset_uuid", "key")
        merge.merge(c, tally, input_tags, keys, batch, ("value",), _keyed_name("input tag"))

    def model_links(self, c: Connection, table: Table, batch: Batch) -> None:
        """`model_inputs` or `model_outputs` (MLflow checks no model id: neither does this)."""
        batch = self._of_runs(c, table.name, batch)
        compare = ("step",) if table is model_outputs else ()
        name = "model input" if table is model_inputs else "model output"
        keys = ("run_id", "model_id")
        merge.merge(
            c,
            self.report[table.name],
            table,
            keys,
            batch,
            compare,
            lambda r: f"run {r['run_id']} {name} {r['model_id']}",
        )

    # -- logged models ---------------------------------------------------------------------------

    def logged_models(self, c: Connection, batch: Batch) -> None:
        batch = self._in_experiments(c, "logged_models", batch)
        conflicting = merge.merge(
            c,
            self.report["logged_models"],
            logged_models,
            ("model_id",),
            batch,
            ("experiment_id", "name", "creation_timestamp_ms"),
            lambda r: f"logged model {r['model_id']}",
        )
        self.blocked_models.update(r["model_id"] for r in conflicting)

    def model_texts(self, c: Connection, table: Table, batch: Batch) -> None:
        """A logged model's params or tags."""
        batch = self._of_models(c, table.name, batch)
        keys = ("model_id", "key")
        name = "param" if table.name.endswith("params") else "tag"
        merge.merge(
            c,
            self.report[table.name],
            table,
            keys,
            batch,
            ("value",),
            lambda r: f"logged model {r['model_id']} {name} {r['key']!r}",
        )

    def model_metrics(self, c: Connection, batch: Batch) -> None:
        tally = self.report["logged_model_metrics"]
        batch = self._of_models(c, "logged_model_metrics", batch)
        added = sql_exec.many(c, merge.insert_new(c.dialect.name, logged_model_metrics), batch)
        tally.imported += added
        tally.skipped += len(batch) - added

    # -- the model registry ----------------------------------------------------------------------

    def registered_models(self, c: Connection, batch: Batch) -> None:
        conflicting = merge.merge(
            c,
            self.report["registered_models"],
            registered_models,
            ("name",),
            batch,
            ("creation_time",),
            lambda r: f"registered model {r['name']!r} (created at another time)",
        )
        self.blocked_names.update(r["name"] for r in conflicting)
        rm = registered_models.c
        for row in batch:  # a resumed import: numbers the source gave since stay taken
            if row["name"] not in self.blocked_names:
                c.execute(
                    update(registered_models)
                    .where(rm.name == row["name"], rm.last_version < row["last_version"])
                    .values(last_version=row["last_version"])
                )

    def registered_model_tags(self, c: Connection, batch: Batch) -> None:
        batch = self._keyed(c, "registered_model_tags", batch)
        keys = ("model_key", "key")
        merge.merge(
            c,
            self.report["registered_model_tags"],
            registered_model_tags,
            keys,
            batch,
            ("value",),
            lambda r: f"registered model {r['name']!r} tag {r['key']!r}",
        )

    def model_versions(self, c: Connection, batch: Batch) -> None:
        batch = self._keyed(c, "model_versions", batch)
        merge.merge(
            c,
            self.report["model_versions"],
            model_versions,
            ("model_key", "version"),
            batch,
            ("creation_time", "source"),
            lambda r: f"{r['name']!r} version {r['version']}",
        )

    def model_version_tags(self, c: Connection, batch: Batch) -> None:
        batch = self._of_versions(
            c, "model_version_tags", self._keyed(c, "model_version_tags", batch)
        )
        merge.merge(
            c,
            self.report["model_version_tags"],
            model_version_tags,
            ("model_key", "version", "key"),
            batch,
            ("value",),
            lambda r: f"{r['name']!r} version {r['version']} tag {r['key']!r}",
        )

    def aliases(self, c: Connection, batch: Batch) -> None:
        entity = "registered_model_aliases"
        batch = self._of_versions(c, entity, self._keyed(c, entity, batch))
        merge.merge(
            c,
            self.report[entity],
            registered_model_aliases,
            ("model_key", "alias"),
            batch,
            ("version",),
            lambda r: f"{r['name']!r} alias {r['alias']!r}",
        )


def _name(entity: str) -> str:
    return entity.replace("_", " ").removesuffix("s")


def _run_row(row: Row) -> str:
    return f"run {row['run_id']} input {row['dataset_uuid']}"


def _keyed_name(what: str) -> Any:
    return lambda r: f"run {r['run_id']} {what} {r['key']!r}"
