"""The real `artgw` command as a subprocess on a free loopback port, for end-to-end tests."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
        self.log_path = cwd / f"artgw-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> "ArtgwProcess":
        self.cwd.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                artgw_command() + self.args, cwd=self.cwd, env=self.env, stdout=log, stderr=log
            )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"artgw exited early:\n{self.log()}")
            try:
                health = requests.get(
                    self.url + "/health", timeout=1, verify=self.verify or True, cert=self.cert
                )
                if health.status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"artgw did not answer /health in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def __enter__(self) -> "ArtgwProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
