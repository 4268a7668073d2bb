"""The MLflow file store's datasets, run inputs and outputs, logged models and model registry,
as MLflow 2.x and 3.x write them:

    <experiment>/datasets/<dataset id>/meta.yaml          name, digest, source_type, source, ...
    <experiment>/<run>/inputs/<input id>/meta.yaml        source_type DATASET (or MODEL),
                                                          source_id, tags
    <experiment>/<run>/outputs/<model id>/meta.yaml       step
    <experiment>/models/<model id>/meta.yaml, params/, tags/, metrics/<key>
                                                          (`timestamp value step run_id
                                                          [dataset_name dataset_digest]`)
    models/<name>/meta.yaml, tags/, aliases/<alias>       (the registry, at the store's root)
    models/<name>/version-<n>/meta.yaml, tags/

(MLflow writes an input's `destination_id` as its source id: the run is the folder.) A version
MLflow deleted stays on disk as stage `Deleted_Internal`: it is left out, and only raises the
model's last version number, as it does in MLflow.
"""

import os
from collections.abc import Iterator
from typing import Any

from tracking.importer.source import Batch, Row, batched, model_metric_row, model_version_row
from tracking.importer.source_file_paths import (
    META,
    is_deleted_version,
    keyed_files,
    metric_lines,
    read_meta,
    read_text,
    subfolders,
)

DATASETS = "datasets"
MODELS = "models"
VERSION_PREFIX = "version-"


class FileModelParts:
    """Mixed into `FileSource`: needs its `root`, `_experiment_folders` and `_run_folders`."""

    root: str

    def _experiment_folders(self) -> Iterator[str]:
        raise NotImplementedError

    def _run_folders(self) -> Iterator[tuple[str, Row]]:
        raise NotImplementedError

    # -- datasets and run inputs/outputs ---------------------------------------------------------

    def datasets(self) -> Iterator[Batch]:
        return batched(self._datasets())

    def _datasets(self) -> Iterator[Row]:
        for folder in self._experiment_folders():
            experiment_id = int((read_meta(folder) or {})["experiment_id"])
            for dataset_id, path in subfolders(os.path.join(folder, DATASETS)):
                meta = read_meta(path)
                if meta:
                    yield {
                        "dataset_uuid": dataset_id,
                        "experiment_id": experiment_id,
                        "name": str(meta.get("name") or ""),
                        "digest": str(meta.get("digest") or ""),
                        "source_type": str(meta.get("source_type") or ""),
                        "source": str(meta.get("source") or ""),
                        "dataset_schema": meta.get("schema"),
                        "dataset_profile": meta.get("profile"),
                    }

    def _run_folder_metas(self, kind: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(run id, entry folder name, meta) of each run's inputs/ or outputs/ entries (a run's
        meta.yaml is read only when it has some)."""
        for folder, _experiment in self._run_folders():
            entries = list(subfolders(os.path.join(folder, kind)))
            if not entries:
                continue
            run = read_meta(folder) or {}
            run_id = str(run.get("run_id") or run.get("run_uuid") or os.path.basename(folder))
            for name, path in entries:
                meta = read_meta(path)
                if meta:
                    yield run_id, name, meta

    def _inputs(self, source_type: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(run id, source id, meta) of each run input from a source of this type."""
        for run_id, _name, meta in self._run_folder_metas("inputs"):
            if meta.get("source_type") == source_type:
                yield run_id, str(meta["source_id"]), meta

    def inputs(self) -> Iterator[Batch]:
        datasets = self._inputs("DATASET")
        return batched({"run_id": run_id, "dataset_uuid": source} for run_id, source, _ in datasets)

    def input_tags(self) -> Iterator[Batch]:
        return batched(
            {"run_id": run_id, "dataset_uuid": source, "key": k, "value": str(v)}
            for run_id, source, meta in self._inputs("DATASET")
            for k, v in sorted((meta.get("tags") or {}).items())
        )

    def model_inputs(self) -> Iterator[Batch]:
        return batched(
            {"run_id": run_id, "model_id": source} for run_id, source, _ in self._inputs("MODEL")
        )

    def model_outputs(self) -> Iterator[Batch]:
        return batched(
            {"run_id": run_id, "model_id": name, "step": int(meta.get("step") or 0)}
            for run_id, name, meta in self._run_folder_metas("outputs")
        )

    # -- logged models ---------------------------------------------------------------------------

    def _model_folders(self) -> Iterator[tuple[str, str]]:
        for folder in self._experiment_folders():
            for model_id, path in subfolders(os.path.join(folder, MODELS)):
                if os.path.isfile(os.path.join(path, META)):
                    yield model_id, path

    def logged_models(self) -> Iterator[Batch]:
        return batched(self._logged_model(id_, path) for id_, path in self._model_folders())

    @staticmethod
    def _logged_model(model_id: str, folder: str) -> Row:
        meta = read_meta(folder) or {}
        return {
            "model_id": str(meta.get("model_id") or model_id),
            "experiment_id": int(meta["experiment_id"]),
            "name": str(meta.get("name") or ""),
            "model_type": str(meta.get("model_type") or ""),
            "source_run_id": str(meta.get("source_run_id") or ""),
            "status": int(meta.get("status") or 0),
            "status_message": str(meta.get("status_message") or ""),
            "artifact_location": str(meta.get("artifact_location") or ""),
            "lifecycle_stage": str(meta.get("lifecycle_stage") or "active"),
            "creation_timestamp_ms": int(meta.get("creation_timestamp") or 0),
            "last_updated_timestamp_ms": int(meta.get("last_updated_timestamp") or 0),
        }

    def _model_texts(self, kind: str) -> Iterator[Batch]:
        return batched(
            {"model_id": model_id, "key": key, "value": read_text(path)}
            for model_id, folder in self._model_folders()
            for key, path in keyed_files(os.path.join(folder, kind))
        )

    def logged_model_params(self) -> Iterator[Batch]:
        return self._model_texts("params")

    def logged_model_tags(self) -> Iterator[Batch]:
        return self._model_texts("tags")

    def logged_model_metrics(self) -> Iterator[Batch]:
        return batched(self._model_points())

    def _model_points(self) -> Iterator[Row]:
        for model_id, folder in self._model_folders():
            for key, parts in metric_lines(folder, 4):
                name, digest = (parts[4], parts[5]) if len(parts) >= 6 else ("", "")
                yield model_metric_row(
                    model_id,
                    key,
                    float(parts[1]),
                    int(parts[0]),
                    int(parts[2]),
                    run_id=parts[3],
                    dataset_name=name,
                    dataset_digest=digest,
                )

    # -- the model registry ----------------------------------------------------------------------

    def _registered(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for _folder, path in subfolders(os.path.join(self.root, MODELS)):
            meta = read_meta(path)
            if meta and "name" in meta:
                yield str(meta["name"]), path, meta

    def _versions(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(model name, version folder, meta) of each version not deleted."""
        for name, folder, _meta in self._registered():
            for entry, path in subfolders(folder):
                meta = read_meta(path) if entry.startswith(VERSION_PREFIX) else None
                if meta and not is_deleted_version(meta):
                    yield name, path, meta

    def registered_models(self) -> Iterator[Batch]:
        return batched(
            {
                "name": name,
                "description": meta.get("description"),
                "creation_time": int(meta.get("creation_timestamp") or 0),
                "last_updated_time": int(meta.get("last_updated_timestamp") or 0),
                "last_version": _last_version(folder),
            }
            for name, folder, meta in self._registered()
        )

    def registered_model_tags(self) -> Iterator[Batch]:
        return batched(
            {"name": name, "key": key, "value": read_text(path)}
            for name, folder, _meta in self._registered()
            for key, path in keyed_files(os.path.join(folder, "tags"))
        )

    def model_versions(self) -> Iterator[Batch]:
        return batched(
            model_version_row(
                name,
                meta,
                creation_time=meta.get("creation_timestamp"),
                last_updated_time=meta.get("last_updated_timestamp"),
            )
            for name, _folder, meta in self._versions()
        )

    def model_version_tags(self) -> Iterator[Batch]:
        return batched(
            {"name": name, "version": int(meta["version"]), "key": key, "value": read_text(path)}
            for name, folder, meta in self._versions()
            for key, path in keyed_files(os.path.join(folder, "tags"))
        )

    def registered_model_aliases(self) -> Iterator[Batch]:
        return batched(
            {"name": name, "alias": alias, "version": int(read_text(path).strip())}
            for name, folder, _meta in self._registered()
            for alias, path in keyed_files(os.path.join(folder, "aliases"))
        )


def _last_version(folder: str) -> int:
    """The highest version number given (deleted versions included)."""
    numbers = [
        int(entry.removeprefix(VERSION_PREFIX))
        for entry, _path in subfolders(folder)
        if entry.startswith(VERSION_PREFIX) and entry.removeprefix(VERSION_PREFIX).isdigit()
    ]
    return max(numbers, default=0)
