"""The tracking benchmark works end to end: `benchmarks/tracking.py --quick --servers artgw`.

Checks behaviour (every workload ran, every answer checked by the benchmark itself), never
timings. artgw is the one installed beside this interpreter; mlflow is not needed.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.serial

REPO = Path(__file__).resolve().parents[2]
TRACKING = REPO / "benchmarks" / "tracking.py"


@pytest.mark.timeout(600)
def test_quick_tracking_benchmark_of_artgw_alone(tmp_path: Path) -> None:
    artgw = Path(sys.executable).with_name("artgw")
    out = tmp_path / "report.md"
    argv = [sys.executable, str(TRACKING), "--quick", "--servers", "artgw"]
    argv += ["--artgw-bin", str(artgw), "--workdir", str(tmp_path / "work"), "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=540, cwd=REPO)
    assert done.returncode == 0, f"tracking.py failed:\n{done.stderr[-3000:]}"
    results = json.loads(out.with_suffix(".json").read_text())["results"]
    assert sorted(results) == ["history", "run_cycle", "search"]
    for workload in results.values():
        ((ops_per_s, cpu_per_op),) = workload["artgw"]
        assert ops_per_s > 0 and cpu_per_op >= 0
    assert "| run_cycle | cycles/s |" in out.read_text()
