"""Fixtures of the tracking tests: the app with tracking on, served in-process on loopback."""

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import GatewayFactory

API = "/api/2.0/mlflow"


@pytest.fixture
async def tracking(make_gateway: GatewayFactory, tmp_path: Path) -> TestClient:
    """The gateway with tracking in a fresh SQLite file."""
    return await make_gateway(
        artifacts_only=False, backend_store_uri=f"sqlite:///{tmp_path}/tracking.db"
    )


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
