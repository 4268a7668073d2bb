"""What checking a multipart upload's whole-file digest costs: the same upload through the
gateway's mpu/ endpoints with and without `Repr-Digest` announced on mpu/create.

    python -m benchmarks.mpu_digest --mib 1024        # 1 GiB in 100 MiB parts (the default)
    python -m benchmarks.mpu_digest --mib 256 --s3    # on moto's S3 (hidden key, then a copy)

A file of random bytes under a temp dir, `artgw serve --artifacts-only --workers 1` on a local
folder beside it, and a client as mlflow's: mpu/create, the parts PUT by 4 threads, then
mpu/complete, timed on its own (the check reads the joined parts once, on complete). The
gateway's RSS is sampled every 20 ms (growth over its RSS before the upload). Each run's file
is compared with the source, and the served Repr-Digest with the source's SHA-256.
"""

import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.archive import RssWatch  # noqa: E402
from tests.artgw_process import ArtgwProcess  # noqa: E402
from tests.emulators import S3Server  # noqa: E402

MPU = "/api/2.0/mlflow-artifacts/mpu"
A = "/api/2.0/mlflow-artifacts/artifacts"
FOLDER = "0/run/artifacts"
PART = 100 << 20
"""The default part size (--part-mib); mlflow's client sends 10 MiB parts by default."""


def make_file(path: Path, size: int) -> str:
    """Random bytes; their SHA-256 as RFC 9530's base64."""
    digest = hashlib.sha256()
    block = os.urandom(16 << 20)
    with open(path, "wb") as handle:
        written = 0
        while written < size:
            piece = block[: size - written]
            piece = bytes([written // len(block) % 256]) + piece[1:]  # every block differs
            handle.write(piece)
            digest.update(piece)
            written += len(piece)
    return base64.b64encode(digest.digest()).decode()


def upload(
    base: str, source: Path, name: str, headers: dict[str, str], part: int = PART
) -> dict[str, float]:
    size = source.stat().st_size
    parts = max(1, -(-size // part))
    started = time.perf_counter()
    created = requests.post(
        f"{base}{MPU}/create/{FOLDER}",
        json={"path": name, "num_parts": parts},
        headers=headers,
        timeout=60,
    )
    created.raise_for_status()
    answer = created.json()

    def put(credential: dict) -> dict:
        number = credential["part_number"]
        with open(source, "rb") as handle:
            handle.seek((number - 1) * part)
            data = handle.read(part)
        sent = requests.put(credential["url"], data=data, timeout=600)
        sent.raise_for_status()
        return {"part_number": number, "etag": sent.headers["ETag"]}

    with ThreadPoolExecutor(4) as pool:
        listed = list(pool.map(put, answer["credentials"]))
    sent = time.perf_counter()
    body = {"path": name, "upload_id": answer["upload_id"], "parts": listed}
    done = requests.post(f"{base}{MPU}/complete/{FOLDER}", json=body, timeout=600)
    done.raise_for_status()
    finished = time.perf_counter()
    return {"parts_s": round(sent - started, 2), "complete_s": round(finished - sent, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--part-mib", type=int, default=PART >> 20)
    parser.add_argument("--s3", action="store_true", help="on moto's S3 instead of a local folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="artgw-mpu-digest-") as work, ExitStack() as stack:
        root = Path(work)
        source, destination = root / "source.bin", root / "destination"
        destination.mkdir()
        sha256 = make_file(source, args.mib << 20)
        where, env = str(destination), {}
        if args.s3:
            s3 = stack.enter_context(S3Server())
            where = s3.make_bucket("artgw-mpu-digest") + "/bench"
            env = {**s3.env, "AWS_EC2_METADATA_DISABLED": "true"}
        server = ArtgwProcess(
            "--artifacts-only", "--workers", "1", "--artifacts-destination", where,
            cwd=root, env=env,
        ).start(timeout=120)  # fmt: skip
        try:
            watch = RssWatch(server.proc.pid)  # type: ignore[union-attr]
            results: dict[str, object] = {"mib": args.mib, "rss_at_rest_mib": watch.rss() >> 20}
            for run in range(args.repeat):
                for label, headers in (
                    ("plain", {}),
                    ("checked", {"Repr-Digest": f"sha-256=:{sha256}:"}),
                ):
                    name = f"{label}-{run}.bin"
                    before = watch.rss()
                    with watch.watching():
                        timing = upload(server.url, source, name, headers, args.part_mib << 20)
                    head = requests.head(f"{server.url}{A}/{FOLDER}/{name}", timeout=10)
                    assert int(head.headers["Content-Length"]) == source.stat().st_size
                    if label == "checked":
                        assert f"sha-256=:{sha256}:" in head.headers.get("Repr-Digest", "")
                    timing["rss_growth_mib"] = round((watch.peak - before) / 2**20, 1)
                    results[f"{label}-{run}"] = timing
                    gone = requests.delete(f"{server.url}{A}/{FOLDER}/{name}", timeout=60)
                    gone.raise_for_status()
        finally:
            server.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
