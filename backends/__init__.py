"""artgw's storage layer: one small async interface over local folders and fsspec filesystems."""

from backends.base import Backend, Capabilities, Columns, Entry, OpenedFile, Stat
from backends.paths import UnsafePathError, confine
from backends.registry import DestinationError, open_destination

__all__ = [
    "Backend",
    "Capabilities",
    "Columns",
    "DestinationError",
    "Entry",
    "OpenedFile",
    "Stat",
    "UnsafePathError",
    "confine",
    "open_destination",
]
