"""Processes the local twin, the tests and the benchmarks start (the one process harness): each
with its PID recorded, stopped by that PID.

A `Proc` is one server: started with `subprocess.Popen` in a session of its own (a terminal's
Ctrl-C reaches the twin, which then stops everything in order), its PID written to
`<dir>/<name>.pid`, its output to `<dir>/<name>.log`, ready once its probe answers. `stop()`
sends SIGTERM and falls back to SIGKILL after `stop_timeout`; `kill()` is the crash.

Safety nets as in tests/emulators.py: on Linux every child gets PR_SET_PDEATHSIG=SIGTERM (the
kernel stops it if the starting thread dies, even by SIGKILL), and an atexit hook stops whatever
is still running, newest first.
"""

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self

HOST = "127.0.0.1"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_RUNNING: list["Proc"] = []
_RUNNING_LOCK = threading.Lock()


class Service(ABC):
    """Something made of processes: started whole or not at all, usable with `with`."""

    def start(self) -> Self:
        """Start everything; if any part fails, stop what did start and raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    @abstractmethod
    def _start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StartError(RuntimeError):
    """A process exited or did not answer in time; the message ends with its log's tail."""


_HANDED_OUT: set[int] = set()


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago, and never handed out before by this process (the
    twin picks ports for many servers before any of them binds)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def free_ports(count: int, host: str = HOST) -> list[int]:
    """`count` distinct ports that were free a moment ago."""
    return [free_port(host) for _ in range(count)]


def http_status(url: str, timeout: float = 2.0) -> int:
    """The HTTP status of a GET (0 when nothing answers); never through a proxy."""
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)
    except (OSError, urllib.error.URLError):
        return 0


def http_ok(url: str) -> Callable[[], bool]:
    return lambda: http_status(url) == 200


def tail(path: Path, limit: int = 3000) -> str:
    """The last `limit` bytes of a log, as text."""
    try:
        return path.read_bytes()[-limit:].decode(errors="replace")
    except OSError as error:
        return f"<no log: {error}>"


def pdeathsig() -> Callable[[], None] | None:
    """A preexec_fn that makes the child get SIGTERM when its parent (thread) dies, on Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


class Proc:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        rundir: Path,
        *,
        ready: Callable[[], bool] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_timeout: float = 20.0,
        group: bool = False,
        record_pid: bool = True,
        announce: bool = True,
    ) -> None:
        """`group`: signals go to the whole process group (a server that forks workers);
        `record_pid`: write `<rundir>/<name>.pid`; `announce`: start the log with the command
        (not for commands that hold secrets, such as a database URI with its password)."""
        self.name = name
        self.argv = [str(arg) for arg in argv]
        self.rundir = rundir
        self.ready = ready
        self.env = dict(env) if env is not None else None
        self.cwd = cwd or rundir
        self.stop_timeout = stop_timeout
        self.group = group
        self.record_pid = record_pid
        self.announce = announce
        self.process: subprocess.Popen[bytes] | None = None
        self.stop_seconds: float | None = None
        """How long the last stop() or kill() took."""

    @property
    def log_path(self) -> Path:
        return self.rundir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.rundir / f"{self.name}.pid"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 60.0) -> Self:
        self.rundir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            if self.announce:
                log.write(f"$ {' '.join(self.argv)}\n".encode())
                log.flush()
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,
                preexec_fn=pdeathsig(),
            )
        if self.record_pid:
            self.pid_path.write_text(f"{self.process.pid}\n")
        with _RUNNING_LOCK:
            _RUNNING.append(self)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.ready is not None and not self.ready():
            if not self.running:
                raise StartError(f"{self.name} exited early:\n{tail(self.log_path)}")
            if time.monotonic() > deadline:
                self.stop()
                raise StartError(f"{self.name} not ready in {timeout} s:\n{tail(self.log_path)}")
            time.sleep(0.1)

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after `stop_timeout`; the exit code (None if never started)."""
        return self._end(signal.SIGTERM, self.stop_timeout)

    def kill(self) -> int | None:
        """SIGKILL at once: a crash, for failure tests."""
        return self._end(signal.SIGKILL, self.stop_timeout)

    def _end(self, signum: int, timeout: float) -> int | None:
        process = self.process
        if process is None:
            return None
        began = time.monotonic()
        if process.poll() is None:
            self._signal(process, signum)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(process, signal.SIGKILL)
                process.wait()
        with _RUNNING_LOCK, contextlib.suppress(ValueError):
            _RUNNING.remove(self)
        self.pid_path.unlink(missing_ok=True)
        self.stop_seconds = time.monotonic() - began
        return process.returncode

    def _signal(self, process: "subprocess.Popen[bytes]", signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.group:
                os.killpg(process.pid, signum)
            else:
                process.send_signal(signum)

    def __repr__(self) -> str:
        return f"<Proc {self.name} pid={self.pid} {'running' if self.running else 'stopped'}>"


@atexit.register
def _stop_leftovers() -> None:
    with _RUNNING_LOCK:
        leftovers = list(reversed(_RUNNING))
    for proc in leftovers:
        with contextlib.suppress(Exception):
            proc.stop()
