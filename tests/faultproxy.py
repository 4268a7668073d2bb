"""A TCP proxy in front of a store emulator that a test can switch into a fault, and back.

Runs on its own thread and event loop, so it works for a gateway in the test's process or in a
child process alike. Modes (`proxy.set(mode)`):

- ``pass``: bytes flow both ways.
- ``pause``: nothing is read from either side (TCP back-pressure); new connections are accepted
  and wait. Going back to ``pass`` lets everything held flow on: a store that stalls, then
  recovers.
- ``trickle``: at most `rate` bytes a second each way, in one-byte-ish steps.
- ``blackhole``: connections are accepted and read, but nothing is forwarded or answered. When
  the mode ends, the connections it swallowed are reset (their requests are lost anyway).
- ``reset``: every open connection, and each new one, is reset (RST).
- ``refuse``: the port stops listening (connection refused), open connections are reset.
- ``answer``: each HTTP request is read and answered by the proxy itself with the canned response
  set by `proxy.answer(...)` (a store's 503 or 500), on new and pooled connections alike; after
  `times` answers (if given) the proxy goes back to ``pass``.
"""

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from http import HTTPStatus
from typing import Any

MODES = ("pass", "pause", "trickle", "blackhole", "reset", "refuse", "answer")
CHUNK = 64 << 10


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.mode = "pass"
        self.rate = 1024
        self.accepted = 0
        self.answered = 0
        self._canned = Canned(503)
        self._answers_left: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._links: set[_Link] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- control, from any thread -----------------------------------------------------------------

    def start(self) -> "FaultProxy":
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def set(self, mode: str, *, rate: int | None = None) -> None:
        """Switch to `mode`; returns once the switch is in effect."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
        self._call(self._switch(mode, rate))

    def answer(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        times: int | None = None,
    ) -> None:
        """Answer every request with `status` (the next `times` ones only, if given)."""
        self._canned = Canned(status, body, headers or {})
        self._answers_left = times
        self.answered = 0
        self.set("answer")

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None, "the proxy is not running"
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- the proxy's own loop ---------------------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._flowing = asyncio.Event()
        self._flowing.set()
        loop.run_until_complete(self._listen())
        ready.set()
        loop.run_forever()
        loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _switch(self, mode: str, rate: int | None) -> None:
        previous, self.mode = self.mode, mode
        if rate is not None:
            self.rate = rate
        assert self._flowing is not None
        if mode == "pause":
            self._flowing.clear()
        else:
            self._flowing.set()
        if mode in ("reset", "refuse") or previous == "blackhole":
            for link in list(self._links):
                link.reset()
        if mode == "refuse" and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        elif mode != "refuse" and self._server is None:
            await self._listen()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.reset()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.mode in ("reset", "refuse"):
            _reset(writer)
            return
        link = _Link(self, writer)
        self._links.add(link)
        try:
            await link.run(reader)
        finally:
            self._links.discard(link)


class _Link:
    """One client connection and its connection to the target."""

    def __init__(self, proxy: FaultProxy, client: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.requests: asyncio.StreamReader | None = None

    async def run(self, client_reader: asyncio.StreamReader) -> None:
        self.requests = client_reader
        assert self.proxy._flowing is not None
        await self.proxy._flowing.wait()
        if self.proxy.mode == "blackhole":
            await self._swallow(client_reader)
            return
        try:
            up_reader, self.upstream = await asyncio.open_connection(*self.proxy.target)
        except OSError:
            _reset(self.client)
            return
        self.tasks = [
            asyncio.ensure_future(self._pump(client_reader, self.upstream)),
            asyncio.ensure_future(self._pump(up_reader, self.client)),
        ]
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for writer in (self.client, self.upstream):
            writer.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            while await reader.read(CHUNK):
                pass
        self.client.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proxy = self.proxy
        assert proxy._flowing is not None
        try:
            while True:
                await proxy._flowing.wait()
                step = max(1, proxy.rate // 10) if proxy.mode == "trickle" else CHUNK
                data = await reader.read(step)
                if not data:
                    break
                if proxy.mode == "answer" and reader is self.requests:
                    if not await self._answer(data, reader):
                        break
                    continue
                await self._forward(data, writer)
            with contextlib.suppress(OSError):
                writer.write_eof()
        except OSError:
            self.reset()

    async def _forward(self, data: bytes, writer: asyncio.StreamWriter) -> None:
        """Write `data` as the mode now says. A read begun before the switch to ``trickle`` may
        hold a whole answer; it still goes out at `rate`, so nothing slips through at full speed."""
        proxy = self.proxy
        assert proxy._flowing is not None
        while data:
            await proxy._flowing.wait()
            if proxy.mode == "blackhole":
                return
            step = max(1, proxy.rate // 10) if proxy.mode == "trickle" else len(data)
            piece, data = data[:step], data[step:]
            writer.write(piece)
            await writer.drain()
            if proxy.mode == "trickle":
                await asyncio.sleep(len(piece) / proxy.rate)

    async def _answer(self, data: bytes, reader: asyncio.StreamReader) -> bool:
        """Read the request `data` begins (head, Content-Length body) and send the canned answer;
        False when the connection ended or is to be closed."""
        while b"\r\n\r\n" not in data:
            more = await reader.read(CHUNK)
            if not more:
                return False
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        fields = _fields(head)
        expects = fields.get("expect", "").lower() == "100-continue"
        if not expects:
            length = int(fields.get("content-length", "0"))
            with contextlib.suppress(asyncio.IncompleteReadError):
                body += await reader.readexactly(max(0, length - len(body)))
        proxy = self.proxy
        proxy.answered += 1
        self.client.write(proxy._canned.render(head.startswith(b"HEAD "), close=expects))
        await self.client.drain()
        if proxy._answers_left is not None:
            proxy._answers_left -= 1
            if proxy._answers_left <= 0:
                proxy.mode = "pass"
        return not expects

    def reset(self) -> None:
        for task in self.tasks:
            task.cancel()
        _reset(self.client)
        if self.upstream is not None:
            _reset(self.upstream)


class Canned:
    """A response the proxy sends in place of the store's."""

    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}

    def render(self, head_only: bool, close: bool) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}"]
        fields = {"Content-Length": str(len(self.body)), **self.headers}
        if close:
            fields["Connection"] = "close"
        lines += [f"{name}: {value}" for name, value in fields.items()]
        return "\r\n".join(lines).encode() + b"\r\n\r\n" + (b"" if head_only else self.body)


def _fields(head: bytes) -> dict[str, str]:
    """A request head's header fields, names lower-cased."""
    found = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    return found


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0) rather than FIN: the peer sees 'connection reset'."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
