#!/usr/bin/env python3
"""Benchmark artgw's tracking API against `mlflow server` side by side (see README.md).

python benchmarks/tracking.py --quick                  # smoke: small sizes, 1 round, ~1 minute
python benchmarks/tracking.py --rounds 3               # full sizes, 3 interleaved rounds
python benchmarks/tracking.py --servers mlflow,artgw,before \\
    --cmd 'before=python -m cli.main serve --backend-store-uri {store} ...' \\
    --env before:PYTHONPATH=/tmp/artgw-before         # another build of artgw beside them

Workloads, each run in every round on each server in turn (A B A B ...), while the others idle:
- run_cycle: runs/create + runs/log-batch of 100 metrics + runs/get, from 4 client threads;
- search: runs/search with a filter (a metric and a param) over 10,000 runs, 100 per page;
- history: metrics/get-history of a metric with 10,000 points.
Every answer is checked (counts, values); a wrong one fails the run. Each server gets a new
SQLite store in its own scratch folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import proctree, servers
from harness.servers import HOST, RunningServer, ServerSpec

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
API = "/api/2.0/mlflow"
DEFAULT_CMDS = {
    "mlflow": "{mlflow_venv}/bin/mlflow server --backend-store-uri {store} "
    "--default-artifact-root {dest} --host {host} --port {port}",
    "artgw": "{artgw_bin} serve --backend-store-uri {store} --artifacts-destination {dest} "
    "--host {host} --port {port} --workers {workers}",
}
DEFAULT_ENV = {"mlflow": {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}}


@dataclass(frozen=True)
class Sizes:
    cycles: int  # run_cycle: create + log-batch + get, per round
    runs: int  # search: runs in the searched experiment
    searches: int
    points: int  # history: points of the metric
    histories: int
    threads: int = 4


QUICK = Sizes(cycles=40, runs=1000, searches=20, points=2000, histories=10)
FULL = Sizes(cycles=300, runs=10_000, searches=100, points=10_000, histories=40)


class CheckError(RuntimeError):
    pass


# -- HTTP ---------------------------------------------------------------------------------------


class Client:
    """One keep-alive connection per thread, JSON in and out; any non-200 is a CheckError."""

    def __init__(self, base_url: str) -> None:
        self.host, _, port = base_url.removeprefix("http://").partition(":")
        self.port = int(port)
        self.local = threading.local()

    def call(self, method: str, endpoint: str, body: dict[str, Any] | None = None) -> Any:
        """One request; once again on a new connection when the server had closed the idle one
        (uvicorn does after 5 s)."""
        try:
            return self._call(method, endpoint, body)
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            self._conn().close()
            self.local.conn = None
            return self._call(method, endpoint, body)

    def _call(self, method: str, endpoint: str, body: dict[str, Any] | None) -> Any:
        conn = self._conn()
        if method == "GET":
            query = "&".join(f"{k}={v}" for k, v in (body or {}).items())
            conn.request("GET", f"{API}/{endpoint}?{query}")
        else:
            headers = {"Content-Type": "application/json"}
            conn.request(method, f"{API}/{endpoint}", json.dumps(body), headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise CheckError(f"{method} {endpoint}: {response.status} {data[:300]!r}")
        return json.loads(data)

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        return conn


def fan_out(threads: int, count: int, work: Callable[[int], None]) -> float:
    """Run work(0..count-1) on `threads` threads; the wall time in seconds."""
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(count)))
    return time.perf_counter() - started


def new_experiment(client: Client, name: str) -> str:
    return str(client.call("POST", "experiments/create", {"name": name})["experiment_id"])


def new_run(client: Client, experiment_id: str) -> str:
    body = {"experiment_id": experiment_id, "start_time": int(time.time() * 1000)}
    return str(client.call("POST", "runs/create", body)["run"]["info"]["run_id"])


def batch(run_id: str, metrics: list[dict[str, Any]], params: list[dict[str, str]]) -> Any:
    return {"run_id": run_id, "metrics": metrics, "params": params, "tags": []}


# -- workloads ----------------------------------------------------------------------------------


@dataclass
class Workload:
    name: str
    unit: str
    sizes: Sizes
    state: dict[str, Any] = field(default_factory=dict)

    def prepare(self, client: Client, server: str) -> None:
        """Untimed seeding, once per server."""

    def run(self, client: Client, server: str, rnd: int) -> int:
        """One timed round; the number of operations done."""
        raise NotImplementedError


class RunCycle(Workload):
    def prepare(self, client: Client, server: str) -> None:
        self.state[server] = new_experiment(client, "cycles")

    def run(self, client: Client, server: str, rnd: int) -> int:
        experiment_id = self.state[server]

        def cycle(i: int) -> None:
            run_id = new_run(client, experiment_id)
            points = [
                {"key": f"m{k}", "value": k + i / 1000, "timestamp": 1000 + k, "step": 0}
                for k in range(100)
            ]
            client.call("POST", "runs/log-batch", batch(run_id, points, []))
            run = client.call("GET", "runs/get", {"run_id": run_id})["run"]
            metrics = run["data"].get("metrics", [])
            if len(metrics) != 100 or {m["key"] for m in metrics} != {f"m{k}" for k in range(100)}:
                raise CheckError(f"runs/get of {run_id}: {len(metrics)} metrics, not 100")

        fan_out(self.sizes.threads, self.sizes.cycles, cycle)
        return self.sizes.cycles


class Search(Workload):
    FILTER = "metrics.m > 0.5 AND params.p = 'even'"

    def prepare(self, client: Client, server: str) -> None:
        experiment_id = new_experiment(client, "searched")
        total = self.sizes.runs

        def seed(i: int) -> None:
            run_id = new_run(client, experiment_id)
            metric = {"key": "m", "value": i / total, "timestamp": 1, "step": 0}
            param = {"key": "p", "value": "even" if i % 2 == 0 else "odd"}
            client.call("POST", "runs/log-batch", batch(run_id, [metric], [param]))

        fan_out(8, total, seed)
        self.state[server] = experiment_id

    def run(self, client: Client, server: str, rnd: int) -> int:
        body = {
            "experiment_ids": [self.state[server]],
            "filter": self.FILTER,
            "max_results": 100,
        }

        def search(_i: int) -> None:
            found = client.call("POST", "runs/search", body)
            runs = found.get("runs", [])
            if len(runs) != 100 or not found.get("next_page_token"):
                raise CheckError(f"runs/search: {len(runs)} runs, and a next page: {found.keys()}")
            for run in runs:
                data = run["data"]
                params = {p["key"]: p["value"] for p in data["params"]}
                if params != {"p": "even"} or not data["metrics"][0]["value"] > 0.5:
                    raise CheckError(f"runs/search returned a run outside the filter: {data}")

        fan_out(self.sizes.threads, self.sizes.searches, search)
        return self.sizes.searches


class History(Workload):
    def prepare(self, client: Client, server: str) -> None:
        run_id = new_run(client, new_experiment(client, "history"))
        for start in range(0, self.sizes.points, 1000):
            points = [
                {"key": "loss", "value": 1 / (s + 1), "timestamp": 1000 + s, "step": s}
                for s in range(start, min(start + 1000, self.sizes.points))
            ]
            client.call("POST", "runs/log-batch", batch(run_id, points, []))
        self.state[server] = run_id

    def run(self, client: Client, server: str, rnd: int) -> int:
        query = {"run_id": self.state[server], "metric_key": "loss"}

        def history(_i: int) -> None:
            points = client.call("GET", "metrics/get-history", query).get("metrics", [])
            if len(points) != self.sizes.points or points[-1]["step"] != self.sizes.points - 1:
                raise CheckError(f"metrics/get-history: {len(points)} points")

        fan_out(2, self.sizes.histories, history)
        return self.sizes.histories


def workloads(sizes: Sizes) -> list[Workload]:
    return [
        RunCycle("run_cycle", "cycles/s", sizes),
        Search("search", "searches/s", sizes),
        History("history", "histories/s", sizes),
    ]


# -- servers, rounds, report ---------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small sizes, 1 round")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3; 1 with --quick)")
    p.add_argument("--servers", default="mlflow,artgw", help="comma list; the first is the base")
    p.add_argument("--only", help="comma list of workloads: run_cycle,search,history")
    p.add_argument("--workers", type=int, default=2, help="artgw --workers (default 2)")
    p.add_argument("--artgw-bin", default=str(REPO / ".venv/bin/artgw"))
    p.add_argument("--mlflow-venv", default=str(REPO / ".emu/mlflow-venv"))
    p.add_argument("--cmd", action="append", default=[], metavar="NAME=TEMPLATE")
    p.add_argument("--env", action="append", default=[], metavar="NAME:KEY=VALUE")
    p.add_argument("--workdir", default=str(REPO / ".emu/bench-tracking"))
    p.add_argument("--quiet-each", type=float, default=0, metavar="SECONDS")
    p.add_argument("--start-timeout", type=float, default=600, metavar="SECONDS")
    for name in ("cycles", "runs", "searches", "points", "histories"):
        p.add_argument(f"--{name}", type=int, help=f"override the size {name!r} (see Sizes)")
    p.add_argument("--out", help="markdown report path (default benchmarks/out/<time>-tracking.md)")
    return p.parse_args(argv)


def server_specs(args: argparse.Namespace, work: Path) -> list[ServerSpec]:
    cmds = dict(DEFAULT_CMDS)
    cmds.update(item.split("=", 1) for item in args.cmd)
    env: dict[str, dict[str, str]] = {k: dict(v) for k, v in DEFAULT_ENV.items()}
    for item in args.env:
        name, _, pair = item.partition(":")
        key, _, value = pair.partition("=")
        env.setdefault(name, {})[key] = value
    return [_spec(args, work, name, cmds[name], env.get(name, {})) for name in _names(args)]


def _names(args: argparse.Namespace) -> list[str]:
    return [name.strip() for name in args.servers.split(",") if name.strip()]


def _spec(
    args: argparse.Namespace, work: Path, name: str, template: str, env: dict[str, str]
) -> ServerSpec:
    port, cwd = servers.free_port(), work / f"cwd-{name}"
    shutil.rmtree(cwd, ignore_errors=True)
    (cwd / "artifacts").mkdir(parents=True)
    argv = servers.render_argv(
        template,
        store=f"sqlite:///{cwd / 'tracking.db'}",
        dest=str(cwd / "artifacts"),
        host=HOST,
        port=str(port),
        workers=str(args.workers),
        artgw_bin=str(Path(args.artgw_bin).absolute()),
        mlflow_venv=str(Path(args.mlflow_venv).absolute()),
    )
    base = f"http://{HOST}:{port}"
    return ServerSpec(name, argv, cwd, env, f"{base}/health", base, cwd / "artifacts")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(
    wanted: list[Workload], live: dict[str, RunningServer], rounds: int, quiet: float
) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """workload -> server -> [(operations/s, server CPU-s per operation)] per round."""
    clients = {name: Client(server.spec.base_url) for name, server in live.items()}
    results: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for workload in wanted:
        with ThreadPoolExecutor(len(live)) as pool:  # untimed: every server at once
            list(pool.map(_seed, [workload] * len(live), clients.values(), live))
        for rnd in range(1, rounds + 1):
            for name, server in live.items():
                proctree.quiet_gate(quiet)
                cpu, started = server.cpu_seconds(), time.perf_counter()
                done = workload.run(clients[name], name, rnd)
                wall, used = time.perf_counter() - started, server.cpu_seconds() - cpu
                results.setdefault(workload.name, {}).setdefault(name, []).append(
                    (done / wall, used / done)
                )
                log(f"{workload.name} r{rnd} {name}: {done / wall:.1f} {workload.unit}")
    return results


def _seed(workload: Workload, client: Client, name: str) -> None:
    started = time.perf_counter()
    workload.prepare(client, name)
    log(f"{workload.name}: seeded {name} in {time.perf_counter() - started:.1f} s")


def render(
    results: dict[str, dict[str, list[tuple[float, float]]]],
    wanted: list[Workload],
    names: list[str],
    command: list[str],
    argv: dict[str, list[str]],
) -> str:
    base = names[0]
    head = " | ".join(f"{n} median (min–max)" for n in names)
    ratios = " | ".join(f"{n}/{base}" for n in names[1:])
    lines = [f"| workload | metric | {head} | {ratios} |", "|" + "---|" * (2 + 2 * len(names) - 1)]
    for workload in wanted:
        found = results.get(workload.name, {})
        for index, label in ((0, workload.unit), (1, "server CPU-ms per op")):
            scale = 1 if index == 0 else 1000
            cells = [_cell([r[index] * scale for r in found.get(n, [])]) for n in names]
            paired = [_ratio(found, base, n, index) for n in names[1:]]
            lines.append(f"| {workload.name} | {label} | {' | '.join(cells + paired)} |")
    lines += ["", f"Command: `{' '.join(command)}`", ""]
    lines += [f"- {name}: `{' '.join(words)}`" for name, words in argv.items()]
    return "\n".join(lines)


def _cell(values: list[float]) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def _ratio(found: dict[str, list[tuple[float, float]]], base: str, name: str, index: int) -> str:
    """The median of per-round ratios (rounds are paired); CPU ratios are base/name."""
    pairs = list(zip(found.get(base, []), found.get(name, []), strict=False))
    if not pairs:
        return "—"
    if index == 0:
        return f"{statistics.median(b[0] and n[0] / b[0] for b, n in pairs):.2f}x"
    return f"{statistics.median(n[1] and b[1] / n[1] for b, n in pairs):.2f}x less"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    given = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(Sizes)}
    sizes = dataclasses.replace(sizes, **{k: v for k, v in given.items() if v})
    wanted = [w for w in workloads(sizes) if not args.only or w.name in args.only.split(",")]
    work = Path(args.workdir)
    live: dict[str, RunningServer] = {}
    try:
        for spec in server_specs(args, work):
            live[spec.name] = servers.start(spec, work / "logs", timeout=args.start_timeout)
            log(f"{spec.name} up in {live[spec.name].ready_s:.1f} s")
        results = measure(wanted, live, args.rounds or (1 if args.quick else 3), args.quiet_each)
    except CheckError as exc:
        log(f"FAILED: {exc}")
        return 1
    finally:
        for server in live.values():
            servers.stop(server)
    argvs = {name: server.spec.argv for name, server in live.items()}
    text = render(results, wanted, list(live), [sys.executable, *sys.argv], argvs)
    print(text)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else BENCH_DIR / "out" / f"{stamp}-tracking.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    title = f"# artgw tracking benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    out.write_text(f"{title}\n\n{text}\n")
    out.with_suffix(".json").write_text(json.dumps({"command": sys.argv, "results": results}))
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
