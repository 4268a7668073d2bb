"""Experiment grants cover their runs' artifacts whatever the artifact root layout: the default
`<id>/<run>/artifacts`, the `experiments/<id>/...` root of the split setup, and an experiment's
own location; a run id copied into another folder gains nothing."""

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.auth_users import ADMIN, WRITER, UsersFile, basic
from tests.conftest import ARTIFACTS, GatewayFactory

API = "/api/2.0/mlflow"
EXPERIMENTS_ROOT = "http://127.0.0.1:5302/api/2.0/mlflow-artifacts/artifacts/experiments"


async def make(make_gateway: GatewayFactory, tmp_path: Path, root: str) -> TestClient:
    users = UsersFile(tmp_path / "users.toml").write()
    return await make_gateway(
        artifacts_only=False,
        backend_store_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        default_artifact_root=root,
        auth_file=str(users),
    )


async def admin_call(client: TestClient, endpoint: str, body: dict) -> dict:
    async with client.post(f"{API}/{endpoint}", json=body, headers=basic(ADMIN)) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def run_in(client: TestClient, experiment_id: str) -> tuple[str, str]:
    run = (await admin_call(client, "runs/create", {"experiment_id": experiment_id}))["run"]
    return run["info"]["run_id"], run["info"]["artifact_uri"]


async def put(client: TestClient, path: str) -> int:
    async with client.put(f"{ARTIFACTS}/{path}", data=b"x", headers=basic(WRITER)) as r:
        return r.status


@pytest.mark.parametrize(
    ("root", "folder"), [("mlflow-artifacts:/", ""), (EXPERIMENTS_ROOT, "experiments/")]
)
async def test_default_layouts(
    make_gateway: GatewayFactory, tmp_path: Path, root: str, folder: str
) -> None:
    client = await make(make_gateway, tmp_path, root)
    await admin_call(client, "experiments/create", {"name": "team-exp"})  # id 1: the writer's
    mine, uri = await run_in(client, "1")
    theirs, _ = await run_in(client, "0")
    assert uri.endswith(f"{folder}1/{mine}/artifacts")
    assert await put(client, f"{folder}1/{mine}/artifacts/model/MLmodel") == 200
    assert await put(client, f"{folder}1/loose.txt") == 200  # inside experiment 1's location
    assert await put(client, f"{folder}0/{theirs}/artifacts/x") == 403
    assert await put(client, f"{folder}0/{mine}/artifacts/x") == 403  # my run id, their folder
    assert await put(client, f"{folder}1/{theirs}/artifacts/x") == 200  # still inside mine
    assert await put(client, f"other{folder}1/{mine}/artifacts/x") == 403


async def test_an_experiments_own_location(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    client = await make(make_gateway, tmp_path, "mlflow-artifacts:/")
    body = {"name": "team-custom", "artifact_location": "mlflow-artifacts:/somewhere/else"}
    experiment_id = (await admin_call(client, "experiments/create", body))["experiment_id"]
    run_id, uri = await run_in(client, experiment_id)
    assert uri == f"mlflow-artifacts:/somewhere/else/{run_id}/artifacts"
    # the writer holds experiment_names = ["team-*"]: the run resolves to its experiment
    assert await put(client, f"somewhere/else/{run_id}/artifacts/a.txt") == 200
    assert await put(client, f"somewhere/{run_id}/artifacts/a.txt") == 403


async def test_logged_models_follow_their_experiment(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    client = await make(make_gateway, tmp_path, "mlflow-artifacts:/")
    await admin_call(client, "experiments/create", {"name": "team-exp"})
    models = {}
    for experiment_id in ("1", "0"):
        model = (await admin_call(client, "logged-models", {"experiment_id": experiment_id}))[
            "model"
        ]
        models[experiment_id] = (model["info"]["model_id"], model["info"]["artifact_uri"])
    (mine, location), (theirs, _) = models["1"], models["0"]
    assert location == f"mlflow-artifacts:/1/models/{mine}/artifacts"
    assert await put(client, f"1/models/{mine}/artifacts/MLmodel") == 200
    assert await put(client, f"0/models/{theirs}/artifacts/MLmodel") == 403
    assert await put(client, f"0/models/{mine}/artifacts/MLmodel") == 403
    for model_id, status in ((mine, 200), (theirs, 403)):
        async with client.get(f"{API}/logged-models/{model_id}", headers=basic(WRITER)) as r:
            assert r.status == status, await r.text()
        body = {"model_id": model_id, "status": "LOGGED_MODEL_READY"}
        async with client.patch(
            f"{API}/logged-models/{model_id}", json=body, headers=basic(WRITER)
        ) as r:
            assert r.status == status, await r.text()
        async with client.delete(f"{API}/logged-models/{model_id}", headers=basic(WRITER)) as r:
            assert r.status == 403  # write < delete


async def test_an_artifacts_only_server_reads_grants_from_the_tracking_store(
    make_gateway: GatewayFactory, tmp_path: Path
) -> None:
    """The split setup: runs on the tracking server, files on an --artifacts-only one that reads
    the tracking database (--auth-store-uri) to apply experiment grants."""
    tracking = await make(make_gateway, tmp_path, EXPERIMENTS_ROOT)
    await admin_call(tracking, "experiments/create", {"name": "team-exp"})
    mine, uri = await run_in(tracking, "1")
    theirs, _ = await run_in(tracking, "0")
    assert uri == f"{EXPERIMENTS_ROOT}/1/{mine}/artifacts"
    users = tmp_path / "users.toml"
    database = f"sqlite:///{tmp_path / 'mlflow.db'}"
    artifacts = await make_gateway(auth_file=str(users), auth_store_uri=database)
    assert await put(artifacts, f"experiments/1/{mine}/artifacts/a.txt") == 200
    assert await put(artifacts, f"experiments/0/{theirs}/artifacts/a.txt") == 403
    without = await make_gateway(auth_file=str(users))
    assert await put(without, f"experiments/1/{mine}/artifacts/a.txt") == 403
