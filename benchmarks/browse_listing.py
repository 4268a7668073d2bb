"""How fast a big directory's HTML listing comes back and renders in headless Chromium.

    .venv/bin/python -m benchmarks.browse_listing [COUNT ...]     (default: 10000 50000)

For each COUNT: a local store with one folder of COUNT files, a real `artgw serve --workers 1`,
then the median of several runs of: the JSON listing and the first HTML page (1,000 rows) over
HTTP, a sorted and a filtered page (sorting and filtering cover the whole folder), and Chromium's
navigation timing for the first page (response end, DOMContentLoaded, load).
"""

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright

from tests.artgw_process import ArtgwProcess
from tests.e2e.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.browser.tree import ARTIFACTS, many_files

BROWSER = {"Accept": "text/html,*/*;q=0.8", "Accept-Encoding": "gzip"}
RUNS = 7


def median_ms(action: Callable[[], object], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def http_figures(base: str) -> dict[str, float]:
    def get(url: str, headers: dict[str, str]) -> None:
        requests.get(url, headers=headers, timeout=60).raise_for_status()

    listing = f"{base}{ARTIFACTS}/many/"
    return {
        "json_list_ms": median_ms(lambda: get(f"{base}{ARTIFACTS}?path=many", {})),
        "html_page_ms": median_ms(lambda: get(listing, BROWSER)),
        "html_sorted_by_size_ms": median_ms(lambda: get(listing + "?sort=size", BROWSER)),
        "html_filtered_ms": median_ms(lambda: get(listing + "?filter=f0999", BROWSER)),
        "html_last_page_ms": median_ms(lambda: get(listing + "?page=999999", BROWSER)),
    }


def browser_figures(base: str) -> dict[str, float]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        runs = []
        for _ in range(5):
            page.goto(f"{base}{ARTIFACTS}/many/")
            runs.append(json.loads(page.evaluate(NAV_TIMING)))
        browser.close()
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


NAV_TIMING = """JSON.stringify((() => {
  const t = performance.getEntriesByType('navigation')[0];
  return {chromium_response_end_ms: t.responseEnd,
          chromium_dom_ready_ms: t.domContentLoadedEventEnd,
          chromium_load_ms: t.loadEventEnd, page_bytes: t.decodedBodySize,
          transferred_bytes: t.transferSize};
})())"""


def measure(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as temp:
        store = Path(temp) / "store"
        many_files(store / "many", count)
        args = ("--artifacts-only", "--workers", "1", "--artifacts-destination", str(store))
        with ArtgwProcess(*args, cwd=Path(temp)) as server:
            return {"entries": count, **http_figures(server.url), **browser_figures(server.url)}


def main(argv: list[str]) -> None:
    for count in [int(arg) for arg in argv] or [10_000, 50_000]:
        print(json.dumps({k: round(v, 1) for k, v in measure(count).items()}))


if __name__ == "__main__":
    main(sys.argv[1:])
