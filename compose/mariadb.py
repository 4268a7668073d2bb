"""A throwaway MariaDB server on 127.0.0.1, for the test suite (the MySQL/MariaDB store).

Debian's server (`mariadb-server`: mariadb-install-db and mariadbd) runs a data directory in a
temporary folder, ignoring the system's option files. As root it runs as root (`--user=root`,
which mariadbd asks for before it runs as root): switching to the `mysql` user would clear the
PR_SET_PDEATHSIG every child of the harness gets (compose/procs.py), and a test run that is killed
would leave the server running. The admin account `root` has no password and
is reached over the server's socket; artgw connects over TCP as its own user, with a password:
`uri()` is what `--backend-store-uri` gets.

Durability is switched off (no flush at commit, no doublewrite buffer, no binary log): a
throwaway server. `stop()` sends SIGTERM (a clean shutdown), SIGKILL after 20 s.
"""

import gc
import os
import secrets
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from compose.procs import HOST, Proc, Service, free_port

ROLE = "artgw"


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not found:
        raise RuntimeError(
            f"MariaDB server binaries not found ({name}): apt-get install mariadb-server"
        )
    return found


class MariaDBServer(Service):
    def __init__(self, workdir: Path | None = None, *, port: int | None = None) -> None:
        self.given = workdir
        self.workdir = workdir or Path()
        self.port = port or 0
        self.password = secrets.token_urlsafe(16)
        self.proc: Proc | None = None

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @property
    def socket(self) -> Path:
        return self.workdir / "mariadb.sock"

    def uri(self, database: str = ROLE) -> str:
        return f"mysql+pymysql://{ROLE}:{self.password}@{HOST}:{self.port}/{database}"

    # -- life cycle ----------------------------------------------------------------------------

    def _start(self) -> None:
        """Initialise the data directory, start the server, create artgw's user and database."""
        if self.given is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="artgw-mariadb-"))
        self.port = self.port or free_port()
        self._install()
        self.proc = Proc("mariadbd", self._server_argv(), self.workdir, ready=self._answers)
        self.proc.start(timeout=60)
        self.admin(f"CREATE USER '{ROLE}'@'%' IDENTIFIED BY '{self.password}'")
        self.admin(f"GRANT ALL PRIVILEGES ON *.* TO '{ROLE}'@'%'")
        self.create_database(ROLE)

    def _user(self) -> list[str]:
        """As root, stay root: a change of user drops the parent-death signal."""
        return ["--user=root"] if os.geteuid() == 0 else []

    def _install(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        argv = [
            _binary("mariadb-install-db"),
            "--no-defaults",
            f"--datadir={self.data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *self._user(),
        ]
        installer = Proc("install-db", argv, self.workdir)
        installer.start()
        assert installer.process is not None
        if installer.process.wait(120) != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{installer.log_path.read_text()}")
        installer.stop()

    def _server_argv(self) -> list[str]:
        return [
            _binary("mariadbd"),
            "--no-defaults",
            f"--datadir={self.data}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            f"--bind-address={HOST}",
            f"--pid-file={self.data / 'server.pid'}",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--innodb-buffer-pool-size=64M",
            "--max-connections=400",
            "--character-set-server=utf8mb4",
            *self._user(),
        ]

    def _answers(self) -> bool:
        """The server is listening on its socket (made once it accepts connections; PyMySQL
        leaves the socket of a refused connection open, so do not try before)."""
        if not self.socket.exists():
            return False
        try:
            self.admin("SELECT 1")
        except Exception:
            # PyMySQL leaves the socket of a refused connect to the garbage collector, whose
            # ResourceWarning would then fail whichever test happens to be running
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()
            return False
        return True

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None
        if self.given is None and self.workdir != Path():
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- administration ------------------------------------------------------------------------

    def admin(self, sql: str, database: str | None = None) -> list[tuple[Any, ...]]:
        """Run one statement as root over the socket; its rows, if any."""
        import pymysql

        conn = pymysql.connect(
            unix_socket=str(self.socket), user="root", database=database, autocommit=True
        )
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def create_database(self, name: str) -> str:
        """A new empty database; its URI."""
        self.admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        return self.uri(name)

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS `{name}`")
