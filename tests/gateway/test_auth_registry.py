"""Registry endpoints are classified by name (grants on registered models); a new model version
also needs read on what it points at, since the registry then serves it. The registry is the
real one, its models made by the admin."""

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from gateway.app import make_app
from gateway.settings import Settings
from tests.auth_users import ADMIN, OTHER, READER, WRITER, UsersFile, basic

API = "/api/2.0/mlflow"


MODELS = ("team-a", "other-b", "team-c", "team-m", "other-m", "x", "zz-last")


async def as_admin(client: TestClient, method: str, endpoint: str, body: dict) -> None:
    async with client.request(method, f"{API}/{endpoint}", json=body, headers=basic(ADMIN)) as r:
        assert r.status == 200, await r.text()


@pytest.fixture
async def client(aiohttp_client, tmp_path: Path) -> TestClient:
    users = UsersFile(tmp_path / "users.toml").write()
    settings = Settings(
        artifacts_destination=str(tmp_path / "store"),
        backend_store_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        auth_file=str(users),
    )
    client = await aiohttp_client(make_app(settings))
    for name in MODELS:
        await as_admin(client, "POST", "registered-models/create", {"name": name})
    version = {"name": "team-a", "source": "mlflow-artifacts:/team/a"}
    await as_admin(client, "POST", "model-versions/create", version)
    alias = {"name": "team-a", "alias": "champion", "version": "1"}
    await as_admin(client, "POST", "registered-models/alias", alias)
    return client


async def new_run(client: TestClient, experiment_id: str) -> str:
    if experiment_id != "0":
        await client.post(
            f"{API}/experiments/create", json={"name": "team-exp"}, headers=basic(ADMIN)
        )
    async with client.post(
        f"{API}/runs/create", json={"experiment_id": experiment_id}, headers=basic(ADMIN)
    ) as r:
        return (await r.json())["run"]["info"]["run_id"]


async def create_version(client: TestClient, who, **body: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    async with client.post(f"{API}/model-versions/create", json=body, headers=basic(who)) as r:
        return r.status, await r.text()


async def test_a_version_needs_read_on_its_source(client: TestClient) -> None:
    mine, theirs = await new_run(client, "1"), await new_run(client, "0")
    assert (await create_version(client, WRITER, name="team-m", source=f"runs:/{mine}/model"))[
        0
    ] == 200
    status, text = await create_version(
        client, WRITER, name="team-m", source=f"runs:/{theirs}/model"
    )
    assert status == 403 and f"'read' permission on run '{theirs}'" in text
    status, _ = await create_version(client, WRITER, name="team-m", source="s3://bucket/anything")
    assert status == 403
    status, _ = await create_version(
        client, WRITER, name="team-m", source="mlflow-artifacts:/team/m"
    )
    assert status == 200  # the writer's own prefix
    status, text = await create_version(
        client, WRITER, name="other-m", source=f"runs:/{mine}/model"
    )
    assert status == 403 and "registered model 'other-m'" in text
    assert (await create_version(client, ADMIN, name="x", source=f"runs:/{theirs}/model"))[0] == 200


async def test_registry_searches_show_only_readable_models(client: TestClient) -> None:
    seen = {}
    page = {"max_results": "3"}  # other-b, other-m, team-a of the models, by name
    for who in (READER, WRITER, OTHER):
        async with client.get(
            f"{API}/registered-models/search", params=page, headers=basic(who)
        ) as r:
            body = await r.json()
            seen[who.name] = [m["name"] for m in body["registered_models"]]
            assert "next_page_token" in body
    assert seen == {
        "reader": ["other-b", "other-m", "team-a"],
        "writer": ["team-a"],
        "other": ["other-b", "other-m"],
    }


@pytest.mark.parametrize(
    ("who", "method", "endpoint", "status"),
    [
        (WRITER, "DELETE", "registered-models/delete", 403),  # write < delete
        (OTHER, "DELETE", "registered-models/delete", 403),
        (ADMIN, "DELETE", "registered-models/delete", 200),
        (READER, "GET", "registered-models/alias?name=team-a&alias=champion", 200),
        (OTHER, "GET", "registered-models/alias?name=team-a&alias=champion", 403),
        (WRITER, "GET", "registered-models/alias?name=team-a&alias=champion", 200),
    ],
)
async def test_registry_routes_by_name(
    client: TestClient, who, method: str, endpoint: str, status: int
) -> None:  # type: ignore[no-untyped-def]
    body = {"name": "team-a"} if method != "GET" else None
    async with client.request(method, f"{API}/{endpoint}", json=body, headers=basic(who)) as r:
        assert r.status == status, await r.text()
