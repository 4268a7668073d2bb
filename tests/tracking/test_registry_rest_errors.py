"""Every client mistake on the registry API, one table: (request) -> (status, error_code, message
fragment). None may be a 5xx (the client retries those for minutes). The checks are the same SQL
on every engine, so the table runs on SQLite; test_registry_rest.py covers PostgreSQL."""

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

import gateway.tracking  # noqa: F401 (SQLAlchemy imported before an event loop runs)
from tests.conftest import GatewayFactory
from tests.tracking.conftest import call
from tests.tracking.test_rest_errors import fill

INVALID = "INVALID_PARAMETER_VALUE"
MISSING = "RESOURCE_DOES_NOT_EXIST"
EXISTS = "RESOURCE_ALREADY_EXISTS"
DENIED = "PERMISSION_DENIED"


@pytest.fixture
async def registry(make_gateway: GatewayFactory, tmp_path: Path) -> TestClient:
    return await make_gateway(artifacts_only=False, backend_store_uri=f"sqlite:///{tmp_path}/r.db")


async def seed(client: TestClient) -> dict[str, str]:
    """Model `m` with version 1 (alias `champion`), model `other`, a run."""
    run = (await call(client, "POST", "runs/create", {"experiment_id": "0"}))[1]["run"]["info"]
    for name in ("m", "other"):
        await call(client, "POST", "registered-models/create", {"name": name})
    version = {"name": "m", "source": "mlflow-artifacts:/0/x/artifacts/model"}
    await call(client, "POST", "model-versions/create", version)
    alias = {"name": "m", "alias": "champion", "version": "1"}
    await call(client, "POST", "registered-models/alias", alias)
    return {"run": run["run_id"], "root": run["artifact_uri"]}


def mv(source: str, **fields: object) -> dict:
    return {"name": "m", "source": source, **fields}


V = {"name": "m", "version": "1"}
CASES = [
    # -- registered models ----------------------------------------------------------------------
    ("POST", "registered-models/create", {}, 400, INVALID, "'name'"),
    ("POST", "registered-models/create", {"name": ""}, 400, INVALID, "'name'"),
    ("POST", "registered-models/create", {"name": "  "}, 400, INVALID, "'name'"),
    ("POST", "registered-models/create", {"name": 3}, 400, INVALID, "'name'"),
    ("POST", "registered-models/create", {"name": "a/b"}, 400, INVALID, "'/' or ':'"),
    ("POST", "registered-models/create", {"name": "a:b"}, 400, INVALID, "'/' or ':'"),
    ("POST", "registered-models/create", {"name": "x" * 300}, 400, INVALID, "longer"),
    ("POST", "registered-models/create", {"name": "m"}, 400, EXISTS, "(name=m) already exists"),
    ("POST", "registered-models/create", {"name": "n", "tags": "t"}, 400, INVALID, "'tags'"),
    (
        "POST",
        "registered-models/create",
        {"name": "n", "tags": [{}]},
        400,
        INVALID,
        "'tags[0].key'",
    ),
    (
        "POST",
        "registered-models/create",
        {"name": "n", "tags": [{"key": "k" * 251, "value": "v"}]},
        400,
        INVALID,
        "250",
    ),
    (
        "POST",
        "registered-models/create",
        {"name": "n", "description": 5},
        400,
        INVALID,
        "'description'",
    ),
    ("GET", "registered-models/get", None, 400, INVALID, "'name'"),
    ("GET", "registered-models/get", {"name": "nope"}, 404, MISSING, "name=nope not found"),
    ("POST", "registered-models/rename", {"name": "m"}, 400, INVALID, "'new_name'"),
    ("POST", "registered-models/rename", {"name": "m", "new_name": "a/b"}, 400, INVALID, "'/'"),
    ("POST", "registered-models/rename", {"name": "nope", "new_name": "z"}, 404, MISSING, "nope"),
    ("POST", "registered-models/rename", {"name": "m", "new_name": "other"}, 400, EXISTS, "other"),
    ("PATCH", "registered-models/update", {"name": "nope"}, 404, MISSING, "nope"),
    ("PATCH", "registered-models/update", {}, 400, INVALID, "'name'"),
    ("DELETE", "registered-models/delete", {}, 400, INVALID, "'name'"),
    ("DELETE", "registered-models/delete", {"name": "nope"}, 404, MISSING, "nope"),
    ("POST", "registered-models/set-tag", {"name": "m"}, 400, INVALID, "'key'"),
    ("POST", "registered-models/set-tag", {"name": "nope", "key": "k"}, 404, MISSING, "nope"),
    ("POST", "registered-models/set-tag", {"name": "m", "key": "../k"}, 400, INVALID, "'key'"),
    (
        "POST",
        "registered-models/set-tag",
        {"name": "m", "key": "k", "value": 1},
        400,
        INVALID,
        "'value'",
    ),
    (
        "POST",
        "registered-models/set-tag",
        {"name": "m", "key": "k", "value": "v" * 100_001},
        400,
        INVALID,
        "100000",
    ),
    ("DELETE", "registered-models/delete-tag", {"name": "nope", "key": "k"}, 404, MISSING, "nope"),
    ("DELETE", "registered-models/delete-tag", {"name": "m"}, 400, INVALID, "'key'"),
    # -- searches -------------------------------------------------------------------------------
    ("GET", "registered-models/search", {"max_results": "1001"}, 400, INVALID, "max_results"),
    ("GET", "registered-models/search", {"max_results": "0"}, 400, INVALID, "max_results"),
    ("GET", "registered-models/search", {"max_results": "lots"}, 400, INVALID, "'max_results'"),
    ("GET", "registered-models/search", {"filter": "name = m"}, 400, INVALID, "Invalid filter"),
    ("GET", "registered-models/search", {"filter": "run_id = 'x'"}, 400, INVALID, "run_id"),
    ("GET", "registered-models/search", {"filter": "name = 'a' OR x"}, 400, INVALID, "AND"),
    ("GET", "registered-models/search", {"order_by": "size"}, 400, INVALID, "order by key"),
    ("GET", "registered-models/search", {"order_by": "name UP"}, 400, INVALID, "order_by"),
    ("GET", "registered-models/search", {"page_token": "bogus"}, 400, INVALID, "page_token"),
    ("GET", "model-versions/search", {"max_results": "200001"}, 400, INVALID, "max_results"),
    ("GET", "model-versions/search", {"filter": "version_number = 1.5"}, 400, INVALID, "integer"),
    ("GET", "model-versions/search", {"filter": "stage = 'x'"}, 400, INVALID, "stage"),
    ("GET", "model-versions/search", {"order_by": ["name", "name"]}, 400, INVALID, "duplicate"),
    # -- latest versions, aliases ---------------------------------------------------------------
    ("POST", "registered-models/get-latest-versions", {}, 400, INVALID, "'name'"),
    ("POST", "registered-models/get-latest-versions", {"name": "nope"}, 404, MISSING, "nope"),
    (
        "POST",
        "registered-models/get-latest-versions",
        {"name": "m", "stages": ["Shipped"]},
        400,
        INVALID,
        "Invalid Model Version stage",
    ),
    ("POST", "registered-models/alias", {"name": "m", "alias": "a"}, 400, INVALID, "'version'"),
    ("POST", "registered-models/alias", {**V, "alias": "latest"}, 400, INVALID, "reserved"),
    ("POST", "registered-models/alias", {**V, "alias": "v2"}, 400, INVALID, "reserved"),
    ("POST", "registered-models/alias", {**V, "alias": "a b"}, 400, INVALID, "alphanumerics"),
    ("POST", "registered-models/alias", {**V, "alias": "x" * 256}, 400, INVALID, "255"),
    ("POST", "registered-models/alias", {**V, "alias": ""}, 400, INVALID, "'alias'"),
    (
        "POST",
        "registered-models/alias",
        {"name": "m", "version": "9", "alias": "a"},
        404,
        MISSING,
        "version=9",
    ),
    (
        "POST",
        "registered-models/alias",
        {"name": "m", "version": "one", "alias": "a"},
        400,
        INVALID,
        "integer",
    ),
    ("POST", "registered-models/alias", {**V, "name": "nope", "alias": "a"}, 404, MISSING, "nope"),
    (
        "GET",
        "registered-models/alias",
        {"name": "m", "alias": "gone"},
        400,
        INVALID,
        "gone not found",
    ),
    (
        "GET",
        "registered-models/alias",
        {"name": "other", "alias": "latest"},
        404,
        MISSING,
        "Latest",
    ),
    ("GET", "registered-models/alias", {"name": "nope", "alias": "a"}, 404, MISSING, "nope"),
    ("GET", "registered-models/alias", {"name": "m"}, 400, INVALID, "'alias'"),
    ("DELETE", "registered-models/alias", {"name": "nope", "alias": "a"}, 404, MISSING, "nope"),
    # -- model versions -------------------------------------------------------------------------
    ("POST", "model-versions/create", {"name": "m"}, 400, INVALID, "'source'"),
    ("POST", "model-versions/create", mv(""), 400, INVALID, "'source'"),
    ("POST", "model-versions/create", {"source": "runs:/{run}/m"}, 400, INVALID, "'name'"),
    (
        "POST",
        "model-versions/create",
        {**mv("runs:/{run}/m"), "name": "nope"},
        404,
        MISSING,
        "nope",
    ),
    ("POST", "model-versions/create", mv("runs:/nope/model"), 400, INVALID, "does not exist"),
    ("POST", "model-versions/create", mv("runs:/{run}/m", run_id="other"), 400, INVALID, "run_id"),
    (
        "POST",
        "model-versions/create",
        mv("{root}/m", run_id="nope"),
        400,
        INVALID,
        "does not exist",
    ),
    (
        "POST",
        "model-versions/create",
        mv("mlflow-artifacts:/0/elsewhere/m", run_id="{run}"),
        400,
        INVALID,
        "contains",
    ),
    ("POST", "model-versions/create", mv("models:/nope/1"), 404, MISSING, "nope"),
    ("POST", "model-versions/create", mv("models:/m/7"), 404, MISSING, "version=7"),
    ("POST", "model-versions/create", mv("models:/m@gone"), 400, INVALID, "gone"),
    ("POST", "model-versions/create", mv("models:/m/Shipped"), 400, INVALID, "stage"),
    ("POST", "model-versions/create", mv("models:/m-" + "0" * 32), 400, INVALID, "logged model"),
    (
        "POST",
        "model-versions/create",
        mv("file:///etc/"),
        400,
        INVALID,
        "Invalid model version source",
    ),
    ("POST", "model-versions/create", mv("//proc/self/root"), 400, INVALID, "source"),
    ("POST", "model-versions/create", mv("../../etc"), 400, INVALID, "source"),
    ("POST", "model-versions/create", mv("s3://anybody/x"), 400, INVALID, "source"),
    (
        "POST",
        "model-versions/create",
        mv("http://attacker:1/api/2.0/mlflow-artifacts/artifacts/x"),
        400,
        INVALID,
        "source",
    ),
    (
        "POST",
        "model-versions/create",
        mv("x", tags=[{"value": "v"}]),
        400,
        INVALID,
        "'tags[0].key'",
    ),
    ("POST", "model-versions/create", mv("x", run_link=3), 400, INVALID, "'run_link'"),
    ("GET", "model-versions/get", {"name": "m"}, 400, INVALID, "'version'"),
    ("GET", "model-versions/get", {"name": "m", "version": "x"}, 400, INVALID, "integer"),
    ("GET", "model-versions/get", {"name": "m", "version": "2"}, 404, MISSING, "version=2"),
    ("GET", "model-versions/get", {"name": "nope", "version": "1"}, 404, MISSING, "nope"),
    ("PATCH", "model-versions/update", {"name": "m", "version": "2"}, 404, MISSING, "version=2"),
    ("POST", "model-versions/transition-stage", {**V, "stage": "Gold"}, 400, INVALID, "stage"),
    ("POST", "model-versions/transition-stage", V, 400, INVALID, "'stage'"),
    (
        "POST",
        "model-versions/transition-stage",
        {**V, "stage": "Archived", "archive_existing_versions": True},
        400,
        INVALID,
        "Active stage",
    ),
    (
        "POST",
        "model-versions/transition-stage",
        {**V, "stage": "Staging", "archive_existing_versions": "maybe"},
        400,
        INVALID,
        "'archive_existing_versions'",
    ),
    (
        "POST",
        "model-versions/transition-stage",
        {"name": "m", "version": "3", "stage": "Staging"},
        404,
        MISSING,
        "version=3",
    ),
    ("DELETE", "model-versions/delete", {"name": "m", "version": "5"}, 404, MISSING, "version=5"),
    ("DELETE", "model-versions/delete", {"name": "m"}, 400, INVALID, "'version'"),
    ("GET", "model-versions/get-download-uri", {"name": "m", "version": "5"}, 404, MISSING, "5"),
    ("GET", "model-versions/get-download-uri", {"name": "m"}, 400, INVALID, "'version'"),
    ("POST", "model-versions/set-tag", {**V, "key": ""}, 400, INVALID, "'key'"),
    ("POST", "model-versions/set-tag", {**V, "version": "8", "key": "k"}, 404, MISSING, "8"),
    ("DELETE", "model-versions/delete-tag", {**V, "version": "8", "key": "k"}, 404, MISSING, "8"),
]


async def test_client_mistakes(registry: TestClient) -> None:
    """One seeded server for the whole table (a refused request changes nothing), so every
    mismatch is reported at once."""
    ids = await seed(registry)
    wrong = []
    for method, endpoint, body, status, error_code, fragment in CASES:
        got_status, got = await call(registry, method, endpoint, fill(body, ids))
        if (got_status, got.get("error_code")) != (status, error_code) or fragment not in str(
            got.get("message")
        ):
            wrong.append((method, endpoint, body, got_status, got))
    assert wrong == []
    assert len(CASES) > 90


ARTIFACT_CASES = [
    ({"name": "m", "version": "1"}, 400, INVALID),  # no path
    ({"name": "m", "version": "1", "path": "../../etc/passwd"}, 400, INVALID),
    ({"name": "m", "version": "1", "path": "/etc/passwd"}, 400, INVALID),
    ({"name": "m", "version": "1", "path": "a\\..\\..\\etc"}, 400, INVALID),
    ({"name": "m", "version": "9", "path": "MLmodel"}, 404, MISSING),
    ({"name": "nope", "version": "1", "path": "MLmodel"}, 404, MISSING),
    ({"name": "m", "version": "x", "path": "MLmodel"}, 400, INVALID),
    ({"name": "m", "version": "1", "path": "MLmodel"}, 404, MISSING),  # no such file
]


async def test_get_artifact_mistakes(registry: TestClient) -> None:
    await seed(registry)
    wrong = []
    for query, status, error_code in ARTIFACT_CASES:
        async with registry.get("/model-versions/get-artifact", params=query) as response:
            body = await response.json()
            if (response.status, body["error_code"]) != (status, error_code):
                wrong.append((query, response.status, body))
    assert wrong == []


async def test_versions_of_runs_outside_the_destination_are_never_read(
    registry: TestClient,
) -> None:
    """CVE-2023-1177 through a run: an experiment may point anywhere (MLflow accepts `file:`
    locations for clients that log directly), and a version may name that run, but the server
    reads no file from there."""
    await call(registry, "POST", "registered-models/create", {"name": "m"})
    for number, location in enumerate(("file:///etc", "s3://someone-elses-bucket/x"), start=1):
        body = {"name": f"e{number}", "artifact_location": location}
        experiment = (await call(registry, "POST", "experiments/create", body))[1]
        created = await call(
            registry, "POST", "runs/create", {"experiment_id": experiment["experiment_id"]}
        )
        run_id = created[1]["run"]["info"]["run_id"]
        version = {"name": "m", "source": f"runs:/{run_id}/../../passwd"}
        status, body = await call(registry, "POST", "model-versions/create", version)
        assert (status, body["error_code"]) == (400, INVALID)
        version = {"name": "m", "source": f"runs:/{run_id}/x"}
        assert (await call(registry, "POST", "model-versions/create", version))[0] == 200
        query = {"name": "m", "version": str(number), "path": "passwd"}
        async with registry.get("/model-versions/get-artifact", params=query) as response:
            body = await response.json()
            assert (response.status, body["error_code"]) == (403, DENIED), body
