"""The fast lane: small artifact downloads answered at the protocol level, before aiohttp.

Why it exists: aiohttp's request machinery (the Request object, the middleware chain, the router,
StreamResponse and its header serialisation, the access-log hooks) costs about 100 us of CPU per
request here whatever the handler does, 2.5 times nginx's whole request; the small GET, the
commonest artifact request, cannot get near nginx through it. So the connection's protocol (a
`RequestHandler` subclass) looks at the bytes first: a complete request head that is the simple
case (GET or HEAD of `<api prefix>/mlflow-artifacts/artifacts/<path>`, no body, no query, no
Range or conditional header, nothing unusual in its framing) for a small regular file whose
path the kernel resolves below the destination root and whose bytes are all in the page cache
(`LocalBackend.read_small_cached`) is answered here, with the bytes, headers, request id,
metrics and access-log line the normal path gives it (tests/gateway/test_fastlane.py compares the
two byte for byte). Anything else, and any doubt, goes to aiohttp unchanged, byte for byte; from
then on the connection stays with aiohttp.

It is on only where nothing else looks at a download: a local destination without mounts, no
`--auth-file` (the permission check runs in the auth middleware, which the lane would skip) and
no CORS origins (their headers are added per response). `--read-only` keeps it: downloads are
allowed there.
"""

import os
import re
import time
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from backends import Stat
from backends.local import LocalBackend
from backends.paths import UnsafePathError, confine
from gateway.access_log import AccessLogger
from gateway.download import small_file_headers
from gateway.keys import BACKEND, SETTINGS
from gateway.observability.recorder import Recorder, recorder
from gateway.observability.request_id import HEADER as REQUEST_ID_HEADER
from gateway.observability.request_id import is_sane
from gateway.urls import API_PREFIXES, ARTIFACTS_MARKER

MAX_HEAD = 8190
"""A request head longer than this goes to aiohttp (its own line limit; it answers 400/431)."""
MAX_HEADERS = 64
MAX_QUEUED = 256 << 10
"""Answered bytes waiting in the socket's buffer past which the rest goes to aiohttp (which
waits for the client to read)."""
MAX_PER_READ = 64
"""Pipelined requests answered per read; a read with more goes to aiohttp (the loop serves
others meanwhile)."""

_TARGET = re.compile(rb"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]+")
"""The request target characters the lane takes (RFC 3986's path characters, no query)."""
_HEADER = re.compile(
    rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*((?:[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?)?)"
)
"""`name: value` with a token name and visible ASCII, no space after the value; anything else
(obsolete folding, other bytes, spaces aiohttp's parser may keep) goes to aiohttp."""
_REFUSED = frozenset(
    {
        b"range",
        b"if-range",
        b"if-match",
        b"if-none-match",
        b"if-modified-since",
        b"if-unmodified-since",
        b"content-length",
        b"transfer-encoding",
        b"expect",
        b"upgrade",
    }
)
"""Headers that change the answer or the framing: such requests take the normal path."""
_VERSIONS = {b"HTTP/1.1": "HTTP/1.1", b"HTTP/1.0": "HTTP/1.0"}
_METHODS = {b"GET": "GET", b"HEAD": "HEAD"}
_MARKERS = tuple(f"{prefix}{ARTIFACTS_MARKER}".encode() for prefix in API_PREFIXES)


class Answer:
    """One request answered: what to send and what to record."""

    __slots__ = ("data", "keep_alive", "method", "path", "rid", "route")

    def __init__(
        self, data: bytes, keep_alive: bool, method: str, path: str, rid: str, route: str
    ) -> None:
        self.data = data
        self.keep_alive = keep_alive
        self.method = method
        self.path = path
        self.rid = rid
        self.route = route


LEND = Answer(b"", True, "", "", "", "")
"""`FastLane.answer`: this request is aiohttp's, the connection stays the lane's."""

Prefixes = tuple[bytes, ...]
"""A file version's header lines up to Content-Length for a GET and a HEAD; () when the lane
cannot send them."""


class FastLane:
    """Answers the simple small download of one app, or says None."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend
        self.recorder: Recorder = recorder()
        self.routes = {
            marker: f"{prefix}{ARTIFACTS_MARKER}{{path}}"
            for marker, prefix in zip(_MARKERS, API_PREFIXES, strict=True)
        }
        self.known: dict[tuple[object, ...], Prefixes] = {}
        self._date = ("", b"")

    @classmethod
    def of(cls, app: web.Application) -> "FastLane | None":
        """The lane for a started `app`, or None where it must stay off (see the docstring)."""
        settings = app[SETTINGS]
        backend = app[BACKEND]
        if settings.auth_file or settings.cors_origins or not isinstance(backend, LocalBackend):
            return None
        return cls(backend)

    def answer(self, head: bytes) -> Answer | None:
        """The answer to the request `head` (without its blank line), or None: aiohttp's; LEND
        for a plain keep-alive download the lane cannot send (a missing or large file, one not
        in the page cache, a bad path): aiohttp answers that one, and the lane the next."""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or len(lines) > MAX_HEADERS:
            return None
        method = _METHODS.get(parts[0])
        version = _VERSIONS.get(parts[2])
        target = parts[1]
        if method is None or version is None or not _TARGET.fullmatch(target):
            return None
        marker = next((m for m in _MARKERS if target.startswith(m)), None)
        if marker is None:
            return None
        headers = _headers(lines)
        if headers is None:
            return None
        keep_alive = _keeps_alive(version, headers.get(b"connection"))
        if keep_alive is None:
            return None
        refused = LEND if keep_alive else None
        raw = target[len(marker) :].decode("ascii")
        try:
            path = confine(unquote(raw, errors="strict"))
        except (UnicodeDecodeError, UnsafePathError):
            return refused
        found = self.backend.read_small_cached(path, self.known, _prefixes)
        if found is None or not found[0]:
            return refused
        prefixes, body = found
        given = headers.get(b"x-request-id")
        rid = given.decode("ascii") if given is not None else ""
        rid = rid if is_sane(rid) else os.urandom(16).hex()
        pieces = [_STATUS[version], prefixes[0] if method == "GET" else prefixes[1]]
        pieces.append(self._date_line())
        if keep_alive and version == "HTTP/1.0":
            pieces.append(b"Connection: keep-alive\r\n")
        elif not keep_alive and version == "HTTP/1.1":
            pieces.append(b"Connection: close\r\n")
        pieces += (_RID, rid.encode("ascii"), b"\r\n\r\n")
        if method == "GET":
            pieces.append(body)
        data = b"".join(pieces)
        return Answer(data, keep_alive, method, target.decode("ascii"), rid, self.routes[marker])

    def _date_line(self) -> bytes:
        """`Date` (aiohttp's, made once a second) and `Server`, as aiohttp adds them."""
        date = rfc822_formatted_time()
        if date is not self._date[0]:
            self._date = (date, f"Date: {date}\r\nServer: {SERVER_SOFTWARE}\r\n".encode())
        return self._date[1]


_STATUS = {"HTTP/1.1": b"HTTP/1.1 200 OK\r\n", "HTTP/1.0": b"HTTP/1.0 200 OK\r\n"}
_RID = f"{REQUEST_ID_HEADER}: ".encode()


def _prefixes(path: str, info: Stat) -> Prefixes:
    """The header lines of the normal path up to Content-Length, in its order: for a GET
    `small_file_response`'s (ending Content-Disposition, X-Content-Type-Options, Content-Type),
    for a HEAD the streamed `file_response`'s (which sets Content-Type before the other two)."""
    if info.digests and not info.digests.isprintable():
        return ()  # the normal path refuses it as a header value
    fields = small_file_headers(info, path.rpartition("/")[2])
    lines = [f"{name}: {value}\r\n" for name, value in fields.items()]
    length = f"Content-Length: {info.size}\r\n"
    head = [*lines[:-3], lines[-1], lines[-3], lines[-2]]
    return ("".join(lines) + length).encode(), ("".join(head) + length).encode()


def _headers(lines: list[bytes]) -> dict[bytes, bytes] | None:
    """The request's headers by lower-case name, or None when one of them is for aiohttp."""
    headers: dict[bytes, bytes] = {}
    match = _HEADER.fullmatch
    for line in lines[1:]:
        found = match(line)
        if found is None:
            return None
        name = found.group(1).lower()
        if name in _REFUSED or name in headers:
            return None
        headers[name] = found.group(2)
    return headers


def _keeps_alive(version: str, connection: bytes | None) -> bool | None:
    """HTTP/1.1 keeps the connection unless told to close, HTTP/1.0 only when asked; None for
    any other Connection value (aiohttp reads lists of options)."""
    if connection is None:
        return version == "HTTP/1.1"
    value = connection.lower()
    if value == b"close":
        return False
    if value == b"keep-alive":
        return True
    return None


class FastLaneHandler(RequestHandler):
    """aiohttp's connection protocol with the lane in front: incoming bytes are held here until
    a request head is complete; the first request that is not the lane's, with everything after
    it, goes to aiohttp's parser, and the connection stays aiohttp's. Only a plain download that
    the lane cannot send (LEND), alone in what was received, is lent: the lane goes on once
    aiohttp has answered it."""

    def __init__(self, manager: Server, lane: FastLane, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._lane: FastLane | None = lane
        self._held: list[bytes] = []
        """The reads (the first maybe cut) since the last request answered here."""
        self._lent = False
        """aiohttp got one plain request (LEND): the lane takes the next once aiohttp is idle."""

    def data_received(self, data: bytes) -> None:
        lane = self._lane
        if lane is not None and self._lent:
            waiter = self._waiter  # aiohttp waits for its next request: it answered the last
            if waiter is None or waiter.done() or self._messages:
                lane = self._lane = None  # still answering (the client pipelines): aiohttp's
            self._lent = False
        if lane is None or self._force_close or self._close:
            super().data_received(data)
            return
        held = self._held
        held.append(data)
        joined = b"".join(held) if len(held) > 1 else data
        found = self._answers(lane, joined)
        if found is None:
            self._lane = None  # aiohttp's from here on, starting with these reads as they came
            self._held = []
            for piece in held:
                super().data_received(piece)
            return
        answers, lent = found
        if answers:
            self._send(lane, answers)
        if lent >= 0:
            self._held = []
            self._lent = True
            super().data_received(joined[lent:])  # one whole request, nothing after it

    def _send(self, lane: FastLane, answers: list[tuple[Answer, float]]) -> None:
        transport = self.transport
        assert transport is not None
        transport.write(b"".join(answer.data for answer, _ in answers))
        for answer, seconds in answers:
            self._record(lane, answer, seconds)
        if answers[-1][0].keep_alive:
            self._kept_alive()
        else:
            self.force_close()

    def _answers(
        self, lane: FastLane, held: bytes
    ) -> tuple[list[tuple[Answer, float]], int] | None:
        """The answers to every request head complete in `held` (an incomplete one after them is
        held for the next read), and where a last one that aiohttp answers (LEND) starts, or -1;
        None when any of them is not the lane's: aiohttp's parser then gets all of `held`, as
        it would have (an error in one read loses its earlier requests there too)."""
        transport = self.transport
        if transport is None or transport.get_write_buffer_size() > MAX_QUEUED:
            return None
        answers: list[tuple[Answer, float]] = []
        start = 0
        while start < len(held):
            end = held.find(b"\r\n\r\n", start)
            if end < 0:
                rest = held[start:]
                if len(rest) > MAX_HEAD or not _may_continue(rest):
                    return None
                if answers:
                    self._held = [rest]
                return answers, -1
            began = time.perf_counter()
            answer = lane.answer(held[start:end]) if end - start <= MAX_HEAD else None
            if answer is None or len(answers) >= MAX_PER_READ:
                return None
            if answer is LEND:
                return (answers, start) if end + 4 == len(held) else None
            start = end + 4
            answers.append((answer, time.perf_counter() - began))
            if not answer.keep_alive and start < len(held):
                return None  # aiohttp's parser refuses data after a last request: its 400
        self._held = []
        return answers, -1

    def _record(self, lane: FastLane, answer: Answer, seconds: float) -> None:
        self._request_count += 1
        if self._manager is not None:
            self._manager.requests_count += 1
        samples = lane.recorder
        samples.started()
        sent = len(answer.data)
        samples.finished((answer.route, answer.method), 200, seconds, 0, sent, None)
        logger = self.access_logger
        if self._logging_enabled and isinstance(logger, AccessLogger):
            logger.line(answer.method, answer.path, 200, sent, seconds * 1000, answer.rid, None)

    def _kept_alive(self) -> None:
        """aiohttp's keep-alive timer, restarted as after each of its own answers."""
        if self._keepalive_timeout <= 0:
            return
        loop = self._loop
        self._next_keepalive_close_time = loop.time() + self._keepalive_timeout
        if self._keepalive_handle is None:
            self._keepalive_handle = loop.call_at(
                self._next_keepalive_close_time, self._process_keepalive
            )


def _may_continue(held: bytes) -> bool:
    """Whether an incomplete head may still become the lane's: it starts like a GET or HEAD and
    has no bare line feed (which aiohttp's parser takes as a line end)."""
    start = held[:5]
    if not (b"GET /".startswith(start) or b"HEAD ".startswith(start)):
        return False
    return held.count(b"\n") == held.count(b"\r\n")


class FastLaneServer(Server):
    """aiohttp's low-level server, making `FastLaneHandler` protocols."""

    def __init__(self, server: Server, lane: FastLane) -> None:
        super().__init__(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )
        self.lane = lane

    def __call__(self) -> RequestHandler:
        return FastLaneHandler(self, self.lane, loop=self._loop, **self._kwargs)


class FastLaneRunner(web.AppRunner):
    """`web.AppRunner` whose connections have the fast lane where the app allows it (and the
    access log, if any, is artgw's, whose line the lane writes too)."""

    async def _make_server(self) -> Server:
        server = await super()._make_server()  # the app started: its backend is open
        lane = FastLane.of(self.app)
        logger = self._kwargs.get("access_log_class", AccessLogger)
        logs = self._kwargs.get("access_log", True) is not None  # aiohttp logs unless None
        if lane is None or not lane.backend.cached_reads:
            return server
        if logs and not (isinstance(logger, type) and issubclass(logger, AccessLogger)):
            return server
        return FastLaneServer(server, lane)
