"""What both SQL stores check before using a database: that it is artgw's, and its version."""

import time
from typing import Any, Protocol

from tracking import uris
from tracking.errors import StoreError
from tracking.store import (
    ACTIVE,
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
)


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


def create(
    conn: Executes,
    schema_v1: tuple[str, ...],
    current: int,
    migrations: dict[int, tuple[str, ...]],
    default_artifact_root: str,
) -> None:
    """A new schema at `current`, with experiment 0 "Default" in it."""
    for statement in schema_v1:
        conn.execute(statement)
    for target in range(2, current + 1):
        for statement in migrations[target]:
            conn.execute(statement)
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (current,))
    now = int(time.time() * 1000)
    location = uris.append_path(default_artifact_root, DEFAULT_EXPERIMENT_ID)
    conn.execute(
        "INSERT INTO experiments VALUES (?, ?, ?, ?, ?, ?)",
        (int(DEFAULT_EXPERIMENT_ID), DEFAULT_EXPERIMENT_NAME, location, ACTIVE, now, now),
    )
