"""Request ids, `/metrics`, JSON logs and `/health/ready`, over real loopback HTTP."""

import asyncio
import json
import os
import re
import time
from pathlib import Path

import requests
from aiohttp.test_utils import TestClient
from prometheus_client import CollectorRegistry, Histogram

from gateway.observability.metrics import LATENCY_BUCKETS
from gateway.observability.recorder import observe_all
from tests.promtext import samples, value

A = "/api/2.0/mlflow-artifacts/artifacts"
ROUTE = "/api/2.0/mlflow-artifacts/artifacts/{path}"


async def scrape(gateway: TestClient) -> str:
    response = await gateway.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return await response.text()


async def test_request_id_is_echoed_or_made(gateway: TestClient) -> None:
    given = await gateway.get("/health", headers={"X-Request-Id": "trace-42.a"})
    assert given.headers["X-Request-Id"] == "trace-42.a"
    made = await gateway.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-Id"])
    unsafe = await gateway.get("/health", headers={"X-Request-Id": "a b\tc" + "x" * 200})
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["X-Request-Id"])


async def test_every_response_carries_the_request_id(gateway: TestClient, store) -> None:
    await store.put("d/big.bin", os.urandom(256 << 10))  # sent with sendfile
    for method, path in [("GET", f"{A}/d/big.bin"), ("GET", f"{A}/nope"), ("GET", "/nope")]:
        response = await gateway.request(method, path, headers={"X-Request-Id": "r1"})
        await response.read()
        assert response.headers["X-Request-Id"] == "r1", (method, path, response.status)


async def test_metrics_count_requests_latency_and_bytes(gateway: TestClient, store) -> None:
    size = 300 << 10
    before = await scrape(gateway)
    assert (await gateway.put(f"{A}/m/f.bin", data=os.urandom(size))).status == 200
    download = await gateway.get(f"{A}/m/f.bin")
    assert len(await download.read()) == size
    assert (await gateway.get(f"{A}/m/missing")).status == 404
    after = await scrape(gateway)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = {"route": ROUTE}
    assert grew("artgw_http_requests_total", **route, method="PUT", status="200") == 1
    assert grew("artgw_http_requests_total", **route, method="GET", status="200") == 1
    assert grew("artgw_http_requests_total", **route, method="GET", status="404") == 1
    assert grew("artgw_http_request_duration_seconds_count", **route, method="GET") == 2
    assert grew("artgw_http_received_bytes_total", **route, method="PUT") == size
    assert size < grew("artgw_http_sent_bytes_total", **route, method="GET") < size + 4096
    assert value(after, "artgw_http_requests_in_flight") == 1  # this scrape itself
    assert ("artgw_multipart_uploads_open", ()) in samples(after)


async def test_unknown_routes_share_one_label(gateway: TestClient) -> None:
    for path in ("/a", "/b/c", "/d?e=f"):
        await gateway.get(path)
    text = await scrape(gateway)
    routes = {dict(labels).get("route") for (name, labels) in samples(text)}
    assert "unmatched" in routes
    assert not {"/a", "/b/c", "/d"} & routes


async def test_tracking_calls_are_timed(make_gateway, tmp_path: Path) -> None:
    gateway = await make_gateway(
        artifacts_only=False, backend_store_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"
    )
    created = await gateway.post("/api/2.0/mlflow/experiments/create", json={"name": "timed"})
    assert created.status == 200
    text = await scrape(gateway)
    assert value(text, "artgw_tracking_db_seconds_count", operation="create_experiment") >= 1


async def test_ready_checks_store_and_database(make_gateway, tmp_path: Path) -> None:
    gateway = await make_gateway(
        artifacts_only=False, backend_store_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"
    )
    response = await gateway.get("/health/ready")
    assert response.status == 200
    assert await response.json() == {"status": "ready", "store": "ok", "database": "ok"}


def test_workers_report_one_view_and_json_logs(artgw, tmp_path: Path) -> None:
    """Two worker processes: /metrics (answered by either) sums both; logs are JSON lines."""
    metrics_dir = tmp_path / "prom"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale")  # an earlier run's: cleaned at start
    server = artgw(
        "--artifacts-only", "--workers", "2", "--log-level", "debug", "--log-format", "json",
        "--artifacts-destination", str(tmp_path / "art"),
        env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
    )  # fmt: skip
    _until_both_workers_answer(server)
    health = {"route": "/health", "method": "GET", "status": "200"}
    first_view = requests.get(f"{server.url}/metrics", timeout=10).text
    before = value(first_view, "artgw_http_requests_total", **health)
    payload = os.urandom(200 << 10)
    with requests.Session() as first, requests.Session() as second:
        assert first.put(f"{server.url}{A}/j/f.bin", data=payload, timeout=10).status_code == 200
        for session in (first, second) * 10:  # two connections: likely both workers
            assert session.get(f"{server.url}/health", timeout=10).status_code == 200
        got = second.get(f"{server.url}{A}/j/f.bin", headers={"X-Request-Id": "dl-1"}, timeout=10)
        assert got.content == payload
    views = [requests.get(f"{server.url}/metrics", timeout=10).text for _ in range(6)]
    for text in views:
        assert value(text, "artgw_http_requests_total", **health) - before == 20
    pids = {entry["pid"] for entry in _json_lines(server.log())}
    assert len(pids) >= 2
    [line] = [e for e in _json_lines(server.log()) if e.get("request_id") == "dl-1"]
    assert line["method"] == "GET" and line["status"] == 200
    assert line["bytes"] > len(payload)  # the sendfile body is counted, not only the headers


def _until_both_workers_answer(server) -> None:
    """The first worker up takes every connection until the other listens."""
    deadline = time.monotonic() + 60
    while len({entry["pid"] for entry in _json_lines(server.log())}) < 2:
        assert time.monotonic() < deadline, server.log()
        for _ in range(8):
            requests.get(f"{server.url}/health", timeout=10)
        time.sleep(0.1)


def _json_lines(log: str) -> list[dict]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


async def test_concurrent_requests_are_each_counted(gateway: TestClient, store) -> None:
    """Samples of requests answered in the same turn of the event loop are written together."""
    await store.put("c/f.bin", b"x" * 100)
    before = await scrape(gateway)
    responses = await asyncio.gather(*(gateway.get(f"{A}/c/f.bin") for _ in range(25)))
    assert [r.status for r in responses] == [200] * 25
    after = await scrape(gateway)
    labels = {"route": ROUTE, "method": "GET"}

    def grew(name: str, **more: str) -> float:
        return value(after, name, **labels, **more) - value(before, name, **labels, **more)

    assert grew("artgw_http_requests_total", status="200") == 25
    assert grew("artgw_http_request_duration_seconds_count") == 25
    assert grew("artgw_http_request_duration_seconds_bucket", le="+Inf") == 25
    assert grew("artgw_http_sent_bytes_total") > 25 * 100
    assert value(after, "artgw_http_requests_in_flight") == 1


def test_many_observations_land_in_the_buckets_one_at_a_time_would() -> None:
    values = [0.0, 0.0005, 0.001, 0.0011, 0.003, 0.07, 0.07, 0.9, 29.0, 61.0, 1e6]
    one_by_one, together = (
        Histogram("h", "h", registry=CollectorRegistry(), buckets=LATENCY_BUCKETS) for _ in range(2)
    )
    for v in values:
        one_by_one.observe(v)
    observe_all(together, values)
    assert _samples_of(together) == _samples_of(one_by_one)

    class Plain:  # no prometheus-client internals: each value is observed on its own
        def __init__(self) -> None:
            self.seen: list[float] = []

        def observe(self, amount: float) -> None:
            self.seen.append(amount)

    plain = Plain()
    observe_all(plain, values)
    assert plain.seen == values


def _samples_of(histogram: Histogram) -> list[tuple[str, dict, float]]:
    return [
        (s.name, s.labels, s.value)
        for metric in histogram.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    ]
