"""The users file in force, reloaded on SIGHUP and when the file changes (checked every
`WATCH_SECONDS`). A reload never drops a connection: requests in flight finish under the rules
they started with. A file that cannot be read or parsed keeps the previous rules, and the log
says why (never a secret: the messages name keys and positions only)."""

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from gateway.auth.identity import Authenticator
from gateway.auth.policy import load_policy
from gateway.auth.users_file import AuthFileError

WATCH_SECONDS = 2.0
log = logging.getLogger("artgw.auth")


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class AuthState:
    """The current `Authenticator` (its policy inside); `reload()` swaps in a new one."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.current: Authenticator | None = None
        self._seen: tuple[int, int, int] | None = None
        self._lock = asyncio.Lock()

    @property
    def authenticator(self) -> Authenticator:
        assert self.current is not None, "the users file is loaded at start-up"
        return self.current

    async def load_first(self) -> None:
        """At start-up a broken file is fatal (AuthFileError): there are no previous rules."""
        self._seen = await asyncio.to_thread(_signature, self.path)
        policy = await asyncio.to_thread(load_policy, self.path)
        self.current = Authenticator(policy)

    async def reload(self, why: str) -> bool:
        async with self._lock:
            self._seen = await asyncio.to_thread(_signature, self.path)
            try:
                policy = await asyncio.to_thread(load_policy, self.path)
            except AuthFileError as exc:
                log.error("users file not reloaded (%s), keeping the previous rules: %s", why, exc)
                return False
            previous = self.current
            self.current = Authenticator(policy, previous.throttle if previous else None)
            log.info(
                "users file %s reloaded (%s): %d users, %d grants",
                self.path,
                why,
                len(policy.users),
                len(policy.source.grants),
            )
            return True

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            signature = await asyncio.to_thread(_signature, self.path)
            if signature is not None and signature != self._seen:
                await self.reload("file changed")


async def auth_context(app: web.Application, state: AuthState) -> AsyncIterator[None]:
    """Load at start-up, then watch the file and listen for SIGHUP until the app stops."""
    await state.load_first()
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[object]] = set()
    on_hup = threading.current_thread() is threading.main_thread()
    if on_hup:
        loop.add_signal_handler(
            signal.SIGHUP, lambda: tasks.add(loop.create_task(state.reload("SIGHUP")))
        )
    watcher = loop.create_task(state.watch())
    try:
        yield
    finally:
        if on_hup:
            loop.remove_signal_handler(signal.SIGHUP)
        watcher.cancel()
        for task in (watcher, *tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def check_file(path: str) -> None:
    """For `artgw serve` before it starts workers: a broken file stops it with one message."""
    if not os.path.exists(path):
        raise AuthFileError(
            f"{path}: the users file does not exist (create it with `artgw users add`)"
        )
    load_policy(path)
