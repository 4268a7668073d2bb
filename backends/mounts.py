"""A mount table: one `Backend` over a default destination and other destinations at path prefixes.

`--mount archive=s3://cold/mlflow` sends every artifact path under `archive/` to that bucket; the
longest matching prefix wins and everything else goes to the default destination. The gateway
keeps asking for "the backend" and gets a `MountedBackend`, which resolves each path to
(backend, path inside it) and calls the same method there, so uploads, downloads, listings,
multipart, presigning and gc all work per mount through the one interface.

- A path never crosses mounts: it is resolved by prefix once, and the mount's own backend
  confines the rest (local destinations may not nest inside one another, so no symbolic link
  in one can lead into another).
- Listing a parent shows mount points as folders; a mount point shadows whatever the parent
  store holds under that name.
- A mount point, and any folder that holds one, is never deleted (like the root).
- `start()` starts every mount and fails with one line naming the mount that cannot be used.
"""

import asyncio
import contextlib
import errno
import functools
import inspect
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from backends.base import Backend, Capabilities, Columns, Entry, OpenedFile, Stat
from backends.deadline import with_deadline
from backends.paths import UnsafePathError, confine
from backends.registry import DestinationError, local_path, open_destination, scheme_of


@dataclass(frozen=True)
class Mount:
    """`prefix` (a confined relative path, no slashes at either end) served from `url`."""

    prefix: str
    url: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, storage_options: dict[str, Any] | None = None) -> "Mount":
        """`PREFIX=URL`, as given to --mount."""
        prefix, sep, url = text.partition("=")
        if not sep or not url.strip():
            raise ValueError(f"--mount expects PREFIX=URL, got {text!r}")
        return cls.of(prefix, url.strip(), storage_options)

    @classmethod
    def of(cls, prefix: str, url: str, storage_options: dict[str, Any] | None = None) -> "Mount":
        clean = prefix.strip().strip("/")
        try:
            confine(clean)
        except UnsafePathError as exc:
            raise ValueError(f"mount prefix {prefix!r}: {exc.reason}") from None
        return cls(clean, url, dict(storage_options or {}))


def open_mounted(
    url: str,
    storage_options: dict[str, Any] | None = None,
    mounts: tuple[Mount, ...] | list[Mount] = (),
    *,
    fsync: bool = False,
    store_timeout: float = 0.0,
) -> Backend:
    """The backend of a destination with its mounts; the plain destination when there are none.
    Each remote store's calls are limited to `store_timeout` seconds (backends/deadline.py)."""
    default = with_deadline(open_destination(url, storage_options, fsync=fsync), store_timeout)
    if not mounts:
        return default
    prefixes = [m.prefix for m in mounts]
    duplicate = next((p for p in prefixes if prefixes.count(p) > 1), None)
    if duplicate is not None:
        raise DestinationError(f"mount {duplicate!r} is given twice")
    opened = {}
    for mount in mounts:
        try:
            store = open_destination(mount.url, mount.storage_options, fsync=fsync)
            opened[mount.prefix] = with_deadline(store, store_timeout)
        except DestinationError as exc:
            raise DestinationError(f"mount {mount.prefix!r} ({mount.url}): {exc}") from None
    return MountedBackend(default, opened)


class MountedBackend(Backend):
    """The default backend plus backends mounted at prefixes. See the module docstring."""

    def __init__(self, default: Backend, mounts: dict[str, Backend]) -> None:
        self.default = default
        self.mounts = dict(sorted(mounts.items(), key=lambda item: -len(item[0])))
        """Longest prefix first, so the first match is the one that wins."""
        self.url = default.url
        self.capabilities = default.capabilities  # type: ignore[misc]  # per mount: capabilities_at

    # -- resolution ----------------------------------------------------------------------------

    def resolve(self, path: str) -> tuple[Backend, str]:
        """The backend that serves `path` and the path inside it."""
        for prefix, backend in self.mounts.items():
            if path == prefix:
                return backend, ""
            if path.startswith(prefix) and path[len(prefix)] == "/":
                return backend, path[len(prefix) + 1 :]
        return self.default, path

    def capabilities_at(self, path: str) -> Capabilities:
        backend, inner = self.resolve(path)
        return backend.capabilities_at(inner)

    def all_capabilities(self) -> list[Capabilities]:
        return [self.default.capabilities, *(b.capabilities for b in self.mounts.values())]

    def mounted_below(self, path: str) -> list[str]:
        """Mount prefixes strictly below `path` ('' is the root)."""
        head = path + "/" if path else ""
        return [prefix for prefix in self.mounts if prefix.startswith(head) and prefix != path]

    def is_root(self, path: str) -> bool:
        """The root, a mount point, or a folder that holds one: never deleted."""
        return path == "" or path in self.mounts or bool(self.mounted_below(path))

    def _children_mounted(self, path: str) -> set[str]:
        """Names directly under `path` that are mount points or folders leading to one."""
        start = len(path) + 1 if path else 0
        return {prefix[start:].split("/", 1)[0] for prefix in self.mounted_below(path)}

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._refuse_nested_local)
        started: list[Backend] = []
        try:
            for prefix, backend in [("", self.default), *self.mounts.items()]:
                await _start_named(prefix, backend)
                started.append(backend)
        except BaseException:
            for backend in started:
                with contextlib.suppress(Exception):
                    await backend.close()
            raise

    async def close(self) -> None:
        await asyncio.gather(
            *(b.close() for b in [self.default, *self.mounts.values()]), return_exceptions=True
        )

    def _refuse_nested_local(self) -> None:
        """Local folders inside one another would let a link in one reach the other."""
        roots = [("", self.default.url), *((p, b.url) for p, b in self.mounts.items())]
        local = [
            (prefix, os.path.realpath(os.path.expanduser(local_path(url))))
            for prefix, url in roots
            if scheme_of(url) in ("", "file")
        ]
        for prefix, root in local:
            for other, other_root in local:
                if other != prefix and (root + os.sep).startswith(other_root + os.sep):
                    outer = f"mount {other!r}" if other else "the artifacts destination"
                    raise DestinationError(
                        f"mount {prefix!r} ({root}) is inside {outer} ({other_root}): "
                        "local destinations may not nest"
                    )

    # -- operations the mount table changes ------------------------------------------------------

    async def sweep_parts(self, started_before: float) -> int:
        """Every store's abandoned part uploads (the one Backend method that takes no path)."""
        counts = [
            await backend.sweep_parts(started_before)
            for backend in [self.default, *self.mounts.values()]
            if backend.capabilities.part_uploads
        ]
        return sum(counts)

    async def stat(self, path: str) -> Stat:
        backend, inner = self.resolve(path)
        try:
            return await _renamed(path, inner, backend.stat(inner))
        except (FileNotFoundError, NotADirectoryError):
            if self.mounted_below(path):
                return Stat(0, is_dir=True)
            raise

    async def list_dir(self, path: str) -> list[Entry]:
        backend, inner = self.resolve(path)
        names = self._children_mounted(path)
        try:
            entries = await _renamed(path, inner, backend.list_dir(inner))
        except (FileNotFoundError, NotADirectoryError):
            if not names:
                raise
            entries = []
        if not names:
            return entries
        merged = {e.name: e for e in entries if e.name not in names}
        merged.update((name, Entry(name, True)) for name in names)
        return [merged[name] for name in sorted(merged)]

    async def listing(self, path: str) -> Columns:
        return Columns.of(await self.list_dir(path))  # with the mount points merged in

    async def open(self, path: str) -> OpenedFile:
        if path in self.mounts or self.mounted_below(path):
            raise IsADirectoryError(errno.EISDIR, "Is a directory (a mount point)", path)
        backend, inner = self.resolve(path)
        return await _renamed(path, inner, backend.open(inner))

    async def write(self, path: str, body: Any, *args: Any, **kwargs: Any) -> None:
        if path in self.mounts or self.mounted_below(path):
            raise IsADirectoryError(errno.EISDIR, "A mount point is at this path", path)
        backend, inner = self.resolve(path)
        await _renamed(path, inner, backend.write(inner, body, *args, **kwargs))

    async def delete(self, path: str) -> None:
        if self.is_root(path):
            raise PermissionError(errno.EACCES, "A mount point is never deleted", path)
        below = self.mounted_below(path)
        if below:
            message = f"The folder holds the mount point {below[-1]!r}, which is never deleted"
            raise PermissionError(errno.EACCES, message, path)
        backend, inner = self.resolve(path)
        await _renamed(path, inner, backend.delete(inner))


async def _start_named(prefix: str, backend: Backend) -> None:
    if not prefix:
        await backend.start()
        return
    try:
        await backend.start()
    except (DestinationError, OSError) as exc:
        raise DestinationError(f"cannot use mount {prefix!r} ({backend.url}): {exc}") from None


async def _renamed(path: str, inner: str, awaitable: Any) -> Any:
    """Await a mounted backend's call; its errors name the path as the client gave it."""
    try:
        return await awaitable
    except OSError as exc:
        if path != inner and exc.filename == inner:
            raise type(exc)(exc.errno, exc.strerror, path) from exc
        raise


def _delegate(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """A router method that calls `name` on the backend that serves its `path` argument."""
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def generator(self: MountedBackend, path: str, *a: Any, **k: Any) -> AsyncIterator:
            backend, inner = self.resolve(path)
            async for item in getattr(backend, name)(inner, *a, **k):
                yield item

        return generator

    @functools.wraps(method)
    async def call(self: MountedBackend, path: str, *args: Any, **kwargs: Any) -> Any:
        backend, inner = self.resolve(path)
        return await _renamed(path, inner, getattr(backend, name)(inner, *args, **kwargs))

    return call


def _path_methods() -> dict[str, Callable[..., Any]]:
    """Every async method of the Backend interface whose first argument is a `path`."""
    found = {}
    for name, member in vars(Backend).items():
        if name.startswith("_") or not callable(member):
            continue
        if not (inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)):
            continue
        parameters = list(inspect.signature(member).parameters)
        if parameters[1:2] == ["path"]:
            found[name] = member
    return found


for _name, _method in _path_methods().items():
    if _name not in vars(MountedBackend):
        setattr(MountedBackend, _name, _delegate(_name, _method))
MountedBackend.__abstractmethods__ = frozenset()
