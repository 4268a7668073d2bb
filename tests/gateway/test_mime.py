"""Download content types: MLflow's text rules, else the standard library's guess (cached by
a name's extensions, with the same answer for every name)."""

import mimetypes
from itertools import product

from gateway.mime import _TEXT_EXTENSIONS, _TEXT_NAMES, guess_mime_type


def standard(name: str) -> str:
    if name in _TEXT_NAMES:
        return "text/plain"
    _, dot, extension = name.rpartition(".")
    if dot and extension.lower() in _TEXT_EXTENSIONS:
        return "text/plain"
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def test_the_cached_guess_is_the_standard_guess() -> None:
    stems = ["", ".", "..", "a", "MLmodel", "data:", "x:y"]
    endings = [".png", ".PNG", ".gz", ".tgz", ".tar", ".svgz", ".json", ".", ".Z", ".bz2", ""]
    for stem, first, second in product(stems, endings, endings):
        name = f"{stem}{first}{second}"
        assert guess_mime_type(name) == standard(name), name
    assert guess_mime_type("plot.png") == "image/png"
    assert guess_mime_type("model.tar.gz") == "application/x-tar"
    assert guess_mime_type("f1234") == "application/octet-stream"
