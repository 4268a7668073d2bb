"""Removing the temp files of uploads that died with their process (kill -9, power loss).

An upload in progress holds an exclusive `flock` on its temp file for as long as it is written
(backends/local.py), and the kernel drops that lock when the process dies however it dies. The
sweep removes a temp file only if it can take that lock itself and the file is older than the
sweep's own start: so never one that a live upload (of this server or of another sharing the
folder) is writing, nor one created a moment ago and not locked yet. Only names artgw makes
(`.artgw.upload.` + ...) are looked at; nothing else in the destination is touched.
"""

import contextlib
import fcntl
import logging
import os
import stat as stat_mod
import threading

from backends.paths import UPLOAD_PREFIX

log = logging.getLogger("artgw")


def sweep_stale_uploads(root: str, before: float, stop: threading.Event | None = None) -> int:
    """Remove abandoned upload temp files below `root` last modified before `before` (epoch
    seconds); returns how many (-1: another process is sweeping). Blocking: run it in a thread.
    Stops early once `stop` is set. The sweeper holds a lock on `root` itself, so that workers
    starting together walk the tree once, not once each."""
    lock = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return -1
        return _sweep(root, before, stop)
    finally:
        os.close(lock)


def _sweep(root: str, before: float, stop: threading.Event | None) -> int:
    removed = 0
    for folder, dirs, files in os.walk(root):
        if stop is not None and stop.is_set():
            break
        dirs[:] = [d for d in dirs if not d.startswith(UPLOAD_PREFIX)]
        for name in files:
            if name.startswith(UPLOAD_PREFIX):
                removed += _remove_if_abandoned(folder, name, before)
    return removed


def _remove_if_abandoned(folder: str, name: str, before: float) -> bool:
    path = os.path.join(folder, name)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError:  # gone meanwhile, a link, or unreadable: not ours to judge
        return False
    try:
        st = os.fstat(fd)
        if not stat_mod.S_ISREG(st.st_mode) or st.st_mtime >= before:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live upload holds it
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return True
    except OSError as exc:
        log.warning("could not sweep %s: %s", path, exc)
        return False
    finally:
        os.close(fd)
