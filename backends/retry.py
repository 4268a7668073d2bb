"""One retry policy for every store SDK: how often a request that failed transiently (connection
refused or reset, 408, 429, 5xx, throttling) is tried, and how long to pause in between.

botocore's standard mode sets the shape: at most `ATTEMPTS` tries, with a full-jitter exponential
pause (up to 1 s, then up to 2 s). gcsfs (6 tries over about 30 s) and azure-storage-blob (4 tries
15, 18 and 24 s apart) are configured to match, so a brief blip is ridden out on every store and
an outage answers 503 within about 3 s, well inside `--store-timeout`, on every store alike.
What each SDK counts as transient, and which requests it may safely send again, stays its own.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

ATTEMPTS = 3
"""Tries of one request, the first included."""


def pause(retry: int) -> float:
    """Seconds to wait before retry number `retry` (1, 2, ...): uniform in [0, 2 ** (retry-1))."""
    return random.uniform(0, 2 ** (retry - 1))


async def retrying(send: Callable[[], Awaitable[T]], transient: Callable[[Exception], bool]) -> T:
    """`send()`, tried again while it fails with a transient error and tries are left."""
    for retry in range(ATTEMPTS):
        if retry:
            await asyncio.sleep(pause(retry))
        try:
            return await send()
        except Exception as exc:
            if retry == ATTEMPTS - 1 or not transient(exc):
                raise
    raise AssertionError("unreachable")
