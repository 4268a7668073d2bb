"""The seed's example flow with the mlflow client: upload, list and download artifacts of a run.

Run it against a tracking server (only mlflow is needed, not artgw):

    MLFLOW_TRACKING_URI=http://localhost:5000 python example.py

It logs a param, a metric, `a.txt` and `dir/b.txt` in a new run, lists the run's artifacts,
downloads them all and checks every byte. The compose `client` service runs it, and so does the
local twin's test (tests/e2e/test_twin.py), which imports `run_example`.
"""

import os
import sys
import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient

FILES = {"a.txt": b"0\n", "dir/b.txt": bytes(range(256)) * 64}


def save_files(root: Path) -> None:
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def log_artifacts(src: Path) -> str:
    """One run: a param, a metric, a.txt at the root and the folder dir/ as "dir"."""
    with mlflow.start_run() as run:
        mlflow.log_param("p", 1)
        mlflow.log_metric("m", 0.5)
        mlflow.log_artifact(str(src / "a.txt"))
        mlflow.log_artifacts(str(src / "dir"), artifact_path="dir")
    return run.info.run_id


def list_artifacts(client: MlflowClient, run_id: str) -> list[str]:
    top = [(f.path, f.is_dir) for f in client.list_artifacts(run_id)]
    nested = [f.path for f in client.list_artifacts(run_id, "dir")]
    return [*(path + "/" if is_dir else path for path, is_dir in top), *nested]


def downloaded(client: MlflowClient, run_id: str, dst: Path) -> dict[str, bytes]:
    root = Path(client.download_artifacts(run_id, "", str(dst)))
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def run_example(workdir: Path) -> str:
    """The whole flow; raises AssertionError if anything listed or downloaded is not as logged."""
    (workdir / "src").mkdir(parents=True, exist_ok=True)
    save_files(workdir / "src")
    run_id = log_artifacts(workdir / "src")
    client = MlflowClient()
    listed = list_artifacts(client, run_id)
    assert listed == ["a.txt", "dir/", "dir/b.txt"], listed
    (workdir / "dst").mkdir(exist_ok=True)
    assert downloaded(client, run_id, workdir / "dst") == FILES, "downloaded bytes differ"
    run = client.get_run(run_id)
    assert (run.data.params, run.data.metrics) == ({"p": "1"}, {"m": 0.5}), run.data
    print(f"run {run_id}: logged, listed, downloaded {listed} at {run.info.artifact_uri}")
    return run_id


def main() -> int:
    if "MLFLOW_TRACKING_URI" not in os.environ:
        print("Set MLFLOW_TRACKING_URI, e.g. http://localhost:5000", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        run_example(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
