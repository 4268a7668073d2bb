"""The URL layout of the artifacts API, in one place: its prefixes, its route patterns, and the
markers that find an artifact path in the raw request line.

Paths are taken from the raw request line (`url_tail`), not from aiohttp's decoded match, so that
each is percent-decoded exactly once and `%2F` stays part of a name.
"""

from urllib.parse import unquote

from aiohttp import web

from gateway.errors import InvalidParameter

API_PREFIXES = ("/api/2.0", "/ajax-api/2.0")
"""Every API route is served under both, as MLflow does."""
ARTIFACTS_API = "/mlflow-artifacts"
ANY_PATH = "{path:[\\s\\S]*}"
"""The route pattern of an artifact path: anything, newlines included (they are refused later)."""
ARTIFACTS = f"{ARTIFACTS_API}/artifacts"
ARTIFACTS_MARKER = f"{ARTIFACTS}/"
PRESIGNED_MARKER = f"{ARTIFACTS_API}/presigned/"
PART_MARKER = f"{ARTIFACTS_API}/mpu/part/"
"""Gateway part uploads (gateway/multipart.py)."""
SIGNED_MARKER = f"{ARTIFACTS_API}/signed/"
"""Signed gateway download URLs (gateway/multipart.py)."""
ROOT_LISTING = f"{API_PREFIXES[0][1:]}{ARTIFACTS_MARKER}"
"""The root listing, relative to the landing page `/`."""


def mpu_marker(action: str) -> str:
    return f"{ARTIFACTS_API}/mpu/{action}/"


def api_base(prefix: str) -> str:
    """`<prefix>/mlflow-artifacts`: the base of the artifacts routes under one API prefix."""
    return f"{prefix}{ARTIFACTS_API}"


def url_tail(request: web.Request, marker: str) -> str:
    """The request path after `marker`, percent-decoded exactly once from the raw request line."""
    raw = request.raw_path.split("?", 1)[0].split("#", 1)[0]
    tail = raw.split(marker, 1)[1] if marker in raw else ""
    try:
        return unquote(tail, errors="strict")
    except UnicodeDecodeError:
        raise InvalidParameter(f"Invalid path: not UTF-8 after decoding: '{tail}'") from None


def directory_path(raw: str) -> str:
    """A directory may be named with one trailing slash (as `mlflow gc` does)."""
    return raw[:-1] if raw.endswith("/") and raw != "/" else raw
