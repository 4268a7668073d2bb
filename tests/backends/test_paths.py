"""The path-confinement function, table-driven."""

import pytest

from backends.paths import UnsafePathError, confine

ACCEPTED = [
    "a.txt",
    "0/run/artifacts/model.pkl",
    "dir/sub/b.json",
    "100%41 Name:v1 +#.txt",
    "%2e%2e",  # a literal name once decoded once: harmless
    "..a/b..",
    "...",
    "~/x",
    "日本.bin",
    "a?b.txt",
    "x" * 255,
]

REJECTED = [
    ("", "root"),
    ("..", "'..'"),
    ("../etc/passwd", "'..'"),
    ("a/../../etc/passwd", "'..'"),
    ("a/..", "'..'"),
    (".", "'.'"),
    ("a/./b", "'.'"),
    ("/etc/passwd", "absolute"),
    ("//etc/passwd", "absolute"),
    ("a//b", "empty"),
    ("a/", "empty"),
    ("C:/Windows/win.ini", "drive"),
    ("c:foo", "drive"),
    ("C:\\Windows", "backslash"),
    ("\\\\server\\share\\x", "backslash"),
    ("a\\..\\..\\etc", "backslash"),
    ("f.txt\x00.png", "control"),
    ("a\nb", "control"),
    ("a\rb", "control"),
    ("a\tb", "control"),
    ("a\x7fb", "control"),
    ("x" * 256, "longer than 255"),
    ("a/" * 2100 + "b", "longer than 4096"),
    (".artgw.upload.123", "reserved"),
    ("d/.artgw.upload.x", "reserved"),
]


@pytest.mark.parametrize("path", ACCEPTED)
def test_accepted_paths_come_back_unchanged(path: str) -> None:
    assert confine(path) == path


@pytest.mark.parametrize(("path", "reason"), REJECTED)
def test_rejected_paths_say_why(path: str, reason: str) -> None:
    with pytest.raises(UnsafePathError) as caught:
        confine(path)
    assert reason in caught.value.reason


def test_root_only_where_allowed() -> None:
    assert confine("", allow_root=True) == ""
    with pytest.raises(UnsafePathError):
        confine("..", allow_root=True)


def test_the_plain_path_shortcut_agrees_with_every_check() -> None:
    """`confine` accepts plain ASCII paths with one pattern; built from the pieces that matter
    to the checks, every path gets the answer the full checks give."""
    from itertools import product

    from backends.paths import _reject_reason

    pieces = ["a", "Z9", "_", "-", ".", "..", "/", ":", "C:", "\\", "\x00", "\n", "é", " "]
    pieces += [".artgw.upload.", "x" * 254, "x" * 255]
    for count in (1, 2, 3):
        for parts in product(pieces, repeat=count):
            path = "".join(parts)
            expected = None if _reject_reason(path) else path
            try:
                got: str | None = confine(path)
            except UnsafePathError:
                got = None
            assert got == expected, path
