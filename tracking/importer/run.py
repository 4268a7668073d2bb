"""Driving an import: the entities in dependency order (experiments, runs, then their params,
tags and metrics, then datasets, logged models and the registry), one target transaction per
experiment or batch, a progress line per entity.

`Apply` runs a function in one write transaction of the target: `Database.write_here` for a
real import; for a dry run, the whole import runs in one transaction that is rolled back.
"""

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from sqlalchemy import Connection, Table

from tracking.errors import StoreError
from tracking.importer.merge import chunks
from tracking.importer.report import Report
from tracking.importer.source import Batch, Source
from tracking.importer.source_file import FileSource, file_store_dir
from tracking.importer.source_sql import SqlSource
from tracking.importer.writer import Writer
from tracking.schema import (
    logged_model_params as model_params,
)
from tracking.schema import (
    logged_model_tags as model_tags,
)
from tracking.schema import (
    model_inputs,
    model_outputs,
    params,
    tags,
)
from tracking.sql_store import SqlStore

T = TypeVar("T")
Apply = Callable[[Callable[[Connection], T]], T]
Progress = Callable[[str], None]
PROGRESS_EVERY = 2.0
"""Seconds between progress lines while an entity is streaming."""


def open_source(source: str) -> Source:
    """A file store directory (a path or file: URI) or an MLflow SQL database URI."""
    folder = file_store_dir(source)
    if folder:
        return FileSource(folder)
    path = unquote(urlsplit(source).path) if source.startswith("file:") else source
    if ("://" not in source or source.startswith("file:")) and os.path.isdir(path):
        raise StoreError(f"{path} holds no MLflow file store (no <experiment>/meta.yaml)")
    if "://" not in source and not os.path.isfile(path):
        raise StoreError(f"No MLflow store at {source}")
    return SqlSource(source if "://" in source else f"sqlite:///{os.path.abspath(path)}")


def import_all(source: Source, apply: Apply[None], report: Report, progress: Progress) -> None:
    writer = Writer(report)
    for experiment in source.experiments():
        apply(lambda c, e=experiment: writer.experiment(c, e))  # type: ignore[misc]
    apply(writer.finish_experiments)
    progress(report["experiments"].line("experiments", report.dry_run))
    _stream("runs", source.runs(), lambda c, b: writer.runs(c, b), apply, report, progress)
    for table, batches in ((params, source.params()), (tags, source.tags())):
        _stream(
            table.name,
            batches,
            lambda c, b, t=table: writer.texts(c, t, b),  # type: ignore[misc]
            apply,
            report,
            progress,
        )
    _stream("metrics", source.metrics(), writer.metrics, apply, report, progress)
    for part in chunks(sorted(writer.latest), 5000):
        apply(lambda c, p=part: writer.finish_metrics(c, p))  # type: ignore[misc]
    for entity, batches, write in _model_parts(source, writer):
        _stream(entity, batches, write, apply, report, progress)


def _model_parts(
    source: Source, w: Writer
) -> list[tuple[str, Iterator[Batch], Callable[[Connection, Batch], None]]]:
    """Datasets, run inputs/outputs, logged models and the registry, parents first (each
    source iterator is only started when its turn comes)."""
    return [
        ("datasets", source.datasets(), w.datasets),
        ("inputs", source.inputs(), w.inputs),
        ("input_tags", source.input_tags(), w.input_tags),
        ("logged_models", source.logged_models(), w.logged_models),
        ("logged_model_params", source.logged_model_params(), _on(w.model_texts, model_params)),
        ("logged_model_tags", source.logged_model_tags(), _on(w.model_texts, model_tags)),
        ("logged_model_metrics", source.logged_model_metrics(), w.model_metrics),
        ("model_inputs", source.model_inputs(), _on(w.model_links, model_inputs)),
        ("model_outputs", source.model_outputs(), _on(w.model_links, model_outputs)),
        ("registered_models", source.registered_models(), w.registered_models),
        ("registered_model_tags", source.registered_model_tags(), w.registered_model_tags),
        ("model_versions", source.model_versions(), w.model_versions),
        ("model_version_tags", source.model_version_tags(), w.model_version_tags),
        ("registered_model_aliases", source.registered_model_aliases(), w.aliases),
    ]


def _on(
    write: Callable[[Connection, Table, Batch], None], table: Table
) -> Callable[[Connection, Batch], None]:
    return lambda c, batch: write(c, table, batch)


def _stream(
    entity: str,
    batches: Iterator[Batch],
    write: Callable[[Connection, Batch], None],
    apply: Apply[None],
    report: Report,
    progress: Progress,
) -> None:
    started = shown = time.monotonic()
    for batch in batches:
        apply(lambda c, b=batch: write(c, b))  # type: ignore[misc]
        if time.monotonic() - shown > PROGRESS_EVERY:
            shown = time.monotonic()
            tally = report[entity]
            done = tally.imported + tally.skipped + tally.conflicting
            rate = done / max(shown - started, 1e-9)
            progress(f"{entity}: {done} read so far ({rate:,.0f} rows/s)")
    progress(report[entity].line(entity, report.dry_run))


class _RolledBack(Exception):
    """Ends a dry run's one transaction without committing it."""


async def run_import(
    source_uri: str, target_uri: str, *, dry_run: bool, progress: Progress
) -> Report:
    """Import `source_uri` into the artgw store `target_uri` (created when missing)."""
    started = time.monotonic()
    source = await asyncio.to_thread(open_source, source_uri)
    report = Report(dry_run=dry_run)
    try:
        if dry_run:
            await _dry_run(source, target_uri, report, progress)
        else:
            store = SqlStore(target_uri, "mlflow-artifacts:/")
            await store.open()
            try:
                apply: Apply[None] = store.db.write_here
                await asyncio.to_thread(import_all, source, apply, report, progress)
            finally:
                await store.close()
    finally:
        source.close()
    report.seconds = time.monotonic() - started
    return report


async def _dry_run(source: Source, target_uri: str, report: Report, progress: Progress) -> None:
    """Everything in one transaction, rolled back; a target that is not an artgw store yet
    is counted against an empty one made in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="artgw-import-dry-") as scratch:
        store = SqlStore(target_uri, "mlflow-artifacts:/", create=False)
        try:
            await store.open()
        except StoreError as exc:
            progress(f"dry run: {exc}; counting against an empty store")
            store = SqlStore(f"sqlite:///{scratch}/dry-run.db", "mlflow-artifacts:/")
            await store.open()
        try:

            def everything(c: Connection) -> None:
                report.tallies = Report().tallies
                import_all(source, lambda work: work(c), report, progress)
                raise _RolledBack

            with contextlib.suppress(_RolledBack):
                await asyncio.to_thread(store.db.write_here, everything)
        finally:
            await store.close()
