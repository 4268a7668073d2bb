"""The tracking database going away: PostgreSQL restarted under load, SQLite locked by another
process, SQLite on a full disk. Calls fail fast with 503 JSON meanwhile (never a 500), succeed
again after, and nothing that was answered 200 is lost."""

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from compose.pg import PostgresCluster
from tests.tracking.conftest import _sqlite_lock, call
from tracking import engines

OUTAGE = 2.0


class DurableCluster(PostgresCluster):
    """The suite's cluster, but with synchronous commits: a commit is in the WAL before the
    client hears of it, so an immediate stop (a crash) loses nothing that was committed."""

    def _options(self) -> str:
        return super()._options().replace("-c synchronous_commit=off", "")


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A cluster of this test's own: it is stopped and started under load."""
    with DurableCluster() as cluster:
        yield cluster


def restart(cluster: PostgresCluster, outage: float) -> None:
    """Stop the server at once (as a crash would), wait, start it again."""
    cluster._as_server_user(cluster._pg_ctl("stop", "-m", "immediate"))
    time.sleep(outage)
    cluster._as_server_user(
        cluster._pg_ctl("start", "-l", cluster.log_path, "-o", cluster._options())
    )


class Load:
    """Clients creating runs and logging metrics; what was answered 200 is remembered."""

    def __init__(self, client: TestClient, experiment: str) -> None:
        self.client = client
        self.experiment = experiment
        self.logged: dict[str, list[float]] = {}
        self.failures: list[tuple[float, int, dict, float]] = []
        self.successes: list[float] = []
        self.stop = False

    async def worker(self, number: int) -> None:
        run_id = ""
        step = 0
        while not self.stop:
            started = time.monotonic()
            if not run_id:
                status, body = await call(
                    self.client, "POST", "runs/create", {"experiment_id": self.experiment}
                )
                if status == 200:
                    run_id = body["run"]["info"]["run_id"]
                    self.logged[run_id] = []
            else:
                step += 1
                value = number * 1000.0 + step
                metric = {
                    "run_id": run_id,
                    "key": "m",
                    "value": value,
                    "timestamp": 1,
                    "step": step,
                }
                status, body = await call(self.client, "POST", "runs/log-metric", metric)
                if status == 200:
                    self.logged[run_id].append(value)
            took = time.monotonic() - started
            if status == 200:
                self.successes.append(time.monotonic())
            else:
                self.failures.append((time.monotonic(), status, body, took))
                await asyncio.sleep(0.05)

    async def check_nothing_lost(self) -> None:
        for run_id, values in self.logged.items():
            status, body = await call(
                self.client, "GET", "metrics/get-history", {"run_id": run_id, "metric_key": "m"}
            )
            assert status == 200, body
            stored = sorted(m["value"] for m in body.get("metrics", []))
            assert set(values) <= set(stored), f"run {run_id}: lost {set(values) - set(stored)}"


async def test_postgres_restarted_under_load(make_gateway, own_postgres: PostgresCluster) -> None:
    client = await make_gateway(artifacts_only=False, backend_store_uri=own_postgres.uri())
    status, body = await call(client, "POST", "experiments/create", {"name": "outage"})
    assert status == 200, body
    load = Load(client, body["experiment_id"])
    workers = [asyncio.ensure_future(load.worker(n)) for n in range(8)]
    await asyncio.sleep(1.0)
    down = time.monotonic()
    await asyncio.to_thread(restart, own_postgres, OUTAGE)
    up = time.monotonic()
    while not [t for t in load.successes if t > up] and time.monotonic() - up < 30:
        await asyncio.sleep(0.05)
    recovered = [t for t in load.successes if t > up]
    await asyncio.sleep(0.5)
    load.stop = True
    await asyncio.gather(*workers)

    assert load.failures, "the outage should have failed some calls"
    for _, status, body, took in load.failures:
        assert status == 503, body
        assert body["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert took < 5, f"a call took {took:.1f} s to fail"
    assert recovered, "no call succeeded within 30 s of the restart"
    slowest = max(took for *_, took in load.failures)
    back = recovered[0] - up
    print(f"PostgreSQL down {up - down:.1f} s: {len(load.failures)} calls answered 503 "
          f"(slowest {slowest:.2f} s), first success {back:.2f} s after it was back")  # fmt: skip
    await load.check_nothing_lost()


async def test_sqlite_locked_by_another_process_is_503_not_500(
    make_gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "BUSY_TIMEOUT_MS", 300)  # the default 30 s, shortened
    path = tmp_path / "locked.db"
    client = await make_gateway(artifacts_only=False, backend_store_uri=f"sqlite:///{path}")
    status, body = await call(client, "POST", "experiments/create", {"name": "before"})
    assert status == 200, body
    with _sqlite_lock(path):
        started = time.monotonic()
        status, body = await call(client, "POST", "experiments/create", {"name": "during"})
        took = time.monotonic() - started
    assert status == 503, body
    assert body["error_code"] == "TEMPORARILY_UNAVAILABLE"
    print(f"locked SQLite: 503 after {took:.2f} s")
    by_name = {"experiment_name": "before"}
    status, body = await call(client, "GET", "experiments/get-by-name", by_name)
    assert status == 200, body


async def test_sqlite_writes_work_again_once_the_lock_is_gone(
    make_gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engines, "BUSY_TIMEOUT_MS", 300)
    path = tmp_path / "locked.db"
    client = await make_gateway(artifacts_only=False, backend_store_uri=f"sqlite:///{path}")
    with _sqlite_lock(path):
        status, _ = await call(client, "POST", "experiments/create", {"name": "during"})
    assert status == 503
    status, body = await call(client, "POST", "experiments/create", {"name": "after"})
    assert status == 200, body


SMALL_DISK_MIB = 32
"""Well above what SQLite's WAL reaches before it is checkpointed (1,000 pages, 4 MiB; more while
writes keep coming): on a 4 MiB disk a fast machine's WAL filled the disk itself in the test's
first half second, so freeing the filler freed nothing."""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SMALL_DISK_MIB}m", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 4 MiB tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_sqlite_on_a_full_disk_is_503_and_loses_nothing(make_gateway, small_disk: Path):
    client = await make_gateway(
        artifacts_only=False, backend_store_uri=f"sqlite:///{small_disk / 'mlflow.db'}"
    )
    status, body = await call(client, "POST", "experiments/create", {"name": "full"})
    assert status == 200, body
    load = Load(client, body["experiment_id"])
    worker = asyncio.ensure_future(load.worker(1))
    await asyncio.sleep(0.5)
    filler = small_disk / "filler"
    with open(filler, "wb", buffering=0) as out:  # unbuffered: closing cannot fail again
        try:
            while out.write(b"\0" * 65536):
                pass
        except OSError:
            pass
    assert filler.stat().st_size > SMALL_DISK_MIB << 19, "the database, not the filler, filled it"
    full_from = time.monotonic()
    while not load.failures and time.monotonic() - full_from < 10:
        big = {"run_id": next(iter(load.logged)), "params": [
            {"key": f"p{i}-{time.monotonic_ns()}", "value": "x" * 500} for i in range(100)
        ]}  # fmt: skip
        status, body = await call(client, "POST", "runs/log-batch", big)
        if status != 200:
            load.failures.append((time.monotonic(), status, body, 0.0))
    os.unlink(filler)
    freed = time.monotonic()
    while not [t for t in load.successes if t > freed] and time.monotonic() - freed < 10:
        await asyncio.sleep(0.05)
    load.stop = True
    await worker
    assert load.failures, "the full disk should have failed a write"
    for _, status, body, _ in load.failures:
        assert status == 503, body
        assert body["error_code"] == "TEMPORARILY_UNAVAILABLE"
    last = load.failures[-1][1:3] if load.failures else None
    assert [t for t in load.successes if t > freed], f"none succeeded once freed; last: {last}"
    await load.check_nothing_lost()
