"""`GET /health/ready`: can this server do its work now? It asks the artifact store and the
tracking database (at once, each within a few seconds) and names the one that is down.

`/health` stays the cheap liveness answer (it touches neither), for probes that restart a
process: a store outage must not get healthy servers restarted.
"""

import asyncio
import contextlib

from aiohttp import web

from gateway.errors import to_api_error
from gateway.keys import BACKEND, SETTINGS
from gateway.tracking.keys import STORE
from tracking.errors import NotFound

CHECK_TIMEOUT = 5.0
OK = "ok"


async def ready(request: web.Request) -> web.Response:
    app = request.app
    limit = min(CHECK_TIMEOUT, app[SETTINGS].store_timeout or CHECK_TIMEOUT)
    store, database = await asyncio.gather(
        _check(app[BACKEND].probe(), limit), _check(_ping_database(app), limit)
    )
    checks = {"store": store, "database": database}
    down = [name for name, state in checks.items() if state not in (OK, "not used")]
    if not down:
        return web.json_response({"status": "ready", **checks})
    names = {"store": "the artifact store", "database": "the tracking database"}
    message = "Not ready: " + "; ".join(f"{names[name]} is down ({checks[name]})" for name in down)
    body = {"error_code": "TEMPORARILY_UNAVAILABLE", "message": message, **checks}
    return web.json_response(body, status=503)


async def _ping_database(app: web.Application) -> str:
    store = app.get(STORE)
    if store is None:
        return "not used"
    with contextlib.suppress(NotFound):  # an answer all the same: the database is up
        await store.get_experiment("0")
    return OK


async def _check(probe: "asyncio.Future[object] | object", seconds: float) -> str:
    try:
        async with asyncio.timeout(seconds):
            result = await probe  # type: ignore[misc]
    except TimeoutError:
        return f"no answer within {seconds:g} s"
    except Exception as exc:
        error = to_api_error(exc)
        return error.message if error is not None else type(exc).__name__
    return result if isinstance(result, str) else OK
