"""Shared fixtures: the gateway served on real loopback HTTP, in-process or as the real CLI."""

import os

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from blockbuster import blockbuster_ctx

from gateway.app import make_app
from gateway.settings import Settings
from tests.artgw_process import ArtgwProcess

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"

GatewayFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture(autouse=True)
def no_blocking_calls(request: pytest.FixtureRequest):
    """Fail any test in which gateway or backend code makes a blocking call on the event loop."""
    if "make_gateway" not in request.fixturenames:
        yield
        return
    with blockbuster_ctx(["gateway", "backends"]):
        yield


@pytest.fixture
def destination(tmp_path: Path) -> Path:
    path = tmp_path / "mlartifacts"
    path.mkdir()
    return path


@pytest.fixture
async def make_gateway(aiohttp_client, destination: Path) -> GatewayFactory:
    """Build the app with `make_app` and serve it on a loopback port; returns a client for it."""

    async def factory(**changes: object) -> TestClient:
        settings = Settings(artifacts_destination=str(destination), artifacts_only=True)
        return await aiohttp_client(make_app(settings.replace(**changes)))

    return factory


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> AsyncIterator[TestClient]:
    yield await make_gateway()


@pytest.fixture
def artgw(tmp_path: Path):
    """Start real `artgw serve` processes: artgw("--artifacts-only", ...) -> ArtgwProcess."""
    started: list[ArtgwProcess] = []

    def start(*args: str, cwd: Path | None = None, **kwargs: object) -> ArtgwProcess:
        process = ArtgwProcess(*args, cwd=cwd or tmp_path, **kwargs)  # type: ignore[arg-type]
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
