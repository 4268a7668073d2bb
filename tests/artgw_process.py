"""The real `artgw` command as a subprocess on a free loopback port, for end-to-end tests."""

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from compose.procs import Proc, free_port

__all__ = ["REPO", "ArtgwProcess", "artgw_command", "free_port"]

REPO = Path(__file__).resolve().parent.parent


def artgw_command() -> list[str]:
    script = Path(sys.executable).with_name("artgw")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]


class ArtgwProcess:
    """`artgw serve ...` in `cwd`; `url` is its base URL once `start()` returned."""

    def __init__(
        self,
        *args: str,
        cwd: Path,
        port: int | None = None,
        env: dict | None = None,
        verify: str | None = None,
        cert: str | None = None,
    ):
        """`verify`: the CA file of a server started with --certfile (its URL is then https);
        `cert`: a client certificate with its key, for one started with --ca-certs."""
        self.port = port or free_port()
        self.args = ["serve", "--host", "127.0.0.1", "--port", str(self.port), *args]
        self.cwd = cwd
        self.env = {**os.environ, **(env or {})}
        self.verify = verify
        self.cert = cert
        self.url = f"{'https' if verify else 'http'}://127.0.0.1:{self.port}"
        self.server = Proc(
            f"artgw-{self.port}",
            artgw_command() + self.args,
            cwd,
            ready=self._healthy,
            env=self.env,
            stop_timeout=15.0,
            record_pid=False,
            announce=False,
        )
        self.log_path = self.server.log_path

    @property
    def proc(self) -> "subprocess.Popen[bytes] | None":
        return self.server.process

    def start(self, timeout: float = 60.0) -> "ArtgwProcess":
        self.server.start(timeout)
        return self

    def _healthy(self) -> bool:
        try:
            health = requests.get(
                self.url + "/health", timeout=1, verify=self.verify or True, cert=self.cert
            )
        except requests.ConnectionError:
            return False
        return health.status_code == 200

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_workers(self, count: int, timeout: float = 60.0) -> None:
        """Until `count` worker processes have each answered a request (`/health` on a new
        connection each time; needs `--log-level debug`, whose access log names the process):
        the first worker up takes every connection until the others listen."""
        deadline = time.monotonic() + timeout
        while len(self.answering_processes("GET /health")) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {count} workers answered in {timeout} s")
            for _ in range(4 * count):
                self._healthy()
            time.sleep(0.1)

    def answering_processes(self, request_line: str) -> set[str]:
        """The ids of the processes whose access log shows `request_line`."""
        return {
            line.split("] [")[1]
            for line in self.log().splitlines()
            if request_line in line and "] [" in line
        }

    def stop(self, timeout: float = 15.0) -> int | None:
        self.server.stop_timeout = timeout
        return self.server.stop()

    def __enter__(self) -> "ArtgwProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
