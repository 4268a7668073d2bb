"""Gateway part uploads and signed downloads under --auth-file: mpu/create needs write on the
file; the part PUTs and signed GETs carry no credentials (as to a store's presigned URL), only
the token, which is re-checked against the rules in force each time it is used."""

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.auth import AUTH_STATE
from tests.auth_users import ADMIN, READER, WRITER, UsersFile, basic
from tests.conftest import GatewayFactory

MPU = "/api/2.0/mlflow-artifacts/mpu"


@pytest.fixture
def users(tmp_path: Path) -> UsersFile:
    users = UsersFile(tmp_path / "users.toml")
    users.write()
    return users


@pytest.fixture
async def client(make_gateway: GatewayFactory, users: UsersFile) -> TestClient:
    return await make_gateway(auth_file=str(users.path), multipart_downloads=True)


async def create(client: TestClient, who, folder: str = "team") -> dict:  # type: ignore[no-untyped-def]
    body = {"path": "big.bin", "num_parts": 2}
    async with client.post(f"{MPU}/create/{folder}", json=body, headers=basic(who)) as r:
        assert r.status == 200, await r.text()
        return await r.json()


def local(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


async def test_parts_go_in_with_the_token_alone(client: TestClient, store) -> None:
    upload = await create(client, WRITER)
    etags = []
    for credential, data in zip(upload["credentials"], (b"a" * 10, b"b" * 5), strict=True):
        async with client.put(local(credential["url"]), data=data) as r:  # no credentials
            assert r.status == 200, await r.text()
            etags.append(r.headers["ETag"])
    parts = [{"part_number": n, "etag": e} for n, e in enumerate(etags, 1)]
    body = {"path": "big.bin", "upload_id": upload["upload_id"], "parts": parts}
    async with client.post(f"{MPU}/complete/team", json=body, headers=basic(READER)) as r:
        assert r.status == 403  # completing is writing
    async with client.post(f"{MPU}/complete/team", json=body, headers=basic(WRITER)) as r:
        assert r.status == 200, await r.text()
    assert await store.get("team/big.bin") == b"a" * 10 + b"b" * 5


async def test_a_revoked_grant_stops_the_parts(client: TestClient, users: UsersFile) -> None:
    upload = await create(client, WRITER)
    first = local(upload["credentials"][0]["url"])
    users.grants = users.grants.replace('artifacts = ["team"]', 'artifacts = ["elsewhere"]')
    users.write()
    state = client.app[AUTH_STATE]
    assert await state.reload("test")  # type: ignore[attr-defined]
    async with client.put(first, data=b"a") as r:
        assert r.status == 403
        assert "'write' permission on artifact path 'team/big.bin' any more" in await r.text()


async def test_a_token_for_one_path_opens_no_other(client: TestClient) -> None:
    upload = await create(client, WRITER)
    url = local(upload["credentials"][0]["url"]).replace("/team/big.bin", "/team/other.bin")
    async with client.put(url, data=b"a") as r:
        assert r.status == 403


async def test_signed_downloads_are_checked_like_reads(
    client: TestClient, users: UsersFile
) -> None:
    async with client.put(
        "/api/2.0/mlflow-artifacts/artifacts/team/f.txt", data=b"f", headers=basic(ADMIN)
    ) as r:
        assert r.status == 200
    async with client.get(
        "/api/2.0/mlflow-artifacts/presigned/team/f.txt", headers=basic(READER)
    ) as r:
        assert r.status == 200, await r.text()
        url = local((await r.json())["url"])
    async with client.get(url) as r:
        assert r.status == 200 and await r.read() == b"f"
    users.people = [p for p in users.people if p.name != "reader"]
    users.write()
    state = client.app[AUTH_STATE]
    assert await state.reload("test")  # type: ignore[attr-defined]
    async with client.get(url) as r:
        assert r.status == 403
        assert "no longer exists" in await r.text()


def test_the_access_log_never_shows_a_token(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from gateway.access_log import AccessLogger

    logger = AccessLogger(logging.getLogger("artgw.test-access"), "")
    path = "/api/2.0/mlflow-artifacts/mpu/part/a.bin?upload_id=SECRET1&part_number=1"
    with caplog.at_level(logging.DEBUG, logger="artgw.test-access"):
        logger.log(make_mocked_request("PUT", path), web.Response(), 0.001)
        logger.log(make_mocked_request("GET", "/x/signed/a.bin?token=SECRET2"), web.Response(), 0)
    assert "SECRET" not in caplog.text
    assert "a.bin?upload_id=***&part_number=1 200" in caplog.text
    assert "a.bin?token=*** 200" in caplog.text
