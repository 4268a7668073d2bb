"""`artgw import` of a large store: the import's own rows/s (from its report) and the process's
peak RSS.

- file store (default): 1,000,000 metric points (10 keys of one run made by the real mlflow
  client, the points appended in the file store's line format), plus `--model-points` points
  of a logged model the client made (appended in its metric format, `timestamp value step
  run_id`) and `--versions` registered model versions the client made;
- `--sql`: an MLflow SQLite database with `--points` points the client logged itself
  (log_batch, 1,000 a call: slower to make, a few minutes for 1,000,000).

    .venv/bin/python benchmarks/import_bench.py [--points 1000000] [--model-points 200000]
        [--versions 1000] [--sql]
"""

import argparse
import re
import tempfile
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric

from tests.artgw_process import artgw_command
from tests.tracking.import_sources import file_store_uri
from tests.tracking.test_import_large import big_file_store, peak_rss


def logged_model_points(root: Path, run_id: str, points: int) -> None:
    client = MlflowClient(tracking_uri=file_store_uri(root))
    model_id = client.create_logged_model("0", name="big", source_run_id=run_id).model_id
    metrics = root / "0" / "models" / model_id / "metrics"
    metrics.mkdir(parents=True, exist_ok=True)
    with open(metrics / "loss", "a", encoding="utf-8") as file:
        for step in range(points):
            file.write(f"{1_700_000_000_000 + step} {step * 0.001} {step} {run_id}\n")


def versions(uri: str, run_id: str, count: int) -> None:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for m in range(max(count // 100, 1)):
        client.create_registered_model(f"model-{m}", tags={"team": "bench"})
        for v in range(min(100, count)):
            client.create_model_version(f"model-{m}", f"runs:/{run_id}/m{v}", run_id=run_id)
        client.set_registered_model_alias(f"model-{m}", "champion", "1")


def sql_store(path: Path, points: int) -> str:
    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri)
    run_id = client.create_run("0", run_name="long").info.run_id
    for start in range(0, points, 1000):
        batch = [
            Metric(f"m{i % 10}", i * 0.001, 1_700_000_000_000 + i, i // 10)
            for i in range(start, min(start + 1000, points))
        ]
        client.log_batch(run_id, metrics=batch)
    return uri


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--model-points", type=int, default=0)
    parser.add_argument("--versions", type=int, default=0)
    parser.add_argument("--sql", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="artgw-import-bench-") as scratch:
        root = Path(scratch)
        if args.sql:
            source = sql_store(root / "mlflow.db", args.points)
        else:
            source = str(root / "mlruns")
            run_id = big_file_store(root / "mlruns", args.points)
            if args.model_points:
                logged_model_points(root / "mlruns", run_id, args.model_points)
            if args.versions:
                versions(file_store_uri(root / "mlruns"), run_id, args.versions)
        target = f"sqlite:///{root / 'artgw.db'}"
        done, peak, seconds = peak_rss(
            [*artgw_command(), "import", source, "--backend-store-uri", target]
        )
        if done.returncode:
            raise SystemExit(done.stderr)
        rate = re.search(r"^\d+ rows in .*$", done.stdout, re.M)
        counts = [
            line for line in done.stdout.splitlines() if re.search(r": [1-9]\d* imported", line)
        ]
        print("\n".join(counts))
        print(
            f"{'sql' if args.sql else 'file'} store: {rate[0] if rate else '?'}; process "
            f"{seconds:.1f} s, peak RSS {peak / 2**20:.0f} MiB"
        )


if __name__ == "__main__":
    main()
