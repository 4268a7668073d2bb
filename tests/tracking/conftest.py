"""Fixtures of the tracking tests: every store test runs on SQLite, PostgreSQL and MariaDB.

PostgreSQL and MariaDB are throwaway servers the suite starts itself, once per session
(compose/pg.py, compose/mariadb.py: Debian's servers; PostgreSQL as its own user when the suite
runs as root); each test gets a new empty database in one. `store_target` names the store a test
uses and gives it raw SQL on that database.
"""

import contextlib
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from compose.mariadb import MariaDBServer
from compose.pg import PostgresCluster
from tests.conftest import GatewayFactory

API = "/api/2.0/mlflow"
ENGINES = ("sqlite", "postgres", "mariadb")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDBServer]:
    with MariaDBServer() as server:
        yield server


@dataclass
class StoreTarget:
    """Where one test's store lives: its --backend-store-uri, and raw SQL for the test itself."""

    engine: str
    uri: str
    execute: Callable[[str], None]
    write_lock: Callable[[], contextlib.AbstractContextManager[None]]


@pytest.fixture(params=ENGINES)
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreTarget]:
    if request.param == "sqlite":
        path = tmp_path / "tracking.db"
        yield StoreTarget(
            "sqlite", f"sqlite:///{path}", _sqlite_execute(path), lambda: _sqlite_lock(path)
        )
        return
    name = f"t_{secrets.token_hex(6)}"
    if request.param == "mariadb":
        yield from _mariadb_target(request.getfixturevalue("mariadb"), name)
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    uri = cluster.create_database(name)

    def execute(sql: str) -> None:
        cluster.admin(sql, database=name)

    yield StoreTarget("postgres", uri, execute, lambda: _postgres_lock(cluster, name))
    cluster.drop_database(name)


def _mariadb_target(server: MariaDBServer, name: str) -> Iterator[StoreTarget]:
    uri = server.create_database(name)

    def execute(sql: str) -> None:
        server.admin(sql, database=name)

    yield StoreTarget("mariadb", uri, execute, lambda: _mariadb_lock(server, name))
    server.drop_database(name)


@pytest.fixture
def store_uri(store_target: StoreTarget) -> str:
    return store_target.uri


def _sqlite_execute(path: Path) -> Callable[[str], None]:
    def execute(sql: str) -> None:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute(sql)

    return execute


@contextlib.contextmanager
def _sqlite_lock(path: Path) -> Iterator[None]:
    """Another process's write transaction: SQLite's write lock held."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@contextlib.contextmanager
def _postgres_lock(cluster: PostgresCluster, database: str) -> Iterator[None]:
    """Another session holding a lock that blocks inserts into experiments (not reads)."""
    import psycopg

    conn = psycopg.connect(
        host=str(cluster.socket_dir), port=cluster.port, user="postgres", dbname=database
    )
    conn.execute("LOCK TABLE experiments IN EXCLUSIVE MODE")
    try:
        yield
    finally:
        conn.close()  # ends the transaction


@contextlib.contextmanager
def _mariadb_lock(server: MariaDBServer, database: str) -> Iterator[None]:
    """Another session's write transaction holding the gap above every experiment id: inserts
    into experiments wait, plain (snapshot) reads do not."""
    import pymysql

    conn = pymysql.connect(unix_socket=str(server.socket), user="root", database=database)
    with conn.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SELECT * FROM experiments WHERE experiment_id >= 0 FOR UPDATE")
    try:
        yield
    finally:
        conn.rollback()
        conn.close()


@pytest.fixture
async def tracking(make_gateway: GatewayFactory, store_uri: str) -> TestClient:
    """The gateway with tracking in a fresh store, on each engine."""
    return await make_gateway(artifacts_only=False, backend_store_uri=store_uri)


async def call(client: TestClient, method: str, endpoint: str, body: object = None) -> tuple:
    """(status, JSON body) of one tracking call; GET bodies go in the query string."""
    kwargs: dict = {}
    if isinstance(body, bytes):
        kwargs["data"] = body
    elif method == "GET" and body is not None:
        kwargs["params"] = body
    elif body is not None:
        kwargs["json"] = body
    async with client.request(method, f"{API}/{endpoint}", **kwargs) as response:
        return response.status, await response.json()
