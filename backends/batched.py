"""One thread that does short blocking calls for the event loop, many per wake-up.

`asyncio.to_thread` costs about as much CPU as a small file's whole filesystem work: a
concurrent.futures future chained to an asyncio one, a copied context, a pool thread woken (and,
with many uploads at once, many pool threads contending for the GIL and the filesystem's locks),
and one wake-up of the loop per call. Here calls queue up while the thread works, the thread
takes all that are queued at once, and their results reach the loop in one callback per batch.

For calls that are short and never wait on anything but the local disk (a small file's open,
write, link): one slow call delays the calls queued behind it, so long transfers, fsyncs and
anything remote stay on the pool.
"""

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
BATCH = 64
"""Calls run before their results are handed back: bounds how long a finished call waits."""
CLOSE_WAIT = 10.0

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


class BatchedCalls:
    """Started at the first call (so in the process that makes it: workers fork first), stopped
    by `close`. Each call's result or exception goes to its own future only."""

    def __init__(
        self, name: str = "artgw-batched", after_batch: Callable[[], None] | None = None
    ) -> None:
        """`after_batch` runs on the thread after each batch's calls, before their results are
        handed back (to release what the calls of one batch shared)."""
        self._name = name
        self._after_batch = after_batch
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[..., T], *args: Any) -> "asyncio.Future[T]":
        """Run `fn(*args)` on the thread; await the returned future for its result. A call whose
        future is cancelled before the thread reaches it is not run at all."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._thread is None:
            self._start()
        self._jobs.put((loop, future, fn, args))
        return future

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                thread.start()
                self._thread = thread

    def close(self, timeout: float | None = CLOSE_WAIT) -> None:
        """Stop the thread after the calls already queued (it runs them first). A call stuck on
        a dead disk is not waited for past `timeout`: the thread is a daemon."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(None)
            thread.join(timeout)

    def _serve(self) -> None:
        jobs = self._jobs
        while True:
            job = jobs.get()
            done: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
            count = 0
            while job is not None:
                loop, future, fn, args = job
                # read from this thread: a cancelled future stays cancelled, and a race with a
                # cancellation only means the call runs (as a pool thread's would)
                if not future.cancelled():
                    done.setdefault(loop, []).append(_outcome(future, fn, args))
                count += 1
                if count >= BATCH:
                    break
                try:
                    job = jobs.get_nowait()
                except queue.Empty:
                    job = _EMPTY
                    break
            if self._after_batch is not None:
                with contextlib.suppress(Exception):  # a cleanup: the calls' outcomes stand
                    self._after_batch()
            for loop, outcomes in done.items():
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                    loop.call_soon_threadsafe(_settle, outcomes)
            if job is None:
                return


_EMPTY: Any = object()
"""Not None: the inner loop ran out of queued calls (None, the stop signal, ends the thread)."""


def _outcome(
    future: "asyncio.Future[Any]", fn: Callable[..., Any], args: tuple[Any, ...]
) -> _Outcome:
    try:
        return future, fn(*args), None
    except BaseException as exc:  # every failure belongs to its caller, not to the thread
        return future, None, exc


def _settle(outcomes: list[_Outcome]) -> None:
    for future, result, exc in outcomes:
        if future.cancelled():
            continue
        if exc is None:
            future.set_result(result)
        else:
            future.set_exception(exc)
