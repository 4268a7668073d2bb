"""Real headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, against `artgw serve`.

`tests/setup-system.sh` installs Chromium. A missing browser fails these tests: they are skipped
only when ARTGW_SKIP_BROWSER=1 is set.
"""

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, sync_playwright

CHROMIUM = os.environ.get("ARTGW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SKIP = os.environ.get("ARTGW_SKIP_BROWSER") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.browser)
            if SKIP:
                item.add_marker(pytest.mark.skip(reason="ARTGW_SKIP_BROWSER=1"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per module: Playwright's sync API runs an event loop of its own in this
    thread while it is open, which pytest-asyncio's tests in other modules must not meet."""
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `sudo tests/setup-system.sh` "
            "(or set ARTGW_SKIP_BROWSER=1 to skip the browser tests)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Tab:
    """A page of a fresh browser context, with the JS errors and dialogs it produced."""

    page: Page
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 800})
    context.set_default_timeout(15_000)
    tab = Tab(context.new_page())
    tab.page.on("pageerror", lambda error: tab.errors.append(str(error)))
    tab.page.on("console", lambda msg: tab.errors.append(msg.text) if msg.type == "error" else None)
    tab.page.on("dialog", tab.on_dialog)
    yield tab
    context.close()
