"""The mlflow-artifacts REST API through real loopback HTTP, table-driven."""

import json

import pytest
from aiohttp.test_utils import TestClient

from tests.rawhttp import raw_request
from tests.stores import ALL_STORES, StoreView

A = "/api/2.0/mlflow-artifacts/artifacts"
AJAX = "/ajax-api/2.0/mlflow-artifacts/artifacts"
MPU = "/api/2.0/mlflow-artifacts/mpu"


@pytest.fixture(params=ALL_STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def seeded(gateway: TestClient, store: StoreView) -> TestClient:
    await store.put("0/r1/artifacts/a.txt", b"hello a\n")
    await store.put("0/r1/artifacts/empty.bin", b"")
    await store.put("0/r1/artifacts/dir/b.json", b'{"b": 1}')
    await store.put("0/r1/artifacts/dir/sub/c.csv", b"x,y\n1,2\n")
    await store.mkdir("0/r1/artifacts/emptydir")
    return gateway


# (method, target, body) -> (status, error_code or None)
CASES = [
    ("GET", f"{A}/0/r1/artifacts/a.txt", b"", 200, None),
    ("GET", f"{AJAX}/0/r1/artifacts/a.txt", b"", 200, None),
    ("GET", f"{A}/0/r1/artifacts/missing.txt", b"", 404, "RESOURCE_DOES_NOT_EXIST"),
    ("GET", f"{A}/0/r1/artifacts/dir", b"", 400, "INVALID_PARAMETER_VALUE"),
    ("GET", f"{A}/0/r1/artifacts/dir/", b"", 400, "INVALID_PARAMETER_VALUE"),
    ("GET", f"{A}/", b"", 400, "INVALID_PARAMETER_VALUE"),
    ("GET", f"{A}/0/r1/artifacts/a.txt/x", b"", 404, "RESOURCE_DOES_NOT_EXIST"),
    ("GET", f"{A}/0/r1/artifacts/a.txt/x/y.bin", b"", 404, "RESOURCE_DOES_NOT_EXIST"),
    ("PUT", f"{A}/0/r1/artifacts/new.txt", b"new", 200, None),
    ("PUT", f"{A}/0/r1/artifacts/newdir/", b"x", 400, "INVALID_PARAMETER_VALUE"),
    ("PUT", f"{A}/", b"x", 400, "INVALID_PARAMETER_VALUE"),
    ("PUT", f"{A}/0/r1/artifacts/dir", b"x", 400, "INVALID_PARAMETER_VALUE"),
    ("PUT", f"{A}/0/r1/artifacts/a.txt/child.txt", b"x", 400, "INVALID_PARAMETER_VALUE"),
    ("PUT", f"{A}/0/r1/artifacts/.artgw.upload.x", b"x", 400, "INVALID_PARAMETER_VALUE"),
    ("DELETE", f"{A}/0/r1/artifacts/missing", b"", 200, None),
    ("DELETE", f"{A}/", b"", 400, "INVALID_PARAMETER_VALUE"),
    ("DELETE", f"{A}/.", b"", 400, "INVALID_PARAMETER_VALUE"),
    ("DELETE", f"{A}/./", b"", 400, "INVALID_PARAMETER_VALUE"),
    ("DELETE", f"{A}/%2e", b"", 400, "INVALID_PARAMETER_VALUE"),
    ("DELETE", f"{A}/%2E/", b"", 400, "INVALID_PARAMETER_VALUE"),
    ("DELETE", f"{A}//", b"", 400, "INVALID_PARAMETER_VALUE"),
    ("DELETE", A, b"", 405, "BAD_REQUEST"),
    ("PATCH", f"{A}/0/r1/artifacts/a.txt", b"", 405, "BAD_REQUEST"),
    ("GET", "/api/2.0/mlflow-artifacts/nothing-here", b"", 404, "ENDPOINT_NOT_FOUND"),
    ("GET", "/nope", b"", 404, "ENDPOINT_NOT_FOUND"),
    # multipart through the gateway is on (tests/gateway/test_multipart.py): JSON is required
    ("POST", "/api/2.0/mlflow-artifacts/mpu/create/0/r1/artifacts", b"{}", 400, "BAD_REQUEST"),
    ("POST", "/api/2.0/mlflow-artifacts/mpu/complete/0/r1", b"{}", 400, "BAD_REQUEST"),
    ("POST", "/api/2.0/mlflow-artifacts/mpu/abort/0/r1", b"{}", 400, "BAD_REQUEST"),
    (
        "GET",
        "/api/2.0/mlflow-artifacts/presigned/0/r1/artifacts/a.txt",
        b"",
        501,
        "NOT_IMPLEMENTED",
    ),
]


@pytest.mark.parametrize(("method", "target", "body", "status", "code"), CASES)
async def test_status_and_error_shape(
    seeded: TestClient, method: str, target: str, body: bytes, status: int, code: str | None
) -> None:
    response = await raw_request(seeded.server.port, method, target, body)
    assert response.status == status, response.body
    if code is None:
        return
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()
    assert error["error_code"] == code
    assert error["message"]


LISTINGS = [
    (
        "0/r1/artifacts",
        {
            "files": [
                {"path": "a.txt", "is_dir": False, "file_size": 8},
                {"path": "dir", "is_dir": True},
                {"path": "empty.bin", "is_dir": False, "file_size": 0},
                {"path": "emptydir", "is_dir": True},
            ]
        },
    ),
    ("0/r1/artifacts/", None),  # same as without the slash
    (
        "0/r1/artifacts/dir",
        {
            "files": [
                {"path": "b.json", "is_dir": False, "file_size": 8},
                {"path": "sub", "is_dir": True},
            ]
        },
    ),
    ("0/r1/artifacts/emptydir", {}),
    ("0/r1/artifacts/a.txt", {}),
    ("0/r1/artifacts/missing", {}),
    ("", {"files": [{"path": "0", "is_dir": True}]}),
]


@pytest.mark.parametrize(("path", "expected"), LISTINGS)
async def test_listing_matches_mlflow(seeded: TestClient, path: str, expected: dict | None) -> None:
    response = await seeded.get(A, params={"path": path})
    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    if expected is None:
        expected = await (await seeded.get(A, params={"path": path.rstrip("/")})).json()
    assert body == expected


async def test_listing_without_path_is_the_root(seeded: TestClient) -> None:
    assert await (await seeded.get(A)).json() == {"files": [{"path": "0", "is_dir": True}]}


async def test_listing_hides_uploads_in_progress(seeded: TestClient, store: StoreView) -> None:
    await store.put("0/r1/artifacts/dir/.artgw.upload.0123", b"partial")
    body = await (await seeded.get(A, params={"path": "0/r1/artifacts/dir"})).json()
    assert [f["path"] for f in body["files"]] == ["b.json", "sub"]


async def test_put_creates_parents_and_overwrites(gateway: TestClient, store: StoreView) -> None:
    target = f"{A}/1/r2/artifacts/deep/er/f.bin"
    assert (await gateway.put(target, data=b"one")).status == 200
    assert (await gateway.put(target, data=b"second")).status == 200
    assert await store.get("1/r2/artifacts/deep/er/f.bin") == b"second"
    assert await store.names("1/r2/artifacts/deep/er") == ["f.bin"]


async def test_put_answers_empty_json(gateway: TestClient) -> None:
    response = await gateway.put(f"{A}/x.txt", data=b"x")
    assert (response.status, await response.json()) == (200, {})


async def test_put_empty_body_makes_empty_file(gateway: TestClient, store: StoreView) -> None:
    assert (await gateway.put(f"{A}/e.txt", data=b"")).status == 200
    assert await store.get("e.txt") == b""


async def test_put_chunked_body(gateway: TestClient, store: StoreView) -> None:
    async def chunks():
        for i in range(50):
            yield bytes([i]) * 1000

    assert (await gateway.put(f"{A}/chunked.bin", data=chunks())).status == 200
    assert await store.get("chunked.bin") == b"".join(bytes([i]) * 1000 for i in range(50))


async def test_delete_file_and_tree(seeded: TestClient, store: StoreView) -> None:
    response = await seeded.delete(f"{A}/0/r1/artifacts/a.txt")
    assert (response.status, await response.json()) == (200, {})
    assert not await store.exists("0/r1/artifacts/a.txt")
    assert (await seeded.delete(f"{A}/0/r1/artifacts/")).status == 200  # as `mlflow gc` sends it
    assert not await store.exists("0/r1/artifacts")
    assert await store.files() == []
    if store.local:  # object stores have no folder left once its last object is gone
        assert await store.names("0/r1") == []


NAMES = ["100%41 Name:v1 +#.txt", "日本.bin", 'weird name;"q".png', "a?b=c&d.txt", "%2e%2e"]


@pytest.mark.parametrize("name", NAMES)
async def test_names_round_trip_exactly(gateway: TestClient, store: StoreView, name: str) -> None:
    from urllib.parse import quote

    target = f"{A}/names/{quote(name, safe='')}"
    assert (await raw_request(gateway.server.port, "PUT", target, name.encode())).status == 200
    assert await store.get(f"names/{name}") == name.encode()
    got = await raw_request(gateway.server.port, "GET", target)
    assert got.body == name.encode()
    listing = await (await gateway.get(A, params={"path": "names"})).json()
    assert listing["files"][0]["path"] == name


DISPOSITIONS = [
    ("a.txt", "attachment; filename=a.txt", "text/plain"),
    ("model.pkl", "attachment; filename=model.pkl", "application/octet-stream"),
    ("MLmodel", "attachment; filename=MLmodel", "text/plain"),
    ("conf.yaml", "attachment; filename=conf.yaml", "text/plain"),
    ("img.png", "attachment; filename=img.png", "image/png"),
    ('weird name;"q".png', 'attachment; filename="weird name;\\"q\\".png"', "image/png"),
    ("日本.bin", "attachment; filename=.bin; filename*=UTF-8''%E6%97%A5%E6%9C%AC.bin", None),
    ("日本", "attachment; filename=download; filename*=UTF-8''%E6%97%A5%E6%9C%AC", None),
]


@pytest.mark.parametrize(("name", "disposition", "mime"), DISPOSITIONS)
async def test_download_headers(
    gateway: TestClient, store: StoreView, name: str, disposition: str, mime: str | None
) -> None:
    await store.put(name, b"data")
    from urllib.parse import quote

    response = await gateway.get(f"{A}/{quote(name)}", headers={"Accept": "text/html"})
    assert response.status == 200
    assert response.headers["Content-Disposition"] == disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Length"] == "4"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert "ETag" in response.headers and "Last-Modified" in response.headers
    if mime:
        assert response.headers["Content-Type"].split(";")[0] == mime


async def test_service_endpoints(gateway: TestClient) -> None:
    assert await (await gateway.get("/health")).text() == "OK"
    assert (await gateway.get("/version")).status == 200
    for prefix in ("/api/3.0", "/ajax-api/3.0"):
        info = await (await gateway.get(f"{prefix}/mlflow/server-info")).json()
        assert info["multipart_uploads_enabled"] is True  # through the gateway, by default
        assert info["multipart_downloads_enabled"] is False
        assert info["artifacts_presigned_only"] is False


async def test_errors_are_never_html(gateway: TestClient) -> None:
    """API clients get JSON errors; `GET /` is now the landing page (test_browse_http.py)."""
    for method, target in [("GET", "/nope/"), ("POST", A), ("OPTIONS", f"{A}/x")]:
        response = await raw_request(gateway.server.port, method, target)
        assert 400 <= response.status < 500, (method, target, response.status)
        assert json.loads(response.body)["error_code"]


@pytest.mark.parametrize("action", ["create", "complete", "abort"])
async def test_multipart_request_without_path_names_the_field(
    seeded: TestClient, action: str
) -> None:
    """Checked before the store is asked whether it can do multipart uploads (MLflow's order)."""
    response = await seeded.post(f"{MPU}/{action}/0/r1/artifacts", json={"num_parts": 1})
    assert response.status == 400
    body = await response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "'path'" in body["message"]
