"""SQL of runs and their metrics, params and tags, run by the SQLite and PostgreSQL stores inside
their transactions (the SQL both engines share: see sql_query.py)."""

import math
import uuid

from tracking import sql_experiments as experiments
from tracking import sql_query, uris
from tracking.errors import InvalidValue, NotFound
from tracking.names import random_run_name
from tracking.sql_query import Conn, Row
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


def _to_info(row: Row) -> RunInfo:
    return RunInfo(
        run_id=row["run_id"],
        experiment_id=str(row["experiment_id"]),
        run_name=row["name"],
        user_id=row["user_id"],
        status=row["status"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        artifact_uri=row["artifact_uri"],
        lifecycle_stage=row["lifecycle_stage"],
        deleted_time=row["deleted_time"],
    )


def info(c: Conn, run_id: str) -> RunInfo:
    row = c.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    if row is None:
        raise NotFound(f"Run with id={run_id} not found")
    return _to_info(row)


def _active(c: Conn, run_id: str) -> RunInfo:
    found = info(c, run_id)
    if found.lifecycle_stage != ACTIVE:
        raise InvalidValue(
            f"The run {run_id} must be in the 'active' state. "
            f"Current state is {found.lifecycle_stage}."
        )
    return found


def create(
    c: Conn, experiment_id: str, user_id: str, start_time: int, name: str | None, tags: list[Tag]
) -> Run:
    experiment = experiments.get(c, experiment_id)
    if experiment.lifecycle_stage != ACTIVE:
        raise InvalidValue(
            f"The experiment {experiment_id} must be in the 'active' state. "
            f"Current state is {experiment.lifecycle_stage}."
        )
    tag_name = next((tag.value for tag in tags if tag.key == RUN_NAME_TAG), None)
    if name and tag_name and name != tag_name:
        raise InvalidValue(
            f"Both 'run_name' and the '{RUN_NAME_TAG}' tag are given, with different values "
            f"(run_name='{name}', {RUN_NAME_TAG}='{tag_name}')."
        )
    name = name or tag_name or random_run_name()
    run_id = uuid.uuid4().hex
    artifact_uri = uris.append_path(experiment.artifact_location, run_id, "artifacts")
    c.execute(
        "INSERT INTO runs VALUES (?, ?, ?, ?, 'RUNNING', ?, NULL, ?, ?, NULL, 0)",
        (run_id, int(experiment.experiment_id), name, user_id, start_time, artifact_uri, ACTIVE),
    )
    _upsert_tags(c, run_id, [*tags, Tag(RUN_NAME_TAG, name)])
    return load(c, [info(c, run_id)])[0]


def update(
    c: Conn, run_id: str, status: str | None, end_time: int | None, name: str | None
) -> RunInfo:
    current = _active(c, run_id)
    c.execute(
        "UPDATE runs SET status = ?, end_time = ?, name = ? WHERE run_id = ?",
        (status or current.status, end_time or current.end_time, name or current.run_name, run_id),
    )
    if name:
        _upsert_tags(c, run_id, [Tag(RUN_NAME_TAG, name)])
    return info(c, run_id)


def set_stage(c: Conn, run_id: str, stage: str, deleted_time: int | None) -> None:
    info(c, run_id)
    c.execute(
        "UPDATE runs SET lifecycle_stage = ?, deleted_time = ?, deleted_with_experiment = 0 "
        "WHERE run_id = ?",
        (stage, deleted_time, run_id),
    )


def hard_delete(c: Conn, run_id: str) -> None:
    info(c, run_id)
    c.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))


def search(c: Conn, query: Search) -> Page[Run]:
    keys = [k for k in map(experiments.key_of, query.experiment_ids) if k is not None]
    where, params = sql_query.where(query.clauses, sql_query.RUNS)
    order, order_params = sql_query.order_by(query.order_by, sql_query.RUNS)
    stages = query.view.stages
    rows = c.execute(
        f"SELECT r.* FROM runs r WHERE r.experiment_id IN ({sql_query.marks(keys)}) "
        f"AND r.lifecycle_stage IN ({sql_query.marks(stages)}){where}{order} LIMIT ? OFFSET ?",
        [*keys, *stages, *params, *order_params, query.max_results + 1, query.offset],
    ).fetchall()
    page = sql_query.page([_to_info(row) for row in rows], query.max_results, query.offset)
    return Page(load(c, page.items), page.next_offset)


def deleted(c: Conn, experiment_ids: list[str] | None) -> list[RunInfo]:
    sql, params = "SELECT * FROM runs WHERE lifecycle_stage = ?", [DELETED]
    if experiment_ids is not None:
        keys = [k for k in map(experiments.key_of, experiment_ids) if k is not None]
        sql += f" AND experiment_id IN ({sql_query.marks(keys)})"
        params.extend(keys)
    return [_to_info(row) for row in c.execute(sql + " ORDER BY deleted_time", params)]


def load(c: Conn, infos: list[RunInfo]) -> list[Run]:
    """Attach latest metrics, params and tags, a few queries for the whole list."""
    found: dict[str, dict[str, list]] = {i.run_id: {"m": [], "p": [], "t": []} for i in infos}
    ids = list(found)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        marks = sql_query.marks(chunk)
        for row in c.execute(
            f"SELECT * FROM latest_metrics WHERE run_id IN ({marks}) ORDER BY key", chunk
        ):
            found[row["run_id"]]["m"].append(_to_metric(row))
        for table, kind, cls in (("params", "p", Param), ("tags", "t", Tag)):
            for run_id, key, value in c.execute(
                f"SELECT run_id, key, value FROM {table} WHERE run_id IN ({marks}) ORDER BY key",
                chunk,
            ):
                found[run_id][kind].append(cls(key, value))
    return [
        Run(
            i, tuple(found[i.run_id]["m"]), tuple(found[i.run_id]["p"]), tuple(found[i.run_id]["t"])
        )
        for i in infos
    ]


# -- run data ----------------------------------------------------------------------------------


def log_batch(
    c: Conn, run_id: str, metrics: list[Metric], params: list[Param], tags: list[Tag]
) -> None:
    _active(c, run_id)
    _insert_params(c, run_id, params)
    _upsert_tags(c, run_id, tags)
    name = next((tag.value for tag in reversed(tags) if tag.key == RUN_NAME_TAG), None)
    if name:
        c.execute("UPDATE runs SET name = ? WHERE run_id = ?", (name, run_id))
    rows = [(run_id, m.key, *_stored_value(m.value), m.timestamp, m.step) for m in metrics]
    c.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)
    c.executemany(
        "INSERT INTO latest_metrics VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, key) "
        "DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan, "
        "timestamp = excluded.timestamp, step = excluded.step "
        "WHERE (excluded.step, excluded.timestamp, excluded.value) >= "
        "(latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)",
        rows,
    )


def _insert_params(c: Conn, run_id: str, params: list[Param]) -> None:
    wanted: dict[str, str] = {}
    for param in params:
        if wanted.setdefault(param.key, param.value) != param.value:
            raise InvalidValue(
                f"Param '{param.key}' is given twice with different values in one request."
            )
    existing = dict(
        c.execute("SELECT key, value FROM params WHERE run_id = ?", (run_id,)).fetchall()
    )
    for key, value in wanted.items():
        if key in existing and existing[key] != value:
            raise InvalidValue(
                f"Changing param values is not allowed. Param with key='{key}' was already "
                f"logged with value='{existing[key]}' for run ID='{run_id}'. "
                f"Attempted logging new value '{value}'."
            )
    c.executemany(
        "INSERT INTO params VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        [(run_id, key, value) for key, value in wanted.items()],
    )


def _upsert_tags(c: Conn, run_id: str, tags: list[Tag]) -> None:
    c.executemany(
        "INSERT INTO tags VALUES (?, ?, ?) "
        "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
        [(run_id, tag.key, tag.value) for tag in tags],
    )


def delete_tag(c: Conn, run_id: str, key: str) -> None:
    _active(c, run_id)
    if c.execute("DELETE FROM tags WHERE run_id = ? AND key = ?", (run_id, key)).rowcount == 0:
        raise NotFound(f"No tag with name: {key} in run with id {run_id}")


def metric_history(
    c: Conn, run_id: str, key: str, max_results: int | None, offset: int
) -> Page[Metric]:
    info(c, run_id)
    sql = "SELECT * FROM metrics WHERE run_id = ? AND key = ? ORDER BY timestamp, step, value"
    if max_results is None:
        rows = c.execute(sql, (run_id, key)).fetchall()
        return Page([_to_metric(row) for row in rows[offset:]])
    rows = c.execute(sql + " LIMIT ? OFFSET ?", (run_id, key, max_results + 1, offset)).fetchall()
    return sql_query.page([_to_metric(row) for row in rows], max_results, offset)


def _stored_value(value: float) -> tuple[float, int]:
    return (0.0, 1) if math.isnan(value) else (value, 0)


def _to_metric(row: Row) -> Metric:
    value = math.nan if row["is_nan"] else row["value"]
    return Metric(row["key"], value, row["timestamp"], row["step"])
