"""The one rule every imported row follows: a row whose key the target lacks is inserted; one
present with the same values (those compared) is skipped; one present with other values is a
conflict, the target's row kept. Rows whose parent the target lacks (or holds as a conflicting
other entity) are conflicts too, with why."""

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Column, Connection, Insert, Table, bindparam, insert, select

from tracking import sql_query
from tracking.importer.report import Tally
from tracking.importer.source import Batch, Row

CHUNK = 500
"""Values per `IN (...)` list."""
Key = tuple[Any, ...]


def chunks(items: list[Any], size: int = CHUNK) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@functools.cache
def insert_new(dialect: str, table: Table) -> Insert:
    """INSERT skipping rows whose key exists, whose driver count is of the rows added: on
    MySQL `INSERT IGNORE` (its ON DUPLICATE KEY UPDATE counts the rows found, as SQLAlchemy
    connects with CLIENT_FOUND_ROWS)."""
    if dialect in ("mysql", "mariadb"):
        return insert(table).prefix_with("IGNORE")
    return sql_query._insert_ignoring(dialect, table)


def present(c: Connection, column: Column[Any], values: Iterable[Any]) -> set[Any]:
    """Which of `values` the column holds."""
    statement = select(column).where(column.in_(bindparam("values", expanding=True)))
    wanted = sorted(set(values))
    return {found for part in chunks(wanted) for found in c.scalars(statement, {"values": part})}


def held(c: Connection, table: Table, keys: tuple[str, ...], rows: Batch) -> dict[Key, Any]:
    """The target's rows with the keys of `rows`, by key (looked up by the first key column)."""
    first = table.c[keys[0]]
    statement = select(table).where(first.in_(bindparam("values", expanding=True)))
    wanted = {tuple(row[k] for k in keys) for row in rows}
    found: dict[Key, Any] = {}
    for part in chunks(sorted({key[0] for key in wanted})):
        for row in c.execute(statement, {"values": part}):
            key = tuple(row._mapping[k] for k in keys)
            if key in wanted:
                found[key] = row._mapping
    return found


def with_parents(
    rows: Batch, tally: Tally, ok: Callable[[Row], bool], why: Callable[[Row], str]
) -> Batch:
    """The rows whose parent is there; the others counted as conflicts."""
    kept = []
    for row in rows:
        if ok(row):
            kept.append(row)
        else:
            tally.conflict(why(row))
    return kept


def merge(
    c: Connection,
    tally: Tally,
    table: Table,
    keys: tuple[str, ...],
    rows: Batch,
    compare: tuple[str, ...],
    name: Callable[[Row], str],
) -> list[Row]:
    """Insert the new rows, skip the equal ones, count the different ones (named by `name`)
    as conflicts; returns the conflicting rows."""
    found = held(c, table, keys, rows)
    new: dict[Key, Row] = {}
    conflicting = []
    for row in rows:
        key = tuple(row[k] for k in keys)
        there: Mapping[str, Any] | None = found.get(key) or new.get(key)
        if there is None:
            new[key] = row
        elif all(_same(there[column], row[column]) for column in compare):
            tally.skipped += 1
        else:
            tally.conflict(f"{name(row)} differs in the target")
            conflicting.append(row)
    columns = {column.name for column in table.c}
    if new:
        c.execute(
            insert(table), [{k: v for k, v in r.items() if k in columns} for r in new.values()]
        )
    tally.imported += len(new)
    return conflicting


def _same(there: Any, here: Any) -> bool:
    return there == here or (there in (None, "") and here in (None, ""))
