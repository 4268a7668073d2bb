#!/usr/bin/env python3
"""CPU seconds of a gateway part upload (issue 15): the mlflow client's against artgw's, A/B.

python benchmarks/mpu_cpu.py                                # local, 1 GiB, 2 rounds
python benchmarks/mpu_cpu.py --store s3 --before /tmp/old  # SeaweedFS; against an older tree

One `log_artifact` of the file in the client's 10 MiB parts (mlflow 3.18, the env of
benchmarks/multipart.py) per server per round, servers interleaved. For each: the wall time of
the call, the client's CPU during it (`time.process_time()`, every thread of the client), the CPU
of the artgw process tree (user and system, from /proc) and its peak RSS growth. `--before TREE`
adds a server run from another checkout's sources (`git archive <sha> | tar -x -C TREE`, put
first on PYTHONPATH), so that a change is measured against the code before it in the same minute
of a shared machine: CPU seconds move far less with other load than wall times do.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
from harness import stores
from harness.servers import free_port

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20
BUCKET = "artgw-mpu-cpu"
CLIENT = """
import json, sys, time
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
uri, local, remote = sys.argv[1:]
repo = get_artifact_repository(uri)
start, cpu = time.perf_counter(), time.process_time()
repo.log_artifact(local, remote)
print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu}))
"""
CLIENT_ENV = {
    "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
    "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(MiB),
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "NO_PROXY": "127.0.0.1",
}


def tree_usage(pid: int) -> tuple[float, float, int]:
    """(user s, system s, RSS bytes) of a process and its children."""
    user = system = rss = 0
    for process in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        try:
            times = process.cpu_times()
            user, system = user + times.user, system + times.system
            rss += process.memory_info().rss
        except psutil.Error:
            pass
    return user, system, rss


def start_server(args: argparse.Namespace, tree: str | None, dest: str, env: dict[str, str],
                 work: Path) -> tuple[subprocess.Popen[bytes], int]:  # fmt: skip
    port = free_port()
    argv = [args.artgw_bin, "serve", "--artifacts-only", "--host", "127.0.0.1", "--port",
            str(port), "--workers", "2", "--artifacts-destination", dest]  # fmt: skip
    full_env = {**os.environ, **env, **({"PYTHONPATH": tree} if tree else {})}
    log = open(work / f"server-{port}.log", "wb")  # noqa: SIM115 - the server's for its life
    server = subprocess.Popen(argv, cwd=work, env=full_env, stdout=log, stderr=log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                return server, port
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"artgw did not start: see {log.name}")


def upload(args: argparse.Namespace, server: subprocess.Popen[bytes], port: int, source: Path,
           remote: str) -> str:  # fmt: skip
    os.sync()  # the earlier rounds' files written back now, not during this one
    user0, system0, rss0 = tree_usage(server.pid)
    peak = rss0
    uri = f"http://127.0.0.1:{port}/api/2.0/mlflow-artifacts/artifacts/cpu"
    client = subprocess.Popen(
        [args.client_python, "-c", CLIENT, uri, str(source), remote],
        env={**os.environ, **CLIENT_ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    while client.poll() is None:
        peak = max(peak, tree_usage(server.pid)[2])
        time.sleep(0.02)
    out, err = client.communicate()
    if client.returncode:
        raise RuntimeError(f"the client failed:\n{err[-2000:]}")
    user1, system1, _ = tree_usage(server.pid)
    result = json.loads(out.strip().splitlines()[-1])
    return (
        f"up {result['seconds']:.2f} s; client CPU {result['cpu']:.2f} s; server CPU "
        f"{user1 - user0 + system1 - system0:.2f} s (user {user1 - user0:.2f}, system "
        f"{system1 - system0:.2f}); server RSS +{(peak - rss0) / MiB:.0f} MiB; "
        f"load {os.getloadavg()[0]:.1f}"
    )


def payload(work: Path, size: int) -> Path:
    path = work / "payload.bin"
    with open(path, "wb") as f:
        for left in range(size, 0, -64 * MiB):
            f.write(os.urandom(min(left, 64 * MiB)))
    return path


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--store", choices=["local", "s3"], default="local")
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--before", help="a checkout of the code before (its sources on PYTHONPATH)")
    p.add_argument("--artgw-bin", default=str(REPO / ".venv/bin/artgw"))
    p.add_argument("--client-python", default=str(REPO / ".venv/bin/python"))
    p.add_argument("--weed-bin", default=stores.default_weed(REPO) or "weed")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="mpu-cpu-"))
    store = None
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        source = payload(work, args.size_mib * MiB)
        env: dict[str, str] = {}
        if args.store == "s3":
            store = stores.start("seaweedfs", args.weed_bin, BUCKET, work / "s3")
            env = stores.s3_env(store.endpoint)
        trees = {"before": args.before, "after": None} if args.before else {"artgw": None}
        for name, tree in trees.items():
            dest = f"s3://{BUCKET}/{name}" if store else str(work / "dest" / name)
            servers[name] = start_server(args, tree, dest, env, work)
        print(f"{datetime_now()} {args.store}, {args.size_mib} MiB in 10 MiB parts", flush=True)
        for round_no in range(args.rounds):
            for name, (server, port) in servers.items():
                line = upload(args, server, port, source, f"r{round_no}")
                print(f"round {round_no + 1} {name}: {line}", flush=True)
    finally:
        for server, _ in servers.values():
            server.terminate()
            server.wait(30)
        if store is not None:
            stores.stop(store)
        shutil.rmtree(work, ignore_errors=True)
    return 0


def datetime_now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
