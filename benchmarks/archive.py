"""Folder archives against plain downloads of the same bytes, with the gateway's memory watched.

    python -m benchmarks.archive --gib 6          # the issue's big folder (about 6 GiB)
    python -m benchmarks.archive --mib 200        # the short version the test suite runs

Makes a folder of mixed files under a temp dir: one big sparse file (4.5 GiB in the full run, so
a zip member needs zip64), sparse mid-size files, 10 MiB files of random bytes and 64 KiB random
small files. Sparse files are instant to create and read at page-cache speed, so the store is not
the bottleneck: what is measured is the gateway. Then `artgw serve --artifacts-only --workers 1`
on it, and with curl (to /dev/null): every file downloaded one by one on one connection (the
plain baseline), then the folder as zip, tar and tar.gz. The gateway's RSS is sampled every 20 ms.
Each archive is then fetched once more to disk and checked: `unzip -t` / `tar -t`, and every
member's SHA-256 compared with its source file.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.artgw_process import ArtgwProcess  # noqa: E402

A = "/api/2.0/mlflow-artifacts/artifacts"
FOLDER = "0/run/artifacts"
KINDS = ("zip", "tar", "tar.gz")


def make_folder(root: Path, total: int) -> dict[str, int]:
    """Mixed files adding up to about `total` bytes; returns name -> size."""
    random_block = os.urandom(10 << 20)
    sizes: dict[str, int] = {}
    big = int(total * 0.72)
    sizes["model/weights.bin"] = big  # sparse: 4.5 GiB of 6.25 when total is 6 GiB and more
    rest = total - big
    for i in range(4):
        sizes[f"checkpoints/step-{i}.pt"] = rest // 8  # sparse
    mids = max(1, (rest // 4) // (10 << 20))
    for i in range(mids):
        sizes[f"data/part-{i:04d}.parquet"] = 10 << 20  # random
    smalls = max(10, (rest // 8) // (64 << 10))
    for i in range(smalls):
        sizes[f"logs/{i % 20:02d}/event-{i:05d}.json"] = 64 << 10  # random
    for name, size in sizes.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            if name.startswith(("model/", "checkpoints/")):
                handle.truncate(size)
            else:
                start = hash(name) % (len(random_block) - size + 1)
                handle.write(random_block[start : start + size])
    return sizes


class RssWatch:
    """Peak RSS of a process, sampled every 20 ms from /proc while the block runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    @contextmanager
    def watching(self) -> Iterator["RssWatch"]:
        self.peak = self.rss()
        self._stop.clear()
        thread = threading.Thread(target=self._sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.rss())


def curl(config: str) -> tuple[int, float]:
    """Run curl on a config (url/output pairs); (bytes received, seconds)."""
    started = time.perf_counter()
    done = subprocess.run(
        ["curl", "-sS", "--fail", "-K", "-", "-w", "%{size_download}\\n"],
        input=config,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    return sum(int(x) for x in done.stdout.split()), seconds


def measure(
    server: ArtgwProcess, sizes: dict[str, int], watch: RssWatch, repeat: int = 1
) -> dict[str, object]:
    """Each transfer `repeat` times after one warm-up pass; the best run counts. Rates are of
    the folder's bytes (what the client gets out of it), whatever the archive's own size."""
    total = sum(sizes.values())
    base = f"{server.url}{A}/{FOLDER}"
    plain = "".join(f'url = "{base}/{name}"\noutput = "/dev/null"\n' for name in sizes)
    results: dict[str, object] = {"rss_at_rest_mib": watch.rss() / 2**20}
    runs = [("plain", plain)] + [
        (kind, f'url = "{base}?archive={kind}"\noutput = "/dev/null"\n') for kind in KINDS
    ]
    curl(plain)  # warm-up: the page cache, the server's first-request paths
    for name, config in runs:
        before = watch.rss()
        best = float("inf")
        with watch.watching():
            for _ in range(repeat):
                received, seconds = curl(config)
                best = min(best, seconds)
        results[name] = {
            "bytes_sent": received,
            "seconds": round(best, 2),
            "mib_per_s": round(total / best / 2**20, 1),
            "rss_growth_mib": round((watch.peak - before) / 2**20, 1),
        }
    plain_rate = results["plain"]["mib_per_s"]  # type: ignore[index]
    for kind in KINDS:
        results[kind]["ratio_to_plain"] = round(results[kind]["mib_per_s"] / plain_rate, 2)  # type: ignore[index]
    return results


def digest_of(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def verify(server: ArtgwProcess, source: Path, sizes: dict[str, int], work: Path) -> None:
    """Each archive fetched to disk, checked by the real tools, every member's bytes compared."""
    expected = {f"artifacts/{name}": digest_of(source / name) for name in sizes}
    for kind in KINDS:
        target = work / f"folder.{kind}"
        url = f"{server.url}{A}/{FOLDER}?archive={kind}"
        curl(f'url = "{url}"\noutput = "{target}"\n')
        tool = ["unzip", "-tq", str(target)] if kind == "zip" else ["tar", "-tf", str(target)]
        subprocess.run(tool, check=True, capture_output=True)
        found = zip_digests(target) if kind == "zip" else tar_digests(target)
        if found != expected:
            wrong = sorted(set(found.items()) ^ set(expected.items()))[:5]
            raise AssertionError(f"{kind}: members differ from the sources: {wrong}")
        target.unlink()


def zip_digests(path: Path) -> dict[str, str]:
    found = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.is_dir():
                with archive.open(info) as member:
                    found[info.filename] = _stream_digest(member)
    return found


def tar_digests(path: Path) -> dict[str, str]:
    found = {}
    with tarfile.open(path, "r|*") as archive:
        for info in archive:
            if info.isfile():
                member = archive.extractfile(info)
                assert member is not None
                found[info.name] = _stream_digest(member)
    return found


def _stream_digest(handle) -> str:  # type: ignore[no-untyped-def]
    sha = hashlib.sha256()
    while chunk := handle.read(1 << 20):
        sha.update(chunk)
    return sha.hexdigest()


def run(
    total: int, *, check: bool = True, repeat: int = 1, work: Path | None = None
) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="artgw-archive-", dir=work))
    try:
        destination = work / "mlartifacts"
        sizes = make_folder(destination / FOLDER, total)
        server = ArtgwProcess(
            "--artifacts-only", "--workers", "1", "--artifacts-destination", str(destination),
            cwd=work,
        ).start()  # fmt: skip
        try:
            watch = RssWatch(server.proc.pid)  # type: ignore[union-attr]
            results = measure(server, sizes, watch, repeat)
            if check:
                verify(server, destination / FOLDER, sizes, work)
        finally:
            server.stop()
        results["files"] = len(sizes)
        results["total_bytes"] = sum(sizes.values())
        results["verified"] = check
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--gib", type=float, help="folder size in GiB (default 6)")
    group.add_argument("--mib", type=float, help="folder size in MiB")
    parser.add_argument("--no-check", action="store_true", help="skip the verification pass")
    parser.add_argument("--repeat", type=int, default=2, help="runs per transfer; best counts")
    args = parser.parse_args()
    total = int(args.mib * 2**20) if args.mib else int((args.gib or 6) * 2**30)
    print(json.dumps(run(total, check=not args.no_check, repeat=args.repeat), indent=2))


if __name__ == "__main__":
    main()
