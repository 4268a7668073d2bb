"""Prometheus metrics: what is counted (`GET /metrics` is in endpoint.py).

With several workers (`artgw serve --workers N`) each process writes its samples to files in
PROMETHEUS_MULTIPROC_DIR (prepared by `multiproc.prepare` before the fork) and `/metrics`, in any
worker, reports the sum over all of them: one view of the server.
"""

import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
"""Up to a minute: big transfers take that long; longer ones land in +Inf."""
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


@dataclass(frozen=True)
class Metrics:
    requests: Counter
    latency: Histogram
    received: Counter
    sent: Counter
    in_flight: Gauge
    store_errors: Counter
    multipart_open: Gauge
    db_latency: Histogram
    db_errors: Counter


@functools.cache
def metrics() -> Metrics:
    """Made on first use (in the worker, after PROMETHEUS_MULTIPROC_DIR is set), once a process."""
    route = ("route", "method")
    return Metrics(
        requests=Counter("artgw_http_requests", "HTTP requests answered.", [*route, "status"]),
        latency=Histogram(
            "artgw_http_request_duration_seconds",
            "From the request's arrival to its last byte sent.",
            route,
            buckets=LATENCY_BUCKETS,
        ),
        received=Counter("artgw_http_received_bytes", "Request body bytes received.", route),
        sent=Counter("artgw_http_sent_bytes", "Response bytes sent, headers included.", route),
        in_flight=Gauge(
            "artgw_http_requests_in_flight", "Requests being handled.", multiprocess_mode="livesum"
        ),
        store_errors=Counter("artgw_store_errors", "Artifact store failures, by kind.", ["kind"]),
        multipart_open=Gauge(
            "artgw_multipart_uploads_open",
            "Multipart uploads started and not yet completed or aborted.",
            multiprocess_mode="sum",  # started by one worker, ended by another, which may die
        ),
        db_latency=Histogram(
            "artgw_tracking_db_seconds",
            "Tracking store calls, by operation.",
            ["operation"],
            buckets=DB_BUCKETS,
        ),
        db_errors=Counter(
            "artgw_tracking_db_errors", "Tracking store calls that failed, by kind.", ["kind"]
        ),
    )


def multipart_upload_opened() -> None:
    metrics().multipart_open.inc()


def multipart_upload_closed() -> None:
    metrics().multipart_open.dec()


@contextmanager
def timed_db(operation: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        metrics().db_latency.labels(operation).observe(time.perf_counter() - started)
