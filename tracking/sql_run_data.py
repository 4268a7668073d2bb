"""A run's metrics, params and tags, as Core statements run inside a store's transactions."""

import functools
import math
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Connection,
    Table,
    bindparam,
    delete,
    insert,
    literal_column,
    null,
    select,
    union_all,
)

from tracking import sql_exec, sql_query
from tracking.errors import InvalidValue, NotFound
from tracking.schema import latest_metrics, metrics, params, tags
from tracking.store import Metric, Page, Param, Tag

METRIC_VALUES = ("value", "is_nan", "timestamp", "step")
FLOAT_MAX = sys.float_info.max
Found = dict[str, tuple[list[Metric], list[Param], list[Tag]]]
"""run id -> its latest metrics, params and tags, as `children` fills them in."""


def _children(match: Callable[[Table], ColumnElement[bool]]) -> CompoundSelect[Any]:
    """Latest metrics, params and tags of the runs `match` picks, in one result: (kind, run_id,
    key, number, is_nan, timestamp, step, text), ordered by key (each kind fills its own list;
    ordering by the literal `kind` too made SQLite sort each part instead of reading it in the
    order of its primary-key index)."""
    m = latest_metrics.c
    parts = [
        select(literal_column("0").label("kind"), m.run_id, m.key, m.value, m.is_nan)
        .add_columns(m.timestamp, m.step, null().label("text"))
        .where(match(latest_metrics))
    ]
    for kind, table in ((1, params), (2, tags)):
        part = select(literal_column(str(kind)), table.c.run_id, table.c.key, null(), null())
        parts.append(part.add_columns(null(), null(), table.c.value).where(match(table)))
    union = union_all(*parts)
    return union.order_by(union.selected_columns.key)


CHILDREN_OF_RUN = _children(lambda table: table.c.run_id == bindparam("run_id"))


@functools.lru_cache(maxsize=64)
def _children_of(count: int) -> CompoundSelect[Any]:
    """The children of `count` runs, bound as r0, r1, ... (not an expanding IN list, which only
    SQLAlchemy's own, slower, execution can run); one statement per page size."""
    names: list[BindParameter[str]] = [bindparam(f"r{i}") for i in range(count)]
    return _children(lambda table: table.c.run_id.in_(names))


PARAMS_OF_RUN = select(params.c.key, params.c.value).where(params.c.run_id == bindparam("run_id"))
LATEST_OF_RUN = (
    select(latest_metrics.c.key, latest_metrics.c.step, latest_metrics.c.timestamp)
    .add_columns(latest_metrics.c.value)
    .where(latest_metrics.c.run_id == bindparam("run_id"))
    .with_for_update()
)
POINT = (metrics.c.key, metrics.c.value, metrics.c.is_nan, metrics.c.timestamp, metrics.c.step)
HISTORY = (
    select(*POINT)
    .where(metrics.c.run_id == bindparam("run_id"), metrics.c.key == bindparam("key"))
    .order_by(metrics.c.timestamp, metrics.c.step, metrics.c.value)
)
HISTORY_PAGE = HISTORY.limit(bindparam("limit")).offset(bindparam("offset"))
DELETE_TAG = delete(tags).where(
    tags.c.run_id == bindparam("run_id"), tags.c.key == bindparam("key")
)
ADD_PARAMS = insert(params)


def children(c: Connection, run_ids: list[str], found: Found) -> None:
    """Append the runs' latest metrics, params and tags (sorted by key) to `found`."""
    if len(run_ids) == 1:
        rows = sql_exec.rows(c, CHILDREN_OF_RUN, {"run_id": run_ids[0]})
    else:
        named = {f"r{i}": run_id for i, run_id in enumerate(run_ids)}
        rows = sql_exec.rows(c, _children_of(len(run_ids)), named)
    for kind, run_id, key, number, is_nan, timestamp, step, text in rows:
        lists = found[run_id]
        if kind == 0:
            lists[0].append(Metric(key, _value(number, is_nan), timestamp, step))
        elif kind == 1:
            lists[1].append(Param(key, text))
        else:
            lists[2].append(Tag(key, text))


def log_batch(
    c: Connection, run_id: str, metrics_: list[Metric], params_: list[Param], tags_: list[Tag]
) -> None:
    """Log all or nothing, into an active run (the caller checked it is)."""
    insert_params(c, run_id, params_)
    upsert_tags(c, run_id, tags_)
    if metrics_:
        rows = [_metric_row(run_id, metric) for metric in metrics_]
        sql_exec.many(c, sql_query.insert_ignoring(c, metrics), rows)
        _update_latest(c, run_id, rows)


def _metric_row(run_id: str, metric: Metric) -> dict[str, Any]:
    nan = math.isnan(metric.value)
    value = 0.0 if nan else metric.value
    if math.isinf(value):  # MySQL stores no infinities; as MLflow, the largest float stands in
        value = math.copysign(FLOAT_MAX, value)
    return {
        "run_id": run_id,
        "key": metric.key,
        "value": value,
        "is_nan": int(nan),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }


def _value(stored: float, is_nan: int) -> float:
    """A metric value as logged: NaN is stored as 0 with is_nan, infinities as the largest
    float (databases of artgw 0.1 hold real infinities, which read as they are)."""
    if is_nan:
        return math.nan
    return math.copysign(math.inf, stored) if abs(stored) == FLOAT_MAX else stored


def _update_latest(c: Connection, run_id: str, rows: list[dict[str, Any]]) -> None:
    """Keep each key's latest point, the largest (step, timestamp, value); on a tie the point
    logged last. The rows read are locked (PostgreSQL, MySQL) until the transaction ends."""
    held = {
        key: (step, timestamp, value)
        for key, step, timestamp, value in sql_exec.rows(c, LATEST_OF_RUN, {"run_id": run_id})
    }
    winners: dict[str, dict[str, Any]] = {}
    for row in rows:
        rank = (row["step"], row["timestamp"], row["value"])
        if row["key"] not in held or rank >= held[row["key"]]:
            held[row["key"]] = rank
            winners[row["key"]] = row
    if winners:
        statement = sql_query.upsert(c, latest_metrics, *METRIC_VALUES)
        sql_exec.many(c, statement, list(winners.values()))


def insert_params(c: Connection, run_id: str, params_: list[Param]) -> None:
    """Params are written once: the same value again is fine, another one an error."""
    wanted: dict[str, str] = {}
    for param in params_:
        if wanted.setdefault(param.key, param.value) != param.value:
            raise InvalidValue(
                f"Param '{param.key}' is given twice with different values in one request."
            )
    if not wanted:
        return
    existing = dict(sql_exec.rows(c, PARAMS_OF_RUN, {"run_id": run_id}))
    for key, value in wanted.items():
        if key in existing and existing[key] != value:
            raise InvalidValue(
                f"Changing param values is not allowed. Param with key='{key}' was already "
                f"logged with value='{existing[key]}' for run ID='{run_id}'. "
                f"Attempted logging new value '{value}'."
            )
    new = [{"run_id": run_id, "key": k, "value": v} for k, v in wanted.items() if k not in existing]
    sql_exec.many(c, ADD_PARAMS, new)


def upsert_tags(c: Connection, run_id: str, tags_: list[Tag]) -> list[Tag]:
    """Set the tags (the last value of a key given twice wins); the tags set."""
    values = {tag.key: tag.value for tag in tags_}
    rows = [{"run_id": run_id, "key": key, "value": value} for key, value in values.items()]
    sql_exec.many(c, sql_query.upsert(c, tags, "value"), rows)
    return [Tag(key, value) for key, value in values.items()]


def delete_tag(c: Connection, run_id: str, key: str) -> None:
    if sql_exec.run(c, DELETE_TAG, {"run_id": run_id, "key": key}) == 0:
        raise NotFound(f"No tag with name: {key} in run with id {run_id}")


def metric_history(
    c: Connection, run_id: str, key: str, max_results: int | None, offset: int
) -> Page[Metric]:
    if max_results is None:
        rows = sql_exec.rows(c, HISTORY, {"run_id": run_id, "key": key})
        return Page([_to_metric(*row) for row in rows[offset:]])
    bounds = {"run_id": run_id, "key": key, "limit": max_results + 1, "offset": offset}
    found = [_to_metric(*row) for row in sql_exec.rows(c, HISTORY_PAGE, bounds)]
    return sql_query.page(found, max_results, offset)


def _to_metric(key: str, value: float, is_nan: int, timestamp: int, step: int) -> Metric:
    return Metric(key, _value(value, is_nan), timestamp, step)
