"""What only object stores have: start-up checks, timeouts, markers, multipart clean-up, errors."""

import asyncio
import errno
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import requests
from azure.core import exceptions as az
from botocore.exceptions import ClientError, NoCredentialsError, ReadTimeoutError
from gcsfs.retry import HttpError

from backends import azure, gcs, open_destination, s3
from backends.objstore import ObjectStoreBackend
from tests.emulators import AzuriteServer
from tests.stores import cloud_destination

pytestmark = pytest.mark.cloud
KINDS = ["s3", "azure", "gcs"]


async def stream(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@pytest.fixture(params=KINDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ObjectStoreBackend]:
    _, url, options = cloud_destination(request, request.param)
    backend = open_destination(url, options)
    assert isinstance(backend, ObjectStoreBackend)
    await backend.start()
    yield backend
    await backend.close()


async def pending_uploads(backend: s3.S3Backend) -> list[dict[str, Any]]:
    listed = await backend.client.list_multipart_uploads(Bucket=backend.bucket)
    return listed.get("Uploads", [])


async def test_failed_and_cancelled_uploads_leave_no_pending_multipart(request) -> None:
    _, url, options = cloud_destination(request, "s3")
    backend = open_destination(url, options)
    await backend.start()
    try:

        async def broken() -> AsyncIterator[bytes]:
            yield b"p" * (20 << 20)  # two parts sent, a third received
            raise ConnectionResetError("client went away")

        with pytest.raises(ConnectionResetError):
            await backend.write("x.bin", broken())
        assert await pending_uploads(backend) == []

        async def endless() -> AsyncIterator[bytes]:
            while True:
                yield b"q" * (1 << 20)
                await asyncio.sleep(0)

        task = asyncio.create_task(backend.write("y.bin", endless()))
        while not await pending_uploads(backend):
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await pending_uploads(backend) == []
        assert await backend.list_dir("") == []
    finally:
        await backend.close()


async def test_marker_objects_are_empty_folders(store: ObjectStoreBackend) -> None:
    await store.put_small(store.key("d/empty/"), b"")
    await store.write("d/f.txt", stream(b"f"))
    assert [(e.name, e.is_dir) for e in await store.list_dir("d")] == [
        ("empty", True),
        ("f.txt", False),
    ]
    assert await store.list_dir("d/empty") == []
    assert (await store.stat("d/empty")).is_dir
    with pytest.raises(IsADirectoryError):
        await store.open("d/empty")
    with pytest.raises(IsADirectoryError):
        await store.write("d/empty", stream(b"x"))
    await store.delete("d/empty")
    assert [e.name for e in await store.list_dir("d")] == ["f.txt"]


async def test_uploads_in_progress_are_not_listed(store: ObjectStoreBackend) -> None:
    await store.put_small(store.key("d/.artgw.upload.0123"), b"partial")
    await store.write("d/f.txt", stream(b"f"))
    assert [e.name for e in await store.list_dir("d")] == ["f.txt"]


async def test_range_read_is_one_request(store: ObjectStoreBackend) -> None:
    data = bytes(range(256)) * (12 << 12)  # 12 MiB
    await store.write("r.bin", stream(data))
    calls = 0
    original = store.read_stream

    def counting(*args: Any) -> AsyncIterator[bytes]:
        nonlocal calls
        calls += 1
        return original(*args)

    store.read_stream = counting  # type: ignore[method-assign]
    opened = await store.open("r.bin")
    got = b"".join([chunk async for chunk in opened.chunks(1000, 10 << 20)])
    assert got == data[1000 : 1000 + (10 << 20)]
    assert calls == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_missing_bucket_fails_at_start(request, kind: str) -> None:
    _, url, options = cloud_destination(request, kind, prefix="")
    missing = url.replace("artgw-", "missing-")
    backend = open_destination(missing, options)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        await backend.start()
    assert backend.fs is None  # closed again: no session left open


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def unresponsive(kind: str, endpoint: str) -> tuple[str, dict[str, Any]]:
    if kind == "s3":
        config = {"connect_timeout": 1, "read_timeout": 1, "retries": {"max_attempts": 1}}
        options = {"endpoint_url": endpoint, "key": "k", "secret": "s", "config_kwargs": config}
        return "s3://bucket", options
    if kind == "azure":
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={AzuriteServer.account};"
            f"AccountKey={AzuriteServer.account_key};"
            f"BlobEndpoint={endpoint}/{AzuriteServer.account};"
        )
        options = {"connection_string": connection, "connection_timeout": 1, "read_timeout": 1}
        return "az://container", options
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=1, sock_read=1)
    return "gs://bucket", {"endpoint_url": endpoint, "token": "anon", "requests_timeout": timeout}


@pytest.mark.parametrize("kind", KINDS)
async def test_unresponsive_store_times_out_at_start(black_hole: str, kind: str) -> None:
    url, options = unresponsive(kind, black_hole)
    backend = open_destination(url, options)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await backend.start()
    assert time.monotonic() - started < 10


async def test_wrong_account_key_is_permission_error(request) -> None:
    _, url, options = cloud_destination(request, "azure")
    wrong = options["connection_string"].replace(AzuriteServer.account_key, "d3Jvbmcga2V5" * 8)
    backend = open_destination(url, {"connection_string": wrong})
    with pytest.raises(PermissionError) as caught:
        await backend.start()
    assert "d3Jvbmcga2V5" not in str(caught.value)


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "Op")


TRANSLATIONS = [
    (s3.translate, client_error("NoSuchKey"), FileNotFoundError),
    (s3.translate, client_error("AccessDenied"), PermissionError),
    (s3.translate, client_error("SignatureDoesNotMatch"), PermissionError),
    (s3.translate, client_error("InternalError"), OSError),
    (s3.translate, ReadTimeoutError(endpoint_url="http://x"), TimeoutError),
    (s3.translate, NoCredentialsError(), PermissionError),
    (azure.translate, az.ResourceNotFoundError("m"), FileNotFoundError),
    (azure.translate, az.ClientAuthenticationError("m"), PermissionError),
    (azure.translate, az.ServiceResponseTimeoutError("m"), TimeoutError),
    (gcs.translate, HttpError({"code": 403, "message": "m"}), PermissionError),
    (gcs.translate, HttpError({"code": 500, "message": "m"}), OSError),
    (gcs.translate, OSError("Forbidden: b/x\nm"), PermissionError),
    (gcs.translate, aiohttp.ServerTimeoutError("m"), TimeoutError),
]


@pytest.mark.parametrize(("translate", "raised", "expected"), TRANSLATIONS)
def test_translators(translate, raised: BaseException, expected: type) -> None:
    converted = translate(raised, "a/b.txt")
    assert type(converted) is expected
    assert converted.filename == "a/b.txt"
    assert converted.errno in (errno.ENOENT, errno.EACCES, errno.EREMOTEIO, errno.ETIMEDOUT)


def client_error_with(code: str, status: int) -> ClientError:
    metadata = {"HTTPStatusCode": status}
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": metadata}, "Op")


def azure_error(status: int, code: str) -> az.HttpResponseError:
    error = az.HttpResponseError("m")
    error.status_code, error.error_code = status, code
    return error


STORE_FAILURES = [
    (s3.translate, client_error_with("SlowDown", 503), errno.EBUSY),
    (s3.translate, client_error_with("503", 503), errno.EBUSY),  # a HEAD's error has no body
    (s3.translate, client_error_with("Throttling", 400), errno.EBUSY),
    (s3.translate, client_error_with("InternalError", 500), errno.EREMOTEIO),
    (s3.translate, client_error_with("502", 502), errno.EREMOTEIO),
    (s3.translate, client_error_with("Weird", 400), errno.EIO),
    (azure.translate, azure_error(503, "ServerBusy"), errno.EBUSY),
    (azure.translate, azure_error(500, "InternalError"), errno.EREMOTEIO),
    (gcs.translate, HttpError({"code": 429, "message": "m"}), errno.EBUSY),
    (gcs.translate, HttpError({"code": 503, "message": "m"}), errno.EBUSY),
    (gcs.translate, HttpError({"code": 504, "message": "m"}), errno.EREMOTEIO),
    (gcs.translate, requests.exceptions.ProxyError(), errno.EREMOTEIO),
]
"""A store's 5xx after the SDK's retries: busy (503 to the client) or failed (502)."""


@pytest.mark.parametrize(("translate", "raised", "expected"), STORE_FAILURES)
def test_store_failures_keep_their_kind(translate, raised: BaseException, expected: int) -> None:
    converted = translate(raised, "a/b.txt")
    assert (type(converted), converted.errno, converted.filename) == (OSError, expected, "a/b.txt")


@pytest.mark.parametrize("translate", [s3.translate, azure.translate, gcs.translate])
def test_translators_leave_other_errors_alone(translate) -> None:
    assert translate(ConnectionResetError("client gone"), "x") is None
    assert translate(ValueError("x"), "x") is None


async def test_fsync_setting_is_ignored_by_object_stores(request) -> None:
    _, url, options = cloud_destination(request, "s3")
    backend = open_destination(url, options, fsync=True)
    await backend.start()
    await backend.write("f.txt", stream(b"x"))
    assert (await backend.stat("f.txt")).size == 1
    await backend.close()
