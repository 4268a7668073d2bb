"""A store that stalls, trickles, resets, refuses or answers 5xx (tests/faultproxy.py between the
gateway and the emulator): each request fails within --store-timeout as JSON (504 stalled, 503
unreachable or busy, 502 failed), never hangs, commits no partial object, and service resumes
by itself."""

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient

from backends.retry import ATTEMPTS
from gateway.app import make_app
from gateway.settings import Settings
from tests.emulators import ServerBase
from tests.faultproxy import FaultProxy
from tests.promtext import value
from tests.stores import CloudView, cloud_destination

pytestmark = [pytest.mark.serial, pytest.mark.cloud]  # times each failure against its limit
A = "/api/2.0/mlflow-artifacts/artifacts"
STALL_LIMIT = 1.5
"""--store-timeout for stalls: every call must give up after this."""
REFUSAL_LIMIT = 6.0
"""--store-timeout for refusals and store errors: long enough for every SDK's retries to run out
first (backends/retry.py: at most 1 + 2 s of pauses), so the answer is the store's failure."""
SLACK = 1.5
XML = {"Content-Type": "application/xml"}
STORE_ANSWERS: dict[str, dict[int, tuple[bytes, dict[str, str]]]] = {
    "s3": {
        503: (b"<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>", XML),
        500: (b"<Error><Code>InternalError</Code><Message>Try again</Message></Error>", XML),
    },
    "azure": {
        503: (
            b"<Error><Code>ServerBusy</Code><Message>Busy</Message></Error>",
            {**XML, "x-ms-error-code": "ServerBusy"},
        ),
        500: (
            b"<Error><Code>InternalError</Code><Message>Oops</Message></Error>",
            {**XML, "x-ms-error-code": "InternalError"},
        ),
    },
    "gcs": {
        503: (b'{"error": {"code": 503, "message": "Backend Error"}}', {}),
        500: (b'{"error": {"code": 500, "message": "Internal Error"}}', {}),
    },
}
"""What each store sends when it is busy (503) or fails (500), as the proxy answers for it."""


class Faulty:
    """A gateway whose store is reached through a FaultProxy; `view` sees the store directly."""

    def __init__(self, client: TestClient, proxy: FaultProxy, view: CloudView, url: str) -> None:
        self.client, self.proxy, self.view, self.url = client, proxy, view, url

    async def timed(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict, float]:
        started = time.monotonic()
        response = await self.client.request(method, path, **kwargs)
        body = await response.json() if response.content_type == "application/json" else {}
        return response.status, body, time.monotonic() - started

    async def recovers(self, path: str, expected: bytes, within: float = 10.0) -> float:
        """Seconds until a GET of `path` answers `expected` again."""
        started = time.monotonic()
        while time.monotonic() - started < within:
            response = await self.client.get(f"{A}/{path}")
            if response.status == 200 and await response.read() == expected:
                return time.monotonic() - started
            await asyncio.sleep(0.1)
        raise AssertionError(f"{path} not served again within {within} s")


def through(server: ServerBase, kind: str, proxy: FaultProxy) -> dict[str, Any]:
    options = dict(server.storage_options)
    if kind == "azure":
        options["connection_string"] = options["connection_string"].replace(server.url, proxy.url)
    else:
        options["endpoint_url"] = proxy.url
    return options


@pytest.fixture
def proxy_factory() -> Iterator[Callable[[ServerBase], FaultProxy]]:
    started: list[FaultProxy] = []

    def start(server: ServerBase) -> FaultProxy:
        target = urlsplit(server.url)
        proxy = FaultProxy(target.hostname or "127.0.0.1", target.port or 80).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture
async def faulty(
    request: pytest.FixtureRequest, aiohttp_client, proxy_factory
) -> AsyncIterator[Callable[..., Awaitable[Faulty]]]:
    views: list[CloudView] = []

    async def build(kind: str, store_timeout: float) -> Faulty:
        server, url, direct = cloud_destination(request, kind)
        proxy = proxy_factory(server)
        settings = Settings(
            artifacts_destination=url,
            storage_options=through(server, kind, proxy),
            artifacts_only=True,
            store_timeout=store_timeout,
        )
        client = await aiohttp_client(make_app(settings))
        view = CloudView(url, direct)
        views.append(view)
        await view.put("seed/hello.txt", b"hello")
        return Faulty(client, proxy, view, url)

    yield build
    for view in views:
        await view.close()


STORES = ["s3", "azure", "gcs"]


@pytest.mark.parametrize("kind", STORES)
@pytest.mark.parametrize("mode", ["pause", "blackhole", "trickle"])
async def test_stalled_store_answers_504_in_time_and_recovers(faulty, kind: str, mode: str):
    gw = await faulty(kind, STALL_LIMIT)
    assert (await gw.client.get(f"{A}/seed/hello.txt")).status == 200  # pooled connection
    gw.proxy.set(mode, rate=20)
    try:
        for method, path, body in [("GET", "seed/hello.txt", None), ("PUT", "new/a.txt", b"x")]:
            status, error, took = await gw.timed(method, f"{A}/{path}", data=body)
            assert status == 504, (method, error)
            assert error["error_code"] == "DEADLINE_EXCEEDED"
            assert took < STALL_LIMIT + SLACK, (method, took)
        started = time.monotonic()
        health = await gw.client.get("/health")
        assert health.status == 200 and time.monotonic() - started < 0.5  # never asks the store
    finally:
        gw.proxy.set("pass")
    back = await gw.recovers("seed/hello.txt", b"hello")
    assert not await gw.view.exists("new/a.txt")  # the failed PUT left nothing
    print(f"{kind} {mode}: 504 after {took:.2f} s, served again {back:.2f} s after the store")


@pytest.mark.parametrize("kind", STORES)
@pytest.mark.parametrize("mode", ["reset", "refuse"])
async def test_unreachable_store_answers_503_and_recovers(faulty, kind: str, mode: str):
    gw = await faulty(kind, REFUSAL_LIMIT)
    gw.proxy.set(mode)
    try:
        status, error, took = await gw.timed("GET", f"{A}/seed/hello.txt")
        assert (status, error["error_code"]) == (503, "TEMPORARILY_UNAVAILABLE"), error
        assert took < REFUSAL_LIMIT
    finally:
        gw.proxy.set("pass")
    back = await gw.recovers("seed/hello.txt", b"hello")
    print(f"{kind} {mode}: {status} after {took:.2f} s, served again {back:.2f} s after")


@pytest.mark.parametrize("kind", STORES)
@pytest.mark.parametrize(
    "failure, status, code", [(503, 503, "TEMPORARILY_UNAVAILABLE"), (500, 502, "IO_ERROR")]
)
async def test_store_5xx_is_retried_then_answered_as_json(
    faulty, kind: str, failure: int, status: int, code: str
):
    """A store that keeps answering 503 (busy) or 500: each request is tried ATTEMPTS times,
    then answered 503 or 502 in MLflow's shape (never a 500), well within --store-timeout."""
    gw = await faulty(kind, REFUSAL_LIMIT)
    assert (await gw.client.get(f"{A}/seed/hello.txt")).status == 200  # pooled connection
    gw.proxy.answer(failure, *STORE_ANSWERS[kind][failure])
    try:
        for method, path, body in [("GET", "seed/hello.txt", None), ("PUT", "new/a.txt", b"x")]:
            gw.proxy.answered = 0
            got, error, took = await gw.timed(method, f"{A}/{path}", data=body)
            assert (got, error.get("error_code")) == (status, code), (method, error)
            assert gw.proxy.answered >= ATTEMPTS, (method, gw.proxy.answered)
            assert took < REFUSAL_LIMIT, (method, took)
            print(f"{kind} {failure} {method}: {got} after {took:.2f} s, {gw.proxy.answered} tries")
    finally:
        gw.proxy.set("pass")
    await gw.recovers("seed/hello.txt", b"hello")
    assert not await gw.view.exists("new/a.txt")
    metrics = await (await gw.client.get("/metrics")).text()
    kind_counted = "busy" if failure == 503 else "failed"
    assert value(metrics, "artgw_store_errors_total", kind=kind_counted) >= 2


@pytest.mark.parametrize("kind", STORES)
async def test_one_store_503_is_retried_away(faulty, kind: str):
    """A single busy answer is ridden out by the retry: the client sees only the success."""
    gw = await faulty(kind, REFUSAL_LIMIT)
    assert (await gw.client.get(f"{A}/seed/hello.txt")).status == 200  # pooled connection
    gw.proxy.answer(503, *STORE_ANSWERS[kind][503], times=1)
    response = await gw.client.get(f"{A}/seed/hello.txt")
    assert (response.status, await response.read(), gw.proxy.answered) == (200, b"hello", 1)
    gw.proxy.answer(503, *STORE_ANSWERS[kind][503], times=1)
    response = await gw.client.put(f"{A}/new/a.txt", data=b"stored")
    assert (response.status, gw.proxy.answered) == (200, 1), await response.text()
    assert await gw.view.get("new/a.txt") == b"stored"


async def test_ready_names_the_store_that_is_down(faulty) -> None:
    gw = await faulty("s3", STALL_LIMIT)
    assert (await gw.client.get("/health/ready")).status == 200
    gw.proxy.set("pause")
    try:
        started = time.monotonic()
        response = await gw.client.get("/health/ready")
        took = time.monotonic() - started
    finally:
        gw.proxy.set("pass")
    assert response.status == 503
    body = await response.json()
    assert "artifact store" in body["message"] and body["database"] == "not used"
    assert took < STALL_LIMIT + SLACK
    assert (await gw.client.get("/health/ready")).status == 200


async def test_stall_during_a_multipart_upload_aborts_it(faulty) -> None:
    """A 24 MiB PUT (three parts) whose store stalls after the first part: 504, no object, and
    the multipart upload is aborted once the store answers again."""
    gw = await faulty("s3", STALL_LIMIT)

    bucket = gw.url.split("://", 1)[1].split("/", 1)[0]

    async def first_part_stored() -> bool:
        listed = await gw.view.fs._call_s3("list_multipart_uploads", Bucket=bucket)
        for upload in listed.get("Uploads", []):
            parts = await gw.view.fs._call_s3(
                "list_parts", Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
            if parts.get("Parts"):
                return True
        return False

    async def body() -> AsyncIterator[bytes]:
        yield os.urandom(17 << 20)  # the first part goes once the second is known not last
        while not await first_part_stored():
            await asyncio.sleep(0.05)
        gw.proxy.set("pause")
        for _ in range(7):
            yield os.urandom(1 << 20)

    try:
        status, error, took = await gw.timed("PUT", f"{A}/big/model.bin", data=body())
    finally:
        gw.proxy.set("pass")
    assert status == 504, error
    assert took < STALL_LIMIT + SLACK + 2
    assert not await gw.view.exists("big/model.bin")
    resumed = time.monotonic()
    deadline = resumed + 30
    while True:
        listed = await gw.view.fs._call_s3("list_multipart_uploads", Bucket=bucket)
        if not listed.get("Uploads"):
            print(f"aborted {time.monotonic() - resumed:.1f} s after the store came back")
            break
        assert time.monotonic() < deadline, listed["Uploads"]
        await asyncio.sleep(0.2)
