"""Service endpoints the client and operators call: /health, /version, server-info."""

from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from gateway.keys import SETTINGS
from gateway.multipart import advertised_downloads, advertised_uploads

MLFLOW_COMPAT_VERSION = "3.18.0"


def artgw_version() -> str:
    try:
        return version("artgw")
    except PackageNotFoundError:
        return "0+unknown"


ARTGW_VERSION = artgw_version()  # read once: it costs disk I/O


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def mlflow_version(request: web.Request) -> web.Response:
    return web.Response(text=MLFLOW_COMPAT_VERSION)


async def server_info(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    info: dict[str, object] = {
        "store_type": None if settings.artifacts_only else "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": advertised_uploads(request.app),
        "multipart_downloads_enabled": advertised_downloads(request.app),
        "artifact_serving_enabled": True,
        "artifacts_presigned_only": False,
        "server": f"artgw/{ARTGW_VERSION}",
    }
    if settings.mounts:
        info["mounts"] = [mount_info(request.app, m.prefix) for m in settings.mounts]
    return web.json_response(info)


def mount_info(app: web.Application, prefix: str) -> dict[str, object]:
    """What server-info says of one mount: its capabilities (its URL stays private)."""
    return {
        "prefix": prefix,
        "multipart_uploads_enabled": advertised_uploads(app, prefix),
        "multipart_downloads_enabled": advertised_downloads(app, prefix),
    }


def routes() -> list[web.RouteDef]:
    return [
        web.get("/health", health),
        web.get("/version", mlflow_version),
        web.get("/api/3.0/mlflow/server-info", server_info),
        web.get("/ajax-api/3.0/mlflow/server-info", server_info),
    ]
