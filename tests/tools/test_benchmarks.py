"""The benchmark harness works end to end: `benchmarks/run.py --quick --servers artgw,nginx`.

Checks behaviour (every workload ran and verified its bytes), never timings. artgw is the one
installed beside this interpreter; mlflow is not needed; nginx (a peer: static files, WebDAV PUT,
autoindex JSON) joins when it is installed (tests/setup-system.sh installs it), so the peer code
paths and the peer table run too. wrk is installed through the harness's
own setup path (apt-get) when it is missing, as CI runs as root.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.serial

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "benchmarks" / "run.py"
SETUP = REPO / "benchmarks" / "setup.sh"
LOCAL_WORKLOADS = ("startup", "put_big", "get_big", "put_small", "get_small", "list", "list_html")


def ensure_load_tools() -> None:
    """curl and wrk through setup.sh's install path (apt-get), without the mlflow venv."""
    if shutil.which("wrk") and shutil.which("curl"):
        return
    subprocess.run(
        ["bash", str(SETUP), "--tools-only"], check=True, timeout=600, capture_output=True
    )
    assert shutil.which("wrk"), "benchmarks/setup.sh --tools-only did not install wrk"


@pytest.mark.timeout(900)
def test_quick_benchmark_verifies_every_workload(tmp_path: Path) -> None:
    ensure_load_tools()
    artgw = Path(sys.executable).with_name("artgw")
    assert artgw.exists(), f"no artgw beside {sys.executable}"
    servers = ["artgw"] + (["nginx"] if shutil.which("nginx") else [])
    out = tmp_path / "report.md"
    argv = [
        sys.executable,
        str(RUN),
        "--quick",
        "--servers",
        ",".join(servers),
        "--artgw-bin",
        str(artgw),
        "--big-mib",
        "16",
        "--workdir",
        str(tmp_path / "work"),
        "--out",
        str(out),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, f"run.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"

    raw = json.loads(out.with_suffix(".json").read_text())
    assert raw["failures"] == []
    assert raw["skipped"] == []
    verification = raw["verification"]
    for name in (*LOCAL_WORKLOADS, "idle_after_load"):
        for server in servers:
            assert verification[name][server].startswith("passed"), (name, verification[name])
            assert raw["values"][name][server], f"{name} recorded no round on {server}"

    report = out.read_text()
    assert "## Verification" in report
    for name in LOCAL_WORKLOADS:
        rows = [ln for ln in report.splitlines() if ln.startswith(f"| {name} |")]
        assert rows, f"{name} missing from the report"
        assert any("passed (1/1 rounds)" in ln for ln in rows), f"{name} not verified in report"
    assert "FAILED" not in report
    if len(servers) > 1:
        assert "## artgw against each peer" in report
        assert any(ln.startswith("| get_small | req/s") for ln in report.splitlines())


SCALE = REPO / "benchmarks" / "scale.py"


@pytest.mark.timeout(600)
def test_quick_scale_curves_verify_every_point(tmp_path: Path) -> None:
    """benchmarks/scale.py --quick: every curve, every point verified; its tables and JSON."""
    ensure_load_tools()
    artgw = Path(sys.executable).with_name("artgw")
    servers = ["artgw"] + (["nginx"] if shutil.which("nginx") else [])
    out = tmp_path / "scale.md"
    argv = [sys.executable, str(SCALE), "--quick", "--servers", ",".join(servers)]
    argv += ["--artgw-bin", str(artgw), "--workdir", str(tmp_path / "work"), "--out", str(out)]
    argv += ["--plots", str(tmp_path / "plots")]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=500, cwd=REPO)
    assert proc.returncode == 0, f"scale.py failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    raw = json.loads(out.with_suffix(".json").read_text())
    assert raw["failures"] == []
    for curve in ("list_ms", "html_ms", "depth_req_s", "conns_req_s", "size_get_mib_s"):
        per_server = raw["curves"][curve]["values"]
        assert set(per_server) == set(servers), (curve, per_server.keys())
        assert all(len(points) >= 2 for points in per_server.values()), (curve, per_server)
    assert "## listing: median ms" in out.read_text()
