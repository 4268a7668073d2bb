"""Every route's classification: the permission it needs and how to find what it acts on.

`classify(method, canonical)` knows routes by family:
- a few open routes (health, version, server-info: the client needs them before it signs in);
- the mlflow-artifacts API, by its path under `/api/2.0` or `/ajax-api/2.0`;
- the tracking and registry API under `<prefix>/mlflow/`, by method and endpoint name (path
  placeholders are compared as `{}`), so a new endpoint is classified only once it is added to
  `TRACKING` -- an endpoint missing from the table is refused to all but `all = true` admins and
  fails the route-table test;
- the pages of the site.
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.auth import permissions as kinds
from gateway.auth import targets as t
from gateway.auth.permissions import Permission, Target
from gateway.auth.targets import TargetsOf

READ, WRITE, DELETE, ADMIN = Permission.READ, Permission.WRITE, Permission.DELETE, Permission.ADMIN
API_PREFIXES = ("/api/2.0", "/ajax-api/2.0")
ResultFilter = Callable[[Any, Callable[[Target], Awaitable[bool]]], Awaitable[Any]]


@dataclass(frozen=True)
class Rule:
    permission: Permission | None
    """None: open to everyone, no credentials looked at."""
    targets: TargetsOf = t.nothing
    results: tuple[str, str, str] | None = None
    """For searches: (list key, item key, target kind): items the caller may not read are
    dropped from the answer."""
    reads: TargetsOf | None = None
    """Targets the request also reads from (a model version's source): they need `read`."""


OPEN = Rule(None)
UNCLASSIFIED = Rule(ADMIN, t.everything)
"""What a route missing from the tables gets: only an `all = true` admin may call it."""


def _rule(permission: Permission, targets: TargetsOf) -> Rule:
    return Rule(permission, targets)


RUN = t.fields(kinds.RUN, "run_id", "run_uuid")
RUNS = t.fields(kinds.RUN, "run_ids", many=True)
EXPERIMENT = t.fields(kinds.EXPERIMENT, "experiment_id")
EXPERIMENTS = t.fields(kinds.EXPERIMENT, "experiment_ids", many=True)
MODEL = t.match(kinds.LOGGED_MODEL)
REGISTERED = t.fields(kinds.REGISTERED_MODEL, "name")


def _tracking() -> dict[tuple[str, str], Rule]:
    """(method, endpoint under `/mlflow/`) -> rule. MLflow's own names (service.proto and
    model_registry.proto), including those artgw adds later."""
    table: dict[tuple[str, str], Rule] = {}

    def add(methods: str, names: str, rule: Rule) -> None:
        for method in methods.split():
            for name in names.split():
                table[method, name] = rule

    # experiments
    add("POST", "experiments/create", _rule(WRITE, t.fields(kinds.EXPERIMENT_NAME, "name")))
    add("GET", "experiments/get", _rule(READ, EXPERIMENT))
    add(
        "GET",
        "experiments/get-by-name",
        _rule(READ, t.fields(kinds.EXPERIMENT_NAME, "experiment_name")),
    )
    add(
        "GET POST",
        "experiments/search",
        Rule(READ, t.anything, ("experiments", "experiment_id", kinds.EXPERIMENT)),
    )
    add(
        "POST",
        "experiments/update experiments/set-experiment-tag experiments/delete-experiment-tag",
        _rule(WRITE, EXPERIMENT),
    )
    add("POST", "experiments/delete experiments/restore", _rule(DELETE, EXPERIMENT))
    add("GET POST", "experiments/search-datasets", _rule(READ, EXPERIMENTS))
    # runs
    add(
        "POST",
        "runs/create",
        _rule(WRITE, t.fields(kinds.EXPERIMENT, "experiment_id", default="0")),
    )
    add("GET", "runs/get metrics/get-history artifacts/list", _rule(READ, RUN))
    add("POST", "runs/search", _rule(READ, EXPERIMENTS))
    add("GET POST", "metrics/get-history-bulk metrics/get-history-bulk-interval", _rule(READ, RUNS))
    writes = "runs/update runs/log-metric runs/log-parameter runs/set-tag runs/delete-tag "
    writes += "runs/log-batch runs/log-inputs runs/log-model runs/outputs"
    add("POST", writes, _rule(WRITE, RUN))
    add("POST", "runs/delete runs/restore", _rule(DELETE, RUN))
    add("POST", "upload-artifact", _rule(WRITE, t.query(kinds.RUN, "run_uuid", "run_id")))
    # logged models
    add("POST", "logged-models", _rule(WRITE, EXPERIMENT))
    add("POST", "logged-models/search", _rule(READ, EXPERIMENTS))
    model_reads = (
        "logged-models/{} logged-models/{}/artifacts/directories logged-models/{}/artifacts/files"
    )
    add("GET", model_reads, _rule(READ, MODEL))
    add("PATCH", "logged-models/{} logged-models/{}/tags", _rule(WRITE, MODEL))
    add("POST", "logged-models/{}/params", _rule(WRITE, MODEL))
    add("DELETE", "logged-models/{}/tags/{}", _rule(WRITE, MODEL))
    add("DELETE", "logged-models/{}", _rule(DELETE, MODEL))
    # model registry: grants on registered models, by name
    registered_reads = "registered-models/get registered-models/get-latest-versions "
    registered_reads += (
        "registered-models/alias model-versions/get model-versions/get-download-uri "
    )
    registered_reads += "model-versions/get-artifact"
    add("GET", registered_reads, _rule(READ, REGISTERED))
    add("POST", "registered-models/get-latest-versions", _rule(READ, REGISTERED))
    add(
        "GET",
        "registered-models/search",
        Rule(READ, t.anything, ("registered_models", "name", kinds.REGISTERED_MODEL)),
    )
    add(
        "GET",
        "model-versions/search",
        Rule(READ, t.anything, ("model_versions", "name", kinds.REGISTERED_MODEL)),
    )
    add(
        "POST",
        "registered-models/create registered-models/set-tag registered-models/alias",
        _rule(WRITE, REGISTERED),
    )
    add("POST", "model-versions/create", Rule(WRITE, REGISTERED, reads=t.version_source))
    add("POST", "model-versions/transition-stage model-versions/set-tag", _rule(WRITE, REGISTERED))
    add("PATCH", "registered-models/update model-versions/update", _rule(WRITE, REGISTERED))
    add(
        "DELETE",
        "registered-models/delete-tag registered-models/alias model-versions/delete-tag",
        _rule(WRITE, REGISTERED),
    )
    add(
        "POST",
        "registered-models/rename",
        _rule(WRITE, t.both(REGISTERED, t.fields(kinds.REGISTERED_MODEL, "new_name"))),
    )
    add("DELETE", "registered-models/delete model-versions/delete", _rule(DELETE, REGISTERED))
    return table


TRACKING = _tracking()

ARTIFACTS: dict[tuple[str, str], Rule] = {
    ("GET", "artifacts"): Rule(READ, t.artifact_query_path),
    ("GET", "artifacts/{}"): Rule(READ, t.artifact_url_path),
    ("PUT", "artifacts/{}"): Rule(WRITE, t.artifact_url_path),
    ("DELETE", "artifacts/{}"): Rule(DELETE, t.artifact_url_path),
    ("POST", "mpu/create/{}"): Rule(WRITE, t.mpu_path("create")),
    ("POST", "mpu/complete/{}"): Rule(WRITE, t.mpu_path("complete")),
    ("POST", "mpu/abort/{}"): Rule(WRITE, t.mpu_path("abort")),
    ("GET", "presigned/{}"): Rule(READ, t.presigned_path),
    # Gateway part uploads and signed downloads (gateway/multipart.py) carry no credentials: their
    # signed, path-bound, expiring token is the permission, checked by the handler, which also
    # re-checks its creator against the rules in force (gateway/auth/tokens.py).
    ("PUT", "mpu/part/{}"): OPEN,
    ("GET", "signed/{}"): OPEN,
}

OTHERS: dict[tuple[str, str], Rule] = {
    ("GET", "/health"): OPEN,
    ("GET", "/health/ready"): OPEN,
    # The operators' metrics need read on everything when a users file is in force (Prometheus
    # sends Basic credentials or a token: `basic_auth` / `authorization` in its scrape config).
    ("GET", "/metrics"): Rule(READ, t.everything),
    ("GET", "/version"): OPEN,
    ("GET", "/api/3.0/mlflow/server-info"): OPEN,
    ("GET", "/ajax-api/3.0/mlflow/server-info"): OPEN,
    ("GET", "/favicon.ico"): OPEN,
    ("GET", "/"): Rule(READ, t.everything),
    ("GET", "/get-artifact"): Rule(READ, RUN),
    ("GET", "/model-versions/get-artifact"): Rule(READ, REGISTERED),
}
"""The landing page lists every experiment and run, so it needs read on everything."""

ARTIFACTS_ONLY_CATCH_ALL = "{}"
"""`<prefix>/mlflow/{tail}` of an --artifacts-only server: it only ever answers 404."""


def normalise(canonical: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", canonical)


def classify(method: str, canonical: str) -> Rule | None:
    """The rule of a route, or None when no table knows it."""
    method = "GET" if method == "HEAD" else method
    path = normalise(canonical)
    for prefix in API_PREFIXES:
        if path.startswith(prefix + "/mlflow-artifacts/"):
            return ARTIFACTS.get((method, path.removeprefix(prefix + "/mlflow-artifacts/")))
        if path.startswith(prefix + "/mlflow/"):
            name = path.removeprefix(prefix + "/mlflow/")
            if name == ARTIFACTS_ONLY_CATCH_ALL and method == "*":
                return OPEN
            return TRACKING.get((method, name))
    return OTHERS.get((method, path))


def route_rule(route: web.AbstractRoute) -> Rule | None:
    return classify(route.method, route.resource.canonical) if route.resource else None
