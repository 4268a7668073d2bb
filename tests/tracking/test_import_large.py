"""A 100,000-point metric history imported by the real `artgw import` process: the rate and the
peak RSS are printed, and the RSS stays bounded (points stream in batches). The run is made by
the real mlflow client; the bulk of its points is appended in the file store's own line format
(`timestamp value step`, as MLflow's FileStore writes it), since the client takes a minute to
log 100,000 points into a file store. benchmarks/import_bench.py does 1,000,000."""

import re
import sqlite3
import subprocess
import time
from pathlib import Path

import psutil
import pytest
from mlflow import MlflowClient

from tests.artgw_process import artgw_command
from tests.tracking.import_sources import file_store_uri

pytestmark = pytest.mark.serial

POINTS = 100_000
KEYS = 10
PEAK_RSS_LIMIT = 250 * 2**20


def big_file_store(root: Path, points: int) -> str:
    client = MlflowClient(tracking_uri=file_store_uri(root))
    run_id = client.create_run("0", run_name="long").info.run_id
    metrics = root / "0" / run_id / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    for k in range(KEYS):
        with open(metrics / f"m{k}", "a", encoding="utf-8") as file:
            for step in range(points // KEYS):
                file.write(f"{1_700_000_000_000 + step} {step * 0.001 + k} {step}\n")
    return run_id


def peak_rss(command: list[str]) -> tuple[subprocess.CompletedProcess[str], int, float]:
    """Run `command`, sampling its RSS; (its result, the peak RSS, seconds)."""
    started = time.monotonic()
    proc = psutil.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.02)
    out, err = proc.communicate()
    elapsed = time.monotonic() - started
    return subprocess.CompletedProcess(command, proc.returncode, out, err), peak, elapsed


def test_a_large_history_imports_in_bounded_memory(tmp_path: Path) -> None:
    run_id = big_file_store(tmp_path / "mlruns", POINTS)
    target = tmp_path / "artgw.db"
    command = [*artgw_command(), "import", str(tmp_path / "mlruns")]
    done, peak, seconds = peak_rss([*command, "--backend-store-uri", f"sqlite:///{target}"])
    assert done.returncode == 0, done.stderr
    assert f"metrics: {POINTS} imported" in done.stdout
    rate = re.search(r"^(\d+) rows in ([\d.]+) s \(([\d,]+) rows/s\)$", done.stdout, re.M)
    assert rate, done.stdout
    print(
        f"\nimport of {POINTS} metric points: {rate[0]} (import itself); process "
        f"{seconds:.1f} s with start-up, peak RSS {peak / 2**20:.0f} MiB"
    )
    assert peak < PEAK_RSS_LIMIT
    with sqlite3.connect(target) as db:
        count = db.execute("SELECT count(*) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()
        latest = db.execute("SELECT count(*) FROM latest_metrics").fetchone()
    assert count == (POINTS,) and latest == (KEYS,)
