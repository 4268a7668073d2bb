"""The README's screenshot: a realistic run's listing in headless Chromium.

.venv/bin/python -m tests.e2e.browser.screenshot docs/listing.png
"""

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.artgw_process import ArtgwProcess
from tests.e2e.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.browser.tree import ARTIFACTS, DEMO_RUN, demo_tree


def screenshot(target: Path, width: int = 960) -> None:
    with tempfile.TemporaryDirectory() as temp:
        store = Path(temp) / "store"
        demo_tree(store)
        args = ("--artifacts-only", "--workers", "1", "--artifacts-destination", str(store))
        with ArtgwProcess(*args, cwd=Path(temp)) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": width, "height": 400})
            page.goto(f"{server.url}{ARTIFACTS}/{DEMO_RUN}/")
            page.screenshot(path=target, full_page=True)
            browser.close()


if __name__ == "__main__":
    screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "listing.png"))
