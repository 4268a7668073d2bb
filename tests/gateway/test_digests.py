"""Checksums end to end on every store: digests sent with an upload are verified before the file
exists (a wrong one stores nothing), kept with the object, and returned as Repr-Digest."""

import asyncio
import base64
import hashlib
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import fsspec
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import ARTIFACTS, GatewayFactory
from tests.stores import ALL_STORES, StoreView

SMALL = os.urandom(5000)
BIG = os.urandom((9 << 20) + 123)
"""Above one 8 MiB part: a multipart upload (S3), staged blocks (Azure), a resumable one (GCS)."""


@pytest.fixture(params=ALL_STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def content_digest(data: bytes, algorithm: str = "sha-256") -> str:
    name = {"sha-256": "sha256", "sha-512": "sha512"}[algorithm]
    return f"{algorithm}=:{b64(hashlib.new(name, data).digest())}:"


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 1 << 20):
        yield data[start : start + (1 << 20)]


async def put(client: TestClient, path: str, data: bytes, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return await client.put(f"{ARTIFACTS}/{path}", data=chunks(data), headers=headers)


async def sha256sum(data: bytes, where: Path) -> str:
    """The real `sha256sum` of the bytes, as base64 (RFC 9530's form)."""
    target = where / "sum.bin"
    target.write_bytes(data)
    done = await asyncio.to_thread(
        subprocess.run, ["sha256sum", str(target)], capture_output=True, text=True, check=True
    )
    return b64(bytes.fromhex(done.stdout.split()[0]))


def digest_headers(data: bytes) -> list[dict[str, str]]:
    return [
        {"Content-Digest": content_digest(data)},
        {"Content-Digest": content_digest(data, "sha-512") + ", " + content_digest(data)},
        {"x-amz-checksum-sha256": b64(hashlib.sha256(data).digest())},
        {"Content-MD5": b64(hashlib.md5(data).digest())},
    ]


@pytest.mark.parametrize("data", [SMALL, BIG], ids=["small", "multipart"])
async def test_a_verified_upload_comes_back_with_its_digest(
    gateway: TestClient, store: StoreView, data: bytes, tmp_path: Path
) -> None:
    response = await put(gateway, "r/a.bin", data, {"Content-Digest": content_digest(data)})
    assert response.status == 200, await response.text()
    assert await store.get("r/a.bin") == data
    expected = f"sha-256=:{await sha256sum(data, tmp_path)}:"
    for method in ("GET", "HEAD"):
        response = await gateway.request(method, f"{ARTIFACTS}/r/a.bin")
        assert response.status == 200
        assert expected in response.headers["Repr-Digest"].split(", "), method
    ranged = await gateway.get(f"{ARTIFACTS}/r/a.bin", headers={"Range": "bytes=0-9"})
    assert ranged.status == 206
    assert expected in ranged.headers["Repr-Digest"]
    listed = await (await gateway.get(ARTIFACTS, params={"path": "r", "digests": "1"})).json()
    assert listed["files"][0]["file_size"] == len(data)
    assert expected in listed["files"][0]["digest"]


@pytest.mark.parametrize("data", [SMALL, BIG], ids=["small", "multipart"])
async def test_every_kind_of_digest_is_checked(
    gateway: TestClient, store: StoreView, data: bytes
) -> None:
    for headers in digest_headers(data):
        response = await put(gateway, "r/ok.bin", data, headers)
        assert response.status == 200, (headers, await response.text())
    wrong = data[:-1] + bytes([data[-1] ^ 1])
    for headers in digest_headers(wrong):
        response = await put(gateway, "r/new.bin", data, headers)
        assert response.status == 400, headers
        body = await response.json()
        assert body["error_code"] == "BAD_DIGEST", body
        response = await put(gateway, "r/ok.bin", b"replaced" + data, headers)
        assert response.status == 400, headers
    assert await store.files() == ["r/ok.bin"]  # nothing new, not even a part or a temp file
    assert await store.get("r/ok.bin") == data  # the old file stayed


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Digest": "sha-256=abc"},
        {"Content-Digest": "sha-256=:not base64!:"},
        {"Content-Digest": "sha-256=:" + b64(b"short") + ":"},
        {"Content-MD5": "%%%"},
    ],
)
async def test_a_malformed_digest_is_a_400(
    gateway: TestClient, store: StoreView, headers: dict[str, str]
) -> None:
    response = await put(gateway, "r/x.bin", SMALL, headers)
    assert response.status == 400
    assert (await response.json())["error_code"] == "INVALID_PARAMETER_VALUE"
    assert await store.files() == []


async def test_unknown_algorithms_are_ignored(gateway: TestClient, store: StoreView) -> None:
    headers = {"Content-Digest": "unixsum=:AAAA:, " + content_digest(SMALL)}
    assert (await put(gateway, "r/x.bin", SMALL, headers)).status == 200


async def test_without_a_digest_nothing_is_claimed(gateway: TestClient, store: StoreView) -> None:
    assert (await put(gateway, "r/plain.bin", SMALL, {})).status == 200
    response = await gateway.get(f"{ARTIFACTS}/r/plain.bin")
    assert "sha-256" not in response.headers.get("Repr-Digest", "")  # GCS/Azure's own md5 may be


@pytest.mark.parametrize("store_kind", ["local"])
async def test_a_memory_store_verifies_too(make_gateway: GatewayFactory) -> None:
    root = f"/digests-{os.getpid()}-{os.urandom(4).hex()}"
    client = await make_gateway(artifacts_destination=f"memory://{root}")
    wrong = {"Content-Digest": content_digest(b"something else")}
    assert (await put(client, "r/a.bin", BIG, wrong)).status == 400
    assert fsspec.filesystem("memory").find(root) == []
    good = {"Content-Digest": content_digest(BIG)}
    assert (await put(client, "r/a.bin", BIG, good)).status == 200
    assert fsspec.filesystem("memory").cat_file(f"{root}/r/a.bin") == BIG


async def test_each_part_of_a_multipart_upload_is_verified(
    gateway: TestClient, store: StoreView
) -> None:
    """Gateway part uploads (mpu/part): a part with a wrong digest is refused and not kept, the
    client sends it again, and the whole file is exactly the good parts."""
    parts = [os.urandom(5 << 20), os.urandom(1000)]
    create = "/api/2.0/mlflow-artifacts/mpu/create/r"
    created = await (await gateway.post(create, json={"path": "m.bin", "num_parts": 2})).json()
    urls = [c["url"] for c in created["credentials"]]
    bad = {"Content-Digest": content_digest(b"not this part")}
    async with gateway.session.put(urls[0], data=chunks(parts[0]), headers=bad) as response:
        assert response.status == 400
        assert (await response.json())["error_code"] == "BAD_DIGEST"
    etags = []
    for url, data in zip(urls, parts, strict=True):
        headers = {"Content-MD5": b64(hashlib.md5(data).digest())}
        async with gateway.session.put(url, data=chunks(data), headers=headers) as response:
            assert response.status == 200, await response.text()
            etags.append(response.headers["ETag"])
    listed = [{"part_number": n + 1, "etag": etag} for n, etag in enumerate(etags)]
    body = {"path": "m.bin", "upload_id": created["upload_id"], "parts": listed}
    complete = "/api/2.0/mlflow-artifacts/mpu/complete/r"
    assert (await gateway.post(complete, json=body)).status == 200
    assert await store.get("r/m.bin") == b"".join(parts)
