"""Search clauses and orderings compiled into WHERE and ORDER BY text with parameters.

The SQL is the subset SQLite and PostgreSQL share, with `?` placeholders (the PostgreSQL store
turns them into its driver's). Only fixed column names and the parser's fixed operators are pasted
into SQL; every value and every metric/param/tag key is a bound parameter.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from tracking.store import Clause, Order, Page

T = TypeVar("T")


class Row(Protocol):
    """A result row read by column name or position, and unpacked like a tuple."""

    def __getitem__(self, key: str | int) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """What the SQL modules use of a connection: sqlite3's, or the PostgreSQL store's adapter."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> Any: ...


OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">=", "LIKE", "ILIKE"})


@dataclass(frozen=True, slots=True)
class Entity:
    """How a searchable table and its key/value children are named in SQL."""

    owner: str  # the owning row's key, e.g. "r.run_id"
    columns: dict[str, str]
    children: dict[str, tuple[str, str]]  # kind -> (table, foreign key column)
    default_order: str


RUNS = Entity(
    owner="r.run_id",
    columns={
        "run_id": "r.run_id",
        "run_name": "r.name",
        "status": "r.status",
        "user_id": "r.user_id",
        "artifact_uri": "r.artifact_uri",
        "start_time": "r.start_time",
        "end_time": "r.end_time",
    },
    children={
        "metric": ("latest_metrics", "run_id"),
        "param": ("params", "run_id"),
        "tag": ("tags", "run_id"),
    },
    default_order="r.start_time DESC, r.run_id",
)
EXPERIMENTS = Entity(
    owner="e.experiment_id",
    columns={
        "experiment_id": "CAST(e.experiment_id AS TEXT)",
        "name": "e.name",
        "creation_time": "e.creation_time",
        "last_update_time": "e.last_update_time",
    },
    children={"tag": ("experiment_tags", "experiment_id")},
    default_order="e.creation_time DESC, e.experiment_id",
)


def _compare(column: str, op: str) -> str:
    if op not in OPERATORS:
        raise ValueError(f"operator {op!r} is not supported")
    if op == "ILIKE":
        return f"lower({column}) LIKE lower(?)"
    return f"{column} {op} ?"


def condition(clause: Clause, entity: Entity) -> tuple[str, list[object]]:
    if clause.kind == "attribute":
        column = entity.columns[clause.key]
        if clause.op == "IN":
            values = list(clause.value)  # type: ignore[arg-type]
            return f"{column} IN ({', '.join('?' * len(values))})", values
        return _compare(column, clause.op), [clause.value]
    table, key_column = entity.children[clause.kind]
    nan = " AND x.is_nan = 0" if clause.kind == "metric" else ""
    sql = (
        f"EXISTS (SELECT 1 FROM {table} x WHERE x.{key_column} = {entity.owner} "
        f"AND x.key = ?{nan} AND {_compare('x.value', clause.op)})"
    )
    return sql, [clause.key, clause.value]


def where(clauses: tuple[Clause, ...], entity: Entity) -> tuple[str, list[object]]:
    """` AND ...` for every clause (empty when there are none)."""
    parts, params = [], []
    for clause in clauses:
        sql, values = condition(clause, entity)
        parts.append(sql)
        params.extend(values)
    return "".join(f" AND {part}" for part in parts), params


def order_by(orders: tuple[Order, ...], entity: Entity) -> tuple[str, list[object]]:
    terms, params = [], []
    for order in orders:
        direction = "ASC" if order.ascending else "DESC"
        if order.kind == "attribute":
            expression = entity.columns[order.key]
        else:
            table, key_column = entity.children[order.kind]
            expression = (
                f"(SELECT x.value FROM {table} x "
                f"WHERE x.{key_column} = {entity.owner} AND x.key = ?)"
            )
            params.append(order.key)
        terms.append(f"{expression} {direction} NULLS LAST")
    terms.append(entity.default_order)
    return " ORDER BY " + ", ".join(terms), params


def marks(values: Iterable[object]) -> str:
    """`?, ?, ?` for an `IN (...)` list of these values; `NULL` (matching nothing) for none,
    as PostgreSQL refuses an empty `IN ()`."""
    return ", ".join("?" for _ in values) or "NULL"


def page(items: list[T], max_results: int, offset: int) -> Page[T]:
    """`items` were fetched with one row more than asked: that row tells whether more follow."""
    if len(items) > max_results:
        return Page(items[:max_results], offset + max_results)
    return Page(items)
