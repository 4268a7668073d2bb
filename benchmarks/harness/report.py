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


def subject_of(results: Results) -> str:
    """The server the targets are about: artgw when it ran, else the first one."""
    return "artgw" if "artgw" in results.servers else results.servers[0]


def verdicts(results: Results, wl: str, m: Metric) -> tuple[str, str]:
    """(the targets, whether the subject meets each), '; '-separated, ratios paired per round."""
    subject = subject_of(results)
    mine = results.series(wl, subject, m.key)
    texts, marks = [], []
    for target in m.targets:
        if target.kind == "abs<=":
            vals = list(mine.values())
            met = target.met(statistics.median(vals), None) if vals else None
        else:
            if target.peer not in results.servers or target.peer == subject:
                continue
            ratios = paired_ratios(results.series(wl, target.peer, m.key), mine)
            met = target.met(None, statistics.median(ratios)) if ratios else None
        texts.append(target.text())
        marks.append("-" if met is None else ("yes" if met else "**no**"))
    return "; ".join(texts), "; ".join(marks)


def table(results: Results, workloads: list[Workload], client: bool) -> str:
    base, others = results.servers[0], results.servers[1:]
    head = ["workload", "metric", *(f"{s} median (min–max)" for s in results.servers)]
    for o in others:
        head += [f"{o}/{base} paired median (min–max)"]
    if not client:
        head += ["target", f"{subject_of(results)} meets"]
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
        cells += list(verdicts(results, wl, m))
    return cells


def peer_table(results: Results, workloads: list[Workload]) -> str:
    """The subject against each peer: its median, then subject/peer paired per round, marked
    "ahead" when the subject is better (more req/s, fewer ms or CPU)."""
    subject = subject_of(results)
    peers = [s for s in results.servers if s != subject]
    head = ["workload", "metric", subject]
    head += [h for p in peers for h in (p, f"{subject}/{p}")]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for wl in workloads:
        if wl.name not in results.values:
            continue
        for m in wl.metrics:
            if m.client or m.key in ("max_ms", "p50_ms", "rss_peak_mb", "procs", "shown"):
                continue
            mine = results.series(wl.name, subject, m.key)
            cells = [wl.name, m.label, spread(_med(mine), m.digits)]
            for p in peers:
                theirs = results.series(wl.name, p, m.key)
                ratios = paired_ratios(theirs, mine)
                cells.append(spread(_med(theirs), m.digits))
                cells.append(_ratio_cell(ratios, m.higher_is_better))
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _med(series: dict[int, float]) -> list[float]:
    return [statistics.median(series.values())] if series else []


def _ratio_cell(ratios: list[float], higher_is_better: bool) -> str:
    if not ratios:
        return "-"
    med = statistics.median(ratios)
    ahead = med > 1 if higher_is_better else med < 1
    return f"{med:.2f}x" + (" ahead" if ahead else "")


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
    subject = subject_of(results)
    if len(results.servers) > 1:
        parts += ["", f"## {subject} against each peer", ""]
        parts += [
            f"Medians over the rounds; {subject}/peer is paired within each round (median). "
            "'ahead' marks where the subject is better (higher rates, lower times and CPU).",
            "",
            peer_table(results, workloads),
        ]
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
