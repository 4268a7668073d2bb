"""Every route x every kind of caller -> the status it gets; a refused write or delete changes
nothing in the store (the destination's files and the tracking database, compared whole).

Callers: no credentials, a wrong password, an unknown user, a reader (read on everything), a
writer on another prefix/experiment, the writer (write on `team/` and experiment 1), an admin.
Routes without a hand-written case here (endpoints added later) still get the generic checks:
401 without valid credentials, 403 for the outsider, never 401/403/5xx for the admin.
"""

import asyncio
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient

from gateway.auth.permissions import Permission
from gateway.auth.rules import classify
from tests.auth_users import ADMIN, OTHER, READER, WRITER, Person, UsersFile, basic
from tests.conftest import GatewayFactory

PREFIXES = ("/api/2.0", "/ajax-api/2.0")
CALLERS: dict[str, dict[str, str]] = {
    "none": {},
    "wrong password": basic(WRITER, "not-the-password"),
    "unknown user": basic(Person("mallory", "mallory-password")),
    "reader": basic(READER),
    "other prefix": basic(OTHER),
    "writer": basic(WRITER),
    "admin": basic(ADMIN),
}
R, W, D = Permission.READ, Permission.WRITE, Permission.DELETE
NO_THROTTLE = "\n[throttle]\nfailures = 1000000\n"
ANY = None
"""An allowed caller may get any answer but 401, 403 or a 5xx (e.g. a 400 for a field)."""


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    """Under the API prefix when it starts with `mlflow`; `{run}`, `{who}` are filled in."""
    permission: Permission | None
    ok: int | None = 200
    body: Any = None
    writer: bool = True
    """Whether the writer's grants cover the target (when the permission is at most write)."""
    filtered: bool = False


ARTIFACT_CASES = [
    Case("GET", "mlflow-artifacts/artifacts?path=team", R),
    Case("GET", "mlflow-artifacts/artifacts/team/f.txt", R),
    Case("GET", "mlflow-artifacts/artifacts/1/{run}/artifacts/f.txt", R),
    Case("GET", "mlflow-artifacts/artifacts/0/{run0}/artifacts/f.txt", R, writer=False),
    Case("PUT", "mlflow-artifacts/artifacts/team/new-{who}.txt", W, body=b"new"),
    Case("PUT", "mlflow-artifacts/artifacts/1/{run}/artifacts/new-{who}.txt", W, body=b"new"),
    Case(
        "PUT",
        "mlflow-artifacts/artifacts/0/{run0}/artifacts/new-{who}.txt",
        W,
        body=b"x",
        writer=False,
    ),
    Case("PUT", "mlflow-artifacts/artifacts/experiments/1/{run}/x.txt", W, body=b"x", writer=False),
    Case("DELETE", "mlflow-artifacts/artifacts/team/f.txt", D),
    Case("DELETE", "mlflow-artifacts/artifacts/1/{run}/artifacts/f.txt", D),
    Case("POST", "mlflow-artifacts/mpu/create/team", W, 200, {"path": "x.bin", "num_parts": 1}),
    Case("POST", "mlflow-artifacts/mpu/complete/team", W, 400, {"path": "x.bin", "parts": []}),
    Case("POST", "mlflow-artifacts/mpu/abort/team", W, 400, {"path": "x.bin"}),
    Case(
        "POST",
        "mlflow-artifacts/mpu/create/0",
        W,
        200,
        {"path": "team", "num_parts": 1},
        writer=False,
    ),
    Case("GET", "mlflow-artifacts/presigned/team/f.txt", R, 501),
]
TRACKING_CASES = [
    Case("POST", "mlflow/experiments/create", W, 200, {"name": "team-{who}"}),
    Case("POST", "mlflow/experiments/create", W, 200, {"name": "x-{who}"}, writer=False),
    Case("GET", "mlflow/experiments/get?experiment_id=1", R),
    Case("GET", "mlflow/experiments/get?experiment_id=0", R, writer=False),
    Case("GET", "mlflow/experiments/get-by-name?experiment_name=team-exp", R),
    Case("POST", "mlflow/experiments/search", R, body={}, filtered=True),
    Case("GET", "mlflow/experiments/search", R, filtered=True),
    Case("GET", "mlflow/registered-models/search", R, filtered=True),
    Case("GET", "mlflow/model-versions/search", R, filtered=True),
    Case(
        "POST",
        "mlflow/experiments/update",
        W,
        body={"experiment_id": "1", "new_name": "team-{who}"},
    ),
    Case("POST", "mlflow/experiments/delete", D, body={"experiment_id": "1"}),
    Case("POST", "mlflow/experiments/restore", D, ANY, {"experiment_id": "1"}),
    Case("POST", "mlflow/runs/create", W, body={"experiment_id": "1"}),
    Case("POST", "mlflow/runs/create", W, body={"experiment_id": "0"}, writer=False),
    Case("GET", "mlflow/runs/get?run_id={run}", R),
    Case("GET", "mlflow/runs/get?run_id={run0}", R, writer=False),
    Case("POST", "mlflow/runs/update", W, body={"run_id": "{run}", "status": "FINISHED"}),
    Case("POST", "mlflow/runs/delete", D, body={"run_id": "{run}"}),
    Case("POST", "mlflow/runs/restore", D, ANY, {"run_id": "{run}"}),
    Case("POST", "mlflow/runs/search", R, body={"experiment_ids": ["1"]}),
    Case("POST", "mlflow/runs/search", R, body={"experiment_ids": ["1", "0"]}, writer=False),
    Case(
        "POST",
        "mlflow/runs/log-metric",
        W,
        body={"run_id": "{run}", "key": "m", "value": 1, "timestamp": 1},
    ),
    Case(
        "POST",
        "mlflow/runs/log-parameter",
        W,
        body={"run_id": "{run}", "key": "p-{who}", "value": "1"},
    ),
    Case(
        "POST",
        "mlflow/runs/log-parameter",
        W,
        body={"run_id": "{run0}", "key": "p", "value": "1"},
        writer=False,
    ),
    Case("POST", "mlflow/runs/set-tag", W, body={"run_id": "{run}", "key": "t", "value": "v"}),
    Case("POST", "mlflow/runs/delete-tag", W, ANY, {"run_id": "{run}", "key": "t"}),
    Case(
        "POST",
        "mlflow/runs/log-batch",
        W,
        body={"run_id": "{run}", "tags": [{"key": "b", "value": "1"}]},
    ),
    Case("GET", "mlflow/metrics/get-history?run_id={run}&metric_key=m", R),
    Case("POST", "mlflow/logged-models/search", R, ANY, {"experiment_ids": ["1"]}),
]
SITE_CASES = [
    Case("GET", "/", R, writer=False),
    Case("GET", "/health", None),
    Case("GET", "/health/ready", None),
    Case("GET", "/metrics", R, writer=False),
    Case("GET", "/version", None),
    Case("GET", "/api/3.0/mlflow/server-info", None),
    Case("GET", "/ajax-api/3.0/mlflow/server-info", None),
    Case("GET", "/favicon.ico", None, ANY),
]


def expanded() -> Iterator[tuple[str, Case]]:
    for case in ARTIFACT_CASES + TRACKING_CASES:
        for prefix in PREFIXES:
            yield f"{prefix}/{case.path}", case
    for case in SITE_CASES:
        yield case.path, case


CASES = list(expanded())


@dataclass
class World:
    client: TestClient
    destination: Path
    database: Path
    names: dict[str, str] = field(default_factory=dict)

    def fill(self, text: str, who: str) -> str:
        return text.format(who=who.replace(" ", "-"), **self.names)

    def filled(self, value: Any, who: str) -> Any:
        if isinstance(value, str):
            return self.fill(value, who)
        if isinstance(value, dict):
            return {k: self.filled(v, who) for k, v in value.items()}
        if isinstance(value, list):
            return [self.filled(v, who) for v in value]
        return value

    async def send(
        self, method: str, path: str, body: Any, headers: dict[str, str]
    ) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"headers": headers}
        if isinstance(body, bytes):
            kwargs["data"] = body
        elif body is not None:
            kwargs["json"] = body
        async with self.client.request(method, path, **kwargs) as response:
            text = await response.text()
            return response.status, text

    async def new_model(self) -> None:
        """A logged model in experiment 1 (anew for each route: the admin may delete it)."""
        body = {"experiment_id": "1"}
        status, text = await self.send("POST", "/api/2.0/mlflow/logged-models", body, basic(ADMIN))
        assert status == 200, text
        self.names["model"] = json.loads(text)["model"]["info"]["model_id"]

    async def snapshot(self) -> tuple[dict[str, bytes], list[str]]:
        return await asyncio.to_thread(self._snapshot)

    def _snapshot(self) -> tuple[dict[str, bytes], list[str]]:
        files = {
            p.relative_to(self.destination).as_posix(): p.read_bytes()
            for p in sorted(self.destination.rglob("*"))
            if p.is_file()
        }
        conn = sqlite3.connect(self.database)
        try:
            rows = list(conn.iterdump())
        finally:
            conn.close()
        return files, rows


@pytest.fixture
async def world(make_gateway: GatewayFactory, tmp_path: Path, destination: Path) -> World:
    users = UsersFile(tmp_path / "users.toml", extra=NO_THROTTLE).write()
    database = tmp_path / "mlflow.db"
    client = await make_gateway(
        artifacts_only=False, backend_store_uri=f"sqlite:///{database}", auth_file=str(users)
    )
    world = World(client, destination, database)
    admin = basic(ADMIN)
    status, _ = await world.send(
        "POST", "/api/2.0/mlflow/experiments/create", {"name": "team-exp"}, admin
    )
    assert status == 200
    for key, experiment in (("run", "1"), ("run0", "0")):
        async with client.post(
            "/api/2.0/mlflow/runs/create", json={"experiment_id": experiment}, headers=admin
        ) as r:
            world.names[key] = (await r.json())["run"]["info"]["run_id"]
    for path in (
        "team/f.txt",
        "other/f.txt",
        "1/{run}/artifacts/f.txt",
        "0/{run0}/artifacts/f.txt",
    ):
        status, _ = await world.send(
            "PUT", "/api/2.0/mlflow-artifacts/artifacts/" + world.fill(path, ""), b"f", admin
        )
        assert status == 200
    await world.new_model()
    return world


def expected(caller: str, case: Case) -> str:
    """'ok', 401 or 403."""
    if case.permission is None:
        return "ok"
    if caller in ("none", "wrong password", "unknown user"):
        return "401"
    if case.filtered:
        return "ok"
    if caller == "admin" or (caller == "reader" and case.permission == R):
        return "ok"
    if caller == "writer" and case.writer and case.permission <= W:
        return "ok"
    return "403"


async def check(world: World, path: str, case: Case, caller: str) -> None:
    want = expected(caller, case)
    url, body = world.fill(path, caller), world.filled(case.body, caller)
    before = await world.snapshot() if case.permission and case.permission >= W else None
    status, text = await world.send(case.method, url, body, CALLERS[caller])
    where = f"{case.method} {url} as {caller}: {status} {text[:300]}"
    if want == "ok":
        assert status == case.ok if case.ok else status not in (401, 403) and status < 500, where
        return
    assert status == int(want), where
    assert ("UNAUTHENTICATED" if want == "401" else "PERMISSION_DENIED") in text, where
    if before is not None:
        assert await world.snapshot() == before, f"{where}: the store changed"


@pytest.mark.parametrize(("path", "case"), CASES, ids=[f"{c.method} {p}" for p, c in CASES])
async def test_route_by_caller(world: World, path: str, case: Case) -> None:
    for caller in CALLERS:  # admin last: its writes and deletes succeed
        await check(world, path, case, caller)


async def test_searches_show_only_what_the_caller_may_read(world: World) -> None:
    await world.send(
        "POST", "/api/2.0/mlflow/experiments/create", {"name": "other-exp"}, basic(ADMIN)
    )
    seen = {}
    for caller in ("reader", "writer", "other prefix", "admin"):
        async with world.client.post(
            "/api/2.0/mlflow/experiments/search", json={}, headers=CALLERS[caller]
        ) as r:
            assert r.status == 200
            seen[caller] = sorted(e["name"] for e in (await r.json()).get("experiments", []))
    assert seen["reader"] == seen["admin"] == ["Default", "other-exp", "team-exp"]
    assert seen["writer"] == ["team-exp"]
    assert seen["other prefix"] == ["other-exp"]


async def test_every_route_has_a_case_or_the_generic_checks(world: World) -> None:
    """Routes without a case here (added later) get the checks that hold for any route."""
    covered = {(c.method, _route_of(world, p)) for p, c in CASES}
    generic = 0
    for route in world.client.app.router.routes():
        key = (route.method, route.resource.canonical if route.resource else "")
        if route.method == "HEAD" or key in covered:
            continue
        rule = classify(*key)
        assert rule is not None, f"{key} has no classification (gateway/auth/rules.py)"
        if rule.permission is None:
            continue
        generic += 1
        await world.new_model()
        body = _sample_body(world)
        path = f"{_sample_path(key[1], world)}?{urlencode(body, doseq=True)}"
        if route.method == "GET":  # the query only; others also send the body (upload-artifact
            body = None  # reads the query, the JSON endpoints the body)
        for caller in CALLERS:
            await check(world, path, Case(route.method, path, rule.permission, ANY, body), caller)
    print(f"{generic} routes checked generically")


def _route_of(world: World, path: str) -> str:
    url = world.fill(path.split("?", 1)[0], "x")
    for route in world.client.app.router.routes():
        if route.resource is not None and route.resource.canonical == url:
            return url
    for route in world.client.app.router.routes():
        if route.resource is not None and route.resource._match(url) is not None:  # type: ignore[attr-defined]
            return route.resource.canonical
    return url


def _sample_path(canonical: str, world: World) -> str:
    """The first placeholder is the logged model of experiment 1, any other one a tag key."""
    first = canonical.replace("{", "\0", 1).split("\0")
    if len(first) == 1:
        return canonical
    head, rest = first[0], first[1].split("}", 1)[1]
    return head + world.names["model"] + re.sub(r"\{[^}]*\}", "k", rest)


def _sample_body(world: World) -> dict[str, Any]:
    run = world.names["run"]
    return {
        "run_id": run,
        "run_ids": [run],
        "experiment_id": "1",
        "experiment_ids": ["1"],
        "name": "team-model",
        "new_name": "team-model-2",
        "source": f"runs:/{run}/model",
        "version": "1",
        "alias": "champion",
        "key": "k",
        "value": "v",
        "path": "f.txt",
        "metric_key": "m",
    }
