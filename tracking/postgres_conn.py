"""PostgreSQL connections for the tracking store: URIs (with their passwords kept out of every
message), connecting with psycopg 3, and an adapter that runs the shared `?`-placeholder SQL of
sql_experiments.py and sql_runs.py with rows read by name or position, as sqlite3.Row allows.
"""

import contextlib
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tracking.errors import StoreError

SCHEMES = ("postgresql", "postgres")
CONNECT_TIMEOUT = 10
INSTALL_HINT = "The PostgreSQL tracking store needs psycopg: pip install 'artgw[postgres]'"


def is_postgres_uri(uri: str) -> bool:
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    return scheme.partition("+")[0] in SCHEMES


def conninfo(uri: str) -> str:
    """The libpq URI for a --backend-store-uri: SQLAlchemy's `postgresql+driver://` (as given to
    MLflow) loses its driver part; the rest (user, password, host, port, db, ?options) is kept."""
    scheme, _, rest = uri.partition("://")
    if scheme.partition("+")[0].lower() not in SCHEMES:
        raise StoreError(f"Not a PostgreSQL URI: {redact(uri)}")
    return f"postgresql://{rest}"


def redact(uri: str) -> str:
    """The URI with its password (in the user part or in ?password=) replaced by ***."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<an unparsable PostgreSQL URI>"
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        if ":" in user:
            user = user.partition(":")[0] + ":***"
        netloc = f"{user}@{host}"
    query = urlencode(
        [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)], safe="*"
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def secrets_of(uri: str) -> list[str]:
    """The password(s) a URI holds, to scrub from driver messages."""
    try:
        parts = urlsplit(uri)
        found = [parts.password] + [v for k, v in parse_qsl(parts.query) if k == "password"]
    except ValueError:
        return []
    return [secret for secret in found if secret]


def scrub(message: str, uri: str) -> str:
    for secret in secrets_of(uri):
        message = message.replace(secret, "***")
    return message


@functools.lru_cache(maxsize=512)
def placeholders(sql: str) -> str:
    """`?` -> psycopg's `%s` (a literal `%` doubled). The shared SQL has no `?` in literals."""
    return sql.replace("%", "%%").replace("?", "%s")


class Record(tuple):
    """A row readable as `row["column"]`, `row[0]`, or unpacked."""

    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            key = self._index[key]
        return tuple.__getitem__(self, key)


def records(cursor: Any) -> Callable[[Sequence[Any]], Record]:
    """psycopg row factory making `Record`s."""
    index = {column.name: i for i, column in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> Record:
        record = Record(values)
        record._index = index
        return record

    return make


class PgConn:
    """The `sql_query.Conn` the shared SQL modules expect, over one psycopg connection in
    autocommit mode (the store issues BEGIN/COMMIT itself)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Any:
        return self.raw.execute(placeholders(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> None:
        batch = list(rows)
        if batch:
            with self.raw.cursor() as cursor:
                cursor.executemany(placeholders(sql), batch)

    @property
    def usable(self) -> bool:
        return not (self.raw.closed or self.raw.broken)

    def rollback(self) -> None:
        """End the transaction, if any, without masking the error that interrupted it."""
        if self.usable:
            with contextlib.suppress(driver().Error):
                self.raw.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()


def connect(uri: str) -> PgConn:
    """A new connection (blocking: call it off the event loop). Failures become a StoreError
    naming the redacted URI."""
    psycopg = driver()
    try:
        raw = psycopg.connect(
            conninfo(uri),
            autocommit=True,
            row_factory=records,
            connect_timeout=CONNECT_TIMEOUT,
            application_name="artgw",
        )
    except psycopg.Error as exc:
        detail = re.sub(r"\s+", " ", scrub(str(exc), uri)).strip()
        raise StoreError(
            f"Cannot connect to the tracking database {redact(uri)}: {detail}"
        ) from None
    return PgConn(raw)


def driver() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError(INSTALL_HINT) from exc
    return psycopg
