"""Sending a local file's bytes to the client socket with the kernel's sendfile().

asyncio's own loop has a native `loop.sendfile`; uvloop does not, so there the copy loop runs in a
thread of gateway.socket_worker, which waits for the socket with poll() when it is full. Either
way no file bytes pass through Python and the event loop never blocks.
"""

import asyncio
import os
import select
from typing import BinaryIO

from gateway import socket_worker


async def sendfile(
    transport: asyncio.Transport, fileobj: BinaryIO, offset: int, count: int
) -> None:
    loop = asyncio.get_running_loop()
    try:
        await loop.sendfile(transport, fileobj, offset, count, fallback=False)
        return
    except (NotImplementedError, asyncio.SendfileNotAvailableError):
        pass
    while transport.get_write_buffer_size():  # headers still queued: let them go first
        if transport.is_closing():
            raise ConnectionResetError("Client disconnected")
        await asyncio.sleep(0.001)
    sock = transport.get_extra_info("socket")
    await socket_worker.run(_copy, sock.fileno(), fileobj.fileno(), offset, count, transport)


def _copy(out_fd: int, in_fd: int, offset: int, count: int, transport: asyncio.Transport) -> None:
    ready = socket_worker.SocketWait(out_fd, select.POLLOUT, transport, "Client disconnected")
    while count > 0:
        try:
            sent = os.sendfile(out_fd, in_fd, offset, count)
        except BlockingIOError:
            ready.wait()
            continue
        except (BrokenPipeError, OSError) as exc:
            raise ConnectionResetError(f"Client disconnected: {exc}") from exc
        if sent == 0:
            raise ConnectionResetError("The file shrank while it was being sent")
        offset += sent
        count -= sent
