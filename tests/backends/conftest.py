"""The backend under test: one fixture parametrised over every store the conformance suite covers.

Cloud stores add themselves to STORES with a factory that starts their emulator (session-scoped).
"""

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from backends import Backend, open_destination

StoreFactory = Callable[[pytest.FixtureRequest, Path], str]


def local_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "dest")


def memory_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"memory://artgw-tests/{uuid.uuid4().hex}"


STORES: dict[str, StoreFactory] = {"local": local_url, "memory": memory_url}


@pytest.fixture(params=sorted(STORES))
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
