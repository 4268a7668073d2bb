"""Browsing a real `artgw serve` in headless Chromium: navigation, downloads, filter, sort, XSS."""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.artgw_process import ArtgwProcess
from tests.e2e.browser.conftest import Tab
from tests.e2e.browser.tree import (
    ARTIFACTS,
    RUN,
    SCRIPT_UPLOAD,
    UNICODE_FILE,
    XSS_FILE,
    browse_tree,
    many_files,
    upload,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def destination(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    path.mkdir()
    return path


@pytest.fixture
def server(artgw, destination: Path) -> ArtgwProcess:
    return artgw("--artifacts-only", "--workers", "1", "--artifacts-destination", str(destination))


@pytest.fixture
def files(server: ArtgwProcess, destination: Path) -> dict[str, bytes]:
    files = browse_tree(destination)
    upload(server.url, f"{RUN}/{SCRIPT_UPLOAD}", b"uploaded through the API\n")
    files[f"{RUN}/<script>alert(1)</script>.txt"] = b"uploaded through the API\n"
    return files


def rows(page: Page) -> list[str]:
    return page.locator("#entries tbody tr:visible").evaluate_all(
        "rs => rs.map(r => r.dataset.name)"
    )


def current_folder(page: Page) -> str:
    return page.locator("nav.crumbs [aria-current=page]").inner_text()


def downloaded(page: Page, link_text: str) -> tuple[str, bytes]:
    with page.expect_download() as info:
        page.get_by_role("link", name=link_text, exact=True).click()
    download = info.value
    return download.suggested_filename, Path(download.path()).read_bytes()


def test_landing_to_listing_to_download(tab: Tab, server: ArtgwProcess, files: dict) -> None:
    page = tab.page
    page.goto(server.url + "/")
    page.get_by_role("link", name="All artifacts").click()
    expect(page.locator("nav.crumbs [aria-current=page]")).to_have_text("root")
    for folder in ("0", "r1", "artifacts", "sub", "deeper"):
        page.get_by_role("link", name=folder + "/", exact=True).click()
        expect(page.locator("nav.crumbs [aria-current=page]")).to_have_text(folder)
    assert page.url == f"{server.url}{ARTIFACTS}/0/r1/artifacts/sub/deeper/"
    assert downloaded(page, "data.bin") == ("data.bin", files[f"{RUN}/sub/deeper/data.bin"])
    page.locator("nav.crumbs").get_by_role("link", name="r1").click()
    assert rows(page) == ["artifacts"]
    page.get_by_role("link", name="artgw").click()
    expect(page.get_by_role("link", name="All artifacts")).to_be_visible()
    assert tab.errors == [] and tab.dialogs == []


def test_filter_and_sort_without_a_round_trip(tab: Tab, server: ArtgwProcess, files: dict) -> None:
    page = tab.page
    page.goto(f"{server.url}{ARTIFACTS}/{RUN}/")
    everything = rows(page)
    assert everything[:3] == ["<script>alert(1)<", "model", "sub"]  # folders first
    requests_seen: list[str] = []
    page.on("request", lambda request: requests_seen.append(request.url))

    page.get_by_placeholder("Filter by name").fill("CSV")
    assert rows(page) == ["metrics.csv"]
    expect(page.locator("#shown")).to_have_text(f"1 of {len(everything)} on this page shown")
    page.get_by_placeholder("Filter by name").fill("")
    assert rows(page) == everything

    page.click("th a[data-sort=size]")
    sizes = [files[f"{RUN}/{name}"] for name in rows(page)[3:]]
    assert [len(data) for data in sizes] == sorted(map(len, sizes), reverse=True)
    expect(page.locator("th:has(a[data-sort=size])")).to_have_attribute("aria-sort", "descending")
    page.click("th a[data-sort=size]")
    expect(page.locator("th:has(a[data-sort=size])")).to_have_attribute("aria-sort", "ascending")
    page.click("th a[data-sort=name]")
    assert rows(page) == everything
    page.click("th a[data-sort=name]")
    assert rows(page) == everything[2::-1] + everything[:2:-1]
    page.get_by_placeholder("Filter by name").press("Enter")
    assert requests_seen == [] and page.url.endswith(f"{RUN}/")
    assert tab.errors == []


def test_hostile_names_are_shown_as_text(tab: Tab, server: ArtgwProcess, files: dict) -> None:
    page = tab.page
    page.goto(f"{server.url}{ARTIFACTS}/{RUN}/")
    names = rows(page)
    assert XSS_FILE in names and "<script>alert(1)<" in names and UNICODE_FILE in names
    expect(page.get_by_role("link", name=XSS_FILE, exact=True)).to_be_visible()
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 1  # the page's own
    safe_name = XSS_FILE.replace("<", "_").replace(">", "_")  # Chromium's own file-name rule
    assert downloaded(page, XSS_FILE) == (safe_name, files[f"{RUN}/{XSS_FILE}"])
    assert downloaded(page, UNICODE_FILE) == (UNICODE_FILE, files[f"{RUN}/{UNICODE_FILE}"])

    page.get_by_role("link", name="<script>alert(1)</", exact=True).click()
    expect(page.locator("nav.crumbs [aria-current=page]")).to_have_text("<script>alert(1)<")
    assert "<script>alert(1)<" in page.title()
    assert downloaded(page, "script>.txt") == ("script_.txt", b"uploaded through the API\n")
    assert tab.dialogs == [] and tab.errors == []
    page.goto(f"{server.url}{ARTIFACTS}/{RUN}/%3Cb%3Enope%3C/b%3E/")
    expect(page.locator("main.error")).to_contain_text("404 RESOURCE_DOES_NOT_EXIST")
    expect(page.locator("main.error code")).to_contain_text("<b>nope</b>")
    assert page.locator("b").count() == 0 and tab.dialogs == []


def test_view_link_shows_text_inline(tab: Tab, server: ArtgwProcess, files: dict) -> None:
    page = tab.page
    page.goto(f"{server.url}{ARTIFACTS}/{RUN}/")
    row = page.locator("#entries tbody tr", has=page.get_by_role("link", name=UNICODE_FILE))
    row.get_by_role("link", name="view").click()
    assert page.locator("body").inner_text() == files[f"{RUN}/{UNICODE_FILE}"].decode()
    page.go_back()
    viewable = page.locator("tr:has(a.view)").evaluate_all("rs => rs.map(r => r.dataset.name)")
    assert viewable == [XSS_FILE, "metrics.csv", UNICODE_FILE]  # text files; folders and .bin not
    assert tab.errors == []


def test_ten_thousand_entries(tab: Tab, server: ArtgwProcess, destination: Path, tmp_path: Path):
    many_files(destination / "many", 10_000)
    page = tab.page
    page.goto(f"{server.url}{ARTIFACTS}/many/")
    timing = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
    (tmp_path / "timing.json").write_text(timing)
    expect(page.locator("#count")).to_contain_text("10,000 entries; showing 1-1,000")
    assert len(rows(page)) == 1000 and rows(page)[0] == "f00000.txt"
    page.get_by_role("link", name="Next").click()
    expect(page.locator("#count")).to_contain_text("showing 1,001-2,000")
    page.get_by_placeholder("Filter by name").fill("f0999")
    expect(page.locator("#hint")).to_be_visible()
    page.get_by_placeholder("Filter by name").press("Enter")
    expect(page.locator("#count")).to_have_text("10 of 10,000 entries match")
    assert rows(page) == [f"f0999{i}.txt" for i in range(10)]
    page.click("th a[data-sort=size]")
    assert rows(page)[0] == "f09999.txt" and "sort=size" in page.url
    assert tab.errors == []


def test_screenshots_and_phone_layout(tab: Tab, server: ArtgwProcess, files: dict, tmp_path: Path):
    page = tab.page
    page.goto(f"{server.url}{ARTIFACTS}/{RUN}/")
    shot = tmp_path / "listing.png"
    page.screenshot(path=shot, full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5_000
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.locator("th.time").is_hidden()
    page.screenshot(path=tmp_path / "listing-phone.png", full_page=True)
    assert tab.errors == []
