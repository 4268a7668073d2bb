"""What the checker found in the tracking store, remembered across requests for a few seconds:
a client logging many artifacts to one run would otherwise cost the database a run and an
experiment lookup per file. Only entities that exist are kept (a run created a moment later must
not stay refused), and only briefly (a renamed experiment's name grants follow within `TTL`)."""

import time
from collections.abc import Callable
from typing import Any

TTL = 10.0
MAX_ENTRIES = 10_000


class Lookups:
    def __init__(self, ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._found: dict[tuple[str, str], tuple[float, Any]] = {}

    def get(self, key: tuple[str, str]) -> Any | None:
        entry = self._found.get(key)
        if entry is None or entry[0] < self.clock():
            return None
        return entry[1]

    def put(self, key: tuple[str, str], value: Any) -> None:
        if len(self._found) >= MAX_ENTRIES:
            now = self.clock()
            self._found = {k: e for k, e in self._found.items() if e[0] >= now}
            if len(self._found) >= MAX_ENTRIES:
                self._found.clear()
        self._found[key] = (self.clock() + self.ttl, value)
