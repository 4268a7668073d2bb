"""Experiments and their tags, as Core statements run inside a store's transactions."""

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from tracking import sql_exec, sql_query, uris
from tracking.errors import AlreadyExists, InvalidValue, NotFound
from tracking.schema import experiment_tags, experiments, runs
from tracking.store import ACTIVE, DELETED, Experiment, Page, Search, Tag, now_ms

BY_ID = select(experiments).where(experiments.c.experiment_id == bindparam("key"))
PLACE = select(
    experiments.c.experiment_id, experiments.c.artifact_location, experiments.c.lifecycle_stage
).where(experiments.c.experiment_id == bindparam("key"))
BY_NAME = select(experiments).where(experiments.c.name == bindparam("name"))
TAGS = (
    select(experiment_tags.c.key, experiment_tags.c.value)
    .where(experiment_tags.c.experiment_id == bindparam("key"))
    .order_by(experiment_tags.c.key)
)


def key_of(experiment_id: str) -> int | None:
    text = str(experiment_id)
    return int(text) if text.isdigit() and len(text) < 19 else None


def get(c: Connection, experiment_id: str, stages: Iterable[str] = (ACTIVE, DELETED)) -> Experiment:
    row = sql_exec.first(c, BY_ID, {"key": key_of(experiment_id)})
    if row is None or row[3] not in stages:
        stage = "" if set(stages) == {ACTIVE, DELETED} else f"{next(iter(stages))} "
        raise NotFound(f"No {stage}Experiment with id={experiment_id} exists")
    return _to_experiment(c, row)


def active_location(c: Connection, experiment_id: str) -> tuple[int, str]:
    """The key and artifact location of an active experiment (what a new run needs)."""
    row = sql_exec.first(c, PLACE, {"key": key_of(experiment_id)})
    if row is None:
        raise NotFound(f"No Experiment with id={experiment_id} exists")
    key, location, stage = row
    require_active("experiment", experiment_id, stage)
    return key, location


def require_active(kind: str, ident: str, stage: str) -> None:
    """MLflow's refusal to change a deleted experiment or run (`kind`) or add to it."""
    if stage != ACTIVE:
        raise InvalidValue(
            f"The {kind} {ident} must be in the 'active' state. Current state is {stage}."
        )


def _to_experiment(c: Connection, row: Sequence[Any]) -> Experiment:
    """An experiment from a row of `select(experiments)` (its columns in the table's order)."""
    key, name, location, stage, created, updated = row
    tags = sql_exec.rows(c, TAGS, {"key": key})
    return Experiment(
        str(key), name, location, stage, created, updated, tuple(Tag(k, v) for k, v in tags)
    )


def by_name(c: Connection, name: str) -> Experiment | None:
    row = sql_exec.first(c, BY_NAME, {"name": name})
    return None if row is None else _to_experiment(c, row)


def _check_name_free(c: Connection, name: str) -> None:
    if sql_exec.first(c, BY_NAME, {"name": name}):
        raise AlreadyExists(f"Experiment(name={name}) already exists.")


def create(
    c: Connection, name: str, location: str | None, tags: list[Tag], default_root: str
) -> str:
    _check_name_free(c, name)
    location = uris.resolve_if_local(location) if location else None
    now = now_ms()
    added = c.execute(
        insert(experiments).values(
            name=name,
            artifact_location=location or "",
            lifecycle_stage=ACTIVE,
            creation_time=now,
            last_update_time=now,
        )
    )
    assert added.inserted_primary_key is not None
    key = added.inserted_primary_key[0]
    if not location:
        location = uris.append_path(default_root, str(key))
        c.execute(
            update(experiments)
            .where(experiments.c.experiment_id == key)
            .values(artifact_location=location)
        )
    rows = {tag.key: tag.value for tag in tags}
    if rows:
        statement = sql_query.upsert(c, experiment_tags, "value")
        c.execute(
            statement, [{"experiment_id": key, "key": k, "value": v} for k, v in rows.items()]
        )
    return str(key)


def search(c: Connection, query: Search) -> Page[Experiment]:
    entity = sql_query.EXPERIMENTS
    statement = (
        select(experiments)
        .where(
            experiments.c.lifecycle_stage.in_(query.view.stages),
            *sql_query.where(query.clauses, entity),
        )
        .order_by(*sql_query.order_by(query.order_by, entity))
        .limit(query.max_results + 1)
        .offset(query.offset)
    )
    found = [_to_experiment(c, row) for row in c.execute(statement)]
    return sql_query.page(found, query.max_results, query.offset)


def _set(c: Connection, key: int, **values: Any) -> None:
    c.execute(update(experiments).where(experiments.c.experiment_id == key).values(**values))


def rename(c: Connection, experiment_id: str, new_name: str) -> None:
    experiment = get(c, experiment_id)
    if experiment.lifecycle_stage != ACTIVE:
        raise InvalidValue("Cannot rename a non-active experiment.")
    if new_name != experiment.name:
        _check_name_free(c, new_name)
    _set(c, int(experiment_id), name=new_name, last_update_time=now_ms())


def delete_(c: Connection, experiment_id: str) -> None:
    """Move the experiment and its active runs to the deleted stage."""
    key = int(get(c, experiment_id, (ACTIVE,)).experiment_id)
    now = now_ms()
    _set(c, key, lifecycle_stage=DELETED, last_update_time=now)
    c.execute(
        update(runs)
        .where(runs.c.experiment_id == key, runs.c.lifecycle_stage == ACTIVE)
        .values(lifecycle_stage=DELETED, deleted_time=now, deleted_with_experiment=1)
    )


def restore(c: Connection, experiment_id: str) -> None:
    """Restore the experiment and the runs deleted with it (not those deleted before)."""
    key = int(get(c, experiment_id, (DELETED,)).experiment_id)
    c.execute(
        update(runs)
        .where(runs.c.experiment_id == key, runs.c.deleted_with_experiment == 1)
        .values(lifecycle_stage=ACTIVE, deleted_time=None, deleted_with_experiment=0)
    )
    _set(c, key, lifecycle_stage=ACTIVE, last_update_time=now_ms())


def hard_delete(c: Connection, experiment_id: str) -> None:
    key = int(get(c, experiment_id, (DELETED,)).experiment_id)
    if c.execute(select(runs.c.run_id).where(runs.c.experiment_id == key).limit(1)).first():
        raise InvalidValue(f"Experiment {experiment_id} still holds runs")
    c.execute(delete(experiments).where(experiments.c.experiment_id == key))


def _active(c: Connection, experiment_id: str) -> int:
    experiment = get(c, experiment_id)
    require_active("experiment", experiment_id, experiment.lifecycle_stage)
    return int(experiment.experiment_id)


def set_tag(c: Connection, experiment_id: str, tag: Tag) -> None:
    row = {"experiment_id": _active(c, experiment_id), "key": tag.key, "value": tag.value}
    c.execute(sql_query.upsert(c, experiment_tags, "value"), [row])


def delete_tag(c: Connection, experiment_id: str, key: str) -> None:
    t = experiment_tags.c
    found = c.execute(
        delete(experiment_tags).where(t.experiment_id == _active(c, experiment_id), t.key == key)
    )
    if found.rowcount == 0:
        raise NotFound(f"No tag with name: {key} in experiment with id {experiment_id}")
