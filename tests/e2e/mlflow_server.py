"""A real `mlflow server` (the test venv's full MLflow 3.18) on a free loopback port, for tests
that compare artgw with it."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.artgw_process import free_port

START_TIMEOUT = 180.0
"""`mlflow server` takes 20-60 s to answer /health on a busy 2-core machine."""


class MlflowServer:
    """`mlflow server` with a SQLite store and a local artifacts destination in `cwd`."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = cwd / "mlflow-server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "MlflowServer":
        self.cwd.mkdir(parents=True, exist_ok=True)
        command = [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--workers", "1",
            "--backend-store-uri", f"sqlite:///{self.cwd / 'mlflow.db'}",
            "--artifacts-destination", str(self.cwd / "mlartifacts"),
        ]  # fmt: skip
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=self.cwd, env=env, stdout=log, stderr=log, start_new_session=True
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited early:\n{self.log()}")
            try:
                if requests.get(self.url + "/health", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass  # not listening yet, or too busy starting to answer
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"mlflow server did not answer in {START_TIMEOUT}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the server and the worker processes it started (its own process group)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> "MlflowServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
