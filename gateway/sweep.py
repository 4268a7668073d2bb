"""The sweep of abandoned part uploads: any worker may run it, never two at once.

Every worker wakes about every `interval(ttl)` seconds (with jitter) and tries to take a lease,
a small record in the store (`.artgw.upload.multipart/sweep.lease`: owner and expiry). The lease
is taken by writing it and reading it back after a pause: of workers racing for it, only the
last writer finds its own name, so workers of one machine, or replicas sharing the store, sweep
one at a time. The holder then asks the store to drop what was begun more than `--multipart-ttl`
seconds ago (`Backend.sweep_parts`: S3 aborts its multipart uploads, staged-part stores remove
their hidden folders). By then the uploads' ids have expired, so no client can still use them.
"""

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import AsyncIterator

from aiohttp import web

from backends import Backend
from backends.parts import FOLDER
from gateway.keys import BACKEND, SETTINGS

LEASE = f"{FOLDER}/sweep.lease"
log = logging.getLogger("artgw")


def interval(ttl: float) -> float:
    """Sweep about twice per TTL; at least every 10 minutes, at most every second."""
    return max(1.0, min(ttl / 2, 600.0))


def owner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


BUSY = ("", float("inf"))
"""What a lease being rewritten while read counts as: held by someone else."""


async def read_lease(backend: Backend) -> tuple[str, float] | None:
    try:
        opened = await backend.open(LEASE)
        try:
            size = min(opened.stat.size, 4096)
            text = b"".join([chunk async for chunk in opened.chunks(0, size)])
        finally:
            await opened.close()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:  # replaced while read (a pinned read of an object store): another worker
        return BUSY
    owner, _, expires = text.decode(errors="replace").partition(" ")
    try:
        return owner, float(expires)
    except ValueError:
        return None


async def take_lease(backend: Backend, owner: str, hold: float, settle: float) -> bool:
    current = await read_lease(backend)
    if current is not None and current[0] != owner and current[1] > time.time():
        return False
    record = f"{owner} {time.time() + hold}".encode()
    try:
        await backend.write(LEASE, _one(record))
    except OSError:  # a store that refuses racing writes: another worker got there
        return False
    await asyncio.sleep(settle)
    current = await read_lease(backend)
    return current is not None and current[0] == owner


async def sweep_once(backend: Backend, ttl: float, owner: str, hold: float) -> int | None:
    """Sweep if this worker holds the lease: how many uploads went, or None if another holds it."""
    if not await take_lease(backend, owner, hold, settle=min(1.0, hold / 4)):
        return None
    return await backend.sweep_parts(time.time() - ttl)


async def _loop(backend: Backend, ttl: float) -> None:
    every = interval(ttl)
    owner = owner_name()
    await asyncio.sleep(random.uniform(0, every))
    while True:
        try:
            removed = await sweep_once(backend, ttl, owner, every)
        except Exception as exc:  # a store hiccup: try again next time
            log.warning("multipart sweep failed: %s", exc)
        else:
            if removed:
                log.info("multipart sweep removed %d abandoned upload(s)", removed)
        await asyncio.sleep(every * random.uniform(0.8, 1.2))


async def sweeper(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the sweep loop while the app runs (after the backend started)."""
    backend = app[BACKEND]
    task = None
    if app[SETTINGS].multipart and backend.capabilities.part_uploads:
        task = asyncio.create_task(_loop(backend, app[SETTINGS].multipart_ttl))
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data
