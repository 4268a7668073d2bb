"""Search clauses and orderings as SQLAlchemy Core expressions, and the SQL helpers the stores
share: upserts in each engine's dialect, and pages fetched one row long.

Only the parser's fixed operators choose SQL; every value and every metric/param/tag key is a
bound parameter. `shape_of` takes those values out of a search, so that the statement of one
shape (tracking/sql_runs.py) is built and compiled once and serves every search of that shape.
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
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
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
    return _condition(entity, clause.kind, clause.key, clause.op, clause.value)


def _condition(entity: Entity, kind: str, key: Any, op: str, value: Any) -> ColumnElement[bool]:
    """`key` (of a child) and `value`: the clause's own, or bound parameters standing for them."""
    if kind == "attribute":
        column = entity.columns[key]
        if op == "IN":
            return column.in_(list(value))
        return _compare(column, op, value)
    child, joined = _child(entity, kind)
    found = [joined, child.c.key == key, _compare(child.c.value, op, value)]
    if kind == "metric":
        found.append(child.c.is_nan == literal_column("0"))
    return exists().where(*found)


def where(clauses: tuple[Clause, ...], entity: Entity) -> list[ColumnElement[bool]]:
    return [condition(clause, entity) for clause in clauses]


def order_by(orders: tuple[Order, ...], entity: Entity) -> list[ColumnElement[Any]]:
    """The orderings, NULLs last either way (as MLflow), then the entity's default order."""
    terms = [_order(entity, o.kind, o.key, o.ascending) for o in orders]
    return [term for pair in terms for term in pair] + list(entity.default_order)


def _order(entity: Entity, kind: str, key: Any, ascending: bool) -> tuple[Any, Any]:
    """NULLs last, then the value (`key` of a child: its own, or a bound parameter)."""
    if kind == "attribute":
        expression: Any = entity.columns[key]
    else:
        child, joined = _child(entity, kind)
        expression = select(child.c.value).where(joined, child.c.key == key).scalar_subquery()
    nulls_last = case((expression.is_(None), literal_column("1")), else_=literal_column("0"))
    return nulls_last, expression.asc() if ascending else expression.desc()


# -- searches by shape: one statement per shape, its values bound ---------------------------

ClauseShape = tuple[str, str, str, int]
"""(kind, attribute name or '' for a child's key, operator, length of an IN list or 0)."""
OrderShape = tuple[str, str, bool]
Shape = tuple[tuple[ClauseShape, ...], tuple[OrderShape, ...]]


def shape_of(
    clauses: tuple[Clause, ...], orders: tuple[Order, ...]
) -> tuple[Shape, dict[str, Any]]:
    """A search's filter and ordering without their values (what its statement depends on),
    and the values, named as `bound_where` and `bound_order_by` bind them."""
    values: dict[str, Any] = {}
    clause_shapes = []
    for i, clause in enumerate(clauses):
        attribute = clause.key if clause.kind == "attribute" else ""
        if not attribute:
            values[f"k{i}"] = clause.key
        items = clause.value if isinstance(clause.value, tuple) else ()
        if clause.op == "IN":
            values.update({f"v{i}_{j}": item for j, item in enumerate(items)})
        else:
            values[f"v{i}"] = clause.value
        clause_shapes.append((clause.kind, attribute, clause.op, len(items)))
    order_shapes = []
    for i, order in enumerate(orders):
        attribute = order.key if order.kind == "attribute" else ""
        if not attribute:
            values[f"o{i}"] = order.key
        order_shapes.append((order.kind, attribute, order.ascending))
    return (tuple(clause_shapes), tuple(order_shapes)), values


def bound_where(shapes: tuple[ClauseShape, ...], entity: Entity) -> list[ColumnElement[bool]]:
    found = []
    for i, (kind, attribute, op, length) in enumerate(shapes):
        key: Any = attribute or bindparam(f"k{i}")
        value: Any = bindparam(f"v{i}")
        if op == "IN":
            value = [bindparam(f"v{i}_{j}") for j in range(length)]
        found.append(_condition(entity, kind, key, op, value))
    return found


def bound_order_by(shapes: tuple[OrderShape, ...], entity: Entity) -> list[ColumnElement[Any]]:
    terms = [
        _order(entity, kind, attribute or bindparam(f"o{i}"), ascending)
        for i, (kind, attribute, ascending) in enumerate(shapes)
    ]
    return [term for pair in terms for term in pair] + list(entity.default_order)


def bound_list(name: str, count: int) -> list[Any]:
    """`count` bound parameters name0, name1, ...: an IN list one statement per length serves
    (an expanding IN needs SQLAlchemy's own, slower, execution)."""
    return [bindparam(f"{name}{i}") for i in range(count)]


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
