"""Blocking copies between a client's socket and a file, run in threads off the event loop.

sendfile (GET) and splice (part PUT) move bytes with the kernel on a non-blocking socket that
the event loop still owns: a copy loop in a thread calls the syscall, and when the socket is
not ready (`BlockingIOError`) waits for it with poll(), giving up when the connection is being
closed. One pool serves both directions, so the thread count is bounded once for the process.
"""

import asyncio
import errno
import select
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

_POOL = ThreadPoolExecutor(max_workers=64, thread_name_prefix="artgw-socket")
_POLL_MS = 1000

T = TypeVar("T")


async def run(copy: Callable[..., T], *args: object) -> T:
    """`copy(*args)` in the socket-worker pool."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, copy, *args)


class SocketWait:
    """Waits, in a worker thread, until a non-blocking socket is ready again.

    `events` is `select.POLLIN` or `select.POLLOUT`; `closing` is the message of the
    `ConnectionResetError` raised once the transport is closing; with `stall_seconds`, a socket
    that stays not ready that long (no `progressed()` in between) raises `TimeoutError`.
    """

    def __init__(
        self,
        fd: int,
        events: int,
        transport: asyncio.BaseTransport,
        closing: str,
        stall_seconds: float | None = None,
    ) -> None:
        self._poller = select.poll()
        self._poller.register(fd, events)
        self._transport = transport
        self._closing = closing
        self._stall_seconds = stall_seconds
        self._stalled = 0.0

    def wait(self) -> None:
        """Called on `BlockingIOError`: return when the socket may be ready, or raise."""
        if self._transport.is_closing():
            raise ConnectionResetError(self._closing) from None
        if self._poller.poll(_POLL_MS) or self._stall_seconds is None:
            return
        self._stalled += _POLL_MS / 1000
        if self._stalled >= self._stall_seconds:
            raise TimeoutError(errno.ETIMEDOUT, "The client stopped sending") from None

    def progressed(self) -> None:
        """Bytes moved: the stall clock starts again."""
        self._stalled = 0.0
