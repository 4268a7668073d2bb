"""Which artifact roots the server itself may read (list, fetch, delete), and where they lead.

Clients may create experiments with any `artifact_location` (MLflow accepts local paths, `file:`,
`s3:` and more, for clients that log directly). The server acts on a location only when it names
its own destination (`mlflow-artifacts:/...`) or an artifacts server on the allow-list
(`http(s)://host:port/.../api/2.0/mlflow-artifacts/artifacts/...`, by default only the host of
`--default-artifact-root`). Anything else is `Forbidden`: this is where MLflow's CVE history
lives (API.md 2.3: `file:///etc/`, `http:///?/../../etc/`, `#` fragments, attacker hosts).
"""

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from backends import UnsafePathError, confine
from tracking.errors import Forbidden, InvalidValue, TrackingError
from tracking.uris import unquotings

PROXY_SCHEME = "mlflow-artifacts"
PROXY_MARKER = "/mlflow-artifacts/artifacts"
DEFAULT_PORTS = {"http": 80, "https": 443}
_UNSAFE_CHARS = ("\\", "#", "?", ";", "\x00")


@dataclass(frozen=True, slots=True)
class Where:
    """A folder or file to act on: `rel` inside the server's own destination (`base` '') or
    inside the destination of the artifacts server whose API lives at `base` (`.../api/2.0`)."""

    base: str
    rel: str


def origin(url: str) -> str | None:
    """`scheme://host:port` of an http(s) URL (port made explicit), else None."""
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return None
    scheme = split.scheme.lower()
    if scheme not in DEFAULT_PORTS or not split.hostname or split.username is not None:
        return None
    return f"{scheme}://{split.hostname.lower()}:{port or DEFAULT_PORTS[scheme]}"


def allow_list(default_artifact_root: str, extra: str = "") -> frozenset[str]:
    """The origins the server may fetch from: the default root's, plus `extra` (comma-separated
    URLs, as in --allowed-artifact-servers)."""
    urls = [default_artifact_root, *(part.strip() for part in extra.split(",") if part.strip())]
    return frozenset(o for o in map(origin, urls) if o is not None)


def locate(root: str, rel: str | None, allowed: frozenset[str]) -> Where:
    """Where `rel` (a client-given path below `root`, '' or None for the root itself) lives, or
    `Forbidden` when the server must not touch `root`; `InvalidValue` for an unsafe `rel`."""
    inside = _root_path(root, allowed)
    path = "/".join(part for part in (inside.rel, _relative(rel)) if part)
    return Where(inside.base, path)


def reachable(root: str, allowed: frozenset[str]) -> Where | None:
    """Where `root` itself leads, or None when the server must not touch it (gc's question:
    a run's artifacts elsewhere are left alone, not an error)."""
    try:
        return locate(root, None, allowed)
    except TrackingError:
        return None


def _relative(rel: str | None) -> str:
    if not rel:
        return ""
    rel = rel[:-1] if rel.endswith("/") else rel
    try:
        return confine(rel)
    except UnsafePathError as exc:
        raise InvalidValue(f"Invalid path: {exc.reason}: '{rel}'") from None


def _root_path(root: str, allowed: frozenset[str]) -> Where:
    if any(char in root for char in _UNSAFE_CHARS) or _fully_decoded_unsafe(root):
        raise _forbidden(root, "it contains a query, fragment, backslash or '..'")
    split = urlsplit(root)
    scheme = split.scheme.lower()
    if scheme == PROXY_SCHEME:
        if split.netloc:
            raise _forbidden(root, "mlflow-artifacts URIs naming a host are not read")
        return Where("", _confined(root, unquote(split.path).strip("/")))
    if scheme in DEFAULT_PORTS:
        return _server_root(root, split.path, allowed)
    raise _forbidden(root, "it is not in this server's artifacts destination")


def _server_root(root: str, path: str, allowed: frozenset[str]) -> Where:
    found = origin(root)
    if found is None or found not in allowed:
        raise _forbidden(root, "its host is not on the allow-list of artifacts servers")
    if PROXY_MARKER + "/" not in path + "/":
        raise _forbidden(root, "it is not an mlflow-artifacts URL")
    prefix, _, tail = (path + "/").partition(PROXY_MARKER + "/")
    return Where(found + prefix, _confined(root, unquote(tail).strip("/")))


def _confined(root: str, path: str) -> str:
    try:
        return confine(path, allow_root=True)
    except UnsafePathError as exc:
        raise _forbidden(root, exc.reason) from None


def _fully_decoded_unsafe(text: str) -> bool:
    """Whether decoding `text` any number of times reveals '..', a backslash, '?' or '#'."""
    decoded = text
    for decoded in unquotings(text):
        if any(char in decoded for char in _UNSAFE_CHARS):
            return True
    return ".." in decoded.split("/")


def _forbidden(root: str, reason: str) -> Forbidden:
    return Forbidden(f"This server does not read artifacts at '{root}': {reason}.")
