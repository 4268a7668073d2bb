"""CORS, off by default. `--cors-origins https://a.example,https://b.example` lets pages from those
origins call the API with credentials; `*` lets any origin call it, without credentials.

A preflight (OPTIONS with Access-Control-Request-Method) from an allowed origin is answered by the
middleware, before any route or authentication; every other answer to an allowed origin gets the
allow headers just before it is sent (`on_response_prepare`, so streamed downloads get them too).
"""

from typing import Any

from aiohttp import web

from gateway.errors import Handler

ALLOWED_METHODS = "GET, HEAD, PUT, POST, PATCH, DELETE"
ALLOWED_HEADERS = (
    "Authorization, Content-Type, Range, If-None-Match, If-Modified-Since, X-MLflow-Client-Version"
)
EXPOSED_HEADERS = "Content-Length, Content-Range, ETag, Last-Modified, Content-Disposition"
MAX_AGE = "600"


def parse_origins(text: str) -> frozenset[str]:
    return frozenset(o.strip().rstrip("/") for o in text.split(",") if o.strip())


class Cors:
    def __init__(self, origins: frozenset[str]) -> None:
        self.origins = origins
        self.anyone = "*" in origins

    def allowed(self, request: web.BaseRequest) -> str | None:
        origin = request.headers.get("Origin", "")
        return origin if origin and (self.anyone or origin in self.origins) else None

    def allow(self, response: web.StreamResponse, origin: str) -> None:
        response.headers["Access-Control-Allow-Origin"] = "*" if self.anyone else origin
        if not self.anyone:
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers.add("Vary", "Origin")

    def middleware(self) -> Any:
        @web.middleware
        async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
            origin = self.allowed(request)
            asks = (
                request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
            )
            if origin is None or not asks:
                return await handler(request)
            response = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response.headers["Access-Control-Max-Age"] = MAX_AGE
            return response

        return preflight

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        origin = self.allowed(request)
        if origin is not None:
            self.allow(response, origin)
            if request.method != "OPTIONS":
                response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS


def install(app: web.Application, origins_text: str) -> None:
    origins = parse_origins(origins_text)
    if not origins:
        return
    cors = Cors(origins)
    app.middlewares.insert(0, cors.middleware())
    app.on_response_prepare.append(cors.on_prepare)
