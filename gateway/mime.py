"""MLflow's download headers: its MIME rules and Content-Disposition with the basename."""

import mimetypes
import re
from functools import lru_cache
from urllib.parse import quote

_TEXT_EXTENSIONS = frozenset(
    [
        "txt",
        "log",
        "err",
        "cfg",
        "conf",
        "cnf",
        "cf",
        "ini",
        "properties",
        "prop",
        "hocon",
        "toml",
        "yaml",
        "yml",
        "xml",
        "json",
        "js",
        "py",
        "py3",
        "csv",
        "tsv",
        "md",
        "rst",
        "ipynb",
    ]
)
_TEXT_NAMES = frozenset({"MLmodel", "MLproject"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def guess_mime_type(name: str) -> str:
    """text/plain for the files MLflow shows as text, else the standard guess."""
    if name in _TEXT_NAMES:
        return "text/plain"
    _, dot, extension = name.rpartition(".")
    if dot and extension.lower() in _TEXT_EXTENSIONS:
        return "text/plain"
    if ":" in name:  # `mimetypes` reads a name like `data:...` as a URL: not cached
        return _standard_guess(name)
    stem = name.lstrip(".")  # leading dots never start an extension
    start = stem.find(".")
    return "application/octet-stream" if start < 0 else _guess_by_extensions(stem[start:])


@lru_cache(maxsize=512)
def _guess_by_extensions(extensions: str) -> str:
    """The guess for any name ending in `extensions` (`.tar.gz`): `mimetypes` looks at nothing
    else, and a folder holds many names with the same few endings."""
    return _standard_guess(f"x{extensions}")


def _standard_guess(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"


def content_disposition(name: str, disposition: str = "attachment") -> str:
    """`attachment; filename=...` with an RFC 5987 `filename*` for names that are not ASCII."""
    ascii_name = name.encode("ascii", "ignore").decode("ascii")
    header = f"{disposition}; filename={_quoted(ascii_name or 'download')}"
    if ascii_name != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


def _quoted(value: str) -> str:
    if _TOKEN.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_TEXT_LIKE = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/x-javascript",
        "application/x-yaml",
        "application/yaml",
        "application/toml",
        "application/x-sh",
        "application/sql",
        "application/x-ipynb+json",
    }
)


def is_text_like(mime_type: str) -> bool:
    """True for types a browser may show as plain text: text/*, JSON, XML, YAML and the like."""
    return mime_type.startswith("text/") or mime_type in _TEXT_LIKE or mime_type.endswith("+json")
