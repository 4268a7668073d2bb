"""SQL of experiments and their tags, run by the SQLite and PostgreSQL stores inside their
transactions (the SQL both engines share: see sql_query.py)."""

from collections.abc import Iterable

from tracking import sql_query, uris
from tracking.errors import AlreadyExists, InvalidValue, NotFound
from tracking.sql_query import Conn, Row
from tracking.store import ACTIVE, DELETED, Experiment, Page, Search, Tag, now_ms


def key_of(experiment_id: str) -> int | None:
    text = str(experiment_id)
    return int(text) if text.isdigit() and len(text) < 19 else None


def get(c: Conn, experiment_id: str, stages: Iterable[str] = (ACTIVE, DELETED)) -> Experiment:
    key = key_of(experiment_id)
    row = c.execute("SELECT * FROM experiments WHERE experiment_id = ?", (key,)).fetchone()
    if row is None or row["lifecycle_stage"] not in stages:
        stage = "" if set(stages) == {ACTIVE, DELETED} else f"{next(iter(stages))} "
        raise NotFound(f"No {stage}Experiment with id={experiment_id} exists")
    return _to_experiment(c, row)


def _to_experiment(c: Conn, row: Row) -> Experiment:
    tags = c.execute(
        "SELECT key, value FROM experiment_tags WHERE experiment_id = ? ORDER BY key",
        (row["experiment_id"],),
    )
    return Experiment(
        experiment_id=str(row["experiment_id"]),
        name=row["name"],
        artifact_location=row["artifact_location"],
        lifecycle_stage=row["lifecycle_stage"],
        creation_time=row["creation_time"],
        last_update_time=row["last_update_time"],
        tags=tuple(Tag(key, value) for key, value in tags),
    )


def by_name(c: Conn, name: str) -> Experiment | None:
    row = c.execute("SELECT * FROM experiments WHERE name = ?", (name,)).fetchone()
    return None if row is None else _to_experiment(c, row)


def _check_name_free(c: Conn, name: str) -> None:
    if c.execute("SELECT 1 FROM experiments WHERE name = ?", (name,)).fetchone():
        raise AlreadyExists(f"Experiment(name={name}) already exists.")


def create(c: Conn, name: str, location: str | None, tags: list[Tag], default_root: str) -> str:
    _check_name_free(c, name)
    location = uris.resolve_if_local(location) if location else None
    now = now_ms()
    key = c.execute(
        "INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, "
        "last_update_time) VALUES (?, ?, ?, ?, ?) RETURNING experiment_id",
        (name, location or "", ACTIVE, now, now),
    ).fetchall()[0][0]
    if not location:
        location = uris.append_path(default_root, str(key))
        c.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (location, key)
        )
    c.executemany(
        "INSERT INTO experiment_tags VALUES (?, ?, ?) "
        "ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
        [(key, tag.key, tag.value) for tag in tags],
    )
    return str(key)


def search(c: Conn, query: Search) -> Page[Experiment]:
    entity = sql_query.EXPERIMENTS
    where, params = sql_query.where(query.clauses, entity)
    order, order_params = sql_query.order_by(query.order_by, entity)
    stages = query.view.stages
    rows = c.execute(
        f"SELECT e.* FROM experiments e WHERE e.lifecycle_stage IN ({sql_query.marks(stages)})"
        f"{where}{order} LIMIT ? OFFSET ?",
        [*stages, *params, *order_params, query.max_results + 1, query.offset],
    ).fetchall()
    return sql_query.page([_to_experiment(c, row) for row in rows], query.max_results, query.offset)


def rename(c: Conn, experiment_id: str, new_name: str) -> None:
    experiment = get(c, experiment_id)
    if experiment.lifecycle_stage != ACTIVE:
        raise InvalidValue("Cannot rename a non-active experiment.")
    if new_name != experiment.name:
        _check_name_free(c, new_name)
    c.execute(
        "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
        (new_name, now_ms(), int(experiment_id)),
    )


def delete(c: Conn, experiment_id: str) -> None:
    key = int(get(c, experiment_id, (ACTIVE,)).experiment_id)
    now = now_ms()
    c.execute(
        "UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?",
        (DELETED, now, key),
    )
    c.execute(
        "UPDATE runs SET lifecycle_stage = ?, deleted_time = ?, deleted_with_experiment = 1 "
        "WHERE experiment_id = ? AND lifecycle_stage = ?",
        (DELETED, now, key, ACTIVE),
    )


def restore(c: Conn, experiment_id: str) -> None:
    """Restore the experiment and the runs deleted with it (not those deleted before)."""
    key = int(get(c, experiment_id, (DELETED,)).experiment_id)
    c.execute(
        "UPDATE runs SET lifecycle_stage = ?, deleted_time = NULL, deleted_with_experiment = 0 "
        "WHERE experiment_id = ? AND deleted_with_experiment = 1",
        (ACTIVE, key),
    )
    c.execute(
        "UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?",
        (ACTIVE, now_ms(), key),
    )


def hard_delete(c: Conn, experiment_id: str) -> None:
    key = int(get(c, experiment_id, (DELETED,)).experiment_id)
    if c.execute("SELECT 1 FROM runs WHERE experiment_id = ? LIMIT 1", (key,)).fetchone():
        raise InvalidValue(f"Experiment {experiment_id} still holds runs")
    c.execute("DELETE FROM experiments WHERE experiment_id = ?", (key,))
