"""The mount table over real stores at once: local (default), memory, S3 (moto), Azurite and
fake-gcs-server mounted side by side in one gateway."""

import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from backends import DestinationError
from backends.base import Part
from backends.mounts import Mount, open_mounted
from tests.conftest import ARTIFACTS, GatewayFactory
from tests.stores import CloudView, LocalView, StoreView, cloud_destination

pytestmark = pytest.mark.cloud

CLOUDS = {"s3": "s3", "az": "azure", "gcs": "gcs"}
"""Mount prefix -> store kind."""


@pytest.fixture
async def views(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[dict[str, StoreView]]:
    """Each mount prefix (and '' for the default) -> a direct view of its store."""
    found: dict[str, StoreView] = {}
    (tmp_path / "fast").mkdir()
    found["local/fast"] = LocalView(tmp_path / "fast")
    found["mem"] = StoreView(f"memory://mounts-{secrets.token_hex(4)}", {})
    for prefix, kind in CLOUDS.items():
        _, url, options = cloud_destination(request, kind, prefix="mlflow")
        found[prefix] = CloudView(url, options)
    try:
        yield found
    finally:
        for view in found.values():
            await view.close()


@pytest.fixture
async def mounted(
    make_gateway: GatewayFactory, views: dict[str, StoreView], store: StoreView
) -> TestClient:
    mounts = tuple(Mount.of(p, v.url, v.options) for p, v in views.items())
    return await make_gateway(mounts=mounts)


async def put(client: TestClient, path: str, data: bytes) -> None:
    response = await client.put(f"{ARTIFACTS}/{path}", data=data)
    assert response.status == 200, await response.text()


async def listing(client: TestClient, path: str = "") -> list[tuple[str, bool]]:
    response = await client.get(ARTIFACTS, params={"path": path})
    assert response.status == 200
    return [(f["path"], f["is_dir"]) for f in (await response.json()).get("files", [])]


async def test_each_mount_stores_in_its_own_store(
    mounted: TestClient, views: dict[str, StoreView], store: StoreView
) -> None:
    payloads = {prefix: os.urandom(1000) + prefix.encode() for prefix in views}
    for prefix, data in payloads.items():
        await put(mounted, f"{prefix}/run/a.bin", data)
    await put(mounted, "plain/a.bin", b"default")

    for prefix, data in payloads.items():
        response = await mounted.get(f"{ARTIFACTS}/{prefix}/run/a.bin")
        assert await response.read() == data
        if prefix != "mem":  # the memory store lives in the gateway's process only
            assert await views[prefix].get("run/a.bin") == data
            assert await views[prefix].names("") == ["run"]
    assert await store.get("plain/a.bin") == b"default"
    assert await store.files() == ["plain/a.bin"]  # nothing of the mounts in the default


async def test_listing_shows_mount_points_as_folders(mounted: TestClient, store: StoreView) -> None:
    await store.put("s3", b"a file the mount shadows")
    await store.put("top.txt", b"x")
    assert await listing(mounted) == [
        ("az", True),
        ("gcs", True),
        ("local", True),
        ("mem", True),
        ("s3", True),
        ("top.txt", False),
    ]
    assert await listing(mounted, "local") == [("fast", True)]
    assert await listing(mounted, "gcs") == []
    await put(mounted, "gcs/x/y.txt", b"y")
    assert await listing(mounted, "gcs") == [("x", True)]
    assert await listing(mounted, "gcs/x") == [("y.txt", False)]


async def test_longest_prefix_wins(
    make_gateway: GatewayFactory, tmp_path: Path, store: StoreView
) -> None:
    outer, inner = tmp_path / "outer", tmp_path / "inner"
    client = await make_gateway(mounts=(Mount.of("m", str(outer)), Mount.of("m/deep", str(inner))))
    await put(client, "m/a.txt", b"outer")
    await put(client, "m/deep/b.txt", b"inner")
    await put(client, "m/deeper/c.txt", b"outer too")
    assert sorted(p.name for p in outer.iterdir()) == ["a.txt", "deeper"]
    assert sorted(p.name for p in inner.iterdir()) == ["b.txt"]
    assert await listing(client, "m") == [("a.txt", False), ("deep", True), ("deeper", True)]


async def test_mount_points_and_their_parents_are_never_deleted(
    mounted: TestClient, views: dict[str, StoreView]
) -> None:
    await put(mounted, "s3/run/a.bin", b"kept")
    await put(mounted, "local/other.txt", b"default store")
    for path in ("s3", "s3/", "local", "local/fast", ""):
        response = await mounted.delete(f"{ARTIFACTS}/{path}")
        assert response.status == 400, path
        assert (await response.json())["error_code"] == "INVALID_PARAMETER_VALUE"
    assert await views["s3"].get("run/a.bin") == b"kept"
    response = await mounted.delete(f"{ARTIFACTS}/s3/run")
    assert response.status == 200
    assert await views["s3"].files() == []


async def test_a_mount_point_is_a_folder(mounted: TestClient) -> None:
    for path in ("az", "local"):
        response = await mounted.put(f"{ARTIFACTS}/{path}", data=b"x")
        assert response.status == 400, path
        response = await mounted.get(f"{ARTIFACTS}/{path}")
        assert response.status == 400, path
    response = await mounted.get(f"{ARTIFACTS}/gcs/missing.txt")
    assert response.status == 404
    assert "gcs/missing.txt" in (await response.json())["message"]


async def test_multipart_is_decided_per_mount(
    make_gateway: GatewayFactory, views: dict[str, StoreView]
) -> None:
    """With --presigned-urls the S3 mount's parts go straight to S3 (store-signed URLs); every
    other mount gets part URLs that point back at the gateway (its own part uploads)."""
    mounts = tuple(Mount.of(p, v.url, v.options) for p, v in views.items())
    client = await make_gateway(mounts=mounts, presigned_urls=True)
    info = await (await client.get("/api/3.0/mlflow/server-info")).json()
    assert info["multipart_uploads_enabled"] is True
    assert {m["prefix"]: m["multipart_uploads_enabled"] for m in info["mounts"]} == dict.fromkeys(
        views, True
    )
    body = {"path": "big.bin", "num_parts": 2}
    mpu = "/api/2.0/mlflow-artifacts/mpu/create"
    gateway_base = str(client.make_url("/"))
    for prefix in ("s3/run", "gcs/run", "local/fast/run", "mem/run", "plain/run"):
        response = await client.post(f"{mpu}/{prefix}", json=body)
        assert response.status == 200, (prefix, await response.text())
        urls = [c["url"] for c in (await response.json())["credentials"]]
        assert len(urls) == 2
        through_gateway = all(u.startswith(gateway_base) and "/mpu/part/" in u for u in urls)
        assert through_gateway is (not prefix.startswith("s3/")), (prefix, urls[0])


async def test_every_mount_is_checked_at_start_up(tmp_path: Path, s3_server) -> None:
    missing = Mount.of("cold", "s3://no-such-bucket-here", s3_server.storage_options)
    backend = open_mounted(str(tmp_path / "d"), {}, (Mount.of("ok", "memory://ok"), missing))
    with pytest.raises(DestinationError) as raised:
        await backend.start()
    message = str(raised.value)
    assert message.startswith("cannot use mount 'cold' (s3://no-such-bucket-here): ")
    assert "\n" not in message


async def test_local_mounts_may_not_nest(tmp_path: Path) -> None:
    backend = open_mounted(str(tmp_path), {}, (Mount.of("inside", str(tmp_path / "sub")),))
    with pytest.raises(DestinationError, match=r"mount 'inside' .* is inside the artifacts"):
        await backend.start()


def test_mount_prefixes_are_confined() -> None:
    for bad in ("", "/", "../x", "a//b", "a/../b", "C:/x"):
        with pytest.raises(ValueError):
            Mount.of(bad, "memory://x")
    assert Mount.of("/a/b/", "memory://x").prefix == "a/b"
    assert Mount.parse("a=s3://b/c=d").url == "s3://b/c=d"


async def one_piece(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_the_sweep_reaches_every_mount(tmp_path: Path) -> None:
    """Abandoned part uploads are swept in the default store and in each mount."""
    backend = open_mounted(str(tmp_path / "d"), {}, (Mount.of("m", str(tmp_path / "m")),))
    await backend.start()
    try:
        for path in ("run/a.bin", "m/run/b.bin"):
            upload = await backend.begin_parts(path)
            await backend.write_part(path, Part(upload, 1), one_piece(b"part"))
        assert await backend.sweep_parts(time.time() + 60) == 2
        assert await backend.sweep_parts(time.time() + 60) == 0
    finally:
        await backend.close()
