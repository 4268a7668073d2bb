"""SQL of the model registry (tables in tracking/schema.py), run by the SQL store inside its
read and write transactions (tracking/db.py).

Version numbers: a new version takes `last_version + 1` of its model's row, raised in the same
UPDATE that locks the row, so concurrent creates queue on the row (SQLite: on the database) and
each gets the next number; the (model, version) primary key makes a duplicate impossible even
if an engine let two through (the write is then retried by tracking/db.py, and the retry reads
the new number).
"""

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    and_,
    delete,
    exists,
    func,
    insert,
    select,
    text,
    update,
)

from tracking.errors import AlreadyExists, InvalidValue, NotFound
from tracking.registry import (
    IS_PROMPT_TAG,
    STAGE_NONE,
    STAGES,
    Alias,
    ModelVersion,
    NewVersion,
    RegisteredModel,
    latest_per_stage,
)
from tracking.registry_search import RegistrySearch
from tracking.schema import (
    model_version_tags,
    model_versions,
    registered_model_aliases,
    registered_model_tags,
    registered_models,
)
from tracking.sql_query import COMPARE
from tracking.store import Clause, Page, Tag, now_ms

rm, rmt, mv, mvt, rma = (
    registered_models,
    registered_model_tags,
    model_versions,
    model_version_tags,
    registered_model_aliases,
)
CHUNK = 500


def model_not_found(name: str) -> NotFound:
    return NotFound(f"Registered Model with name={name} not found")


def version_not_found(name: str, version: int) -> NotFound:
    return NotFound(f"Model Version (name={name}, version={version}) not found")


# -- reading -----------------------------------------------------------------------------------


def model_key(c: Connection, name: str) -> int:
    key = c.execute(select(rm.c.model_key).where(rm.c.name == name)).scalar()
    if key is None:
        raise model_not_found(name)
    return int(key)


def _version_row(c: Connection, name: str, version: int) -> Row[Any]:
    row = c.execute(
        select(mv, rm.c.name)
        .join(rm, rm.c.model_key == mv.c.model_key)
        .where(rm.c.name == name, mv.c.version == version)
    ).first()
    if row is None:
        model_key(c, name)  # an unknown model says so
        raise version_not_found(name, version)
    return row


def _versions(c: Connection, rows: list[Row[Any]]) -> list[ModelVersion]:
    """Entities of model version rows (joined with the model's name), with tags and aliases."""
    if not rows:
        return []
    tags: dict[tuple[int, int], list[Tag]] = {}
    aliases: dict[tuple[int, int], list[str]] = {}
    for keys in _chunks(sorted({r.model_key for r in rows})):
        for t in c.execute(select(mvt).where(mvt.c.model_key.in_(keys)).order_by(mvt.c.key)):
            tags.setdefault((t.model_key, t.version), []).append(Tag(t.key, t.value))
        for a in c.execute(select(rma).where(rma.c.model_key.in_(keys)).order_by(rma.c.alias)):
            aliases.setdefault((a.model_key, a.version), []).append(a.alias)
    return [
        _version(
            r,
            tags=tuple(tags.get((r.model_key, r.version), ())),
            aliases=tuple(aliases.get((r.model_key, r.version), ())),
        )
        for r in rows
    ]


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _models(c: Connection, rows: list[Row[Any]]) -> list[RegisteredModel]:
    if not rows:
        return []
    keys = [r.model_key for r in rows]
    tags: dict[int, list[Tag]] = {}
    aliases: dict[int, list[Alias]] = {}
    versions: dict[int, list[Row[Any]]] = {}
    for chunk in _chunks(keys):
        for t in c.execute(select(rmt).where(rmt.c.model_key.in_(chunk)).order_by(rmt.c.key)):
            tags.setdefault(t.model_key, []).append(Tag(t.key, t.value))
        for a in c.execute(select(rma).where(rma.c.model_key.in_(chunk)).order_by(rma.c.alias)):
            aliases.setdefault(a.model_key, []).append(Alias(a.alias, int(a.version)))
        for v in _latest_rows(c, chunk):
            versions.setdefault(v.model_key, []).append(v)
    return [
        RegisteredModel(
            name=r.name,
            creation_timestamp=int(r.creation_time),
            last_updated_timestamp=int(r.last_updated_time),
            description=r.description,
            latest_versions=latest_per_stage([_version(v) for v in versions.get(r.model_key, [])]),
            tags=tuple(tags.get(r.model_key, ())),
            aliases=tuple(aliases.get(r.model_key, ())),
        )
        for r in rows
    ]


def _latest_rows(c: Connection, keys: list[int]) -> list[Row[Any]]:
    """The highest version of each stage of these models."""
    top = (
        select(mv.c.model_key, mv.c.current_stage, func.max(mv.c.version).label("version"))
        .where(mv.c.model_key.in_(keys))
        .group_by(mv.c.model_key, mv.c.current_stage)
        .subquery()
    )
    query = (
        select(mv, rm.c.name)
        .join(top, and_(mv.c.model_key == top.c.model_key, mv.c.version == top.c.version))
        .join(rm, rm.c.model_key == mv.c.model_key)
    )
    return list(c.execute(query))


def _version(
    row: Row[Any], tags: tuple[Tag, ...] = (), aliases: tuple[str, ...] = ()
) -> ModelVersion:
    """A version row (joined with the model's name) as an entity; without tags and aliases as
    `latest_versions` lists it (MLflow leaves them out there)."""
    return ModelVersion(
        name=row.name,
        version=int(row.version),
        creation_timestamp=int(row.creation_time),
        last_updated_timestamp=int(row.last_updated_time),
        source=row.source,
        storage_location=row.storage_location,
        current_stage=row.current_stage,
        description=row.description,
        run_id=row.run_id,
        run_link=row.run_link,
        model_id=row.model_id,
        tags=tags,
        aliases=aliases,
    )


def get_model(c: Connection, name: str) -> RegisteredModel:
    row = c.execute(select(rm).where(rm.c.name == name)).first()
    if row is None:
        raise model_not_found(name)
    return _models(c, [row])[0]


def get_version(c: Connection, name: str, version: int) -> ModelVersion:
    return _versions(c, [_version_row(c, name, version)])[0]


def latest_versions(c: Connection, name: str, stages: list[str]) -> list[ModelVersion]:
    key = model_key(c, name)
    wanted = set(stages or STAGES)
    rows = [r for r in _latest_rows(c, [key]) if r.current_stage in wanted]
    rows.sort(key=lambda r: STAGES.index(r.current_stage))
    return _versions(c, rows)


def version_by_alias(c: Connection, name: str, alias: str) -> ModelVersion:
    key = model_key(c, name)
    if alias.lower() == "latest":
        top = c.execute(select(func.max(mv.c.version)).where(mv.c.model_key == key)).scalar()
        if top is None:
            raise NotFound(f"Latest version not found for model {name}.")
        return get_version(c, name, int(top))
    version = c.execute(
        select(rma.c.version).where(rma.c.model_key == key, rma.c.alias == alias)
    ).scalar()
    if version is None:
        raise InvalidValue(f"Registered model alias {alias} not found.")
    return get_version(c, name, int(version))


# -- searching ---------------------------------------------------------------------------------

_MODEL_COLUMNS = {
    "name": rm.c.name,
    "creation_timestamp": rm.c.creation_time,
    "last_updated_timestamp": rm.c.last_updated_time,
}
_VERSION_COLUMNS = {
    "name": rm.c.name,
    "version": mv.c.version,
    "run_id": mv.c.run_id,
    "source": mv.c.source,
    "creation_timestamp": mv.c.creation_time,
    "last_updated_timestamp": mv.c.last_updated_time,
}


_OPERATORS: dict[str, Callable[[ColumnElement[Any], Any], Any]] = {
    **COMPARE,
    "IN": lambda column, value: column.in_(list(value)),
    "NOT IN": lambda column, value: column.not_in(list(value)),
}
"""The search parser's operators (tracking/registry_search.py); ILIKE as lower() LIKE lower(),
which every engine has."""


def _compare(column: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    compared: ColumnElement[bool] = _OPERATORS[op](column, value)
    return compared


def _condition(
    clause: Clause, columns: dict[str, Any], tag_match: Callable[[Clause], ColumnElement[bool]]
) -> ColumnElement[bool]:
    if clause.kind == "attribute":
        return _compare(columns[clause.key], clause.op, clause.value)
    return tag_match(clause)


def _prompt_models() -> Any:
    return select(rmt.c.model_key).where(rmt.c.key == IS_PROMPT_TAG, rmt.c.value == "true")


def _conditions(
    search: RegistrySearch,
    columns: dict[str, Any],
    tags: Any,
    owner: list[ColumnElement[bool]],
    model_key: Any,
) -> list[ColumnElement[bool]]:
    """The WHERE conditions of a registry search: its clauses (a tag clause matches a row of
    `tags` whose owner is the searched row), and no prompts unless it asked for them."""

    def tag_match(clause: Clause) -> ColumnElement[bool]:
        value = _compare(tags.c.value, clause.op, clause.value)
        return exists().where(*owner, tags.c.key == clause.key, value)

    conditions = [_condition(cl, columns, tag_match) for cl in search.clauses]
    if search.exclude_prompts:
        conditions.append(model_key.not_in(_prompt_models()))
    return conditions


def search_models(c: Connection, search: RegistrySearch) -> Page[RegisteredModel]:
    owner = [rmt.c.model_key == rm.c.model_key]
    conditions = _conditions(search, _MODEL_COLUMNS, rmt, owner, rm.c.model_key)
    query = select(rm).where(*conditions)
    query = _ordered(query, search, _MODEL_COLUMNS)
    rows = list(c.execute(query.limit(search.max_results + 1).offset(search.offset)))
    return _page(_models(c, rows), search)


def search_versions(c: Connection, search: RegistrySearch) -> Page[ModelVersion]:
    owner = [mvt.c.model_key == mv.c.model_key, mvt.c.version == mv.c.version]
    conditions = _conditions(search, _VERSION_COLUMNS, mvt, owner, mv.c.model_key)
    query = select(mv, rm.c.name).join(rm, rm.c.model_key == mv.c.model_key).where(*conditions)
    query = _ordered(query, search, _VERSION_COLUMNS)
    rows = list(c.execute(query.limit(search.max_results + 1).offset(search.offset)))
    return _page(_versions(c, rows), search)


def _ordered(query: Select[Any], search: RegistrySearch, columns: dict[str, Any]) -> Select[Any]:
    terms = [
        columns[o.key].asc() if o.ascending else columns[o.key].desc() for o in search.order_by
    ]
    return query.order_by(*terms)


def _page(items: list[Any], search: RegistrySearch) -> Page[Any]:
    if len(items) > search.max_results:
        return Page(items[: search.max_results], search.offset + search.max_results)
    return Page(items)


# -- writing -----------------------------------------------------------------------------------


def create_model(
    c: Connection, name: str, tags: list[Tag], description: str | None
) -> RegisteredModel:
    now = now_ms()
    if c.execute(select(rm.c.model_key).where(rm.c.name == name)).first() is not None:
        raise AlreadyExists(f"Registered Model (name={name}) already exists.")
    inserted = c.execute(
        insert(rm).values(
            name=name,
            description=description,
            creation_time=now,
            last_updated_time=now,
            last_version=0,
        )
    ).inserted_primary_key
    if inserted is None:  # pragma: no cover - every engine reports it
        raise AssertionError("the database did not report the new model's key")
    key = inserted[0]
    if tags:
        c.execute(insert(rmt), [{"model_key": key, "key": t.key, "value": t.value} for t in tags])
    return get_model(c, name)


def rename_model(c: Connection, name: str, new_name: str) -> RegisteredModel:
    key = model_key(c, name)
    if new_name != name:
        if c.execute(select(rm.c.model_key).where(rm.c.name == new_name)).first() is not None:
            raise AlreadyExists(f"Registered Model (name={new_name}) already exists.")
        now = now_ms()
        c.execute(
            update(rm).where(rm.c.model_key == key).values(name=new_name, last_updated_time=now)
        )
        c.execute(update(mv).where(mv.c.model_key == key).values(last_updated_time=now))
    return get_model(c, new_name)


def update_model(c: Connection, name: str, description: str | None) -> RegisteredModel:
    key = model_key(c, name)
    c.execute(
        update(rm)
        .where(rm.c.model_key == key)
        .values(description=description, last_updated_time=now_ms())
    )
    return get_model(c, name)


def delete_model(c: Connection, name: str) -> None:
    key = model_key(c, name)
    for table in (rma, mvt, mv, rmt):
        c.execute(delete(table).where(table.c.model_key == key))
    c.execute(delete(rm).where(rm.c.model_key == key))


def set_model_tag(c: Connection, name: str, tag: Tag) -> None:
    key = model_key(c, name)
    c.execute(delete(rmt).where(rmt.c.model_key == key, rmt.c.key == tag.key))
    c.execute(insert(rmt).values(model_key=key, key=tag.key, value=tag.value))


def delete_model_tag(c: Connection, name: str, key_name: str) -> None:
    key = model_key(c, name)
    c.execute(delete(rmt).where(rmt.c.model_key == key, rmt.c.key == key_name))


def set_alias(c: Connection, name: str, alias: str, version: int) -> None:
    row = _version_row(c, name, version)
    c.execute(delete(rma).where(rma.c.model_key == row.model_key, rma.c.alias == alias))
    c.execute(insert(rma).values(model_key=row.model_key, alias=alias, version=version))


def delete_alias(c: Connection, name: str, alias: str) -> None:
    key = model_key(c, name)
    c.execute(delete(rma).where(rma.c.model_key == key, rma.c.alias == alias))


def create_version(c: Connection, new: NewVersion) -> ModelVersion:
    name, tags = new.name, new.tags
    now = now_ms()
    _queue_on_row_locks(c)
    # The UPDATE takes the model row's lock before the number is read: creates queue here.
    bumped = c.execute(
        update(rm)
        .where(rm.c.name == name)
        .values(last_version=rm.c.last_version + 1, last_updated_time=now)
    )
    if bumped.rowcount != 1:
        raise model_not_found(name)
    key, version = c.execute(
        select(rm.c.model_key, rm.c.last_version).where(rm.c.name == name)
    ).one()
    given = {field: getattr(new, field) for field in _GIVEN}
    c.execute(
        insert(mv).values(
            model_key=key,
            version=version,
            creation_time=now,
            last_updated_time=now,
            current_stage=STAGE_NONE,
            **given,
        )
    )
    if tags:
        c.execute(
            insert(mvt),
            [{"model_key": key, "version": version, "key": t.key, "value": t.value} for t in tags],
        )
    return ModelVersion(  # as stored: a new version has no alias yet
        name=name,
        version=int(version),
        creation_timestamp=now,
        last_updated_timestamp=now,
        tags=tuple(sorted(tags, key=lambda t: t.key)),
        **given,
    )


_GIVEN = ("source", "storage_location", "description", "run_id", "run_link", "model_id")
"""The fields of a `NewVersion` stored as given (same names in the table and the entity)."""


def _queue_on_row_locks(c: Connection) -> None:
    """Let concurrent creates of one model wait for each other instead of failing.

    PostgreSQL's SERIALIZABLE writes would refuse all but one of them ("could not serialize
    access due to concurrent update") and the store's retries would run out under load; in READ
    COMMITTED the UPDATE below waits for the row and then raises the committed number, which is
    all this transaction reads. (MySQL/MariaDB lock the row the same way in SERIALIZABLE; SQLite
    runs one writer at a time.) Must be the transaction's first statement."""
    if c.dialect.name == "postgresql":
        c.execute(text("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"))


def update_version(c: Connection, name: str, version: int, description: str | None) -> ModelVersion:
    row = _version_row(c, name, version)
    c.execute(
        update(mv)
        .where(mv.c.model_key == row.model_key, mv.c.version == version)
        .values(description=description, last_updated_time=now_ms())
    )
    return get_version(c, name, version)


def transition(
    c: Connection, name: str, version: int, stage: str, archive_existing: bool
) -> ModelVersion:
    row = _version_row(c, name, version)
    now = now_ms()
    if archive_existing:
        c.execute(
            update(mv)
            .where(
                mv.c.model_key == row.model_key,
                mv.c.version != version,
                mv.c.current_stage == stage,
            )
            .values(current_stage="Archived", last_updated_time=now)
        )
    c.execute(
        update(mv)
        .where(mv.c.model_key == row.model_key, mv.c.version == version)
        .values(current_stage=stage, last_updated_time=now)
    )
    c.execute(update(rm).where(rm.c.model_key == row.model_key).values(last_updated_time=now))
    return get_version(c, name, version)


def delete_version(c: Connection, name: str, version: int) -> None:
    row = _version_row(c, name, version)
    where = and_(rma.c.model_key == row.model_key, rma.c.version == version)
    c.execute(delete(rma).where(where))
    c.execute(delete(mvt).where(mvt.c.model_key == row.model_key, mvt.c.version == version))
    c.execute(delete(mv).where(mv.c.model_key == row.model_key, mv.c.version == version))
    c.execute(update(rm).where(rm.c.model_key == row.model_key).values(last_updated_time=now_ms()))


def set_version_tag(c: Connection, name: str, version: int, tag: Tag) -> None:
    row = _version_row(c, name, version)
    match = (mvt.c.model_key == row.model_key, mvt.c.version == version, mvt.c.key == tag.key)
    c.execute(delete(mvt).where(*match))
    c.execute(
        insert(mvt).values(model_key=row.model_key, version=version, key=tag.key, value=tag.value)
    )


def delete_version_tag(c: Connection, name: str, version: int, key_name: str) -> None:
    row = _version_row(c, name, version)
    c.execute(
        delete(mvt).where(
            mvt.c.model_key == row.model_key, mvt.c.version == version, mvt.c.key == key_name
        )
    )


def versions_of_runs(c: Connection, run_ids: list[str]) -> set[str]:
    """Which of these runs a registered version still points at (gc keeps their artifacts)."""
    found: set[str] = set()
    for chunk in _chunks(run_ids):
        found.update(
            r[0] for r in c.execute(select(mv.c.run_id).where(mv.c.run_id.in_(chunk)).distinct())
        )
    return found
