"""Runs and their metrics, params and tags, as Core statements run inside a store's
transactions. The statements of the busy paths are built once, with bound parameters."""

import math
import uuid
from typing import Any

from sqlalchemy import BindParameter, Connection, Row, bindparam, delete, insert, select, update

from tracking import sql_experiments as experiments
from tracking import sql_query, uris
from tracking.errors import InvalidValue, NotFound
from tracking.names import random_run_name
from tracking.schema import latest_metrics, metrics, params, runs, tags
from tracking.store import (
    ACTIVE,
    DELETED,
    RUN_NAME_TAG,
    Metric,
    Page,
    Param,
    Run,
    RunInfo,
    Search,
    Tag,
)

CHUNK = 500
"""Run ids per `IN (...)` list, well under SQLite's limit on bound parameters."""
METRIC_VALUES = ("value", "is_nan", "timestamp", "step")

RUN = select(runs).where(runs.c.run_id == bindparam("run_id"))
PARAMS_OF_RUN = select(params.c.key, params.c.value).where(params.c.run_id == bindparam("run_id"))
IDS: BindParameter[list[str]] = bindparam("ids", expanding=True)
LATEST_OF_RUNS = (
    select(latest_metrics).where(latest_metrics.c.run_id.in_(IDS)).order_by(latest_metrics.c.key)
)
CHILDREN_OF_RUNS = tuple(
    (kind, select(t.c.run_id, t.c.key, t.c.value).where(t.c.run_id.in_(IDS)).order_by(t.c.key))
    for kind, t in (("p", params), ("t", tags))
)
LATEST_OF_KEYS = (
    select(latest_metrics.c.key, latest_metrics.c.step, latest_metrics.c.timestamp)
    .add_columns(latest_metrics.c.value)
    .where(latest_metrics.c.run_id == bindparam("run_id"))
    .where(latest_metrics.c.key.in_(bindparam("keys", expanding=True)))
    .with_for_update()
)
HISTORY = (
    select(metrics)
    .where(metrics.c.run_id == bindparam("run_id"), metrics.c.key == bindparam("key"))
    .order_by(metrics.c.timestamp, metrics.c.step, metrics.c.value)
)
HISTORY_PAGE = HISTORY.limit(bindparam("limit")).offset(bindparam("offset"))
DELETE_TAG = delete(tags).where(
    tags.c.run_id == bindparam("run_id"), tags.c.key == bindparam("key")
)


def _to_info(row: Row[Any]) -> RunInfo:
    return RunInfo(
        run_id=row.run_id,
        experiment_id=str(row.experiment_id),
        run_name=row.name,
        user_id=row.user_id,
        status=row.status,
        start_time=row.start_time,
        end_time=row.end_time,
        artifact_uri=row.artifact_uri,
        lifecycle_stage=row.lifecycle_stage,
        deleted_time=row.deleted_time,
    )


def info(c: Connection, run_id: str) -> RunInfo:
    row = c.execute(RUN, {"run_id": run_id}).first()
    if row is None:
        raise NotFound(f"Run with id={run_id} not found")
    return _to_info(row)


def _active(c: Connection, run_id: str) -> RunInfo:
    found = info(c, run_id)
    if found.lifecycle_stage != ACTIVE:
        raise InvalidValue(
            f"The run {run_id} must be in the 'active' state. "
            f"Current state is {found.lifecycle_stage}."
        )
    return found


def create(
    c: Connection,
    experiment_id: str,
    user_id: str,
    start_time: int,
    name: str | None,
    tags_: list[Tag],
) -> Run:
    experiment = experiments.get(c, experiment_id)
    if experiment.lifecycle_stage != ACTIVE:
        raise InvalidValue(
            f"The experiment {experiment_id} must be in the 'active' state. "
            f"Current state is {experiment.lifecycle_stage}."
        )
    name = _run_name(name, tags_)
    run_id = uuid.uuid4().hex
    c.execute(
        insert(runs).values(
            run_id=run_id,
            experiment_id=int(experiment.experiment_id),
            name=name,
            user_id=user_id,
            status="RUNNING",
            start_time=start_time,
            artifact_uri=uris.append_path(experiment.artifact_location, run_id, "artifacts"),
            lifecycle_stage=ACTIVE,
            deleted_with_experiment=0,
        )
    )
    _upsert_tags(c, run_id, [*tags_, Tag(RUN_NAME_TAG, name)])
    return load(c, [info(c, run_id)])[0]


def _run_name(name: str | None, tags_: list[Tag]) -> str:
    tag_name = next((tag.value for tag in tags_ if tag.key == RUN_NAME_TAG), None)
    if name and tag_name and name != tag_name:
        raise InvalidValue(
            f"Both 'run_name' and the '{RUN_NAME_TAG}' tag are given, with different values "
            f"(run_name='{name}', {RUN_NAME_TAG}='{tag_name}')."
        )
    return name or tag_name or random_run_name()


def _set(c: Connection, run_id: str, **values: Any) -> None:
    c.execute(update(runs).where(runs.c.run_id == run_id).values(**values))


def update_(
    c: Connection, run_id: str, status: str | None, end_time: int | None, name: str | None
) -> RunInfo:
    current = _active(c, run_id)
    _set(
        c,
        run_id,
        status=status or current.status,
        end_time=end_time or current.end_time,
        name=name or current.run_name,
    )
    if name:
        _upsert_tags(c, run_id, [Tag(RUN_NAME_TAG, name)])
    return info(c, run_id)


def set_stage(c: Connection, run_id: str, stage: str, deleted_time: int | None) -> None:
    info(c, run_id)
    _set(c, run_id, lifecycle_stage=stage, deleted_time=deleted_time, deleted_with_experiment=0)


def hard_delete(c: Connection, run_id: str) -> None:
    info(c, run_id)
    c.execute(delete(runs).where(runs.c.run_id == run_id))


def search(c: Connection, query: Search) -> Page[Run]:
    keys = [k for k in map(experiments.key_of, query.experiment_ids) if k is not None]
    statement = (
        select(runs)
        .where(
            runs.c.experiment_id.in_(keys),
            runs.c.lifecycle_stage.in_(query.view.stages),
            *sql_query.where(query.clauses, sql_query.RUNS),
        )
        .order_by(*sql_query.order_by(query.order_by, sql_query.RUNS))
        .limit(query.max_results + 1)
        .offset(query.offset)
    )
    found = [_to_info(row) for row in c.execute(statement)]
    page = sql_query.page(found, query.max_results, query.offset)
    return Page(load(c, page.items), page.next_offset)


def deleted(c: Connection, experiment_ids: list[str] | None) -> list[RunInfo]:
    statement = select(runs).where(runs.c.lifecycle_stage == DELETED).order_by(runs.c.deleted_time)
    if experiment_ids is not None:
        keys = [k for k in map(experiments.key_of, experiment_ids) if k is not None]
        statement = statement.where(runs.c.experiment_id.in_(keys))
    return [_to_info(row) for row in c.execute(statement)]


def load(c: Connection, infos: list[RunInfo]) -> list[Run]:
    """Attach latest metrics, params and tags, a few queries for the whole list."""
    found: dict[str, dict[str, list[Any]]] = {i.run_id: {"m": [], "p": [], "t": []} for i in infos}
    ids = list(found)
    for start in range(0, len(ids), CHUNK):
        chunk = {"ids": ids[start : start + CHUNK]}
        for row in c.execute(LATEST_OF_RUNS, chunk):
            found[row.run_id]["m"].append(_to_metric(row))
        for kind, statement in CHILDREN_OF_RUNS:
            cls = Param if kind == "p" else Tag
            for run_id, key, value in c.execute(statement, chunk):
                found[run_id][kind].append(cls(key, value))
    return [Run(i, *(tuple(found[i.run_id][kind]) for kind in "mpt")) for i in infos]


# -- run data ----------------------------------------------------------------------------------


def log_batch(
    c: Connection, run_id: str, metrics_: list[Metric], params_: list[Param], tags_: list[Tag]
) -> None:
    _active(c, run_id)
    _insert_params(c, run_id, params_)
    _upsert_tags(c, run_id, tags_)
    name = next((tag.value for tag in reversed(tags_) if tag.key == RUN_NAME_TAG), None)
    if name:
        _set(c, run_id, name=name)
    if metrics_:
        rows = [_metric_row(run_id, metric) for metric in metrics_]
        c.execute(sql_query.insert_ignoring(c, metrics), rows)
        _update_latest(c, run_id, rows)


def _metric_row(run_id: str, metric: Metric) -> dict[str, Any]:
    nan = math.isnan(metric.value)
    return {
        "run_id": run_id,
        "key": metric.key,
        "value": 0.0 if nan else metric.value,
        "is_nan": int(nan),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }


def _rank(row: Any) -> tuple[int, int, float]:
    """Which of two points of a key is the latest: the larger (step, timestamp, value)."""
    return (row["step"], row["timestamp"], row["value"])


def _update_latest(c: Connection, run_id: str, rows: list[dict[str, Any]]) -> None:
    """Keep each key's latest point; on a tie the point logged last wins."""
    keys = list({row["key"] for row in rows})
    held = {
        key: (step, timestamp, value)
        for key, step, timestamp, value in c.execute(
            LATEST_OF_KEYS, {"run_id": run_id, "keys": keys}
        )
    }
    winners: dict[str, dict[str, Any]] = {}
    for row in rows:
        rank = _rank(row)
        if row["key"] not in held or rank >= held[row["key"]]:
            held[row["key"]] = rank
            winners[row["key"]] = row
    if winners:
        c.execute(sql_query.upsert(c, latest_metrics, *METRIC_VALUES), list(winners.values()))


def _insert_params(c: Connection, run_id: str, params_: list[Param]) -> None:
    wanted: dict[str, str] = {}
    for param in params_:
        if wanted.setdefault(param.key, param.value) != param.value:
            raise InvalidValue(
                f"Param '{param.key}' is given twice with different values in one request."
            )
    if not wanted:
        return
    existing = {key: value for key, value in c.execute(PARAMS_OF_RUN, {"run_id": run_id})}
    for key, value in wanted.items():
        if key in existing and existing[key] != value:
            raise InvalidValue(
                f"Changing param values is not allowed. Param with key='{key}' was already "
                f"logged with value='{existing[key]}' for run ID='{run_id}'. "
                f"Attempted logging new value '{value}'."
            )
    new = [{"run_id": run_id, "key": k, "value": v} for k, v in wanted.items() if k not in existing]
    if new:
        c.execute(insert(params), new)


def _upsert_tags(c: Connection, run_id: str, tags_: list[Tag]) -> None:
    values = {tag.key: tag.value for tag in tags_}
    if values:
        rows = [{"run_id": run_id, "key": key, "value": value} for key, value in values.items()]
        c.execute(sql_query.upsert(c, tags, "value"), rows)


def delete_tag(c: Connection, run_id: str, key: str) -> None:
    _active(c, run_id)
    if c.execute(DELETE_TAG, {"run_id": run_id, "key": key}).rowcount == 0:
        raise NotFound(f"No tag with name: {key} in run with id {run_id}")


def metric_history(
    c: Connection, run_id: str, key: str, max_results: int | None, offset: int
) -> Page[Metric]:
    info(c, run_id)
    if max_results is None:
        rows = c.execute(HISTORY, {"run_id": run_id, "key": key}).all()
        return Page([_to_metric(row) for row in rows[offset:]])
    bounds = {"run_id": run_id, "key": key, "limit": max_results + 1, "offset": offset}
    found = [_to_metric(row) for row in c.execute(HISTORY_PAGE, bounds)]
    return sql_query.page(found, max_results, offset)


def _to_metric(row: Row[Any]) -> Metric:
    value = math.nan if row.is_nan else row.value
    return Metric(row.key, value, row.timestamp, row.step)
