"""Start a server from its command line, wait for /health, and stop its whole process group."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from compose.procs import free_port as free_port  # the benchmark modules call servers.free_port
from compose.procs import tail

from . import proctree
from .http import http_request
from .peers import ARTIFACTS, Api, ListRequest

HOST = "127.0.0.1"
__all__ = ["ARTIFACTS", "HOST", "RunningServer", "ServerError", "ServerSpec"]


@dataclass
class ServerSpec:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    health_url: str
    base_url: str  # http://127.0.0.1:PORT
    local_dest: Path | None  # the destination directory when it is on local disk
    api: Api = field(default_factory=Api)  # how files and listings are addressed (peers.py)
    control_url: str | None = None  # rclone's remote control (rc), to drop its folder cache

    def artifact_url(self, rel: str) -> str:
        return f"{self.base_url}{self.api.file_path(rel)}"

    def list_url(self, rel: str) -> str:
        return f"{self.base_url}{self.api.list_request(rel).target}"

    def list_request(self, rel: str) -> ListRequest:
        return self.api.list_request(rel)


@dataclass
class RunningServer:
    spec: ServerSpec
    proc: subprocess.Popen[bytes]
    log_path: Path
    ready_s: float = 0.0
    seen: dict[int, int] = field(default_factory=dict)  # pid -> starttime, for orphan cleanup

    @property
    def pid(self) -> int:
        return self.proc.pid

    def procs(self) -> list[proctree.ProcStat]:
        procs = proctree.tree(self.pid, self.pid)
        self.seen.update((p.pid, p.starttime) for p in procs)
        return procs

    def cpu_seconds(self) -> float:
        return proctree.cpu_seconds(self.procs())

    def rss_bytes(self) -> int:
        return proctree.rss_bytes(self.procs())

    def pss_bytes(self) -> int:
        return proctree.pss_bytes(self.procs())


class ServerError(RuntimeError):
    pass


def render_argv(template: str, **values: str) -> list[str]:
    """Split a command template, then fill {dest} {port} {host} {workers} in each word; a word
    that is only {rclone_rc} becomes the several words of its value."""
    argv: list[str] = []
    for word in shlex.split(template):
        filled = word.format(**values)
        argv += shlex.split(filled) if word == "{rclone_rc}" else [filled]
    return argv


def start(spec: ServerSpec, log_dir: Path, timeout: float = 120.0) -> RunningServer:
    """Launch in a new session (own process group) and wait until health_url answers 200."""
    log_dir.mkdir(parents=True, exist_ok=True)
    spec.cwd.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{spec.name}-{spec.base_url.rsplit(':', 1)[1]}.log"
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    env.update(spec.env)
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            spec.argv,
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = RunningServer(spec=spec, proc=proc, log_path=log_path)
    try:
        server.ready_s = _wait_healthy(server, t0, timeout)
    except BaseException:
        stop(server)
        raise
    server.procs()
    return server


def _wait_healthy(server: RunningServer, t0: float, timeout: float) -> float:
    while True:
        if server.proc.poll() is not None:
            raise ServerError(
                f"{server.spec.name} exited with {server.proc.returncode} before answering "
                f"{server.spec.health_url}; log tail:\n{tail(server.log_path)}"
            )
        try:
            status, _, _ = http_request("GET", server.spec.health_url, timeout=2.0)
            if status == 200:
                return time.monotonic() - t0
        except OSError:
            pass
        if time.monotonic() - t0 > timeout:
            raise ServerError(f"{server.spec.name} did not answer {server.spec.health_url}")
        if len(server.seen) < 64:
            server.procs()  # remember early children too, in case they outlive the root
        time.sleep(0.02)


def stop(server: RunningServer, grace: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL what is left, then kill remembered orphans by PID."""
    server.procs()
    _signal_group(server.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.proc.wait(timeout=grace)
    _signal_group(server.pid, signal.SIGKILL)
    if server.proc.poll() is None:
        server.proc.kill()
    server.proc.wait()
    for pid, starttime in server.seen.items():
        if not proctree.wait_gone(pid, starttime, timeout=2.0):
            st = proctree.read_stat(pid)
            if st is not None and st.starttime == starttime:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
