"""`GET /metrics`: this worker's pending samples written, then every worker's read."""

import asyncio
import functools
import os

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from gateway.observability.metrics import metrics
from gateway.observability.multiproc import ENV
from gateway.observability.recorder import recorder


@functools.cache
def _registry() -> CollectorRegistry:
    if not os.environ.get(ENV):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


async def metrics_endpoint(request: web.Request) -> web.Response:
    metrics()  # every family is listed, even before its first sample
    recorder().flush()
    # multiprocess mode reads one file per worker: off the loop
    body = await asyncio.to_thread(generate_latest, _registry())
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
