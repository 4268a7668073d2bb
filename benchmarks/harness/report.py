"""Collect per-round metrics and render markdown: medians, min-max, paired ratios, targets."""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import subprocess
from dataclasses import dataclass, field

from .workloads import Metric, Workload


@dataclass
class Results:
    servers: list[str]
    # workload -> server -> round -> metrics
    values: dict[str, dict[str, dict[int, dict[str, float]]]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # workload -> server -> rounds planned (0 when preparing failed); absent when skipped
    planned: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, workload: str, server: str, rnd: int, metrics: dict[str, float]) -> None:
        self.values.setdefault(workload, {}).setdefault(server, {})[rnd] = metrics

    def plan(self, workload: str, server: str, rounds: int) -> None:
        self.planned.setdefault(workload, {})[server] = rounds

    def verification(self, workload: str, server: str) -> str:
        """'passed (k/k rounds)' when every planned round ran and passed its checks."""
        if server not in self.planned.get(workload, {}):
            return "skipped"
        want = self.planned[workload][server]
        ok = len(self.values.get(workload, {}).get(server, {}))
        status = "passed" if want and ok == want else "FAILED"
        return f"{status} ({ok}/{want} rounds)"

    def series(self, workload: str, server: str, key: str) -> dict[int, float]:
        rounds = self.values.get(workload, {}).get(server, {})
        return {r: m[key] for r, m in rounds.items() if key in m}


def spread(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    med = f"{statistics.median(values):.{digits}f}"
    if len(values) == 1:
        return med
    return f"{med} ({min(values):.{digits}f}–{max(values):.{digits}f})"


def paired_ratios(base: dict[int, float], other: dict[int, float]) -> list[float]:
    return [other[r] / base[r] for r in sorted(base) if r in other and base[r]]


def verdict(metric: Metric, value: float | None, ratio: float | None) -> str:
    if metric.target is None:
        return ""
    met = metric.target.met(value, ratio)
    return "" if met is None else ("yes" if met else "**no**")


def table(results: Results, workloads: list[Workload], client: bool) -> str:
    base, others = results.servers[0], results.servers[1:]
    head = ["workload", "metric", *(f"{s} median (min–max)" for s in results.servers)]
    for o in others:
        head += [f"{o}/{base} paired median (min–max)"]
    if not client:
        head += ["target", *(f"{o} meets" for o in others)]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for wl in workloads:
        if wl.name not in results.values:
            continue
        for m in wl.metrics:
            if m.client != client:
                continue
            rows.append("| " + " | ".join(_row(results, wl.name, m, base, others, client)) + " |")
    return "\n".join(rows)


def _row(
    results: Results, wl: str, m: Metric, base: str, others: list[str], client: bool
) -> list[str]:
    cells = [wl, m.label]
    per_server = {s: results.series(wl, s, m.key) for s in results.servers}
    cells += [spread(list(per_server[s].values()), m.digits) for s in results.servers]
    ratios = {o: paired_ratios(per_server[base], per_server[o]) for o in others}
    cells += [spread(ratios[o], 2) for o in others]
    if not client:
        cells.append(m.target.text() if m.target else "")
        for o in others:
            vals = list(per_server[o].values())
            value = statistics.median(vals) if vals else None
            ratio = statistics.median(ratios[o]) if ratios[o] else None
            cells.append(verdict(m, value, ratio))
    return cells


def verification_table(results: Results, workloads: list[Workload]) -> str:
    head = ["workload", "check", *results.servers]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for wl in workloads:
        cells = [wl.name, wl.check]
        for s in results.servers:
            status = results.verification(wl.name, s)
            cells.append(f"**{status}**" if status.startswith("FAILED") else status)
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    good = [ln for ln in lines if "Warning" not in ln and "warn" not in ln.lower()]
    return (good or lines or ["unknown"])[-1].strip()


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info(version_cmds: dict[str, list[str]]) -> dict[str, str]:
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    info = {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu_model(),
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "os": _first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python (harness)": platform.python_version(),
        "curl": _first_line(["sh", "-c", "curl --version | head -1"]),
        "wrk": _first_line(["sh", "-c", "wrk -v 2>&1 | head -1"]),
    }
    for name, argv in version_cmds.items():
        info[f"{name} version"] = _first_line(argv)
    return info


def background_note(results: Results) -> str:
    """Other processes' CPU share over all measured operations: how disturbed the run was."""
    shares = [
        m["other_pct"]
        for per_server in results.values.values()
        for rounds in per_server.values()
        for m in rounds.values()
        if "other_pct" in m
    ]
    if not shares:
        return "other processes' CPU during measurements: not measured"
    text = (
        f"other processes' CPU during measured operations (share of all cores): median "
        f"{statistics.median(shares):.0f}%, max {max(shares):.0f}% over {len(shares)} operations"
    )
    if max(shares) > 10:
        text += "; **other load was present, so absolute times are pessimistic** (see the table)"
    return text


def render(
    results: Results,
    workloads: list[Workload],
    info: dict[str, str],
    command: list[str],
    server_argv: dict[str, list[str]],
    notes: list[str],
) -> str:
    parts = ["## Machine", ""]
    parts += [f"- {k}: {v}" for k, v in info.items()]
    parts += ["", "## Command", "", "```", shlex.join(command), "```", "", "Servers:", ""]
    parts += [f"- {name}: `{shlex.join(argv)}`" for name, argv in server_argv.items()]
    parts += ["", "## Results", "", table(results, workloads, client=False), ""]
    parts += ["## Load tools and machine", "", table(results, workloads, client=True), ""]
    parts += ["## Verification", "", verification_table(results, workloads), ""]
    notes = [*notes, background_note(results)]
    parts += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    if results.skipped:
        parts += ["## Skipped", "", *(f"- {s}" for s in results.skipped), ""]
    if results.failures:
        parts += ["## FAILURES", "", *(f"- {f}" for f in results.failures), ""]
    return "\n".join(parts)
