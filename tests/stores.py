"""Destinations for tests that run on every store: a fresh bucket per test, and a direct view of it.

`StoreView` reads and writes a destination without the gateway (to seed files and check what
the gateway left), on a local folder or through the store's own async fsspec filesystem.
"""

import asyncio
import posixpath
from pathlib import Path
from typing import Any

import fsspec
import pytest

from tests.emulators import ServerBase, aclose_filesystem, unique_bucket_name

CLOUD_SERVERS = {"s3": "s3_server", "azure": "azurite_server", "gcs": "gcs_server"}
SCHEMES = {"s3": "s3", "azure": "az", "gcs": "gs"}
PREFIX = "some/prefix"
"""Cloud destinations are a key prefix inside their bucket, as in production."""

ALL_STORES = ["local", *(pytest.param(kind, marks=pytest.mark.cloud) for kind in CLOUD_SERVERS)]


def cloud_destination(
    request: pytest.FixtureRequest, kind: str, prefix: str = PREFIX
) -> tuple[ServerBase, str, dict[str, Any]]:
    """A new bucket on the kind's emulator (started once per session): (server, url, options)."""
    server: ServerBase = request.getfixturevalue(CLOUD_SERVERS[kind])
    bucket = unique_bucket_name()
    server.make_bucket(bucket)
    url = f"{SCHEMES[kind]}://{bucket}/{prefix}" if prefix else f"{SCHEMES[kind]}://{bucket}"
    return server, url, dict(server.storage_options)


class StoreView:
    """A destination seen directly. Paths are relative to the destination root."""

    local = False

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        self.url = url
        self.options = options

    async def put(self, path: str, data: bytes) -> None:
        raise NotImplementedError

    async def get(self, path: str) -> bytes:
        raise NotImplementedError

    async def exists(self, path: str) -> bool:
        raise NotImplementedError

    async def names(self, folder: str) -> list[str]:
        """Basenames of the direct children of `folder`, sorted."""
        raise NotImplementedError

    async def files(self) -> list[str]:
        """Every stored file (object), sorted."""
        raise NotImplementedError

    async def mkdir(self, path: str) -> None:
        """An empty folder: a real one on disk, a `path/` marker object on object stores."""
        raise NotImplementedError

    async def close(self) -> None:
        pass


class LocalView(StoreView):
    local = True

    def __init__(self, root: Path) -> None:
        super().__init__(str(root), {})
        self.root = root

    async def put(self, path: str, data: bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    async def get(self, path: str) -> bytes:
        return (self.root / path).read_bytes()

    async def exists(self, path: str) -> bool:
        return (self.root / path).exists()

    async def names(self, folder: str) -> list[str]:
        return sorted(p.name for p in (self.root / folder).iterdir())

    async def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())

    async def mkdir(self, path: str) -> None:
        (self.root / path).mkdir(parents=True, exist_ok=True)


class CloudView(StoreView):
    def __init__(self, url: str, options: dict[str, Any]) -> None:
        super().__init__(url, options)
        protocol, _, self.root = url.partition("://")
        cls = fsspec.get_filesystem_class(protocol)
        self.fs = cls(
            asynchronous=True,
            loop=asyncio.get_running_loop(),
            skip_instance_cache=True,
            **options,
        )

    def full(self, path: str) -> str:
        return posixpath.join(self.root, path) if path else self.root

    async def put(self, path: str, data: bytes) -> None:
        await self.fs._pipe_file(self.full(path), data)

    async def get(self, path: str) -> bytes:
        return await self.fs._cat_file(self.full(path))

    async def exists(self, path: str) -> bool:
        self.fs.invalidate_cache()
        return await self.fs._exists(self.full(path))

    async def names(self, folder: str) -> list[str]:
        self.fs.invalidate_cache()
        listed = await self.fs._ls(self.full(folder), detail=False)
        return sorted({posixpath.basename(p.rstrip("/")) for p in listed} - {""})

    async def files(self) -> list[str]:
        self.fs.invalidate_cache()
        try:
            found = await self.fs._find(self.root)
        except FileNotFoundError:
            return []
        return sorted(posixpath.relpath(p, self.root) for p in found)

    async def mkdir(self, path: str) -> None:
        await self.fs._pipe_file(self.full(path) + "/", b"")

    async def close(self) -> None:
        await aclose_filesystem(self.fs)
