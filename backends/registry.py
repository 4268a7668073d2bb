"""Destination URLs -> backends: a lazy scheme registry with install hints for optional stores."""

import importlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from backends.base import Backend


class DestinationError(ValueError):
    """The destination URL cannot be served: unknown scheme, missing package, bad location."""


@dataclass(frozen=True)
class Scheme:
    module: str
    factory: str
    extra: str | None = None
    """The artgw extra that installs the provider, for the error message."""
    local_disk: bool = False
    """The factory takes the local-disk options (`fsync`)."""


SCHEMES: dict[str, Scheme] = {
    "file": Scheme("backends.local", "from_url", local_disk=True),
    "memory": Scheme("backends.fsspec_store", "from_url"),
    "s3": Scheme("backends.s3", "from_url", "s3"),
    "s3a": Scheme("backends.s3", "from_url", "s3"),
    "gs": Scheme("backends.gcs", "from_url", "gcs"),
    "gcs": Scheme("backends.gcs", "from_url", "gcs"),
    "az": Scheme("backends.azure", "from_url", "azure"),
    "abfs": Scheme("backends.azure", "from_url", "azure"),
    "abfss": Scheme("backends.azure", "from_url", "azure"),
}
GENERIC = Scheme("backends.fsspec_store", "from_url")


def scheme_of(url: str) -> str:
    """'' for a plain path (Windows drives included), else the lower-cased URL scheme."""
    scheme = urlsplit(url).scheme.lower()
    return "" if len(scheme) <= 1 else scheme


def open_destination(
    url: str, storage_options: dict[str, Any] | None = None, *, fsync: bool = False
) -> Backend:
    """Build the (not yet started) backend for a destination URL or plain path. `fsync` applies
    to local disks only: object stores commit durably anyway."""
    scheme = scheme_of(url) or "file"
    entry = SCHEMES.get(scheme, GENERIC)
    extra = {"fsync": fsync} if entry.local_disk else {}
    try:
        module = importlib.import_module(entry.module)
        return getattr(module, entry.factory)(url, scheme, dict(storage_options or {}), **extra)
    except ImportError as exc:
        raise DestinationError(_install_hint(scheme, entry, exc)) from exc


def _install_hint(scheme: str, entry: Scheme, exc: ImportError) -> str:
    if entry.extra:
        return (
            f"The {scheme}:// destination needs an optional package ({exc.name}): "
            f"pip install 'artgw[{entry.extra}]'"
        )
    return f"No installed filesystem serves {scheme}:// ({exc})"


def local_path(url: str) -> str:
    """The directory of a plain path or file:// URL (resolved when the backend starts)."""
    return urlsplit(url).path if scheme_of(url) == "file" else url
