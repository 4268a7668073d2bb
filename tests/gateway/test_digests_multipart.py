"""The whole file's digest of a multipart upload through the gateway, on every store: announced on
mpu/create (or given on mpu/complete where the parts can be read before they are joined), checked
against the joined parts before the file appears, kept with it and returned as Repr-Digest; a
wrong one is a 400 BAD_DIGEST that leaves nothing behind, not even the parts."""

import asyncio
import base64
import hashlib
import io
import os
import time
from pathlib import Path
from typing import Any

import fsspec
import pytest
from aiohttp.test_utils import TestClient

from backends.parts import FOLDER
from backends.s3 import S3Backend
from gateway.keys import BACKEND
from gateway.sweep import sweep_once
from tests.conftest import GatewayFactory
from tests.gateway.test_digests import sha256sum
from tests.gateway.test_mounts import mounted, views  # noqa: F401 - fixtures
from tests.stores import ALL_STORES, CloudView, StoreView

MPU = "/api/2.0/mlflow-artifacts/mpu"
A = "/api/2.0/mlflow-artifacts/artifacts"
FOLDER_URL = "0/r1/artifacts/models"
TARGET = f"{FOLDER_URL}/model.bin"
PART = 5 << 20
"""S3's smallest part (but the last)."""
SIZES = [PART, PART, 1234]


class MemoryView(StoreView):
    """A memory:// destination, seen through fsspec's (process-wide) memory filesystem."""

    def __init__(self) -> None:
        super().__init__(f"memory:///whole-{os.getpid()}-{os.urandom(4).hex()}", {})
        self.fs = fsspec.filesystem("memory")
        self.root = self.url.removeprefix("memory://")

    async def get(self, path: str) -> bytes:
        return bytes(self.fs.cat_file(f"{self.root}/{path}"))

    async def files(self) -> list[str]:
        return sorted(p.removeprefix(self.root + "/") for p in self.fs.find(self.root))

    async def put(self, path: str, data: bytes) -> None:
        self.fs.pipe_file(f"{self.root}/{path}", data)


@pytest.fixture(params=[*ALL_STORES, "memory"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store_kind(kind: str) -> str:
    return "local" if kind == "memory" else kind


@pytest.fixture
async def view(store: StoreView, kind: str) -> StoreView:
    return MemoryView() if kind == "memory" else store


@pytest.fixture
async def client(make_gateway: GatewayFactory, view: StoreView) -> TestClient:
    return await make_gateway(artifacts_destination=view.url)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def repr_digest(data: bytes, algorithm: str = "sha-256") -> str:
    name = {"sha-256": "sha256", "sha-512": "sha512", "md5": "md5"}[algorithm]
    return f"{algorithm}=:{b64(hashlib.new(name, data).digest())}:"


async def stored(view: StoreView) -> list[str]:
    """Every file the store holds but the records of finished or aborted uploads (`.done`,
    `.aborted`): any part or hidden staging object left counts."""
    records = (".done", ".aborted")
    return [p for p in await view.files() if not (p.startswith(FOLDER) and p.endswith(records))]


def stages_parts(view: StoreView) -> bool:
    """Local, memory and GCS keep parts as files or objects the gateway can read back."""
    return not view.url.startswith(("s3://", "az://"))


async def upload(
    client: TestClient,
    parts: list[bytes],
    create_headers: dict[str, str] | None = None,
    complete_headers: dict[str, str] | None = None,
    folder: str = FOLDER_URL,
) -> tuple[dict[str, Any], Any]:
    """mpu/create, every part at once (last first), mpu/complete: (create's answer, complete's)."""
    body = {"path": "model.bin", "num_parts": len(parts)}
    made = await client.post(f"{MPU}/create/{folder}", json=body, headers=create_headers)
    assert made.status == 200, await made.text()
    created = await made.json()

    async def put(url: str, data: bytes) -> str:
        async with client.session.put(url, data=io.BytesIO(data)) as response:
            assert response.status == 200, await response.text()
            return response.headers["ETag"]

    urls = [c["url"] for c in created["credentials"]]
    etags = await asyncio.gather(
        *(put(u, d) for u, d in reversed(list(zip(urls, parts, strict=True))))
    )
    listed = [{"part_number": i + 1, "etag": e} for i, e in enumerate(reversed(etags))]
    finish = {"path": "model.bin", "upload_id": created["upload_id"], "parts": listed}
    done = await client.post(f"{MPU}/complete/{folder}", json=finish, headers=complete_headers)
    return {**created, "listed": listed}, done


async def abort(client: TestClient, created: dict[str, Any]) -> int:
    body = {"path": "model.bin", "upload_id": created["upload_id"]}
    return (await client.post(f"{MPU}/abort/{FOLDER_URL}", json=body)).status


async def served_digest(client: TestClient) -> list[str]:
    response = await client.head(f"{A}/{TARGET}")
    assert response.status == 200
    return response.headers.get("Repr-Digest", "").split(", ")


@pytest.mark.parametrize("algorithm", ["sha-256", "sha-512", "md5"])
async def test_an_announced_digest_is_checked_kept_and_served(
    client: TestClient, view: StoreView, algorithm: str, tmp_path: Path
) -> None:
    parts = [os.urandom(size) for size in SIZES]
    whole = b"".join(parts)
    created, done = await upload(client, parts, {"Repr-Digest": repr_digest(whole, algorithm)})
    assert done.status == 200, await done.text()
    assert await view.get(TARGET) == whole
    assert await stored(view) == [TARGET]  # no part, no hidden staging object left
    finish = {"path": "model.bin", "upload_id": created["upload_id"], "parts": created["listed"]}
    again = await client.post(f"{MPU}/complete/{FOLDER_URL}", json=finish)  # a retried complete
    assert again.status == 200, await again.text()
    assert await view.get(TARGET) == whole
    if isinstance(view, MemoryView):
        return  # fsspec's memory filesystem keeps no metadata: checked, not kept
    expected = repr_digest(whole, algorithm)
    assert expected in await served_digest(client)
    if algorithm == "sha-256":
        assert expected == f"sha-256=:{await sha256sum(whole, tmp_path)}:"
    listed = await (await client.get(A, params={"path": FOLDER_URL, "digests": "1"})).json()
    assert expected in listed["files"][0]["digest"]
    if isinstance(view, CloudView) and view.url.startswith("s3://") and algorithm == "sha-256":
        bucket, key = view.full(TARGET).split("/", 1)
        head = await view.fs._call_s3("head_object", Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert f"sha-256=:{head['ChecksumSHA256']}:" == expected  # S3's own field holds it too


async def test_a_wrong_digest_stores_nothing_and_keeps_the_old_file(
    client: TestClient, view: StoreView
) -> None:
    await view.put(TARGET, b"the old file")
    parts = [os.urandom(size) for size in SIZES]
    wrong = {"x-amz-checksum-sha256": b64(hashlib.sha256(b"something else").digest())}
    created, done = await upload(client, parts, wrong)
    assert done.status == 400
    answer = await done.json()
    assert answer["error_code"] == "BAD_DIGEST", answer
    assert "discarded" in answer["message"]
    assert await view.get(TARGET) == b"the old file"
    assert await stored(view) == [TARGET]  # the parts are gone too
    assert await abort(client, created) == 200  # what the mlflow client does after a failure
    listed = created["listed"]
    finish = {"path": "model.bin", "upload_id": created["upload_id"], "parts": listed}
    again = await client.post(f"{MPU}/complete/{FOLDER_URL}", json=finish)
    assert again.status == 404  # it cannot be completed without the check any more


async def test_a_digest_given_on_complete(client: TestClient, view: StoreView) -> None:
    """Checked where the parts can be read before they are joined; elsewhere (S3, Azure) a
    clear 400 asking for it on create, with the upload left as it was."""
    parts = [os.urandom(size) for size in SIZES]
    whole = b"".join(parts)
    created, done = await upload(client, parts, None, {"Repr-Digest": repr_digest(whole)})
    if stages_parts(view):
        assert done.status == 200, await done.text()
        assert await view.get(TARGET) == whole
        if not isinstance(view, MemoryView):
            assert repr_digest(whole) in await served_digest(client)
        wrong = {"Repr-Digest": repr_digest(b"not it")}
        _, done = await upload(client, [b"new" + parts[0], *parts[1:]], None, wrong)
        assert done.status == 400
        assert (await done.json())["error_code"] == "BAD_DIGEST"
        assert await stored(view) == [TARGET]
        assert await view.get(TARGET) == whole
        return
    assert done.status == 400
    answer = await done.json()
    assert answer["error_code"] == "INVALID_PARAMETER_VALUE", answer
    assert "mpu/create" in answer["message"]
    assert not await stored(view)
    assert await abort(client, created) == 200


async def test_claims_that_disagree_or_name_the_json_body(client: TestClient, view: StoreView):
    parts = [os.urandom(1000)]
    announced = {"Repr-Digest": repr_digest(parts[0])}
    _, done = await upload(client, parts, announced, {"Repr-Digest": repr_digest(b"other")})
    assert done.status == 400
    assert (await done.json())["error_code"] == "BAD_DIGEST"
    body = {"path": "model.bin", "num_parts": 1}
    for header in ("Content-Digest", "Content-MD5"):
        value = repr_digest(b"{}") if header == "Content-Digest" else b64(hashlib.md5().digest())
        made = await client.post(f"{MPU}/create/{FOLDER_URL}", json=body, headers={header: value})
        assert made.status == 400
        assert "Repr-Digest" in (await made.json())["message"]
    assert not await stored(view)


async def test_an_empty_file(client: TestClient, view: StoreView) -> None:
    _, done = await upload(client, [b""], {"Repr-Digest": repr_digest(b"")})
    assert done.status == 200, await done.text()
    assert await view.get(TARGET) == b""
    _, done = await upload(client, [b""], {"Repr-Digest": repr_digest(b"x")})
    assert done.status == 400


@pytest.mark.parametrize("kind", [p for p in ALL_STORES if "s3" in str(p)])
async def test_s3_places_a_big_upload_by_ranged_copies(
    client: TestClient, view: StoreView, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above S3's 5 GiB CopyObject limit (lowered here) the checked object is copied in parts."""
    monkeypatch.setattr(S3Backend, "copy_limit", 6 << 20)
    monkeypatch.setattr(S3Backend, "copy_part", 5 << 20)
    parts = [os.urandom(size) for size in SIZES]
    whole = b"".join(parts)
    _, done = await upload(client, parts, {"Repr-Digest": repr_digest(whole)})
    assert done.status == 200, await done.text()
    assert await view.get(TARGET) == whole
    assert repr_digest(whole) in await served_digest(client)
    assert await stored(view) == [TARGET]


@pytest.mark.cloud
@pytest.mark.parametrize("kind", ["local"])
async def test_every_mount_of_a_mount_table_checks_the_whole_file(
    mounted: TestClient,  # noqa: F811 - the fixture
    views: dict[str, StoreView],  # noqa: F811 - the fixture
) -> None:
    """local, memory, S3, Azure and GCS mounts of one gateway at once."""
    for prefix, mount in views.items():
        parts = [os.urandom(PART), os.urandom(1000)]
        whole = b"".join(parts)
        folder = f"{prefix}/run"
        wrong = {"Repr-Digest": repr_digest(whole[1:])}
        _, done = await upload(mounted, parts, wrong, folder=folder)
        assert done.status == 400, prefix
        assert (await mounted.head(f"{A}/{folder}/model.bin")).status == 404, prefix
        _, done = await upload(mounted, parts, {"Repr-Digest": repr_digest(whole)}, folder=folder)
        assert done.status == 200, (prefix, await done.text())
        response = await mounted.get(f"{A}/{folder}/model.bin")
        assert await response.read() == whole, prefix
        if prefix != "mem":  # fsspec's memory filesystem keeps no metadata
            assert repr_digest(whole) in response.headers["Repr-Digest"].split(", "), prefix
            assert await stored(mount) == ["run/model.bin"], prefix


@pytest.mark.parametrize("kind", [p for p in ALL_STORES if "s3" in str(p)])
async def test_the_sweep_removes_a_staged_object_never_placed(
    client: TestClient, view: StoreView
) -> None:
    """A crash between an S3 staged upload's complete and its copy leaves its hidden object:
    the sweep removes it once its upload is older than the TTL (dated by its own name)."""
    old = f"{FOLDER}/v{int(time.time()) - 7200:08x}0123abcd"
    new = f"{FOLDER}/v{int(time.time()):08x}4567cdef"
    for name in (old, new):
        await view.put(name, b"a completed upload left behind")
    backend = client.server.app[BACKEND]
    assert await sweep_once(backend, 3600, "w0", 0.2) == 1
    assert old not in await view.files()
    assert new in await view.files()


@pytest.mark.parametrize("kind", [p for p in ALL_STORES if "s3" in str(p)])
async def test_store_signed_part_urls_refuse_a_whole_file_digest(
    make_gateway: GatewayFactory, view: StoreView
) -> None:
    """With --presigned-urls the parts go straight to S3: artgw could not check the whole."""
    client = await make_gateway(presigned_urls=True)
    body = {"path": "model.bin", "num_parts": 1}
    headers = {"Repr-Digest": repr_digest(b"x")}
    made = await client.post(f"{MPU}/create/{FOLDER_URL}", json=body, headers=headers)
    assert made.status == 400
    assert "--presigned-urls" in (await made.json())["message"]
    made = await client.post(f"{MPU}/create/{FOLDER_URL}", json=body)
    assert made.status == 200  # without one, S3's own part URLs as before
    assert not (await made.json())["credentials"][0]["url"].startswith(str(client.make_url("")))
