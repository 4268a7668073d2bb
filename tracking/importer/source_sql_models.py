"""MLflow's SQL tables of datasets, run inputs and outputs (2.4+; outputs and logged models 3.x)
and of the model registry, read into artgw's rows. A table an older schema lacks reads as
empty.

MLflow links runs through `inputs`: (DATASET dataset -> RUN run) with `input_tags` by input,
(RUN_INPUT run -> MODEL_INPUT model) and (RUN_OUTPUT run -> MODEL_OUTPUT model, at `step`).
A model version MLflow deleted stays as stage `Deleted_Internal`: left out (it only raises the
model's last version number, as in MLflow).
"""

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, Table, and_, func, select

from tracking.importer.source import Batch, model_metric_row, model_version_row
from tracking.importer.source_file_paths import DELETED_VERSION


class SqlModelParts:
    """Mixed into `SqlSource`: needs its reflected tables `t` and `_partitions`."""

    t: dict[str, Table]

    def _partitions(self, statement: Select[Any]) -> Iterator[list[Any]]:
        raise NotImplementedError

    def _rows(self, table: str, statement: Select[Any] | None = None) -> Iterator[list[Any]]:
        """Partitions of the table's rows (or of `statement` on it), as mappings."""
        if table not in self.t:
            return iter(())
        chosen = select(self.t[table]) if statement is None else statement
        return ([row._mapping for row in part] for part in self._partitions(chosen))

    # -- datasets and run inputs/outputs ---------------------------------------------------------

    def datasets(self) -> Iterator[Batch]:
        for part in self._rows("datasets"):
            yield [
                {
                    "dataset_uuid": r["dataset_uuid"],
                    "experiment_id": int(r["experiment_id"]),
                    "name": r["name"],
                    "digest": r["digest"],
                    "source_type": r["dataset_source_type"] or "",
                    "source": r["dataset_source"] or "",
                    "dataset_schema": r.get("dataset_schema"),
                    "dataset_profile": r.get("dataset_profile"),
                }
                for r in part
            ]

    def _links(self, source_type: str) -> Iterator[list[Any]]:
        if "inputs" not in self.t:
            return iter(())
        i = self.t["inputs"]
        return self._rows("inputs", select(i).where(i.c.source_type == source_type))

    def inputs(self) -> Iterator[Batch]:
        for part in self._links("DATASET"):
            yield [{"run_id": r["destination_id"], "dataset_uuid": r["source_id"]} for r in part]

    def input_tags(self) -> Iterator[Batch]:
        if "input_tags" not in self.t or "inputs" not in self.t:
            return
        i, t = self.t["inputs"].c, self.t["input_tags"].c
        statement = (
            select(i.destination_id, i.source_id, t.name, t.value)
            .join_from(self.t["input_tags"], self.t["inputs"], t.input_uuid == i.input_uuid)
            .where(i.source_type == "DATASET")
        )
        for part in self._rows("input_tags", statement):
            yield [
                {
                    "run_id": r["destination_id"],
                    "dataset_uuid": r["source_id"],
                    "key": r["name"],
                    "value": r["value"] or "",
                }
                for r in part
            ]

    def model_inputs(self) -> Iterator[Batch]:
        for part in self._links("RUN_INPUT"):
            yield [{"run_id": r["source_id"], "model_id": r["destination_id"]} for r in part]

    def model_outputs(self) -> Iterator[Batch]:
        for part in self._links("RUN_OUTPUT"):
            yield [
                {
                    "run_id": r["source_id"],
                    "model_id": r["destination_id"],
                    "step": int(r.get("step") or 0),
                }
                for r in part
            ]

    # -- logged models ---------------------------------------------------------------------------

    def logged_models(self) -> Iterator[Batch]:
        for part in self._rows("logged_models"):
            yield [
                {
                    "model_id": r["model_id"],
                    "experiment_id": int(r["experiment_id"]),
                    "name": r["name"],
                    "model_type": r.get("model_type") or "",
                    "source_run_id": r.get("source_run_id") or "",
                    "status": int(r["status"] or 0),
                    "status_message": r.get("status_message") or "",
                    "artifact_location": r["artifact_location"] or "",
                    "lifecycle_stage": r["lifecycle_stage"] or "active",
                    "creation_timestamp_ms": int(r["creation_timestamp_ms"] or 0),
                    "last_updated_timestamp_ms": int(r["last_updated_timestamp_ms"] or 0),
                }
                for r in part
            ]

    def _model_texts(self, table: str, key: str, value: str) -> Iterator[Batch]:
        for part in self._rows(table):
            yield [
                {"model_id": r["model_id"], "key": r[key], "value": r[value] or ""} for r in part
            ]

    def logged_model_params(self) -> Iterator[Batch]:
        return self._model_texts("logged_model_params", "param_key", "param_value")

    def logged_model_tags(self) -> Iterator[Batch]:
        return self._model_texts("logged_model_tags", "tag_key", "tag_value")

    def logged_model_metrics(self) -> Iterator[Batch]:
        for part in self._rows("logged_model_metrics"):
            yield [
                model_metric_row(
                    r["model_id"],
                    r["metric_name"],
                    float(r["metric_value"]),
                    int(r["metric_timestamp_ms"] or 0),
                    int(r["metric_step"] or 0),
                    run_id=r.get("run_id"),
                    dataset_name=r.get("dataset_name"),
                    dataset_digest=r.get("dataset_digest"),
                )
                for r in part
            ]

    # -- the model registry ----------------------------------------------------------------------

    def registered_models(self) -> Iterator[Batch]:
        if "registered_models" not in self.t:
            return
        m = self.t["registered_models"]
        statement: Select[Any] = select(m, func.coalesce(self._top_versions().c.top, 0))
        statement = statement.outerjoin(
            self._top_versions(), self._top_versions().c.name == m.c.name
        )
        for part in self._partitions(statement):
            yield [
                {
                    "name": r.name,
                    "description": r.description,
                    "creation_time": int(r.creation_time or 0),
                    "last_updated_time": int(r.last_updated_time or 0),
                    "last_version": int(r[-1]),
                }
                for r in part
            ]

    def _top_versions(self) -> Any:
        if not hasattr(self, "_top"):
            v = self.t["model_versions"].c
            query = select(v.name, func.max(v.version).label("top")).group_by(v.name)
            self._top = query.subquery("top_versions")
        return self._top

    def registered_model_tags(self) -> Iterator[Batch]:
        for part in self._rows("registered_model_tags"):
            yield [{"name": r["name"], "key": r["key"], "value": r["value"] or ""} for r in part]

    def model_versions(self) -> Iterator[Batch]:
        if "model_versions" not in self.t:
            return
        v = self.t["model_versions"]
        statement = select(v).where(v.c.current_stage != DELETED_VERSION)
        for part in self._rows("model_versions", statement):
            yield [
                model_version_row(r["name"], r, r["creation_time"], r["last_updated_time"])
                for r in part
            ]

    def model_version_tags(self) -> Iterator[Batch]:
        if "model_version_tags" not in self.t or "model_versions" not in self.t:
            return
        t, v = self.t["model_version_tags"].c, self.t["model_versions"].c
        statement = (
            select(t.name, t.version, t.key, t.value)
            .join_from(
                self.t["model_version_tags"],
                self.t["model_versions"],
                and_(t.name == v.name, t.version == v.version),
            )
            .where(v.current_stage != DELETED_VERSION)
        )
        for part in self._rows("model_version_tags", statement):
            yield [
                {
                    "name": r["name"],
                    "version": int(r["version"]),
                    "key": r["key"],
                    "value": r["value"] or "",
                }
                for r in part
            ]

    def registered_model_aliases(self) -> Iterator[Batch]:
        for part in self._rows("registered_model_aliases"):
            yield [
                {"name": r["name"], "alias": r["alias"], "version": int(r["version"])} for r in part
            ]
