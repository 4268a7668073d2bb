"""The tracking REST API answering as MLflow's server does (API.md 4.1), on real loopback HTTP."""

import math

import pytest
from aiohttp.test_utils import TestClient

from gateway.tracking import STORE
from gateway.tracking.landing import run_href
from tests.conftest import GatewayFactory
from tests.tracking.conftest import call
from tracking.store import Run, RunInfo

SPLIT_ROOT = "http://127.0.0.1:5302/api/2.0/mlflow-artifacts/artifacts/experiments"


async def ok(client: TestClient, method: str, endpoint: str, body: object = None) -> dict:
    status, got = await call(client, method, endpoint, body)
    assert status == 200, got
    return got


async def new_run(client: TestClient, experiment_id: str = "0", **fields: object) -> str:
    body = await ok(client, "POST", "runs/create", {"experiment_id": experiment_id, **fields})
    return body["run"]["info"]["run_id"]


async def test_default_experiment_exists_from_the_first_start(tracking: TestClient) -> None:
    got = await ok(tracking, "GET", "experiments/get", {"experiment_id": "0"})
    experiment = got["experiment"]
    assert experiment["name"] == "Default"
    assert experiment["artifact_location"] == "mlflow-artifacts:/0"
    assert experiment["lifecycle_stage"] == "active"
    assert "tags" not in experiment  # empty repeated fields are left out


@pytest.mark.parametrize(
    ("root", "location", "stored"),
    [
        ("mlflow-artifacts:/", None, "mlflow-artifacts:/1"),
        (SPLIT_ROOT, None, SPLIT_ROOT + "/1"),
        ("s3://bucket/prefix", None, "s3://bucket/prefix/1"),
        ("mlflow-artifacts:/", "mlflow-artifacts:/custom", "mlflow-artifacts:/custom"),
        ("mlflow-artifacts:/", "s3://other-bucket/x", "s3://other-bucket/x"),
        (SPLIT_ROOT, "http://127.0.0.1:5302/api/2.0/mlflow-artifacts/artifacts/custom-exp", None),
    ],
)
async def test_experiment_artifact_location(
    make_gateway: GatewayFactory,
    store_uri: str,
    root: str,
    location: str | None,
    stored: str | None,
) -> None:
    client = await make_gateway(
        artifacts_only=False,
        backend_store_uri=store_uri,
        default_artifact_root=root,
    )
    body = {"name": "e"} | ({"artifact_location": location} if location else {})
    experiment_id = (await ok(client, "POST", "experiments/create", body))["experiment_id"]
    got = await ok(client, "GET", "experiments/get-by-name", {"experiment_name": "e"})
    assert got["experiment"]["experiment_id"] == experiment_id == "1"
    assert got["experiment"]["artifact_location"] == (stored or location)
    run = await ok(client, "POST", "runs/create", {"experiment_id": experiment_id})
    run_id = run["run"]["info"]["run_id"]
    assert run["run"]["info"]["artifact_uri"] == f"{stored or location}/{run_id}/artifacts"


async def test_relative_local_location_is_made_absolute(tracking: TestClient) -> None:
    body = {"name": "local", "artifact_location": "some/dir"}
    experiment_id = (await ok(tracking, "POST", "experiments/create", body))["experiment_id"]
    got = await ok(tracking, "GET", "experiments/get", {"experiment_id": experiment_id})
    assert got["experiment"]["artifact_location"].startswith("/")
    assert got["experiment"]["artifact_location"].endswith("/some/dir")


async def test_run_create_and_get_have_mlflow_fields(tracking: TestClient) -> None:
    request = {
        "experiment_id": "0",
        "user_id": "root",
        "start_time": 1795767540174,
        "tags": [{"key": "mlflow.user", "value": "root"}],
    }
    created = (await ok(tracking, "POST", "runs/create", request))["run"]
    info = created["info"]
    run_id = info["run_id"]
    assert len(run_id) == 32 and info["run_uuid"] == run_id
    assert info | {"run_name": "x"} == {
        "run_uuid": run_id,
        "run_id": run_id,
        "run_name": "x",
        "experiment_id": "0",
        "user_id": "root",
        "status": "RUNNING",
        "start_time": 1795767540174,
        "artifact_uri": f"mlflow-artifacts:/0/{run_id}/artifacts",
        "lifecycle_stage": "active",
    }
    tags = {t["key"]: t["value"] for t in created["data"]["tags"]}
    assert tags == {"mlflow.user": "root", "mlflow.runName": info["run_name"]}
    fetched = await ok(tracking, "GET", "runs/get", {"run_uuid": run_id, "run_id": run_id})
    assert fetched["run"]["info"] == info


async def test_run_data_latest_metric_params_tags(tracking: TestClient) -> None:
    run_id = await new_run(tracking, run_name="named")
    for step, value, timestamp in ((0, 0.5, 10), (2, 0.9, 5), (1, 0.7, 20)):
        metric = {"run_id": run_id, "key": "m", "value": value, "timestamp": timestamp}
        await ok(tracking, "POST", "runs/log-metric", metric | {"step": step})
    await ok(tracking, "POST", "runs/log-parameter", {"run_uuid": run_id, "key": "p", "value": "1"})
    await ok(tracking, "POST", "runs/log-parameter", {"run_id": run_id, "key": "p", "value": "1"})
    batch = {
        "run_id": run_id,
        "metrics": [{"key": "inf", "value": "Infinity", "timestamp": 1}],
        "params": [{"key": "q", "value": "x"}],
        "tags": [{"key": "t", "value": "1"}, {"key": "t", "value": "2"}],
    }
    await ok(tracking, "POST", "runs/log-batch", batch)
    data = (await ok(tracking, "GET", "runs/get", {"run_id": run_id}))["run"]["data"]
    assert data["metrics"] == [
        {"key": "inf", "value": "Infinity", "timestamp": 1, "step": 0},
        {"key": "m", "value": 0.9, "timestamp": 5, "step": 2},
    ]
    assert data["params"] == [{"key": "p", "value": "1"}, {"key": "q", "value": "x"}]
    assert {"key": "t", "value": "2"} in data["tags"]
    assert {"key": "mlflow.runName", "value": "named"} in data["tags"]


async def test_metric_history_in_time_order_with_nan(tracking: TestClient) -> None:
    run_id = await new_run(tracking)
    for timestamp, value in ((3, "NaN"), (1, 1.5), (2, -2)):
        metric = {"run_id": run_id, "key": "m", "value": value, "timestamp": timestamp}
        await ok(tracking, "POST", "runs/log-metric", metric)
    query = {"run_id": run_id, "metric_key": "m"}
    got = await ok(tracking, "GET", "metrics/get-history", query)
    assert [m["value"] for m in got["metrics"]] == [1.5, -2, "NaN"]
    first = await ok(tracking, "GET", "metrics/get-history", query | {"max_results": "2"})
    assert len(first["metrics"]) == 2 and first["next_page_token"]
    query |= {"page_token": first["next_page_token"]}
    rest = await ok(tracking, "GET", "metrics/get-history", query)
    assert rest == {"metrics": [{"key": "m", "value": "NaN", "timestamp": 3, "step": 0}]}
    assert math.isnan(float(rest["metrics"][0]["value"]))


async def test_update_delete_restore_run(tracking: TestClient) -> None:
    run_id = await new_run(tracking)
    update = {"run_id": run_id, "status": "FINISHED", "end_time": 99, "run_name": "renamed"}
    info = (await ok(tracking, "POST", "runs/update", update))["run_info"]
    assert (info["status"], info["end_time"], info["run_name"]) == ("FINISHED", 99, "renamed")
    await ok(tracking, "POST", "runs/update", {"run_id": run_id, "status": 4})  # enum by number
    assert await ok(tracking, "POST", "runs/delete", {"run_id": run_id}) == {}
    got = await ok(tracking, "GET", "runs/get", {"run_id": run_id})
    assert got["run"]["info"]["lifecycle_stage"] == "deleted"
    assert got["run"]["info"]["status"] == "FAILED"
    await ok(tracking, "POST", "runs/restore", {"run_id": run_id})
    got = await ok(tracking, "GET", "runs/get", {"run_id": run_id})
    assert got["run"]["info"]["lifecycle_stage"] == "active"
    assert {"key": "mlflow.runName", "value": "renamed"} in got["run"]["data"]["tags"]


async def test_delete_tag(tracking: TestClient) -> None:
    run_id = await new_run(tracking)
    await ok(tracking, "POST", "runs/set-tag", {"run_id": run_id, "key": "t", "value": "v"})
    assert await ok(tracking, "POST", "runs/delete-tag", {"run_id": run_id, "key": "t"}) == {}
    tags = (await ok(tracking, "GET", "runs/get", {"run_id": run_id}))["run"]["data"]["tags"]
    assert "t" not in {t["key"] for t in tags}


async def test_experiment_lifecycle_carries_its_runs(tracking: TestClient) -> None:
    experiment_id = (await ok(tracking, "POST", "experiments/create", {"name": "e"}))[
        "experiment_id"
    ]
    kept, deleted_before = (
        await new_run(tracking, experiment_id),
        await new_run(tracking, experiment_id),
    )
    await ok(tracking, "POST", "runs/delete", {"run_id": deleted_before})
    await ok(tracking, "POST", "experiments/delete", {"experiment_id": experiment_id})
    stage = await run_stage(tracking, kept)
    assert stage == "deleted"
    by_name = await ok(tracking, "GET", "experiments/get-by-name", {"experiment_name": "e"})
    assert by_name["experiment"]["lifecycle_stage"] == "deleted"
    await ok(tracking, "POST", "experiments/restore", {"experiment_id": experiment_id})
    assert await run_stage(tracking, kept) == "active"
    assert await run_stage(tracking, deleted_before) == "deleted"  # deleted on its own, earlier
    update = {"experiment_id": experiment_id, "new_name": "renamed"}
    await ok(tracking, "POST", "experiments/update", update)
    got = await ok(tracking, "GET", "experiments/get", {"experiment_id": experiment_id})
    assert got["experiment"]["name"] == "renamed"


async def run_stage(client: TestClient, run_id: str) -> str:
    return (await ok(client, "GET", "runs/get", {"run_id": run_id}))["run"]["info"][
        "lifecycle_stage"
    ]


async def test_experiment_ids_are_never_reused(tracking: TestClient) -> None:
    ids = [
        (await ok(tracking, "POST", "experiments/create", {"name": n}))["experiment_id"]
        for n in ("a", "b")
    ]
    assert ids == ["1", "2"]
    await ok(tracking, "POST", "experiments/delete", {"experiment_id": "2"})
    await tracking.app[STORE].hard_delete_experiment("2")
    assert (await ok(tracking, "POST", "experiments/create", {"name": "c"}))["experiment_id"] == "3"


SEARCH_CASES = [
    ({}, ["r3", "r2", "r1"]),
    ({"filter": "metrics.m > 0.15"}, ["r3", "r2"]),
    ({"filter": "metrics.m >= 0.2 and params.p = 'b'"}, ["r2"]),
    ({"filter": "params.p != 'a'"}, ["r3", "r2"]),
    ({"filter": "tags.kind LIKE 'tr%'"}, ["r1"]),
    ({"filter": "tags.kind LIKE 'TR%'"}, []),
    ({"filter": "tags.kind ILIKE 'TR%'"}, ["r1"]),
    ({"filter": "attributes.run_name = 'r2'"}, ["r2"]),
    ({"filter": "run_name IN ('r1')"}, None),
    ({"filter": "attributes.start_time < 3"}, ["r2", "r1"]),
    ({"filter": "`tags`.`kind` = 'train'"}, None),
    ({"filter": 'tags."kind" = "train"'}, ["r1"]),
    ({"filter": "tags.`kind` = 'train'"}, ["r1"]),
    ({"order_by": ["metrics.m ASC"]}, ["r1", "r2", "r3"]),
    ({"order_by": ["params.p DESC"]}, ["r3", "r2", "r1"]),
    ({"order_by": ["attributes.run_name"]}, ["r1", "r2", "r3"]),
    ({"run_view_type": "DELETED_ONLY"}, ["r0"]),
    ({"run_view_type": "ALL", "order_by": ["run_name"]}, ["r0", "r1", "r2", "r3"]),
]


@pytest.mark.parametrize(("request_fields", "expected"), SEARCH_CASES)
async def test_search_runs(tracking: TestClient, request_fields: dict, expected: list | None):
    for i, (m, p, kind) in enumerate(
        [(0, "", ""), (0.1, "a", "train"), (0.2, "b", ""), (0.3, "c", "")]
    ):
        run_id = await new_run(tracking, run_name=f"r{i}", start_time=i)
        batch = {"run_id": run_id, "metrics": [{"key": "m", "value": m, "timestamp": 1}]}
        batch |= {"params": [{"key": "p", "value": p}]} if p else {}
        batch |= {"tags": [{"key": "kind", "value": kind}]} if kind else {}
        await ok(tracking, "POST", "runs/log-batch", batch)
        if i == 0:
            await ok(tracking, "POST", "runs/delete", {"run_id": run_id})
    status, got = await call(
        tracking, "POST", "runs/search", {"experiment_ids": ["0"], **request_fields}
    )
    if expected is None:
        assert status == 400 and got["error_code"] == "INVALID_PARAMETER_VALUE"
        return
    assert status == 200, got
    assert [r["info"]["run_name"] for r in got.get("runs", [])] == expected


async def test_search_runs_pages(tracking: TestClient) -> None:
    for i in range(5):
        await new_run(tracking, run_name=f"r{i}", start_time=i)
    names, token = [], None
    while True:
        request = {"experiment_ids": ["0"], "max_results": 2} | (
            {"page_token": token} if token else {}
        )
        got = await ok(tracking, "POST", "runs/search", request)
        names += [r["info"]["run_name"] for r in got["runs"]]
        token = got.get("next_page_token")
        if not token:
            break
    assert names == ["r4", "r3", "r2", "r1", "r0"]


async def test_search_experiments(tracking: TestClient) -> None:
    for name in ("alpha", "beta", "gamma"):
        await ok(
            tracking,
            "POST",
            "experiments/create",
            {"name": name, "tags": [{"key": "k", "value": name}]},
        )
    await ok(tracking, "POST", "experiments/delete", {"experiment_id": "3"})
    by_name = {"order_by": ["name"]}
    assert await experiment_names(tracking, by_name) == ["Default", "alpha", "beta"]
    assert await experiment_names(tracking, {"filter": "name LIKE '%ta'"} | by_name) == ["beta"]
    assert await experiment_names(tracking, {"filter": "creation_time > 0"} | by_name) == [
        "Default",
        "alpha",
        "beta",
    ]
    assert await experiment_names(tracking, {"filter": "tags.k = 'alpha'"}) == ["alpha"]
    assert await experiment_names(tracking, {"view_type": "DELETED_ONLY"}) == ["gamma"]
    ordered = await experiment_names(tracking, {"view_type": "ALL", "order_by": ["name DESC"]})
    assert ordered == ["gamma", "beta", "alpha", "Default"]
    query = await ok(tracking, "GET", "experiments/search", {"filter": "name = 'beta'"})
    assert [e["name"] for e in query["experiments"]] == ["beta"]
    query = await ok(tracking, "GET", "experiments/search", {"view_type": "2"})
    assert [e["name"] for e in query["experiments"]] == ["gamma"]


async def experiment_names(client: TestClient, fields: dict) -> list[str]:
    got = await ok(client, "POST", "experiments/search", fields)
    return [e["name"] for e in got.get("experiments", [])]


async def test_logged_models_search_is_empty(tracking: TestClient) -> None:
    body = {"experiment_ids": ["0"], "filter": "name = 'dir'"}
    assert await ok(tracking, "POST", "logged-models/search", body) == {}


async def test_ajax_prefix_serves_the_same_api(tracking: TestClient) -> None:
    async with tracking.get("/ajax-api/2.0/mlflow/experiments/get?experiment_id=0") as response:
        assert response.status == 200
        assert (await response.json())["experiment"]["name"] == "Default"


@pytest.mark.parametrize("prefix", ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"])
@pytest.mark.parametrize(
    ("method", "endpoint"),
    [("POST", "runs/create"), ("GET", "runs/get"), ("GET", "anything/else"), ("DELETE", "x")],
)
async def test_artifacts_only_refuses_tracking(
    make_gateway: GatewayFactory, prefix: str, method: str, endpoint: str
) -> None:
    client = await make_gateway(artifacts_only=True)
    async with client.request(method, f"{prefix}/{endpoint}") as response:
        body = await response.json()
    assert response.status == 404
    assert body["error_code"] == "ENDPOINT_NOT_FOUND"
    assert "artifacts-only" in body["message"]
    async with client.get("/api/2.0/mlflow-artifacts/artifacts") as response:
        assert response.status == 200
    async with client.get("/api/3.0/mlflow/server-info") as response:
        assert (await response.json())["store_type"] is None


async def test_landing_page_lists_experiments_and_their_runs(tracking: TestClient) -> None:
    run_id = await new_run(tracking, run_name="<first & run>")
    await ok(tracking, "POST", "experiments/create", {"name": "empty"})
    async with tracking.get("/", headers={"Accept": "text/html"}) as response:
        text = await response.text()
    assert "Experiment Default (0)" in text and "Experiment empty (1)" in text
    assert "&lt;first &amp; run&gt;" in text and "No runs yet." in text
    assert f'href="api/2.0/mlflow-artifacts/artifacts/0/{run_id}/artifacts/"' in text


def test_split_runs_link_to_the_artifact_server() -> None:
    info = RunInfo("r", "0", "n", "u", "RUNNING", 1, None, f"{SPLIT_ROOT}/0/r/artifacts", "active")
    assert run_href(Run(info)) == f"{SPLIT_ROOT}/0/r/artifacts/"
    local = RunInfo("r", "0", "n", "u", "RUNNING", 1, None, "/data/0/r/artifacts", "active")
    assert run_href(Run(local)) == "api/2.0/mlflow/runs/get?run_id=r"
