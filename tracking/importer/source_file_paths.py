"""Reading an MLflow file store's files: `meta.yaml` folders, one-value files, keyed trees."""

import os
from collections.abc import Iterator
from typing import Any

import yaml  # type: ignore[import-untyped]

META = "meta.yaml"
DELETED_VERSION = "Deleted_Internal"
"""The stage MLflow gives a model version it deleted but keeps (its number stays taken)."""


def read_meta(folder: str) -> dict[str, Any] | None:
    path = os.path.join(folder, META)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as file:
        meta = yaml.safe_load(file)
    return meta if isinstance(meta, dict) else None


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as file:
        return file.read()


def keyed_files(folder: str) -> Iterator[tuple[str, str]]:
    """(key, path) of every file under `folder`, the key its relative path with slashes."""
    if not os.path.isdir(folder):
        return
    for parent, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(parent, name)
            yield os.path.relpath(path, folder).replace(os.sep, "/"), path


def metric_lines(folder: str, least: int) -> Iterator[tuple[str, list[str]]]:
    """(key, fields) of each line of each metric file under `folder`/metrics, with at least
    `least` whitespace-separated fields (a shorter line is skipped)."""
    for key, path in keyed_files(os.path.join(folder, "metrics")):
        with open(path, encoding="utf-8") as file:
            for line in file:
                fields = line.split()
                if len(fields) >= least:
                    yield key, fields


def subfolders(folder: str) -> Iterator[tuple[str, str]]:
    """(name, path) of each folder directly inside `folder`, by name."""
    if not os.path.isdir(folder):
        return
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isdir(path):
            yield name, path


def is_deleted_version(meta: dict[str, Any]) -> bool:
    return meta.get("current_stage") == DELETED_VERSION
