"""The tracking package stands alone: no HTTP, no gateway (cli -> gateway -> {tracking,
backends})."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# tracking.gc is left out: it may use backends (whose store SDKs bring aiohttp's client).
PROBE = (
    "import sys, tracking.store, tracking.open; "
    "print(' '.join(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'gateway', 'cli')))"
)


def test_importing_the_store_loads_no_http_and_no_gateway() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []


def test_no_module_under_tracking_imports_gateway_or_aiohttp() -> None:
    offenders = [
        f"{path.relative_to(REPO)}: {line.strip()}"
        for path in (REPO / "tracking").rglob("*.py")
        for line in path.read_text().splitlines()
        if line.lstrip().startswith(("import ", "from "))
        and line.split()[1].split(".")[0] in ("gateway", "aiohttp", "cli")
    ]
    assert offenders == []
