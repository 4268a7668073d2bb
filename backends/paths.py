"""Path confinement: the one gate every artifact path passes before it reaches a backend.

An artifact path arrives URL-decoded exactly once. It is accepted only as a plain relative POSIX
path whose every segment is a real name: nothing that could climb out of the destination, switch
to another drive or share, or smuggle a separator or control character into a store.
"""

import re

UPLOAD_PREFIX = ".artgw.upload."
"""Names of in-progress uploads start with this; clients can neither write nor see them."""

MAX_SEGMENT_BYTES = 255
MAX_PATH_CHARS = 4096

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_PLAIN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}(?:/[A-Za-z0-9_-][A-Za-z0-9._-]{0,254})*")
"""Paths of ASCII names that start with neither a dot nor a colon: safe by construction (no
`.`/`..`, no reserved prefix, no drive, no separator or control, each name within 255 bytes), so
the common case is one match instead of the checks below."""


class UnsafePathError(ValueError):
    """The path is not a plain relative path inside the destination."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"Invalid path {path!r}: {reason}")
        self.path = path
        self.reason = reason


def confine(path: str, *, allow_root: bool = False) -> str:
    """Return `path` unchanged if it is safe, '' for the root when `allow_root`, else raise."""
    if path == "":
        if allow_root:
            return ""
        raise UnsafePathError(path, "the destination root is not allowed here")
    if len(path) <= MAX_PATH_CHARS and _PLAIN.fullmatch(path):
        return path
    reason = _reject_reason(path)
    if reason:
        raise UnsafePathError(path, reason)
    return path


def _reject_reason(path: str) -> str | None:
    if len(path) > MAX_PATH_CHARS:
        return f"longer than {MAX_PATH_CHARS} characters"
    if _CONTROL.search(path):
        return "control characters (NUL, newline, ...) are not allowed"
    if "\\" in path:
        return "backslashes are not allowed"
    if path.startswith("/"):
        return "absolute paths are not allowed"
    if _DRIVE.match(path):
        return "drive letters are not allowed"
    for segment in path.split("/"):
        reason = _segment_reason(segment)
        if reason:
            return reason
    return None


def _segment_reason(segment: str) -> str | None:
    if segment == "":
        return "empty path segments ('//' or a trailing '/') are not allowed"
    if segment in (".", ".."):
        return f"'{segment}' segments are not allowed"
    if segment.startswith(UPLOAD_PREFIX):
        return f"names starting with {UPLOAD_PREFIX!r} are reserved"
    if len(segment.encode("utf-8", "surrogatepass")) > MAX_SEGMENT_BYTES:
        return f"a name is longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def join(*parts: str) -> str:
    """Join relative artifact paths, skipping empty parts ('' is the root)."""
    return "/".join(part for part in parts if part)
