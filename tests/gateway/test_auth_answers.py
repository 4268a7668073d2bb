"""What a refused or throttled caller gets, and the switches around authentication: 401 with a
challenge and MLflow's JSON, 403 naming the permission, 429 with Retry-After, equal timing for
unknown users and wrong passwords, --read-only, --max-upload-size, CORS, and reloading the file."""

import asyncio
import os
import signal
import statistics
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.auth import reload
from tests.auth_users import ADMIN, READER, WRITER, Person, UsersFile, basic, bearer
from tests.conftest import ARTIFACTS, GatewayFactory


@pytest.fixture
def users(tmp_path: Path) -> UsersFile:
    users = UsersFile(tmp_path / "users.toml")
    users.write()
    return users


@pytest.fixture
async def client(make_gateway: GatewayFactory, users: UsersFile) -> TestClient:
    return await make_gateway(auth_file=str(users.path))


async def test_no_credentials_get_a_basic_challenge_and_mlflow_json(client: TestClient) -> None:
    async with client.get(f"{ARTIFACTS}/team/f.txt") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Basic realm="artgw", charset="UTF-8"'
        body = await response.json()
    assert body["error_code"] == "UNAUTHENTICATED"
    assert "'read' permission" in body["message"]


async def test_a_browser_gets_the_challenge_with_an_html_page(client: TestClient) -> None:
    async with client.get(f"{ARTIFACTS}/team/", headers={"Accept": "text/html"}) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
        assert response.content_type == "text/html"


@pytest.mark.parametrize(
    "headers",
    [
        basic(WRITER, "wrong-password"),
        basic(Person("nobody", "whatever-password")),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + "bm9jb2xvbg=="},  # "nocolon"
        {"Authorization": "Digest username=writer"},
        bearer("artgw_not-a-token"),
    ],
    ids=["wrong password", "unknown user", "bad base64", "no colon", "other scheme", "bad token"],
)
async def test_bad_credentials_all_get_the_same_401(client: TestClient, headers: dict) -> None:
    async with client.get("/api/2.0/mlflow-artifacts/artifacts?path=team", headers=headers) as r:
        assert r.status == 401
        assert await r.json() == {"error_code": "UNAUTHENTICATED", "message": "Invalid credentials"}
        scheme = "Bearer" if headers["Authorization"].startswith("Bearer") else "Basic"
        assert r.headers["WWW-Authenticate"].startswith(scheme + ' realm="artgw"')


async def test_403_names_the_permission_not_the_content(client: TestClient) -> None:
    async with client.put(f"{ARTIFACTS}/team/f.txt", data=b"secret", headers=basic(ADMIN)) as r:
        assert r.status == 200
    async with client.put(f"{ARTIFACTS}/team/f.txt", data=b"x", headers=basic(READER)) as r:
        assert r.status == 403
        body = await r.json()
    assert body == {
        "error_code": "PERMISSION_DENIED",
        "message": "Permission denied: user 'reader' does not have 'write' permission on "
        "artifact path 'team/f.txt'.",
    }


async def test_tokens_sign_in_as_their_user(client: TestClient) -> None:
    async with client.put(f"{ARTIFACTS}/team/t.txt", data=b"t", headers=bearer(WRITER.token)) as r:
        assert r.status == 200
    async with client.delete(f"{ARTIFACTS}/team/t.txt", headers=bearer(WRITER.token)) as r:
        assert r.status == 403


async def test_anonymous_access_only_where_the_file_grants_it(
    make_gateway: GatewayFactory, users: UsersFile
) -> None:
    users.extra = '\n[[grants]]\nto = ["anonymous"]\npermission = "read"\nartifacts = ["public"]\n'
    users.write()
    client = await make_gateway(auth_file=str(users.path))
    await client.put(f"{ARTIFACTS}/public/p.txt", data=b"p", headers=basic(ADMIN))
    async with client.get(f"{ARTIFACTS}/public/p.txt") as r:
        assert r.status == 200 and await r.read() == b"p"
    async with client.put(f"{ARTIFACTS}/public/p.txt", data=b"x") as r:
        assert r.status == 401
    async with client.get(f"{ARTIFACTS}/team/f.txt") as r:
        assert r.status == 401


async def test_health_version_and_server_info_stay_open(client: TestClient) -> None:
    for path in ("/health", "/version", "/api/3.0/mlflow/server-info"):
        async with client.get(path) as r:
            assert r.status == 200, path


async def test_repeated_failures_are_throttled_per_address(
    make_gateway: GatewayFactory, users: UsersFile
) -> None:
    users.extra = "\n[throttle]\nfailures = 3\nwindow_seconds = 60\n"
    users.write()
    client = await make_gateway(auth_file=str(users.path))
    url = f"{ARTIFACTS}?path=team"
    for _ in range(3):
        async with client.get(url, headers=basic(WRITER, "guess-password")) as r:
            assert r.status == 401
    for headers in (basic(WRITER, "guess-password"), basic(WRITER)):  # even the right one now
        async with client.get(url, headers=headers) as r:
            assert r.status == 429
            assert 1 <= int(r.headers["Retry-After"]) <= 61
            assert (await r.json())["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    async with client.get("/health") as r:
        assert r.status == 200


async def test_unknown_user_and_wrong_password_take_the_same_time(
    make_gateway: GatewayFactory, users: UsersFile
) -> None:
    """Medians within 20 %. The hash cost (about 10 ms here) dominates the request, so without
    the dummy hash an unknown user would answer several times faster."""
    users.hashing = {"time_cost": 2, "memory_cost": 8192, "parallelism": 1}
    users.extra = "\n[throttle]\nfailures = 100000\n"
    users.write()
    client = await make_gateway(auth_file=str(users.path))

    async def timed(headers: dict) -> float:
        start = time.perf_counter()
        async with client.get(f"{ARTIFACTS}?path=team", headers=headers) as r:
            assert r.status == 401
        return time.perf_counter() - start

    unknown, wrong = [], []
    for i in range(25):
        unknown.append(await timed(basic(Person(f"nobody{i}", "x"), f"guess-{i}")))
        wrong.append(await timed(basic(WRITER, f"guess-{i}")))
    a, b = statistics.median(unknown), statistics.median(wrong)
    assert abs(a - b) / max(a, b) < 0.2, (a, b)
    assert min(a, b) > 0.003  # the hash really ran


async def test_read_only_refuses_writes_and_deletes_to_everyone(
    make_gateway: GatewayFactory, users: UsersFile
) -> None:
    client = await make_gateway(read_only=True)  # no users file: open, but read-only
    async with client.put(f"{ARTIFACTS}/a.txt", data=b"a") as r:
        assert r.status == 403
        assert "read-only" in (await r.json())["message"]
    async with client.delete(f"{ARTIFACTS}/a.txt") as r:
        assert r.status == 403
    async with client.get(f"{ARTIFACTS}?path=") as r:
        assert r.status == 200
    client = await make_gateway(read_only=True, auth_file=str(users.path))
    async with client.put(f"{ARTIFACTS}/team/a.txt", data=b"a", headers=basic(ADMIN)) as r:
        assert r.status == 403


async def test_max_upload_size_answers_413_before_reading(
    make_gateway: GatewayFactory, store, tmp_path: Path
) -> None:
    client = await make_gateway(max_upload_size=1000)
    async with client.put(f"{ARTIFACTS}/big.bin", data=b"x" * 1001) as r:
        assert r.status == 413
        body = await r.json()
    assert body["error_code"] == "BAD_REQUEST" and "1001 bytes" in body["message"]
    async with client.put(f"{ARTIFACTS}/ok.bin", data=b"x" * 1000) as r:
        assert r.status == 200

    async def chunks():
        yield b"x" * 10

    async with client.put(f"{ARTIFACTS}/chunked.bin", data=chunks()) as r:
        assert r.status == 411
    assert await store.get("ok.bin") == b"x" * 1000
    assert not await store.exists("big.bin") and not await store.exists("chunked.bin")


async def test_cors_is_off_by_default_and_an_allow_list_when_set(
    make_gateway: GatewayFactory, users: UsersFile
) -> None:
    origin = {"Origin": "https://ui.example"}
    client = await make_gateway()
    async with client.get("/health", headers=origin) as r:
        assert "Access-Control-Allow-Origin" not in r.headers
    client = await make_gateway(
        cors_origins="https://ui.example, https://b.example", auth_file=str(users.path)
    )
    preflight = {
        **origin,
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization",
    }
    async with client.options(f"{ARTIFACTS}/team/x", headers=preflight) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == "https://ui.example"
        assert "PUT" in r.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    async with client.get(f"{ARTIFACTS}?path=team", headers={**origin, **basic(READER)}) as r:
        assert r.status == 200
        assert r.headers["Access-Control-Allow-Origin"] == "https://ui.example"
        assert r.headers["Access-Control-Allow-Credentials"] == "true"
    async with client.get(f"{ARTIFACTS}?path=team", headers=origin) as r:
        assert r.status == 401  # CORS never replaces authentication
        assert r.headers["Access-Control-Allow-Origin"] == "https://ui.example"
    async with client.get("/health", headers={"Origin": "https://evil.example"}) as r:
        assert "Access-Control-Allow-Origin" not in r.headers


# -- reloading the users file ---------------------------------------------------------------------


async def eventually(check, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "not reloaded in time"
        await asyncio.sleep(0.05)


async def status_of(client: TestClient, headers: dict) -> int:
    async with client.get(f"{ARTIFACTS}?path=team", headers=headers) as r:
        return r.status


@pytest.fixture
def fast_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reload, "WATCH_SECONDS", 0.1)


async def test_a_changed_file_is_picked_up_and_a_broken_one_keeps_the_rules(
    make_gateway: GatewayFactory,
    users: UsersFile,
    fast_watch: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await make_gateway(auth_file=str(users.path))
    newcomer = Person("newcomer", "newcomer-password")
    assert await status_of(client, basic(newcomer)) == 401
    users.people = [*users.people, newcomer]
    users.extra = '\n[[grants]]\nto = ["user:newcomer"]\npermission = "read"\nall = true\n'
    users.write()

    async def newcomer_in() -> bool:
        return await status_of(client, basic(newcomer)) == 200

    await eventually(newcomer_in)
    users.path.write_text(users.text() + "\n[users.broken]\npassword = 'plain-text-secret'\n")

    async def logged() -> bool:
        return "keeping the previous rules" in caplog.text

    await eventually(logged)
    assert "plain text is refused" in caplog.text
    assert "plain-text-secret" not in caplog.text
    assert await status_of(client, basic(newcomer)) == 200
    assert await status_of(client, basic(READER)) == 200


async def test_sighup_reloads_at_once(make_gateway: GatewayFactory, users: UsersFile) -> None:
    client = await make_gateway(auth_file=str(users.path))
    assert await status_of(client, basic(READER)) == 200
    users.people = [p for p in users.people if p.name != "reader"]
    users.write()
    os.kill(os.getpid(), signal.SIGHUP)

    async def reader_gone() -> bool:
        return await status_of(client, basic(READER)) == 401

    await eventually(reader_gone, 2.0)


async def test_parallel_first_requests_share_one_verification(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.auth import hashing

    calls = []
    real = hashing.verify_password

    def counted(stored: str, password: str) -> bool:
        calls.append(1)
        time.sleep(0.05)
        return real(stored, password)

    monkeypatch.setattr(hashing, "verify_password", counted)

    async def get() -> int:
        return await status_of(client, basic(READER))

    assert await asyncio.gather(*(get() for _ in range(8))) == [200] * 8
    assert await get() == 200  # remembered
    assert len(calls) == 1


async def test_behind_a_trusted_proxy_the_forwarded_client_is_throttled(
    make_gateway: GatewayFactory, users: UsersFile
) -> None:
    users.extra = '\n[throttle]\nfailures = 2\ntrusted_proxies = ["127.0.0.0/8"]\n'
    users.write()
    client = await make_gateway(auth_file=str(users.path))

    async def attempt(forwarded: str, headers: dict) -> int:
        async with client.get(
            f"{ARTIFACTS}?path=team", headers={"X-Forwarded-For": forwarded, **headers}
        ) as r:
            return r.status

    bad = basic(WRITER, "guess-password")
    assert [await attempt("203.0.113.7", bad) for _ in range(3)] == [401, 401, 429]
    assert await attempt("198.51.100.1", basic(WRITER)) == 200  # another client behind it
    assert await attempt("198.51.100.1, 203.0.113.7", basic(WRITER)) == 429  # forged left hop


async def test_unknown_urls_stay_404(client: TestClient) -> None:
    """aiohttp's own 404/405 answers reveal nothing and pass untouched (and, being a new route
    object each time, are never remembered by the middleware's rule cache)."""
    for i in range(3):
        async with client.get(f"/no/such/page/{i}") as r:
            assert r.status == 404
            assert (await r.json())["error_code"] == "ENDPOINT_NOT_FOUND"
