"""The small-writes thread (backends/batched.py): each call's result and failure are its own, a
call cancelled before the thread reaches it never runs, and close runs what was queued."""

import asyncio
import gc
import os
import shutil
import threading
from pathlib import Path

import pytest

from backends.batched import BATCH, BatchedCalls
from backends.local import LocalBackend
from backends.streams import WholeBody


async def test_results_and_failures_stay_with_their_call() -> None:
    calls = BatchedCalls()
    try:

        def work(n: int) -> int:
            if n % 3 == 0:
                raise FileExistsError(n)
            return n * n

        outcomes = await asyncio.gather(
            *(calls.call(work, n) for n in range(3 * BATCH)), return_exceptions=True
        )
    finally:
        calls.close()
    for n, outcome in enumerate(outcomes):
        if n % 3 == 0:
            assert isinstance(outcome, FileExistsError) and outcome.args == (n,)
        else:
            assert outcome == n * n


async def test_a_call_cancelled_while_queued_never_runs() -> None:
    calls = BatchedCalls()
    release = threading.Event()
    ran: list[str] = []
    try:
        blocker = calls.call(release.wait, 10)  # holds the thread while the others queue
        queued = calls.call(ran.append, "cancelled")
        kept = calls.call(ran.append, "kept")
        queued.cancel()
        release.set()
        assert await blocker is True
        await kept
    finally:
        calls.close()
    assert ran == ["kept"]
    assert queued.cancelled()


async def test_close_runs_the_queued_calls_and_a_new_call_starts_again() -> None:
    calls = BatchedCalls()
    release = threading.Event()
    ran: list[int] = []
    first = calls.call(release.wait, 10)
    rest = [calls.call(ran.append, n) for n in range(5)]
    release.set()
    await asyncio.to_thread(calls.close)  # after the queued calls, the thread ends
    assert ran == [0, 1, 2, 3, 4]
    assert await first is True
    await asyncio.gather(*rest)
    assert await calls.call(sum, [1, 2]) == 3
    calls.close()


def test_two_event_loops_one_after_the_other() -> None:
    """A backend outlives a test's loop in some fixtures: each call answers on its own loop."""
    calls = BatchedCalls()
    try:
        assert asyncio.run(_one_call(calls, 2)) == 4
        assert asyncio.run(_one_call(calls, 3)) == 9
    finally:
        calls.close()


async def _one_call(calls: BatchedCalls, n: int) -> int:
    return await calls.call(pow, n, 2)


async def test_a_failure_keeps_its_traceback_type() -> None:
    calls = BatchedCalls()
    try:
        with pytest.raises(ZeroDivisionError):
            await calls.call(divmod, 1, 0)
        assert await calls.call(divmod, 7, 2) == (3, 1)
    finally:
        calls.close()


async def test_a_folder_removed_within_a_batch_is_made_again(tmp_path: Path) -> None:
    """The files of one batch share their folder's descriptor: a folder removed between two of
    them is opened (made) again for the second, and no descriptor outlives the batch."""
    backend = LocalBackend(str(tmp_path))
    await backend.start()
    try:
        await backend.write("warm/up.txt", WholeBody([b"."]))  # the thread started
        gc.collect()  # an earlier test's garbage closing its files would hide a leak here
        before = len(os.listdir("/proc/self/fd"))
        release = threading.Event()
        calls = backend._small_writes
        blocker = calls.call(release.wait, 10)  # the rest queue up behind it: one batch
        first = asyncio.ensure_future(backend.write("a/f1.txt", WholeBody([b"one"])))
        second = asyncio.ensure_future(backend.write("a/f2.txt", WholeBody([b"two"])))
        await asyncio.sleep(0.05)  # both queued behind the blocker
        removed = calls.call(shutil.rmtree, str(tmp_path / "a"))
        third = asyncio.ensure_future(backend.write("a/f3.txt", WholeBody([b"three"])))
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(blocker, first, second, removed, third)
        assert sorted(os.listdir(tmp_path / "a")) == ["f3.txt"]
        assert (tmp_path / "a" / "f3.txt").read_bytes() == b"three"
        assert len(os.listdir("/proc/self/fd")) <= before  # other tests' files may close
    finally:
        await backend.close()
