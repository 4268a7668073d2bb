"""The browser pages behind --auth-file in headless Chromium: Basic credentials from the browser
context, the 401 challenge without them, a 403 page for a folder outside the user's grants."""

from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from playwright.sync_api import Error as PlaywrightError

from tests.artgw_process import ArtgwProcess
from tests.auth_users import READER, WRITER, UsersFile
from tests.e2e.browser.tree import ARTIFACTS, RUN, browse_tree

pytestmark = pytest.mark.browser


@pytest.fixture
def server(artgw, tmp_path: Path) -> ArtgwProcess:
    destination = tmp_path / "store"
    browse_tree(destination)
    browse_tree(destination / "team")
    users = UsersFile(tmp_path / "users.toml").write()
    return artgw(
        "--artifacts-only", "--workers", "1", "--artifacts-destination", str(destination),
        "--auth-file", str(users),
    )  # fmt: skip


def test_pages_with_basic_credentials(browser: Browser, server: ArtgwProcess) -> None:
    context = browser.new_context(
        http_credentials={"username": READER.name, "password": READER.password},
        accept_downloads=True,
    )
    page = context.new_page()
    page.goto(server.url + "/")
    page.get_by_role("link", name="All artifacts").click()
    expect(page.locator("nav.crumbs [aria-current=page]")).to_have_text("root")
    page.goto(f"{server.url}{ARTIFACTS}/{RUN}/")
    with page.expect_download() as info:
        page.get_by_role("link", name="metrics.csv", exact=True).click()
    assert Path(info.value.path()).read_bytes().startswith(b"step,loss\n")
    context.close()


def test_no_credentials_get_the_challenge(browser: Browser, server: ArtgwProcess) -> None:
    """Headless Chromium cannot show the password dialog the challenge asks for: the navigation
    fails for want of credentials, and nothing of the listing is shown."""
    context = browser.new_context()
    page = context.new_page()
    url = f"{server.url}{ARTIFACTS}/{RUN}/"
    with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
        page.goto(url)
    response = context.request.get(url, headers={"Accept": "text/html"})
    assert response.status == 401
    assert response.headers["www-authenticate"].startswith('Basic realm="artgw"')
    assert "metrics.csv" not in response.text()
    context.close()


def test_a_folder_outside_the_grants_is_a_403_page(browser: Browser, server: ArtgwProcess) -> None:
    context = browser.new_context(
        http_credentials={"username": WRITER.name, "password": WRITER.password}
    )
    page = context.new_page()
    response = page.goto(f"{server.url}{ARTIFACTS}/team/{RUN}/")
    assert response is not None and response.status == 200
    expect(page.locator("nav.crumbs [aria-current=page]")).to_have_text("artifacts")
    response = page.goto(f"{server.url}{ARTIFACTS}/{RUN}/")
    assert response is not None and response.status == 403
    assert "PERMISSION_DENIED" in page.content() and "metrics.csv" not in page.content()
    context.close()
