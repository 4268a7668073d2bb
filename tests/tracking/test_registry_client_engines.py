"""The registry round trip of tests/e2e/test_registry_client.py with the real mlflow client, on
PostgreSQL and MariaDB (SQLite is the e2e test's own store)."""

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.artgw_process import ArtgwProcess
from tests.e2e.test_client_flow import use_server  # noqa: F401 (a fixture)
from tests.e2e.test_registry_client import check_registry, pytestmark  # noqa: F401


def test_registry_round_trip(
    artgw: Callable[..., ArtgwProcess],
    tmp_path: Path,
    store_uri: str,
    use_server: Callable[[str], None],  # noqa: F811
) -> None:
    if store_uri.startswith("sqlite"):
        pytest.skip("SQLite: tests/e2e/test_registry_client.py")
    server = artgw("--backend-store-uri", store_uri, cwd=tmp_path / "server")
    use_server(server.url)
    uris = check_registry(tmp_path)
    assert all(uri.startswith("mlflow-artifacts:/0/") for uri in uris)
