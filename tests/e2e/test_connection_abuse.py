"""Connection abuse against a real `artgw serve`: 2,000 idle keep-alive connections, slowloris
partial headers, oversized request lines and headers, 10,000 requests on one connection. Limits
answer 4xx or close the connection; memory stays bounded; other clients keep being served."""

import asyncio
import statistics
import time
from pathlib import Path

import psutil
import pytest

from tests.artgw_process import ArtgwProcess

pytestmark = pytest.mark.serial

IDLE_TIMEOUT = 4
"""--timeout: an idle (or never completed) connection is closed after this many seconds."""
HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def server(artgw, tmp_path: Path) -> ArtgwProcess:
    return artgw(
        "--artifacts-only", "--workers", "1", "--timeout", str(IDLE_TIMEOUT),
        "--artifacts-destination", str(tmp_path / "art"),
    )  # fmt: skip


def rss(server: ArtgwProcess) -> int:
    assert server.proc is not None
    return psutil.Process(server.proc.pid).memory_info().rss


async def one_request(port: int, request: bytes = HEALTH) -> tuple[bytes, float]:
    """The status line of one request on a new connection, and how long it took."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 30)
    finally:
        writer.close()
    return status, time.monotonic() - started


async def latencies(port: int, count: int = 40) -> list[float]:
    found = []
    for _ in range(count):
        status, took = await one_request(port)
        assert status.startswith(b"HTTP/1.1 200"), status
        found.append(took)
    return found


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True when the server closes (EOF or reset) within `seconds`; any bytes are read past."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def test_two_thousand_idle_keep_alive_connections(server: ArtgwProcess) -> None:
    quiet = statistics.median(await latencies(server.port))
    before = rss(server)
    opened = []
    for _ in range(10):
        batch = await asyncio.gather(
            *(asyncio.open_connection("127.0.0.1", server.port) for _ in range(200))
        )
        for _, writer in batch:
            writer.write(HEALTH)  # one request each, then idle on a kept-alive connection
        opened += batch
    try:
        answers = [await asyncio.wait_for(r.readline(), 30) for r, _ in opened]
        busy = await latencies(server.port)
        grown = rss(server) - before
        closed = await asyncio.gather(*(closed_within(r, IDLE_TIMEOUT + 10) for r, _ in opened))
    finally:
        for _, writer in opened:
            writer.close()
    # each is answered, or (at the idle timeout, on this loaded machine) closed cleanly
    assert all(a.startswith(b"HTTP/1.1 200") or a == b"" for a in answers)
    assert sum(a.startswith(b"HTTP/1.1 200") for a in answers) >= 1900
    print(f"2,000 idle connections: RSS +{grown / 2**20:.1f} MiB, other clients' median "
          f"{1000 * statistics.median(busy):.1f} ms (quiet {1000 * quiet:.1f} ms), "
          f"p99 {1000 * max(busy):.1f} ms")  # fmt: skip
    assert grown < 150 << 20  # bounded: well under 75 KiB a connection
    assert statistics.median(busy) < 1.0
    assert all(closed), f"{closed.count(False)} idle connections were never closed"


async def test_slowloris_headers_are_cut_off(server: ArtgwProcess) -> None:
    """Headers sent a byte at a time never complete a request: closed at the idle timeout,
    while others are served."""
    links = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(50)]
    started = time.monotonic()

    async def drip(writer: asyncio.StreamWriter) -> None:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        for byte in b"X-Slow: " + b"a" * 100:
            await asyncio.sleep(0.25)
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                return

    drips = [asyncio.ensure_future(drip(w)) for _, w in links]
    served = await latencies(server.port, 10)
    closed = await asyncio.gather(*(closed_within(r, IDLE_TIMEOUT + 10) for r, _ in links))
    took = time.monotonic() - started
    for task in drips:
        task.cancel()
    for _, writer in links:
        writer.close()
    assert all(closed) and took < IDLE_TIMEOUT + 10
    assert max(served) < 2.0
    print(f"50 slowloris connections closed after {took:.1f} s; others served in "
          f"{1000 * max(served):.0f} ms at most")  # fmt: skip


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Many: c\r\n" * 10_000 + b"\r\n",
    ],
    ids=["request-line", "header", "header-block"],
)
async def test_oversized_requests_get_4xx_or_a_clean_close(
    server: ArtgwProcess, request_bytes: bytes
) -> None:
    before = rss(server)
    status, _ = await one_request(server.port, request_bytes)
    assert status == b"" or status.split()[1].startswith(b"4"), status
    assert (await one_request(server.port))[0].startswith(b"HTTP/1.1 200")
    assert rss(server) - before < 20 << 20


async def test_ten_thousand_requests_on_one_connection(server: ArtgwProcess) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    before = rss(server)
    started = time.monotonic()
    answered = 0
    try:
        for _ in range(100):  # pipelined, 100 at a time
            writer.write(HEALTH * 100)
            await writer.drain()
            for _ in range(100):
                status = await asyncio.wait_for(reader.readline(), 30)
                assert status.startswith(b"HTTP/1.1 200"), status
                length = 0
                while (line := await reader.readline()) != b"\r\n":
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                answered += 1
    finally:
        writer.close()
    took = time.monotonic() - started
    grown = rss(server) - before
    print(f"10,000 requests on one connection in {took:.1f} s, RSS +{grown / 2**20:.1f} MiB")
    assert answered == 10_000
    assert grown < 20 << 20
