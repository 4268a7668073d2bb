"""Core statements of the busy paths, run on the driver's own cursor.

SQLAlchemy's execution machinery (an execution context, a cursor result, parameter processing
per row) costs several times what SQLite itself takes for a primary-key lookup or a 100-row
insert, and the REST calls of a training loop are made of such statements. So the statements
of those paths, Core expressions like every other, are compiled once per engine, and run here
on the DBAPI connection inside the SQLAlchemy transaction the `Database` began: same
transaction, same connection, raw tuples back. Driver errors are turned into SQLAlchemy's
(`DBAPIError`, a lost connection invalidated), so `Database` retries and translates them as it
does everything else.

Only statements whose parameters are plain bound values qualify (no expanding `IN` lists) and
whose types need no conversion (text, integers, floats: all of tracking/schema.py's).
"""

import functools
import operator
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import ClauseElement, Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler

Params = dict[str, Any]
Picker = Callable[[Params], Any]


def rows(c: Connection, statement: ClauseElement, params: Params) -> list[tuple[Any, ...]]:
    """Every row of a query."""
    sql, pick = compiled(c.dialect, statement)
    with _cursor(c, sql) as cursor:
        cursor.execute(sql, pick(params))
        found: list[tuple[Any, ...]] = cursor.fetchall()
        return found


def first(c: Connection, statement: ClauseElement, params: Params) -> tuple[Any, ...] | None:
    """The first row of a query, or None."""
    sql, pick = compiled(c.dialect, statement)
    with _cursor(c, sql) as cursor:
        cursor.execute(sql, pick(params))
        row: tuple[Any, ...] | None = cursor.fetchone()
        return row


def run(c: Connection, statement: ClauseElement, params: Params) -> int:
    """Run a change; the number of rows it touched."""
    sql, pick = compiled(c.dialect, statement)
    with _cursor(c, sql) as cursor:
        cursor.execute(sql, pick(params))
        return int(cursor.rowcount)


def many(c: Connection, statement: ClauseElement, rows_: Sequence[Params]) -> int:
    """Run a change once per row, in one executemany of the driver; the rows it touched (the
    driver's sum: an insert that ignores existing rows counts those it added)."""
    if not rows_:
        return 0
    sql, pick = compiled(c.dialect, statement)
    with _cursor(c, sql) as cursor:
        cursor.executemany(sql, [pick(row) for row in rows_])
        return int(cursor.rowcount)


def text(c: Connection, sql: str) -> None:
    """A statement of SQL text without parameters (SQLite's `BEGIN IMMEDIATE`)."""
    with _cursor(c, sql) as cursor:
        cursor.execute(sql)


@functools.lru_cache(maxsize=1024)
def compiled(dialect: Dialect, statement: ClauseElement) -> tuple[str, Picker]:
    """The statement's SQL in the driver's parameter style, and what turns a dict of named
    values into the parameters the driver takes (a tuple in order, or the dict itself).

    Bounded: statements built per shape of a search come through here too."""
    done = statement.compile(dialect=dialect)
    assert isinstance(done, SQLCompiler)
    if done.literal_execute_params or done.post_compile_params:
        raise TypeError(f"needs SQLAlchemy's own execution (expanding parameters): {done}")
    if any(bind.value is not None for bind in done.binds.values()):
        raise TypeError(f"bind every value by name (a literal is bound anonymously): {done}")
    names = done.positiontup
    if names is None:
        return str(done), lambda params: params
    get = operator.itemgetter(*names)
    return str(done), get if len(names) > 1 else lambda params: (get(params),)


@contextmanager
def _cursor(c: Connection, sql: str) -> Iterator[Any]:
    """A cursor of the connection's DBAPI connection, its errors made SQLAlchemy's."""
    raw = c.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        yield cursor
    except c.dialect.loaded_dbapi.Error as exc:
        lost = c.dialect.is_disconnect(exc, raw, cursor)
        if lost:
            c.invalidate(exc)
        raise DBAPIError.instance(
            sql, None, exc, c.dialect.loaded_dbapi.Error, connection_invalidated=lost
        ) from exc
    finally:
        with suppress(c.dialect.loaded_dbapi.Error):
            cursor.close()
