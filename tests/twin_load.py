"""Concurrent mlflow clients for the twin test: each uploads random artifacts (a new run every
10), downloads earlier ones to check them, and retries a failed call a few times, recording every
failure; at the end every artifact is downloaded again and compared byte for byte."""

import hashlib
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from mlflow import MlflowClient

T = TypeVar("T")
SIZES = (1 << 10, 16 << 10, 256 << 10, 1 << 20)
ATTEMPTS = 5
RUN_EVERY = 10


@dataclass(frozen=True)
class Upload:
    run_id: str
    path: str
    digest: str
    size: int
    at: float


@dataclass(frozen=True)
class Failure:
    operation: str
    at: float
    error: str


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Load:
    def __init__(self, tracking_url: str, workdir: Path, *, clients: int, seconds: float) -> None:
        self.tracking_url = tracking_url
        self.workdir = workdir
        self.clients = clients
        self.seconds = seconds
        self.uploads: list[Upload] = []
        self.downloads: list[float] = []
        self.failures: list[Failure] = []
        self.gave_up: list[str] = []
        self.different: list[str] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.experiment_id = ""

    def start(self) -> None:
        client = MlflowClient(self.tracking_url)
        self.experiment_id = client.create_experiment(f"twin-load-{time.time_ns()}")
        deadline = time.monotonic() + self.seconds
        for n in range(self.clients):
            thread = threading.Thread(target=self._client, args=(n, deadline), daemon=True)
            thread.start()
            self._threads.append(thread)

    def join(self) -> None:
        for thread in self._threads:
            thread.join(self.seconds + 300)

    # -- one client ----------------------------------------------------------------------------

    def _client(self, n: int, deadline: float) -> None:
        client = MlflowClient(self.tracking_url)
        rng = random.Random(n)
        folder = self.workdir / f"c{n}"
        folder.mkdir(parents=True, exist_ok=True)
        mine: list[Upload] = []
        run_id = ""
        for i in range(1_000_000):
            if time.monotonic() > deadline:
                return
            if i % RUN_EVERY == 0:
                ok, new = self._retry("create_run", lambda: self._new_run(client))
                run_id = new if ok and new else run_id
            upload = self._upload(client, run_id, folder / f"f{i}.bin", rng, f"c{n}")
            if upload is not None:
                mine.append(upload)
            if mine and i % 2:
                self._check(client, rng.choice(mine), folder / f"get{i}")

    def _new_run(self, client: MlflowClient) -> str:
        return client.create_run(self.experiment_id).info.run_id

    def _upload(
        self, client: MlflowClient, run_id: str, file: Path, rng: random.Random, under: str
    ) -> Upload | None:
        data = rng.randbytes(rng.choice(SIZES) + rng.randrange(4096))
        file.write_bytes(data)
        ok, _ = self._retry("upload", lambda: client.log_artifact(run_id, str(file), under))
        if not ok:
            return None
        upload = Upload(run_id, f"{under}/{file.name}", digest(data), len(data), time.monotonic())
        file.unlink()
        with self._lock:
            self.uploads.append(upload)
        return upload

    def _check(self, client: MlflowClient, upload: Upload, dst: Path) -> None:
        ok, got = self._retry("download", lambda: fetch(client, upload, dst))
        with self._lock:
            if ok and got != upload.digest:
                self.different.append(f"{upload.run_id}/{upload.path}: differed during the load")
            elif ok:
                self.downloads.append(time.monotonic())

    def _retry(self, operation: str, call: Callable[[], T]) -> tuple[bool, T | None]:
        """(True, result), or (False, None) after ATTEMPTS failures; every failure recorded."""
        for _ in range(ATTEMPTS):
            try:
                return True, call()
            except Exception as exc:
                with self._lock:
                    self.failures.append(Failure(operation, time.monotonic(), repr(exc)[:300]))
                time.sleep(0.5)
        with self._lock:
            self.gave_up.append(operation)
        return False, None

    # -- results -------------------------------------------------------------------------------

    def verify_all(self) -> list[str]:
        """Download every artifact again (8 at a time): the paths missing or different."""
        client = MlflowClient(self.tracking_url)

        def check(pair: tuple[int, Upload]) -> str | None:
            index, upload = pair
            try:
                got = fetch(client, upload, self.workdir / "verify" / str(index))
            except Exception as exc:
                return f"{upload.run_id}/{upload.path}: {exc!r}"[:300]
            return None if got == upload.digest else f"{upload.run_id}/{upload.path}: differs"

        with ThreadPoolExecutor(8) as pool:
            bad = [found for found in pool.map(check, enumerate(self.uploads)) if found]
        return self.different + bad

    def successes_since(self, moment: float) -> dict[str, int]:
        return {
            "uploads": sum(upload.at > moment for upload in self.uploads),
            "downloads": sum(at > moment for at in self.downloads),
        }

    def error_summary(self) -> dict[str, object]:
        return {
            "count": len(self.failures),
            "by_operation": dict(Counter(f.operation for f in self.failures)),
            "first": [f"{f.operation}: {f.error}" for f in self.failures[:5]],
            "gave_up": len(self.gave_up),
        }


def fetch(client: MlflowClient, upload: Upload, dst: Path) -> str:
    dst.mkdir(parents=True, exist_ok=True)
    local = Path(client.download_artifacts(upload.run_id, upload.path, str(dst)))
    data = local.read_bytes()
    local.unlink()
    return digest(data)
