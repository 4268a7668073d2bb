"""The backend under test: one fixture parametrised over every store the conformance suite covers.

Cloud stores get a fresh bucket (with a key prefix) on their emulator, started once per session.
"""

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from backends import Backend, open_destination
from tests.stores import cloud_destination

StoreFactory = Callable[[pytest.FixtureRequest, Path], str]


def local_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "dest")


def memory_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"memory://artgw-tests/{uuid.uuid4().hex}"


def cloud_url(kind: str) -> StoreFactory:
    def factory(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict]:
        _, url, options = cloud_destination(request, kind)
        return url, options

    return factory


STORES: dict[str, StoreFactory] = {
    "local": local_url,
    "memory": memory_url,
    "s3": cloud_url("s3"),
    "azure": cloud_url("azure"),
    "gcs": cloud_url("gcs"),
}
CLOUD = {"s3", "azure", "gcs"}


def _param(name: str) -> object:
    return pytest.param(name, marks=pytest.mark.cloud) if name in CLOUD else name


@pytest.fixture(params=[_param(name) for name in sorted(STORES)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    url, options = _resolve(STORES[request.param](request, tmp_path))
    store = open_destination(url, options)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


def _resolve(spec: str | tuple[str, dict]) -> tuple[str, dict]:
    return spec if isinstance(spec, tuple) else (spec, {})
