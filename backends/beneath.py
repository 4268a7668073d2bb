"""Opening a file below a directory with the kernel's own guarantee: Linux `openat2` with
RESOLVE_BENEATH, one system call that refuses any resolution leaving the directory (`..`,
absolute paths, symbolic links pointing out) and any /proc "magic" link.

Python has no binding for `openat2`, so it is called through libc's `syscall`. Where the kernel
lacks it (before 5.6, or a seccomp filter refuses it) `open_beneath` answers None and the caller
resolves the path by itself, as it would without this module.

With RESOLVE_CACHED (Linux 5.12) the kernel resolves from its caches alone or answers EAGAIN at
once: with a read that refuses to wait for the disk (RWF_NOWAIT), a small file can then be served
from the event loop itself, on filesystems whose cached metadata never waits for I/O.
"""

import ctypes
import errno
import functools
import os
import re
from typing import Any

SYS_OPENAT2 = 437
"""The same number on x86-64, arm64 and every architecture on the generic table."""
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
RESOLVE_CACHED = 0x20
LOCAL_FILESYSTEMS = {"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "tmpfs", "overlay"}
"""Where an open file's fstat and close never wait for a device or a network (unlike NFS, FUSE)."""
_UNSUPPORTED = {errno.ENOSYS, errno.EPERM, errno.EINVAL, errno.E2BIG}


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_HOW_SIZE = ctypes.sizeof(_OpenHow)


@functools.lru_cache(maxsize=64)
def _how(flags: int, cached: bool) -> Any:
    """The `open_how` argument for `flags`, made once (read-only to the kernel)."""
    resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | (RESOLVE_CACHED if cached else 0)
    return ctypes.byref(_OpenHow(flags | os.O_CLOEXEC, 0, resolve))


def _load_syscall() -> Any:
    try:
        function = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_long
    return function


_syscall = _load_syscall() if os.name == "posix" else None


def open_beneath(dir_fd: int, path: str, flags: int, *, cached: bool = False) -> int | None:
    """A file descriptor for `path` (relative) under `dir_fd`, or None when the kernel cannot
    guarantee it: no `openat2`, the path needs an absolute symbolic link or leaves the directory
    (EXDEV), or, with `cached`, resolving it would need the disk (EAGAIN). Other failures raise
    the OSError `open` would."""
    global _syscall
    if _syscall is None:
        return None
    how = _how(flags, cached)
    fd = _syscall(SYS_OPENAT2, dir_fd, os.fsencode(path), how, _HOW_SIZE)
    if fd >= 0:
        return fd
    code = ctypes.get_errno()
    if code == errno.EXDEV or (cached and code == errno.EAGAIN):
        return None
    if code in _UNSUPPORTED:
        _syscall = None  # this kernel will not do it: stop asking
        return None
    raise OSError(code, os.strerror(code), path)


def read_cached(fd: int, size: int) -> bytes | None:
    """The file's first `size` bytes if the page cache holds them all, else None, never waiting."""
    nowait = getattr(os, "RWF_NOWAIT", None)
    if nowait is None:
        return None
    buffer = bytearray(size)
    try:
        got = os.preadv(fd, [buffer], 0, nowait)
    except (BlockingIOError, OSError):
        return None
    return bytes(buffer) if got == size else None


def cached_opens_supported(directory: str) -> bool:
    """Whether `directory` is on a local filesystem and this kernel resolves RESOLVE_CACHED."""
    if _syscall is None or filesystem_type(directory) not in LOCAL_FILESYSTEMS:
        return False
    fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        probe = open_beneath(fd, ".", os.O_RDONLY | os.O_DIRECTORY, cached=True)
    except OSError:
        return False
    finally:
        os.close(fd)
    if probe is None:
        return False
    os.close(probe)
    return True


def filesystem_type(path: str) -> str:
    """The type of the filesystem mounted deepest above `path` (from /proc/self/mountinfo)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as mounts:
            lines = mounts.read().splitlines()
    except OSError:
        return ""
    best, kind = "", ""
    for line in lines:
        fields, _, rest = line.partition(" - ")
        mount_point = _unescape(fields.split(" ")[4]) if fields.count(" ") >= 4 else ""
        inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, kind = mount_point, rest.split(" ", 1)[0]
    return kind


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)
