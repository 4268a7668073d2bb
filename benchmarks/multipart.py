#!/usr/bin/env python3
"""Multipart uploads and ranged downloads with the real mlflow client (issue 15), side by side.

python benchmarks/multipart.py                 # local and S3 (SeaweedFS), 1 GiB, 3 rounds
python benchmarks/multipart.py --size-mib 4096 # the 4 GiB file
python benchmarks/multipart.py --only local --rounds 1 --size-mib 256   # a quick look

Each variant is a server started once; every round runs each variant's `log_artifact` and then its
`download_artifacts` (fresh paths), variants interleaved (A B C A B C ...), so a noisy machine
hurts all of them alike. The client is mlflow 3.18 in a subprocess (`--client-python`), timed
around the call alone; every download is checked by sha256; the server's process-tree RSS is
sampled during each transfer (peak minus the idle RSS before it). Each transfer starts after a
sync(2): the kernel's writeback of the earlier rounds' gigabytes would otherwise land on
whichever transfer runs then (dirty pages past the background threshold throttle every writer).
The report gives medians and the ratios of the medians, to stdout and to --out.

local:  artgw-parts (mpu through artgw, ranged GETs through artgw)   artgw-plain (--no-multipart)
        mlflow (mlflow server 3.18, its proxied PUT/GET)
s3:     artgw-parts (proxied parts into SeaweedFS)   mlflow-presigned (MLflow's own presigned
        multipart: parts and ranges straight between client and SeaweedFS)   mlflow-proxied
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness import proctree, servers, stores
from harness.servers import HOST, RunningServer, ServerSpec

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
MiB = 1 << 20
BUCKET = "artgw-mpu"
PARTS_ON = {
    "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true",
    "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(MiB),  # so 1 GiB uses parts
    "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "true",
}
PARTS_OFF = {
    "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false",
    "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
}
CLIENT = textwrap.dedent(
    """
    import json, sys, time
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    action, uri, local, remote = sys.argv[1:]
    repo = get_artifact_repository(uri)
    start, cpu = time.perf_counter(), time.process_time()
    if action == "upload":
        repo.log_artifact(local, remote)
    else:
        repo.download_artifacts(remote, local)
    print(json.dumps({"seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu}))
    """
)


@dataclass
class Variant:
    name: str
    argv: str
    server_env: dict[str, str]
    client_env: dict[str, str]


@dataclass
class Sample:
    seconds: float
    rss_growth: int
    cpu: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """CPU seconds during the call: the client's, the server's process tree, the S3 store's."""
    verified: bool = True


@dataclass
class Results:
    samples: dict[tuple[str, str, str], list[Sample]] = field(default_factory=dict)

    def add(self, mode: str, variant: str, op: str, sample: Sample) -> None:
        self.samples.setdefault((mode, variant, op), []).append(sample)

    def median(self, mode: str, variant: str, op: str) -> float:
        return statistics.median(s.seconds for s in self.samples[(mode, variant, op)])

    def median_cpu(self, mode: str, variant: str, op: str) -> str:
        samples = self.samples[(mode, variant, op)]
        return " / ".join(f"{statistics.median(s.cpu[i] for s in samples):.1f}" for i in range(3))


def variants(mode: str, args: argparse.Namespace) -> list[Variant]:
    artgw = f"{args.artgw_bin} serve --artifacts-only --host {{host}} --port {{port}} --workers 2"
    mlflow = (
        f"{args.mlflow_bin} server --artifacts-only --host {{host}} --port {{port}} "
        "--artifacts-destination {dest}"
    )
    no_jobs = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    every = all_variants(mode, args, artgw, mlflow, no_jobs)
    chosen = [v for v in every if v.name in args.variants]
    if args.before:  # the same parts variant from another checkout's sources, right after it
        before = Variant(
            "artgw-before",
            f"{args.client_python} -c 'from cli.main import main; main()' "
            + artgw.split(" ", 1)[1]
            + " --artifacts-destination {dest} --multipart-downloads",
            {"PYTHONPATH": args.before},
            PARTS_ON,
        )
        chosen.insert(1 if chosen and chosen[0].name == "artgw-parts" else 0, before)
    return chosen


def all_variants(
    mode: str, args: argparse.Namespace, artgw: str, mlflow: str, no_jobs: dict[str, str]
) -> list[Variant]:
    if mode == "local":
        return [
            Variant("artgw-parts", f"{artgw} --artifacts-destination {{dest}} "
                    "--multipart-downloads", {}, PARTS_ON),
            Variant("artgw-plain", f"{artgw} --artifacts-destination {{dest}} --no-multipart",
                    {}, PARTS_OFF),
            Variant("mlflow", mlflow, no_jobs, PARTS_OFF),
        ]  # fmt: skip
    presigned = {**no_jobs, "MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "true"}
    return [
        Variant("artgw-parts", f"{artgw} --artifacts-destination {{dest}} --multipart-downloads",
                {}, PARTS_ON),
        Variant("mlflow-presigned", mlflow, presigned, PARTS_ON),
        Variant("mlflow-proxied", mlflow, no_jobs, PARTS_OFF),
    ]  # fmt: skip


def start_variant(
    variant: Variant, mode: str, work: Path, store: stores.ObjectStore | None
) -> RunningServer:
    port = servers.free_port()
    if store is None:
        dest = work / "dest" / variant.name
        dest.mkdir(parents=True, exist_ok=True)
        env = dict(variant.server_env)
    else:
        dest = f"s3://{BUCKET}/{variant.name}"  # type: ignore[assignment]
        env = {**stores.s3_env(store.endpoint), **variant.server_env}
    argv = servers.render_argv(variant.argv, host=HOST, port=str(port), dest=str(dest))
    spec = ServerSpec(
        name=f"{mode}-{variant.name}",
        argv=argv,
        cwd=work / "cwd" / variant.name,
        env=env,
        health_url=f"http://{HOST}:{port}/health",
        base_url=f"http://{HOST}:{port}",
        local_dest=dest if store is None else None,
    )
    return servers.start(spec, work / "logs", timeout=600)


def run_client(
    args: argparse.Namespace,
    server: RunningServer,
    store: stores.ObjectStore | None,
    variant: Variant,
    action: str,
    *rest: str,
) -> Sample:
    uri = f"{server.spec.base_url}/api/2.0/mlflow-artifacts/artifacts/bench"
    env = {**os.environ, "NO_PROXY": "127.0.0.1", **variant.client_env}
    env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.sync()  # the earlier transfers' files written back now, not during this one
    before = server.rss_bytes()
    server_cpu, store_cpu = server.cpu_seconds(), store.server.cpu_seconds() if store else 0.0
    with proctree.PeakRssSampler(server.pid, server.pid) as rss:
        out = subprocess.run(
            [args.client_python, "-c", CLIENT, action, uri, *rest],
            capture_output=True, text=True, env=env, timeout=args.timeout,
        )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"{variant.name} {action} failed:\n{out.stderr[-3000:]}")
    timed = json.loads(out.stdout.strip().splitlines()[-1])
    cpu = (
        timed["cpu"],
        server.cpu_seconds() - server_cpu,
        store.server.cpu_seconds() - store_cpu if store else 0.0,
    )
    return Sample(timed["seconds"], max(0, rss.peak - before), cpu)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(8 * MiB):
            digest.update(chunk)
    return digest.hexdigest()


def payload(work: Path, size: int) -> tuple[Path, str]:
    path = work / f"payload-{size}" / "model.bin"
    if not path.exists() or path.stat().st_size != size:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            for left in range(size, 0, -64 * MiB):
                f.write(os.urandom(min(left, 64 * MiB)))
    return path, sha256(path)


def run_mode(mode: str, args: argparse.Namespace, results: Results, work: Path) -> None:
    source, digest = payload(args.workdir, args.size_mib * MiB)
    store = None
    if mode == "s3":
        store = stores.start("seaweedfs", args.weed_bin, BUCKET, work / "s3")
    started = []
    try:
        chosen = variants(mode, args)
        for variant in chosen:
            started.append((variant, start_variant(variant, mode, work, store)))
        for round_no in range(args.rounds):
            for variant, server in started:
                remote = f"r{round_no}"
                up = run_client(args, server, store, variant, "upload", str(source), remote)
                results.add(mode, variant.name, "upload", up)
                back = work / "back" / variant.name / remote
                shutil.rmtree(back, ignore_errors=True)
                back.mkdir(parents=True)
                down = run_client(
                    args, server, store, variant, "download", str(back), f"{remote}/model.bin"
                )
                down.verified = sha256(back / remote / "model.bin") == digest
                results.add(mode, variant.name, "download", down)
                shutil.rmtree(back)
                print(f"{mode} round {round_no + 1} {variant.name}: up {up.seconds:.2f}s "
                      f"(cpu {'/'.join(f'{c:.1f}' for c in up.cpu)}) "
                      f"down {down.seconds:.2f}s (cpu {'/'.join(f'{c:.1f}' for c in down.cpu)}) "
                      f"verified={down.verified} "
                      f"rss +{up.rss_growth / MiB:.0f}/+{down.rss_growth / MiB:.0f} MiB"
                      + (f" store rss {store.server.rss_bytes() / MiB:.0f} MiB" if store else ""),
                      flush=True)  # fmt: skip
                if not down.verified:
                    raise RuntimeError(f"{variant.name}: downloaded bytes differ")
    finally:
        for _, server in started:
            servers.stop(server)
        if store is not None:
            stores.stop(store)


RATIOS = {
    "local": [
        ("artgw-parts", "artgw-before"),
        ("artgw-parts", "artgw-plain"),
        ("artgw-parts", "mlflow"),
    ],
    "s3": [
        ("artgw-parts", "artgw-before"),
        ("artgw-parts", "mlflow-presigned"),
        ("artgw-parts", "mlflow-proxied"),
    ],
}


def report(results: Results, args: argparse.Namespace, modes: list[str], load: float) -> str:
    size = args.size_mib * MiB
    lines = [
        f"## Multipart through the gateway, {args.size_mib} MiB, {args.rounds} interleaved rounds",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; `{' '.join(sys.argv)}`; other load on the "
        f"machine before the run: {load:.0%} of all cores (shared machine: medians of interleaved "
        "rounds). Time is the client's call alone; MiB/s = size / median; RSS = peak growth of "
        "the server's process tree during the transfer (median); CPU s = client / server's "
        "process tree / S3 store during the call (medians).",
        "",
        "| store | server | upload s | MiB/s | RSS MiB | CPU s | download s | MiB/s | RSS MiB "
        "| CPU s | sha256 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (mode, variant, op), samples in results.samples.items():
        if op != "upload":
            continue
        down = results.samples[(mode, variant, "download")]
        up_s, down_s = (
            results.median(mode, variant, "upload"),
            results.median(mode, variant, "download"),
        )
        rss_up = statistics.median(s.rss_growth for s in samples) / MiB
        rss_down = statistics.median(s.rss_growth for s in down) / MiB
        ok = all(s.verified for s in down)
        lines.append(
            f"| {mode} | {variant} | {up_s:.2f} | {size / MiB / up_s:.0f} | {rss_up:.0f} | "
            f"{results.median_cpu(mode, variant, 'upload')} | "
            f"{down_s:.2f} | {size / MiB / down_s:.0f} | {rss_down:.0f} | "
            f"{results.median_cpu(mode, variant, 'download')} | "
            f"{'ok' if ok else 'MISMATCH'} ({len(down)}) |"
        )  # fmt: skip
    lines += [
        "",
        "| store | ratio (speed, higher is faster) | upload | download |",
        "|---|---|---|---|",
    ]
    for mode in modes:
        for a, b in RATIOS[mode]:
            if (mode, a, "upload") in results.samples and (mode, b, "upload") in results.samples:
                up_x = results.median(mode, b, "upload") / results.median(mode, a, "upload")
                down_x = results.median(mode, b, "download") / results.median(mode, a, "download")
                lines.append(f"| {mode} | {a} / {b} | {up_x:.2f}x | {down_x:.2f}x |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024; 4096)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", default="local,s3", help="local, s3 or both (default)")
    p.add_argument(
        "--variants",
        default="artgw-parts,artgw-plain,mlflow,mlflow-presigned,mlflow-proxied",
        help="which servers of each store to run (default all)",
    )
    p.add_argument(
        "--before",
        default=None,
        help="a checkout of older sources: adds artgw-before (parts, run with PYTHONPATH=TREE)",
    )
    p.add_argument("--artgw-bin", default=str(REPO / ".venv/bin/artgw"))
    p.add_argument("--mlflow-bin", default=str(REPO / ".venv/bin/mlflow"))
    p.add_argument("--client-python", default=str(REPO / ".venv/bin/python"))
    p.add_argument("--weed-bin", default=stores.default_weed(REPO) or "weed")
    p.add_argument("--workdir", type=Path, default=REPO / ".emu/bench-mpu")
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    args.variants = set(args.variants.split(","))
    modes = [m for m in args.only.split(",") if m]
    load = proctree.background_fraction()
    results = Results()
    work = args.workdir / f"run-{int(time.time())}"
    try:
        for mode in modes:
            run_mode(mode, args, results, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(results, args, modes, load)
    print(text)
    out = args.out or BENCH / "out" / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-multipart.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return 0 if all(s.verified for v in results.samples.values() for s in v) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
