"""The model registry over REST, on SQLite and PostgreSQL: registered models, versions, aliases,
tags, stages, searches, download URIs and version files, as MLflow's server answers them."""

import asyncio

from aiohttp.test_utils import TestClient

import gateway.tracking  # noqa: F401 (SQLAlchemy imported before an event loop runs)
from tests.tracking.conftest import call


async def new_run(client: TestClient) -> dict:
    status, body = await call(client, "POST", "runs/create", {"experiment_id": "0"})
    assert status == 200
    return body["run"]["info"]


async def create_model(client: TestClient, name: str, **fields: object) -> dict:
    status, body = await call(client, "POST", "registered-models/create", {"name": name, **fields})
    assert status == 200, body
    return body["registered_model"]


async def create_version(client: TestClient, name: str, source: str, **fields: object) -> dict:
    request = {"name": name, "source": source, **fields}
    status, body = await call(client, "POST", "model-versions/create", request)
    assert status == 200, body
    return body["model_version"]


async def test_registered_model_lifecycle(tracking: TestClient) -> None:
    created = await create_model(
        tracking, "clf", tags=[{"key": "team", "value": "ml"}], description="a classifier"
    )
    assert created["name"] == "clf" and created["description"] == "a classifier"
    assert created["tags"] == [{"key": "team", "value": "ml"}]
    assert created["creation_timestamp"] == created["last_updated_timestamp"]

    status, body = await call(tracking, "GET", "registered-models/get", {"name": "clf"})
    assert status == 200 and body["registered_model"] == created

    status, body = await call(
        tracking, "PATCH", "registered-models/update", {"name": "clf", "description": "new"}
    )
    assert status == 200 and body["registered_model"]["description"] == "new"

    tag = {"name": "clf", "key": "stage", "value": "beta"}
    assert (await call(tracking, "POST", "registered-models/set-tag", tag))[0] == 200
    assert (await call(tracking, "POST", "registered-models/set-tag", {**tag, "value": "ga"}))[
        0
    ] == 200
    deleted = {"name": "clf", "key": "team"}
    assert (await call(tracking, "DELETE", "registered-models/delete-tag", deleted))[0] == 200
    assert (await call(tracking, "DELETE", "registered-models/delete-tag", deleted))[0] == 200
    body = (await call(tracking, "GET", "registered-models/get", {"name": "clf"}))[1]
    assert body["registered_model"]["tags"] == [{"key": "stage", "value": "ga"}]

    status, body = await call(tracking, "DELETE", "registered-models/delete", {"name": "clf"})
    assert (status, body) == (200, {})
    status, body = await call(tracking, "GET", "registered-models/get", {"name": "clf"})
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert body["message"] == "Registered Model with name=clf not found"


async def test_versions_aliases_and_stages(tracking: TestClient) -> None:
    run = await new_run(tracking)
    await create_model(tracking, "m")
    sources = [
        f"runs:/{run['run_id']}/model",
        run["artifact_uri"] + "/model",
        "mlflow-artifacts:/0/elsewhere/artifacts/model",
    ]
    versions = []
    for source in sources:
        run_id = run["run_id"] if source == sources[1] else None
        fields = {"run_id": run_id} if run_id else {}
        versions.append(await create_version(tracking, "m", source, description="d", **fields))
    assert [v["version"] for v in versions] == ["1", "2", "3"]
    first = versions[0]
    assert first["status"] == "READY" and first["current_stage"] == "None"
    assert first["source"] == sources[0] and first["run_id"] == run["run_id"]
    assert "run_id" not in versions[2]

    alias = {"name": "m", "alias": "champion", "version": "2"}
    assert (await call(tracking, "POST", "registered-models/alias", alias))[0] == 200
    status, body = await call(
        tracking, "GET", "registered-models/alias", {"name": "m", "alias": "champion"}
    )
    assert status == 200 and body["model_version"]["version"] == "2"
    assert body["model_version"]["aliases"] == ["champion"]
    status, body = await call(
        tracking, "GET", "registered-models/alias", {"name": "m", "alias": "latest"}
    )
    assert body["model_version"]["version"] == "3"

    move = {"name": "m", "version": "1", "stage": "production", "archive_existing_versions": False}
    status, body = await call(tracking, "POST", "model-versions/transition-stage", move)
    assert status == 200 and body["model_version"]["current_stage"] == "Production"
    move = {**move, "version": "2", "archive_existing_versions": True}
    await call(tracking, "POST", "model-versions/transition-stage", move)
    stage_of = {}
    for number in ("1", "2", "3"):
        got = await call(tracking, "GET", "model-versions/get", {"name": "m", "version": number})
        stage_of[number] = got[1]["model_version"]["current_stage"]
    assert stage_of == {"1": "Archived", "2": "Production", "3": "None"}

    for method in ("POST", "GET"):
        request = {"name": "m", "stages": ["Production"]} if method == "POST" else {"name": "m"}
        status, body = await call(
            tracking, method, "registered-models/get-latest-versions", request
        )
        assert status == 200
        got = [(v["version"], v["current_stage"]) for v in body["model_versions"]]
        expected = (
            [("2", "Production")]
            if method == "POST"
            else [("3", "None"), ("2", "Production"), ("1", "Archived")]
        )
        assert got == expected

    model = (await call(tracking, "GET", "registered-models/get", {"name": "m"}))[1]
    latest = model["registered_model"]["latest_versions"]
    assert sorted(v["version"] for v in latest) == ["1", "2", "3"]
    assert model["registered_model"]["aliases"] == [{"alias": "champion", "version": "2"}]

    status, body = await call(
        tracking, "GET", "model-versions/get-download-uri", {"name": "m", "version": "2"}
    )
    assert (status, body) == (200, {"artifact_uri": sources[1]})

    update = {"name": "m", "version": "3", "description": "third"}
    status, body = await call(tracking, "PATCH", "model-versions/update", update)
    assert body["model_version"]["description"] == "third"

    tag = {"name": "m", "version": "3", "key": "validated", "value": "yes"}
    assert (await call(tracking, "POST", "model-versions/set-tag", tag))[0] == 200
    body = (await call(tracking, "GET", "model-versions/get", {"name": "m", "version": "3"}))[1]
    assert body["model_version"]["tags"] == [{"key": "validated", "value": "yes"}]
    untag = {"name": "m", "version": "3", "key": "validated"}
    assert (await call(tracking, "DELETE", "model-versions/delete-tag", untag))[0] == 200

    # deleting a version drops its aliases; its number is never given out again
    assert (await call(tracking, "DELETE", "model-versions/delete", {"name": "m", "version": "2"}))[
        0
    ] == 200
    status, body = await call(tracking, "GET", "model-versions/get", {"name": "m", "version": "2"})
    assert (status, body["message"]) == (404, "Model Version (name=m, version=2) not found")
    status, body = await call(
        tracking, "GET", "registered-models/alias", {"name": "m", "alias": "champion"}
    )
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert (await create_version(tracking, "m", sources[0]))["version"] == "4"

    unalias = {"name": "m", "alias": "nothing-here"}
    assert (await call(tracking, "DELETE", "registered-models/alias", unalias))[0] == 200


async def test_rename_moves_versions_and_aliases(tracking: TestClient) -> None:
    await create_model(tracking, "old")
    await create_version(tracking, "old", "mlflow-artifacts:/x/model")
    await call(
        tracking, "POST", "registered-models/alias", {"name": "old", "alias": "a", "version": "1"}
    )
    await create_model(tracking, "taken")
    status, body = await call(
        tracking, "POST", "registered-models/rename", {"name": "old", "new_name": "taken"}
    )
    assert (status, body["error_code"]) == (400, "RESOURCE_ALREADY_EXISTS")
    status, body = await call(
        tracking, "POST", "registered-models/rename", {"name": "old", "new_name": "new"}
    )
    assert status == 200 and body["registered_model"]["name"] == "new"
    version = (await call(tracking, "GET", "model-versions/get", {"name": "new", "version": "1"}))[
        1
    ]
    assert version["model_version"]["name"] == "new"
    assert version["model_version"]["aliases"] == ["a"]
    status, _ = await call(tracking, "GET", "registered-models/get", {"name": "old"})
    assert status == 404


async def test_searches(tracking: TestClient) -> None:
    for name, team in (("alpha", "a"), ("Beta", "b"), ("gamma", "a")):
        await create_model(tracking, name, tags=[{"key": "team", "value": team}])
        await create_version(tracking, name, f"mlflow-artifacts:/{name}/1")
    await create_version(tracking, "alpha", "mlflow-artifacts:/alpha/2")
    await create_model(
        tracking, "a-prompt", tags=[{"key": "mlflow.prompt.is_prompt", "value": "true"}]
    )

    async def names(**query: object) -> list[str]:
        status, body = await call(tracking, "GET", "registered-models/search", query)
        assert status == 200, body
        return [m["name"] for m in body.get("registered_models", [])]

    assert await names() == ["Beta", "alpha", "gamma"]  # by name, code point order; no prompts
    assert await names(filter="name LIKE '%a'") == ["Beta", "alpha", "gamma"]
    assert await names(filter="name LIKE 'b%'") == []
    assert await names(filter="name ILIKE 'b%'") == ["Beta"]
    assert await names(filter="tags.team = 'a'") == ["alpha", "gamma"]
    assert await names(filter="tags.team != 'a'") == ["Beta"]
    assert await names(filter="name IN ('alpha', 'Beta') AND tags.`team` = 'b'") == ["Beta"]
    assert await names(filter="name NOT IN ('alpha')") == ["Beta", "gamma"]
    assert await names(filter="tag.`mlflow.prompt.is_prompt` != 'true'") == [
        "Beta",
        "alpha",
        "gamma",
    ]
    assert await names(filter="tags.`mlflow.prompt.is_prompt` = 'true'") == ["a-prompt"]
    assert await names(order_by=["name DESC"]) == ["gamma", "alpha", "Beta"]

    _, page = await call(tracking, "GET", "registered-models/search", {"max_results": 2})
    assert [m["name"] for m in page["registered_models"]] == ["Beta", "alpha"]
    assert page["registered_models"][1]["latest_versions"][0]["version"] == "2"
    rest = await names(max_results=2, page_token=page["next_page_token"])
    assert rest == ["gamma"]

    async def versions(**query: object) -> list[tuple[str, str]]:
        status, body = await call(tracking, "GET", "model-versions/search", query)
        assert status == 200, body
        return [(v["name"], v["version"]) for v in body.get("model_versions", [])]

    assert await versions(filter="name = 'alpha'") == [("alpha", "2"), ("alpha", "1")]
    assert await versions(filter="name = 'alpha' AND version_number < 2") == [("alpha", "1")]
    assert await versions(filter="source_path LIKE '%/gamma/%'") == [("gamma", "1")]
    assert await versions(order_by=["name", "version_number"]) == [
        ("Beta", "1"),
        ("alpha", "1"),
        ("alpha", "2"),
        ("gamma", "1"),
    ]
    _, page = await call(
        tracking, "GET", "model-versions/search", {"max_results": 3, "order_by": ["name"]}
    )
    assert len(page["model_versions"]) == 3 and "next_page_token" in page


async def test_concurrent_creates_get_consecutive_numbers(tracking: TestClient) -> None:
    await create_model(tracking, "busy")
    request = {"name": "busy", "source": "mlflow-artifacts:/busy/model"}
    results = await asyncio.gather(
        *(call(tracking, "POST", "model-versions/create", request) for _ in range(40))
    )
    assert all(status == 200 for status, _ in results)
    numbers = sorted(int(body["model_version"]["version"]) for _, body in results)
    assert numbers == list(range(1, 41))


async def test_version_files(tracking: TestClient) -> None:
    run = await new_run(tracking)
    path = run["artifact_uri"].removeprefix("mlflow-artifacts:/")
    url = f"/api/2.0/mlflow-artifacts/artifacts/{path}/model/MLmodel"
    async with tracking.put(url, data=b"flavors: {}\n") as response:
        assert response.status == 200
    await create_model(tracking, "files")
    await create_version(tracking, "files", f"runs:/{run['run_id']}/model")
    await create_version(tracking, "files", run["artifact_uri"] + "/model", run_id=run["run_id"])
    for version in ("1", "2"):
        query = {"name": "files", "version": version, "path": "MLmodel"}
        async with tracking.get("/model-versions/get-artifact", params=query) as response:
            assert response.status == 200
            assert await response.read() == b"flavors: {}\n"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
    for bad in ("../../../etc/passwd", "/etc/passwd", "a/../../b", "a\\..\\b", "C:/x"):
        query = {"name": "files", "version": "1", "path": bad}
        async with tracking.get("/model-versions/get-artifact", params=query) as response:
            assert response.status == 400, bad
            assert (await response.json())["error_code"] == "INVALID_PARAMETER_VALUE"
    query = {"name": "files", "version": "1", "path": "nothing-here"}
    async with tracking.get("/model-versions/get-artifact", params=query) as response:
        assert response.status == 404


async def test_landing_page_lists_models_versions_and_aliases(tracking: TestClient) -> None:
    run = await new_run(tracking)
    await create_model(tracking, "shown")
    await create_version(tracking, "shown", run["artifact_uri"] + "/model", run_id=run["run_id"])
    await create_version(tracking, "shown", f"runs:/{run['run_id']}/model")
    alias = {"name": "shown", "alias": "champion", "version": "1"}
    await call(tracking, "POST", "registered-models/alias", alias)
    await create_model(tracking, "empty")
    async with tracking.get("/", headers={"Accept": "text/html"}) as response:
        page = await response.text()
    assert "Model shown" in page and "Model empty" in page and "No versions yet." in page
    folder = run["artifact_uri"].removeprefix("mlflow-artifacts:/")
    assert f'href="api/2.0/mlflow-artifacts/artifacts/{folder}/model/"' in page
    assert "@champion" in page
    assert 'href="api/2.0/mlflow/model-versions/get?name=shown&amp;version=2"' in page
