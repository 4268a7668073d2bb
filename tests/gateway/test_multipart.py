"""Multipart uploads and ranged downloads through the gateway (issue 15), on every store.

Raw HTTP against the in-process app: the wire of mpu/create, the part PUTs, complete and abort,
what the store holds at each step, and every way a client can get it wrong (table-driven).
"""

import asyncio
import io
import os
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from azure.core.exceptions import ResourceNotFoundError
from yarl import URL

from backends.parts import FOLDER
from gateway.keys import BACKEND
from gateway.sweep import LEASE, sweep_once
from tests.stores import ALL_STORES, CloudView, StoreView

MPU = "/api/2.0/mlflow-artifacts/mpu"
A = "/api/2.0/mlflow-artifacts/artifacts"
FOLDER_URL = "0/r1/artifacts/models"
TARGET = f"{FOLDER_URL}/model.bin"
PART = 5 << 20
"""S3's smallest part (but the last)."""


@pytest.fixture(params=ALL_STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


def payload(sizes: list[int]) -> list[bytes]:
    return [os.urandom(size) for size in sizes]


async def create(client: TestClient, num_parts: int, name: str = "model.bin") -> dict[str, Any]:
    body = {"path": name, "num_parts": num_parts}
    response = await client.post(f"{MPU}/create/{FOLDER_URL}", json=body)
    assert response.status == 200, await response.text()
    return await response.json()


async def put(client: TestClient, url: str, data: bytes) -> tuple[int, str]:
    async with client.session.put(url, data=io.BytesIO(data)) as response:
        return response.status, response.headers.get("ETag", "")


async def send_parts(client: TestClient, created: dict[str, Any], parts: list[bytes]) -> list:
    """All parts at once, last first; the parts list `complete` takes."""
    credentials = created["credentials"]
    sent = await asyncio.gather(
        *(
            put(client, c["url"], data)
            for c, data in reversed(list(zip(credentials, parts, strict=False)))
        )
    )
    assert [status for status, _ in sent] == [200] * len(parts)
    etags = [etag for _, etag in reversed(sent)]
    return [{"part_number": i + 1, "etag": etag} for i, etag in enumerate(etags)]


async def finish(client: TestClient, created: dict[str, Any], parts: list, action="complete"):
    body = {"path": "model.bin", "upload_id": created["upload_id"], "parts": parts}
    return await client.post(f"{MPU}/{action}/{FOLDER_URL}", json=body)


async def pending(store: StoreView) -> list[str]:
    """Unfinished uploads the store holds: staged part folders, or S3 multipart uploads."""
    if isinstance(store, CloudView) and store.url.startswith("s3://"):
        bucket = store.root.split("/", 1)[0]
        listed = await store.fs._call_s3("list_multipart_uploads", Bucket=bucket)
        return [upload["Key"] for upload in listed.get("Uploads", [])]
    if isinstance(store, CloudView) and store.url.startswith("az://"):
        container, _, prefix = store.root.partition("/")
        blob = store.fs.service_client.get_blob_client(container, f"{prefix}/{TARGET}")
        try:
            _, staged = await blob.get_block_list("uncommitted")
        except ResourceNotFoundError:
            return []
        return [block.id for block in staged]
    try:
        names = await store.names(FOLDER)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [name for name in names if not name.endswith(".done") and name != "sweep.lease"]


async def test_parts_in_any_order_become_the_file_only_on_complete(
    gateway: TestClient, store: StoreView
) -> None:
    info = await (await gateway.get("/api/3.0/mlflow/server-info")).json()
    assert info["multipart_uploads_enabled"] is True
    parts = payload([PART, PART, 1234])
    created = await create(gateway, 3)
    assert [c["part_number"] for c in created["credentials"]] == [1, 2, 3]
    assert created["credentials"][0]["url"].startswith(f"http://127.0.0.1:{gateway.port}{MPU}/")
    listed = await send_parts(gateway, created, parts)
    assert not await store.exists(TARGET)
    assert (await gateway.get(f"{A}/{TARGET}")).status == 404
    assert await (await gateway.get(A, params={"path": FOLDER_URL})).json() == {}
    assert await pending(store)

    response = await finish(gateway, created, listed)
    assert response.status == 200, await response.text()
    assert await store.get(TARGET) == b"".join(parts)
    assert await pending(store) == []
    again = await finish(gateway, created, listed)  # a retried complete
    assert again.status == 200, await again.text()
    assert await store.get(TARGET) == b"".join(parts)


async def test_abort_leaves_nothing(gateway: TestClient, store: StoreView) -> None:
    created = await create(gateway, 3)
    await send_parts(gateway, created, payload([PART, 10]))  # 2 of 3 sent
    response = await finish(gateway, created, [], action="abort")
    assert response.status == 200, await response.text()
    assert await pending(store) == []
    assert not await store.exists(TARGET)
    again = await finish(gateway, created, [], action="abort")
    assert again.status == 200


async def test_a_resent_part_counts_with_the_etag_listed(
    gateway: TestClient, store: StoreView
) -> None:
    created = await create(gateway, 2)
    first, second = payload([PART, 100])
    url = created["credentials"][1]["url"]
    _, stale = await put(gateway, url, os.urandom(100))
    listed = await send_parts(gateway, created, [first, second])
    assert listed[1]["etag"] != stale
    assert (await finish(gateway, created, listed)).status == 200
    assert await store.get(TARGET) == first + second


async def test_two_uploads_to_one_path_one_whole_content_wins(
    gateway: TestClient, store: StoreView
) -> None:
    contents = [payload([PART, 50]), payload([PART, 60])]
    uploads = [await create(gateway, 2), await create(gateway, 2)]
    listed = await asyncio.gather(
        *(send_parts(gateway, u, c) for u, c in zip(uploads, contents, strict=True))
    )
    answers = await asyncio.gather(
        *(finish(gateway, u, p) for u, p in zip(uploads, listed, strict=True))
    )
    assert 200 in [answer.status for answer in answers]
    assert all(answer.status in (200, 400) for answer in answers)  # Azure: the 2nd finds no blocks
    assert await store.get(TARGET) in [b"".join(c) for c in contents]


async def test_the_sweep_removes_abandoned_uploads_one_worker_at_a_time(
    gateway: TestClient, store: StoreView
) -> None:
    created = await create(gateway, 2)
    await send_parts(gateway, created, payload([100]))
    backend = gateway.server.app[BACKEND]
    runs = await asyncio.gather(*(sweep_once(backend, 3600, f"w{i}", 0.2) for i in range(3)))
    assert runs.count(None) == 2  # one worker held the lease
    assert sorted(runs, key=str) == [0, None, None]  # begun just now: nothing is abandoned
    assert await pending(store)
    swept = None
    for _ in range(10):  # once the lease lapses (a read racing a write counts as held: retry)
        await asyncio.sleep(0.3)
        swept = await sweep_once(backend, -5, "w0", 0.2)
        if swept is not None:
            break
    assert swept == (0 if store.url.startswith("az://") else 1)
    if not store.url.startswith("az://"):  # Azure keeps staged blocks of a blob (azure.py)
        assert await pending(store) == []
    assert await store.exists(LEASE)


# -- bad input: each a 4xx JSON error, and the target keeps its old content ---------------------


def tampered(token: str) -> str:
    head, _, mac = token.partition(".")
    return f"{head[:-2]}{'A' if head[-2] != 'A' else 'B'}{head[-1]}.{mac}"


def part_url(created: dict[str, Any], number: int = 1, **query: str) -> str:
    url = URL(created["credentials"][0]["url"])
    return str(url.update_query(part_number=str(number), **query))


BAD_PARTS = [
    # (description, make the URL, body size) -> status, error_code
    ("part number 0", lambda c, o: part_url(c, 0), 10, 400, "INVALID_PARAMETER_VALUE"),
    ("part number past num_parts", lambda c, o: part_url(c, 3), 10, 400, "INVALID_PARAMETER_VALUE"),
    (
        "part number not a number",
        lambda c, o: part_url(c, upload_id=c["upload_id"]).replace(
            "part_number=1", "part_number=x"
        ),
        10,
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    ("part above --max-part-size", lambda c, o: part_url(c), 4096, 413, "INVALID_PARAMETER_VALUE"),
    (
        "no upload id",
        lambda c, o: part_url(c).split("upload_id")[0],
        10,
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    (
        "tampered upload id",
        lambda c, o: part_url(c, upload_id=tampered(c["upload_id"])),
        10,
        403,
        "PERMISSION_DENIED",
    ),
    (
        "upload id of another path",
        lambda c, o: part_url(c, upload_id=o["upload_id"]),
        10,
        403,
        "PERMISSION_DENIED",
    ),
    (
        "upload id with a forged signature",
        lambda c, o: part_url(
            c, upload_id=c["upload_id"].split(".")[0] + ".AAAAAAAAAAAAAAAAAAAAAA"
        ),
        10,
        403,
        "PERMISSION_DENIED",
    ),
]


@pytest.mark.parametrize(("case", "url_of", "size", "status", "code"), BAD_PARTS)
async def test_bad_part_puts(
    make_gateway, store: StoreView, case, url_of, size, status, code
) -> None:
    gateway = await make_gateway(max_part_size=1024)
    await store.put(TARGET, b"old")
    created = await create(gateway, 2)
    other = await create(gateway, 2, name="other.bin")
    async with gateway.session.put(
        url_of(created, other), data=io.BytesIO(os.urandom(size))
    ) as response:
        assert response.status == status, await response.text()
        error = await response.json()
    assert error["error_code"] == code and error["message"]
    assert await store.get(TARGET) == b"old"


def parts_missing(listed: list) -> list:
    return listed[:1]


BAD_COMPLETES = [
    # (description, change the upload id, change the parts list) -> status, error_code
    ("a part missing", lambda u: u, parts_missing, 400, "INVALID_PARAMETER_VALUE"),
    ("a part twice", lambda u: u, lambda p: [p[0], p[0], p[1]], 400, "INVALID_PARAMETER_VALUE"),
    (
        "a part number past num_parts",
        lambda u: u,
        lambda p: [*p, {"part_number": 3, "etag": p[0]["etag"]}],
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    (
        "a wrong ETag",
        lambda u: u,
        lambda p: [p[0], {**p[1], "etag": '"0123456789abcdef"'}],
        400,
        "INVALID_PARAMETER_VALUE",
    ),
    ("a tampered upload id", tampered, lambda p: p, 403, "PERMISSION_DENIED"),
    ("garbage for an upload id", lambda u: "nonsense", lambda p: p, 403, "PERMISSION_DENIED"),
    ("no upload id", lambda u: None, lambda p: p, 400, "INVALID_PARAMETER_VALUE"),
]


@pytest.mark.parametrize(("case", "upload_of", "parts_of", "status", "code"), BAD_COMPLETES)
async def test_bad_completes(
    gateway: TestClient, store: StoreView, case, upload_of, parts_of, status, code
) -> None:
    await store.put(TARGET, b"old")
    created = await create(gateway, 2)
    listed = await send_parts(gateway, created, payload([PART, 10]))
    changed = {**created, "upload_id": upload_of(created["upload_id"])}
    response = await finish(gateway, changed, parts_of(listed))
    assert response.status == status, await response.text()
    error = await response.json()
    assert error["error_code"] == code and error["message"]
    assert await store.get(TARGET) == b"old"
    assert (await finish(gateway, created, listed)).status == 200  # the real one still works


async def test_after_abort_the_upload_id_is_unknown(gateway: TestClient, store: StoreView) -> None:
    await store.put(TARGET, b"old")
    created = await create(gateway, 1)
    listed = await send_parts(gateway, created, payload([10]))
    assert (await finish(gateway, created, [], action="abort")).status == 200
    response = await finish(gateway, created, listed)
    assert response.status == 404
    assert (await response.json())["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert await store.get(TARGET) == b"old"


@pytest.mark.parametrize("store_kind", ["local"])
async def test_an_expired_upload_id_is_refused(make_gateway, store: StoreView) -> None:
    gateway = await make_gateway(multipart_ttl=-1)
    await store.put(TARGET, b"old")
    created = await create(gateway, 1)
    status, _ = await put(gateway, created["credentials"][0]["url"], b"new")
    assert status == 403
    response = await finish(gateway, created, [{"part_number": 1, "etag": "x"}])
    assert response.status == 403
    assert "expired" in (await response.json())["message"]
    assert (await finish(gateway, created, [], action="abort")).status == 200
    assert await store.get(TARGET) == b"old"


@pytest.mark.parametrize("store_kind", ["local"])
async def test_multipart_off_answers_501(make_gateway) -> None:
    gateway = await make_gateway(multipart=False)
    response = await gateway.post(f"{MPU}/create/{FOLDER_URL}", json={"path": "a", "num_parts": 1})
    assert response.status == 501
    assert (await response.json())["message"].startswith("Multipart upload is not supported")
    info = await (await gateway.get("/api/3.0/mlflow/server-info")).json()
    assert info["multipart_uploads_enabled"] is False


# -- downloads ----------------------------------------------------------------------------------


async def test_ranged_downloads_through_a_signed_url(make_gateway, store: StoreView) -> None:
    gateway = await make_gateway(multipart_downloads=True)
    info = await (await gateway.get("/api/3.0/mlflow/server-info")).json()
    assert info["multipart_downloads_enabled"] is True
    data = os.urandom(900_000)  # under aiohttp's 1 MiB warning when adlfs seeds it
    await store.put(TARGET, data)
    answer = await (await gateway.get(f"/api/2.0/mlflow-artifacts/presigned/{TARGET}")).json()
    assert answer["file_size"] == len(data) and answer["headers"] == {}
    async with gateway.session.get(answer["url"], headers={"Range": "bytes=1000-800999"}) as got:
        assert got.status == 206
        assert await got.read() == data[1000:801000]
    url = URL(answer["url"])
    other = await (await gateway.get(f"/api/2.0/mlflow-artifacts/presigned/{A[:0]}x")).json()
    assert other["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    for bad in (
        url.update_query(token=tampered(url.query["token"])),
        url.with_path(url.path.replace("model.bin", "other.bin")),
        url.with_query({}),
    ):
        async with gateway.session.get(bad) as refused:
            assert refused.status in (400, 403)
            assert (await refused.json())["error_code"] in (
                "PERMISSION_DENIED",
                "INVALID_PARAMETER_VALUE",
            )


@pytest.mark.parametrize("store_kind", ["local"])
async def test_downloads_are_off_by_default(gateway: TestClient, store: StoreView) -> None:
    await store.put(TARGET, b"x")
    response = await gateway.get(f"/api/2.0/mlflow-artifacts/presigned/{TARGET}")
    assert response.status == 501


# -- with authentication: the token carries its creator's permission --------------------------


@pytest.mark.parametrize("store_kind", ["local"])
async def test_part_urls_carry_the_creators_permission(make_gateway, tmp_path, store) -> None:
    from tests.auth_users import OTHER, WRITER, UsersFile, basic

    users = UsersFile(tmp_path / "users.toml")
    users.write()
    gateway = await make_gateway(auth_file=str(users.path), multipart_downloads=True)
    body = {"path": "model.bin", "num_parts": 1}
    refused = await gateway.post(f"{MPU}/create/team/models", json=body, headers=basic(OTHER))
    assert refused.status == 403  # no write on team/: no upload, no part URLs
    response = await gateway.post(f"{MPU}/create/team/models", json=body, headers=basic(WRITER))
    assert response.status == 200, await response.text()
    created = await response.json()
    status, etag = await put(gateway, created["credentials"][0]["url"], b"data")  # no credentials
    assert status == 200
    done = {**body, "upload_id": created["upload_id"], "parts": [{"part_number": 1, "etag": etag}]}
    anonymous = await gateway.post(f"{MPU}/complete/team/models", json=done)
    assert anonymous.status == 401
    by_writer = await gateway.post(f"{MPU}/complete/team/models", json=done, headers=basic(WRITER))
    assert by_writer.status == 200, await by_writer.text()
    assert await store.get("team/models/model.bin") == b"data"
    other_path = part_url(created).replace("team/models/model.bin", "team/models/evil.bin")
    status, _ = await put(gateway, other_path, b"x")
    assert status == 403
    link = await gateway.get(
        "/api/2.0/mlflow-artifacts/presigned/team/models/model.bin", headers=basic(WRITER)
    )
    async with gateway.session.get((await link.json())["url"]) as got:  # no credentials
        assert got.status == 200 and await got.read() == b"data"


@pytest.mark.parametrize("store_kind", ["local"])
async def test_local_parts_are_written_in_place_and_renamed(gateway: TestClient, store) -> None:
    """Equal parts (but the last) land in one file at their offsets: complete renames it."""
    parts = payload([1 << 20, 1 << 20, 777])
    created = await create(gateway, 3)
    listed = []
    for credential, data in zip(created["credentials"], parts, strict=True):  # in order
        status, etag = await put(gateway, credential["url"], data)
        assert status == 200
        listed.append({"part_number": credential["part_number"], "etag": etag})
    (folder,) = [p for p in (store.root / FOLDER).iterdir() if p.is_dir()]
    inode = (folder / "data").stat().st_ino
    assert sorted(p.name for p in folder.iterdir()) == [
        "00001.slot", "00002.slot", "00003.slot", "data", "size"
    ]  # fmt: skip
    assert (await finish(gateway, created, listed)).status == 200
    assert (store.root / TARGET).stat().st_ino == inode
    assert await store.get(TARGET) == b"".join(parts)


@pytest.mark.parametrize("store_kind", ["local"])
async def test_local_parts_out_of_layout_are_copied(gateway: TestClient, store) -> None:
    """A resent part keeps its own file; the ETag listed picks the bytes."""
    first, second = payload([1 << 20, 1 << 20])
    created = await create(gateway, 2)
    urls = [c["url"] for c in created["credentials"]]
    _, etag1 = await put(gateway, urls[0], first)
    _, stale = await put(gateway, urls[1], os.urandom(1 << 20))
    _, etag2 = await put(gateway, urls[1], second)  # its slot is taken: a part file
    listed = [{"part_number": 1, "etag": etag1}, {"part_number": 2, "etag": etag2}]
    assert (await finish(gateway, created, listed)).status == 200
    assert await store.get(TARGET) == first + second
    assert stale != etag2
