"""Artifact URIs as MLflow derives them (API.md 5.1-5.3), and `artifact_location` validation.

An experiment's location is `<default root>/<id>` unless given; a run's artifact URI is
`<experiment location>/<run id>/artifacts`. Proxied URIs (`mlflow-artifacts:` or
`http(s)://.../api/2.0/mlflow-artifacts/artifacts/...`) name a path inside the artifacts
destination, which is what `destination_path` returns.
"""

import os
import re
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit, urlunsplit

from backends.registry import scheme_of
from tracking.errors import InvalidValue

MAX_LOCATION_CHARS = 2048
PROXY_SCHEME = "mlflow-artifacts"
PROXY_MARKER = "/mlflow-artifacts/artifacts"
HOST_ADDRESSED = frozenset({"http", "https", PROXY_SCHEME, "ftp", "sftp", "hdfs"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def append_path(uri: str, *parts: str) -> str:
    """`uri` with `parts` appended to its path component; the query, if any, stays last."""
    suffix = "/".join(part.strip("/") for part in parts if part.strip("/"))
    if not scheme_of(uri):
        return uri.rstrip("/") + "/" + suffix if uri else suffix
    split = urlsplit(uri)
    path = split.path.rstrip("/") + "/" + suffix if split.path else suffix
    return urlunsplit((split.scheme, split.netloc, path, split.query, ""))


def resolve_if_local(uri: str) -> str:
    """A relative local path becomes absolute (against the server's working directory).

    Reads the working directory: call it off the event loop."""
    if scheme_of(uri) or os.path.isabs(uri):
        return uri
    return os.path.abspath(uri)


def validate_location(location: str, default_root: str) -> str:
    """Check an explicit `artifact_location` (the store makes a relative local path absolute)."""
    reason = _location_problem(location, default_root)
    if reason:
        raise InvalidValue(f"Invalid value for parameter 'artifact_location': {reason}")
    return location


def _location_problem(location: str, default_root: str) -> str | None:
    if len(location) > MAX_LOCATION_CHARS:
        return f"longer than {MAX_LOCATION_CHARS} characters"
    if _CONTROL.search(location):
        return "control characters are not allowed"
    split = urlsplit(location)
    if "#" in location or ";" in split.path:
        return "the URL can't include fragments or params"
    decoded = fully_unquote(location)
    if ".." in urlsplit(decoded).query or ".." in urlsplit(decoded).path.split("/"):
        return "'..' is not allowed"
    scheme = scheme_of(location)
    if scheme == "runs":
        return "it cannot be a runs:/ URI"
    if scheme in HOST_ADDRESSED and split.netloc and not _same_host(location, default_root):
        return (
            f"{scheme} locations must point at the host of the default artifact root "
            f"({urlsplit(default_root).netloc or 'none configured'})"
        )
    return None


def unquotings(text: str, rounds: int = 10) -> Iterator[str]:
    """`text` percent-decoded again and again, each new form, until nothing changes (at most
    `rounds` times), so that no encoding hides a `..`."""
    for _ in range(rounds):
        decoded = unquote(text)
        if decoded == text:
            return
        text = decoded
        yield text


def fully_unquote(text: str, rounds: int = 10) -> str:
    *_, last = text, *unquotings(text, rounds)
    return last


def _same_host(uri: str, other: str) -> bool:
    return urlsplit(uri).netloc.lower() == urlsplit(other).netloc.lower() != ""


def destination_path(artifact_uri: str) -> str | None:
    """The path inside the artifacts destination a proxied URI names (API.md 5.3), else None."""
    split = urlsplit(artifact_uri)
    scheme = split.scheme.lower()
    if scheme == PROXY_SCHEME:
        return unquote(split.path).strip("/")
    if scheme in ("http", "https") and PROXY_MARKER + "/" in split.path + "/":
        tail = (split.path + "/").split(PROXY_MARKER + "/", 1)[1]
        return unquote(tail).strip("/")
    return None


def service_base(artifact_uri: str, tracking_uri: str) -> str | None:
    """The `.../api/2.0` URL whose `mlflow-artifacts` API serves a proxied URI, as the client
    resolves it: http(s) URIs name their server; `mlflow-artifacts:` ones go to the tracking
    server (or to the host they name)."""
    split = urlsplit(artifact_uri)
    scheme = split.scheme.lower()
    if scheme in ("http", "https") and destination_path(artifact_uri) is not None:
        prefix = split.path.split(PROXY_MARKER, 1)[0]
        return urlunsplit((split.scheme, split.netloc, prefix, "", ""))
    if scheme == PROXY_SCHEME:
        tracking = urlsplit(tracking_uri.rstrip("/"))
        netloc = split.netloc or tracking.netloc
        return urlunsplit((tracking.scheme, netloc, tracking.path + "/api/2.0", "", ""))
    return None
