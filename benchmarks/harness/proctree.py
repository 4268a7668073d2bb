"""CPU time and memory of a server's whole process tree, read straight from /proc."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    pgid: int
    starttime: int
    cpu_ticks: int  # utime + stime + cutime + cstime (reaped children included)


def read_stat(pid: int) -> ProcStat | None:
    """Parse /proc/<pid>/stat; None when the process is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        starttime=int(fields[19]),
        cpu_ticks=utime + stime + cutime + cstime,
    )


def all_stats() -> dict[int, ProcStat]:
    stats: dict[int, ProcStat] = {}
    for entry in os.listdir(PROC):
        if entry.isdigit():
            st = read_stat(int(entry))
            if st is not None:
                stats[st.pid] = st
    return stats


def tree(root: int, pgid: int | None = None) -> list[ProcStat]:
    """The root, its descendants, and anything still in its process group (re-parented orphans)."""
    stats = all_stats()
    children: dict[int, list[int]] = {}
    for st in stats.values():
        children.setdefault(st.ppid, []).append(st.pid)
    found: set[int] = set()
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in found or pid not in stats:
            continue
        found.add(pid)
        stack.extend(children.get(pid, []))
    if pgid is not None:
        found.update(pid for pid, st in stats.items() if st.pgid == pgid)
    return [stats[pid] for pid in sorted(found)]


def cpu_seconds(procs: list[ProcStat]) -> float:
    return sum(p.cpu_ticks for p in procs) / CLK_TCK


def _status_kib(pid: int, key: str) -> int:
    try:
        text = (PROC / str(pid) / "status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0  # kernel threads and zombies have no VmRSS


def rss_bytes(procs: list[ProcStat]) -> int:
    """Sum of VmRSS from /proc/<pid>/status (shared pages are counted once per process)."""
    return sum(_status_kib(p.pid, "VmRSS") for p in procs) * 1024


def pss_bytes(procs: list[ProcStat]) -> int:
    """Sum of Pss from /proc/<pid>/smaps_rollup: shared pages split between their users."""
    total = 0
    for p in procs:
        try:
            text = (PROC / str(p.pid) / "smaps_rollup").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in text.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                break
    return total * 1024


@dataclass
class MachineCpu:
    """All cores' jiffies from the first line of /proc/stat."""

    procs: int  # user + nice + system: time that processes are charged for
    irq: int  # irq + softirq (loopback networking lands here, charged to no process)
    steal: int
    total: int

    @classmethod
    def read(cls) -> MachineCpu:
        first = (PROC / "stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in first[:8])
        return cls(
            procs=user + nice + system,
            irq=irq + softirq,
            steal=steal,
            total=user + nice + system + idle + iowait + irq + softirq + steal,
        )

    def since(self, before: MachineCpu) -> MachineCpuDelta:
        return MachineCpuDelta(
            procs_s=(self.procs - before.procs) / CLK_TCK,
            irq_s=(self.irq - before.irq) / CLK_TCK,
            steal_s=(self.steal - before.steal) / CLK_TCK,
            total_s=(self.total - before.total) / CLK_TCK,
        )


@dataclass
class MachineCpuDelta:
    procs_s: float
    irq_s: float
    steal_s: float
    total_s: float  # wall time x cores

    @property
    def busy_fraction(self) -> float:
        busy = self.procs_s + self.irq_s + self.steal_s
        return busy / self.total_s if self.total_s else 0.0


def quiet_gate(max_wait: float, threshold: float = 0.10, window: float = 0.5) -> float:
    """Flush dirty pages (so kernel writeback from earlier transfers does not overlap the next
    measurement), then wait up to max_wait seconds for other processes to use < threshold of the
    cores. Returns the seconds waited."""
    t0 = time.monotonic()
    os.sync()
    while time.monotonic() - t0 < max_wait and background_fraction(window) >= threshold:
        pass
    return time.monotonic() - t0


def background_fraction(seconds: float = 2.0) -> float:
    """Share of all cores that processes use while this harness sleeps (other sessions' load)."""
    before = MachineCpu.read()
    time.sleep(seconds)
    delta = MachineCpu.read().since(before)
    return delta.procs_s / delta.total_s if delta.total_s else 0.0


class PeakRssSampler:
    """Samples a process tree's RSS in a background thread while a transfer runs."""

    def __init__(self, root: int, pgid: int, interval: float = 0.05) -> None:
        self.root, self.pgid, self.interval = root, pgid, interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(tree(self.root, self.pgid)))
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def wait_gone(pid: int, starttime: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = read_stat(pid)
        if st is None or st.starttime != starttime:
            return True
        time.sleep(0.05)
    return False
