"""Opening a file below a directory with the kernel's own guarantee: Linux `openat2` with
RESOLVE_BENEATH, one system call that refuses any resolution leaving the directory (`..`,
absolute paths, symbolic links pointing out) and any /proc "magic" link.

Python has no binding for `openat2`, so it is called through libc's `syscall`. Where the kernel
lacks it (before 5.6, or a seccomp filter refuses it) `open_beneath` answers None and the caller
resolves the path by itself, as it would without this module.
"""

import ctypes
import errno
import os

SYS_OPENAT2 = 437
"""The same number on x86-64, arm64 and every architecture on the generic table."""
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_BENEATH = 0x08
_UNSUPPORTED = {errno.ENOSYS, errno.EPERM, errno.EINVAL, errno.E2BIG}


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _load_syscall() -> "ctypes._CFuncPtr | None":
    try:
        function = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_long
    return function


_syscall = _load_syscall() if os.name == "posix" else None


def open_beneath(dir_fd: int, path: str, flags: int) -> int | None:
    """A file descriptor for `path` (relative) under `dir_fd`, or None when the kernel cannot
    guarantee it: no `openat2`, or the path needs an absolute symbolic link or leaves the
    directory (EXDEV). Other failures raise the OSError `open` would."""
    global _syscall
    if _syscall is None:
        return None
    how = _OpenHow(flags | os.O_CLOEXEC, 0, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
    fd = _syscall(SYS_OPENAT2, dir_fd, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how))
    if fd >= 0:
        return fd
    code = ctypes.get_errno()
    if code == errno.EXDEV:
        return None
    if code in _UNSUPPORTED:
        _syscall = None  # this kernel will not do it: stop asking
        return None
    raise OSError(code, os.strerror(code), path)
