"""The workloads. Each round returns a flat dict of metrics; any failed check raises."""

from __future__ import annotations

import hashlib
import os
import random
import re
import resource
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import clients, peers, proctree, servers
from .http import KeepAlive, http_request
from .servers import RunningServer, ServerSpec

MiB = 1024 * 1024
GiB = 1024 * MiB
MB = 1_000_000


class VerificationError(RuntimeError):
    pass


class Skip(RuntimeError):
    """The workload does not apply to this server's destination."""


@dataclass(frozen=True)
class Sizes:
    big_bytes: int
    small_count: int
    list_entries: int
    list_reps: int
    settle_s: float
    small_size: int = 4096
    connections: int = 32
    body_samples: int = 20


QUICK = Sizes(big_bytes=64 * MiB, small_count=200, list_entries=1000, list_reps=5, settle_s=1.0)
FULL = Sizes(big_bytes=GiB, small_count=2000, list_entries=10_000, list_reps=20, settle_s=3.0)


@dataclass(frozen=True)
class Payload:
    path: Path
    size: int
    sha256: str


@dataclass
class ObjectStore:
    """The S3 server (moto_server or SeaweedFS) that both gateways use as their destination."""

    endpoint: str
    bucket: str
    server: RunningServer
    kind: str = "moto"
    curl_auth: tuple[str, ...] = ()  # curl arguments that sign requests (SeaweedFS checks SigV4)
    grpc_ports: list[int] = field(default_factory=list)

    def object_url(self, spec: ServerSpec, rel: str) -> str:
        return f"{self.endpoint}/{self.bucket}/{spec.name}/{rel}"


@dataclass
class Context:
    work: Path
    sizes: Sizes
    payload: Payload | None
    store: ObjectStore | None
    make_spec: Callable[[str, str], ServerSpec]  # (server name, instance tag) -> fresh spec
    rounds: int = 1
    quiet_each: float = 0.0  # wait up to this long for a quiet machine before each operation
    download_dir: Path | None = None  # where GETs land before their sha256 check
    first_start: dict[str, dict[str, float]] = field(default_factory=dict)  # main instances
    seeded: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A goal for the subject server (artgw): absolute, or a paired ratio subject/peer."""

    kind: str  # "ratio>=", "ratio<=", "abs<="
    value: float
    peer: str = "mlflow"  # the server a ratio is taken against (unused for abs<=)

    def text(self) -> str:
        if self.kind == "ratio>=":
            return f">= {self.value:g}x {self.peer}"
        if self.kind == "ratio<=":
            ratio = f"1/{1 / self.value:g}" if self.value < 1 else f"{self.value:g}x"
            return f"<= {ratio} {self.peer}"
        return f"<= {self.value:g}"

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        if self.kind == "abs<=":
            return None if value is None else value <= self.value
        if ratio is None:
            return None
        return ratio >= self.value if self.kind == "ratio>=" else ratio <= self.value


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    digits: int = 1
    targets: tuple[Target, ...] = ()
    client: bool = False  # shown in the load-tool table instead of the main one
    higher_is_better: bool = True  # for the summary's "ahead" mark


def machine_table_metrics() -> list[Metric]:
    return [
        Metric("machine_busy_pct", "machine busy % (all cores = 100)", 0, client=True),
        Metric("irq_pct", "of which irq+softirq % (loopback traffic)", 0, client=True),
        Metric("other_pct", "other processes' CPU % (not server/tool/harness)", 0, client=True),
    ]


def client_metrics() -> list[Metric]:
    return [
        Metric("client_cpu_s", "load tool CPU-s", 2, client=True),
        Metric("client_cpu_pct", "load tool CPU % of one core", 0, client=True),
        *machine_table_metrics(),
    ]


# ---------------------------------------------------------------------------------------------
# helpers


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def make_payload(work: Path, size: int) -> Payload:
    """A random file of `size` bytes, reused across runs (its sha256 is cached beside it)."""
    path = work / f"payload-{size}.bin"
    sha_path = path.with_suffix(".sha256")
    if path.exists() and sha_path.exists() and path.stat().st_size == size:
        return Payload(path, size, sha_path.read_text().strip())
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * MiB))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    sha_path.write_text(h.hexdigest())
    return Payload(path, size, h.hexdigest())


def stored_sha256(ctx: Context, spec: ServerSpec, rel: str) -> str:
    """Hash what landed in the destination, read around the server (disk or the S3 emulator)."""
    if spec.local_dest is not None:
        path = spec.local_dest / rel
        if not path.is_file():
            raise VerificationError(f"{rel} is missing from {spec.local_dest}")
        return sha256_file(path)
    if ctx.store is None:
        raise VerificationError(f"cannot read {spec.name}'s destination directly")
    tmp = ctx.work / f"verify-{spec.name}.bin"
    try:
        res = clients.curl_get(ctx.store.object_url(spec, rel), tmp, extra=ctx.store.curl_auth)
        if res.status != 200:
            raise VerificationError(f"{rel}: {ctx.store.kind} GET answered {res.status}")
        return sha256_file(tmp)
    finally:
        tmp.unlink(missing_ok=True)


def delete_stored(ctx: Context, spec: ServerSpec, rel: str) -> None:
    if spec.local_dest is not None:
        (spec.local_dest / rel).unlink(missing_ok=True)
    elif ctx.store is not None:
        clients.curl_request("DELETE", ctx.store.object_url(spec, rel), ctx.store.curl_auth)


def count_files(spec: ServerSpec, rel_dir: str) -> int:
    if spec.local_dest is not None:
        folder = spec.local_dest / rel_dir
        return sum(1 for p in folder.iterdir() if p.is_file()) if folder.is_dir() else 0
    status, _, body = http_request("GET", spec.list_url(rel_dir))
    if status != 200:
        raise VerificationError(f"list {rel_dir} answered {status}")
    return len(spec.api.file_names(body))


def read_small(spec: ServerSpec, rel: str) -> bytes:
    if spec.local_dest is not None:
        return (spec.local_dest / rel).read_bytes()
    status, _, body = http_request("GET", spec.artifact_url(rel))
    if status != 200:
        raise VerificationError(f"GET {rel} answered {status}")
    return body


PUT_OK = (200, 201, 204)
"""MLflow's API answers a PUT with 200; WebDAV servers with 201 Created (204 on overwrite)."""


def writable(server: RunningServer) -> None:
    if server.spec.api.read_only:
        raise Skip(f"{server.spec.api.kind}: no uploads")


def make_folders(spec: ServerSpec, rel_dir: str) -> None:
    """WebDAV refuses a PUT into a missing folder: MKCOL each level first (untimed)."""
    if not spec.api.needs_folders:
        return
    parts = rel_dir.split("/")
    for i in range(1, len(parts) + 1):
        url = spec.artifact_url("/".join(parts[:i]) + "/")
        status = http_request("MKCOL", url)[0]
        if status not in (201, 405):  # 405: it exists
            raise VerificationError(f"MKCOL {url} answered {status}")


def refresh(server: RunningServer) -> None:
    """After files were written to disk around the server: rclone's VFS caches folder listings
    (5 minutes by default); its remote control's vfs/forget drops them (SIGHUP would end
    `rclone serve` 1.60)."""
    if server.spec.control_url:
        status = http_request("POST", f"{server.spec.control_url}/vfs/forget")[0]
        if status != 200:
            raise VerificationError(f"rclone vfs/forget answered {status}")


def seed_small_on_disk(ctx: Context, spec: ServerSpec, rel_dir: str) -> None:
    if spec.local_dest is None:
        raise Skip("seeding on disk needs a local destination")
    folder = spec.local_dest / rel_dir
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, ctx.sizes.small_count + 1):
        (folder / clients.small_name(i)).write_bytes(clients.small_body(i, ctx.sizes.small_size))


class Probe:
    """Server CPU, machine CPU and (optionally) peak RSS around one measured operation."""

    def __init__(self, server: RunningServer, store: ObjectStore | None, sample_rss: bool):
        self.server, self.store, self.sample_rss = server, store, sample_rss
        self.sampler: proctree.PeakRssSampler | None = None

    def __enter__(self) -> Probe:
        self.rss0 = self.server.rss_bytes()
        self.cpu0 = self.server.cpu_seconds()
        self.store_cpu0 = self.store.server.cpu_seconds() if self.store else 0.0
        self.machine0 = proctree.MachineCpu.read()
        self.self0 = _self_cpu()
        if self.sample_rss:
            self.sampler = proctree.PeakRssSampler(self.server.pid, self.server.pid)
            self.sampler.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.sampler:
            self.sampler.__exit__(*exc)
        self.machine = proctree.MachineCpu.read().since(self.machine0)
        self.self_cpu = _self_cpu() - self.self0
        self.cpu = self.server.cpu_seconds() - self.cpu0
        self.store_cpu = (self.store.server.cpu_seconds() - self.store_cpu0) if self.store else 0.0
        self.rss1 = self.server.rss_bytes()
        self.peak = max(self.sampler.peak if self.sampler else 0, self.rss1)


def _self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def machine_metrics(probe: Probe, tool_cpu_s: float) -> dict[str, float]:
    """Whole-machine load, and the CPU of processes that are neither server, tool nor harness."""
    m = probe.machine
    other = m.procs_s - probe.cpu - probe.store_cpu - tool_cpu_s - probe.self_cpu
    return {
        "machine_busy_pct": 100 * m.busy_fraction,
        "irq_pct": 100 * m.irq_s / m.total_s if m.total_s else 0.0,
        "other_pct": max(0.0, 100 * other / m.total_s) if m.total_s else 0.0,
    }


def tool_metrics(tool: clients.ToolRun, probe: Probe) -> dict[str, float]:
    return {
        "client_cpu_s": tool.cpu_s,
        "client_cpu_pct": 100 * tool.cpu_s / tool.wall_s if tool.wall_s else 0.0,
        **machine_metrics(probe, tool.cpu_s),
    }


# ---------------------------------------------------------------------------------------------
# workloads


class Workload:
    name = ""
    metrics: list[Metric] = []  # noqa: RUF012 - overridden per class
    max_rounds = 0  # 0: as many as --rounds
    check = ""  # what each round verifies (the report's Verification table)

    def prepare(self, ctx: Context, server: RunningServer) -> None:
        """Untimed set-up before the first round (seeding data)."""

    def run(self, ctx: Context, server: RunningServer, rnd: int) -> dict[str, float]:
        raise NotImplementedError


def big_metrics(put: bool, s3: bool) -> list[Metric]:
    speed = Target("ratio>=", (2 if s3 else 3) if put else (2 if s3 else 6))
    speed_targets = (speed,) if s3 else (speed, Target("ratio>=", 1, "rclone"))
    cpu_target = () if s3 else (Target("abs<=", 1.5 if put else 0.4),)
    return [
        Metric("mib_s", "MiB/s (curl)", 1, speed_targets),
        Metric("seconds", "seconds", 2, higher_is_better=False),
        Metric("cpu_s_per_gib", "server CPU-s per GiB", 2, cpu_target, higher_is_better=False),
        Metric(
            "rss_growth_mb",
            "server RSS growth, peak - before (MB)",
            1,
            (Target("abs<=", 5),),
            higher_is_better=False,
        ),
        Metric("rss_peak_mb", "server RSS peak during (MB)", 0, higher_is_better=False),
        *([Metric("store_cpu_s", "S3 server CPU-s (moto/SeaweedFS)", 1)] if s3 else []),
        *client_metrics(),
    ]


def big_result(ctx: Context, probe: Probe, res: clients.CurlResult) -> dict[str, float]:
    size = ctx.payload.size if ctx.payload else 0
    out = {
        "mib_s": size / MiB / res.seconds,
        "seconds": res.seconds,
        "cpu_s_per_gib": probe.cpu / (size / GiB),
        "rss_growth_mb": (probe.peak - probe.rss0) / MB,
        "rss_peak_mb": probe.peak / MB,
        **tool_metrics(res.tool, probe),
    }
    if ctx.store:
        out["store_cpu_s"] = probe.store_cpu
    return out


class PutBig(Workload):
    def __init__(self, s3: bool) -> None:
        self.name = "put_big_s3" if s3 else "put_big"
        self.check = "HTTP 200; sha256 of the stored bytes, read around the server"
        self.metrics = big_metrics(put=True, s3=s3)

    def prepare(self, ctx: Context, server: RunningServer) -> None:
        writable(server)
        make_folders(server.spec, "big")

    def run(self, ctx: Context, server: RunningServer, rnd: int) -> dict[str, float]:
        assert ctx.payload is not None
        rel = f"big/put-r{rnd}.bin"
        with Probe(server, ctx.store, sample_rss=True) as probe:
            res = clients.curl_put(server.spec.artifact_url(rel), ctx.payload.path)
        if res.status not in PUT_OK:
            raise VerificationError(f"PUT {rel} answered {res.status}")
        if stored_sha256(ctx, server.spec, rel) != ctx.payload.sha256:
            raise VerificationError(f"PUT {rel}: stored bytes differ (sha256)")
        delete_stored(ctx, server.spec, rel)
        return big_result(ctx, probe, res)


class GetBig(Workload):
    SEED = "big/seed.bin"

    def __init__(self, s3: bool) -> None:
        self.name = "get_big_s3" if s3 else "get_big"
        self.check = "HTTP 200 and byte count; sha256 of a second, untimed download"
        self.metrics = big_metrics(put=False, s3=s3)

    def prepare(self, ctx: Context, server: RunningServer) -> None:
        assert ctx.payload is not None
        if server.spec.api.read_only and server.spec.local_dest is not None:
            (server.spec.local_dest / "big").mkdir(exist_ok=True)
            shutil.copyfile(ctx.payload.path, server.spec.local_dest / self.SEED)
            refresh(server)
            return
        make_folders(server.spec, "big")
        res = clients.curl_put(server.spec.artifact_url(self.SEED), ctx.payload.path)
        if (
            res.status not in PUT_OK
            or stored_sha256(ctx, server.spec, self.SEED) != ctx.payload.sha256
        ):
            raise VerificationError(f"seeding {self.SEED} failed (status {res.status})")

    def run(self, ctx: Context, server: RunningServer, rnd: int) -> dict[str, float]:
        """The timed GET goes to /dev/null: on 2 cores, writing 1 GiB to a file costs the client
        about 0.5 CPU-s more and caps a fast server. Its byte count is checked, and an untimed
        second GET of the same object is checked with sha256."""
        assert ctx.payload is not None
        url = server.spec.artifact_url(self.SEED)
        with Probe(server, ctx.store, sample_rss=True) as probe:
            res = clients.curl_get(url, Path("/dev/null"))
        if res.status != 200 or res.nbytes != ctx.payload.size:
            raise VerificationError(f"GET {self.SEED}: status {res.status}, {res.nbytes} bytes")
        dst = (ctx.download_dir or ctx.work) / f"artgw-bench-download-{server.spec.name}.bin"
        try:
            check = clients.curl_get(url, dst)
            if check.status != 200 or sha256_file(dst) != ctx.payload.sha256:
                raise VerificationError(f"GET {self.SEED}: downloaded bytes differ (sha256)")
        finally:
            dst.unlink(missing_ok=True)
        return big_result(ctx, probe, res)


def small_metrics(put: bool) -> list[Metric]:
    speed = [Target("ratio>=", 10 if put else 20), Target("ratio>=", 1.2, "rclone")]
    speed += [] if put else [Target("ratio>=", 0.5, "nginx")]
    p99 = (Target("ratio<=", 0.2 if put else 0.1), Target("ratio<=", 1, "rclone"))
    return [
        Metric("req_s", "req/s (wrk)", 0, tuple(speed)),
        Metric("p99_ms", "p99 latency (ms)", 2, p99, higher_is_better=False),
        Metric("p50_ms", "p50 latency (ms)", 2, higher_is_better=False),
        Metric("max_ms", "max latency (ms)", 1, higher_is_better=False),
        Metric("cpu_ms_per_req", "server CPU-ms per request", 3, higher_is_better=False),
        *client_metrics(),
    ]


def run_small(
    ctx: Context, server: RunningServer, method: str, rel_dir: str, tag: str
) -> tuple[clients.WrkResult, Probe]:
    sizes = ctx.sizes
    script = clients.write_lua(
        ctx.work / f"{tag}-{server.spec.name}.lua",
        method,
        server.spec.api.file_path(rel_dir) + "/",
        sizes.small_count,
        sizes.small_size,
    )
    max_s = max(60, sizes.small_count // 10)
    with Probe(server, ctx.store, sample_rss=False) as probe:
        res = clients.run_wrk(server.spec.base_url, script, sizes.connections, max_s)
    if res.errors or res.stats["requests"] != sizes.small_count:
        raise VerificationError(f"wrk {method} {rel_dir}: {res.stats}")
    return res, probe


def small_result(res: clients.WrkResult, probe: Probe) -> dict[str, float]:
    return {
        "req_s": res.req_per_s,
        "p99_ms": res.stats["p99_us"] / 1000,
        "p50_ms": res.stats["p50_us"] / 1000,
        "max_ms": res.stats["max_us"] / 1000,
        "cpu_ms_per_req": 1000 * probe.cpu / res.stats["requests"],
        "requests": res.stats["requests"],
        **tool_metrics(res.tool, probe),
    }


def verify_small_dir(ctx: Context, spec: ServerSpec, rel_dir: str) -> None:
    """Exactly N files, and a sample of bodies byte for byte."""
    want = ctx.sizes.small_count
    got = count_files(spec, rel_dir)
    if got != want:
        raise VerificationError(f"{rel_dir}: {got} files, expected {want}")
    rng = random.Random(rel_dir)
    picks = {1, want, *rng.sample(range(1, want + 1), min(ctx.sizes.body_samples, want))}
    for i in sorted(picks):
        rel = f"{rel_dir}/{clients.small_name(i)}"
        if read_small(spec, rel) != clients.small_body(i, ctx.sizes.small_size):
            raise VerificationError(f"{rel}: body differs")


class PutSmall(Workload):
    name = "put_small"
    check = "every response 200; exactly N files stored; sampled bodies byte for byte"
    metrics = small_metrics(put=True)

    def prepare(self, ctx: Context, server: RunningServer) -> None:
        writable(server)

    def run(self, ctx: Context, server: RunningServer, rnd: int) -> dict[str, float]:
        rel_dir = f"small/r{rnd}"
        make_folders(server.spec, rel_dir)
        res, probe = run_small(ctx, server, "PUT", rel_dir, f"put-r{rnd}")
        verify_small_dir(ctx, server.spec, rel_dir)
        ctx.seeded[("small", server.spec.name)] = rel_dir
        return small_result(res, probe)


class GetSmall(Workload):
    name = "get_small"
    check = "every response 200 with the expected size and index prefix"
    metrics = small_metrics(put=False)

    def prepare(self, ctx: Context, server: RunningServer) -> None:
        if ("small", server.spec.name) in ctx.seeded:
            return
        if server.spec.api.read_only:
            seed_small_on_disk(ctx, server.spec, "small/seed")
            refresh(server)
        else:
            make_folders(server.spec, "small/seed")
            run_small(ctx, server, "PUT", "small/seed", "seed")
            verify_small_dir(ctx, server.spec, "small/seed")
        ctx.seeded[("small", server.spec.name)] = "small/seed"

    def run(self, ctx: Context, server: RunningServer, rnd: int) -> dict[str, float]:
        rel_dir = ctx.seeded[("small", server.spec.name)]
        res, probe = run_small(ctx, server, "GET", rel_dir, f"get-r{rnd}")
        return small_result(res, probe)


class ListDir(Workload):
    """One folder of N files written straight to the destination disk, listed over and over on
    one keep-alive connection: MLflow's JSON for artgw and mlflow, PROPFIND for rclone's WebDAV,
    the HTML page for `rclone serve http`, autoindex JSON for nginx."""

    name = "list"
    check = "every response 200 listing exactly the expected names"
    REL = "listdir"
    html = False
    metrics = (
        Metric(
            "median_ms",
            "median ms per request (keep-alive)",
            1,
            (Target("abs<=", 30), Target("ratio<=", 1, "rclone")),
            higher_is_better=False,
        ),
        Metric("max_ms", "slowest request (ms)", 1, higher_is_better=False),
        Metric("cpu_ms_per_req", "server CPU-ms per request", 1, higher_is_better=False),
        Metric("kib", "response KiB", 0, higher_is_better=False),
        Metric("client_cpu_s", "harness client CPU-s (http.client + check)", 2, client=True),
        *machine_table_metrics(),
    )

    def prepare(self, ctx: Context, server: RunningServer) -> None:
        if self.request(server.spec) is None:
            raise Skip(f"{server.spec.api.kind}: no such listing")
        dest = server.spec.local_dest
        if dest is None:
            raise Skip("list is seeded on local disk only")
        folder = dest / self.REL
        if not folder.is_dir():
            folder.mkdir(parents=True)
            for i in range(1, ctx.sizes.list_entries + 1):
                (folder / f"entry-{i:06d}.txt").write_bytes(b"%d\n" % i)
        refresh(server)

    def request(self, spec: ServerSpec) -> peers.ListRequest | None:
        return spec.list_request(self.REL)

    def run(self, ctx: Context, server: RunningServer, rnd: int) -> dict[str, float]:
        req = self.request(server.spec)
        assert req is not None
        conn = KeepAlive(server.spec.base_url)
        try:
            self._check(server.spec, *conn.request(req.method, req.target, req.headers), ctx)
            times, size = [], 0
            with Probe(server, ctx.store, sample_rss=False) as probe:
                for _ in range(ctx.sizes.list_reps):
                    t0 = time.perf_counter()
                    status, body = conn.request(req.method, req.target, req.headers)
                    times.append(time.perf_counter() - t0)
                    size = len(body)
                    self._check(server.spec, status, body, ctx)
        finally:
            conn.close()
        return {
            "median_ms": 1000 * statistics.median(times),
            "max_ms": 1000 * max(times),
            "cpu_ms_per_req": 1000 * probe.cpu / len(times),
            "kib": size / 1024,
            "client_cpu_s": probe.self_cpu,
            **machine_metrics(probe, 0.0),
        }

    def _check(self, spec: ServerSpec, status: int, body: bytes, ctx: Context) -> None:
        if status not in (200, 207):  # 207 Multi-Status: PROPFIND
            raise VerificationError(f"list answered {status}")
        names = spec.api.list_names(body)
        want = {f"entry-{i:06d}.txt" for i in range(1, ctx.sizes.list_entries + 1)}
        if set(names) != want or len(names) != len(want):
            raise VerificationError(f"list returned {len(names)} entries, expected {len(want)}")


class ListHtml(ListDir):
    """The same folder as a browser sees it. artgw pages it (1,000 entries per page, sorted over
    the whole folder); rclone and nginx send every entry in one page."""

    name = "list_html"
    check = "every response 200; the page links the first entries in name order"
    html = True
    metrics = (
        Metric("median_ms", "median ms per page (keep-alive)", 1, higher_is_better=False),
        Metric("cpu_ms_per_req", "server CPU-ms per page", 1, higher_is_better=False),
        Metric("shown", "entries on the page", 0),
        Metric("kib", "page KiB", 0, higher_is_better=False),
        Metric("client_cpu_s", "harness client CPU-s (http.client + check)", 2, client=True),
        *machine_table_metrics(),
    )
    _ENTRY = re.compile(rb"entry-(\d{6})\.txt")

    def request(self, spec: ServerSpec) -> peers.ListRequest | None:
        return spec.api.html_request(self.REL)

    def run(self, ctx: Context, server: RunningServer, rnd: int) -> dict[str, float]:
        out = super().run(ctx, server, rnd)
        out["shown"] = self.shown
        del out["max_ms"]
        return out

    def _check(self, spec: ServerSpec, status: int, body: bytes, ctx: Context) -> None:
        if status != 200:
            raise VerificationError(f"HTML listing answered {status}")
        shown = {int(m) for m in self._ENTRY.findall(body)}
        n = ctx.sizes.list_entries
        if not shown or shown != set(range(1, len(shown) + 1)) or len(shown) not in (n, 1000):
            raise VerificationError(f"HTML listing shows {len(shown)} of {n} entries")
        self.shown = len(shown)


class Startup(Workload):
    name = "startup"
    check = "/health answered 200"
    metrics = (
        Metric(
            "ready_s",
            "start to first 200 on /health (s)",
            2,
            (Target("abs<=", 1.5),),
            higher_is_better=False,
        ),
        Metric(
            "rest_rss_mb",
            "process tree RSS at rest, sum (MB)",
            0,
            (Target("abs<=", 150),),
            higher_is_better=False,
        ),
        Metric("rest_pss_mb", "process tree PSS at rest (MB)", 0, higher_is_better=False),
        Metric("procs", "processes in the tree", 0),
        Metric("other_pct", "other processes' CPU % during start-up", 0, client=True),
    )

    def run(self, ctx: Context, server: RunningServer, rnd: int) -> dict[str, float]:
        """Round 1 is the main instance's own start; later rounds start a fresh instance (own
        port, empty destination) while `server` idles."""
        if rnd == 1 and server.spec.name in ctx.first_start:
            return ctx.first_start[server.spec.name]
        spec = ctx.make_spec(server.spec.name, f"startup-r{rnd}")
        fresh, other_pct = start_measured(spec, ctx.work / "logs")
        try:
            return {**at_rest(fresh, ctx.sizes.settle_s), "other_pct": other_pct}
        finally:
            servers.stop(fresh)


def start_measured(spec: ServerSpec, log_dir: Path) -> tuple[RunningServer, float]:
    """Start a server; also return other processes' CPU share (%) while it started."""
    machine0, self0 = proctree.MachineCpu.read(), _self_cpu()
    server = servers.start(spec, log_dir)
    delta = proctree.MachineCpu.read().since(machine0)
    other = delta.procs_s - server.cpu_seconds() - (_self_cpu() - self0)
    return server, max(0.0, 100 * other / delta.total_s) if delta.total_s else 0.0


def at_rest(server: RunningServer, settle_s: float) -> dict[str, float]:
    time.sleep(settle_s)
    return {
        "ready_s": server.ready_s,
        "rest_rss_mb": server.rss_bytes() / MB,
        "rest_pss_mb": server.pss_bytes() / MB,
        "procs": len(server.procs()),
    }


class IdleAfterLoad(Workload):
    name = "idle_after_load"
    max_rounds = 1
    check = "/health still answers 200"
    metrics = (
        Metric(
            "rss_mb", "main instance tree RSS after all workloads (MB)", 0, higher_is_better=False
        ),
        Metric(
            "pss_mb", "main instance tree PSS after all workloads (MB)", 0, higher_is_better=False
        ),
    )

    def run(self, ctx: Context, server: RunningServer, rnd: int) -> dict[str, float]:
        time.sleep(ctx.sizes.settle_s)
        status = http_request("GET", server.spec.health_url)[0]
        if status != 200:
            raise VerificationError(f"/health answered {status} after the workloads")
        return {"rss_mb": server.rss_bytes() / MB, "pss_mb": server.pss_bytes() / MB}


LOCAL_ORDER = (
    "startup",
    "put_big",
    "get_big",
    "put_small",
    "get_small",
    "list",
    "list_html",
    "idle_after_load",
)
S3_ORDER = ("put_big_s3", "get_big_s3", "idle_after_load")


def build(names: list[str]) -> list[Workload]:
    table: dict[str, Workload] = {
        "startup": Startup(),
        "put_big": PutBig(s3=False),
        "get_big": GetBig(s3=False),
        "put_small": PutSmall(),
        "get_small": GetSmall(),
        "list": ListDir(),
        "list_html": ListHtml(),
        "idle_after_load": IdleAfterLoad(),
        "put_big_s3": PutBig(s3=True),
        "get_big_s3": GetBig(s3=True),
    }
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"unknown workload(s) {unknown}; known: {sorted(table)}")
    return [table[n] for n in names]
