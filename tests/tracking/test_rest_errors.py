"""Every client mistake on the tracking API: one table, (request) -> (status, error_code, message).

None of them may be a 5xx: the mlflow client retries those for minutes.
"""

import pytest
from aiohttp.test_utils import TestClient

from tests.tracking.conftest import call

DEEP = 100_000
LONG = "x" * 2049


async def seed(client: TestClient) -> dict[str, str]:
    """An experiment, a deleted experiment, a run with param p=1 and tag t, a deleted run."""
    ids: dict[str, str] = {}
    for name, key in (("existing", "exp"), ("gone", "deleted_exp")):
        ids[key] = (await call(client, "POST", "experiments/create", {"name": name}))[1][
            "experiment_id"
        ]
    await call(client, "POST", "experiments/delete", {"experiment_id": ids["deleted_exp"]})
    for key in ("run", "deleted_run"):
        body = (await call(client, "POST", "runs/create", {"experiment_id": "0"}))[1]
        ids[key] = body["run"]["info"]["run_id"]
    await call(client, "POST", "runs/delete", {"run_id": ids["deleted_run"]})
    await call(
        client, "POST", "runs/log-parameter", {"run_id": ids["run"], "key": "p", "value": "1"}
    )
    await call(client, "POST", "runs/set-tag", {"run_id": ids["run"], "key": "t", "value": "v"})
    return ids


def fill(value: object, ids: dict[str, str]) -> object:
    """Replace `{run}`-style placeholders anywhere in a request."""
    if isinstance(value, str):
        return value.format(**ids) if "{" in value and "}" in value else value
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


INVALID = "INVALID_PARAMETER_VALUE"
MISSING = "RESOURCE_DOES_NOT_EXIST"
EXISTS = "RESOURCE_ALREADY_EXISTS"
METRIC = {"run_id": "{run}", "key": "m", "value": 1, "timestamp": 1}


def located(location: object) -> dict[str, object]:
    return {"name": "n", "artifact_location": location}


def without(body: dict, field: str) -> dict:
    return {key: value for key, value in body.items() if key != field}


CASES = [
    # -- bodies that are not what a request must be ---------------------------------------------
    ("POST", "experiments/create", b"{not json", 400, INVALID, "not valid JSON"),
    ("POST", "experiments/create", b"\xff\xfe", 400, INVALID, "not valid JSON"),
    ("POST", "experiments/create", b"[1, 2]", 400, INVALID, "must be a JSON object"),
    ("POST", "experiments/create", b'"text"', 400, INVALID, "not valid JSON"),
    ("POST", "experiments/create", b"null", 400, INVALID, "must be a JSON object"),
    ("POST", "experiments/create", b"[" * DEEP + b"]" * DEEP, 400, INVALID, "nested too deeply"),
    ("POST", "experiments/create", b'{"a":' * DEEP + b"1" + b"}" * DEEP, 400, INVALID, "nested"),
    (
        "POST",
        "experiments/create",
        b'{"name": ' + b"[" * 500 + b"]" * 500 + b"}",
        400,
        INVALID,
        "'name'",
    ),
    ("POST", "experiments/create", b'{"name": "\\ud800"}', 400, INVALID, "'name'"),
    (
        "POST",
        "runs/create",
        b'{"start_time": 1' + b"0" * 5000 + b"}",
        400,
        INVALID,
        "not valid JSON",
    ),
    ("POST", "runs/create", {"start_time": 2**70}, 400, INVALID, "'start_time'"),
    ("POST", "runs/create", {"start_time": "soon"}, 400, INVALID, "'start_time'"),
    ("POST", "runs/create", {"start_time": True}, 400, INVALID, "'start_time'"),
    ("POST", "runs/create", b'{"start_time": 1e400}', 400, INVALID, "'start_time'"),
    # -- experiments ----------------------------------------------------------------------------
    ("POST", "experiments/create", {}, 400, INVALID, "Missing value for required parameter 'name'"),
    ("POST", "experiments/create", b"", 400, INVALID, "'name'"),
    ("POST", "experiments/create", {"name": ""}, 400, INVALID, "'name'"),
    ("POST", "experiments/create", {"name": 5}, 400, INVALID, "'name'"),
    ("POST", "experiments/create", {"name": "x" * 501}, 400, INVALID, "'name'"),
    ("POST", "experiments/create", {"name": "existing"}, 400, EXISTS, "existing"),
    ("POST", "experiments/create", {"name": "gone"}, 400, EXISTS, "gone"),
    ("POST", "experiments/create", {"name": "n", "tags": "t"}, 400, INVALID, "'tags'"),
    (
        "POST",
        "experiments/create",
        {"name": "n", "tags": [{"value": "v"}]},
        400,
        INVALID,
        "'tags[0].key'",
    ),
    ("POST", "experiments/create", {"name": "n", "tags": [7]}, 400, INVALID, "'tags[0]'"),
    ("POST", "experiments/create", located(3), 400, INVALID, "'artifact_location'"),
    ("POST", "experiments/create", located("s3://b/x#f"), 400, INVALID, "fragments"),
    ("POST", "experiments/create", located("s3://b/x;p=1"), 400, INVALID, "params"),
    ("POST", "experiments/create", located("s3://b/a/../x"), 400, INVALID, "'..'"),
    ("POST", "experiments/create", located("s3://b/%252e%252e/x"), 400, INVALID, "'..'"),
    ("POST", "experiments/create", located("http:///?/../../etc/"), 400, INVALID, "'..'"),
    ("POST", "experiments/create", located("s3://b/" + LONG), 400, INVALID, "2048"),
    ("POST", "experiments/create", located("runs:/abc/x"), 400, INVALID, "runs:/"),
    ("POST", "experiments/create", located("http://evil:1/x"), 400, INVALID, "host"),
    ("POST", "experiments/create", located("s3://b/x\ny"), 400, INVALID, "control"),
    ("GET", "experiments/get", None, 400, INVALID, "'experiment_id'"),
    ("GET", "experiments/get", {"experiment_id": "999"}, 404, MISSING, "id=999"),
    ("GET", "experiments/get", {"experiment_id": "abc"}, 404, MISSING, "id=abc"),
    ("GET", "experiments/get-by-name", None, 400, INVALID, "'experiment_name'"),
    ("GET", "experiments/get-by-name", {"experiment_name": "nope"}, 404, MISSING, "'nope'"),
    ("POST", "experiments/update", {"experiment_id": "{exp}"}, 400, INVALID, "'new_name'"),
    ("POST", "experiments/update", {"experiment_id": "999", "new_name": "z"}, 404, MISSING, "999"),
    (
        "POST",
        "experiments/update",
        {"experiment_id": "{exp}", "new_name": "gone"},
        400,
        EXISTS,
        "gone",
    ),
    (
        "POST",
        "experiments/update",
        {"experiment_id": "{deleted_exp}", "new_name": "z"},
        400,
        INVALID,
        "non-active",
    ),
    ("POST", "experiments/delete", {}, 400, INVALID, "'experiment_id'"),
    ("POST", "experiments/delete", {"experiment_id": "999"}, 404, MISSING, "999"),
    ("POST", "experiments/delete", {"experiment_id": "{deleted_exp}"}, 404, MISSING, "active"),
    ("POST", "experiments/restore", {"experiment_id": "{exp}"}, 404, MISSING, "deleted"),
    ("POST", "experiments/search", {"max_results": 0}, 400, INVALID, "'max_results'"),
    ("POST", "experiments/search", {"max_results": 50001}, 400, INVALID, "'max_results'"),
    ("POST", "experiments/search", {"view_type": "SOME"}, 400, INVALID, "'view_type'"),
    ("POST", "experiments/search", {"view_type": 9}, 400, INVALID, "'view_type'"),
    ("POST", "experiments/search", {"filter": "name ="}, 400, INVALID, "'filter'"),
    ("POST", "experiments/search", {"filter": "metrics.m > 1"}, 400, INVALID, "'filter'"),
    ("POST", "experiments/search", {"order_by": ["name SIDEWAYS"]}, 400, INVALID, "'order_by'"),
    ("POST", "experiments/search", {"order_by": "name"}, 400, INVALID, "'order_by'"),
    ("POST", "experiments/search", {"page_token": "garbage"}, 400, INVALID, "'page_token'"),
    ("GET", "experiments/search", {"max_results": "many"}, 400, INVALID, "'max_results'"),
    # -- runs -----------------------------------------------------------------------------------
    ("POST", "runs/create", {"experiment_id": "999"}, 404, MISSING, "id=999"),
    ("POST", "runs/create", {"experiment_id": "{deleted_exp}"}, 400, INVALID, "'active' state"),
    (
        "POST",
        "runs/create",
        {"run_name": "a", "tags": [{"key": "mlflow.runName", "value": "b"}]},
        400,
        INVALID,
        "different values",
    ),
    (
        "POST",
        "runs/create",
        {"tags": [{"key": "k" * 251, "value": "v"}]},
        400,
        INVALID,
        "'tags[0].key'",
    ),
    ("GET", "runs/get", None, 400, INVALID, "'run_id'"),
    ("GET", "runs/get", {"run_id": "nope"}, 404, MISSING, "nope"),
    ("POST", "runs/update", {"status": "FINISHED"}, 400, INVALID, "'run_id'"),
    ("POST", "runs/update", {"run_id": "nope", "status": "FINISHED"}, 404, MISSING, "nope"),
    ("POST", "runs/update", {"run_id": "{run}", "status": "DONE"}, 400, INVALID, "'status'"),
    ("POST", "runs/update", {"run_id": "{run}", "end_time": "late"}, 400, INVALID, "'end_time'"),
    (
        "POST",
        "runs/update",
        {"run_id": "{deleted_run}", "status": "FINISHED"},
        400,
        INVALID,
        "'active' state",
    ),
    ("POST", "runs/delete", {}, 400, INVALID, "'run_id'"),
    ("POST", "runs/delete", {"run_id": "nope"}, 404, MISSING, "nope"),
    ("POST", "runs/restore", {"run_id": "nope"}, 404, MISSING, "nope"),
    ("POST", "runs/search", {"experiment_ids": "0"}, 400, INVALID, "'experiment_ids'"),
    ("POST", "runs/search", {"experiment_ids": [0]}, 400, INVALID, "'experiment_ids[0]'"),
    ("POST", "runs/search", {"filter": "metrics.m > 'high'"}, 400, INVALID, "'filter'"),
    ("POST", "runs/search", {"filter": "params.p > 1"}, 400, INVALID, "'filter'"),
    ("POST", "runs/search", {"filter": "size = 1"}, 400, INVALID, "unknown attribute"),
    ("POST", "runs/search", {"filter": "params.p = '1' OR params.p = '2'"}, 400, INVALID, "AND"),
    ("POST", "runs/search", {"filter": "tags.t IN ('a')"}, 400, INVALID, "IN"),
    ("POST", "runs/search", {"filter": "params.p = 'unterminated"}, 400, INVALID, "'filter'"),
    ("POST", "runs/search", {"order_by": ["metrics.m DESC extra"]}, 400, INVALID, "'order_by'"),
    ("POST", "runs/search", {"run_view_type": "EVERYTHING"}, 400, INVALID, "'run_view_type'"),
    ("POST", "runs/search", {"max_results": -1}, 400, INVALID, "'max_results'"),
    ("POST", "runs/search", {"page_token": "eyJvZmZzZXQiOiAtMX0="}, 400, INVALID, "'page_token'"),
    # -- run data -------------------------------------------------------------------------------
    ("POST", "runs/log-metric", METRIC | {"run_id": "nope"}, 404, MISSING, "nope"),
    ("POST", "runs/log-metric", without(METRIC, "run_id"), 400, INVALID, "'run_id'"),
    ("POST", "runs/log-metric", without(METRIC, "key"), 400, INVALID, "'key'"),
    ("POST", "runs/log-metric", without(METRIC, "value"), 400, INVALID, "'value'"),
    ("POST", "runs/log-metric", without(METRIC, "timestamp"), 400, INVALID, "'timestamp'"),
    ("POST", "runs/log-metric", METRIC | {"value": "abc"}, 400, INVALID, "'value'"),
    ("POST", "runs/log-metric", METRIC | {"value": True}, 400, INVALID, "'value'"),
    ("POST", "runs/log-metric", METRIC | {"step": 1.5}, 400, INVALID, "'step'"),
    (
        "POST",
        "runs/log-metric",
        METRIC | {"run_id": "{deleted_run}"},
        400,
        INVALID,
        "'active' state",
    ),
    (
        "POST",
        "runs/log-parameter",
        {"run_id": "{run}", "key": "p", "value": "2"},
        400,
        INVALID,
        "Changing param values",
    ),
    ("POST", "runs/log-parameter", {"run_id": "{run}", "value": "2"}, 400, INVALID, "'key'"),
    (
        "POST",
        "runs/log-parameter",
        {"run_id": "{run}", "key": "q", "value": "x" * 6001},
        400,
        INVALID,
        "'value'",
    ),
    (
        "POST",
        "runs/log-parameter",
        {"run_id": "{run}", "key": "q", "value": 2},
        400,
        INVALID,
        "'value'",
    ),
    (
        "POST",
        "runs/set-tag",
        {"run_id": "{run}", "key": "k" * 251, "value": "v"},
        400,
        INVALID,
        "'key'",
    ),
    ("POST", "runs/set-tag", {"run_id": "nope", "key": "k", "value": "v"}, 404, MISSING, "nope"),
    ("POST", "runs/delete-tag", {"run_id": "{run}", "key": "absent"}, 404, MISSING, "absent"),
    ("POST", "runs/delete-tag", {"run_id": "{run}"}, 400, INVALID, "'key'"),
    (
        "POST",
        "runs/delete-tag",
        {"run_id": "{deleted_run}", "key": "t"},
        400,
        INVALID,
        "'active' state",
    ),
    ("POST", "runs/log-batch", {"metrics": []}, 400, INVALID, "'run_id'"),
    (
        "POST",
        "runs/log-batch",
        {"run_id": "{run}", "metrics": [{"value": 1, "timestamp": 1}]},
        400,
        INVALID,
        "'metrics[0].key'",
    ),
    (
        "POST",
        "runs/log-batch",
        {"run_id": "{run}", "metrics": [{"key": "m", "value": 1, "timestamp": 1}] * 1001},
        400,
        INVALID,
        "'metrics'",
    ),
    (
        "POST",
        "runs/log-batch",
        {"run_id": "{run}", "params": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]},
        400,
        INVALID,
        "twice",
    ),
    ("POST", "runs/log-batch", {"run_id": "{run}", "tags": {"key": "t"}}, 400, INVALID, "'tags'"),
    (
        "POST",
        "runs/log-batch",
        {"run_id": "{run}", "params": [{"key": "p", "value": "9"}]},
        400,
        INVALID,
        "Changing param values",
    ),
    ("GET", "metrics/get-history", {"run_id": "{run}"}, 400, INVALID, "'metric_key'"),
    ("GET", "metrics/get-history", {"run_id": "nope", "metric_key": "m"}, 404, MISSING, "nope"),
    (
        "GET",
        "metrics/get-history",
        {"run_id": "{run}", "metric_key": "m", "max_results": "0"},
        400,
        INVALID,
        "'max_results'",
    ),
    ("POST", "logged-models/search", b"[]", 400, INVALID, "JSON object"),
    # -- routes ---------------------------------------------------------------------------------
    ("GET", "runs/nope", None, 404, "ENDPOINT_NOT_FOUND", "runs/nope"),
    ("GET", "runs/create", None, 405, "BAD_REQUEST", "GET"),
    ("POST", "runs/get", {}, 405, "BAD_REQUEST", "POST"),
]


@pytest.mark.parametrize(
    ("method", "endpoint", "body", "status", "error_code", "fragment"),
    CASES,
    ids=[f"{c[0]} {c[1]} #{i}" for i, c in enumerate(CASES)],
)
async def test_client_mistake(
    tracking: TestClient,
    method: str,
    endpoint: str,
    body: object,
    status: int,
    error_code: str,
    fragment: str,
) -> None:
    ids = await seed(tracking)
    got_status, got = await call(tracking, method, fill(endpoint, ids), fill(body, ids))
    assert (got_status, got["error_code"]) == (status, error_code), got
    assert fragment in got["message"]


async def test_nothing_changed_after_a_refused_batch(tracking: TestClient) -> None:
    """A batch is all or nothing: a bad param leaves the metrics in it unlogged."""
    ids = await seed(tracking)
    batch = {
        "run_id": ids["run"],
        "metrics": [{"key": "m", "value": 1, "timestamp": 1}],
        "params": [{"key": "p", "value": "changed"}],
    }
    assert (await call(tracking, "POST", "runs/log-batch", batch))[0] == 400
    _, body = await call(tracking, "GET", "runs/get", {"run_id": ids["run"]})
    assert "metrics" not in body["run"]["data"]
