#!/usr/bin/env python3
"""How each server's cost grows with the work: a table and a plot per curve (see README.md).

python benchmarks/scale.py --servers artgw,rclone,nginx            # full curves
python benchmarks/scale.py --quick --servers artgw                  # smoke run, seconds

Curves (every point verified like run.py's workloads):
  files    list one folder of N files (JSON API / PROPFIND / autoindex JSON), N = 1k .. 100k
           (--files; 1M takes minutes per server to seed and list, so it is opt-in)
  html     the HTML listing page of the same folders (servers that have one)
  depth    4 KiB GETs of files D folders deep (wrk, 32 connections), D = 1 .. 64
  conns    4 KiB GETs at C connections, C = 1 .. 256
  size     GET and PUT of one artifact of S bytes, S = 4 KiB .. 1 GiB (--max-size; 4 GiB needs
           4 GiB free per server and a minute per transfer, so it is opt-in)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import run
from harness import clients, proctree, servers, workloads
from harness.report import machine_info
from harness.servers import RunningServer

BENCH_DIR = Path(__file__).resolve().parent
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30


@dataclass(frozen=True)
class Axes:
    files: tuple[int, ...]
    depths: tuple[int, ...]
    conns: tuple[int, ...]
    sizes: tuple[int, ...]
    requests: int  # wrk requests per point
    list_reps: int


FULL = Axes(
    files=(1000, 10_000, 100_000),
    depths=(1, 4, 16, 64),
    conns=(1, 4, 16, 64, 256),
    sizes=(4 * KiB, 64 * KiB, MiB, 16 * MiB, 256 * MiB, GiB),
    requests=2000,
    list_reps=5,
)
QUICK = Axes(
    files=(100, 1000),
    depths=(1, 8),
    conns=(1, 16),
    sizes=(4 * KiB, MiB, 16 * MiB),
    requests=200,
    list_reps=2,
)


@dataclass
class Curve:
    """One metric over one axis: values[server][x] = the median over the rounds."""

    name: str
    axis: str
    metric: str
    log_x: bool = True
    log_y: bool = False
    values: dict[str, dict[int, list[float]]] = field(default_factory=dict)

    def add(self, server: str, x: int, value: float) -> None:
        self.values.setdefault(server, {}).setdefault(x, []).append(value)

    def median(self, server: str, x: int) -> float | None:
        got = self.values.get(server, {}).get(x)
        return statistics.median(got) if got else None


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--servers", default="artgw,rclone,nginx")
    p.add_argument("--rounds", type=int, help="interleaved rounds per point (default 2; quick 1)")
    p.add_argument("--only", help="comma list of curves: files,html,depth,conns,size")
    p.add_argument("--files", help="comma list of folder sizes, e.g. 1000,10000,100000,1000000")
    p.add_argument("--max-size", type=int, help="largest artifact in MiB (default 1024)")
    p.add_argument("--out", help="markdown path (default benchmarks/out/<time>-scale.md)")
    p.add_argument("--plots", default=str(BENCH_DIR / "plots"), help="where the PNGs go")
    known, rest = p.parse_known_args(argv)  # the rest go to run.py's parser (--workers, --cmd)
    known.run_args = rest
    return known


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    axes = QUICK if args.quick else FULL
    if args.files:
        axes = _replace(axes, files=tuple(int(x) for x in args.files.split(",")))
    if args.max_size:
        axes = _replace(axes, sizes=tuple(s for s in _sizes_to(args.max_size * MiB)))
    rounds = args.rounds or (1 if args.quick else 2)
    wanted = args.only.split(",") if args.only else ["files", "html", "depth", "conns", "size"]
    fs_gib = max(4.0, 3 * max(axes.sizes) / GiB + 2)
    inodes = max(axes.files) * 2 + 200_000
    run_argv = [*args.run_args, "--servers", args.servers, "--fs-gib", str(fs_gib)]
    plan = run.build_plan(run.parse_args([*(["--quick"] if args.quick else []), *run_argv]))
    plan.inodes = inodes
    run.preflight(plan, [])
    plan.work.mkdir(parents=True, exist_ok=True)
    background = run.wait_quiet(0)
    curves: list[Curve] = []
    live: dict[str, RunningServer] = {}
    failures: list[str] = []
    try:
        for name in plan.names:
            live[name], _ = run.start_main(plan, name)
            run.warm_up(live[name])
            run.log(f"{name} up (pid {live[name].pid})")
        for curve_name in wanted:
            CURVES[curve_name](plan, live, axes, rounds, failures, curves)
    except KeyboardInterrupt:  # SIGINT: report what was measured so far
        failures.append("interrupted: the curves below stop where the run was stopped")
    finally:
        for server in live.values():
            servers.stop(server)
        plan.cleanup()
    info = machine_info(run.version_cmds(plan))
    text = render(curves, args, info, background, plan, failures)
    out = Path(args.out) if args.out else default_out(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    raw = {c.name: {"axis": c.axis, "metric": c.metric, "values": c.values} for c in curves}
    out.with_suffix(".json").write_text(json.dumps({"curves": raw, "failures": failures}))
    plotted = plot(curves, Path(args.plots), suffix="-quick" if args.quick else "")
    print(text)
    run.log(f"wrote {out}; plots: {', '.join(p.name for p in plotted) or 'none (no matplotlib)'}")
    return 1 if failures else 0


def _replace(axes: Axes, **changes: object) -> Axes:
    return Axes(**{**axes.__dict__, **changes})


def _sizes_to(limit: int) -> list[int]:
    out, size = [], 4 * KiB
    while size <= limit:
        out.append(size)
        size *= 16
    return out


def default_out(args: argparse.Namespace) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return BENCH_DIR / "out" / f"{stamp}-scale{'-quick' if args.quick else ''}.md"


# ---------------------------------------------------------------------------------------------
# seeding on disk, around the servers (then rclone's folder cache is dropped)


def seed_folder(server: RunningServer, rel: str, count: int, size: int, *, fmt: str) -> None:
    dest = server.spec.local_dest
    assert dest is not None
    folder = dest / rel
    if folder.is_dir() and sum(1 for _ in folder.iterdir()) == count:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, count + 1):
        body = clients.small_body(i, size) if size >= 16 else b"%d\n" % i
        (folder / (fmt % i)).write_bytes(body)


# ---------------------------------------------------------------------------------------------
# curves


def files_curve(
    plan: run.Plan,
    live: dict[str, RunningServer],
    axes: Axes,
    rounds: int,
    failures: list[str],
    into: list[Curve],
    html: bool = False,
) -> None:
    label = "HTML page" if html else "listing"
    ms = Curve("html_ms" if html else "list_ms", "files in the folder", f"{label}: median ms")
    cpu = Curve(
        "html_cpu" if html else "list_cpu", "files in the folder", f"{label}: server CPU-ms"
    )
    per = Curve(
        "html_us_per_entry" if html else "list_us_per_entry",
        "files in the folder",
        f"{label}: server CPU-µs per entry",
    )
    workload = workloads.ListHtml() if html else workloads.ListDir()
    into += [ms, cpu, per]
    for n in axes.files:
        ctx = _ctx(n, axes.list_reps)
        active = []
        for name, server in live.items():
            if workload.request(server.spec) is None:
                continue
            workload.REL = f"scale/files-{n}"
            seed_folder(server, workload.REL, n, 0, fmt="entry-%06d.txt")
            workloads.refresh(server)
            active.append(name)
        for rnd in range(rounds):
            for name in active:
                workload.REL = f"scale/files-{n}"
                proctree.quiet_gate(0)
                try:
                    got = workload.run(ctx, live[name], rnd + 1)
                except run.FAILURES as exc:
                    failures.append(f"{label} of {n} on {name}: {exc}")
                    continue
                ms.add(name, n, got["median_ms"])
                cpu.add(name, n, got["cpu_ms_per_req"])
                per.add(name, n, 1000 * got["cpu_ms_per_req"] / n)  # per entry of the folder
                run.log(f"{label} {n} r{rnd + 1} {name}: {got['median_ms']:.1f} ms")


def html_curve(
    plan: run.Plan,
    live: dict[str, RunningServer],
    axes: Axes,
    rounds: int,
    failures: list[str],
    into: list[Curve],
) -> None:
    files_curve(plan, live, axes, rounds, failures, into, html=True)


def _ctx(list_entries: int, reps: int, small_count: int = 0, size: int = 4096) -> workloads.Context:
    sizes = workloads.Sizes(0, small_count, list_entries, reps, 0.0, small_size=size)
    return workloads.Context(Path("."), sizes, None, None, lambda *_: None, 1)  # type: ignore[arg-type, return-value]


def wrk_point(
    server: RunningServer, method: str, rel_dir: str, count: int, size: int, conns: int, work: Path
) -> clients.WrkResult:
    script = clients.write_lua(
        work / f"scale-{server.spec.name}.lua",
        method,
        server.spec.api.file_path(rel_dir) + "/",
        count,
        size,
    )
    res = clients.run_wrk(server.spec.base_url, script, conns, max(60, count // 10))
    if res.errors or res.stats["requests"] != count:
        raise workloads.VerificationError(f"wrk {method} {rel_dir}: {res.stats}")
    return res


def depth_curve(
    plan: run.Plan,
    live: dict[str, RunningServer],
    axes: Axes,
    rounds: int,
    failures: list[str],
    into: list[Curve],
) -> None:
    rps = Curve("depth_req_s", "folder depth", "4 KiB GET req/s (32 connections)", log_y=False)
    cpu = Curve("depth_cpu", "folder depth", "4 KiB GET server CPU-ms per request")
    into += [rps, cpu]
    n = axes.requests
    for depth in axes.depths:
        rel = "/".join(["scale", *[f"d{i}" for i in range(1, depth + 1)]])
        for server in live.values():
            seed_folder(server, rel, n, 4096, fmt="f%06d")
            workloads.refresh(server)
        for _ in range(rounds):
            for name, server in live.items():
                proctree.quiet_gate(0)
                c0 = server.cpu_seconds()
                try:
                    res = wrk_point(server, "GET", rel, n, 4096, 32, plan.work)
                except run.FAILURES as exc:
                    failures.append(f"depth {depth} on {name}: {exc}")
                    continue
                rps.add(name, depth, res.req_per_s)
                cpu.add(name, depth, 1000 * (server.cpu_seconds() - c0) / n)
                run.log(f"depth {depth} {name}: {res.req_per_s:.0f} req/s")


def conns_curve(
    plan: run.Plan,
    live: dict[str, RunningServer],
    axes: Axes,
    rounds: int,
    failures: list[str],
    into: list[Curve],
) -> None:
    rps = Curve("conns_req_s", "connections", "4 KiB GET req/s")
    p99 = Curve("conns_p99_ms", "connections", "4 KiB GET p99 latency (ms)", log_y=True)
    into += [rps, p99]
    n = axes.requests * 2
    rel = "scale/conns"
    for server in live.values():
        seed_folder(server, rel, n, 4096, fmt="f%06d")
        workloads.refresh(server)
    for conns in axes.conns:
        for _ in range(rounds):
            for name, server in live.items():
                proctree.quiet_gate(0)
                try:
                    res = wrk_point(server, "GET", rel, n, 4096, conns, plan.work)
                except run.FAILURES as exc:
                    failures.append(f"{conns} connections on {name}: {exc}")
                    continue
                rps.add(name, conns, res.req_per_s)
                p99.add(name, conns, res.stats["p99_us"] / 1000)
                run.log(f"conns {conns} {name}: {res.req_per_s:.0f} req/s")


def size_curve(
    plan: run.Plan,
    live: dict[str, RunningServer],
    axes: Axes,
    rounds: int,
    failures: list[str],
    into: list[Curve],
) -> None:
    """Up to 1 MiB: wrk, 8 connections, over many files of that size; above: curl, one file."""
    get = Curve("size_get_mib_s", "artifact size (bytes)", "GET MiB/s", log_y=True)
    put = Curve("size_put_mib_s", "artifact size (bytes)", "PUT MiB/s", log_y=True)
    into += [get, put]
    for size in axes.sizes:
        count = max(4, min(axes.requests, (64 * MiB) // size)) if size <= MiB else 1
        rel = f"scale/size-{size}"
        payload = workloads.make_payload(plan.work, size) if size > MiB else None
        for _ in range(rounds):
            for name, server in live.items():
                proctree.quiet_gate(0)
                try:
                    got, sent = _size_round(server, rel, size, count, payload, plan.work)
                except run.FAILURES as exc:
                    failures.append(f"size {size} on {name}: {exc}")
                    continue
                get.add(name, size, got)
                if sent is not None:
                    put.add(name, size, sent)
                run.log(f"size {size} {name}: GET {got:.1f} MiB/s")


def _size_round(
    server: RunningServer,
    rel: str,
    size: int,
    count: int,
    payload: workloads.Payload | None,
    work: Path,
) -> tuple[float, float | None]:
    spec = server.spec
    if payload is None:  # many files of this size, through wrk
        sent = None
        if not spec.api.read_only:
            folder = f"{rel}-{time.monotonic_ns()}"
            workloads.make_folders(spec, folder)
            res = wrk_point(server, "PUT", folder, count, size, 8, work)
            sent = res.req_per_s * size / MiB
            if spec.local_dest is not None:
                shutil.rmtree(spec.local_dest / folder, ignore_errors=True)
        seed_folder(server, rel, count, size, fmt="f%06d")
        workloads.refresh(server)
        res = wrk_point(server, "GET", rel, count, size, 8, work)
        return res.req_per_s * size / MiB, sent
    name = f"{rel}.bin"
    sent = None
    if spec.api.read_only:
        assert spec.local_dest is not None
        (spec.local_dest / "scale").mkdir(exist_ok=True)
        if not (spec.local_dest / name).exists():
            shutil.copyfile(payload.path, spec.local_dest / name)
        workloads.refresh(server)
    else:
        workloads.make_folders(spec, "scale")
        res = clients.curl_put(spec.artifact_url(name), payload.path)
        if res.status not in workloads.PUT_OK:
            raise workloads.VerificationError(f"PUT {name} answered {res.status}")
        sent = size / MiB / res.seconds
    got = clients.curl_get(spec.artifact_url(name), Path("/dev/null"))
    if got.status != 200 or got.nbytes != size:
        raise workloads.VerificationError(f"GET {name}: {got.status}, {got.nbytes} bytes")
    if (
        spec.local_dest is not None
        and workloads.sha256_file(spec.local_dest / name) != payload.sha256
    ):
        raise workloads.VerificationError(f"{name}: stored bytes differ (sha256)")
    return size / MiB / got.seconds, sent


CURVES = {
    "files": files_curve,
    "html": html_curve,
    "depth": depth_curve,
    "conns": conns_curve,
    "size": size_curve,
}


# ---------------------------------------------------------------------------------------------
# output


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 100 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _x(curve: Curve, x: int) -> str:
    if curve.axis.startswith("artifact size"):
        return (
            f"{x // GiB} GiB" if x >= GiB else f"{x // MiB} MiB" if x >= MiB else f"{x // KiB} KiB"
        )
    return f"{x:,}"


def curve_table(curve: Curve) -> str:
    names = list(curve.values)
    xs = sorted({x for per in curve.values.values() for x in per})
    head = [curve.axis, *names]
    if "artgw" in names:
        head += [f"artgw/{n}" for n in names if n != "artgw"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for x in xs:
        cells = [_x(curve, x), *(_fmt(curve.median(n, x)) for n in names)]
        if "artgw" in names:
            mine = curve.median("artgw", x)
            for n in names:
                if n == "artgw":
                    continue
                theirs = curve.median(n, x)
                cells.append(f"{mine / theirs:.2f}x" if mine and theirs else "-")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def render(
    curves: list[Curve],
    args: argparse.Namespace,
    info: dict[str, str],
    background: float,
    plan: run.Plan,
    failures: list[str],
) -> str:
    parts = [f"# artgw scale curves, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "", "## Machine", ""]
    parts += [f"- {k}: {v}" for k, v in info.items()]
    parts += ["", "## Command", "", "```", " ".join([sys.executable, *sys.argv]), "```", ""]
    parts += [
        f"- other processes used {100 * background:.0f}% of all cores in the 2 s before the run",
        *(f"- {name} wrote to a {note}" for name, note in plan.fs_notes.items()),
        "- each point: the median over the rounds; rounds interleave the servers",
        "",
    ]
    for curve in curves:
        parts += [f"## {curve.metric}", "", curve_table(curve), ""]
    if failures:
        parts += ["## FAILURES", "", *(f"- {f}" for f in failures), ""]
    return "\n".join(parts)


def plot(curves: list[Curve], where: Path, suffix: str = "") -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    where.mkdir(parents=True, exist_ok=True)
    written = []
    for curve in curves:
        if not curve.values:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
        for name, per in curve.values.items():
            xs = sorted(per)
            ax.plot(xs, [statistics.median(per[x]) for x in xs], marker="o", label=name)
        if curve.log_x:
            ax.set_xscale("log")
        if curve.log_y or curve.name.startswith(("list_ms", "list_cpu", "html_ms", "html_cpu")):
            ax.set_yscale("log")
        ax.set_xlabel(curve.axis)
        ax.set_ylabel(curve.metric)
        ax.set_title(curve.metric)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = where / f"{curve.name}{suffix}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
