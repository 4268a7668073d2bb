"""The local twin: docker-compose.yml's topology as plain processes on 127.0.0.1, no Docker.

    python -m compose.twin            (or: python compose/twin.py)

starts, in this order, a throwaway PostgreSQL cluster (compose/pg.py), a SeaweedFS cluster with
its S3 gateway (compose/seaweed.py) and a bucket in it, the tracking service on PostgreSQL whose
default artifact root is nginx, two `artgw serve --artifacts-only` gateways on that bucket, and
nginx load-balancing them with compose/nginx.conf (compose/nginx.py). Every artgw runs with
--auth-file: a users file with the user "twin" (everything) and "twin-team" (write on the
team-* experiments, which the gateways look up in PostgreSQL with --auth-store-uri), random
passwords, which it prints (the client settings are `Twin.client_env`). It prints the URLs and
waits; Ctrl-C (or SIGTERM) stops everything it started, newest first, each by its recorded PID
(SIGTERM, SIGKILL after 20 s), and prints how many requests each gateway served.
"""

import argparse
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable, ahead of any
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # other "compose" package

from compose.nginx import nginx_proc
from compose.pg import PostgresCluster
from compose.procs import HOST, Proc, Service, free_ports, http_ok
from compose.seaweed import SeaweedCluster

ARTIFACTS_PATH = "/api/2.0/mlflow-artifacts/artifacts"
REQUEST = re.compile(r"\[DEBUG\] (GET|PUT|HEAD|DELETE|POST|PATCH) (\S+) (\d{3})")
UPSTREAM = re.compile(r'" (?P<status>\d{3}) .*upstream=(?P<up>.*?) upstream_status')


def artgw_command() -> list[str]:
    script = Path(sys.executable).with_name("artgw")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli.main"]


@dataclass
class Twin(Service):
    workdir: Path | None = None
    gateways_count: int = 2
    volume_servers: int = 3
    bucket: str = "artgw-twin"
    postgres: PostgresCluster | None = None
    seaweed: SeaweedCluster | None = None
    gateways: list[Proc] = field(default_factory=list)
    nginx: Proc | None = None
    tracking: Proc | None = None
    ports: dict[str, int] = field(default_factory=dict)
    user: str = "twin"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    team_user: str = "twin-team"
    """A second user, with write on the experiments named team-* only: the gateways find a
    path's experiment in the tracking database (--auth-store-uri)."""
    team_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    """ARTGW_SECRET of every gateway: a part URL signed by one is good on the other."""

    # -- start and stop ------------------------------------------------------------------------

    def _start(self) -> None:
        """Start everything; if any part fails, stop what did start and raise."""
        self._make_workdir()
        ports = free_ports(self.gateways_count + 2)
        self.ports = {"nginx": ports[0], "tracking": ports[1]}
        self.postgres = PostgresCluster()
        self.postgres.start()
        (self.rundir / "postgres.pid").write_text(f"{self.postgres.pid}\n")
        self.seaweed = SeaweedCluster(
            self.root / "seaweed", volume_servers=self.volume_servers, rundir=self.rundir
        )
        self.seaweed.start()
        self.seaweed.make_bucket(self.bucket)
        self._write_users_file()
        self.tracking = self._tracking(ports[1])  # first: it makes the schema the gateways read
        self.tracking.start()
        for i, port in enumerate(ports[2:], 1):
            self.gateways.append(self._gateway(i, port))
            self.gateways[-1].start()
        self.nginx = nginx_proc(self.root / "nginx", self.rundir, ports[0], ports[2:])
        self.nginx.start()

    def stop(self) -> None:
        """Newest first; safe to call twice, and after a failed start."""
        for proc in [self.nginx, *reversed(self.gateways), self.tracking]:
            if proc is not None:
                proc.stop()
        if self.seaweed is not None:
            self.seaweed.stop()
        if self.postgres is not None:
            self.postgres.stop()
            (self.rundir / "postgres.pid").unlink(missing_ok=True)

    def stop_seconds(self) -> dict[str, float]:
        """How long each process took to stop (after `stop()`), for the record."""
        procs = [self.tracking, self.nginx, *self.gateways]
        if self.seaweed is not None:
            procs += [self.seaweed.s3, self.seaweed.filer, *self.seaweed.volumes]
            procs.append(self.seaweed.master)
        return {p.name: round(p.stop_seconds, 2) for p in procs if p and p.stop_seconds}

    def _make_workdir(self) -> None:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="artgw-twin-"))
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o755)  # nginx's workers (an unprivileged user) write temp files

    @property
    def root(self) -> Path:
        assert self.workdir is not None, "not started"
        return self.workdir

    @property
    def rundir(self) -> Path:
        return self.root / "run"

    @property
    def users_file(self) -> Path:
        return self.root / "users.toml"

    def _write_users_file(self) -> None:
        """The real `artgw users add`, then the grants: everything to `user`, write on the
        team-* experiments to `team_user`."""
        for name, password in ((self.user, self.password), (self.team_user, self.team_password)):
            subprocess.run(
                [*artgw_command(), "users", "add", name, "--password-stdin"],
                input=password + "\n",
                env={**os.environ, "ARTGW_AUTH_FILE": str(self.users_file)},
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            )
        grants = f'\n[[grants]]\nto = ["user:{self.user}"]\npermission = "admin"\nall = true\n'
        grants += f'\n[[grants]]\nto = ["user:{self.team_user}"]\npermission = "write"\n'
        grants += 'experiment_names = ["team-*"]\n'
        with open(self.users_file, "a") as users:
            users.write(grants)

    @property
    def client_env(self) -> dict[str, str]:
        """What an mlflow client needs: the tracking URI and the twin user's credentials."""
        return {
            "MLFLOW_TRACKING_URI": self.tracking_url,
            "MLFLOW_TRACKING_USERNAME": self.user,
            "MLFLOW_TRACKING_PASSWORD": self.password,
        }

    def _artgw(self, name: str, port: int, args: list[str], env: dict[str, str]) -> Proc:
        args = [*args, "--auth-file", str(self.users_file)]
        argv = [*artgw_command(), "serve", "--host", HOST, "--port", str(port), *args]
        cwd = self.root / name
        cwd.mkdir(parents=True, exist_ok=True)
        environ = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", **env}
        ready = http_ok(f"http://{HOST}:{port}/health")
        return Proc(name, argv, self.rundir, ready=ready, env=environ, cwd=cwd)

    def _gateway(self, index: int, port: int) -> Proc:
        assert self.seaweed is not None
        args = ["--artifacts-only", "--artifacts-destination", f"s3://{self.bucket}"]
        args += ["--workers", "1", "--log-level", "debug"]
        env = {**self.seaweed.env, "ARTGW_SECRET": self.secret}
        assert self.postgres is not None  # its URI holds a password: not on the command line
        env["ARTGW_AUTH_STORE_URI"] = self.postgres.uri()
        return self._artgw(f"gateway{index}", port, args, env)

    def _tracking(self, port: int) -> Proc:
        assert self.postgres is not None
        args = ["--default-artifact-root", self.nginx_url + ARTIFACTS_PATH + "/experiments"]
        args += ["--workers", "1", "--log-level", "debug"]
        # The URI holds a password: through the environment, not the process list.
        env = {"ARTGW_BACKEND_STORE_URI": self.postgres.uri()}
        return self._artgw("tracking", port, args, env)

    # -- what it serves ------------------------------------------------------------------------

    @property
    def nginx_url(self) -> str:
        return f"http://{HOST}:{self.ports['nginx']}"

    @property
    def tracking_url(self) -> str:
        return f"http://{HOST}:{self.ports['tracking']}"

    def describe(self) -> str:
        assert self.postgres is not None and self.seaweed is not None
        gateways = ", ".join(
            f"http://{HOST}:{g.argv[g.argv.index('--port') + 1]} (pid {g.pid})"
            for g in self.gateways
        )
        pg_uri = self.postgres.uri().replace(self.postgres.password, "***")
        return "\n".join(
            [
                f"tracking   {self.tracking_url}   (MLFLOW_TRACKING_URI)",
                f"user       {self.user} / {self.password}   (MLFLOW_TRACKING_USERNAME / "
                f"MLFLOW_TRACKING_PASSWORD; users file {self.users_file})",
                f"team user  {self.team_user} / {self.team_password}   (write on experiments "
                "named team-*)",
                f"artifacts  {self.nginx_url}   (nginx, default artifact root "
                f"{self.nginx_url}{ARTIFACTS_PATH}/experiments)",
                f"gateways   {gateways}",
                f"s3         {self.seaweed.s3_url}   (bucket {self.bucket}, SeaweedFS, "
                f"{self.volume_servers} volume servers, replication 001)",
                f"postgres   {pg_uri}",
                f"work dir   {self.root}   (logs and PIDs in {self.rundir})",
            ]
        )

    def request_counts(self) -> dict[str, Counter[str]]:
        """Artifact requests each gateway logged, by method (from their debug request lines)."""
        counts = {}
        for proc in self.gateways:
            text = proc.log_path.read_text(errors="replace") if proc.log_path.exists() else ""
            found = REQUEST.findall(text)
            counts[proc.name] = Counter(m for m, path, _ in found if ARTIFACTS_PATH in path)
        return counts

    def nginx_summary(self) -> dict[str, object]:
        """From nginx's access log: requests per upstream, retried ones, 5xx answers."""
        log = self.root / "nginx" / "access.log"
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        served: Counter[str] = Counter()
        retried, errors = 0, []
        for line in lines:
            match = UPSTREAM.search(line)
            if match is None:
                continue
            upstreams = [u.strip() for u in match.group("up").split(",")]
            served[upstreams[-1]] += 1
            retried += len(upstreams) > 1
            if match.group("status").startswith("5"):
                errors.append(line)
        return {"requests": len(lines), "served": dict(served), "retried": retried, "5xx": errors}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="default: a new temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the work dir on exit")
    parser.add_argument("--gateways", type=int, default=2, help="artifacts gateways (2)")
    parser.add_argument(
        "--volume-servers",
        type=int,
        default=3,
        help="SeaweedFS volume servers (3; replication 001)",
    )
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    for signum in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell's `twin &` ignores it
        signal.signal(signum, _interrupt)
    twin = Twin(args.workdir, args.gateways, args.volume_servers)
    try:
        twin.start()
        print(twin.describe(), "\nReady. Ctrl-C stops everything.", flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
    finally:
        twin.stop()
        if twin.workdir is not None:
            print(f"requests per gateway: {dict(twin.request_counts())}", flush=True)
            print(f"seconds to stop: {twin.stop_seconds()}", flush=True)
            if not args.keep and args.workdir is None:
                shutil.rmtree(twin.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
