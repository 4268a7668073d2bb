"""A local folder's listing as columns (backends/listing.py) gives the entries one `lstat` per
name gave before: every field, for every kind of child, across batches."""

import os
from pathlib import Path

from backends import Entry
from backends.base import Columns
from backends.listing import BATCH, _add_batch, scan
from backends.local import LocalBackend
from tests.listing_reference import odd_folder, reference_entries


async def test_entries_match_one_stat_per_name(tmp_path: Path) -> None:
    (tmp_path / "dest").mkdir()
    odd_folder(tmp_path / "dest" / "d", BATCH + 20)
    backend = LocalBackend(str(tmp_path / "dest"))
    await backend.start()
    try:
        entries = await backend.list_dir("d")
        assert entries == reference_entries(tmp_path / "dest" / "d")
        assert all(type(e) is Entry for e in entries)
        assert Columns.of(entries) == await backend.listing("d")
    finally:
        await backend.close()


def test_a_name_gone_before_its_stat_is_left_out(tmp_path: Path) -> None:
    """A file removed between the folder's read and its `lstat` is not listed (nor an error)."""
    folder = tmp_path / "d"
    folder.mkdir()
    for name in ("a", "c"):
        (folder / name).write_bytes(b"12")
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        columns = Columns([], [], [], [], [])
        _add_batch(fd, ["a", "b-removed", "c"], columns)
        assert columns.names == ["a", "c"] and columns.sizes == [2, 2]
        assert scan(fd).names == ["a", "c"]
    finally:
        os.close(fd)
