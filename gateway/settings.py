"""The one settings table: each setting once, with its default, help text and ARTGW_* variable.

`Settings` is the table: each field's default and help live on the field itself (`setting(...)`).
`SETTINGS` lists its rows, plus the few command-line inputs that are not settings of their own
(`INPUTS`: folded into others by the CLI). The CLI builds its options from `SETTINGS`, the app
factory reads a `Settings`, and a test checks that the README documents every row.
To add a setting: add one field with `setting(default, help)` and a README row.
"""

import os
from dataclasses import dataclass, field, fields
from typing import Any

from backends.mounts import Mount


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type = str
    multiple: bool = False
    after: str = ""
    """For an input: the setting it is listed after."""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "ARTGW_" + self.name.upper()


def setting(default: Any, help: str) -> Any:
    """A field of `Settings` that is also a row of the table (a CLI option and a variable)."""
    return field(default=default, metadata={"help": help})


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


@dataclass(frozen=True)
class Settings:
    """Resolved settings: what `make_app` and `artgw serve` run on."""

    host: str = setting("127.0.0.1", "Interface to listen on.")
    port: int = setting(5000, "Port to listen on.")
    artifacts_destination: str = setting(
        "./mlartifacts",
        "Where artifacts are stored: a local path or file:// URL, memory://, s3://bucket/prefix, "
        "gs://bucket/prefix, az://container/prefix, or any installed fsspec URL.",
    )
    backend_store_uri: str = setting(
        "sqlite:///mlflow.db",
        "Tracking store: sqlite:///path.db, a plain path (a directory gets mlflow.db inside), "
        "postgresql://user:pass@host:port/db or mysql://user:pass@host:port/db.",
    )
    default_artifact_root: str = setting(
        "mlflow-artifacts:/",
        "Artifact root of new experiments, e.g. http://host:5000/api/2.0/mlflow-artifacts/"
        "artifacts/experiments for the split setup.",
    )
    allowed_artifact_servers: str = setting(
        "",
        "Comma-separated http(s)://host:port of other artifacts servers whose runs' and models' "
        "files the tracking API may read through (artifacts/list, get-artifact). The host of "
        "--default-artifact-root is always allowed; any other location is refused (403).",
    )
    artifacts_only: bool = setting(False, "Serve artifacts only; tracking routes answer 404.")
    workers: int = setting(0, "Server processes sharing the port (0: one per core, at most 8).")
    log_level: str = setting("info", "debug, info, warning or error; debug logs every request.")
    log_format: str = setting(
        "text", "text: plain lines; json: one JSON object per line (request lines carry fields)."
    )
    fsync: bool = setting(False, "fsync each local upload before it becomes visible.")
    timeout: int = setting(
        0,
        "Seconds an idle keep-alive connection stays open between requests (0: 75 seconds).",
    )
    presigned_urls: bool = setting(
        False,
        "On stores that sign URLs (S3), let clients upload parts (mpu/) and download ranges "
        "(presigned/) straight from the store; advertised in server-info. Off: those answer 501 "
        "and clients use the proxied PUT/GET.",
    )
    presigned_url_ttl: int = setting(3600, "Seconds a presigned URL stays valid.")
    multipart: bool = setting(
        True,
        "Let clients upload big files in parallel parts through artgw, on every store: mpu/create "
        "answers part URLs signed by artgw; advertised in server-info. --presigned-urls takes "
        "precedence on stores that sign URLs.",
    )
    multipart_downloads: bool = setting(
        False,
        "Advertise parallel ranged downloads through artgw: presigned/<path> answers a signed "
        "artgw URL and the size (every download then costs one more request).",
    )
    multipart_ttl: int = setting(
        86400,
        "Seconds an unfinished multipart upload lives: then its id expires and a sweep removes "
        "its parts.",
    )
    max_part_size: int = setting(
        512 << 20, "Largest part of a multipart upload, in bytes (larger: 413)."
    )
    secret: str = setting(
        "",
        "Key that signs part and download URLs; give every worker and replica the same one "
        "(best as ARTGW_SECRET). Unset: a random key per start, fine for one machine.",
    )
    auth_file: str = setting(
        "",
        "Users file (TOML): users, password and token hashes, groups, grants, OIDC. Every route "
        "then needs a permission; empty: no authentication. Reloaded on change and on SIGHUP.",
    )
    auth_store_uri: str = setting(
        "",
        "With --artifacts-only and --auth-file: the tracking server's store (its "
        "--backend-store-uri), read to apply experiment grants to artifact paths.",
    )
    read_only: bool = setting(False, "Refuse every write and delete, to everyone (403).")
    certfile: str = setting("", "Serve HTTPS with this certificate chain (PEM).")
    keyfile: str = setting("", "The private key of --certfile (PEM), if not inside it.")
    ca_certs: str = setting(
        "", "With --certfile: require client certificates signed by these CAs (PEM)."
    )
    max_upload_size: int = setting(
        0,
        "Largest request body in bytes (0: no limit): a larger one is answered 413 before it is "
        "read; a body of undeclared length gets 411.",
    )
    cors_origins: str = setting(
        "",
        "Comma-separated origins whose pages may call the API (CORS), with credentials; * lets "
        "any origin call it without credentials. Empty: CORS off.",
    )
    store_timeout: float = setting(
        60.0,
        "Seconds one call to a remote object store (a listing, a part, the next piece of a "
        "download) may take before the request fails with 504 (0: no limit).",
    )
    storage_options: dict[str, Any] = field(default_factory=dict)
    """Built by the CLI from the --storage-option and --storage-options-file inputs."""
    mounts: tuple[Mount, ...] = ()
    """Built by the CLI from the --mount and --mounts-file inputs."""

    def replace(self, **changes: Any) -> "Settings":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)


INPUTS: tuple[Setting, ...] = (
    Setting(
        "storage_option",
        (),
        "key=value passed to the store's fsspec filesystem; repeatable. Values that look like JSON "
        "(numbers, true/false, objects) are parsed.",
        multiple=True,
        after="artifacts_destination",
    ),
    Setting(
        "storage_options_file",
        "",
        "A JSON or TOML file of storage options for the store.",
        after="storage_option",
    ),
    Setting(
        "mount",
        (),
        "PREFIX=URL: artifact paths under PREFIX/ are stored at URL (any destination URL) instead "
        "of the artifacts destination; repeatable, the longest prefix wins.",
        multiple=True,
        after="storage_options_file",
    ),
    Setting(
        "mounts_file",
        "",
        "A JSON or TOML file of mounts: a table per prefix with `url` and `storage_options`.",
        after="mount",
    ),
    Setting(
        "gunicorn_opts",
        "",
        "Accepted for drop-in use with mlflow's command line: --log-level, --workers and --timeout "
        "are honoured; anything else is reported and ignored.",
        after="fsync",
    ),
    Setting("uvicorn_opts", "", "Same as --gunicorn-opts.", after="gunicorn_opts"),
)
"""Command-line inputs that are not settings: the CLI folds them into `storage_options`, `mounts`
and --log-level/--workers/--timeout."""


def _table() -> tuple[Setting, ...]:
    rows: list[Setting] = []
    for item in fields(Settings):
        if "help" in item.metadata:
            kind = item.type if isinstance(item.type, type) else str
            rows.append(Setting(item.name, item.default, item.metadata["help"], kind))
    for extra in INPUTS:
        position = next(i for i, row in enumerate(rows) if row.name == extra.after)
        rows.insert(position + 1, extra)
    return tuple(rows)


SETTINGS: tuple[Setting, ...] = _table()
