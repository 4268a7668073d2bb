"""Repeated authentication failures from one address: after `failures` within `window_seconds`,
that address gets 429 with Retry-After until the window has passed. Per process (each worker
counts its own); bounded in memory."""

import time
from collections import deque

MAX_ADDRESSES = 10_000


class Throttle:
    def __init__(self, failures: int, window_seconds: int, clock=time.monotonic) -> None:
        self.failures = failures
        self.window = window_seconds
        self.clock = clock
        self._seen: dict[str, deque[float]] = {}

    def retry_after(self, address: str) -> int:
        """Seconds the address must wait, 0 when it may try now."""
        times = self._recent(address)
        if times is None or len(times) < self.failures:
            return 0
        return max(1, int(times[0] + self.window - self.clock()) + 1)

    def failed(self, address: str) -> None:
        times = self._recent(address)
        if times is None:
            if len(self._seen) >= MAX_ADDRESSES:
                self._forget_oldest()
            times = self._seen[address] = deque()
        times.append(self.clock())
        while len(times) > self.failures:
            times.popleft()

    def _recent(self, address: str) -> deque[float] | None:
        times = self._seen.get(address)
        if times is None:
            return None
        cutoff = self.clock() - self.window
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._seen[address]
            return None
        return times

    def _forget_oldest(self) -> None:
        oldest = min(self._seen, key=lambda a: self._seen[a][-1])
        del self._seen[oldest]
