"""What handlers take from a request: the backend that serves it, and its JSON body."""

import json
from typing import Any

from aiohttp import web

from backends import Backend
from gateway.errors import BadRequest, InvalidParameter
from gateway.keys import BACKEND


def backend_of(request: web.Request) -> Backend:
    """The backend that serves this request's artifact paths."""
    return request.app[BACKEND]


def decode_json(raw: bytes) -> Any:
    """MLflow's tolerance: an empty body is `{}`, and a body double-encoded as a JSON string (as
    old clients post it) is decoded twice."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
        return json.loads(value) if isinstance(value, str) else value
    except RecursionError:
        raise InvalidParameter("The request body is nested too deeply.") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidParameter(f"The request body is not valid JSON: {exc}") from None


async def json_object(request: web.Request, *, typed: bool = False) -> dict[str, Any]:
    """The request's JSON body, which must be an object. `typed`: the Content-Type must say
    JSON (the mlflow-artifacts mpu/ routes ask for it, as MLflow's do)."""
    if typed and request.content_type != "application/json":
        raise BadRequest("Bad Request. Content-Type must be one of ['application/json'].")
    body = decode_json(await request.read())
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    return body
