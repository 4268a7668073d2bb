"""A directory listing as columns: one list per `Entry` field instead of one `Entry` per child.

Why columns: a folder of 10,000 files made into 10,000 `Entry` tuples beside 10,000
`os.stat_result`s keeps 20,000 objects alive that the garbage collector tracks, and its passes
over them cost more than the rest of the listing's Python work (py-spy on a serving worker: 14 %
of a 10,000-entry listing in `gc_collect_main`). The local scan (`scan`) makes its stat results a
batch at a time and drops them before the next batch, so the columns hold only names, ints,
floats and bools; `Columns.entries` makes the tuples for callers that want them, and the JSON
listing (gateway/artifacts.py) is encoded from the columns without them.
"""

import os
import stat as stat_mod
from bisect import bisect_left
from itertools import compress
from operator import attrgetter, or_

from backends.base import Columns
from backends.paths import UPLOAD_PREFIX

BATCH = 512
"""Names stat'ed per batch: below the collector's first threshold (700 new tracked objects)."""
_PAST_UPLOADS = UPLOAD_PREFIX[:-1] + chr(ord(UPLOAD_PREFIX[-1]) + 1)
"""The first name after every name that starts with UPLOAD_PREFIX, in sorted order."""
_MODE, _SIZE, _MTIME = attrgetter("st_mode"), attrgetter("st_size"), attrgetter("st_mtime")


def scan(fd: int) -> Columns:
    """The children of the open directory `fd`: links followed but marked not `plain`, dangling
    links, names that vanish meanwhile and in-progress uploads left out, sorted by name.

    The names come from `os.listdir` (no DirEntry objects) and are sorted first; each costs one
    `fstatat` in the folder (`lstat` with `dir_fd`, no walk of the whole path), a link a second
    one, followed."""
    names = sorted_names(fd)
    columns = Columns([], [], [], [], [])
    for start in range(0, len(names), BATCH):
        _add_batch(fd, names[start : start + BATCH], columns)
    return columns


def sorted_names(fd: int) -> list[str]:
    """The folder's names, sorted, without in-progress uploads (one slice of the sorted list)."""
    names = os.listdir(fd)
    names.sort()
    first = bisect_left(names, UPLOAD_PREFIX)
    del names[first : bisect_left(names, _PAST_UPLOADS, first)]
    return names


def _add_batch(fd: int, names: list[str], columns: Columns) -> None:
    lstat = os.lstat
    try:
        found = [lstat(name, dir_fd=fd) for name in names]
    except FileNotFoundError:  # one was removed meanwhile
        names, found = _stat_carefully(fd, names)
    modes = list(map(_MODE, found))
    plain = list(map(or_, map(stat_mod.S_ISREG, modes), map(stat_mod.S_ISDIR, modes)))
    if not all(plain) and any(map(stat_mod.S_ISLNK, modes)):
        names, found, plain = _follow_links(fd, names, found, plain)
        modes = list(map(_MODE, found))
    is_dir = list(map(stat_mod.S_ISDIR, modes))
    sizes = list(map(_SIZE, found))
    for index in compress(range(len(is_dir)), is_dir):
        sizes[index] = 0  # a folder's size is its own block count: not reported
    columns.names.extend(names)
    columns.is_dir.extend(is_dir)
    columns.sizes.extend(sizes)
    columns.mtimes.extend(map(_MTIME, found))
    columns.plain.extend(plain)


def _follow_links(
    fd: int, names: list[str], found: list[os.stat_result], plain: list[bool]
) -> tuple[list[str], list[os.stat_result], list[bool]]:
    """Each link's entry by what it points to (not `plain`); dangling links left out."""
    kept: list[str] = []
    stats: list[os.stat_result] = []
    flags: list[bool] = []
    for name, st, is_plain in zip(names, found, plain, strict=True):
        if stat_mod.S_ISLNK(st.st_mode):
            try:
                st = os.stat(name, dir_fd=fd)
            except FileNotFoundError:
                continue
        kept.append(name)
        stats.append(st)
        flags.append(is_plain)
    return kept, stats, flags


def _stat_carefully(fd: int, names: list[str]) -> tuple[list[str], list[os.stat_result]]:
    kept, found = [], []
    for name in names:
        try:
            found.append(os.lstat(name, dir_fd=fd))
        except FileNotFoundError:
            continue
        kept.append(name)
    return kept, found
