"""`GET /metrics`: this worker's pending samples written, then every worker's read (after the
other workers' own pending samples have been written: `recorder.FLUSH_DELAY`)."""

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
from gateway.observability.recorder import FLUSH_DELAY, recorder

OTHERS_WRITTEN = 2 * FLUSH_DELAY
"""How long a scrape waits, with several workers, for every other worker's pending samples."""


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
    if os.environ.get(ENV):
        await asyncio.sleep(OTHERS_WRITTEN)
    # multiprocess mode reads one file per worker: off the loop
    body = await asyncio.to_thread(generate_latest, _registry())
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
