"""Range requests, conditional requests and HEAD on downloads, table-driven."""

import os
from email.utils import formatdate

import pytest
from aiohttp.test_utils import TestClient

from backends.beneath import read_cached
from tests.stores import ALL_STORES, StoreView

A = "/api/2.0/mlflow-artifacts/artifacts"
DATA = bytes(range(256)) * 400  # 102,400 bytes: above the sendfile threshold
SIZE = len(DATA)


@pytest.fixture(params=ALL_STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=["small", "big"])
async def served(request, gateway: TestClient, store: StoreView) -> tuple[TestClient, bytes]:
    data = DATA[:1000] if request.param == "small" else DATA
    await store.put("f.bin", data)
    return gateway, data


RANGES = [
    ("bytes=0-9", 206, slice(0, 10)),
    ("bytes=10-", 206, slice(10, None)),
    ("bytes=-10", 206, slice(-10, None)),
    ("bytes=5-5", 206, slice(5, 6)),
    ("bytes=0-999999999", 206, slice(0, None)),
    ("bytes=-999999999", 206, slice(0, None)),
    ("bytes=9-0", 200, slice(None)),  # invalid: ignored
    ("bytes=0-1,5-6", 200, slice(None)),  # several ranges: whole file
    ("items=0-5", 200, slice(None)),
    ("bytes=abc", 200, slice(None)),
]


@pytest.mark.parametrize(("header", "status", "part"), RANGES)
async def test_ranges(served, header: str, status: int, part: slice) -> None:
    client, data = served
    response = await client.get(f"{A}/f.bin", headers={"Range": header})
    assert response.status == status
    body = await response.read()
    assert body == data[part]
    assert int(response.headers["Content-Length"]) == len(body)
    if status == 206:
        start = data.index(body) if part.start is None or part.start >= 0 else len(data) - len(body)
        expected = f"bytes {start}-{start + len(body) - 1}/{len(data)}"
        assert response.headers["Content-Range"] == expected


@pytest.mark.parametrize("header", ["bytes=1000000-", "bytes=1000000-1000001", "bytes=-0"])
async def test_unsatisfiable_range(served, header: str) -> None:
    client, data = served
    response = await client.get(f"{A}/f.bin", headers={"Range": header})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(data)}"
    assert (await response.json())["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_range_on_empty_file(gateway: TestClient, store: StoreView) -> None:
    await store.put("empty", b"")
    response = await gateway.get(f"{A}/empty", headers={"Range": "bytes=0-"})
    assert response.status == 416
    response = await gateway.get(f"{A}/empty")
    assert (response.status, await response.read()) == (200, b"")


async def test_conditional_requests(served) -> None:
    client, data = served
    first = await client.get(f"{A}/f.bin")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    old = formatdate(0, usegmt=True)
    cases = [
        ({"If-None-Match": etag}, 304),
        ({"If-None-Match": f"W/{etag}"}, 304),
        ({"If-None-Match": f'"nope", {etag}'}, 304),
        ({"If-None-Match": "*"}, 304),
        ({"If-None-Match": '"nope"'}, 200),
        ({"If-Modified-Since": modified}, 304),
        ({"If-Modified-Since": old}, 200),
        ({"If-None-Match": '"nope"', "If-Modified-Since": modified}, 200),
        ({"If-Match": etag}, 200),
        ({"If-Match": '"nope"'}, 412),
        ({"If-Unmodified-Since": old}, 412),
        ({"If-Unmodified-Since": modified}, 200),
        ({"If-Modified-Since": "garbage"}, 200),
        ({"Range": "bytes=0-3", "If-Range": etag}, 206),
        ({"Range": "bytes=0-3", "If-Range": '"old"'}, 200),
        ({"Range": "bytes=0-3", "If-Range": modified}, 206),
        ({"Range": "bytes=0-3", "If-Range": old}, 200),
    ]
    for headers, status in cases:
        response = await client.get(f"{A}/f.bin", headers=headers)
        assert response.status == status, headers
        body = await response.read()
        if status == 304:
            assert body == b""
            assert response.headers["ETag"] == etag
        if status == 200:
            assert body == data


async def test_etag_changes_when_content_changes(gateway: TestClient) -> None:
    await gateway.put(f"{A}/g.bin", data=b"one")
    first = (await gateway.get(f"{A}/g.bin")).headers["ETag"]
    await gateway.put(f"{A}/g.bin", data=b"other")
    response = await gateway.get(f"{A}/g.bin", headers={"If-None-Match": first})
    assert response.status == 200
    assert await response.read() == b"other"


async def test_head_has_headers_and_no_body(served) -> None:
    client, data = served
    response = await client.head(f"{A}/f.bin")
    assert response.status == 200
    assert response.headers["Content-Length"] == str(len(data))
    assert "ETag" in response.headers
    assert await response.read() == b""
    missing = await client.head(f"{A}/missing.bin")
    assert missing.status == 404


@pytest.mark.parametrize("store_kind", ["local"])
async def test_small_file_out_of_the_page_cache(gateway: TestClient, destination) -> None:
    """Small files are served from the loop only when cached; an evicted one goes by a thread."""
    data = bytes(range(251)) * 20
    path = destination / "cold.bin"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if read_cached(fd, len(data)) is not None:
            pytest.skip("the kernel kept the file's pages cached")
    finally:
        os.close(fd)
    response = await gateway.get(f"{A}/cold.bin")
    assert response.status == 200
    assert await response.read() == data
