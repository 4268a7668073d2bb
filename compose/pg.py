"""A throwaway PostgreSQL cluster on 127.0.0.1, for the local twin and the test suite.

Debian's server binaries (`postgresql` package, /usr/lib/postgresql/<version>/bin) run an
initdb'd data directory in a temporary folder. PostgreSQL refuses to run as root, so as root every
server command goes through `runuser -u postgres --`. The cluster trusts local socket connections
(the admin role `postgres`, used to create databases) and asks a password over TCP, where artgw
connects as its own role: `uri()` is what `--backend-store-uri` gets.

Durability is switched off (fsync, synchronous_commit, full_page_writes): a throwaway cluster.
The postmaster's PID is read from postmaster.pid; `stop()` asks `pg_ctl stop -m fast` and falls
back to SIGKILL of that PID.
"""

import contextlib
import glob
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from compose.procs import HOST, Service, free_port

ADMIN = "postgres"
ROLE = "artgw"


def server_bin() -> Path:
    """The newest installed server's bin directory (ARTGW_PG_BIN overrides)."""
    if os.environ.get("ARTGW_PG_BIN"):
        return Path(os.environ["ARTGW_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    if not found:
        raise RuntimeError(
            "PostgreSQL server binaries not found: apt-get install postgresql "
            "(or set ARTGW_PG_BIN to the directory holding pg_ctl)"
        )
    return Path(found[-1]).parent


def _version(path: str) -> int:
    return int(Path(path).parent.parent.name.split(".")[0])


class PostgresCluster(Service):
    def __init__(self, workdir: Path | None = None, *, port: int | None = None) -> None:
        self.given = workdir
        self.workdir = workdir or Path()
        self.port = port or 0
        self.password = secrets.token_urlsafe(16)
        self.bin = server_bin()
        self.pid: int | None = None

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.workdir / "sock"

    @property
    def log_path(self) -> Path:
        return self.workdir / "postgres.log"

    def uri(self, database: str = ROLE) -> str:
        return f"postgresql://{ROLE}:{self.password}@{HOST}:{self.port}/{database}"

    # -- life cycle ----------------------------------------------------------------------------

    def _start(self) -> None:
        """initdb, start, create artgw's role and database; on any failure, stop and raise."""
        self._make_workdir()
        self.port = self.port or free_port()
        self._as_server_user(self._initdb())
        self._as_server_user(self._pg_ctl("start", "-l", self.log_path, "-o", self._options()))
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])
        self.admin(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{self.password}'")
        self.create_database(ROLE)

    def _make_workdir(self) -> None:
        if self.given is None:  # /tmp: short socket paths, and the postgres user can traverse it
            self.workdir = Path(tempfile.mkdtemp(prefix="artgw-pg-"))
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.workdir, ADMIN, ADMIN)
            shutil.chown(self.socket_dir, ADMIN, ADMIN)

    def _initdb(self) -> list[Any]:
        return [
            self.bin / "initdb",
            "-D",
            self.data,
            "-U",
            ADMIN,
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
        ]

    def _options(self) -> str:
        settings = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses={HOST} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        return settings

    def _pg_ctl(self, *args: Any) -> list[Any]:
        return [self.bin / "pg_ctl", "-D", self.data, "-w", "-t", "60", *args]

    def _as_server_user(self, argv: list[Any]) -> None:
        prefix = ["runuser", "-u", ADMIN, "--"] if os.geteuid() == 0 else []
        command = [*prefix, *map(str, argv)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd="/")
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                f"\n{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-2000:]
        return ""

    def stop(self) -> None:
        """Fast shutdown (SIGKILL after 20 s) and the work dir removed, if this made it."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._as_server_user(self._pg_ctl("stop", "-m", "fast", "-t", "20"))
        if self.pid is not None:
            self._kill_if_alive(self.pid)
            self.pid = None
        if self.given is None and self.workdir != Path():
            shutil.rmtree(self.workdir, ignore_errors=True)

    @staticmethod
    def _kill_if_alive(pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 0)
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.05)

    # -- administration ------------------------------------------------------------------------

    def admin(self, sql: str, database: str = ADMIN) -> list[tuple[Any, ...]]:
        """Run one statement as the admin role over the socket; its rows, if any."""
        import psycopg

        with psycopg.connect(
            host=str(self.socket_dir), port=self.port, user=ADMIN, dbname=database, autocommit=True
        ) as conn:
            cursor = conn.execute(sql)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str) -> str:
        """A new empty database owned by artgw's role; its URI."""
        self.admin(f'CREATE DATABASE "{name}" OWNER {ROLE}')
        return self.uri(name)

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
