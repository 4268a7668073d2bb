"""How the harness talks to each kind of server: where a file lives, how a folder is listed.

artgw and mlflow speak MLflow's artifacts REST API. The peers do not: `rclone serve webdav` takes
PUT/GET on plain paths and lists with PROPFIND (Depth: 1), and refuses a PUT into a folder that is
missing (404), so folders are made first with MKCOL; `rclone serve http` is read-only and lists
as an HTML page; nginx serves the folder statically, takes PUT through its WebDAV module
(`create_full_put_path`) and lists with `autoindex_format json`.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass(frozen=True)
class ListRequest:
    method: str
    target: str
    headers: dict[str, str]


class Api:
    """MLflow's artifacts API (artgw, mlflow)."""

    kind = "mlflow-artifacts"
    read_only = False
    needs_folders = False  # PUT into a missing folder fails: make folders first (MKCOL)
    html_listing = True  # a listing page for browsers (artgw only among the mlflow servers)

    def file_path(self, rel: str) -> str:
        return f"{ARTIFACTS}/{rel}"

    def list_request(self, rel: str) -> ListRequest:
        return ListRequest("GET", f"{ARTIFACTS}?path={rel}", {})

    def html_request(self, rel: str) -> ListRequest | None:
        return ListRequest("GET", f"{ARTIFACTS}/{rel}/", {"Accept": "text/html"})

    def list_names(self, body: bytes) -> list[str]:
        return [f["path"] for f in json.loads(body or b"{}").get("files", [])]

    def file_names(self, body: bytes) -> list[str]:
        files = json.loads(body or b"{}").get("files", [])
        return [f["path"] for f in files if not f.get("is_dir")]


class MlflowApi(Api):
    html_listing = False

    def html_request(self, rel: str) -> ListRequest | None:
        return None


class WebdavApi(Api):
    kind = "webdav"
    needs_folders = True
    _HREF = re.compile(rb"<D:href>([^<]*)</D:href>")

    def file_path(self, rel: str) -> str:
        return f"/{rel}"

    def list_request(self, rel: str) -> ListRequest:
        return ListRequest("PROPFIND", f"/{rel}/", {"Depth": "1"})

    def html_request(self, rel: str) -> ListRequest | None:
        return None

    def list_names(self, body: bytes) -> list[str]:
        hrefs = [unquote(h.decode()) for h in self._HREF.findall(body)]
        return [h.rstrip("/").rsplit("/", 1)[-1] for h in hrefs[1:]]  # the first is the folder

    def file_names(self, body: bytes) -> list[str]:
        hrefs = [unquote(h.decode()) for h in self._HREF.findall(body)]
        return [h.rsplit("/", 1)[-1] for h in hrefs[1:] if not h.endswith("/")]


class RcloneHttpApi(Api):
    kind = "http (read-only)"
    read_only = True
    _NAME = re.compile(rb'<span class="name"><a href="([^"]*)">')

    def file_path(self, rel: str) -> str:
        return f"/{rel}"

    def list_request(self, rel: str) -> ListRequest:
        return ListRequest("GET", f"/{rel}/", {})

    def html_request(self, rel: str) -> ListRequest | None:
        return ListRequest("GET", f"/{rel}/", {"Accept": "text/html"})

    def list_names(self, body: bytes) -> list[str]:
        hrefs = [unquote(html.unescape(h.decode())) for h in self._NAME.findall(body)]
        return [h.rstrip("/") for h in hrefs if h not in ("..", "../")]

    def file_names(self, body: bytes) -> list[str]:
        hrefs = [unquote(html.unescape(h.decode())) for h in self._NAME.findall(body)]
        return [h for h in hrefs if not h.endswith("/") and h not in ("..", "../")]


class NginxApi(Api):
    kind = "static + WebDAV PUT"

    def file_path(self, rel: str) -> str:
        return f"/{rel}"

    def list_request(self, rel: str) -> ListRequest:
        return ListRequest("GET", f"/{rel}/", {})

    def html_request(self, rel: str) -> ListRequest | None:
        return ListRequest("GET", f"/_html/{rel}/", {"Accept": "text/html"})

    def list_names(self, body: bytes) -> list[str]:
        return [e["name"] for e in json.loads(body)]

    def file_names(self, body: bytes) -> list[str]:
        return [e["name"] for e in json.loads(body) if e.get("type") == "file"]


def api_for(name: str) -> Api:
    """By the server's name: `rclone*` WebDAV, `rclone-http*` HTTP, `nginx*`, mlflow, else artgw."""
    if name.startswith("rclone-http"):
        return RcloneHttpApi()
    if name.startswith("rclone"):
        return WebdavApi()
    if name.startswith("nginx"):
        return NginxApi()
    if name.startswith("mlflow"):
        return MlflowApi()
    return Api()


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes {workers};
user root;
pid {scratch}/nginx.pid;
error_log {scratch}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {scratch}/body;
    proxy_temp_path {scratch}/proxy;
    fastcgi_temp_path {scratch}/fastcgi;
    uwsgi_temp_path {scratch}/uwsgi;
    scgi_temp_path {scratch}/scgi;
    server {{
        listen {host}:{port} reuseport;
        root {dest};
        client_max_body_size 0;
        location = /health {{ return 200 "OK"; }}
        location /_html/ {{
            alias {dest}/;
            autoindex on;
        }}
        location / {{
            dav_methods PUT DELETE MKCOL;
            create_full_put_path on;
            autoindex on;
            autoindex_format json;
        }}
    }}
}}
"""


def write_nginx_conf(cwd: Path, **values: str) -> Path:
    """nginx.conf for one instance; its temp files go to {scratch}, on the destination's
    filesystem, so that a PUT's final rename is not a copy."""
    Path(values["scratch"]).mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    path = cwd / "nginx.conf"
    path.write_text(NGINX_CONF.format(**values))
    return path
