"""`artgw import` of a file store with 1,000,000 metric points (10 keys of one run made by the
real mlflow client, the points appended in the file store's line format): the import's own
rows/s (from its report) and the process's peak RSS.

    .venv/bin/python benchmarks/import_bench.py [--points 1000000]
"""

import argparse
import re
import tempfile
from pathlib import Path

from tests.artgw_process import artgw_command
from tests.tracking.test_import_large import big_file_store, peak_rss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    points = parser.parse_args().points
    with tempfile.TemporaryDirectory(prefix="artgw-import-bench-") as scratch:
        root = Path(scratch)
        big_file_store(root / "mlruns", points)
        target = f"sqlite:///{root / 'artgw.db'}"
        done, peak, seconds = peak_rss(
            [*artgw_command(), "import", str(root / "mlruns"), "--backend-store-uri", target]
        )
        if done.returncode:
            raise SystemExit(done.stderr)
        rate = re.search(r"^\d+ rows in .*$", done.stdout, re.M)
        print(
            f"{points} points: {rate[0] if rate else '?'}; process {seconds:.1f} s, "
            f"peak RSS {peak / 2**20:.0f} MiB"
        )


if __name__ == "__main__":
    main()
