"""A fresh ext4 per server per run: a sparse image file, made with mkfs.ext4, loop-mounted.

On a used ext4 the cost of creating small files depends on the filesystem's history (rounds of
the same server differed 4x here), so each server writes to a filesystem of its own, new for the
run. The inode tables and the journal are written by mkfs (lazy_itable_init=0), so the kernel's
background initialisation does not run during the measurements. Needs root and a loop device;
elsewhere `make` falls back to a plain folder and says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Filesystem:
    mount: Path  # where the server's folders go
    image: Path | None  # None: a plain folder on the harness's own filesystem
    note: str

    def cleanup(self) -> None:
        if self.image is None:
            shutil.rmtree(self.mount, ignore_errors=True)
            return
        unmount(self.mount)
        self.image.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.mount.rmdir()


def loop_supported() -> bool:
    return (
        os.geteuid() == 0
        and shutil.which("mkfs.ext4") is not None
        and Path("/dev/loop-control").exists()
    )


def make(
    root: Path, name: str, size_gib: float, inodes: int | None = None, loop: bool = True
) -> Filesystem:
    """A new filesystem at root/name (mounted) or, without loop support, a new folder there."""
    mount = root / name
    image = root / f"{name}.img"
    if mount.is_mount():
        unmount(mount)
    shutil.rmtree(mount, ignore_errors=True)
    mount.mkdir(parents=True)
    if not (loop and loop_supported()):
        return Filesystem(
            mount, None, "plain folder (no loop-mounted ext4: not root or no loop device)"
        )
    image.unlink(missing_ok=True)
    with open(image, "wb") as f:
        f.truncate(int(size_gib * 2**30))
    mkfs = ["mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0"]
    if inodes:
        mkfs += ["-N", str(inodes)]
    try:
        subprocess.run([*mkfs, str(image)], check=True, capture_output=True, timeout=300)
        subprocess.run(
            ["mount", "-o", "loop", str(image), str(mount)],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        image.unlink(missing_ok=True)
        detail = (
            exc.stderr.decode(errors="replace").strip()
            if isinstance(exc, subprocess.CalledProcessError)
            else exc
        )
        return Filesystem(mount, None, f"plain folder (loop-mounted ext4 failed: {detail})")
    return Filesystem(
        mount, image, f"fresh ext4 of {size_gib:g} GiB on a loop device, made for the run"
    )


def unmount(mount: Path) -> None:
    for attempt in range(10):
        proc = subprocess.run(["umount", str(mount)], capture_output=True, timeout=60, check=False)
        if proc.returncode == 0 or not mount.is_mount():
            return
        time.sleep(0.5 * (attempt + 1))  # a server's last file may still be closing
    subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=60, check=False)
