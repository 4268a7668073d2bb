"""What a local folder's listing must hold, made the slow, obvious way: `os.scandir` and one
`os.stat` per child (links followed), for tests of the fast listing code to compare against."""

import os
import stat
from pathlib import Path

from backends import Entry
from backends.paths import UPLOAD_PREFIX


def reference_entries(folder: Path) -> list[Entry]:
    """Sorted by name; in-progress uploads and dangling links left out; a link is not `plain`."""
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


ODD_NAMES = [
    'q"uote\\back é ✓.txt',
    "tab\there",
    "new\nline",
    "ctl\x01\x1f\x7f",
    "emoji 😀",
    "ütf",
    "\u2028separator",
    UPLOAD_PREFIX[:-1],  # just before and after the hidden names in the sorted order
    UPLOAD_PREFIX[:-1] + "-",
    UPLOAD_PREFIX[:-1] + "0",
]


def odd_folder(folder: Path, count: int) -> None:
    """Plain files over several batches and pieces, odd names, a folder, a FIFO, names that are
    not UTF-8, and links of every kind at the start, the middle and the end of the order."""
    folder.mkdir()
    for i in range(count):
        (folder / f"n-{i:05d}").write_bytes(b"x" * (i % 7))
    (folder / "sub").mkdir()
    for name in ODD_NAMES:
        (folder / name).write_bytes(b"12345")
    raw = os.fsencode(folder)
    fd = os.open(raw + b"/bad\xff\xfe-bytes", os.O_CREAT | os.O_WRONLY)
    os.write(fd, b"abc")
    os.close(fd)
    os.mkdir(raw + b"/dir\x80")
    os.mkfifo(folder / "fifo")
    (folder / f"{UPLOAD_PREFIX}9.x").write_bytes(b"hidden")
    for place in ("a", "m", "z"):
        os.symlink("n-00000", folder / f"{place}-link-file")
        os.symlink("sub", folder / f"{place}-link-dir")
        os.symlink("missing", folder / f"{place}-link-dangling")
        os.symlink("/", folder / f"{place}-link-out")
