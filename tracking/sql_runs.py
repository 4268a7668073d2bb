"""Runs, as Core statements run inside a store's transactions; their metrics, params and tags
are in sql_run_data.py.

The statements of the busy paths are built once, with bound parameters, and select their columns
by name in a fixed order, so that rows are unpacked by position (SQLAlchemy's per-statement and
per-row costs dominate SQLite's own on these paths)."""

import functools
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, bindparam, delete, insert, select, update

from tracking import sql_exec, sql_query, uris
from tracking import sql_experiments as experiments
from tracking import sql_run_data as run_data
from tracking.errors import InvalidValue, NotFound
from tracking.names import random_run_name
from tracking.schema import runs
from tracking.sql_run_data import Found, children, upsert_tags
from tracking.store import (
    ACTIVE,
    DELETED,
    RUN_NAME_TAG,
    Metric,
    NewRun,
    Page,
    Param,
    Run,
    RunInfo,
    Search,
    Tag,
)

CHUNK = 500
"""Run ids per `IN (...)` list, well under SQLite's limit on bound parameters."""
INFO = (
    runs.c.run_id,
    runs.c.experiment_id,
    runs.c.name,
    runs.c.user_id,
    runs.c.status,
    runs.c.start_time,
    runs.c.end_time,
    runs.c.artifact_uri,
    runs.c.lifecycle_stage,
    runs.c.deleted_time,
)
RUN = select(*INFO).where(runs.c.run_id == bindparam("run_id"))
ADD_RUN = insert(runs)


def _to_info(row: Sequence[Any]) -> RunInfo:
    run_id, experiment_id, *rest = row
    return RunInfo(run_id, str(experiment_id), *rest)


def info(c: Connection, run_id: str) -> RunInfo:
    row = sql_exec.first(c, RUN, {"run_id": run_id})
    if row is None:
        raise NotFound(f"Run with id={run_id} not found")
    return _to_info(row)


def active(c: Connection, run_id: str) -> RunInfo:
    found = info(c, run_id)
    experiments.require_active("run", run_id, found.lifecycle_stage)
    return found


def create(c: Connection, new: NewRun) -> Run:
    tags = new.tags
    key, location = experiments.active_location(c, new.experiment_id)
    name = _run_name(new.run_name, tags)
    run_id = uuid.uuid4().hex
    made = RunInfo(
        run_id,
        str(key),
        name,
        new.user_id,
        "RUNNING",
        new.start_time,
        None,
        uris.append_path(location, run_id, "artifacts"),
        ACTIVE,
    )
    sql_exec.run(c, ADD_RUN, {**_columns(made), "experiment_id": key, "deleted_with_experiment": 0})
    kept = upsert_tags(c, run_id, [*tags, Tag(RUN_NAME_TAG, name)])
    return Run(made, tags=tuple(sorted(kept, key=lambda tag: tag.key)))


def _columns(run: RunInfo) -> dict[str, Any]:
    values = (run.run_id, run.experiment_id, run.run_name, run.user_id, run.status)
    times = (run.start_time, run.end_time, run.artifact_uri, run.lifecycle_stage, run.deleted_time)
    return {column.name: value for column, value in zip(INFO, values + times, strict=True)}


def _run_name(name: str | None, tags: Sequence[Tag]) -> str:
    tag_name = next((tag.value for tag in tags if tag.key == RUN_NAME_TAG), None)
    if name and tag_name and name != tag_name:
        raise InvalidValue(
            f"Both 'run_name' and the '{RUN_NAME_TAG}' tag are given, with different values "
            f"(run_name='{name}', {RUN_NAME_TAG}='{tag_name}')."
        )
    return name or tag_name or random_run_name()


def set_columns(c: Connection, run_id: str, **values: Any) -> None:
    c.execute(update(runs).where(runs.c.run_id == run_id).values(**values))


def update_(
    c: Connection, run_id: str, status: str | None, end_time: int | None, name: str | None
) -> RunInfo:
    current = active(c, run_id)
    set_columns(
        c,
        run_id,
        status=status or current.status,
        end_time=end_time or current.end_time,
        name=name or current.run_name,
    )
    if name:
        upsert_tags(c, run_id, [Tag(RUN_NAME_TAG, name)])
    return info(c, run_id)


def set_stage(c: Connection, run_id: str, stage: str, deleted_time: int | None) -> None:
    info(c, run_id)
    set_columns(
        c, run_id, lifecycle_stage=stage, deleted_time=deleted_time, deleted_with_experiment=0
    )


def hard_delete(c: Connection, run_id: str) -> None:
    info(c, run_id)
    c.execute(delete(runs).where(runs.c.run_id == run_id))


def search(c: Connection, query: Search) -> Page[Run]:
    """One statement per shape of search (filter and ordering without their values, numbers of
    experiments and stages), built and compiled once: per request only values are bound."""
    keys = [k for k in map(experiments.key_of, query.experiment_ids) if k is not None]
    if not keys:
        return Page([], None)
    stages = query.view.stages
    shape, values = sql_query.shape_of(query.clauses, query.order_by)
    values |= {f"e{i}": key for i, key in enumerate(keys)}
    values |= {f"s{i}": stage for i, stage in enumerate(stages)}
    values |= {"limit": query.max_results + 1, "offset": query.offset}
    rows = sql_exec.rows(c, _search_statement(shape, len(keys), len(stages)), values)
    page = sql_query.page([_to_info(row) for row in rows], query.max_results, query.offset)
    return Page(load(c, page.items), page.next_offset)


@functools.lru_cache(maxsize=256)
def _search_statement(shape: sql_query.Shape, experiments: int, stages: int) -> Select[Any]:
    clauses, orders = shape
    return (
        select(*INFO)
        .where(
            runs.c.experiment_id.in_(sql_query.bound_list("e", experiments)),
            runs.c.lifecycle_stage.in_(sql_query.bound_list("s", stages)),
            *sql_query.bound_where(clauses, sql_query.RUNS),
        )
        .order_by(*sql_query.bound_order_by(orders, sql_query.RUNS))
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


def deleted(c: Connection, experiment_ids: list[str] | None) -> list[RunInfo]:
    statement = select(*INFO).where(runs.c.lifecycle_stage == DELETED).order_by(runs.c.deleted_time)
    if experiment_ids is not None:
        keys = [k for k in map(experiments.key_of, experiment_ids) if k is not None]
        statement = statement.where(runs.c.experiment_id.in_(keys))
    return [_to_info(row) for row in c.execute(statement)]


def get(c: Connection, run_id: str) -> Run:
    return load(c, [info(c, run_id)])[0]


def load(c: Connection, infos: list[RunInfo]) -> list[Run]:
    """Attach latest metrics, params and tags: one query per chunk of runs."""
    found: Found = {i.run_id: ([], [], []) for i in infos}
    ids = list(found)
    for start in range(0, len(ids), CHUNK):
        children(c, ids[start : start + CHUNK], found)
    return [_run(i, *found[i.run_id]) for i in infos]


def _run(run: RunInfo, metrics: list[Metric], params: list[Param], tags: list[Tag]) -> Run:
    return Run(run, tuple(metrics), tuple(params), tuple(tags))


# -- run data, in an existing run --------------------------------------------------------------


def log_batch(
    c: Connection, run_id: str, metrics: list[Metric], params: list[Param], tags: list[Tag]
) -> None:
    active(c, run_id)
    run_data.log_batch(c, run_id, metrics, params, tags)
    name = next((tag.value for tag in reversed(tags) if tag.key == RUN_NAME_TAG), None)
    if name:
        set_columns(c, run_id, name=name)


def delete_tag(c: Connection, run_id: str, key: str) -> None:
    active(c, run_id)
    run_data.delete_tag(c, run_id, key)


def metric_history(
    c: Connection, run_id: str, key: str, max_results: int | None, offset: int
) -> Page[Metric]:
    info(c, run_id)
    return run_data.metric_history(c, run_id, key, max_results, offset)
