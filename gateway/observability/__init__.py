"""What operators watch: request ids, structured logs, Prometheus metrics, readiness."""

from aiohttp import web

from gateway.observability import request_id
from gateway.observability.endpoint import metrics_endpoint
from gateway.observability.middleware import observe
from gateway.observability.ready import ready

__all__ = ["install", "observe"]


def install(app: web.Application) -> None:
    """`GET /metrics`, and the request id on every response (`observe` sets it)."""
    app.on_response_prepare.append(request_id.stamp)
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_get("/health/ready", ready)
