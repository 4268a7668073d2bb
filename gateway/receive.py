"""A part PUT's body moved from the client's socket into the file by the kernel (splice(2)).

Through aiohttp, each received piece is copied out of the kernel, made a bytes object (twice:
the loop's read buffer, then the parser's body slice), handed through the event loop to a thread
and copied back into the page cache: that is most of the gateway's CPU for a big upload, and
with the client on the same 2 cores, the wall time. On Linux, a part of known length on a plain
(not TLS) connection instead goes socket -> pipe -> file at the part's offset with splice(2) in
a thread, the bytes never entering Python (the one copy left is into the page cache).

How the socket is taken over: what aiohttp has already received (its buffer, and any piece its
parser holds while paused) is drained without waiting and written first, then the transport stops
reading, so every further byte of the body is still in the kernel. The body's end is known (the
Content-Length), but aiohttp's parser never saw it, so the connection closes after the answer
(the MLflow client opens one per part anyway) and the request's stream is marked ended.
"""

import asyncio
import contextlib
import errno
import fcntl
import os
import select
from collections.abc import AsyncIterable, AsyncIterator

from aiohttp import StreamReader, web

from gateway import socket_worker
from gateway.keys import SPLICED_BYTES

PIPE_SIZE = 1 << 20
"""Bytes moved per splice call (the pipe's capacity, Linux's default /proc/sys/fs/pipe-max-size)."""
STALL_SECONDS = 120.0
"""A client that sends nothing for this long loses its part (TimeoutError)."""
_NO_SPLICE_TO_FILE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP}


class SplicedBody:
    """A request body that a backend may write with `write_into` (backends.streams.KernelBody),
    else read as the async iterable it wraps."""

    def __init__(self, request: web.Request, body: AsyncIterable[bytes], size: int) -> None:
        self.request = request
        self.body = body
        self.size = size
        self.took_socket = False
        """The body was read from the socket behind aiohttp: the connection must close."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        return aiter(self.body)

    async def write_into(self, fd: int, offset: int) -> int:
        transport = self.request.transport
        content = self.request.content
        assert transport is not None
        held = _drain(content)
        received = sum(map(len, held))
        left = self.size - received
        if left > 0:
            transport.pause_reading()  # from here on the body's bytes stay in the socket
            self.took_socket = True
        sock = transport.get_extra_info("socket")
        try:
            await socket_worker.run(_write, held, sock.fileno(), fd, offset, left, transport)
        except BaseException:
            transport.close()  # the request's bytes are in no known state: end the connection
            raise
        if left > 0:
            content.feed_eof()  # the parser never saw the body's end: tell the request
            self.request[SPLICED_BYTES] = left
        return self.size


def kernel_body(
    request: web.Request, body: AsyncIterable[bytes]
) -> AsyncIterable[bytes] | SplicedBody:
    """`body` as a `SplicedBody` when its bytes can be spliced from the socket: Linux, a plain
    connection, a Content-Length, no chunked encoding; else `body` itself."""
    size = request.content_length
    transport = request.transport
    if not hasattr(os, "splice") or not size or transport is None:
        return body
    if transport.get_extra_info("sslcontext") is not None or request.headers.get(
        "Transfer-Encoding"
    ):
        return body
    sock = transport.get_extra_info("socket")
    if sock is None or not hasattr(sock, "fileno") or sock.fileno() < 0:
        return body
    return SplicedBody(request, body, size)


def _drain(content: StreamReader) -> list[bytes]:
    """Every body byte aiohttp holds now, without waiting: taking its buffer lets its parser
    resume and hand over what it held back, so this reads until nothing more comes."""
    held = []
    while chunk := content.read_nowait(-1):
        held.append(chunk)
    return held


def _write(
    held: list[bytes], sock: int, fd: int, offset: int, left: int, transport: asyncio.Transport
) -> None:
    for piece in held:
        offset = _pwrite_all(fd, piece, offset)
    if left > 0:
        _splice(sock, fd, offset, left, transport)


def _splice(sock: int, fd: int, offset: int, left: int, transport: asyncio.Transport) -> None:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        closing = "The server is closing the connection"
        ready = socket_worker.SocketWait(sock, select.POLLIN, transport, closing, STALL_SECONDS)
        while left > 0:
            try:
                moved = os.splice(sock, write_end, min(left, PIPE_SIZE), flags=os.SPLICE_F_NONBLOCK)
            except BlockingIOError:
                ready.wait()
                continue
            if moved == 0:
                raise ConnectionResetError("The client disconnected before the part's end")
            ready.progressed()
            _to_file(read_end, fd, offset, moved)
            offset += moved
            left -= moved
    finally:
        os.close(read_end)
        os.close(write_end)


def _to_file(pipe: int, fd: int, offset: int, count: int) -> None:
    """Move `count` bytes from the pipe to `fd` at `offset` (read and pwrite on a filesystem
    that cannot splice)."""
    while count > 0:
        try:
            moved = os.splice(pipe, fd, count, offset_dst=offset)
        except OSError as exc:
            if exc.errno not in _NO_SPLICE_TO_FILE:
                raise
            data = os.read(pipe, count)
            _pwrite_all(fd, data, offset)
            moved = len(data)
        offset += moved
        count -= moved


def _pwrite_all(fd: int, data: bytes, offset: int) -> int:
    """Write all of `data` at `offset`; the offset after it."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        offset += written
        view = view[written:]
    return offset
