"""Smoke tests for tests/emulators.py: real servers, real fsspec clients, sync and async.

Run: ``.venv/bin/python -m pytest -p no:cacheprovider tests/test_emulators.py``
(``-m "not cloud"`` runs only the lifecycle tests, which need no object-store tools).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from tests.emulators import (
    HOST,
    AzuriteServer,
    EmulatorError,
    EmulatorUnavailable,
    GcsServer,
    S3Server,
    ServerBase,
    aclose_filesystem,
    close_filesystem,
    http_request,
    unique_bucket_name,
    validate_bucket_name,
)

REPO = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------------------------
# one server of each kind, started once for the module (pytest groups the tests by param)


@pytest.fixture(scope="module", params=[S3Server, AzuriteServer, GcsServer], ids=["s3", "az", "gs"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerBase]:
    with request.param() as srv:
        yield srv


def _open_connections(port: int) -> set[str]:
    """Sockets of this process connected to 127.0.0.1:port (Linux /proc), as inode strings."""
    ours = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            ours.add(os.readlink(f"/proc/self/fd/{fd}"))
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port, inode = int(fields[2].split(":")[1], 16), fields[9]
        if remote_port == port and f"socket:[{inode}]" in ours:
            found.add(inode)
    return found


@pytest.mark.cloud
def test_sync_roundtrip(server: ServerBase) -> None:
    name = unique_bucket_name()
    url = server.make_bucket(name)
    assert url == f"{server.protocol}://{name}"
    fs = fsspec.filesystem(server.protocol, skip_instance_cache=True, **server.storage_options)
    try:
        fs.pipe_file(f"{name}/dir/hello.txt", b"hello world")
        assert fs.cat_file(f"{name}/dir/hello.txt") == b"hello world"
        assert fs.ls(f"{name}/dir", detail=False) == [f"{name}/dir/hello.txt"]
        assert fs.find(name) == [f"{name}/dir/hello.txt"]
    finally:
        close_filesystem(fs)
    of = fsspec.open(
        f"{url}/dir/hello.txt", "rb", skip_instance_cache=True, **server.storage_options
    )
    with of as f:
        assert f.read() == b"hello world"
    close_filesystem(of.fs)


async def _async_roundtrip(server: ServerBase, bucket: str) -> None:
    fs = fsspec.filesystem(
        server.protocol, asynchronous=True, skip_instance_cache=True, **server.storage_options
    )
    try:
        await fs._pipe_file(f"{bucket}/a/b.bin", b"\x00\x01" * 1000)
        assert await fs._cat_file(f"{bucket}/a/b.bin") == b"\x00\x01" * 1000
        assert await fs._cat_file(f"{bucket}/a/b.bin", start=1, end=3) == b"\x01\x00"
        listing = await fs._ls(f"{bucket}/a", detail=True)
        assert [e["name"] for e in listing] == [f"{bucket}/a/b.bin"]
    finally:
        await aclose_filesystem(fs)


@pytest.mark.cloud
def test_async_roundtrip_closes_cleanly(server: ServerBase) -> None:
    """The gateway's pattern: asynchronous=True on its own loop, closed before the loop ends."""
    bucket = unique_bucket_name()
    server.make_bucket(bucket)
    before = _open_connections(server.port)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(_async_roundtrip(server, bucket))
        gc.collect()  # s3fs: an unclosed aiohttp session warns from __del__
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    # adlfs: the fs is never collected (its finalizer holds it), so nothing warns until exit;
    # gcsfs: its finalizer closes the session on fsspec's IO loop, leaving the socket open.
    assert _open_connections(server.port) - before == set()


@pytest.mark.cloud
def test_env_alone_configures_clients(server: ServerBase, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = unique_bucket_name()
    server.make_bucket(bucket)
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    # Without token="anon", gcsfs first tries google.auth defaults and the GCE metadata server
    # (quick to fail here, slow where 169.254.169.254 black-holes) before falling back to anon.
    options = {"token": "anon"} if server.protocol == "gs" else {}
    fs = fsspec.filesystem(server.protocol, skip_instance_cache=True, **options)
    fs.pipe_file(f"{bucket}/env.txt", b"via env")
    assert fs.cat_file(f"{bucket}/env.txt") == b"via env"
    close_filesystem(fs)


@pytest.mark.cloud
def test_reset_removes_buckets(server: ServerBase) -> None:
    bucket = unique_bucket_name()
    server.make_bucket(bucket)
    fs = fsspec.filesystem(server.protocol, skip_instance_cache=True, **server.storage_options)
    fs.pipe_file(f"{bucket}/x", b"x")
    server.reset()
    # Forget listings cached before the reset.  (Not use_listings_cache=False: adlfs's ls("")
    # then raises KeyError '/', as _ls_containers reads back the cache entry it just "stored".)
    fs.invalidate_cache()
    assert not fs.exists(f"{bucket}/x")
    assert bucket not in [p.rstrip("/") for p in fs.ls("", detail=False)]
    server.make_bucket(bucket)  # the name is free again at once
    close_filesystem(fs)


# --------------------------------------------------------------------------------------------
# lifecycle, with stand-in servers (python -m http.server): no object-store tools needed


class HttpServer(ServerBase):
    name = "http.server"
    protocol = "http"
    ignore_sigterm = False
    exit_code: int | None = None  # set to make the "server" crash at start

    def _command(self) -> list[str]:
        code = f"""
            import signal, sys
            if {self.ignore_sigterm}:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            if {self.exit_code} is not None:
                print("boom: cannot start", flush=True)
                sys.exit({self.exit_code})
            from http.server import HTTPServer, SimpleHTTPRequestHandler
            HTTPServer(("{self.host}", {self.port}), SimpleHTTPRequestHandler).serve_forever()
        """
        return [sys.executable, "-c", textwrap.dedent(code)]

    def _ready(self) -> bool:
        return http_request("GET", f"{self.url}/", timeout=1)[0] == 200


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")  # a zombie is dead, just not reaped yet


def test_lifecycle_context_manager() -> None:
    with HttpServer() as srv:
        pid, workdir = srv.pid, srv.workdir
        assert srv.running and srv.url.startswith(f"http://{HOST}:")
        assert srv.startup_seconds is not None and srv.startup_seconds < 10
        assert srv.rss_bytes() > 1_000_000
        assert srv.start() is srv  # idempotent
    assert pid is not None and _dead(pid)
    assert workdir is not None and not workdir.exists()
    assert srv.stop() is None  # twice is fine
    with pytest.raises(EmulatorError, match="not running"):
        _ = srv.url


def test_start_failure_shows_log_tail(tmp_path: Path) -> None:
    srv = HttpServer(tmp_path / "w")
    srv.exit_code = 3
    with pytest.raises(EmulatorError, match=r"(?s)exited with 3.*boom: cannot start"):
        srv.start()
    assert (tmp_path / "w" / "server.log").exists()


def test_stop_escalates_to_sigkill() -> None:
    srv = HttpServer(stop_timeout=0.5)
    srv.ignore_sigterm = True
    srv.start()
    t0 = time.monotonic()
    assert srv.stop() == -9
    assert time.monotonic() - t0 < 5


def test_server_dies_with_its_parent() -> None:
    """PR_SET_PDEATHSIG: a test process killed without teardown leaks no server."""
    child = textwrap.dedent(
        """
        import os, sys
        from tests.tools.test_emulators import HttpServer
        srv = HttpServer().start()
        print(srv.pid, srv.workdir, flush=True)
        os._exit(0)  # no atexit, no stop()
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    pid = int(out[0])
    deadline = time.monotonic() + 10
    while not _dead(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _dead(pid)
    # os._exit skipped the cleanup, so the work dir is left behind
    subprocess.run(["rm", "-rf", out[1]], check=True)


def test_bucket_names() -> None:
    assert validate_bucket_name("artgw-test-1") == "artgw-test-1"
    for bad in ("b", "Upper", "a--b", "-ab", "ab-", "a_b", "a.b", "x" * 64):
        with pytest.raises(ValueError):
            validate_bucket_name(bad)
    assert unique_bucket_name() != unique_bucket_name()


def test_missing_node_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EmulatorUnavailable, match="apt-get install nodejs npm"):
        AzuriteServer().start()


def test_gcsfs_zonal_support_is_off() -> None:
    assert os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] == "false"
