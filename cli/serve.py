"""Running the app: one process, or N worker processes sharing the port through SO_REUSEPORT."""

import asyncio
import contextlib
import ctypes
import logging
import os
import resource
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from gateway.access_log import AccessLogger
from gateway.app import make_app, open_backend
from gateway.fastlane import FastLaneRunner
from gateway.observability import multiproc
from gateway.observability.logs import configure_logging
from gateway.settings import Settings
from gateway.signing import new_secret
from gateway.tls import server_context

SHUTDOWN_GRACE = 3.0
"""Seconds in-flight requests get on SIGTERM before they are cancelled (leaving no upload)."""
BLOCKING_THREADS = 32
PR_SET_PDEATHSIG = 1

log = logging.getLogger("artgw")


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    loop.set_default_executor(ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="artgw-io"))
    return loop


def run_worker(settings: Settings, *, reuse_port: bool) -> None:
    """Serve in this process until SIGINT/SIGTERM: `web.run_app`'s steps, with the runner that
    adds the fast lane for small downloads (gateway/fastlane.py)."""
    loop = new_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_run(make_app(settings), settings, reuse_port))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not main.done():
            main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main)
        _cancel_all(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _run(app: web.Application, settings: Settings, reuse_port: bool) -> None:
    runner = FastLaneRunner(
        app,
        handle_signals=True,
        shutdown_timeout=SHUTDOWN_GRACE,
        access_log=logging.getLogger("artgw.access"),
        access_log_class=AccessLogger,
        keepalive_timeout=settings.timeout or 75,
        handler_cancellation=True,
    )
    await runner.setup()
    try:
        site = web.TCPSite(
            runner,
            settings.host,
            settings.port,
            ssl_context=server_context(settings),
            reuse_port=reuse_port,
        )
        await site.start()
        while True:
            await asyncio.sleep(3600)
    finally:
        await runner.cleanup()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    """The tasks still running at exit, cancelled and awaited (as `web.run_app` does)."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


async def check_destination(settings: Settings) -> None:
    """Open and close the store once, so a bad destination fails here with one clear message."""
    backend = open_backend(settings)
    await backend.start()
    await backend.close()


def check_security(settings: Settings) -> None:
    """The certificate and the users file are read once here, so that a mistake stops the
    server with one message instead of failing every worker."""
    server_context(settings)
    if settings.auth_store_uri and not (settings.artifacts_only and settings.auth_file):
        raise ValueError("--auth-store-uri is for --artifacts-only servers with --auth-file")
    if settings.auth_file:
        from gateway.auth import check_file

        check_file(settings.auth_file)


def check_tracking_store(settings: Settings) -> None:
    """An MLflow file store directory as --backend-store-uri: its runs would be invisible (artgw
    would start an empty database inside it), so say so and point to `artgw import`."""
    if settings.artifacts_only:
        return
    from tracking.errors import StoreError
    from tracking.importer.source_file import file_store_dir

    folder = file_store_dir(settings.backend_store_uri)
    if folder:
        raise StoreError(
            f"{folder} holds an MLflow file store, which artgw does not serve: import it with "
            f"'artgw import {folder} --backend-store-uri sqlite:///artgw.db' and serve that"
        )


def serve(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)
    raise_open_files_limit()
    check_security(settings)
    check_tracking_store(settings)
    if not settings.secret:  # one key for all the workers forked below
        settings = settings.replace(secret=new_secret())
    asyncio.run(check_destination(settings))
    made = multiproc.prepare(settings.workers)
    try:
        _serve(settings)
    finally:
        multiproc.release(made)


def _serve(settings: Settings) -> None:
    scheme = "https" if settings.certfile else "http"
    print(
        f"artgw serving on {scheme}://{settings.host}:{settings.port} "
        f"({settings.workers} worker{'s' if settings.workers > 1 else ''}), "
        f"artifacts in {settings.artifacts_destination}",
        flush=True,
    )
    if settings.workers <= 1:
        run_worker(settings, reuse_port=False)
        return
    Supervisor(settings).run()


RESTART_FIRST = 0.5
RESTART_MAX = 30.0
STABLE_AFTER = 30.0
"""A worker that lived this long resets the restart back-off to RESTART_FIRST."""


def raise_open_files_limit() -> None:
    """Each connection and each file being sent holds a descriptor: allow as many as the hard
    limit does (often 1,024 by default, too few for thousands of keep-alive connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Supervisor:
    """Forks the workers, restarts one that dies (after a pause that doubles while they keep
    dying young), stops them all on SIGINT/SIGTERM, and passes SIGHUP on to them (each reloads
    its users file)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children: dict[int, float] = {}
        """pid -> when it started (monotonic)."""
        self.stopping = False
        self.delay = RESTART_FIRST

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._forward)
        for _ in range(self.settings.workers):
            self._spawn()
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            started = self.children.pop(pid, time.monotonic())
            self._after_exit(pid, status, time.monotonic() - started)

    def _spawn(self) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the worker's loop handles it
            code = 0
            try:
                die_with_parent(parent)
                run_worker(self.settings, reuse_port=True)
            except BaseException:
                log.exception("worker %d failed", os.getpid())
                code = 3
            finally:
                os._exit(code)
        self.children[pid] = time.monotonic()

    def _after_exit(self, pid: int, status: int, lived: float) -> None:
        multiproc.worker_exited(pid)
        if self.stopping:
            return
        code = os.waitstatus_to_exitcode(status)
        if code == 3:  # start-up failure: the others will fail the same way
            log.error("worker %d could not start; stopping", pid)
            self._stop(signal.SIGTERM, None)
            raise SystemExit(1)
        if lived >= STABLE_AFTER:
            self.delay = RESTART_FIRST
        log.warning(
            "worker %d %s after %.1f s; starting a new one in %.1f s",
            pid, how_it_ended(code), lived, self.delay,
        )  # fmt: skip
        time.sleep(self.delay)
        self.delay = min(self.delay * 2, RESTART_MAX)
        if not self.stopping:
            self._spawn()

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True
        for pid in list(self.children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                self.children.pop(pid, None)

    def _forward(self, signum: int, frame: object) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                self.children.pop(pid, None)


def how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with {code}"


def die_with_parent(parent: int) -> None:
    """Linux: have the kernel SIGTERM this worker when the supervisor dies, even by SIGKILL, so
    that no orphan keeps serving the port (and finishes its requests in the shutdown grace)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the call: nobody would send the signal
        os.kill(os.getpid(), signal.SIGTERM)
