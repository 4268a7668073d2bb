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
then on the connection stays with aiohttp. A small PUT is taken too, and stored by the upload's
own steps (gateway/fastput.py).

It is on only where nothing else looks at a download: a local destination without mounts, no
`--auth-file` (the permission check runs in the auth middleware, which the lane would skip) and
no CORS origins (their headers are added per response). `--read-only` keeps it: downloads are
allowed there.
"""

import asyncio
import functools
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
from gateway.artifacts import UPLOADED
from gateway.download import small_file_headers
from gateway.fastput import UPLOADED_HEAD, Put, store, upload_of
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
        b"transfer-encoding",
        b"expect",
        b"upgrade",
    }
)
"""Headers that change the answer or the framing: such requests take the normal path."""
_VERSIONS = {b"HTTP/1.1": "HTTP/1.1", b"HTTP/1.0": "HTTP/1.0"}
_METHODS = {b"GET": "GET", b"HEAD": "HEAD", b"PUT": "PUT"}
_MARKERS = tuple(f"{prefix}{ARTIFACTS_MARKER}".encode() for prefix in API_PREFIXES)


class Answer:
    """One request answered: what to send and what to record."""

    __slots__ = ("data", "keep_alive", "method", "path", "received", "rid", "route")

    def __init__(
        self,
        data: bytes,
        keep_alive: bool,
        method: str,
        path: str,
        rid: str,
        route: str,
        received: int = 0,
    ) -> None:
        self.data = data
        self.received = received
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
        self.uploads = True
        """Whether PUTs are taken (not with --read-only)."""
        self.upload_limit = 0
        """--max-upload-size: larger bodies are aiohttp's (its middleware answers them)."""

    @classmethod
    def of(cls, app: web.Application) -> "FastLane | None":
        """The lane for a started `app`, or None where it must stay off (see the docstring)."""
        settings = app[SETTINGS]
        backend = app[BACKEND]
        if settings.auth_file or settings.cors_origins or not isinstance(backend, LocalBackend):
            return None
        lane = cls(backend)
        lane.uploads = not settings.read_only
        lane.upload_limit = settings.max_upload_size
        return lane

    def answer(self, head: bytes) -> "Answer | Put | None":
        """The answer to the request `head` (without its blank line), or None: aiohttp's; LEND
        for a plain keep-alive download the lane cannot send (a missing or large file, one not
        in the page cache, a bad path): aiohttp answers that one, and the lane the next. A Put
        for an upload the lane takes (gateway/fastput.py): its body follows the head."""
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
        raw = target[len(marker) :].decode("ascii")
        if method == "PUT":
            return self._upload(raw, headers, keep_alive, version, target, marker)
        if b"content-length" in headers:
            return None
        refused = LEND if keep_alive else None
        try:
            path = confine(unquote(raw, errors="strict"))
        except (UnicodeDecodeError, UnsafePathError):
            return refused
        found = self.backend.read_small_cached(path, self.known, _prefixes)
        if found is None or not found[0]:
            return refused
        prefixes, body = found
        rid = _request_id(headers)
        pieces = [_STATUS[version], prefixes[0] if method == "GET" else prefixes[1]]
        pieces.append(self.head_end(version, keep_alive, rid))
        if method == "GET":
            pieces.append(body)
        data = b"".join(pieces)
        return Answer(data, keep_alive, method, target.decode("ascii"), rid, self.routes[marker])

    def _upload(
        self,
        raw: str,
        headers: dict[bytes, bytes],
        keep_alive: bool,
        version: str,
        target: bytes,
        marker: bytes,
    ) -> Put | None:
        if not self.uploads:
            return None
        found = upload_of(raw, headers, self.upload_limit)
        if found is None:
            return None
        path, length, claimed = found
        rid = _request_id(headers)
        route = self.routes[marker]
        return Put(path, length, claimed, keep_alive, version, target.decode("ascii"), rid, route)

    def uploaded(self, put: Put) -> Answer:
        """The answer to an upload stored."""
        head = self.head_end(put.version, put.keep_alive, put.rid)
        data = b"".join((_STATUS[put.version], UPLOADED_HEAD, head, UPLOADED))
        return Answer(data, put.keep_alive, "PUT", put.target, put.rid, put.route, put.length)

    def head_end(self, version: str, keep_alive: bool, rid: str) -> bytes:
        """The header lines aiohttp adds after the response's own, and the blank line."""
        pieces = [self._date_line()]
        if keep_alive and version == "HTTP/1.0":
            pieces.append(b"Connection: keep-alive\r\n")
        elif not keep_alive and version == "HTTP/1.1":
            pieces.append(b"Connection: close\r\n")
        pieces += (_RID, rid.encode("ascii"), b"\r\n\r\n")
        return b"".join(pieces)

    def _date_line(self) -> bytes:
        """`Date` (aiohttp's, made once a second) and `Server`, as aiohttp adds them."""
        date = rfc822_formatted_time()
        if date is not self._date[0]:
            self._date = (date, f"Date: {date}\r\nServer: {SERVER_SOFTWARE}\r\n".encode())
        return self._date[1]


def _request_id(headers: dict[bytes, bytes]) -> str:
    """The client's X-Request-Id when it is sane, else a new one (as `request_id.from_request`)."""
    given = headers.get(b"x-request-id")
    rid = given.decode("ascii") if given is not None else ""
    return rid if is_sane(rid) else os.urandom(16).hex()


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


Found = tuple[list[tuple[Answer, float]], int, tuple[Put, bytes, float] | None]
"""`FastLaneHandler._answers`: the answers, where a lent request starts (or -1), an upload to
store (its Put, its bytes from the head on, when its head was complete)."""


class FastLaneHandler(RequestHandler):
    """aiohttp's connection protocol with the lane in front: incoming bytes are held here until
    a request head is complete; the first request that is not the lane's, with everything after
    it, goes to aiohttp's parser, and the connection stays aiohttp's. Only a plain download that
    the lane cannot send (LEND), alone in what was received, is lent: the lane goes on once
    aiohttp has answered it. An upload the lane takes (a Put) is held until its body is in, then
    stored while what comes after it waits; one whose store call fails goes to aiohttp whole."""

    def __init__(self, manager: Server, lane: FastLane, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._lane: FastLane | None = lane
        self._held: list[bytes] = []
        """The reads (the first maybe cut) since the last request answered here."""
        self._lent = False
        """aiohttp got one plain request (LEND): the lane takes the next once aiohttp is idle."""
        self._storing: asyncio.Task[None] | None = None
        """The upload being stored: its answer goes out before anything after it is read."""
        self._paused = False
        self._close_after = False
        """`close` came while an upload was stored: it runs once that is answered."""

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
        self._held.append(data)
        if self._storing is not None:
            if not self._paused and sum(map(len, self._held)) > MAX_QUEUED:
                self._paused = True  # a client that pipelines uploads waits for their answers
                assert self.transport is not None
                self.transport.pause_reading()
            return
        self._serve(lane)

    def _serve(self, lane: FastLane) -> None:
        held = self._held
        joined = b"".join(held) if len(held) > 1 else held[0]
        found = self._answers(lane, joined)
        if found is None:
            self._hand_over(held)
            return
        answers, lent, upload = found
        if answers:
            self._send(lane, answers)
        if upload is not None:
            self._store(lane, *upload)
        elif lent >= 0:
            self._held = []
            self._lent = True
            super().data_received(joined[lent:])  # one whole request, nothing after it

    def _hand_over(self, pieces: list[bytes]) -> None:
        """aiohttp's from here on, starting with `pieces` as they came."""
        self._lane = None
        self._held = []
        for piece in pieces:
            super().data_received(piece)

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

    def _answers(self, lane: FastLane, held: bytes) -> Found | None:
        """The answers to every request head complete in `held` (an incomplete one after them is
        held for the next read), where a last one that aiohttp answers (LEND) starts, or -1,
        and an upload whose body is all in, to store after them; None when any of them is not
        the lane's: aiohttp's parser then gets all of `held`, as it would have (an error in one
        read loses its earlier requests there too)."""
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
                return answers, -1, None
            began = time.perf_counter()
            answer = lane.answer(held[start:end]) if end - start <= MAX_HEAD else None
            if answer is None or len(answers) >= MAX_PER_READ:
                return None
            if answer is LEND:
                return (answers, start, None) if end + 4 == len(held) else None
            if isinstance(answer, Put):
                return self._upload(answers, answer, held, start, end + 4 + answer.length, began)
            start = end + 4
            answers.append((answer, time.perf_counter() - began))
            if not answer.keep_alive and start < len(held):
                return None  # aiohttp's parser refuses data after a last request: its 400
        self._held = []
        return answers, -1, None

    def _upload(
        self,
        answers: list[tuple[Answer, float]],
        put: Put,
        held: bytes,
        start: int,
        end: int,
        began: float,
    ) -> Found | None:
        """`_answers` for an upload from `start` to `end` (its body's end) in `held`."""
        if end > len(held):  # the body is still coming: the head is read again with it
            self._kept_alive()  # aiohttp does not close a connection in mid-request either
            if answers:
                self._held = [held[start:]]
            return answers, -1, None
        if end < len(held):
            return None  # requests pipelined after it: aiohttp's parser reads them at once
        self._held = []
        return answers, -1, (put, held[start:end], began)

    def _store(self, lane: FastLane, put: Put, request: bytes, began: float) -> None:
        self._kept_alive()  # no idle close while it is stored
        body = request[len(request) - put.length :]
        storing = self._loop.create_task(store(lane.backend, put, body))
        storing.add_done_callback(functools.partial(self._stored, lane, put, request, began))
        self._storing = storing

    def _stored(
        self, lane: FastLane, put: Put, request: bytes, began: float, storing: "asyncio.Task[None]"
    ) -> None:
        self._storing = None
        if not (storing.cancelled() or self.transport is None or self._force_close):
            self._answer_stored(lane, put, request, began, storing)
        if self._close_after:  # shutdown began meanwhile
            super().close()

    def _answer_stored(
        self, lane: FastLane, put: Put, request: bytes, began: float, storing: "asyncio.Task[None]"
    ) -> None:
        if self._paused:
            self._paused = False
            assert self.transport is not None
            self.transport.resume_reading()
        if storing.exception() is not None:  # nothing stored: aiohttp runs it and answers
            self._hand_over([request, *self._held])
            return
        self._send(lane, [(lane.uploaded(put), time.perf_counter() - began)])
        if self._held and not (self._force_close or self._close_after):
            self._serve(lane)

    def close(self) -> None:
        """aiohttp's (at shutdown: no more requests, and the connection closes once idle), after
        the upload being stored is answered, as aiohttp lets a request in progress finish."""
        if self._storing is None:
            super().close()
        else:
            self._close_after = True

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._storing is not None:
            self._storing.cancel()  # as aiohttp cancels its handler (handler_cancellation)
        super().connection_lost(exc)

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        """aiohttp's, after the upload being stored (if any) is answered."""
        if self._storing is not None:
            await asyncio.wait([self._storing], timeout=timeout)
        await super().shutdown(timeout)

    def _record(self, lane: FastLane, answer: Answer, seconds: float) -> None:
        self._request_count += 1
        if self._manager is not None:
            self._manager.requests_count += 1
        samples = lane.recorder
        samples.started()
        sent = len(answer.data)
        key = (answer.route, answer.method)
        samples.finished(key, 200, seconds, answer.received, sent, None)
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
    """Whether an incomplete head may still become the lane's: it starts like a GET, HEAD or
    PUT and has no bare line feed (which aiohttp's parser takes as a line end)."""
    start = held[:5]
    if not any(method.startswith(start) for method in (b"GET /", b"HEAD ", b"PUT /")):
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
