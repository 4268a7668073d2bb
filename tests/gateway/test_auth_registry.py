"""The model registry under --auth-file: its endpoints are classified by name (grants on
registered models), its searches show only readable models, and a new model version also needs
read on what it points at, since the registry then serves it."""

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.auth_users import ADMIN, OTHER, READER, WRITER, Person, UsersFile, basic
from tests.conftest import GatewayFactory

API = "/api/2.0/mlflow"


@pytest.fixture
async def client(make_gateway: GatewayFactory, tmp_path: Path) -> TestClient:
    users = UsersFile(tmp_path / "users.toml").write()
    return await make_gateway(
        artifacts_only=False,
        backend_store_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        auth_file=str(users),
    )


async def call(
    client: TestClient, who: Person, method: str, endpoint: str, body: dict
) -> tuple[int, dict]:
    kwargs = {"params": body} if method == "GET" else {"json": body}
    async with client.request(method, f"{API}/{endpoint}", headers=basic(who), **kwargs) as r:
        return r.status, await r.json()


async def admin(client: TestClient, endpoint: str, body: dict) -> dict:
    status, answer = await call(client, ADMIN, "POST", endpoint, body)
    assert status == 200, answer
    return answer


async def new_run(client: TestClient, experiment_id: str) -> str:
    if experiment_id != "0":
        await admin(client, "experiments/create", {"name": "team-exp"})
    return (await admin(client, "runs/create", {"experiment_id": experiment_id}))["run"]["info"][
        "run_id"
    ]


async def test_a_version_needs_read_on_its_source(client: TestClient) -> None:
    mine, theirs = await new_run(client, "1"), await new_run(client, "0")
    assert (await call(client, WRITER, "POST", "registered-models/create", {"name": "team-m"}))[
        0
    ] == 200
    create = "model-versions/create"
    status, answer = await call(
        client,
        WRITER,
        "POST",
        create,
        {"name": "team-m", "source": f"runs:/{mine}/model", "run_id": mine},
    )
    assert status == 200, answer
    status, answer = await call(
        client, WRITER, "POST", create, {"name": "team-m", "source": f"runs:/{theirs}/model"}
    )
    assert status == 403 and f"'read' permission on run '{theirs}'" in answer["message"]
    status, answer = await call(
        client,
        WRITER,
        "POST",
        create,
        {
            "name": "team-m",
            "source": f"mlflow-artifacts:/1/{mine}/artifacts/model",
            "run_id": theirs,
        },
    )
    assert status == 403  # the run named beside the source counts too
    status, _ = await call(
        client, WRITER, "POST", create, {"name": "team-m", "source": "s3://bucket/anything"}
    )
    assert status == 403
    status, answer = await call(
        client, WRITER, "POST", create, {"name": "other-m", "source": f"runs:/{mine}/model"}
    )
    assert status == 403 and "registered model 'other-m'" in answer["message"]
    await admin(client, "registered-models/create", {"name": "x"})
    assert (
        await call(client, ADMIN, "POST", create, {"name": "x", "source": f"runs:/{theirs}/model"})
    )[0] == 200


async def test_registry_searches_show_only_readable_models(client: TestClient) -> None:
    for name in ("team-a", "other-b", "team-c"):
        await admin(client, "registered-models/create", {"name": name})
    seen = {}
    for who in (READER, WRITER, OTHER):
        status, body = await call(client, who, "GET", "registered-models/search", {})
        assert status == 200
        seen[who.name] = sorted(m["name"] for m in body.get("registered_models", []))
    assert seen == {
        "reader": ["other-b", "team-a", "team-c"],
        "writer": ["team-a", "team-c"],
        "other": ["other-b"],
    }


@pytest.mark.parametrize(
    ("who", "method", "endpoint", "allowed"),
    [
        (WRITER, "DELETE", "registered-models/delete", False),  # write < delete
        (OTHER, "DELETE", "registered-models/delete", False),
        (ADMIN, "DELETE", "registered-models/delete", True),
        (READER, "GET", "registered-models/get", True),
        (OTHER, "GET", "registered-models/get", False),
        (WRITER, "POST", "registered-models/set-tag", True),
        (READER, "POST", "registered-models/set-tag", False),
        (WRITER, "POST", "registered-models/rename", False),  # the new name is not the team's
    ],
)
async def test_registry_routes_by_name(
    client: TestClient, who: Person, method: str, endpoint: str, allowed: bool
) -> None:
    await admin(client, "registered-models/create", {"name": "team-a"})
    body = {"name": "team-a", "key": "k", "value": "v", "new_name": "elsewhere"}
    status, answer = await call(client, who, method, endpoint, body)
    assert (status == 200) if allowed else (status == 403), (status, answer)
