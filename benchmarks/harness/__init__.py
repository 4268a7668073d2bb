"""Side-by-side benchmark harness for artgw and `mlflow server` (see benchmarks/README.md).

The benchmarks run as scripts from benchmarks/ (`python benchmarks/run.py`); the repository root
goes on the import path here so that they share the project's one process harness
(compose/procs.py) with the tests and the local twin.
"""

import sys
from pathlib import Path

_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.append(_REPO)
