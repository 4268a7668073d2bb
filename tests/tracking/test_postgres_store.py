"""What only the PostgreSQL store has: URIs, passwords kept out of every message, concurrent
writers in separate transactions, lost connections."""

import asyncio
import secrets
from collections.abc import Callable, Iterator

import pytest
import requests

from compose.pg import PostgresCluster
from tests.artgw_process import ArtgwProcess
from tracking.engines import conninfo
from tracking.errors import AlreadyExists, InvalidValue, StoreError, Unavailable
from tracking.open import store_from_uri
from tracking.sql_store import SqlStore
from tracking.store import NewRun, Param, TrackingStore
from tracking.store_uri import redact

API = "/api/2.0/mlflow"


@pytest.fixture
def store_uri(postgres: PostgresCluster) -> Iterator[str]:
    """A new empty database (PostgreSQL only, unlike conftest's store_uri)."""
    name = f"t_{secrets.token_hex(6)}"
    yield postgres.create_database(name)
    postgres.drop_database(name)


async def opened(uri: str) -> TrackingStore:
    store = store_from_uri(uri, "mlflow-artifacts:/")
    await store.open()
    return store


@pytest.mark.parametrize(
    ("uri", "libpq"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql://u:p@h:5432/db"),
        ("postgres://u@h/db", "postgresql://u@h/db"),
        ("postgresql+psycopg2://u:p@h/db?sslmode=disable", "postgresql://u:p@h/db?sslmode=disable"),
        ("POSTGRESQL+psycopg://h/db", "postgresql://h/db"),
    ],
)
def test_uris_mlflow_accepts_are_accepted(uri: str, libpq: str) -> None:
    assert conninfo(uri) == libpq
    store = store_from_uri(uri, "mlflow-artifacts:/")
    assert isinstance(store, SqlStore) and store.target.engine == "postgresql"


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql://u:s3cret@h:5/db", "postgresql://u:***@h:5/db"),
        ("postgresql://u@h/db?password=s3cret&x=1", "postgresql://u@h/db?password=***&x=1"),
        ("postgresql://h/db", "postgresql://h/db"),
    ],
)
def test_passwords_are_redacted(uri: str, shown: str) -> None:
    assert redact(uri) == shown


async def test_a_wrong_password_is_reported_without_any_password(postgres: PostgresCluster) -> None:
    bad = postgres.uri().replace(postgres.password, "Wr0ngPassw0rd")
    store = store_from_uri(bad, "mlflow-artifacts:/")
    with pytest.raises(StoreError) as error:
        await store.open()
    await store.close()
    assert "password authentication failed" in str(error.value)
    assert "Wr0ngPassw0rd" not in str(error.value) and "artgw:***@" in str(error.value)


async def test_an_unknown_database_is_named_redacted(postgres: PostgresCluster) -> None:
    store = store_from_uri(postgres.uri("absent_db"), "mlflow-artifacts:/")
    with pytest.raises(StoreError, match='database "absent_db" does not exist') as error:
        await store.open()
    await store.close()
    assert postgres.password not in str(error.value)


async def test_concurrent_creates_of_one_name_leave_one_experiment(store_uri: str) -> None:
    """Separate stores (as separate processes), one transaction each: exactly one wins."""
    stores = [await opened(store_uri) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(store.create_experiment("same", None, []) for store in stores for _ in range(4)),
            return_exceptions=True,
        )
        assert len([r for r in results if isinstance(r, str)]) == 1, results
        assert all(isinstance(r, AlreadyExists) for r in results if not isinstance(r, str))
    finally:
        for store in stores:
            await store.close()


async def test_concurrent_params_of_one_key_keep_the_first_value(store_uri: str) -> None:
    stores = [await opened(store_uri) for _ in range(3)]
    try:
        run = await stores[0].create_run(NewRun("0", "u", 1))
        run_id = run.info.run_id
        results = await asyncio.gather(
            *(
                store.log_batch(run_id, [], [Param("p", f"{i}-{j}")], [])
                for i, store in enumerate(stores)
                for j in range(4)
            ),
            return_exceptions=True,
        )
        winners = [r for r in results if r is None]
        assert len(winners) == 1 and all(isinstance(r, InvalidValue) for r in results if r)
        (param,) = (await stores[1].get_run(run_id)).params
        assert param.key == "p"
    finally:
        for store in stores:
            await store.close()


async def test_a_lost_connection_is_replaced(postgres: PostgresCluster, store_uri: str) -> None:
    store = await opened(store_uri)
    try:
        await asyncio.gather(*(store.get_experiment("0") for _ in range(8)))
        killed = postgres.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'artgw'"
        )
        assert killed
        results = await asyncio.gather(
            *(store.create_experiment(f"e{i}", None, []) for i in range(8))
        )
        assert len(set(results)) == 8  # ids never repeat (retried creations may skip some)
        found = await asyncio.gather(*(store.get_experiment(i) for i in results))
        assert sorted(e.name for e in found) == [f"e{i}" for i in range(8)]
    finally:
        await store.close()


async def test_an_unreachable_database_is_a_503(postgres: PostgresCluster, store_uri: str) -> None:
    store = await opened(store_uri)
    database = store_uri.rpartition("/")[2]
    try:
        postgres.admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        postgres.admin(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
        )
        with pytest.raises(Unavailable) as error:
            await store.get_experiment("0")
        assert postgres.password not in error.value.message
    finally:
        postgres.admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        await store.close()


def test_the_server_never_logs_the_password(
    artgw: Callable[..., ArtgwProcess], postgres: PostgresCluster, store_uri: str
) -> None:
    server = artgw("--backend-store-uri", store_uri, "--log-level", "debug", "--workers", "2")
    body = {"name": "e", "tags": [{"key": "k", "value": "v"}]}
    assert requests.post(f"{server.url}{API}/experiments/create", json=body, timeout=30).ok
    refused = requests.get(f"{server.url}{API}/runs/get?run_id=nope", timeout=30)
    assert refused.status_code == 404
    server.stop()
    log = server.log()
    assert "[DEBUG] POST /api/2.0/mlflow/experiments/create" in log
    assert postgres.password not in log

    bad = store_uri.replace(postgres.password, "An0therSecret")
    with pytest.raises(RuntimeError) as error:
        artgw("--backend-store-uri", bad, "--port", str(server.port))
    assert "password authentication failed" in str(error.value)
    assert "An0therSecret" not in str(error.value)
