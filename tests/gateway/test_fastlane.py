"""The fast lane (gateway/fastlane.py) answers exactly as the normal path does.

Two servers of the same destination, one run by the `FastLaneRunner` that `artgw serve` uses and
one by aiohttp's plain `AppRunner`, get the same bytes; their answers must be the same bytes
(Date and made-up request ids aside), and so must their access-log lines and metrics. Separate
checks say which requests the lane takes itself, so the comparisons cover both of its sides.
"""

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from backends.local import DIGEST_XATTR, SMALL_FILE
from gateway.access_log import AccessLogger
from gateway.app import make_app
from gateway.fastlane import LEND, FastLane, FastLaneRunner, FastLaneServer
from gateway.settings import Settings
from tests import promtext

A = "/api/2.0/mlflow-artifacts/artifacts"
NAMES = ("m.json", "plot.png", "MLmodel", "a b.txt", "naïve é.csv", "x.tar.gz", "noext", ".dot")
ACCESS = logging.getLogger("artgw.access")


class Pair:
    def __init__(self, fast: web.AppRunner, plain: web.AppRunner) -> None:
        self.fast, self.plain = fast, plain

    @property
    def lane(self) -> FastLane:
        server = self.fast.server
        assert isinstance(server, FastLaneServer)
        return server.lane


async def _start(runner: web.AppRunner) -> int:
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner.addresses[0][1]


def _runner(cls: type[web.AppRunner], settings: Settings, **kwargs: object) -> web.AppRunner:
    return cls(
        make_app(settings),
        access_log=ACCESS,
        access_log_class=AccessLogger,
        keepalive_timeout=kwargs.pop("keepalive_timeout", 75),
        handler_cancellation=True,
        **kwargs,
    )


@pytest.fixture
def tree(destination: Path) -> Path:
    folder = destination / "d"
    folder.mkdir()
    for name in NAMES:
        (folder / name).write_bytes(b'{"k": 1}')
    (folder / "empty").write_bytes(b"")
    (folder / "limit.bin").write_bytes(os.urandom(SMALL_FILE))
    (folder / "big.bin").write_bytes(os.urandom(SMALL_FILE + 1))
    (folder / "sub").mkdir()
    digested = folder / "digested.txt"
    digested.write_bytes(b"hello")
    with contextlib.suppress(OSError):  # a filesystem without user xattrs: no digests then
        os.setxattr(
            digested, DIGEST_XATTR, b"sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:"
        )
    os.symlink("m.json", folder / "inner-link")
    os.symlink("/etc/hostname", folder / "outer-link")
    (destination.parent / "outside.txt").write_bytes(b"secret")
    # older than a second: the lane keeps their headers (one more path through it)
    old = os.stat(folder / "m.json").st_mtime - 5
    os.utime(folder / "m.json", (old, old))
    return destination


@pytest.fixture
async def pair(tree: Path) -> AsyncIterator[tuple[Pair, int, int]]:
    settings = Settings(artifacts_destination=str(tree), artifacts_only=True)
    fast = _runner(FastLaneRunner, settings)
    plain = _runner(web.AppRunner, settings)
    ports = await _start(fast), await _start(plain)
    try:
        yield Pair(fast, plain), *ports
    finally:
        await fast.cleanup()
        await plain.cleanup()


async def _exchange(port: int, data: bytes | list[bytes], *, pieces: int = 1) -> bytes:
    """Send `data` (in `pieces` writes, or a list's items one write each), then read until the
    server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if isinstance(data, bytes):
            step = -(-len(data) // pieces)
            data = [data[start : start + step] for start in range(0, len(data), step)]
        with contextlib.suppress(ConnectionError):  # an answer that closes may come first
            for piece in data:
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.02)
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def _normal(answer: bytes) -> bytes:
    answer = re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: -", answer)
    return re.sub(rb"\r\nX-Request-Id: [0-9a-f]{32}\r\n", b"\r\nX-Request-Id: made\r\n", answer)


def _get(target: str, *extra: str, method: str = "GET", version: str = "1.1") -> bytes:
    lines = [f"{method} {target} HTTP/{version}", "Host: 127.0.0.1", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


CLOSE = _get("/health", "Connection: close")
"""Ends every exchange on both servers (aiohttp's, so the fast side hands the rest over)."""


def _quoted(name: str) -> str:
    from urllib.parse import quote

    return quote(name)


CASES = {
    **{f"get {name}": _get(f"{A}/d/{_quoted(name)}") for name in NAMES},
    **{f"head {name}": _get(f"{A}/d/{_quoted(name)}", method="HEAD") for name in NAMES},
    "ajax prefix": _get("/ajax-api/2.0/mlflow-artifacts/artifacts/d/m.json"),
    "empty file": _get(f"{A}/d/empty"),
    "64 KiB": _get(f"{A}/d/limit.bin"),
    "too large": _get(f"{A}/d/big.bin"),
    "digests": _get(f"{A}/d/digested.txt"),
    "head digests": _get(f"{A}/d/digested.txt", method="HEAD"),
    "client request id": _get(f"{A}/d/m.json", "X-Request-Id: abc-123"),
    "insane request id": _get(f"{A}/d/m.json", "X-Request-Id: a b"),
    "keep-alive twice": _get(f"{A}/d/m.json") + _get(f"{A}/d/noext"),
    "pipelined with a range between": _get(f"{A}/d/m.json")
    + _get(f"{A}/d/m.json", "Range: bytes=0-1")
    + _get(f"{A}/d/MLmodel"),
    "http/1.0": _get(f"{A}/d/m.json", version="1.0"),
    "http/1.0 keep-alive": _get(f"{A}/d/m.json", "Connection: keep-alive", version="1.0")
    + _get(f"{A}/d/noext", version="1.0"),
    "connection close": _get(f"{A}/d/m.json", "Connection: close") + _get(f"{A}/d/noext"),
    "connection upgrade": _get(f"{A}/d/m.json", "Connection: keep-alive, Upgrade"),
    "percent-encoded slash": _get(f"{A}/d%2Fm.json"),
    "lower-case escapes": _get(f"{A}/d/na%c3%afve%20%c3%a9.csv"),
    "raw non-ASCII": _get(f"{A}/d/naïve%20é.csv"),
    "bad UTF-8": _get(f"{A}/d/%ff.txt"),
    "dot dot": _get(f"{A}/d/../../outside.txt"),
    "encoded dot dot": _get(f"{A}/d/%2e%2e/%2e%2e/outside.txt"),
    "double slash": _get(f"{A}/d//m.json"),
    "inner link": _get(f"{A}/d/inner-link"),
    "outer link": _get(f"{A}/d/outer-link"),
    "directory": _get(f"{A}/d/sub"),
    "directory for a browser": _get(f"{A}/d/sub", "Accept: text/html"),
    "missing": _get(f"{A}/d/missing.txt"),
    "below a file": _get(f"{A}/d/m.json/x"),
    "query": _get(f"{A}/d/m.json?x=1"),
    "if-none-match": _get(f"{A}/d/m.json", 'If-None-Match: "x"'),
    "body": _get(f"{A}/d/m.json", "Content-Length: 0"),
    "trailing space": _get(f"{A}/d/m.json", "X-Request-Id: abc "),
    "folded header": _get(f"{A}/d/m.json", "X-Thing: a", " b"),
    "space before colon": _get(f"{A}/d/m.json", "X-Thing : a"),
    "bare line feeds": f"GET {A}/d/m.json HTTP/1.1\nHost: x\n\n".encode(),
    "lower-case method": _get(f"{A}/d/m.json", method="get"),
    "post": _get(f"{A}/d/m.json", method="POST"),
    "http/2 line": _get(f"{A}/d/m.json", version="2"),
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
}


CLOSED_AT_ONCE = ("raw non-ASCII", "lower-case method", "garbage", "http/2 line")
"""Refused by the parser, which closes the connection: the rest cannot be sent in pieces."""


@pytest.mark.parametrize("case", list(CASES))
async def test_same_bytes_as_the_normal_path(pair: tuple[Pair, int, int], case: str) -> None:
    _, fast, plain = pair
    data = CASES[case] + CLOSE
    for pieces in (1,) if case in CLOSED_AT_ONCE else (1, 3):
        got = await _exchange(fast, data, pieces=pieces)
        want = await _exchange(plain, data, pieces=pieces)
        assert _normal(got) == _normal(want), case
        assert got.startswith(b"HTTP/1.")


TAKEN = ("get m.json", "head noext", "get a b.txt", "empty file", "64 KiB", "digests")
TAKEN += ("client request id", "http/1.0", "http/1.0 keep-alive", "connection close")
TAKEN += ("lower-case escapes", "inner link", "ajax prefix", "get naïve é.csv", "get .dot")
TAKEN += ("percent-encoded slash",)  # the normal path decodes it too: d/m.json
LENT = ("too large", "dot dot", "outer link", "directory", "missing", "below a file")
LENT += ("bad UTF-8", "encoded dot dot", "double slash", "directory for a browser")
"""Plain downloads the lane leaves to aiohttp, keeping the connection."""
REFUSED = ("raw non-ASCII", "query", "if-none-match", "body", "trailing space", "folded header")
REFUSED += ("space before colon", "lower-case method", "post", "http/2 line")
REFUSED += ("connection upgrade", "bare line feeds", "garbage")


@pytest.mark.parametrize("case", TAKEN + LENT + REFUSED)
async def test_which_requests_the_lane_takes(pair: tuple[Pair, int, int], case: str) -> None:
    lane = pair[0].lane
    head = CASES[case].split(b"\r\n\r\n", 1)[0]
    answer = lane.answer(head)
    kind = "refused" if answer is None else "lent" if answer is LEND else "taken"
    assert kind == ("taken" if case in TAKEN else "lent" if case in LENT else "refused")


async def test_lent_requests_keep_the_connection_in_the_lane(pair: tuple[Pair, int, int]) -> None:
    """A missing file or a folder goes to aiohttp; the next request is the lane's again."""
    runners, fast, plain = pair
    steps = ("missing", "get m.json", "directory", "too large", "head noext", "get m.json")
    answers = []
    for port in (fast, plain):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        got = []
        for step in steps:
            writer.write(CASES[step])
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
            body = b"" if step.startswith("head") else await reader.readexactly(length)
            got.append(_normal(head + body))
        answers.append(got)
        if port == fast:
            (handler,) = runners.fast.server.connections  # type: ignore[union-attr]
            assert handler._lane is not None  # type: ignore[attr-defined]
        writer.close()
    assert answers[0] == answers[1]
    assert [a.split(b" ", 2)[1] for a in answers[0]] == [b"404", b"200", b"400", b"200"] + [
        b"200"
    ] * 2


async def test_metrics_and_access_log_as_the_normal_path(
    pair: tuple[Pair, int, int], caplog: pytest.LogCaptureFixture
) -> None:
    _, fast, plain = pair
    requests = _get(f"{A}/d/m.json", "X-Request-Id: same") + _get(
        f"{A}/d/noext", "X-Request-Id: same", method="HEAD"
    )
    requests += _get(f"{A}/d/na%c3%afve%20%c3%a9.csv", "X-Request-Id: same")  # logged as sent
    lines, deltas = await _observed((fast, plain), [requests + CLOSE], caplog)
    assert lines[0] == lines[1]
    assert len(lines[0]) == 4  # three artifacts and /health
    assert deltas[0] == deltas[1]
    route = (("method", "GET"), ("route", f"{A}/{{path}}"), ("status", "200"))
    assert deltas[0][("artgw_http_requests_total", route)] == 2


Observed = tuple[list[list[str]], list[dict[promtext.Key, float]]]


async def _observed(
    ports: tuple[int, int], writes: list[bytes], caplog: pytest.LogCaptureFixture
) -> Observed:
    """The access-log lines and the metrics' changes of `writes` sent to each server."""
    deltas, lines = [], []
    for port in ports:
        before = await _metrics(ports[1])
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="artgw.access"):
            await _exchange(port, writes)
        lines.append([_logged(record.getMessage()) for record in caplog.records])
        deltas.append(_changed(before, await _metrics(ports[1])))
    return lines, deltas


def _changed(
    before: dict[promtext.Key, float], after: dict[promtext.Key, float]
) -> dict[promtext.Key, float]:
    """What the artifact requests changed in artgw's metrics (times and buckets vary)."""
    changed = {}
    for key, value in after.items():
        name, labels = key
        timed = name.endswith(("_sum", "_created")) or "le" in dict(labels)
        other = "/health" in str(labels) or "/metrics" in str(labels)
        if name.startswith("artgw_") and not (timed or other) and value != before.get(key, 0.0):
            changed[key] = value - before.get(key, 0.0)
    return changed


def _logged(line: str) -> str:
    """An access-log line without its time, pid, duration and made-up request id."""
    return re.sub(r"^\[[^]]*\] \[\d+\]| [\d.]+ms| [0-9a-f]{32}$", "", line)


async def _metrics(port: int) -> dict[promtext.Key, float]:
    answer = await _exchange(port, _get("/metrics", "Connection: close"))
    return promtext.samples(answer.split(b"\r\n\r\n", 1)[1].decode())


async def test_keep_alive_timeout_as_aiohttp(tree: Path) -> None:
    settings = Settings(artifacts_destination=str(tree), artifacts_only=True)
    runner = _runner(FastLaneRunner, settings, keepalive_timeout=0.5)
    port = await _start(runner)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):  # each answer restarts the idle timer
            writer.write(_get(f"{A}/d/m.json"))
            assert (await reader.readuntil(b'{"k": 1}')).startswith(b"HTTP/1.1 200 OK")
            await asyncio.sleep(0.3)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed once idle
        writer.close()
    finally:
        await runner.cleanup()


async def test_shutdown_closes_idle_fast_connections(tree: Path) -> None:
    settings = Settings(artifacts_destination=str(tree), artifacts_only=True)
    runner = _runner(FastLaneRunner, settings)
    port = await _start(runner)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_get(f"{A}/d/m.json"))
    await reader.readuntil(b'{"k": 1}')
    await asyncio.wait_for(runner.cleanup(), 10)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


@pytest.mark.parametrize(
    "changes", [{"auth_file": "users.toml"}, {"cors_origins": "https://a.example"}]
)
def test_off_with_auth_or_cors(destination: Path, changes: dict[str, str]) -> None:
    """With --auth-file the permission check (the auth middleware) must run: the lane is off;
    with CORS origins, likewise (their headers are added per response)."""
    settings = Settings(artifacts_destination=str(destination), artifacts_only=True)
    app = web.Application()
    from gateway.app import open_backend
    from gateway.keys import BACKEND, SETTINGS

    app[SETTINGS] = settings.replace(**changes)
    app[BACKEND] = open_backend(settings)
    assert FastLane.of(app) is None
    app[SETTINGS] = settings
    assert FastLane.of(app) is not None


async def test_off_with_another_access_logger(tree: Path) -> None:
    """The lane writes artgw's access-log line: with aiohttp's own logger it stays off."""
    settings = Settings(artifacts_destination=str(tree), artifacts_only=True)
    runner = FastLaneRunner(make_app(settings), access_log=ACCESS)
    await runner.setup()
    try:
        assert not isinstance(runner.server, FastLaneServer)
    finally:
        await runner.cleanup()
    runner = FastLaneRunner(make_app(settings), access_log=None)  # no log at all: on
    await runner.setup()
    try:
        assert isinstance(runner.server, FastLaneServer)
    finally:
        await runner.cleanup()
