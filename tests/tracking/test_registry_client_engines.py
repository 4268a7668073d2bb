"""The real mlflow client's registration and `models:/name@alias` load (tests/e2e/
test_registry_client.py) on PostgreSQL and MariaDB; the rest of the registry runs on every
engine in test_registry_rest.py, and on SQLite with the client in the e2e test."""

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.artgw_process import ArtgwProcess
from tests.e2e.test_client_flow import use_server  # noqa: F401 (a fixture)
from tests.e2e.test_registry_client import check_split, pytestmark  # noqa: F401


def test_register_and_load_by_alias(
    artgw: Callable[..., ArtgwProcess],
    tmp_path: Path,
    store_uri: str,
    use_server: Callable[[str], None],  # noqa: F811
) -> None:
    if store_uri.startswith("sqlite"):
        pytest.skip("SQLite: tests/e2e/test_registry_client.py")
    server = artgw("--backend-store-uri", store_uri, cwd=tmp_path / "server")
    use_server(server.url)
    uris = check_split(tmp_path)
    assert all(uri.startswith("mlflow-artifacts:/0/") for uri in uris)
