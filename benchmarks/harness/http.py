"""A minimal HTTP client on http.client: no proxies from the environment, no retries."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit


def http_request(
    method: str,
    url: str,
    body: bytes | None = None,
    timeout: float = 60.0,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


class KeepAlive:
    """One persistent connection, for series of requests whose latency is measured."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

    def get(self, target: str) -> tuple[int, bytes]:
        return self.request("GET", target)

    def request(
        self, method: str, target: str, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        self.conn.request(method, target, headers=headers or {})
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def close(self) -> None:
        self.conn.close()
