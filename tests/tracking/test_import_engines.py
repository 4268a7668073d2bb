"""`artgw import` into every engine artgw's store runs on (SQLite, PostgreSQL, MariaDB): counts
from the driver, a second import adding nothing, and experiments created afterwards getting
new ids (PostgreSQL's identity sequence moved past the imported ones)."""

import asyncio
from pathlib import Path

import pytest

from tests.tracking.conftest import StoreTarget
from tests.tracking.import_sources import file_store_uri, write_store
from tracking.importer.run import run_import
from tracking.sql_store import SqlStore

pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    # an AF_UNIX socket collected unclosed on MariaDB: only the fixture's root connection
    # (compose/mariadb.py's admin) uses the server's socket; artgw connects over TCP
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]


@pytest.fixture(scope="module")
def mlruns(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source") / "mlruns"
    write_store(file_store_uri(path))
    return path


async def _new_experiment_after(uri: str) -> str:
    store = SqlStore(uri, "mlflow-artifacts:/", create=False)
    await store.open()
    try:
        return await store.create_experiment("after-import", None, [])
    finally:
        await store.close()


def test_import_into_each_engine(mlruns: Path, store_target: StoreTarget) -> None:
    def once() -> dict[str, tuple[int, int, int]]:
        report = asyncio.run(
            run_import(str(mlruns), store_target.uri, dry_run=False, progress=lambda _l: None)
        )
        return {e: (t.imported, t.skipped, t.conflicting) for e, t in report.tallies.items()}

    first = once()
    assert first["runs"] == (4, 0, 0) and first["metrics"] == (42, 0, 0)
    assert first["params"] == (3, 0, 0) and first["experiments"] == (3, 0, 0)
    again = once()
    assert again["metrics"] == (0, 42, 0) and again["runs"] == (0, 4, 0)
    made = asyncio.run(_new_experiment_after(store_target.uri))
    imported_ids = [p.name for p in mlruns.iterdir() if p.name.isdigit()]
    assert made not in imported_ids and int(made) > max(int(i) for i in imported_ids)
