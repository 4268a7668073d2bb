"""Soak: sustained mixed traffic against `artgw serve --workers 2`, every byte verified.

    .venv/bin/python -m benchmarks.soak --minutes 10 --connections 64 --out benchmarks/out/soak.md

One server, two destinations: the local folder, and an S3 bucket (moto) mounted at `s3/`. Each
of the `connections` clients loops over a mix of small PUT+GET, 64 MiB PUT+GET (a few at a time),
listings, deletes and tracking calls (create run, log a batch, read it back). Every GET is
checked against what was written (sha256), every tracking read against what was logged.

Reported per window (a minute; 10 s for short runs): requests, errors, p50/p99 latency, and the
server's RSS and open file descriptors (supervisor and workers summed; the lowest of several
samples in the window, and the highest RSS). It fails (exit 1, or
`SoakReport.problems` for the test) on any error, or on RSS or fds growing more than 10 %
between the first window after warm-up (half the run, at most two minutes) and the last.
"""

import argparse
import asyncio
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.artgw_process import ArtgwProcess  # noqa: E402
from tests.emulators import S3Server  # noqa: E402

A = "/api/2.0/mlflow-artifacts/artifacts"
T = "/api/2.0/mlflow"
MiB = 1 << 20
GROWTH_LIMIT = 0.10
MIX = {"small": 40, "list": 15, "delete": 10, "tracking": 20, "big": 3}


@dataclass
class Window:
    start: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    rss: int = 0
    """The lowest sample in the window (bodies in flight come and go; a leak stays)."""
    rss_peak: int = 0
    fds: int = 0


@dataclass
class SoakReport:
    seconds: float
    connections: int
    windows: list[Window]
    requests: int
    errors: list[str]
    bytes_verified: int
    window_seconds: float

    @property
    def steady(self) -> list[Window]:
        """The windows after warm-up (half the run, at most two minutes), with a sample."""
        warmup = min(120.0, self.seconds / 2)
        start = self.windows[0].start if self.windows else 0.0
        after = [w for w in self.windows if w.rss and w.start - start >= warmup]
        return after or self.windows

    @property
    def problems(self) -> list[str]:
        return self.problems_at(GROWTH_LIMIT)

    def problems_at(self, growth_limit: float) -> list[str]:
        """Every error, and RSS or fds grown by more than `growth_limit` over the steady part."""
        found = [f"{len(self.errors)} errors, first: {self.errors[:3]}"] if self.errors else []
        first, last = self.steady[0], self.steady[-1]
        for name, a, b in (("RSS", first.rss, last.rss), ("open fds", first.fds, last.fds)):
            if a and (b - a) / a > growth_limit:
                found.append(f"{name} grew {100 * (b - a) / a:.0f} % ({a} -> {b})")
        return found

    def markdown(self) -> str:
        unit = "minute" if self.window_seconds >= 60 else f"{self.window_seconds:g} s"
        lines = [
            f"{self.requests:,} requests in {self.seconds:.0f} s at {self.connections} "
            f"connections, {len(self.errors)} errors, {self.bytes_verified / MiB:,.0f} MiB "
            "verified (sha256 of every GET)",
            "",
            f"| {unit} | requests | errors | p50 ms | p99 ms | RSS MiB (low-high) | open fds |",
            "|---|---|---|---|---|---|---|",
        ]
        for index, w in enumerate(self.windows, 1):
            p50, p99 = _percentiles(w.latencies)
            lines.append(
                f"| {index} | {len(w.latencies):,} | {w.errors} | {p50:.1f} | {p99:.1f} | "
                f"{w.rss / MiB:.0f}-{w.rss_peak / MiB:.0f} | {w.fds} |"
            )
        return "\n".join(lines)


def _percentiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0] * 1000, values[0] * 1000) if values else (0.0, 0.0)
    cuts = statistics.quantiles(values, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


class Payloads:
    """Deterministic bodies: a random 1 MiB block per seed, repeated; their hashes known."""

    def __init__(self, big: int) -> None:
        self.big = big
        self.blocks = [random.Random(seed).randbytes(MiB) for seed in range(4)]
        self.big_hashes = [self._hash(block, big) for block in self.blocks]

    @staticmethod
    def _hash(block: bytes, size: int) -> str:
        digest = hashlib.sha256()
        for _ in range(size // len(block)):
            digest.update(block)
        return digest.hexdigest()

    async def stream(self, seed: int) -> AsyncIterator[bytes]:
        block = self.blocks[seed]
        for _ in range(self.big // MiB):
            yield block


class Soak:
    def __init__(self, base: str, seconds: float, connections: int, big: int, window: float):
        self.base = base
        self.seconds = seconds
        self.connections = connections
        self.window = window
        self.payloads = Payloads(big)
        self.big_slots = asyncio.Semaphore(2)
        self.started = 0.0
        self.windows: list[Window] = []
        self.errors: list[str] = []
        self.requests = 0
        self.verified = 0
        self.experiment = ""

    def current(self) -> Window:
        index = int((time.monotonic() - self.started) // self.window)
        while len(self.windows) <= index:
            self.windows.append(Window(self.started + len(self.windows) * self.window))
        return self.windows[index]

    def record(self, seconds: float, error: str | None = None) -> None:
        window = self.current()
        window.latencies.append(seconds)
        self.requests += 1
        if error:
            window.errors += 1
            self.errors.append(error)

    async def run(self, session: aiohttp.ClientSession) -> None:
        self.experiment = await self._experiment(session)
        self.started = time.monotonic()
        await asyncio.gather(*(self._client(session, n) for n in range(self.connections)))

    async def _experiment(self, session: aiohttp.ClientSession) -> str:
        name = f"soak-{time.time_ns()}"
        async with session.post(f"{self.base}{T}/experiments/create", json={"name": name}) as r:
            return (await r.json())["experiment_id"]

    async def _client(self, session: aiohttp.ClientSession, number: int) -> None:
        rng = random.Random(number)
        mine: list[str] = []
        kinds, weights = list(MIX), list(MIX.values())
        sequence = 0
        while time.monotonic() - self.started < self.seconds:
            kind = rng.choices(kinds, weights)[0]
            sequence += 1
            where = "s3/" if sequence % 2 else ""
            try:
                await getattr(self, f"_{kind}")(session, rng, mine, f"{where}c{number}/{sequence}")
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
                self.record(0.0, f"{kind}: {type(exc).__name__}: {exc}")

    async def _timed(self, method: str, session: aiohttp.ClientSession, url: str, **kw):
        started = time.monotonic()
        response = await session.request(method, url, **kw)
        body = await response.read()
        return response.status, body, time.monotonic() - started

    async def _small(self, session, rng, mine, name):
        data = rng.randbytes(rng.randint(1, 256 << 10))
        url = f"{self.base}{A}/{name}.bin"
        status, body, took = await self._timed("PUT", session, url, data=data)
        self.record(took, None if status == 200 else f"small PUT {status} {body[:200]!r}")
        if status != 200:
            return
        mine.append(f"{name}.bin")
        status, body, took = await self._timed("GET", session, url)
        ok = status == 200 and body == data
        self.record(took, None if ok else f"small GET {status}, {len(body)} of {len(data)} bytes")
        self.verified += len(body) if ok else 0

    async def _big(self, session, rng, mine, name):
        seed = rng.randrange(len(self.payloads.blocks))
        url = f"{self.base}{A}/{name}.big"
        async with self.big_slots:
            status, body, took = await self._timed(
                "PUT", session, url, data=self.payloads.stream(seed)
            )
            self.record(took, None if status == 200 else f"big PUT {status} {body[:200]!r}")
            if status != 200:
                return
            started = time.monotonic()
            digest, size = hashlib.sha256(), 0
            async with session.get(url) as response:
                async for chunk in response.content.iter_chunked(MiB):
                    digest.update(chunk)
                    size += len(chunk)
                status = response.status
        ok = status == 200 and digest.hexdigest() == self.payloads.big_hashes[seed]
        self.record(time.monotonic() - started, None if ok else f"big GET {status} {size} bytes")
        self.verified += size if ok else 0
        await self._timed("DELETE", session, url)  # keep the disk and the bucket small

    async def _list(self, session, rng, mine, name):
        folder = name.rsplit("/", 1)[0]
        status, body, took = await self._timed(
            "GET", session, f"{self.base}{A}", params={"path": folder}
        )
        listed = {f["path"] for f in json.loads(body).get("files", [])} if status == 200 else set()
        expected = {p.rsplit("/", 1)[1] for p in mine if p.rsplit("/", 1)[0] == folder}
        ok = status == 200 and expected <= listed
        self.record(took, None if ok else f"list {status}: missing {sorted(expected - listed)[:3]}")

    async def _delete(self, session, rng, mine, name):
        if not mine:
            return
        path = mine.pop(rng.randrange(len(mine)))
        status, body, took = await self._timed("DELETE", session, f"{self.base}{A}/{path}")
        self.record(took, None if status == 200 else f"delete {status} {body[:200]!r}")
        status, body, took = await self._timed("GET", session, f"{self.base}{A}/{path}")
        self.record(took, None if status == 404 else f"deleted file answered {status}")

    async def _tracking(self, session, rng, mine, name):
        now = int(time.time() * 1000)
        status, body, took = await self._timed(
            "POST", session, f"{self.base}{T}/runs/create",
            json={"experiment_id": self.experiment, "start_time": now},
        )  # fmt: skip
        self.record(took, None if status == 200 else f"runs/create {status} {body[:200]!r}")
        if status != 200:
            return
        run_id = json.loads(body)["run"]["info"]["run_id"]
        value = rng.random()
        batch = {"run_id": run_id, "metrics": [
            {"key": "loss", "value": value, "timestamp": now, "step": step} for step in range(5)
        ], "params": [{"key": "lr", "value": str(value)}]}  # fmt: skip
        status, body, took = await self._timed(
            "POST", session, f"{self.base}{T}/runs/log-batch", json=batch
        )
        self.record(took, None if status == 200 else f"log-batch {status} {body[:200]!r}")
        status, body, took = await self._timed(
            "GET", session, f"{self.base}{T}/runs/get", params={"run_id": run_id}
        )
        data = json.loads(body) if status == 200 else {}
        params = {
            p["key"]: p["value"] for p in data.get("run", {}).get("data", {}).get("params", [])
        }
        ok = status == 200 and params.get("lr") == str(value)
        self.record(took, None if ok else f"runs/get {status}: params {params}")


def server_processes(server: ArtgwProcess) -> list[psutil.Process]:
    assert server.proc is not None
    root = psutil.Process(server.proc.pid)
    return [root, *root.children(recursive=True)]


async def sample(soak: Soak, server: ArtgwProcess) -> None:
    """Each window's resources: sampled at its end (the window being measured is then full)."""
    while True:
        await asyncio.sleep(soak.window / 12)
        if not soak.started:
            continue
        rss = fds = 0
        for process in server_processes(server):
            try:
                rss += process.memory_info().rss
                fds += process.num_fds()
            except psutil.Error:
                continue
        window = soak.current()
        window.rss_peak = max(window.rss_peak, rss)
        # the window's lowest: its baseline, without the transfers that happen to be in flight
        window.rss = min(window.rss, rss) if window.rss else rss
        window.fds = min(window.fds, fds) if window.fds else fds


async def run_soak(
    base: str, server: ArtgwProcess, seconds: float, connections: int, big: int, window: float
) -> SoakReport:
    soak = Soak(base, seconds, connections, big, window)
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        sampler = asyncio.ensure_future(sample(soak, server))
        try:
            await soak.run(session)
        finally:
            sampler.cancel()
    # the windows of the run itself, not the tail of requests finishing after it
    windows = [w for w in soak.windows if w.latencies and w.start - soak.started < seconds]
    return SoakReport(
        seconds, connections, windows, soak.requests, soak.errors, soak.verified, window
    )


def soak(
    seconds: float,
    connections: int = 64,
    workers: int = 2,
    big: int = 64 * MiB,
    window: float = 60.0,
    workdir: Path | None = None,
) -> SoakReport:
    """Start moto and artgw (local destination + `s3/` mount), run the soak, stop both."""
    with tempfile.TemporaryDirectory(prefix="artgw-soak-", dir=workdir) as tmp:
        root = Path(tmp)
        with S3Server() as s3:
            s3.make_bucket("artgw-soak")
            args = [
                "--workers", str(workers),
                "--artifacts-destination", str(root / "artifacts"),
                "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                "--mount", "s3=s3://artgw-soak/soak",
            ]  # fmt: skip
            env = {**s3.env, "AWS_EC2_METADATA_DISABLED": "true"}
            server = ArtgwProcess(*args, cwd=root, env=env).start(timeout=120)
            try:
                return asyncio.run(run_soak(server.url, server, seconds, connections, big, window))
            finally:
                server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--big-mib", type=int, default=64)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    seconds = args.minutes * 60
    window = 60.0 if seconds >= 300 else 10.0
    report = soak(seconds, args.connections, args.workers, args.big_mib * MiB, window)
    text = report.markdown()
    problems = report.problems
    text += "\n\n" + ("Problems: " + "; ".join(problems) if problems else "No problems.") + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
