"""The tracking routes: exactly the endpoints the client uses, under both API prefixes."""

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.errors import EndpointNotFound
from gateway.tracking import artifact_handlers, history, inputs, models
from gateway.tracking import handlers as h

Endpoints = tuple[tuple[str, str, Handler], ...]
"""(method, path under /mlflow/, handler) of each route."""

ENDPOINTS: Endpoints = (
    ("POST", "experiments/create", h.create_experiment),
    ("GET", "experiments/get", h.get_experiment),
    ("GET", "experiments/get-by-name", h.get_experiment_by_name),
    ("POST", "experiments/search", h.search_experiments),
    ("GET", "experiments/search", h.search_experiments),
    ("POST", "experiments/update", h.update_experiment),
    ("POST", "experiments/delete", h.delete_experiment),
    ("POST", "experiments/restore", h.restore_experiment),
    ("POST", "experiments/set-experiment-tag", h.set_experiment_tag),
    ("POST", "experiments/delete-experiment-tag", h.delete_experiment_tag),
    ("POST", "runs/create", h.create_run),
    ("GET", "runs/get", h.get_run),
    ("POST", "runs/update", h.update_run),
    ("POST", "runs/delete", h.delete_run),
    ("POST", "runs/restore", h.restore_run),
    ("POST", "runs/search", h.search_runs),
    ("POST", "runs/log-metric", h.log_metric),
    ("POST", "runs/log-parameter", h.log_parameter),
    ("POST", "runs/set-tag", h.set_tag),
    ("POST", "runs/delete-tag", h.delete_tag),
    ("POST", "runs/log-batch", h.log_batch),
    ("GET", "metrics/get-history", h.get_metric_history),
    *history.ENDPOINTS,
    *artifact_handlers.ENDPOINTS,
    *models.ENDPOINTS,
    *inputs.ENDPOINTS,
)


def routes(prefix: str, endpoints: Endpoints = ENDPOINTS) -> list[web.RouteDef]:
    """`endpoints` (these, or another service's: the model registry's) under `prefix`."""
    return [
        web.route(method, f"{prefix}/mlflow/{path}", handler) for method, path, handler in endpoints
    ]


async def artifacts_only(request: web.Request) -> web.Response:
    raise EndpointNotFound(
        f"Endpoint {request.path} is disabled: this server runs with --artifacts-only and serves "
        "only the mlflow-artifacts API. Point the tracking URI at a tracking server."
    )


def artifacts_only_routes(prefix: str) -> list[web.RouteDef]:
    return [web.route("*", f"{prefix}/mlflow/{{tail:.*}}", artifacts_only)]
