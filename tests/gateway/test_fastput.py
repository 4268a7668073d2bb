"""The fast lane's uploads (gateway/fastput.py) answer exactly as the normal path does.

As in tests/gateway/test_fastlane.py: two servers of one destination, one with the lane and one
without, get the same bytes and must answer the same bytes (Date and made-up request ids aside),
log the same lines and count the same metrics, and store the same files. Separate checks say
which uploads the lane takes itself, so the comparisons cover both of its sides.
"""

import asyncio
import base64
import gzip
import hashlib
import os
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from gateway.artifacts import WHOLE_BODY
from gateway.fastlane import FastLaneRunner
from gateway.fastput import Put
from gateway.settings import Settings
from tests.gateway.test_disk_full import fill, small_disk  # noqa: F401 (a fixture)
from tests.gateway.test_fastlane import (
    CLOSE,
    Pair,
    _exchange,
    _get,
    _normal,
    _observed,
    _runner,
    _start,
)

A = "/api/2.0/mlflow-artifacts/artifacts"
BODY = os.urandom(4096)


def _put(target: str, body: bytes, *extra: str, version: str = "1.1", length: bool = True) -> bytes:
    lines = [f"PUT {target} HTTP/{version}", "Host: 127.0.0.1", *extra]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def _sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _chunked(target: str, body: bytes) -> bytes:
    head = _put(target, b"", "Transfer-Encoding: chunked", length=False)
    return head + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"


CASES = {
    "4 KiB": _put(f"{A}/u/a.bin", BODY),
    "empty": _put(f"{A}/u/empty", b""),
    "64 KiB": _put(f"{A}/u/limit.bin", os.urandom(WHOLE_BODY)),
    "over 64 KiB": _put(f"{A}/u/big.bin", os.urandom(WHOLE_BODY + 1)),
    "new folders": _put(f"{A}/u/x/y/z/n.json", b'{"k": 1}'),
    "replaces a file": _put(f"{A}/d/m.json", b"new"),
    "ajax prefix": _put("/ajax-api/2.0/mlflow-artifacts/artifacts/u/ajax.bin", BODY),
    "escaped name": _put(f"{A}/u/na%C3%AFve%20%C3%A9.csv", BODY),
    "twice": _put(f"{A}/u/1.bin", BODY) + _put(f"{A}/u/2.bin", BODY[:100]),
    "put then get": _put(f"{A}/u/g.json", b'{"v": 2}') + _get(f"{A}/u/g.json"),
    "get then put": _get(f"{A}/d/m.json") + _put(f"{A}/u/after-get", BODY),
    "http/1.0": _put(f"{A}/u/h10", BODY, version="1.0"),
    "http/1.0 keep-alive": _put(f"{A}/u/h10k", BODY, "Connection: keep-alive", version="1.0")
    + _get(f"{A}/d/m.json", version="1.0"),
    "connection close": _put(f"{A}/u/close", BODY, "Connection: close"),
    "client request id": _put(f"{A}/u/rid", BODY, "X-Request-Id: put-123"),
    "insane request id": _put(f"{A}/u/rid2", BODY, "X-Request-Id: a;b"),
    "content-type": _put(f"{A}/u/ct", BODY, "Content-Type: application/octet-stream"),
    "sha-256": _put(f"{A}/u/dg", BODY, f"Content-Digest: sha-256=:{_sha256(BODY)}:"),
    "repr and md5": _put(
        f"{A}/u/dg2", BODY, f"Repr-Digest: sha-256=:{_sha256(BODY)}:", f"Content-MD5: {_md5(BODY)}"
    ),
    "amz sha256": _put(f"{A}/u/dg3", BODY, f"x-amz-checksum-sha256: {_sha256(BODY)}"),
    "wrong digest": _put(f"{A}/u/wrong", BODY, f"Content-Digest: sha-256=:{_sha256(b'x')}:"),
    "two digests disagree": _put(
        f"{A}/u/two",
        BODY,
        f"Content-Digest: sha-256=:{_sha256(BODY)}:",
        f"x-amz-checksum-sha256: {_sha256(b'x')}",
    ),
    "malformed digest": _put(f"{A}/u/bad", BODY, "Content-Digest: sha-256=nope"),
    "trailing slash": _put(f"{A}/u/", BODY),
    "root": _put(f"{A}/", BODY),
    "dot dot": _put(f"{A}/u/../../outside.txt", BODY),
    "encoded dot dot": _put(f"{A}/u/%2e%2e/%2e%2e/outside.txt", BODY),
    "bad UTF-8": _put(f"{A}/u/%ff", BODY),
    "onto a folder": _put(f"{A}/d/sub", BODY),
    "below a file": _put(f"{A}/d/m.json/x", BODY),
    "through an outer link": _put(f"{A}/d/outer-link", BODY),
    "failure then get": _put(f"{A}/d/sub", BODY) + _get(f"{A}/d/m.json"),
    "chunked": _chunked(f"{A}/u/chunked", BODY),
    "expect 100-continue": _put(f"{A}/u/expect", BODY, "Expect: 100-continue"),
    "gzip": _put(f"{A}/u/gz", gzip.compress(BODY), "Content-Encoding: gzip"),
    "signed length": _put(f"{A}/u/len", BODY[:5], "Content-Length: +5", length=False),
    "query": _put(f"{A}/u/q?x=1", BODY),
    "post": _put(f"{A}/u/post", BODY).replace(b"PUT", b"POST", 1),
}
CLOSED_AT_ONCE = ("signed length",)
"""Refused by aiohttp's parser, which closes the connection: the rest cannot come in pieces."""


@pytest.fixture
def tree(destination: Path) -> Path:
    folder = destination / "d"
    (folder / "sub").mkdir(parents=True)
    (folder / "m.json").write_bytes(b'{"k": 1}')
    os.symlink("/etc", folder / "outer-link")
    (destination.parent / "outside.txt").write_bytes(b"secret")
    return destination


@pytest.fixture
async def pair(tree: Path) -> AsyncIterator[tuple[Pair, int, int]]:
    settings = Settings(artifacts_destination=str(tree), artifacts_only=True)
    async with _pair(settings) as found:
        yield found


class _pair:
    def __init__(self, settings: Settings) -> None:
        self.fast = _runner(FastLaneRunner, settings)
        self.plain = _runner(web.AppRunner, settings)

    async def __aenter__(self) -> tuple[Pair, int, int]:
        return Pair(self.fast, self.plain), await _start(self.fast), await _start(self.plain)

    async def __aexit__(self, *_: object) -> None:
        await self.fast.cleanup()
        await self.plain.cleanup()


def _normal_get(answer: bytes) -> bytes:
    """`_normal`, and without the version of a file the two servers each wrote (its ETag and
    Last-Modified)."""
    answer = re.sub(rb"\r\nETag: [^\r]*", b"\r\nETag: -", _normal(answer))
    return re.sub(rb"\r\nLast-Modified: [^\r]*", b"\r\nLast-Modified: -", answer)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.mark.parametrize("case", list(CASES))
async def test_same_bytes_and_files_as_the_normal_path(
    pair: tuple[Pair, int, int], tree: Path, case: str
) -> None:
    _, fast, plain = pair
    data = CASES[case] + CLOSE
    for pieces in (1,) if case in CLOSED_AT_ONCE else (1, 3):
        got = await _exchange(fast, data, pieces=pieces)
        stored = _files(tree.parent)
        want = await _exchange(plain, data, pieces=pieces)
        assert _normal_get(got) == _normal_get(want), case
        assert got.startswith(b"HTTP/1.")
        assert stored == _files(tree.parent), case  # the same files, and no temp file left


TAKEN = ("4 KiB", "empty", "64 KiB", "new folders", "replaces a file", "ajax prefix")
TAKEN += ("escaped name", "twice", "put then get", "http/1.0", "http/1.0 keep-alive")
TAKEN += ("connection close", "client request id", "insane request id", "content-type")
TAKEN += ("sha-256", "repr and md5", "amz sha256", "wrong digest", "onto a folder")
TAKEN += ("below a file", "through an outer link", "failure then get")
"""Uploads the lane takes (the last five fail when stored, and aiohttp answers them again)."""
REFUSED = ("over 64 KiB", "two digests disagree", "malformed digest", "trailing slash", "root")
REFUSED += ("dot dot", "encoded dot dot", "bad UTF-8", "chunked", "expect 100-continue")
REFUSED += ("gzip", "signed length", "query", "post")


def test_every_case_is_sorted() -> None:
    assert sorted(TAKEN + REFUSED + ("get then put",)) == sorted(CASES)


@pytest.mark.parametrize("case", TAKEN + REFUSED)
async def test_which_uploads_the_lane_takes(pair: tuple[Pair, int, int], case: str) -> None:
    lane = pair[0].lane
    head = CASES[case].split(b"\r\n\r\n", 1)[0]
    taken = isinstance(lane.answer(head), Put)
    assert taken == (case in TAKEN)


async def test_uploads_keep_the_connection_in_the_lane(
    pair: tuple[Pair, int, int], tree: Path
) -> None:
    """One request at a time, as HTTP clients send them: each upload is the lane's."""
    runners, fast, _ = pair
    reader, writer = await asyncio.open_connection("127.0.0.1", fast)
    for case in ("4 KiB", "empty", "sha-256", "new folders", "4 KiB"):
        writer.write(CASES[case])
        assert (await reader.readuntil(b"\r\n\r\n{}")).startswith(b"HTTP/1.1 200 OK\r\n")
        (handler,) = runners.fast.server.connections  # type: ignore[union-attr]
        assert handler._lane is not None  # type: ignore[attr-defined]
    writer.close()
    assert (tree / "u" / "a.bin").read_bytes() == BODY
    assert (tree / "u" / "x" / "y" / "z" / "n.json").read_bytes() == b'{"k": 1}'


async def test_a_failed_upload_leaves_the_connection_to_aiohttp(
    pair: tuple[Pair, int, int], tree: Path
) -> None:
    """The store call fails (a folder at the path): aiohttp answers it; nothing is stored."""
    runners, fast, _ = pair
    reader, writer = await asyncio.open_connection("127.0.0.1", fast)
    writer.write(CASES["wrong digest"])
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    (handler,) = runners.fast.server.connections  # type: ignore[union-attr]
    assert handler._lane is None  # type: ignore[attr-defined]
    writer.close()
    assert not (tree / "u" / "wrong").exists()


async def test_metrics_and_access_log_as_the_normal_path(
    pair: tuple[Pair, int, int], caplog: pytest.LogCaptureFixture
) -> None:
    _, fast, plain = pair
    writes = [_put(f"{A}/u/m1", BODY, "X-Request-Id: same")]
    writes.append(_put(f"{A}/u/na%c3%afve", b"x", "X-Request-Id: same"))  # logged as sent
    writes.append(_put(f"{A}/d/sub", BODY, "X-Request-Id: same"))  # aiohttp's 400, once
    lines, deltas = await _observed((fast, plain), [*writes, CLOSE], caplog)
    assert lines[0] == lines[1]
    assert len(lines[0]) == 4  # three uploads and /health
    assert deltas[0] == deltas[1]
    route = (("method", "PUT"), ("route", f"{A}/{{path}}"), ("status", "200"))
    assert deltas[0][("artgw_http_requests_total", route)] == 2


async def test_off_when_read_only_or_over_the_upload_limit(tree: Path) -> None:
    settings = Settings(artifacts_destination=str(tree), artifacts_only=True)
    for changes, case in (({"read_only": True}, "4 KiB"), ({"max_upload_size": 100}, "4 KiB")):
        async with _pair(settings.replace(**changes)) as (runners, fast, plain):
            assert runners.lane.answer(CASES[case].split(b"\r\n\r\n")[0]) is None
            got = await _exchange(fast, CASES[case] + CLOSE)
            assert _normal(got) == _normal(await _exchange(plain, CASES[case] + CLOSE))
            assert got.split(b" ", 2)[1] in (b"403", b"413")
    async with _pair(settings.replace(max_upload_size=4096)) as (runners, _, _):
        assert isinstance(runners.lane.answer(CASES["4 KiB"].split(b"\r\n\r\n")[0]), Put)


async def test_a_full_disk_is_the_same_507(small_disk: Path) -> None:  # noqa: F811
    destination = small_disk / "mlartifacts"
    destination.mkdir()
    fill(small_disk, leave=0)
    settings = Settings(artifacts_destination=str(destination), artifacts_only=True)
    async with _pair(settings) as (_, fast, plain):
        data = CASES["4 KiB"] + CLOSE
        got, want = await _exchange(fast, data), await _exchange(plain, data)
    assert got.split(b" ", 2)[1] == b"507"
    assert _normal(got) == _normal(want)
    assert _files(destination) == {}


class _Held:
    """The small-writes thread kept busy (a call that waits), so an upload stays in its store
    call until `release`."""

    def __init__(self, runner: web.AppRunner) -> None:
        from gateway.keys import BACKEND

        self.event = threading.Event()
        backend = runner.app[BACKEND]
        self.waited = backend._small_writes.call(self.event.wait, 10)  # type: ignore[attr-defined]

    def release(self) -> None:
        self.event.set()


async def _storing(runner: web.AppRunner) -> object:
    """The one connection of `runner`, once it stores an upload."""
    for _ in range(500):
        handlers = list(runner.server.connections)  # type: ignore[union-attr]
        if handlers and handlers[0]._storing is not None:
            return handlers[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no upload was stored")


async def test_shutdown_answers_the_upload_being_stored(tree: Path) -> None:
    settings = Settings(artifacts_destination=str(tree), artifacts_only=True)
    runner = _runner(FastLaneRunner, settings)
    port = await _start(runner)
    held = _Held(runner)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(CASES["4 KiB"])
    await _storing(runner)
    cleanup = asyncio.ensure_future(runner.cleanup())
    await asyncio.sleep(0.2)
    assert not cleanup.done()  # it waits for the upload
    held.release()
    answer = await asyncio.wait_for(reader.read(), 5)  # answered, then closed
    await asyncio.wait_for(cleanup, 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\n{}")
    assert (tree / "u" / "a.bin").read_bytes() == BODY


async def test_a_client_that_leaves_while_stored_stores_nothing(
    pair: tuple[Pair, int, int], tree: Path
) -> None:
    """As aiohttp cancels the handler of a request whose client left: its write does not run."""
    runners, fast, _ = pair
    held = _Held(runners.fast)
    _, writer = await asyncio.open_connection("127.0.0.1", fast)
    writer.write(CASES["4 KiB"])
    await _storing(runners.fast)
    writer.close()
    for _ in range(500):
        if not runners.fast.server.connections:  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.01)
    held.release()
    await held.waited
    assert _files(tree) == {"d/m.json": b'{"k": 1}'}
    assert not (tree / "u").exists() or not any((tree / "u").iterdir())
