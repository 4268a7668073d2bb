"""What a `--backend-store-uri` names: the engine, the database, and how to show it.

Every form MLflow's server accepts is accepted: `sqlite:///rel.db`, `sqlite:////abs.db`,
SQLAlchemy's `sqlite://///abs.db`, `sqlite+pysqlite:...`, `postgresql[+driver]://...`,
`postgres://...`, `mysql[+driver]://...` and `mariadb[+driver]://...` (any driver name: artgw
uses psycopg 3 and PyMySQL), plus a plain path or `file:` URI (a directory gets mlflow.db).
Passwords never appear in a message: `where` is the URI with them replaced by ***.
"""

import os
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from tracking.errors import StoreError

DEFAULT_FILE = "mlflow.db"
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
ENGINES = {
    "sqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "file": "file",
}
UNSUPPORTED = (
    "Unsupported --backend-store-uri {scheme}://...: use sqlite:///path.db, a path, "
    "postgresql://user:password@host:port/database or mysql://user:password@host:port/database"
)


@dataclass(frozen=True, slots=True)
class StoreUri:
    engine: str  # "sqlite", "postgresql" or "mysql"
    uri: str
    where: str

    def path(self) -> str:
        """The SQLite file (absolute). Looks at the filesystem: call it off the event loop."""
        return sqlite_path(self.uri)


def parse(uri: str) -> StoreUri:
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    engine = ENGINES.get(scheme.partition("+")[0], "") if scheme else "sqlite"
    if not engine:
        raise StoreError(UNSUPPORTED.format(scheme=scheme))
    if engine in ("sqlite", "file"):
        _check_not_memory(uri)
        return StoreUri("sqlite", uri, uri)
    return StoreUri(engine, uri, redact(uri))


def _check_not_memory(uri: str) -> None:
    if uri.lower().startswith("sqlite") and _sqlite_database(uri) in ("", ":memory:"):
        raise StoreError("An in-memory SQLite store cannot be shared; give a file path")


def _sqlite_database(uri: str) -> str:
    """The database part of a sqlite URL, as SQLAlchemy reads it (after `sqlite:///`)."""
    rest = uri.partition("://")[2].partition("?")[0]
    return unquote(rest[1:] if rest.startswith("/") else rest)


def sqlite_path(uri: str) -> str:
    """The absolute file a SQLite URI, `file:` URI or plain path names."""
    if uri.lower().startswith("sqlite"):
        database = _sqlite_database(uri)
        return _absolute(database)
    if uri.lower().startswith("file:"):
        uri = unquote(urlsplit(uri).path)
    if os.path.isfile(uri) or uri.endswith(SQLITE_SUFFIXES):
        return _absolute(uri)
    return os.path.join(_absolute(uri), DEFAULT_FILE)


def _absolute(path: str) -> str:
    """Absolute, with `//x` read as `/x` (POSIX keeps two leading slashes; SQLite URIs cannot)."""
    if path.startswith("/"):
        path = "/" + path.lstrip("/")
    return os.path.abspath(path)


def redact(uri: str) -> str:
    """The URI with its password (in the user part or in ?password=) replaced by ***."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "<an unparsable database URI>"
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
        message = message.replace(unquote(secret), "***")
    return message
