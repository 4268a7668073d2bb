"""A local folder's listing as columns (backends/listing.py) gives the entries one `lstat` per
name gave before: every field, for every kind of child, across batches."""

import os
import stat
from pathlib import Path

from backends import Entry
from backends.base import Columns
from backends.listing import BATCH, _add_batch, scan
from backends.local import LocalBackend
from backends.paths import UPLOAD_PREFIX


def _reference(folder: Path) -> list[Entry]:
    """The entries as the listing defines them, from `os.scandir` and `os.stat` one by one."""
    entries = []
    for child in sorted(os.scandir(folder), key=lambda e: e.name):
        if child.name.startswith(UPLOAD_PREFIX):
            continue
        try:
            st = child.stat()  # links followed
        except FileNotFoundError:  # dangling
            continue
        is_dir = stat.S_ISDIR(st.st_mode)
        plain = not child.is_symlink() and (is_dir or stat.S_ISREG(st.st_mode))
        entries.append(Entry(child.name, is_dir, 0 if is_dir else st.st_size, st.st_mtime, plain))
    return entries


def _folder(folder: Path) -> None:
    folder.mkdir()
    for i in range(BATCH + 20):
        (folder / f"f-{i:04d}").write_bytes(b"x" * (i % 9))
    for name in ("a-dir", "m-dir", "z-dir"):
        (folder / name).mkdir()
        (folder / name / "inside").write_bytes(b"12345678")
    os.mkfifo(folder / "fifo")
    (folder / f"{UPLOAD_PREFIX}1.tmp").write_bytes(b"in progress")
    for place in ("a", "g", "z"):
        os.symlink("f-0003", folder / f"{place}-link-file")
        os.symlink("m-dir", folder / f"{place}-link-dir")
        os.symlink("nowhere", folder / f"{place}-link-dangling")


async def test_entries_match_one_stat_per_name(tmp_path: Path) -> None:
    (tmp_path / "dest").mkdir()
    _folder(tmp_path / "dest" / "d")
    backend = LocalBackend(str(tmp_path / "dest"))
    await backend.start()
    try:
        entries = await backend.list_dir("d")
        assert entries == _reference(tmp_path / "dest" / "d")
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
