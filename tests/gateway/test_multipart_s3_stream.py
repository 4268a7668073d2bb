"""S3 part PUTs through the gateway stream into UploadPart (backends/s3_stream.py), on moto.

A part with a Content-Length is never gathered in memory: the bytes the process holds while a
64 MiB part goes up stay at a few MiB (tracemalloc counts every bytes object aiohttp, the
gateway and the SDK allocate; the store is another process). A part that fails its digest is
cut before its last piece, so the store keeps nothing under its number.
"""

import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.stores import ALL_STORES, CloudView, StoreView

MPU = "/api/2.0/mlflow-artifacts/mpu"
MiB = 1 << 20
S3 = [p for p in ALL_STORES if "s3" in str(p)]


@pytest.fixture(params=S3)
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


def block(index: int) -> bytes:
    """1 MiB of content that differs from block to block (a misplaced block is caught)."""
    return index.to_bytes(8, "big") * (MiB // 8)


async def blocks(first: int, count: int, piece: int = MiB) -> AsyncIterator[bytes]:
    for index in range(first, first + count):
        data = block(index)
        for start in range(0, MiB, piece):
            yield data[start : start + piece]


async def create(client: TestClient, num_parts: int) -> dict[str, Any]:
    body = {"path": "model.bin", "num_parts": num_parts}
    response = await client.post(f"{MPU}/create/r", json=body)
    assert response.status == 200, await response.text()
    return await response.json()


async def stored_parts(store: StoreView) -> list[int]:
    assert isinstance(store, CloudView)
    bucket = store.root.split("/", 1)[0]
    listed = await store.fs._call_s3("list_multipart_uploads", Bucket=bucket)
    numbers = []
    for upload in listed.get("Uploads", []):
        parts = await store.fs._call_s3(
            "list_parts", Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
        numbers += [part["PartNumber"] for part in parts.get("Parts", [])]
    return numbers


async def test_a_64_mib_part_streams_into_upload_part(gateway: TestClient, store: StoreView):
    created = await create(gateway, 2)
    first, second = (c["url"] for c in created["credentials"])
    sizes = {first: 64, second: 3}
    await gateway.session.put(second, data=b"warm-up")  # the SDK's models and buffers in place
    tracemalloc.start()
    try:
        etags = []
        for url, start in ((first, 0), (second, 64)):
            length = str(sizes[url] * MiB)
            async with gateway.session.put(
                url, data=blocks(start, sizes[url]), headers={"Content-Length": length}
            ) as response:
                assert response.status == 200, await response.text()
                etags.append(response.headers["ETag"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MiB, f"{peak / MiB:.1f} MiB held while a 64 MiB part went up"
    listed = [{"part_number": n + 1, "etag": etag} for n, etag in enumerate(etags)]
    body = {"path": "model.bin", "upload_id": created["upload_id"], "parts": listed}
    response = await gateway.post(f"{MPU}/complete/r", json=body)
    assert response.status == 200, await response.text()
    expected = hashlib.sha256(b"".join(block(i) for i in range(67))).hexdigest()
    assert hashlib.sha256(await store.get("r/model.bin")).hexdigest() == expected


@pytest.mark.parametrize(
    "headers",
    [{"Content-Digest": "sha-256=:" + "A" * 43 + "=:"}, {"Content-MD5": "A" * 22 + "=="}],
)
async def test_a_part_that_fails_its_check_is_not_stored(
    gateway: TestClient, store: StoreView, headers: dict[str, str]
) -> None:
    created = await create(gateway, 1)
    url = created["credentials"][0]["url"]
    length = {"Content-Length": str(4 * MiB)}
    async with gateway.session.put(
        url, data=blocks(0, 4), headers={**headers, **length}
    ) as response:
        assert response.status == 400, await response.text()
        assert (await response.json())["error_code"] == "BAD_DIGEST"
    assert await stored_parts(store) == []
    good = os.urandom(MiB)
    async with gateway.session.put(url, data=good) as response:
        assert response.status == 200, await response.text()
        etag = response.headers["ETag"]
    assert await stored_parts(store) == [1]
    body = {"path": "model.bin", "upload_id": created["upload_id"]}
    body["parts"] = [{"part_number": 1, "etag": etag}]  # type: ignore[assignment]
    assert (await gateway.post(f"{MPU}/complete/r", json=body)).status == 200
    assert await store.get("r/model.bin") == good
