"""The rest of the tracking calls of MLflow 3's client and UI: experiment tags, run tag delete,
bulk metric histories, and the 404 that names the MLflow feature artgw does not provide."""

import pytest
from aiohttp.test_utils import TestClient

from tests.tracking.conftest import call


async def ok(client: TestClient, method: str, endpoint: str, body: object = None) -> dict:
    status, got = await call(client, method, endpoint, body)
    assert status == 200, got
    return got


async def new_run(client: TestClient) -> str:
    body = await ok(client, "POST", "runs/create", {"experiment_id": "0"})
    return body["run"]["info"]["run_id"]


async def test_experiment_tags_set_replace_delete(tracking: TestClient) -> None:
    eid = (await ok(tracking, "POST", "experiments/create", {"name": "tagged"}))["experiment_id"]
    await ok(
        tracking,
        "POST",
        "experiments/set-experiment-tag",
        {"experiment_id": eid, "key": "k", "value": "1"},
    )
    await ok(
        tracking,
        "POST",
        "experiments/set-experiment-tag",
        {"experiment_id": eid, "key": "k", "value": "2"},
    )
    await ok(tracking, "POST", "experiments/set-experiment-tag", {"experiment_id": eid, "key": "e"})
    got = await ok(tracking, "GET", "experiments/get", {"experiment_id": eid})
    assert got["experiment"]["tags"] == [{"key": "e", "value": ""}, {"key": "k", "value": "2"}]
    await ok(
        tracking, "POST", "experiments/delete-experiment-tag", {"experiment_id": eid, "key": "k"}
    )
    got = await ok(tracking, "GET", "experiments/get", {"experiment_id": eid})
    assert got["experiment"]["tags"] == [{"key": "e", "value": ""}]
    status, body = await call(
        tracking, "POST", "experiments/delete-experiment-tag", {"experiment_id": eid, "key": "k"}
    )
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert body["message"] == f"No tag with name: k in experiment with id {eid}"
    await ok(tracking, "POST", "experiments/delete", {"experiment_id": eid})
    status, body = await call(
        tracking, "POST", "experiments/set-experiment-tag", {"experiment_id": eid, "key": "x"}
    )
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_run_tag_delete(tracking: TestClient) -> None:
    run_id = await new_run(tracking)
    await ok(tracking, "POST", "runs/set-tag", {"run_id": run_id, "key": "t", "value": "v"})
    await ok(tracking, "POST", "runs/delete-tag", {"run_id": run_id, "key": "t"})
    status, body = await call(tracking, "POST", "runs/delete-tag", {"run_id": run_id, "key": "t"})
    assert (status, body["message"]) == (404, f"No tag with name: t in run with id {run_id}")


async def log_points(client: TestClient, run_id: str, points: list[tuple[int, float]]) -> None:
    metrics = [{"key": "loss", "value": v, "timestamp": 1000 + s, "step": s} for s, v in points]
    await ok(client, "POST", "runs/log-batch", {"run_id": run_id, "metrics": metrics})


async def test_history_bulk(tracking: TestClient) -> None:
    first, second = sorted([await new_run(tracking), await new_run(tracking)])
    await log_points(tracking, first, [(0, 1.0), (1, 0.5)])
    await log_points(tracking, second, [(0, 2.0)])
    query = [("run_id", second), ("run_id", first), ("metric_key", "loss")]
    async with tracking.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk", params=query) as r:
        assert r.status == 200
        body = await r.json()
    assert [(m["run_id"], m["step"], m["value"]) for m in body["metrics"]] == [
        (first, 0, 1.0),
        (first, 1, 0.5),
        (second, 0, 2.0),
    ]
    assert set(body["metrics"][0]) == {"key", "value", "timestamp", "step", "run_id"}
    query.append(("max_results", "2"))
    async with tracking.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk", params=query) as r:
        assert len((await r.json())["metrics"]) == 2


async def test_history_bulk_interval_samples_evenly_keeping_the_ends(tracking: TestClient) -> None:
    run_id = await new_run(tracking)
    await log_points(tracking, run_id, [(step, step / 10) for step in range(10)])
    endpoint = "metrics/get-history-bulk-interval"
    base = [("run_ids", run_id), ("metric_key", "loss")]
    body = await ok(tracking, "GET", endpoint, [*base, ("max_results", "4")])
    assert [m["step"] for m in body["metrics"]] == [0, 3, 6, 9]
    body = await ok(tracking, "GET", endpoint, [*base, ("max_results", "3")])
    assert [m["step"] for m in body["metrics"]] == [0, 4, 9]
    body = await ok(tracking, "GET", endpoint, [*base, ("start_step", "2"), ("end_step", "5")])
    assert [m["step"] for m in body["metrics"]] == [2, 3, 4, 5]
    body = await ok(tracking, "GET", endpoint, [*base, ("max_results", "1")])
    assert [m["step"] for m in body["metrics"]] == [9]


@pytest.mark.parametrize(
    ("endpoint", "query", "status", "fragment"),
    [
        ("metrics/get-history-bulk", [("metric_key", "m")], 400, "at least one run_id"),
        ("metrics/get-history-bulk", [("run_id", "r")], 400, "metric_key"),
        (
            "metrics/get-history-bulk",
            [("run_id", str(i)) for i in range(101)],
            400,
            "more than 100",
        ),
        (
            "metrics/get-history-bulk",
            [("run_id", "r"), ("metric_key", "m"), ("max_results", "x")],
            400,
            "integer",
        ),
        ("metrics/get-history-bulk", [("run_id", "nope"), ("metric_key", "m")], 404, "nope"),
        ("metrics/get-history-bulk-interval", [("metric_key", "m")], 400, "run_ids"),
        ("metrics/get-history-bulk-interval", [("run_ids", "r")], 400, "metric_key"),
        (
            "metrics/get-history-bulk-interval",
            [("run_ids", str(i)) for i in range(101)] + [("metric_key", "m")],
            400,
            "at most 100",
        ),
        (
            "metrics/get-history-bulk-interval",
            [("run_ids", "r"), ("metric_key", "m"), ("max_results", "0")],
            400,
            "1 to 2500",
        ),
        (
            "metrics/get-history-bulk-interval",
            [("run_ids", "r"), ("metric_key", "m"), ("max_results", "2501")],
            400,
            "1 to 2500",
        ),
        (
            "metrics/get-history-bulk-interval",
            [("run_ids", "r"), ("metric_key", "m"), ("start_step", "1")],
            400,
            "both",
        ),
        (
            "metrics/get-history-bulk-interval",
            [("run_ids", "r"), ("metric_key", "m"), ("start_step", "3"), ("end_step", "1")],
            400,
            "greater",
        ),
        (
            "metrics/get-history-bulk-interval",
            [("run_ids", "nope"), ("metric_key", "m")],
            404,
            "nope",
        ),
        ("experiments/set-experiment-tag", {"experiment_id": "0"}, 400, "'key'"),
        (
            "experiments/set-experiment-tag",
            {"experiment_id": "0", "key": "k", "value": 5},
            400,
            "value",
        ),
        ("experiments/set-experiment-tag", {"experiment_id": "0", "key": "k" * 251}, 400, "250"),
        (
            "experiments/set-experiment-tag",
            {"experiment_id": "0", "key": "k", "value": "v" * 20001},
            400,
            "20000",
        ),
        ("experiments/set-experiment-tag", {"experiment_id": "77", "key": "k"}, 404, "77"),
        ("experiments/delete-experiment-tag", {"key": "k"}, 400, "experiment_id"),
        ("experiments/delete-experiment-tag", {"experiment_id": "77", "key": "k"}, 404, "77"),
        ("runs/delete-tag", {"run_id": "nope", "key": "k"}, 404, "nope"),
        ("runs/delete-tag", {"run_id": "nope"}, 400, "'key'"),
    ],
)
async def test_validation(
    tracking: TestClient, endpoint: str, query: object, status: int, fragment: str
) -> None:
    method = "GET" if endpoint.startswith("metrics/") else "POST"
    got_status, body = await call(tracking, method, endpoint, query)
    assert got_status == status, body
    assert body["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    assert fragment in body["message"]


@pytest.mark.parametrize(
    ("method", "path", "feature"),
    [
        ("POST", "/api/3.0/mlflow/traces", "GenAI tracing"),
        ("GET", "/api/2.0/mlflow/traces/tr-1/info", "GenAI tracing"),
        ("POST", "/api/3.0/mlflow/scorers/register", "GenAI evaluation"),
        ("POST", "/api/3.0/mlflow/datasets/create", "GenAI evaluation"),
        ("POST", "/graphql", "GraphQL"),
        ("POST", "/ajax-api/2.0/mlflow/runs/create-promptlab-run", "prompts"),
        ("GET", "/api/2.0/mlflow/gateway/routes", "AI Gateway"),
        ("POST", "/api/2.0/mlflow/webhooks", "webhooks"),
    ],
)
async def test_unsupported_features_are_named(
    tracking: TestClient, method: str, path: str, feature: str
) -> None:
    async with tracking.request(method, path) as response:
        assert response.status == 404
        body = await response.json()
    assert body["error_code"] == "ENDPOINT_NOT_FOUND"
    assert feature in body["message"]
    assert "artgw does not provide" in body["message"]


async def test_an_unknown_call_says_artgw_does_not_provide_it(tracking: TestClient) -> None:
    status, body = await call(tracking, "POST", "runs/teleport", {})
    assert (status, body["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    assert "artgw does not provide" in body["message"]
