"""Where a model version's files may be: the check of a `source` a client sends, and of a stored
location before the server reads from it.

A source is a location the client chose, so MLflow's worst advisories live here (API.md 2.3):
CVE-2023-1177 (`file:///etc/` as a source, read back through `model-versions/get-artifact`),
CVE-2023-2780 (the same with `\\..\\`), CVE-2023-6018 (an attacker's
`http://host/api/2.0/mlflow-artifacts/...` that the server then fetches), CVE-2023-6977
(`//proc/self/root`), CVE-2026-2614 (`file:///etc/` or a schemeless `../../etc` on a version).
artgw accepts only sources that name something it serves:

- `runs:/<run_id>/<path>`: a run's artifacts (the run must exist; `run_id`, if sent, must match);
- `models:/<model_id>`: a logged model (`model_id`, if sent, must match);
- `models:/<name>/<version>`, `models:/<name>/latest`, `models:/<name>/<stage>`,
  `models:/<name>@<alias>`: another registered version (copied with its location);
- an artifact URI inside this server's destination: `mlflow-artifacts:/<path>`, an
  `http(s)://<allowed host>/.../api/2.0/mlflow-artifacts/artifacts/<path>` of an allowed artifacts
  server, or a URI below one of the server's own roots (its `--default-artifact-root` when clients
  write there directly, or the destination itself).

Everything else is refused: local paths and `file:` URIs outside those roots, other hosts,
other schemes, and any `..`, backslash, control character, query, fragment or `;` params, however
many times it is percent-encoded.
"""

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from tracking.artifact_roots import origin
from tracking.errors import InvalidValue
from tracking.uris import fully_unquote

MAX_SOURCE_CHARS = 2048
PROXY_SCHEME = "mlflow-artifacts"
PROXY_ROUTE = ("api", "2.0", "mlflow-artifacts", "artifacts")
LOGGED_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
RUN_ID = re.compile(r"[A-Za-z0-9][\w\-]{0,255}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Places:
    """Where model files may be. `destination`: the URI of this server's artifact destination
    (read directly). `hosts`: origins (`scheme://host:port`, as tracking.artifact_roots.allow_list
    makes them) of the artifacts servers whose http(s) proxy URIs are allowed (read through
    them). `roots`: further URIs whose subtree is accepted
    as a source but never read by this server (a `--default-artifact-root` that clients write
    to directly)."""

    destination: str = ""
    hosts: frozenset[str] = frozenset()
    roots: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Source:
    """A checked source. `kind` is "run", "logged_model", "registered" or "artifact"."""

    kind: str
    uri: str
    run_id: str | None = None
    path: str = ""
    """Inside the run (runs:/), or the artifact's path below its root (artifact)."""
    model_id: str | None = None
    model_name: str | None = None
    reference: str | None = None
    """A registered source's version number, `latest`, a stage, or `@alias`."""


def refuse(source: str, why: str) -> InvalidValue:
    return InvalidValue(f"Invalid model version source: '{source[:300]}'. {why}")


def check_source(source: str, run_id: str | None, model_id: str | None, places: Places) -> Source:
    """Classify a `model-versions/create` source, or raise InvalidValue (400) saying why."""
    problem = uri_problem(source)
    if problem:
        raise refuse(source, problem)
    scheme = _scheme(source)
    if scheme == "runs":
        return _run_source(source, run_id, model_id)
    if scheme == "models":
        return _models_source(source, model_id)
    inside_root = any(within(source, root) is not None for root in places.roots)
    if locate(source, places) is None and not inside_root:
        raise refuse(
            source,
            "A source must be a runs:/ or models:/ URI, or an artifact URI inside this server's "
            "artifact destination or an allowed artifacts server.",
        )
    return Source("artifact", source, run_id=run_id or None, model_id=model_id or None)


def uri_problem(uri: str) -> str | None:
    """What makes `uri` unacceptable as any location, before looking at its scheme."""
    if not uri.strip():
        return "The source is empty."
    if len(uri) > MAX_SOURCE_CHARS:
        return f"It is longer than {MAX_SOURCE_CHARS} characters."
    decoded = fully_unquote(uri, rounds=8)
    if _CONTROL.search(decoded):
        return "Control characters (NUL, newline, ...) are not allowed."
    if "\\" in decoded:
        return "Backslashes are not allowed."
    split = urlsplit(decoded)
    if "#" in decoded or "?" in decoded or ";" in split.path:
        return "Queries, fragments and ';' parameters are not allowed."
    if any(part in (".", "..") for part in decoded.split("/")):
        return "Relative path segments ('.', '..') are not allowed."
    return None


def _scheme(uri: str) -> str:
    split = urlsplit(uri)
    # `C:/x` parses with scheme "c"; a one-letter scheme is a drive, i.e. a local path
    return split.scheme.lower() if len(split.scheme) > 1 else ""


def _run_source(source: str, run_id: str | None, model_id: str | None) -> Source:
    split = urlsplit(source)
    parts = split.path.lstrip("/").split("/", 1)
    if split.netloc or not RUN_ID.fullmatch(parts[0]):
        raise refuse(source, "A runs:/ source is runs:/<run_id>/<path>.")
    if run_id and run_id != parts[0]:
        raise refuse(source, "The run_id request parameter must identify the run in the source.")
    if model_id:
        raise refuse(source, "A runs:/ source cannot be given with a model_id.")
    path = unquote(parts[1]).strip("/") if len(parts) > 1 else ""
    return Source("run", source, run_id=parts[0], path=path)


def _models_source(source: str, model_id: str | None) -> Source:
    split = urlsplit(source)
    body = split.path.lstrip("/")
    if split.netloc or not body or body.endswith("/"):
        raise refuse(source, "A models:/ source is models:/<model_id> or models:/<name>/<version>.")
    if "@" in body and "/" not in body:
        name, _, alias = body.partition("@")
        if not name or not alias:
            raise refuse(source, "A models:/ alias source is models:/<name>@<alias>.")
        return _registered(source, model_id, name, "@" + alias)
    parts = body.split("/")
    if len(parts) == 1:
        if not LOGGED_MODEL_ID.fullmatch(parts[0]):
            raise refuse(source, "models:/<id> must name a logged model (m-<32 hex digits>).")
        if model_id and model_id != parts[0]:
            raise refuse(
                source, "The model_id request parameter must identify the model in the source."
            )
        return Source("logged_model", source, model_id=parts[0])
    if len(parts) != 2:
        raise refuse(source, "A models:/ source has at most two segments.")
    return _registered(source, model_id, parts[0], parts[1])


def _registered(source: str, model_id: str | None, name: str, reference: str) -> Source:
    if model_id:
        raise refuse(source, "A registered model version source cannot be given with a model_id.")
    return Source("registered", source, model_name=name, reference=reference)


# -- where a location is -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Location:
    """A readable location: a path in this server's destination (`remote` empty), or an
    allowed artifacts server's proxy URL (`remote`) and the path on it."""

    path: str
    remote: str = ""


def locate(uri: str, places: Places) -> Location | None:
    """Where the server may read `uri` from, or None when it is not a place the server reads."""
    if uri_problem(uri):
        return None
    scheme = _scheme(uri)
    split = urlsplit(uri)
    if scheme == PROXY_SCHEME and not split.netloc:
        return Location(_clean(split.path))
    if scheme == PROXY_SCHEME:  # mlflow-artifacts://host/...: never read (as tracking reads)
        return None
    if scheme in ("http", "https"):
        return _remote(uri, places)
    tail = within(uri, places.destination)
    return Location(tail) if tail is not None else None


def _remote(uri: str, places: Places) -> Location | None:
    split = urlsplit(uri)
    if origin(uri) not in places.hosts:
        return None
    parts = [unquote(p) for p in split.path.split("/") if p]
    width = len(PROXY_ROUTE)
    for start in range(len(parts) - width + 1):
        if tuple(parts[start : start + width]) == PROXY_ROUTE:
            prefix = "/".join(parts[: start + width])
            base = f"{split.scheme}://{split.netloc}/{prefix}"
            return Location("/".join(parts[start + width :]), remote=base)
    return None


def _clean(path: str) -> str:
    return "/".join(p for p in unquote(path).split("/") if p)


def _parts(uri: str) -> tuple[str, str, tuple[str, ...]]:
    split = urlsplit(uri)
    scheme = _scheme(uri)
    path = split.path if scheme else uri
    if scheme == "file" or not scheme:
        scheme, netloc = "file", ""
    else:
        netloc = split.netloc.lower()
    return scheme, netloc, tuple(unquote(p) for p in path.split("/") if p)


def within(uri: str, root: str) -> str | None:
    """`uri`'s path below `root` ('' for the root itself) when `uri` lies inside it, else None.
    Schemes and hosts must match; local paths and `file:` URIs compare as the same scheme, and
    only absolute local paths can be inside anything."""
    if not root or uri_problem(uri):
        return None
    if _scheme(uri) in ("", "file") and not _absolute_local(uri):
        return None
    scheme, netloc, parts = _parts(uri)
    root_scheme, root_netloc, root_parts = _parts(root)
    if (scheme, netloc) != (root_scheme, root_netloc):
        return None
    if parts[: len(root_parts)] != root_parts:
        return None
    return "/".join(parts[len(root_parts) :])


def _absolute_local(uri: str) -> bool:
    path = urlsplit(uri).path if _scheme(uri) == "file" else uri
    return path.startswith("/") and not path.startswith("//")
