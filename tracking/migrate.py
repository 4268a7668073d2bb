"""Bringing a database to tracking/schema.py at start-up, once, whichever process gets there
first.

Every process (workers, replicas, `artgw gc`) calls `prepare` as it opens the store; it holds a
lock for the whole check-and-change: PostgreSQL's transaction-scoped advisory lock, MySQL's
GET_LOCK, and on SQLite the IMMEDIATE transaction itself. A database is then one of:
- artgw's, with Alembic's version table (`artgw_revision`): upgraded to the head revision;
- artgw 0.1's (`schema_version` 1, no Alembic table): stamped with the baseline revision 0001,
  which is its schema, then upgraded;
- empty: created from the metadata with experiment 0 "Default", and stamped at the head;
- anything else (MLflow's own, someone else's): refused, never adopted.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path

from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, func, insert, inspect, select, text, update

from tracking import schema, uris
from tracking.errors import StoreError
from tracking.store import ACTIVE, DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, now_ms

VERSION_TABLE = "artgw_revision"
BASELINE = "0001"
LEGACY_VERSION = 1
"""artgw 0.1's schema_version, the schema of revision 0001."""
GUARD_VERSION = 2
"""schema_version from revision 0001 on: artgw 0.1 refuses the database as newer."""
PG_LOCK = 0x61727467770001
MYSQL_LOCK = "artgw-schema"
MYSQL_LOCK_WAIT = 300
MIGRATIONS = Path(__file__).parent / "migrations"


def scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def head() -> str:
    return scripts().get_current_head() or BASELINE


@contextlib.contextmanager
def schema_lock(conn: Connection) -> Iterator[None]:
    """Hold the engine's schema lock (the caller's transaction is open: on SQLite, IMMEDIATE)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK})
        yield
        return
    if conn.dialect.name not in ("mysql", "mariadb"):
        yield
        return
    wait = {"name": MYSQL_LOCK, "wait": MYSQL_LOCK_WAIT}
    if conn.execute(text("SELECT GET_LOCK(:name, :wait)"), wait).scalar() != 1:
        raise StoreError(
            f"Timed out waiting for another artgw to prepare the schema ({MYSQL_LOCK})"
        )
    try:
        yield
    finally:
        conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": MYSQL_LOCK})


def prepare(conn: Connection, where: str, default_root: str, *, create: bool) -> None:
    """Create, adopt or upgrade the schema (see the module docstring), under the lock; `where`
    names the database in messages."""
    with schema_lock(conn):
        tables = set(inspect(conn).get_table_names())
        if VERSION_TABLE in tables:
            upgrade(conn, where)
        elif schema.schema_version.name in tables:
            adopt(conn, where)
            upgrade(conn, where)
        elif create:
            refuse_foreign(tables, where)
            create_schema(conn, default_root)
        else:
            refuse_foreign(tables, where)
            raise StoreError(f"No tracking database at {where}: it holds no artgw schema")


def refuse_foreign(tables: set[str], where: str) -> None:
    """A database without artgw's schema may only be empty: never adopt someone else's tables."""
    if "alembic_version" in tables:
        raise StoreError(
            f"{where} is a database of MLflow's own server, not of artgw; "
            "give artgw a database of its own with --backend-store-uri"
        )
    if tables - {"sqlite_sequence"}:
        raise StoreError(f"{where} holds tables that are not artgw's; refusing to use it")


def _context(conn: Connection) -> MigrationContext:
    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})


def create_schema(conn: Connection, default_root: str) -> None:
    """A new schema at the head revision, with experiment 0 "Default" in it."""
    schema.metadata.create_all(conn)
    conn.execute(insert(schema.schema_version).values(version=GUARD_VERSION))
    _context(conn).stamp(scripts(), "head")
    now = now_ms()
    location = uris.append_path(default_root, DEFAULT_EXPERIMENT_ID)
    conn.execute(
        insert(schema.experiments).values(
            experiment_id=int(DEFAULT_EXPERIMENT_ID),
            name=DEFAULT_EXPERIMENT_NAME,
            artifact_location=location,
            lifecycle_stage=ACTIVE,
            creation_time=now,
            last_update_time=now,
        )
    )


def adopt(conn: Connection, where: str) -> None:
    """Stamp a database of artgw 0.1 with the baseline revision, its schema."""
    version = conn.execute(select(func.max(schema.schema_version.c.version))).scalar()
    if version != LEGACY_VERSION:
        raise StoreError(
            f"{where} has schema version {version}, newer than this artgw; upgrade artgw"
        )
    conn.execute(update(schema.schema_version).values(version=GUARD_VERSION))
    _context(conn).stamp(scripts(), BASELINE)


def upgrade(conn: Connection, where: str) -> None:
    """Run the revisions from the database's to the head, refusing one this artgw lacks."""
    script = scripts()
    context = MigrationContext.configure(
        conn,
        opts={
            "version_table": VERSION_TABLE,
            "fn": lambda current, _context: script._upgrade_revs("head", current),
        },
    )
    current = context.get_current_heads()
    try:
        for revision in current:
            script.get_revision(revision)
    except CommandError:
        raise StoreError(
            f"{where} has schema revision {', '.join(current)}, newer than this artgw "
            f"(its newest is {head()}); upgrade artgw"
        ) from None
    with Operations.context(context):
        context.run_migrations()
