"""Search clauses and orderings as SQLAlchemy Core expressions, and the SQL helpers the stores
share: upserts in each engine's dialect, and pages fetched one row long.

Only the parser's fixed operators choose SQL; every value and every metric/param/tag key is a
bound parameter.
"""

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Insert,
    String,
    Table,
    case,
    cast,
    exists,
    func,
    select,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite

from tracking import schema
from tracking.store import Clause, Order, Page

T = TypeVar("T")
Compare = Callable[[Any, Any], ColumnElement[bool]]
COMPARE: dict[str, Compare] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "LIKE": lambda column, value: column.like(value),
    "ILIKE": lambda column, value: func.lower(column).like(func.lower(value)),
}


@dataclass(frozen=True, slots=True)
class Entity:
    """A searchable table: its attributes, and its key/value children."""

    owner: Column[Any]  # the owning row's key, e.g. runs.run_id
    columns: dict[str, ColumnElement[Any]]
    children: dict[str, Table]  # kind -> table whose first column refers to `owner`
    default_order: tuple[ColumnElement[Any], ...]


_runs, _experiments = schema.runs.c, schema.experiments.c
RUNS = Entity(
    owner=_runs.run_id,
    columns={
        "run_id": _runs.run_id,
        "run_name": _runs.name,
        "status": _runs.status,
        "user_id": _runs.user_id,
        "artifact_uri": _runs.artifact_uri,
        "start_time": _runs.start_time,
        "end_time": _runs.end_time,
    },
    children={"metric": schema.latest_metrics, "param": schema.params, "tag": schema.tags},
    default_order=(_runs.start_time.desc(), _runs.run_id),
)
EXPERIMENTS = Entity(
    owner=_experiments.experiment_id,
    columns={
        "experiment_id": cast(_experiments.experiment_id, String),
        "name": _experiments.name,
        "creation_time": _experiments.creation_time,
        "last_update_time": _experiments.last_update_time,
    },
    children={"tag": schema.experiment_tags},
    default_order=(_experiments.creation_time.desc(), _experiments.experiment_id),
)


def _compare(column: Any, op: str, value: object) -> ColumnElement[bool]:
    if op not in COMPARE:
        raise ValueError(f"operator {op!r} is not supported")
    return COMPARE[op](column, value)


def _child(entity: Entity, kind: str) -> tuple[Any, ColumnElement[bool]]:
    """The child table of `kind` (aliased) and its join to the owning row."""
    child = entity.children[kind].alias("x")
    return child, child.c[entity.owner.name] == entity.owner


def condition(clause: Clause, entity: Entity) -> ColumnElement[bool]:
    if clause.kind == "attribute":
        column = entity.columns[clause.key]
        if clause.op == "IN":
            return column.in_(list(clause.value))  # type: ignore[arg-type]
        return _compare(column, clause.op, clause.value)
    child, joined = _child(entity, clause.kind)
    found = [joined, child.c.key == clause.key, _compare(child.c.value, clause.op, clause.value)]
    if clause.kind == "metric":
        found.append(child.c.is_nan == 0)
    return exists().where(*found)


def where(clauses: tuple[Clause, ...], entity: Entity) -> list[ColumnElement[bool]]:
    return [condition(clause, entity) for clause in clauses]


def order_by(orders: tuple[Order, ...], entity: Entity) -> list[ColumnElement[Any]]:
    """The orderings, NULLs last either way (as MLflow), then the entity's default order."""
    terms: list[ColumnElement[Any]] = []
    for order in orders:
        if order.kind == "attribute":
            expression: Any = entity.columns[order.key]
        else:
            child, joined = _child(entity, order.kind)
            key = child.c.key == order.key
            expression = select(child.c.value).where(joined, key).scalar_subquery()
        terms.append(case((expression.is_(None), 1), else_=0))
        terms.append(expression.asc() if order.ascending else expression.desc())
    return [*terms, *entity.default_order]


def page(items: list[T], max_results: int, offset: int) -> Page[T]:
    """`items` were fetched with one row more than asked: that row tells whether more follow."""
    if len(items) > max_results:
        return Page(items[:max_results], offset + max_results)
    return Page(items)


# -- inserts that meet existing rows -----------------------------------------------------------


def insert_ignoring(c: Connection, table: Table) -> Insert:
    """INSERT that skips rows whose primary key exists already."""
    return _insert_ignoring(c.dialect.name, table)


def upsert(c: Connection, table: Table, *columns: str) -> Insert:
    """INSERT that sets `columns` to the new values where the primary key exists already."""
    return _upsert(c.dialect.name, table, columns)


@functools.cache
def _insert_ignoring(dialect: str, table: Table) -> Insert:
    if dialect in ("mysql", "mariadb"):
        first = table.primary_key.columns[0]
        return mysql.insert(table).on_duplicate_key_update({first.name: first})
    return _conflict_insert(dialect, table).on_conflict_do_nothing()


@functools.cache
def _upsert(dialect: str, table: Table, columns: tuple[str, ...]) -> Insert:
    if dialect in ("mysql", "mariadb"):
        statement = mysql.insert(table)
        return statement.on_duplicate_key_update({c: statement.inserted[c] for c in columns})
    insert = _conflict_insert(dialect, table)
    return insert.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={column: insert.excluded[column] for column in columns},
    )


def _conflict_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The INSERT of the engines that spell it ON CONFLICT (SQLite's and PostgreSQL's)."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
