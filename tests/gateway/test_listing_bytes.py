"""The JSON listing is byte for byte what `json.dumps` makes of MLflow's shape, whatever the
folder holds: the listing code builds it by hand from one `lstat` per name (backends/local.py
`_scan`, gateway/artifacts.py `listing_pieces`), and this checks it against the folder as
`os.scandir` and `os.stat` see it."""

import json
import os
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from backends.paths import UPLOAD_PREFIX
from gateway.artifacts import LISTING_PIECE

A = "/api/2.0/mlflow-artifacts/artifacts"


def _expected(folder: Path) -> bytes:
    files = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(UPLOAD_PREFIX):
            continue
        try:
            st = entry.stat()  # links followed
        except FileNotFoundError:  # dangling
            continue
        if entry.is_dir():
            files.append({"path": entry.name, "is_dir": True})
        else:
            files.append({"path": entry.name, "is_dir": False, "file_size": st.st_size})
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
