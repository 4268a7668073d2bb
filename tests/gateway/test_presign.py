"""Presigned multipart uploads and downloads (API.md 1.6): the real mlflow client against S3."""

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from tests.stores import CloudView, cloud_destination

A = "/api/2.0/mlflow-artifacts"
pytestmark = pytest.mark.cloud

CLIENT = textwrap.dedent(
    """
    import sys
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(sys.argv[1])
    repo.log_artifact(sys.argv[2], "models")
    print(repo.download_artifacts("models/model.bin", sys.argv[3]))
    """
)


@pytest.fixture
def s3_gateway(request, artgw):
    server, url, options = cloud_destination(request, "s3")
    env = {**server.env, "AWS_EC2_METADATA_DISABLED": "true"}
    args = ["--artifacts-only", "--workers", "1", "--log-level", "debug", "--presigned-urls"]
    gateway = artgw(*args, "--artifacts-destination", url, env=env)
    return gateway, url, options


def test_server_info_advertises_presigned_transfers(s3_gateway) -> None:
    gateway, _, _ = s3_gateway
    info = requests.get(f"{gateway.url}/api/3.0/mlflow/server-info", timeout=10).json()
    assert info["multipart_uploads_enabled"] is True
    assert info["multipart_downloads_enabled"] is True


async def test_mlflow_client_uploads_and_downloads_through_the_store(
    s3_gateway, tmp_path: Path
) -> None:
    gateway, url, options = s3_gateway
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(12 << 20))  # 3 parts of 5 MiB (S3's minimum part size)
    env = {
        **os.environ,
        "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(1 << 20),
        "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(5 << 20),
        "MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE": str(5 << 20),
        "MLFLOW_TRACKING_URI": gateway.url,  # http: the scheme mlflow-artifacts:// resolves to
    }
    repo_uri = f"mlflow-artifacts://127.0.0.1:{gateway.port}/0/r1/artifacts"
    (tmp_path / "back").mkdir()
    out = subprocess.run(
        [sys.executable, "-c", CLIENT, repo_uri, str(source), str(tmp_path / "back")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    downloaded = Path(out.stdout.strip().splitlines()[-1])
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert hashlib.sha256(downloaded.read_bytes()).hexdigest() == digest
    gateway.stop()
    log = gateway.log()
    assert f"POST {A}/mpu/create/0/r1/artifacts/models 200" in log
    assert f"POST {A}/mpu/complete/0/r1/artifacts/models 200" in log
    assert f"GET {A}/presigned/0/r1/artifacts/models/model.bin 200" in log
    assert "PUT /api/2.0/mlflow-artifacts/artifacts/" not in log  # the bytes went to S3
    assert "GET /api/2.0/mlflow-artifacts/artifacts/0" not in log
    view = CloudView(url, options)
    try:
        assert await view.get("0/r1/artifacts/models/model.bin") == source.read_bytes()
    finally:
        await view.close()
    assert await pending_uploads(url, options) == []


def mpu(gateway, action: str, folder: str, body: object, **kwargs) -> requests.Response:
    return requests.post(f"{gateway.url}{A}/mpu/{action}/{folder}", json=body, timeout=30, **kwargs)


async def test_abort_leaves_no_pending_upload(s3_gateway) -> None:
    gateway, url, options = s3_gateway
    created = mpu(gateway, "create", "0/r/artifacts", {"path": "C:\\tmp\\m.bin", "num_parts": 2})
    assert created.status_code == 200, created.text
    body = created.json()
    assert [c["part_number"] for c in body["credentials"]] == [1, 2]
    assert "/some/prefix/0/r/artifacts/m.bin?" in body["credentials"][0]["url"]
    part = requests.put(body["credentials"][0]["url"], data=b"x" * 10, timeout=30)
    assert part.status_code == 200
    aborted = mpu(
        gateway, "abort", "0/r/artifacts", {"path": "m.bin", "upload_id": body["upload_id"]}
    )
    assert (aborted.status_code, aborted.json()) == (200, {})
    assert await pending_uploads(url, options) == []


async def pending_uploads(url: str, options: dict) -> list:
    view = CloudView(url, options)
    try:
        bucket = url.split("://", 1)[1].split("/", 1)[0]
        listed = await view.fs._call_s3("list_multipart_uploads", Bucket=bucket)
        return listed.get("Uploads", [])
    finally:
        await view.close()


INVALID = "INVALID_PARAMETER_VALUE"
BAD_REQUESTS = [
    ("create", "d", {"path": "f.bin", "num_parts": "many"}, INVALID),
    ("create", "d", {"path": "f.bin", "num_parts": 0}, INVALID),
    ("create", "d", {"path": "..", "num_parts": 1}, INVALID),
    ("create", "d", {"path": "", "num_parts": 1}, INVALID),
    ("create", "d", {"path": ".artgw.upload.x", "num_parts": 1}, INVALID),
    ("create", "%2e%2e", {"path": "f.bin", "num_parts": 1}, INVALID),
    ("create", "d%00", {"path": "f.bin", "num_parts": 1}, INVALID),
    ("create", "d", {"num_parts": 1}, INVALID),
    ("create", "d", ["not", "an", "object"], "BAD_REQUEST"),
    ("complete", "d", {"path": "f.bin", "upload_id": "u", "parts": "x"}, INVALID),
    ("complete", "d", {"path": "f.bin", "upload_id": "u", "parts": [{"etag": "e"}]}, INVALID),
]


@pytest.mark.parametrize(("action", "folder", "body", "code"), BAD_REQUESTS)
def test_bad_requests_are_client_errors(s3_gateway, action, folder, body, code) -> None:
    gateway, _, _ = s3_gateway
    response = mpu(gateway, action, folder, body)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == code


def test_json_content_type_is_required(s3_gateway) -> None:
    gateway, _, _ = s3_gateway
    response = requests.post(
        f"{gateway.url}{A}/mpu/create/d", data='{"path": "f", "num_parts": 1}', timeout=30
    )
    assert response.status_code == 400
    assert "Content-Type must be one of ['application/json']" in response.json()["message"]


def test_presigned_download_of_missing_file_is_404(s3_gateway) -> None:
    gateway, _, _ = s3_gateway
    response = requests.get(f"{gateway.url}{A}/presigned/nope/missing.bin", timeout=30)
    assert response.status_code == 404


async def test_on_a_store_that_cannot_sign_parts_go_through_the_gateway(make_gateway) -> None:
    gateway = await make_gateway(presigned_urls=True)  # local destination: cannot sign
    info = await (await gateway.get("/api/3.0/mlflow/server-info")).json()
    assert (info["multipart_uploads_enabled"], info["multipart_downloads_enabled"]) == (
        True,
        False,
    )
    response = await gateway.post(f"{A}/mpu/create/d", json={"path": "f", "num_parts": 1})
    assert response.status == 200
    url = (await response.json())["credentials"][0]["url"]
    assert url.startswith(f"http://127.0.0.1:{gateway.port}{A}/mpu/part/d/f?")
    response = await gateway.get(f"{A}/presigned/d/f")
    assert response.status == 501
    assert (await response.json())["message"].startswith("Multipart download is not supported")
