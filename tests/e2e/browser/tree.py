"""Artifact trees for the browser tests, the README screenshot and the listing benchmark."""

import os
import random
import time
from pathlib import Path
from urllib.parse import quote

import requests

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
RUN = "0/r1/artifacts"
XSS_FILE = "<img src=x onerror=alert(1)>.txt"
SCRIPT_UPLOAD = "<script>alert(1)</script>.txt"
"""Uploaded through the API, where `/` separates: folder `<script>alert(1)<`, file `script>.txt`."""
UNICODE_FILE = "Ünïcødé 文件.txt"
DEMO_RUN = "1/9f2c4e7a1b3d4c5e8f6a7b8c9d0e1f2a/artifacts"


def write(path: Path, data: bytes) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def browse_tree(destination: Path) -> dict[str, bytes]:
    """Files written straight into the store; returns {relative path: bytes}."""
    rng = random.Random(6)
    files = {
        f"{RUN}/metrics.csv": b"step,loss\n"
        + b"".join(b"%d,%.3f\n" % (i, 1 / (i + 1)) for i in range(50)),
        f"{RUN}/{UNICODE_FILE}": "Ünïcødé text: 文件 ✓\n".encode(),
        f"{RUN}/{XSS_FILE}": b"not a picture\n",
        f"{RUN}/model/MLmodel": b"flavors:\n  python_function: {}\n",
        f"{RUN}/model/weights.bin": rng.randbytes(300_000),
        f"{RUN}/sub/deeper/data.bin": rng.randbytes(70_000),
    }
    for name, data in files.items():
        write(destination / name, data)
    return files


def upload(base_url: str, path: str, data: bytes) -> None:
    response = requests.put(f"{base_url}{ARTIFACTS}/{quote(path, safe='/')}", data=data, timeout=10)
    response.raise_for_status()


def many_files(folder: Path, count: int) -> None:
    """`count` small files f00000.txt ... in `folder`, written quickly."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        fd = os.open(folder / f"f{i:05d}.txt", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        os.write(fd, b"x" * (i % 1000))
        os.close(fd)


def demo_tree(destination: Path) -> None:
    """A realistic run, for the README screenshot."""
    rng = random.Random(1)
    run = destination / DEMO_RUN
    now = time.time()
    for minutes, (name, size) in enumerate(
        [
            ("model/MLmodel", 412),
            ("model/conda.yaml", 233),
            ("model/model.pkl", 48_512_337),
            ("checkpoints/epoch-01.pt", 48_500_113),
            ("tensorboard/events.out", 88_310),
            ("training.log", 264_551),
            ("params.yaml", 617),
            ("confusion_matrix.png", 48_211),
            ("predictions.parquet", 7_340_110),
            ("metrics.json", 1_893),
            ("Ergebnisse_Übersicht.csv", 12_877),
            ("notebook.ipynb", 182_004),
            ("README.md", 3_204),
        ]
    ):
        write(run / name, rng.randbytes(min(size, 1 << 20)))
        os.truncate(run / name, size)
        stamp = now - 7200 + 240 * minutes
        os.utime(run / name, (stamp, stamp))
        os.utime((run / name).parent, (stamp, stamp))
