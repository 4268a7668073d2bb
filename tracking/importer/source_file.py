"""An MLflow file store directory (`mlruns/`), read as MLflow's FileStore writes it:

    <experiment id>/meta.yaml, tags/<key>             (deleted experiments under .trash/)
    <experiment id>/<run id>/meta.yaml, params/<key>, tags/<key>, metrics/<key>

A key with slashes is a nested path; a metric file holds one point a line, `timestamp value
step` (`timestamp value` before steps existed). Files are opened for reading only. Datasets,
run inputs and outputs, logged models and the registry: source_file_models.py.
"""

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from tracking.importer.source import (
    STATUS,
    Batch,
    Row,
    SourceExperiment,
    batched,
    metric_row,
    with_experiment_deletion,
)
from tracking.importer.source_file_models import FileModelParts
from tracking.importer.source_file_paths import (
    META,
    keyed_files,
    metric_lines,
    read_meta,
    read_text,
)

TRASH = ".trash"
NOT_EXPERIMENTS = {TRASH, "models", ".mlflow"}
NOT_RUNS = {"tags", "datasets", "models", "traces"}


def is_file_store(path: str) -> bool:
    """Whether a directory holds an MLflow file store: an experiment folder with its meta.yaml
    (experiment 0, or any other)."""
    if not os.path.isdir(path):
        return False
    candidates = ["0", *sorted(os.listdir(path))[:1000]]
    return any(_experiment_meta(os.path.join(path, name)) for name in candidates)


def file_store_dir(uri: str) -> str | None:
    """The directory a --backend-store-uri (a plain path or file: URI) names, when it holds an
    MLflow file store."""
    if "://" in uri and not uri.startswith("file:"):
        return None
    path = unquote(urlsplit(uri).path) if uri.startswith("file:") else uri
    return os.path.abspath(path) if is_file_store(path) else None


def _experiment_meta(folder: str) -> dict[str, Any] | None:
    meta = read_meta(folder)
    return meta if meta and "experiment_id" in meta and "name" in meta else None


class FileSource(FileModelParts):
    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.where = self.root

    def close(self) -> None:
        pass

    # -- experiments -----------------------------------------------------------------------------

    def _experiment_folders(self) -> Iterator[str]:
        for base in (self.root, os.path.join(self.root, TRASH)):
            if not os.path.isdir(base):
                continue
            for name in sorted(os.listdir(base)):
                if name not in NOT_EXPERIMENTS and _experiment_meta(os.path.join(base, name)):
                    yield os.path.join(base, name)

    def experiments(self) -> Iterator[SourceExperiment]:
        for folder in self._experiment_folders():
            yield self._experiment(folder)

    def _experiment(self, folder: str) -> SourceExperiment:
        meta = _experiment_meta(folder) or {}
        row = {
            "experiment_id": int(meta["experiment_id"]),
            "name": str(meta["name"]),
            "artifact_location": str(meta.get("artifact_location") or ""),
            "lifecycle_stage": meta.get("lifecycle_stage") or "active",
            "creation_time": int(meta.get("creation_time") or 0),
            "last_update_time": int(meta.get("last_update_time") or 0),
        }
        tags = [(key, read_text(path)) for key, path in keyed_files(os.path.join(folder, "tags"))]
        return SourceExperiment(row, tags)

    # -- runs ------------------------------------------------------------------------------------

    def _run_folders(self) -> Iterator[tuple[str, Row]]:
        """(run folder, its experiment's row) of every run."""
        for folder in self._experiment_folders():
            experiment = self._experiment(folder).row
            for name in sorted(os.listdir(folder)):
                run_folder = os.path.join(folder, name)
                if name not in NOT_RUNS and os.path.isfile(os.path.join(run_folder, META)):
                    yield run_folder, experiment

    def runs(self) -> Iterator[Batch]:
        return batched(
            with_experiment_deletion(self._run(folder), experiment)
            for folder, experiment in self._run_folders()
        )

    def _run(self, folder: str) -> Row:
        meta = read_meta(folder) or {}
        run_id = str(meta.get("run_id") or meta.get("run_uuid") or os.path.basename(folder))
        name = meta.get("run_name")
        if not name:
            tag = os.path.join(folder, "tags", "mlflow.runName")
            name = read_text(tag) if os.path.isfile(tag) else ""
        status = meta.get("status", 1)
        return {
            "run_id": run_id,
            "experiment_id": int(meta.get("experiment_id") or 0),
            "name": str(name),
            "user_id": str(meta.get("user_id") or ""),
            "status": STATUS.get(status, str(status)) if isinstance(status, int) else status,
            "start_time": meta.get("start_time"),
            "end_time": meta.get("end_time"),
            "artifact_uri": str(meta.get("artifact_uri") or ""),
            "lifecycle_stage": meta.get("lifecycle_stage") or "active",
            "deleted_time": meta.get("deleted_time"),
        }

    def _run_ids(self) -> Iterator[tuple[str, str]]:
        for folder, _experiment in self._run_folders():
            meta = read_meta(folder) or {}
            yield folder, str(meta.get("run_id") or meta.get("run_uuid") or "")

    # -- run data --------------------------------------------------------------------------------

    def _texts(self, kind: str) -> Iterator[Row]:
        for folder, run_id in self._run_ids():
            for key, path in keyed_files(os.path.join(folder, kind)):
                yield {"run_id": run_id, "key": key, "value": read_text(path)}

    def params(self) -> Iterator[Batch]:
        return batched(self._texts("params"))

    def tags(self) -> Iterator[Batch]:
        return batched(self._texts("tags"))

    def metrics(self) -> Iterator[Batch]:
        return batched(self._points())

    def _points(self) -> Iterator[Row]:
        for folder, run_id in self._run_ids():
            for key, parts in metric_lines(folder, 2):
                step = int(parts[2]) if len(parts) >= 3 else 0
                yield metric_row(run_id, key, float(parts[1]), int(parts[0]), step)
