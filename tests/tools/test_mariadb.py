"""The suite's MariaDB server (compose/mariadb.py) dies with the process that started it."""

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.skipif(not shutil.which("mariadbd", path="/usr/sbin:/usr/bin"), reason="no MariaDB")
def test_mariadb_dies_with_a_killed_test_run() -> None:
    """A test run killed with SIGKILL (no teardown, no atexit) leaves no mariadbd behind: it
    keeps the parent-death signal because it never switches user (about 7 s: the server starts)."""
    child = textwrap.dedent(
        """
        import os, signal
        from compose.mariadb import MariaDBServer
        server = MariaDBServer().start()
        print(server.proc.pid, server.workdir, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True, check=False
    )
    pid, workdir = done.stdout.split()
    killed = time.monotonic()
    try:
        while not _dead(int(pid)) and time.monotonic() - killed < 20:
            time.sleep(0.05)
        assert _dead(int(pid)), "mariadbd outlived the killed process that started it"
        print(f"mariadbd gone {time.monotonic() - killed:.2f} s after its parent was killed")
    finally:
        if not _dead(int(pid)):
            os.kill(int(pid), 9)
        shutil.rmtree(workdir, ignore_errors=True)
