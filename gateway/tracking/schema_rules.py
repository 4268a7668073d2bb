"""What both SQL stores check before using a database: that it is artgw's, and its version."""

from typing import Any, Protocol

from gateway.tracking.store import StoreError


class Executes(Protocol):
    def execute(self, sql: str, params: tuple[Any, ...] = ..., /) -> Any: ...


def refuse_foreign(tables: set[str], where: str) -> None:
    """A database without artgw's schema may only be empty: never adopt someone else's tables."""
    if "alembic_version" in tables:
        raise StoreError(
            f"{where} is a database of MLflow's own server, not of artgw; "
            "give artgw a database of its own with --backend-store-uri"
        )
    if tables:
        raise StoreError(f"{where} holds tables that are not artgw's; refusing to use it")


def upgrade(
    conn: Executes, where: str, current: int, migrations: dict[int, tuple[str, ...]]
) -> None:
    """Bring an artgw schema to `current`, refusing one written by a newer artgw."""
    version = conn.execute("SELECT version FROM schema_version").fetchone()[0]
    if version > current:
        raise StoreError(
            f"{where} has schema version {version}, newer than this artgw ({current}); "
            "upgrade artgw"
        )
    for target in range(version + 1, current + 1):
        for statement in migrations[target]:
            conn.execute(statement)
    if version < current:
        conn.execute("UPDATE schema_version SET version = ?", (current,))
