"""The per-request samples, gathered in plain dicts and written to the metrics at most
`FLUSH_DELAY` after their request.

Writing a sample to prometheus-client costs a `labels()` lookup and, in multiprocess mode, a lock,
a pid check and a write into the worker's mmap file per value: six values per request, and a
flush costs ~25 us whatever it holds. Under load many requests are answered within one delay, so
their samples are summed first and each labelled value is written once per delay. Another
worker's `/metrics` sees a request once the delay has passed: the endpoint writes this worker's
pending samples and, with several workers, waits `FLUSH_DELAY` and a margin before it reads
(`gateway/observability/endpoint.py`).
"""

import asyncio
import bisect
import functools
from typing import Any

from gateway.observability.metrics import LATENCY_BUCKETS, Metrics, metrics

FLUSH_DELAY = 0.02
"""Seconds a sample may wait before it is written to the metric values."""

Route = tuple[str, str]
"""(route template, method): the labels of the latency and byte counts."""


class Recorder:
    def __init__(self, m: Metrics) -> None:
        self.m = m
        self.in_flight = 0
        self._written_in_flight = 0
        self._requests: dict[tuple[str, str, str], int] = {}
        self._latency: dict[Route, list[float]] = {}
        self._received: dict[Route, int] = {}
        self._sent: dict[Route, int] = {}
        self._store_errors: dict[str, int] = {}
        self._children: dict[tuple[object, tuple[str, ...]], Any] = {}
        self._scheduled = False

    def started(self) -> None:
        self.in_flight += 1
        self._schedule()

    def finished(
        self,
        route: Route,
        status: int,
        seconds: float,
        received: int,
        sent: int,
        store_error: str | None,
    ) -> None:
        self.in_flight -= 1
        key = (route[0], route[1], str(status))
        self._requests[key] = self._requests.get(key, 0) + 1
        latencies = self._latency.get(route)
        if latencies is None:
            self._latency[route] = [seconds]
        else:
            latencies.append(seconds)
        if received:
            self._received[route] = self._received.get(route, 0) + received
        if sent:
            self._sent[route] = self._sent.get(route, 0) + sent
        if store_error:
            self._store_errors[store_error] = self._store_errors.get(store_error, 0) + 1
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """Write every pending sample to the metric values."""
        self._scheduled = False
        m = self.m
        if self.in_flight != self._written_in_flight:
            m.in_flight.set(self.in_flight)
            self._written_in_flight = self.in_flight
        requests, self._requests = self._requests, {}
        for labels, count in requests.items():
            self._child(m.requests, labels).inc(count)
        latency, self._latency = self._latency, {}
        for route, seconds in latency.items():
            observe_all(self._child(m.latency, route), seconds)
        for family, pending in ((m.received, self._received), (m.sent, self._sent)):
            for route, amount in pending.items():
                self._child(family, route).inc(amount)
            pending.clear()
        errors, self._store_errors = self._store_errors, {}
        for kind, count in errors.items():
            self._child(m.store_errors, (kind,)).inc(count)

    def _child(self, family: object, labels: tuple[str, ...]) -> Any:
        key = (family, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)  # type: ignore[attr-defined]
        return child


def observe_all(child: Any, values: list[float]) -> None:
    """`child.observe(v)` for each of `values`, with one write per bucket touched.

    prometheus-client has no public call for many observations; its histogram child holds the
    sum and one (non-cumulative) value per bucket of LATENCY_BUCKETS, which this adds to directly.
    Where a release shapes it otherwise, each value is observed on its own."""
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if buckets is None or total is None or len(buckets) != len(LATENCY_BUCKETS) + 1:
        for value in values:
            child.observe(value)
        return
    counts: dict[int, int] = {}
    for value in values:
        index = bisect.bisect_left(LATENCY_BUCKETS, value)  # the first bound >= value
        counts[index] = counts.get(index, 0) + 1
    total.inc(sum(values))
    for index, count in counts.items():
        buckets[index].inc(count)


@functools.cache
def recorder() -> Recorder:
    """This process's recorder (made on first use, in the worker, like `metrics()`)."""
    return Recorder(metrics())
