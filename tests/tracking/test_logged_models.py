"""MLflow 3's logged models, run inputs and outputs, and MLflow 2's runs/log-model over REST, on
SQLite and PostgreSQL: the wire shapes of API-TRACKING.md A-C, search as MLflow's, and every
client mistake a 4xx JSON error."""

import json
import re

import pytest
from aiohttp.test_utils import TestClient

import gateway.tracking  # noqa: F401 - imported before any test loop (blockbuster)
from tests.conftest import ARTIFACTS
from tests.tracking.conftest import call


async def ok(client: TestClient, method: str, endpoint: str, body: object = None) -> dict:
    status, got = await call(client, method, endpoint, body)
    assert status == 200, got
    return got


async def new_run(client: TestClient, experiment_id: str = "0") -> str:
    body = await ok(client, "POST", "runs/create", {"experiment_id": experiment_id})
    return body["run"]["info"]["run_id"]


async def new_model(client: TestClient, **fields: object) -> dict:
    body = await ok(client, "POST", "logged-models", {"experiment_id": "0", **fields})
    return body["model"]


async def test_create_get_finalize(tracking: TestClient) -> None:
    run_id = await new_run(tracking)
    model = await new_model(
        tracking,
        name="model",
        source_run_id=run_id,
        params=[{"key": "alpha", "value": "0.5"}],
        tags=[{"key": "mlflow.user", "value": "alice"}],
    )
    info = model["info"]
    assert re.fullmatch(r"m-[0-9a-f]{32}", info["model_id"])
    assert info["artifact_uri"] == f"mlflow-artifacts:/0/models/{info['model_id']}/artifacts"
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert (info["name"], info["model_type"], info["source_run_id"]) == ("model", "", run_id)
    assert info["tags"] == [{"key": "mlflow.user", "value": "alice"}]
    assert info["creation_timestamp_ms"] == info["last_updated_timestamp_ms"]
    assert model["data"] == {"params": [{"key": "alpha", "value": "0.5"}]}
    endpoint = f"logged-models/{info['model_id']}"
    assert (await ok(tracking, "GET", endpoint))["model"] == model
    body = {"model_id": info["model_id"], "status": "LOGGED_MODEL_READY"}
    finalized = (await ok(tracking, "PATCH", endpoint, body))["model"]
    assert finalized["info"]["status"] == "LOGGED_MODEL_READY"
    unnamed = (await new_model(tracking))["info"]
    assert unnamed["name"] and "data" not in unnamed


async def test_tags_params_delete(tracking: TestClient) -> None:
    model_id = (await new_model(tracking, name="m"))["info"]["model_id"]
    endpoint = f"logged-models/{model_id}"
    tags = [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}, {"key": "a", "value": "3"}]
    await ok(tracking, "PATCH", f"{endpoint}/tags", {"tags": tags})
    await ok(tracking, "DELETE", f"{endpoint}/tags/b")
    status, body = await call(tracking, "DELETE", f"{endpoint}/tags/b")
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    params = {"model_id": model_id, "params": [{"key": "p", "value": "1"}]}
    await ok(tracking, "POST", f"{endpoint}/params", params)
    got = (await ok(tracking, "GET", endpoint))["model"]
    assert got["info"]["tags"] == [{"key": "a", "value": "3"}]
    assert got["data"]["params"] == [{"key": "p", "value": "1"}]
    await ok(tracking, "DELETE", endpoint, {"model_id": model_id})
    status, body = await call(tracking, "GET", endpoint)
    assert (status, body["message"]) == (404, f"Logged model with ID '{model_id}' not found.")
    assert (await ok(tracking, "GET", endpoint, {"allow_deleted": "true"}))["model"]


async def test_model_metrics_from_log_batch(tracking: TestClient) -> None:
    run_id = await new_run(tracking)
    model_id = (await new_model(tracking, name="m", source_run_id=run_id))["info"]["model_id"]
    metric = {"key": "acc", "value": 0.9, "timestamp": 5, "step": 0, "model_id": model_id}
    metric |= {"dataset_name": "ds", "dataset_digest": "abc"}
    await ok(tracking, "POST", "runs/log-batch", {"run_id": run_id, "metrics": [metric]})
    await ok(tracking, "POST", "runs/log-metric", {"run_id": run_id, **metric, "key": "loss"})
    got = (await ok(tracking, "GET", f"logged-models/{model_id}"))["model"]
    assert [m["key"] for m in got["data"]["metrics"]] == ["acc", "loss"]
    assert got["data"]["metrics"][0] == {**metric, "run_id": run_id}
    run = (await ok(tracking, "GET", "runs/get", {"run_id": run_id}))["run"]
    assert {m["key"] for m in run["data"]["metrics"]} == {"acc", "loss"}


async def test_search(tracking: TestClient) -> None:
    run_id = await new_run(tracking)
    made = []
    for i, name in enumerate(["alpha", "beta", "gamma"]):
        model = await new_model(
            tracking,
            name=name,
            params=[{"key": "lr", "value": str(i)}],
            tags=[{"key": "t", "value": name}],
        )
        made.append(model["info"]["model_id"])
        metric = {"key": "acc", "value": i / 10, "timestamp": i, "model_id": made[-1]}
        await ok(tracking, "POST", "runs/log-batch", {"run_id": run_id, "metrics": [metric]})

    async def names(**body: object) -> list[str]:
        got = await ok(tracking, "POST", "logged-models/search", {"experiment_ids": ["0"], **body})
        return [m["info"]["name"] for m in got.get("models", [])]

    assert await names() == ["gamma", "beta", "alpha"]  # newest first
    assert await names(filter="name = 'beta'") == ["beta"]
    assert await names(filter="name='beta'") == ["beta"]
    assert await names(filter="metrics.acc > 0.05") == ["gamma", "beta"]
    assert await names(filter="params.lr = '0'") == ["alpha"]
    assert await names(filter="tags.`t` IN ('alpha', 'gamma')") == ["gamma", "alpha"]
    assert await names(filter="name LIKE '%a' AND params.lr != '2'") == ["beta", "alpha"]
    assert await names(filter="status = 'LOGGED_MODEL_PENDING'") == ["gamma", "beta", "alpha"]
    assert await names(filter="creation_timestamp > 0 and name ilike 'ALPHA'") == ["alpha"]
    order = [{"field_name": "metrics.acc", "ascending": True}]
    assert await names(order_by=order) == ["alpha", "beta", "gamma"]
    assert await names(order_by=[{"field_name": "name"}]) == ["alpha", "beta", "gamma"]
    assert await names(datasets=[{"dataset_name": "none"}]) == []
    await ok(tracking, "DELETE", f"logged-models/{made[1]}")
    assert await names() == ["gamma", "alpha"]


async def test_search_pages(tracking: TestClient) -> None:
    for i in range(5):
        await new_model(tracking, name=f"m{i}")
    seen, token = [], None
    body = {"experiment_ids": ["0"], "max_results": 2, "order_by": [{"field_name": "name"}]}
    while True:
        page = await ok(
            tracking,
            "POST",
            "logged-models/search",
            body | ({"page_token": token} if token else {}),
        )
        seen += [m["info"]["name"] for m in page["models"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert seen == [f"m{i}" for i in range(5)]
    first = await ok(tracking, "POST", "logged-models/search", body)
    other = {
        "experiment_ids": ["0"],
        "filter": "name = 'x'",
        "page_token": first["next_page_token"],
    }
    status, got = await call(tracking, "POST", "logged-models/search", other)
    assert (status, got["error_code"]) == (400, "INVALID_PARAMETER_VALUE")


async def test_inputs_and_outputs_in_runs_get_and_search(tracking: TestClient) -> None:
    run_id = await new_run(tracking)
    model_id = (await new_model(tracking, name="model", source_run_id=run_id))["info"]["model_id"]
    dataset = {"name": "ds", "digest": "abc123", "source_type": "local", "source": '{"uri": "x"}'}
    entry = {"tags": [{"key": "mlflow.data.context", "value": "training"}], "dataset": dataset}
    again = {"tags": [{"key": "mlflow.data.context", "value": "eval"}], "dataset": dataset}
    body = {"run_id": run_id, "datasets": [entry, again], "models": [{"model_id": model_id}]}
    await ok(tracking, "POST", "runs/log-inputs", body)
    await ok(tracking, "POST", "runs/log-inputs", body)
    await ok(
        tracking,
        "POST",
        "runs/outputs",
        {"run_id": run_id, "models": [{"model_id": model_id, "step": 3}]},
    )
    run = (await ok(tracking, "GET", "runs/get", {"run_id": run_id}))["run"]
    assert run["inputs"] == {"dataset_inputs": [entry], "model_inputs": [{"model_id": model_id}]}
    assert run["outputs"] == {"model_outputs": [{"model_id": model_id, "step": 3}]}
    found = await ok(tracking, "POST", "runs/search", {"experiment_ids": ["0"]})
    assert found["runs"][0]["inputs"] == {"dataset_inputs": [entry]}
    assert found["runs"][0]["outputs"] == run["outputs"]
    bare = (await ok(tracking, "GET", "runs/get", {"run_id": await new_run(tracking)}))["run"]
    assert (bare["inputs"], bare["outputs"]) == ({}, {})
    datasets = await ok(tracking, "POST", "experiments/search-datasets", {"experiment_ids": ["0"]})
    assert datasets == {
        "dataset_summaries": [
            {"experiment_id": "0", "name": "ds", "digest": "abc123", "context": "training"}
        ]
    }


async def test_log_model_appends_to_the_history_tag(tracking: TestClient) -> None:
    run_id = await new_run(tracking)
    model = {
        "artifact_path": "model",
        "flavors": {"python_function": {"loader_module": "x", "config": {"a": 1}}},
        "utc_time_created": "2026-01-01 00:00:00.000000",
        "run_id": run_id,
        "model_uuid": "u1",
    }
    for _ in range(2):
        await ok(
            tracking, "POST", "runs/log-model", {"run_id": run_id, "model_json": json.dumps(model)}
        )
    run = (await ok(tracking, "GET", "runs/get", {"run_id": run_id}))["run"]
    tag = next(t for t in run["data"]["tags"] if t["key"] == "mlflow.log-model.history")
    history = json.loads(tag["value"])
    assert len(history) == 2
    assert history[0]["flavors"] == {"python_function": {"loader_module": "x"}}
    assert history[0]["artifact_path"] == "model"


async def test_model_artifacts_through_tracking(tracking: TestClient) -> None:
    model_id = (await new_model(tracking, name="m"))["info"]["model_id"]
    async with tracking.put(
        f"{ARTIFACTS}/0/models/{model_id}/artifacts/MLmodel", data=b"x: 1\n"
    ) as r:
        assert r.status == 200
    endpoint = f"logged-models/{model_id}/artifacts/directories"
    got = await ok(tracking, "GET", endpoint)
    assert got == {
        "root_uri": f"mlflow-artifacts:/0/models/{model_id}/artifacts",
        "files": [{"path": "MLmodel", "is_dir": False, "file_size": 5}],
    }
    url = f"/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files"
    async with tracking.get(url, params={"artifact_file_path": "MLmodel"}) as response:
        assert response.status == 200
        assert await response.read() == b"x: 1\n"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    async with tracking.get(url) as response:
        assert response.status == 400
        assert (await response.json())["error_code"] == "BAD_REQUEST"
    async with tracking.get(url, params={"artifact_file_path": "../../../etc/passwd"}) as response:
        assert response.status == 400


M = "logged-models/m-00000000000000000000000000000000"


@pytest.mark.parametrize(
    ("method", "endpoint", "body", "status"),
    [
        ("POST", "logged-models", {}, 400),
        ("POST", "logged-models", {"experiment_id": 5}, 400),
        ("POST", "logged-models", {"experiment_id": "99"}, 404),
        ("POST", "logged-models", {"experiment_id": "0", "name": "a/b"}, 400),
        ("POST", "logged-models", {"experiment_id": "0", "name": "a.b"}, 400),
        ("POST", "logged-models", {"experiment_id": "0", "params": [{"value": "v"}]}, 400),
        ("POST", "logged-models", {"experiment_id": "0", "tags": "x"}, 400),
        (
            "POST",
            "logged-models",
            {
                "experiment_id": "0",
                "params": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}],
            },
            400,
        ),
        ("GET", M, None, 404),
        ("GET", M, {"allow_deleted": "maybe"}, 400),
        ("PATCH", M, {"status": "LOGGED_MODEL_READY"}, 404),
        ("PATCH", M, {}, 400),
        ("PATCH", M, {"status": "DONE"}, 400),
        ("DELETE", M, None, 404),
        ("PATCH", f"{M}/tags", {"tags": [{"key": "k"}]}, 404),
        ("DELETE", f"{M}/tags/k", None, 404),
        ("POST", f"{M}/params", {"params": [{"key": "k", "value": "v"}]}, 404),
        ("GET", f"{M}/artifacts/directories", None, 404),
        ("POST", "logged-models/search", {}, 400),
        ("POST", "logged-models/search", {"experiment_ids": "0"}, 400),
        (
            "POST",
            "logged-models/search",
            {"experiment_ids": ["0"], "filter": "name = 'a' OR name = 'b'"},
            400,
        ),
        ("POST", "logged-models/search", {"experiment_ids": ["0"], "filter": "nope = 'a'"}, 400),
        (
            "POST",
            "logged-models/search",
            {"experiment_ids": ["0"], "filter": "metrics.acc LIKE 'a'"},
            400,
        ),
        (
            "POST",
            "logged-models/search",
            {"experiment_ids": ["0"], "filter": "metrics.acc > 'x'"},
            400,
        ),
        (
            "POST",
            "logged-models/search",
            {"experiment_ids": ["0"], "filter": "status = 'BOGUS'"},
            400,
        ),
        ("POST", "logged-models/search", {"experiment_ids": ["0"], "filter": "name ="}, 400),
        (
            "POST",
            "logged-models/search",
            {"experiment_ids": ["0"], "order_by": [{"field_name": "params.x"}]},
            400,
        ),
        (
            "POST",
            "logged-models/search",
            {"experiment_ids": ["0"], "order_by": [{"field_name": "nope"}]},
            400,
        ),
        ("POST", "logged-models/search", {"experiment_ids": ["0"], "order_by": [{}]}, 400),
        ("POST", "logged-models/search", {"experiment_ids": ["0"], "max_results": 0}, 400),
        ("POST", "logged-models/search", {"experiment_ids": ["0"], "page_token": "!!"}, 400),
        ("POST", "logged-models/search", {"experiment_ids": ["0"], "datasets": [{}]}, 400),
        ("POST", "runs/log-inputs", {}, 400),
        ("POST", "runs/log-inputs", {"run_id": "nope"}, 404),
        ("POST", "runs/log-inputs", {"run_id": "r", "datasets": [{"dataset": {"name": "d"}}]}, 400),
        ("POST", "runs/log-inputs", {"run_id": "r", "datasets": [{"tags": []}]}, 400),
        (
            "POST",
            "runs/log-inputs",
            {
                "run_id": "r",
                "datasets": [
                    {
                        "dataset": {
                            "name": "d",
                            "digest": "x" * 37,
                            "source_type": "s",
                            "source": "s",
                        }
                    }
                ],
            },
            400,
        ),
        ("POST", "runs/log-inputs", {"run_id": "r", "models": [{}]}, 400),
        ("POST", "runs/outputs", {"run_id": "r"}, 400),
        ("POST", "runs/outputs", {"run_id": "r", "models": [{"model_id": "m"}]}, 400),
        ("POST", "runs/outputs", {"run_id": "nope", "models": [{"model_id": "m", "step": 0}]}, 404),
        ("POST", "runs/log-model", {"run_id": "r"}, 400),
        ("POST", "runs/log-model", {"run_id": "r", "model_json": "{nope"}, 400),
        ("POST", "runs/log-model", {"run_id": "r", "model_json": "{}"}, 400),
        (
            "POST",
            "runs/log-model",
            {
                "run_id": "nope",
                "model_json": json.dumps(
                    {"artifact_path": "m", "flavors": {}, "utc_time_created": "t", "run_id": "nope"}
                ),
            },
            404,
        ),
        ("POST", "experiments/search-datasets", {}, 400),
        (
            "POST",
            "experiments/search-datasets",
            {"experiment_ids": [str(i) for i in range(21)]},
            400,
        ),
    ],
)
async def test_validation(
    tracking: TestClient, method: str, endpoint: str, body: object, status: int
) -> None:
    got_status, got = await call(tracking, method, endpoint, body)
    assert got_status == status, got
    assert got["error_code"] in (
        "INVALID_PARAMETER_VALUE",
        "RESOURCE_DOES_NOT_EXIST",
        "BAD_REQUEST",
    )
    assert got["message"]
