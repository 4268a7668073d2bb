"""`artgw gc` through another server's mlflow-artifacts REST API: the `Area` of tracking/gc.py for
runs whose artifact URIs name an artifacts server instead of this destination."""

from typing import Any
from urllib.parse import quote

import aiohttp

from backends import Entry
from gateway.urls import ARTIFACTS
from tracking import artifact_roots, uris
from tracking.gc import GcFailed, Location


class ArtifactsServer:
    """Deletes through the mlflow-artifacts REST API of the server each run's URI names."""

    def __init__(self, tracking_uri: str, allowed: frozenset[str] = frozenset()) -> None:
        """`allowed`: the origins (artifact_roots.allow_list) gc may send requests to, besides
        the tracking server's own; a URI naming any other host is never touched."""
        self.tracking_uri = tracking_uri
        self.allowed = allowed | artifact_roots.allow_list(tracking_uri)
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "ArtifactsServer":
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
        self.session = aiohttp.ClientSession(timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    def locate(self, artifact_uri: str) -> Location | None:
        where = artifact_roots.reachable(artifact_uri, self.allowed)
        if where is None:
            return None
        base = where.base or uris.service_base(artifact_uri, self.tracking_uri)
        return None if base is None else Location(base, where.rel)

    async def list(self, where: Location) -> list[Entry]:
        url = f"{where.base}{ARTIFACTS}"
        body = await self._call("GET", url, params={"path": where.rel})
        return [
            Entry(f["path"].rpartition("/")[2], bool(f.get("is_dir")), int(f.get("file_size", 0)))
            for f in body.get("files", [])
        ]

    async def delete(self, where: Location) -> None:
        await self._call("DELETE", f"{where.base}{ARTIFACTS}/{quote(where.rel)}")

    async def _call(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        assert self.session is not None
        try:
            async with self.session.request(method, url, **kwargs) as response:
                if response.status >= 400:
                    text = (await response.text())[:300]
                    raise GcFailed(f"{method} {url} answered {response.status}: {text}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise GcFailed(f"{method} {url} failed: {exc}") from exc
        return body if isinstance(body, dict) else {}
