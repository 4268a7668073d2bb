"""The one settings table: each setting once, with its default, help text and ARTGW_* variable.

The CLI builds its options from this table, the app factory reads a `Settings` built from it, and a
test checks that the README documents every row.
"""

import os
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type = str
    multiple: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "ARTGW_" + self.name.upper()


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


SETTINGS: tuple[Setting, ...] = (
    Setting("host", "127.0.0.1", "Interface to listen on."),
    Setting("port", 5000, "Port to listen on.", int),
    Setting(
        "artifacts_destination",
        "./mlartifacts",
        "Where artifacts are stored: a local path or file:// URL, memory://, s3://bucket/prefix, "
        "gs://bucket/prefix, az://container/prefix, or any installed fsspec URL.",
    ),
    Setting(
        "storage_option",
        (),
        "key=value passed to the store's fsspec filesystem; repeatable. Values that look like JSON "
        "(numbers, true/false, objects) are parsed.",
        multiple=True,
    ),
    Setting("storage_options_file", "", "A JSON or TOML file of storage options for the store."),
    Setting(
        "backend_store_uri",
        "sqlite:///mlflow.db",
        "Tracking store: sqlite:///path.db, a plain path (a directory gets mlflow.db inside), "
        "or postgresql://user:pass@host:port/db.",
    ),
    Setting(
        "default_artifact_root",
        "mlflow-artifacts:/",
        "Artifact root of new experiments, e.g. http://host:5000/api/2.0/mlflow-artifacts/"
        "artifacts/experiments for the split setup.",
    ),
    Setting("artifacts_only", False, "Serve artifacts only; tracking routes answer 404.", bool),
    Setting(
        "workers",
        0,
        "Server processes sharing the port (0: one per core, at most 8).",
        int,
    ),
    Setting("log_level", "info", "debug, info, warning or error; debug logs every request."),
    Setting("fsync", False, "fsync each local upload before it becomes visible.", bool),
    Setting(
        "gunicorn_opts",
        "",
        "Accepted for drop-in use with mlflow's command line: --log-level, --workers and --timeout "
        "are honoured; anything else is reported and ignored.",
    ),
    Setting("uvicorn_opts", "", "Same as --gunicorn-opts."),
    Setting(
        "timeout", 0, "Seconds a request may stay idle before it is dropped (0: no limit).", int
    ),
    Setting(
        "presigned_urls",
        False,
        "On stores that sign URLs (S3), let clients upload parts (mpu/) and download ranges "
        "(presigned/) straight from the store; advertised in server-info. Off: those answer 501 "
        "and clients use the proxied PUT/GET.",
        bool,
    ),
    Setting("presigned_url_ttl", 3600, "Seconds a presigned URL stays valid.", int),
)


@dataclass(frozen=True)
class Settings:
    """Resolved settings: what `make_app` and `artgw serve` run on."""

    host: str = "127.0.0.1"
    port: int = 5000
    artifacts_destination: str = "./mlartifacts"
    storage_options: dict[str, Any] = field(default_factory=dict)
    backend_store_uri: str = "sqlite:///mlflow.db"
    default_artifact_root: str = "mlflow-artifacts:/"
    artifacts_only: bool = False
    workers: int = 1
    log_level: str = "info"
    fsync: bool = False
    timeout: int = 0
    presigned_urls: bool = False
    presigned_url_ttl: int = 3600

    def replace(self, **changes: Any) -> "Settings":
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)
