"""A destination on a small filesystem the test mounts (a 4 MiB tmpfs): an upload that fills it
answers 507 RESOURCE_EXHAUSTED, leaves nothing behind, and the server goes on serving."""

import io
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.promtext import value

A = "/api/2.0/mlflow-artifacts/artifacts"
SIZE = "4m"
FULL = "artgw_store_errors_total"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {SIZE} tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def destination(small_disk: Path) -> Path:
    path = small_disk / "mlartifacts"
    path.mkdir()
    return path


def fill(disk: Path, leave: int) -> Path:
    """A filler file that leaves about `leave` bytes free."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def expect_full(response) -> float:
    assert response.status == 507, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error_code"] == "RESOURCE_EXHAUSTED"
    assert "full" in body["message"]
    return time.monotonic()


@pytest.mark.parametrize("size", [6 << 20, 700 << 10], ids=["streamed", "one-block"])
async def test_upload_that_fills_the_disk_is_507_and_leaves_nothing(
    gateway: TestClient, destination: Path, small_disk: Path, size: int
) -> None:
    (destination / "keep").mkdir()
    (destination / "keep" / "old.txt").write_bytes(b"old content")
    if size < (1 << 20):
        fill(small_disk, leave=256 << 10)
    before = all_files(destination)
    counted = value(await (await gateway.get("/metrics")).text(), FULL, kind="full")
    started = time.monotonic()
    response = await gateway.put(f"{A}/keep/old.txt", data=io.BytesIO(os.urandom(size)))
    failed = await expect_full(response) - started
    assert value(await (await gateway.get("/metrics")).text(), FULL, kind="full") == counted + 1
    assert all_files(destination) == before  # no temp file, no partial file
    assert (destination / "keep" / "old.txt").read_bytes() == b"old content"
    # still serving: reads, listings, and a write that fits
    assert await (await gateway.get(f"{A}/keep/old.txt")).read() == b"old content"
    assert (await gateway.put(f"{A}/keep/small.txt", data=b"fits")).status == 200
    assert (destination / "keep" / "small.txt").read_bytes() == b"fits"
    assert failed < 5
    print(f"disk full ({size} bytes): 507 after {failed:.2f} s")


async def test_space_freed_means_uploads_work_again(
    gateway: TestClient, destination: Path, small_disk: Path
) -> None:
    filler = fill(small_disk, leave=64 << 10)
    await expect_full(await gateway.put(f"{A}/a.bin", data=os.urandom(512 << 10)))
    filler.unlink()
    data = os.urandom(2 << 20)
    assert (await gateway.put(f"{A}/a.bin", data=io.BytesIO(data))).status == 200
    assert (destination / "a.bin").read_bytes() == data
