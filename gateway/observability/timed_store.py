"""Tracking database latency for the metrics: the store the app holds, with each call timed.

A thin wrapper rather than hooks in the `tracking` package (which knows nothing of the gateway):
every coroutine method of the store, whatever store it is, is timed under its own name, and a
call that fails because the database is unavailable is counted as such.
"""

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from gateway.observability.metrics import metrics
from tracking import errors

UNTIMED = {"open", "close"}
S = TypeVar("S")


class TimedStore:
    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name in UNTIMED or not inspect.iscoroutinefunction(value):
            return value
        timed = self.__dict__[name] = _timed(name, value)  # made once: found here from now on
        return timed


def timed(store: S) -> S:
    """`store`, seen through a TimedStore (typed as the store it wraps)."""
    return cast(S, TimedStore(store))


def _timed(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        m = metrics()
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        except errors.Unavailable:
            m.db_errors.labels("unavailable").inc()
            raise
        finally:
            m.db_latency.labels(name).observe(time.perf_counter() - started)

    return call
