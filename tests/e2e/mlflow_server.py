"""A real `mlflow server` (the test venv's full MLflow 3.18) on a free loopback port, for tests
that compare artgw with it."""

import os
import sys
from pathlib import Path

from compose.procs import Proc, free_port, http_ok

START_TIMEOUT = 180.0
"""`mlflow server` takes 20-60 s to answer /health on a busy 2-core machine."""


class MlflowServer:
    """`mlflow server` with a SQLite store and a local artifacts destination in `cwd`; its worker
    processes share its process group, which `stop()` signals as a whole."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--workers", "1",
            "--backend-store-uri", f"sqlite:///{cwd / 'mlflow.db'}",
            "--artifacts-destination", str(cwd / "mlartifacts"),
        ]  # fmt: skip
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.server = Proc(
            "mlflow-server", command, cwd, ready=http_ok(f"{self.url}/health"), env=env, group=True
        )
        self.log_path = self.server.log_path

    def start(self) -> "MlflowServer":
        self.server.start(START_TIMEOUT)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> "MlflowServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
