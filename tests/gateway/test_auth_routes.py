"""The route table, walked: every route of the app (with tracking, and artifacts-only) has a
classification, so the auth middleware never meets a route it does not know."""

from pathlib import Path

import pytest
from aiohttp import web

from gateway.app import make_app
from gateway.auth.permissions import Permission
from gateway.auth.rules import UNCLASSIFIED, classify
from gateway.settings import Settings


def app_routes(tmp_path: Path, **changes: object) -> list[tuple[str, str]]:
    settings = Settings(
        artifacts_destination=str(tmp_path / "store"),
        backend_store_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        **changes,  # type: ignore[arg-type]
    )
    app = make_app(settings)
    return [
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    ]


@pytest.mark.parametrize("artifacts_only", [False, True], ids=["tracking", "artifacts-only"])
def test_every_route_is_classified(tmp_path: Path, artifacts_only: bool) -> None:
    routes = app_routes(tmp_path, artifacts_only=artifacts_only)
    missing = [f"{method} {path}" for method, path in routes if classify(method, path) is None]
    assert not missing, (
        "routes without an auth classification (add them to gateway/auth/rules.py): "
        + ", ".join(missing)
    )
    print(f"{len(routes) - len(missing)} of {len(routes)} routes classified")


def test_open_routes_are_exactly_the_service_ones(tmp_path: Path) -> None:
    """Besides the service routes, only the token routes of gateway part uploads and signed
    downloads: their signed, path-bound token is the permission (tests/gateway/test_signing.py)."""
    tokens = {
        f"{prefix}/mlflow-artifacts/{route}/{{path}}"
        for prefix in ("/api/2.0", "/ajax-api/2.0")
        for route in ("mpu/part", "signed")
    }
    open_routes = {
        path
        for method, path in app_routes(tmp_path)
        if classify(method, path).permission is None  # type: ignore[union-attr]
    }
    assert open_routes == {
        "/health",
        "/health/ready",
        "/version",
        "/api/3.0/mlflow/server-info",
        "/ajax-api/3.0/mlflow/server-info",
        "/favicon.ico",
        *tokens,
    }


@pytest.mark.parametrize(
    ("method", "path", "permission"),
    [
        ("GET", "/api/2.0/mlflow-artifacts/artifacts/{path}", Permission.READ),
        ("HEAD", "/ajax-api/2.0/mlflow-artifacts/artifacts/{path}", Permission.READ),
        ("PUT", "/api/2.0/mlflow-artifacts/artifacts/{path}", Permission.WRITE),
        ("DELETE", "/api/2.0/mlflow-artifacts/artifacts/{path}", Permission.DELETE),
        ("POST", "/api/2.0/mlflow-artifacts/mpu/abort/{path}", Permission.WRITE),
        ("POST", "/ajax-api/2.0/mlflow/runs/log-batch", Permission.WRITE),
        ("POST", "/api/2.0/mlflow/runs/delete", Permission.DELETE),
        ("PATCH", "/api/2.0/mlflow/logged-models/{model_id}", Permission.WRITE),
        ("DELETE", "/api/2.0/mlflow/logged-models/{id}", Permission.DELETE),
        ("DELETE", "/api/2.0/mlflow/registered-models/delete", Permission.DELETE),
        ("GET", "/api/2.0/mlflow/registered-models/alias", Permission.READ),
        ("POST", "/api/2.0/mlflow/registered-models/alias", Permission.WRITE),
        ("GET", "/get-artifact", Permission.READ),
        ("GET", "/", Permission.READ),
    ],
)
def test_classification_by_family(method: str, path: str, permission: Permission) -> None:
    rule = classify(method, path)
    assert rule is not None and rule.permission == permission


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/2.0/mlflow/runs/invented-endpoint"),
        ("GET", "/api/2.0/mlflow-artifacts/invented/{path}"),
        ("GET", "/api/2.0/mlflow/runs/delete"),  # a known name with another method
        ("GET", "/some/new/page"),
    ],
)
def test_a_route_no_table_knows_fails_loudly(method: str, path: str) -> None:
    """Unknown to the tables: None here (the walk above fails), admin-only at run time."""
    assert classify(method, path) is None
    assert UNCLASSIFIED.permission == Permission.ADMIN


async def test_an_unclassified_route_is_refused_to_all_but_admins(
    aiohttp_client, tmp_path: Path
) -> None:
    from tests.auth_users import ADMIN, WRITER, UsersFile, basic

    users = UsersFile(tmp_path / "users.toml").write()
    app = make_app(
        Settings(
            artifacts_destination=str(tmp_path / "store"), artifacts_only=True, auth_file=str(users)
        )
    )

    async def invented(request: web.Request) -> web.Response:
        return web.json_response({"secret": 1})

    app.router.add_post("/api/2.0/mlflow-artifacts/invented", invented)
    client = await aiohttp_client(app)
    async with client.post("/api/2.0/mlflow-artifacts/invented", headers=basic(WRITER)) as r:
        assert r.status == 403
        assert "'admin' permission on this server" in (await r.json())["message"]
    async with client.post("/api/2.0/mlflow-artifacts/invented", headers=basic(ADMIN)) as r:
        assert r.status == 200


READ_BY_POST = {
    "experiments/search",
    "experiments/search-datasets",
    "runs/search",
    "logged-models/search",
    "metrics/get-history-bulk",
    "metrics/get-history-bulk-interval",
    "registered-models/get-latest-versions",
}
"""Endpoints that read although their method is POST (MLflow's searches)."""


def test_reads_and_writes_follow_the_method(tmp_path: Path) -> None:
    """Checked apart from the tables: a GET needs read, any other method more than read unless
    it is one of MLflow's POST searches; deleting an entity needs delete."""
    for method, path in app_routes(tmp_path):
        rule = classify(method, path)
        assert rule is not None
        if rule.permission is None:
            continue
        name = path.split("/mlflow/", 1)[-1]
        reads = method in ("GET", "HEAD") or name in READ_BY_POST
        assert (rule.permission == Permission.READ) == reads, (method, path, rule.permission)
        entity_delete = name.endswith(("/delete", "/restore")) or (
            method == "DELETE" and "tag" not in name and "alias" not in name
        )
        if entity_delete:
            assert rule.permission >= Permission.DELETE, (method, path, rule.permission)
