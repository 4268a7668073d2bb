"""The JSON listing is byte for byte what `json.dumps` makes of MLflow's shape, whatever the
folder holds: the listing code builds it by hand from one `lstat` per name, a batch at a time
(backends/listing.py `scan`, gateway/artifacts.py `listing_pieces`), and this checks it, over
HTTP on loopback, against the folder as `os.scandir` and `os.stat` see it."""

import json
import os
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from backends.listing import BATCH
from backends.paths import UPLOAD_PREFIX
from gateway.artifacts import LISTING_PIECE
from tests.listing_reference import odd_folder, reference_entries

A = "/api/2.0/mlflow-artifacts/artifacts"


def _expected(folder: Path) -> bytes:
    files: list[dict[str, object]] = [
        {"path": e.name, "is_dir": True}
        if e.is_dir
        else {"path": e.name, "is_dir": False, "file_size": e.size}
        for e in reference_entries(folder)
    ]
    return json.dumps({"files": files}).encode() if files else b"{}"


@pytest.mark.parametrize("count", [0, 3, LISTING_PIECE, LISTING_PIECE + 1, 2 * LISTING_PIECE + 5])
async def test_listing_bytes(gateway: TestClient, destination: Path, count: int) -> None:
    folder = destination / "f"
    folder.mkdir()
    for i in range(count):
        (folder / f"n-{i:05d}").write_bytes(b"x" * (i % 7))
    if count:
        (folder / "sub").mkdir()
        (folder / 'q"uote\\back é ✓.txt').write_bytes(b"12345")
        (folder / "tab\there").write_bytes(b"")
        (folder / f"{UPLOAD_PREFIX}9.x").write_bytes(b"hidden")
        os.symlink("n-00000", folder / "link-file")
        os.symlink("sub", folder / "link-dir")
        os.symlink("missing", folder / "link-dangling")
        os.symlink("/", folder / "link-out")
    response = await gateway.get(f"{A}?path=f")
    assert response.status == 200
    assert await response.read() == _expected(folder)


@pytest.mark.parametrize("count", [10, BATCH + LISTING_PIECE])
async def test_odd_names_and_links_over_batches(
    gateway: TestClient, destination: Path, count: int
) -> None:
    odd_folder(destination / "odd", count)
    response = await gateway.get(f"{A}?path=odd")
    assert response.status == 200
    assert await response.read() == _expected(destination / "odd")


async def test_a_link_loop_still_fails_the_listing(gateway: TestClient, destination: Path) -> None:
    """As before the columns: a link to itself is a storage error, not a missing entry."""
    (destination / "loop").mkdir()
    os.symlink("me", destination / "loop" / "me")
    response = await gateway.get(f"{A}?path=loop")
    assert response.status == 500
    assert (await response.json())["error_code"] == "INTERNAL_ERROR"


async def test_large_listing_arrives_in_bounded_chunks(
    gateway: TestClient, destination: Path
) -> None:
    """Streamed: one HTTP chunk per piece of LISTING_PIECE entries, none much bigger."""
    folder = destination / "big"
    folder.mkdir()
    count = 4 * LISTING_PIECE + 1
    for i in range(count):
        (folder / f"file-with-a-longish-name-{i:06d}.bin").write_bytes(b"")
    response = await gateway.get(f"{A}?path=big")
    assert response.headers.get("Transfer-Encoding") == "chunked"
    chunks, body, piece = [], b"", bytearray()
    async for data, end_of_chunk in response.content.iter_chunks():
        piece += data
        if end_of_chunk:
            chunks.append(len(piece))
            body += piece
            piece.clear()
    assert body == _expected(folder)
    assert len(chunks) >= count // LISTING_PIECE
    assert max(chunks) < 2 * len(body) / (count / LISTING_PIECE)
