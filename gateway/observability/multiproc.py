"""The directory where worker processes leave their metric samples (prometheus-client's
multiprocess mode). Imports nothing from prometheus-client itself: it must run before that
library picks its storage for samples."""

import contextlib
import os
import shutil
import sys
import tempfile

ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(workers: int) -> str | None:
    """Before the workers fork: the directory, emptied of an earlier run's files; made (and later
    removed by `release`) when several workers need one and the environment names none.
    Returns the directory this process made, if any."""
    given = os.environ.get(ENV)
    made = None
    if not given:
        if workers <= 1:
            return None
        made = given = tempfile.mkdtemp(prefix="artgw-metrics-")
        os.environ[ENV] = given
    os.makedirs(given, exist_ok=True)
    for name in os.listdir(given):
        if name.endswith(".db"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(given, name))
    values = sys.modules.get("prometheus_client.values")
    if values is not None:  # imported before the variable was set: pick the storage again
        values.ValueClass = values.get_value_class()  # type: ignore[attr-defined]
    return made


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (in-flight requests, open uploads) from the sums."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def release(made: str | None) -> None:
    if made:
        shutil.rmtree(made, ignore_errors=True)
