"""Reading run artifacts through the tracking API (`artifacts/list`, `/get-artifact`): from this
server's destination, relayed from an allowed artifacts server, and never from anywhere else
(API.md 2.3: each advisory's request shape)."""

import io
import sqlite3
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import ARTIFACTS, GatewayFactory
from tests.tracking.conftest import call

BODY = bytes(range(256)) * 40


async def new_run(client: TestClient, experiment_id: str = "0") -> dict:
    status, body = await call(client, "POST", "runs/create", {"experiment_id": experiment_id})
    assert status == 200, body
    return body["run"]["info"]


def artifacts_path(artifact_uri: str) -> str:
    return artifact_uri.split("mlflow-artifacts:/", 1)[-1].split(ARTIFACTS + "/", 1)[-1]


async def put(client: TestClient, path: str, data: bytes) -> None:
    async with client.put(f"{ARTIFACTS}/{path}", data=data) as response:
        assert response.status == 200, await response.text()


async def log_files(uploader: TestClient, artifact_uri: str) -> None:
    base = artifacts_path(artifact_uri)
    await put(uploader, f"{base}/model/MLmodel", b"flavors: {}\n")
    await put(uploader, f"{base}/model/model.pkl", BODY)
    await put(uploader, f"{base}/notes.txt", b"hello\n")


@pytest.fixture
async def combined(make_gateway: GatewayFactory, tmp_path: Path) -> TestClient:
    uri = f"sqlite:///{tmp_path / 'reads.db'}"
    return await make_gateway(artifacts_only=False, backend_store_uri=uri)


async def check_reads(client: TestClient, info: dict) -> None:
    status, body = await call(client, "GET", "artifacts/list", {"run_id": info["run_id"]})
    assert status == 200, body
    assert body == {
        "root_uri": info["artifact_uri"],
        "files": [
            {"path": "model", "is_dir": True},
            {"path": "notes.txt", "is_dir": False, "file_size": 6},
        ],
    }
    query = {"run_id": info["run_id"], "path": "model"}
    status, body = await call(client, "GET", "artifacts/list", query)
    assert [(f["path"], f.get("file_size")) for f in body["files"]] == [
        ("model/MLmodel", 12),
        ("model/model.pkl", len(BODY)),
    ]
    params = {"run_uuid": info["run_id"], "path": "model/model.pkl"}
    async with client.get("/get-artifact", params=params) as response:
        assert response.status == 200
        assert await response.read() == BODY
        assert response.headers["Content-Disposition"] == "attachment; filename=model.pkl"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Length"] == str(len(BODY))
        assert "ETag" in response.headers
    async with client.get("/get-artifact", params=params, headers={"Range": "bytes=10-19"}) as r:
        assert r.status == 206
        assert r.headers["Content-Range"] == f"bytes 10-19/{len(BODY)}"
        assert await r.read() == BODY[10:20]
    params["path"] = "notes.txt"
    async with client.get("/get-artifact", params=params) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        assert await response.read() == b"hello\n"


async def test_list_and_get_from_this_servers_destination(combined: TestClient) -> None:
    info = await new_run(combined)
    await log_files(combined, info["artifact_uri"])
    await check_reads(combined, info)
    for prefix in ("/ajax-api/2.0/mlflow", "/api/2.0/mlflow"):
        async with combined.get(f"{prefix}/artifacts/list", params={"run_id": info["run_id"]}) as r:
            assert r.status == 200


async def test_reads_are_relayed_from_the_artifacts_server_of_the_default_root(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    artifacts = await make_gateway()
    root = str(artifacts.make_url(ARTIFACTS)) + "/experiments"
    other = tmp_path / "empty-destination"
    other.mkdir()
    tracking = await make_gateway(
        artifacts_only=False,
        backend_store_uri=f"sqlite:///{tmp_path / 'split.db'}",
        default_artifact_root=root,
        artifacts_destination=str(other),
    )
    info = await new_run(tracking)
    assert info["artifact_uri"].startswith(root)
    await log_files(artifacts, info["artifact_uri"])
    await check_reads(tracking, info)
    params = {"run_id": info["run_id"], "path": "missing.txt"}
    async with tracking.get("/get-artifact", params=params) as response:
        assert response.status == 404
        assert (await response.json())["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert list(other.iterdir()) == []


async def test_missing_folder_lists_empty_and_missing_file_is_404(combined: TestClient) -> None:
    info = await new_run(combined)
    status, body = await call(combined, "GET", "artifacts/list", {"run_id": info["run_id"]})
    assert (status, body) == (200, {"root_uri": info["artifact_uri"]})
    async with combined.get("/get-artifact", params={"run_id": info["run_id"], "path": "x"}) as r:
        assert r.status == 404


# -- what the server must never read (API.md 2.3) ----------------------------------------------

FORBIDDEN_ROOTS = [
    "/etc",  # a local path (accepted at creation, for clients that log directly)
    "file:///etc",
    "s3://someone-elses-bucket/x",
    "http://169.254.169.254/api/2.0/mlflow-artifacts/artifacts/x",  # not on the allow-list
    "http:///?/../../../../etc",  # CVE-2023-6909
    "http:///#/../../../../etc",  # CVE-2024-1483 and its bypasses
    "mlflow-artifacts:/../../etc",
    "mlflow-artifacts:/0/%2e%2e/%2e%2e/%2e%2e/etc",
    "mlflow-artifacts:/0/%252e%252e/%252e%252e/etc",  # double-encoded (CVE-2023-6831)
    "mlflow-artifacts:/0\\..\\..\\etc",  # backslash (CVE-2023-2780)
    "mlflow-artifacts://attacker.example/x",
    "//proc/self/root/etc",  # CVE-2023-6977
]


def set_artifact_uri(db: Path, run_id: str, uri: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET artifact_uri = ? WHERE run_id = ?", (uri, run_id))


@pytest.mark.parametrize("root", FORBIDDEN_ROOTS)
async def test_roots_off_the_destination_and_allow_list_are_never_read(
    combined: TestClient, tmp_path: Path, root: str
) -> None:
    info = await new_run(combined)
    set_artifact_uri(tmp_path / "reads.db", info["run_id"], root)
    status, body = await call(combined, "GET", "artifacts/list", {"run_id": info["run_id"]})
    assert status == 403, body
    assert body["error_code"] == "PERMISSION_DENIED"
    params = {"run_id": info["run_id"], "path": "passwd"}
    async with combined.get("/get-artifact", params=params) as response:
        assert response.status == 403
        assert (await response.json())["error_code"] == "PERMISSION_DENIED"


UNSAFE_PATHS = [
    "../../../../../../etc/passwd",  # CVE-2023-30172
    "/etc/passwd",
    "C:/Windows/win.ini",  # CVE-2023-3765
    "..\\..\\etc\\passwd",
    "a/../../b",
]


@pytest.mark.parametrize("path", UNSAFE_PATHS)
async def test_unsafe_paths_below_a_run_are_refused(combined: TestClient, path: str) -> None:
    info = await new_run(combined)
    params = {"run_id": info["run_id"], "path": path}
    async with combined.get("/get-artifact", params=params) as response:
        assert response.status == 400
        assert (await response.json())["error_code"] == "INVALID_PARAMETER_VALUE"
    status, body = await call(combined, "GET", "artifacts/list", params)
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_encoded_dots_are_a_literal_name_not_a_parent(combined: TestClient) -> None:
    info = await new_run(combined)
    params = {"run_id": info["run_id"], "path": "%2e%2e/%2e%2e/etc/passwd"}
    async with combined.get("/get-artifact", params=params) as response:
        assert response.status == 404


@pytest.mark.parametrize(
    "location", ["http:///?/../../../../etc/", "http:///#/../../../../etc/", "runs:/x/y"]
)
async def test_experiment_locations_with_tricks_are_refused_at_creation(
    combined: TestClient, location: str
) -> None:
    body = {"name": "trick", "artifact_location": location}
    status, got = await call(combined, "POST", "experiments/create", body)
    assert (status, got["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({}, 400, "INVALID_PARAMETER_VALUE"),
        ({"run_id": "nope"}, 404, "RESOURCE_DOES_NOT_EXIST"),
    ],
)
async def test_validation_of_artifact_reads(
    combined: TestClient, query: dict, status: int, code: str
) -> None:
    got_status, body = await call(combined, "GET", "artifacts/list", query)
    assert (got_status, body["error_code"]) == (status, code)
    async with combined.get("/get-artifact", params={**query, "path": "x"}) as response:
        assert (response.status, (await response.json())["error_code"]) == (status, code)


async def test_get_artifact_needs_a_path(combined: TestClient) -> None:
    info = await new_run(combined)
    async with combined.get("/get-artifact", params={"run_id": info["run_id"]}) as response:
        assert response.status == 400
        assert "'path'" in (await response.json())["message"]


async def test_upload_artifact_from_the_ui(combined: TestClient) -> None:
    info = await new_run(combined)
    url = "/ajax-api/2.0/mlflow/upload-artifact"
    params = {"run_uuid": info["run_id"], "path": "notes/a.txt"}
    async with combined.post(url, params=params, data=b"hi") as response:
        assert response.status == 200, await response.text()
    async with combined.get("/get-artifact", params=params) as response:
        assert await response.read() == b"hi"
    for bad in ({"path": "x"}, {"run_uuid": info["run_id"]}, {**params, "path": "../x"}):
        async with combined.post(url, params=bad, data=b"hi") as response:
            assert response.status == 400
    too_big = io.BytesIO(b"x" * (10 << 20 | 1))
    async with combined.post(url, params=params, data=too_big) as response:
        assert response.status == 400
