"""Shared fixtures: the gateway served on real loopback HTTP, in-process or as the real CLI."""

import contextlib
import os
import sys

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient
from blockbuster import blockbuster_ctx

# make_app imports gateway.tracking (and SQLAlchemy) lazily; `artgw serve` calls it before its
# event loop runs, the fixtures below inside one, with the blocking-call detector on: import it now
import gateway.tracking
from gateway.app import make_app
from gateway.settings import Settings
from tests.artgw_process import ArtgwProcess
from tests.emulators import AzuriteServer, GcsServer, S3Server, ServerBase
from tests.stores import CloudView, LocalView, StoreView, cloud_destination

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"

GatewayFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture(autouse=True)
def no_blocking_calls(request: pytest.FixtureRequest):
    """Fail any test that runs the app (every in-process app comes from `make_gateway`) in which
    gateway, tracking or backend code makes a blocking call on the event loop."""
    if "make_gateway" not in request.fixturenames:
        yield
        return
    with blockbuster_ctx(["gateway", "backends", "tracking"]):
        yield


CLIENT_VARIABLES = (
    "MLFLOW_EXPERIMENT_ID",
    "MLFLOW_EXPERIMENT_NAME",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
)
CLIENT_URI_STATE = (
    ("mlflow.tracking._tracking_service.utils", "_tracking_uri"),
    ("mlflow.tracking._model_registry.utils", "_registry_uri"),
)
"""Where the mlflow client keeps the URIs `set_tracking_uri` / `set_registry_uri` set: they win
over MLFLOW_TRACKING_URI, so one left behind sends the next test's client to another store."""


@pytest.fixture(scope="session")
def mlflow_client_baseline() -> tuple[dict[str, str | None], dict[tuple[str, str], object]]:
    """The client's state before any test (or a module's fixtures) touched it."""
    kept = {name: os.environ.get(name) for name in CLIENT_VARIABLES}
    uris = {(module, name): _module_value(module, name) for module, name in CLIENT_URI_STATE}
    return kept, uris


@pytest.fixture(autouse=True)
def fresh_mlflow_client_state(
    mlflow_client_baseline: tuple[dict[str, str | None], dict[tuple[str, str], object]],
) -> Iterator[None]:
    """The mlflow client keeps its active experiment (and run) and its tracking and registry
    URIs in module state and in environment variables (set_experiment and set_tracking_uri set
    them); what one test (or a module's fixture) set against its own server must not reach the
    next test: each test ends with the state the session began with."""
    kept, uris = mlflow_client_baseline
    yield
    for name, value in kept.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    for (module, name), value in uris.items():
        if module in sys.modules:
            setattr(sys.modules[module], name, value)
    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is None:
        return
    with contextlib.suppress(Exception):
        fluent.end_run()  # type: ignore[attr-defined]
    fluent._active_experiment_id = None  # type: ignore[attr-defined]


def _module_value(module: str, name: str) -> object:
    loaded = sys.modules.get(module)
    return getattr(loaded, name, None) if loaded is not None else None


@pytest.fixture
def destination(tmp_path: Path) -> Path:
    path = tmp_path / "mlartifacts"
    path.mkdir()
    return path


# -- object-store emulators: started once per session, on first use ------------------------------


def _serve(server: ServerBase) -> Iterator[ServerBase]:
    with server:
        yield server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[ServerBase]:
    yield from _serve(S3Server())


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[ServerBase]:
    yield from _serve(AzuriteServer())


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[ServerBase]:
    yield from _serve(GcsServer())


@pytest.fixture
def store_kind() -> str:
    """The store the gateway tests run on; modules that cover every store parametrise this."""
    return "local"


@pytest.fixture
async def store(
    request: pytest.FixtureRequest, store_kind: str, destination: Path
) -> AsyncIterator[StoreView]:
    """The destination the gateway serves (a fresh bucket for clouds), seen directly."""
    if store_kind == "local":
        yield LocalView(destination)
        return
    _, url, options = cloud_destination(request, store_kind)
    view = CloudView(url, options)
    try:
        yield view
    finally:
        await view.close()


@pytest.fixture
async def make_gateway(aiohttp_client, store: StoreView) -> GatewayFactory:
    """Build the app with `make_app` and serve it on a loopback port; returns a client for it."""

    async def factory(**changes: object) -> TestClient:
        settings = Settings(
            artifacts_destination=store.url,
            storage_options=dict(store.options),
            artifacts_only=True,
        )
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
