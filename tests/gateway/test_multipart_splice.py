"""Local part PUTs spliced from the socket into the upload's file (gateway/receive.py).

Over real loopback HTTP against the in-process app: a part of known length goes socket -> pipe
-> file past aiohttp, whatever share of it aiohttp had already received; the connection closes
after the answer (aiohttp's parser never saw the body's end); the bytes are still counted; a
client gone mid-part leaves no part, and its resend is the one kept.
"""

import asyncio
import io
import os
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.promtext import value
from tests.stores import StoreView

MPU = "/api/2.0/mlflow-artifacts/mpu"
MiB = 1 << 20
ROUTE = "/api/2.0/mlflow-artifacts/mpu/part/{path}"


@pytest.fixture
def store_kind() -> str:
    return "local"


async def create(client: TestClient, num_parts: int) -> dict[str, Any]:
    body = {"path": "model.bin", "num_parts": num_parts}
    response = await client.post(f"{MPU}/create/r", json=body)
    assert response.status == 200, await response.text()
    return await response.json()


async def complete(client: TestClient, created: dict[str, Any], etags: list[str]) -> None:
    parts = [{"part_number": n + 1, "etag": etag} for n, etag in enumerate(etags)]
    body = {"path": "model.bin", "upload_id": created["upload_id"], "parts": parts}
    response = await client.post(f"{MPU}/complete/r", json=body)
    assert response.status == 200, await response.text()


async def raw_put(
    url: str, data: bytes, bursts: list[tuple[int, float]], cut: bool = False
) -> tuple[int, str]:
    """PUT `data` by hand: the head, then `(bytes, pause after them)` bursts, then the rest;
    (status, ETag) of the answer. `cut`: the client goes away after the bursts instead."""
    target = URL(url)
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        head = f"PUT {target.raw_path_qs} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}"
        writer.write(head.encode() + b"\r\n\r\n")
        sent = 0
        for size, pause in bursts:
            writer.write(data[sent : sent + size])
            await writer.drain()
            sent += size
            await asyncio.sleep(pause)
        if cut:
            return 0, ""
        writer.write(data[sent:])
        await writer.drain()
        status_line = await reader.readline()
        headers = {}
        while (line := (await reader.readline()).strip()) != b"":
            name, _, text = line.decode().partition(":")
            headers[name.strip().lower()] = text.strip()
        await reader.readexactly(int(headers.get("content-length", "0")))
        assert headers.get("connection", "").lower() == "close"  # the socket was taken over
        return int(status_line.split()[1]), headers["etag"]
    finally:
        writer.close()


async def test_a_part_is_spliced_past_aiohttp_and_counted(gateway: TestClient, store: StoreView):
    parts = [os.urandom(8 * MiB), os.urandom(8 * MiB), os.urandom(1234)]
    before = await (await gateway.get("/metrics")).text()
    created = await create(gateway, 3)
    urls = [c["url"] for c in created["credentials"]]
    etags = []
    for url, data in zip(urls, parts, strict=True):
        async with gateway.session.put(url, data=io.BytesIO(data)) as response:
            assert response.status == 200, await response.text()
            etags.append(response.headers["ETag"])
            if len(data) > MiB:
                assert response.headers.get("Connection", "").lower() == "close"
    after = await (await gateway.get("/metrics")).text()
    labels = {"route": ROUTE, "method": "PUT"}
    received = value(after, "artgw_http_received_bytes_total", **labels) - value(
        before, "artgw_http_received_bytes_total", **labels
    )
    assert received == sum(map(len, parts))
    await complete(gateway, created, etags)
    assert await store.get("r/model.bin") == b"".join(parts)


@pytest.mark.parametrize(
    "bursts",
    [
        [(100 << 10, 0.3)],  # some bytes held by aiohttp when the handler starts
        [(3 * MiB, 0.3), (1, 0.2), (MiB, 0.2)],  # past aiohttp's buffer, then trickling
        [(0, 0.3), (5, 0.1), (7, 0.1)],  # the head alone first
    ],
    ids=["held-then-rest", "full-buffer-then-trickle", "trickle"],
)
async def test_bytes_however_they_arrive(
    gateway: TestClient, store: StoreView, bursts: list[tuple[int, float]]
) -> None:
    data = os.urandom(6 * MiB)
    created = await create(gateway, 1)
    status, etag = await raw_put(created["credentials"][0]["url"], data, bursts)
    assert status == 200
    await complete(gateway, created, [etag])
    assert await store.get("r/model.bin") == data


async def test_a_client_gone_mid_part_leaves_no_part(gateway: TestClient, store: StoreView):
    data = os.urandom(6 * MiB)
    created = await create(gateway, 1)
    url = created["credentials"][0]["url"]
    assert await raw_put(url, data, [(200 << 10, 0.2), (2 * MiB, 0.3)], cut=True) == (0, "")
    await asyncio.sleep(0.3)
    body = {"path": "model.bin", "upload_id": created["upload_id"]}
    body["parts"] = [{"part_number": 1, "etag": "0123456789abcdef"}]  # type: ignore[assignment]
    assert (await gateway.post(f"{MPU}/complete/r", json=body)).status == 400
    async with gateway.session.put(url, data=io.BytesIO(data)) as response:  # the resend
        assert response.status == 200, await response.text()
        etag = response.headers["ETag"]
    await complete(gateway, created, [etag])
    assert await store.get("r/model.bin") == data
