"""The real mlflow 3.18 client's parallel multipart upload and ranged download through artgw.

`artgw serve --workers 2` (one for memory://, which is per process) on every store; the client
runs in subprocesses with its multipart switches on and small parts, so a file of a few MiB
goes up in parts spread over both workers and comes down in parallel ranges.
"""

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from backends.parts import FOLDER
from tests.artgw_process import ArtgwProcess
from tests.stores import CLOUD_SERVERS, CloudView, cloud_destination

A = "/api/2.0/mlflow-artifacts"
MiB = 1 << 20
CLIENT = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo_uri, destination, *files = sys.argv[1:]
    repo = get_artifact_repository(repo_uri)
    def upload(item):
        local, folder = item.split("=", 1)
        repo.log_artifact(local, folder)
    with ThreadPoolExecutor(len(files)) as pool:
        list(pool.map(upload, files))
    if destination != "-":
        print(repo.download_artifacts("models", destination))
    """
)


def client_env(gateway: ArtgwProcess, chunk: int) -> dict[str, str]:
    return {
        **os.environ,
        "MLFLOW_TRACKING_URI": gateway.url,
        "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
        "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(MiB),
        "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(chunk),
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "true",
        "MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE": str(chunk),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    }


def client(
    gateway: ArtgwProcess, chunk: int, destination: str, *files: str
) -> tuple[list[str], dict[str, str]]:
    argv = [sys.executable, "-c", CLIENT, repo_uri(gateway), destination, *files]
    return argv, client_env(gateway, chunk)


def repo_uri(gateway: ArtgwProcess) -> str:
    return f"mlflow-artifacts://127.0.0.1:{gateway.port}/0/r1/artifacts"


def run(argv_env: tuple[list[str], dict[str, str]], timeout: float = 120) -> str:
    argv, env = argv_env
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def random_file(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


STORES = ["local", "memory", *(pytest.param(k, marks=pytest.mark.cloud) for k in CLOUD_SERVERS)]


@pytest.mark.parametrize("kind", STORES)
def test_client_uploads_and_downloads_in_parts_on_every_store(
    request: pytest.FixtureRequest, artgw: Callable[..., ArtgwProcess], tmp_path: Path, kind: str
) -> None:
    args = ["--artifacts-only", "--log-level", "debug", "--multipart-downloads"]
    env: dict[str, str] = {}
    if kind == "local":
        args += ["--workers", "2", "--artifacts-destination", str(tmp_path / "dest")]
    elif kind == "memory":
        args += ["--workers", "1", "--artifacts-destination", f"memory://mp-{os.getpid()}"]
    else:
        server, url, options = cloud_destination(request, kind)
        env = {**server.env, "AWS_EC2_METADATA_DISABLED": "true"}
        args += ["--workers", "2", "--artifacts-destination", url]
        args += [flag for k, v in options.items() for flag in ("--storage-option", f"{k}={v}")]
    gateway = artgw(*args, env=env)
    size = 64 * MiB + 12345 if kind in ("local", "memory") else 16 * MiB + 12345
    source = random_file(tmp_path / "src" / "model.bin", size)
    (tmp_path / "back").mkdir()
    out = run(client(gateway, 5 * MiB, str(tmp_path / "back"), f"{source}=models"))
    downloaded = Path(out.strip().splitlines()[-1]) / "model.bin"
    assert sha(downloaded) == sha(source)
    gateway.stop()
    log = gateway.log()
    parts = log.count(f"PUT {A}/mpu/part/0/r1/artifacts/models/model.bin")
    assert parts == -(-size // (5 * MiB)), log[-3000:]
    assert f"POST {A}/mpu/complete/0/r1/artifacts/models 200" in log
    assert f"GET {A}/presigned/0/r1/artifacts/models/model.bin 200" in log
    assert log.count(f"GET {A}/signed/0/r1/artifacts/models/model.bin") >= 4
    assert f"PUT {A}/artifacts/" not in log
    if kind == "local":
        assert _pending_local(tmp_path / "dest") == []


def _pending_local(root: Path) -> list[str]:
    folder = root / FOLDER
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def test_twenty_uploads_at_once_and_two_to_one_path(
    artgw: Callable[..., ArtgwProcess], tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    gateway = artgw("--artifacts-only", "--workers", "2", "--artifacts-destination", str(dest))
    files = [random_file(tmp_path / f"src{i}" / "model.bin", 3 * MiB + i) for i in range(20)]
    same = [random_file(tmp_path / f"same{i}" / "shared.bin", 3 * MiB + i) for i in range(2)]
    items = [f"{f}=models/m{i}" for i, f in enumerate(files)] + [f"{f}=models" for f in same]
    run(client(gateway, MiB, "-", *items))
    stored = dest / "0/r1/artifacts/models"
    for i, source in enumerate(files):
        assert sha(stored / f"m{i}/model.bin") == sha(source)
    assert sha(stored / "shared.bin") in {sha(f) for f in same}
    assert _pending_local(dest) == []


def test_a_killed_client_leaves_nothing_visible_then_the_retry_and_the_sweep(
    artgw: Callable[..., ArtgwProcess], tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    args = ["--artifacts-only", "--workers", "2", "--multipart-ttl", "6"]
    gateway = artgw(*args, "--artifacts-destination", str(dest))
    source = random_file(tmp_path / "src" / "model.bin", 64 * MiB)
    argv, env = client(gateway, MiB, "-", f"{source}=models")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not _parts_written(dest) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _parts_written(dest), "no part arrived"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    target = dest / "0/r1/artifacts/models/model.bin"
    assert not target.exists()
    assert len(_pending_local(dest)) == 1
    run(client(gateway, MiB, "-", f"{source}=models"))
    assert sha(target) == sha(source)
    deadline = time.monotonic() + 20
    while _pending_local(dest) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _pending_local(dest) == []  # the killed upload's parts, swept after its TTL
    assert sha(target) == sha(source)


def _parts_written(root: Path) -> int:
    folder = root / FOLDER
    if not folder.exists():
        return 0
    return sum(len(list(p.iterdir())) for p in folder.iterdir() if p.is_dir())


@pytest.mark.cloud
def test_s3_leaves_no_multipart_upload_after_abort(
    request: pytest.FixtureRequest, artgw: Callable[..., ArtgwProcess], tmp_path: Path
) -> None:
    """A part the store refuses (S3: parts under 5 MiB but the last) makes the client abort."""
    server, url, options = cloud_destination(request, "s3")
    env = {**server.env, "AWS_EC2_METADATA_DISABLED": "true"}
    flags = [flag for k, v in options.items() for flag in ("--storage-option", f"{k}={v}")]
    args = ["--artifacts-only", "--log-level", "debug", "--artifacts-destination", url]
    gateway = artgw(*args, *flags, env=env)
    source = random_file(tmp_path / "src" / "model.bin", 3 * MiB)
    argv, client_vars = client(gateway, MiB, "-", f"{source}=models")
    out = subprocess.run(argv, capture_output=True, text=True, env=client_vars, timeout=120)
    assert out.returncode != 0 and "EntityTooSmall" in out.stderr
    gateway.stop()
    assert f"POST {A}/mpu/abort/0/r1/artifacts/models 200" in gateway.log()

    async def uploads() -> list:
        view = CloudView(url, options)
        try:
            bucket = url.split("://", 1)[1].split("/", 1)[0]
            listed = await view.fs._call_s3("list_multipart_uploads", Bucket=bucket)
            return listed.get("Uploads", [])
        finally:
            await view.close()

    assert asyncio.run(uploads()) == []
