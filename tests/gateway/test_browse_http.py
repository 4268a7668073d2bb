"""HTML listings over plain HTTP: negotiation, escaping, links, pages, ?view=1, the landing page."""

import base64
import hashlib
import json
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from backends import Entry
from gateway.web.landing import Link, Section, add_landing_source, artifact_listing_href
from gateway.web.listing import ListingQuery, build_page
from gateway.web.negotiation import html_preferred
from gateway.web.pages import human_size
from tests.rawhttp import raw_request

A = "/api/2.0/mlflow-artifacts/artifacts"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
HTML = {"Accept": BROWSER}
HOSTILE = [
    "<img src=x onerror=alert(1)>.txt",
    "\"quoted\" & 'apos'.txt",
    "100% #hash ?q=1;x.txt",
    "Ünïcødé 文件.txt",
    "&lt;not-an-entity&gt;.csv",
]


class Page(HTMLParser):
    """The parts of a page the tests look at: base, links, rows, texts and scripts."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.base: str | None = None
        self.links: list[tuple[str, str]] = []
        self.rows: list[dict[str, str]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self._tag: list[str] = []
        self._href: str | None = None
        self._text = ""
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self._tag.append(tag)
        if tag == "base":
            self.base = values["href"]
        elif tag == "a":
            self._href, self._text = values.get("href"), ""
        elif tag == "tr" and "data-name" in values:
            self.rows.append(values)
        elif tag in ("script", "style"):
            self._text = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._text, self._href))
            self._href = None
        elif tag == "script":
            self.scripts.append(self._text)
        elif tag == "style":
            self.styles.append(self._text)
        if self._tag:
            self._tag.pop()

    def handle_data(self, data: str) -> None:
        self._text += data

    def href(self, text: str) -> str:
        return next(href for label, href in self.links if label == text)

    @property
    def names(self) -> list[str]:
        return [row["data-name"] for row in self.rows]


@pytest.fixture
async def tree(gateway: TestClient, destination: Path) -> TestClient:
    root = destination / "0/r1/artifacts"
    (root / "sub/deeper").mkdir(parents=True)
    for name in HOSTILE:
        (root / name).write_bytes(name.encode() + b"\n")
    (root / "sub/deeper/model.bin").write_bytes(bytes(range(256)) * 40)
    (root / "sub/notes.md").write_bytes(b"# notes\n")
    (root / "big.log").write_bytes(b"x" * ((1 << 20) + 1))
    (root / "empty").mkdir()
    return gateway


async def get_page(client: TestClient, target: str) -> tuple[Page, str]:
    response = await client.get(target, headers=HTML)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    return Page(await response.text()), str(response.url)


def resolve(page: Page, page_url: str, href: str) -> str:
    """What the browser fetches for `href`: relative to <base>, itself relative to the page."""
    base = urljoin(page_url, page.base) if page.base is not None else page_url
    return urlsplit(urljoin(base, href))._replace(scheme="", netloc="").geturl()


# -- content negotiation -------------------------------------------------------------------------

ACCEPT_TABLE = [
    (None, False),
    ("", False),
    ("*/*", False),
    ("application/json", False),
    ("application/json, text/html", False),
    ("text/html;q=0.5, application/json", False),
    ("text/html;q=0, */*", False),
    ("text/html;q=abc", False),
    ("garbage", False),
    ("text/html", True),
    ("TEXT/HTML", True),
    ("text/*", True),
    ("text/html;q=0.9, application/json;q=0.8", True),
    ("text/html, */*;q=0.1", True),
    (BROWSER, True),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),
]


@pytest.mark.parametrize(("accept", "expected"), ACCEPT_TABLE)
def test_prefers_html_table(accept: str | None, expected: bool) -> None:
    assert html_preferred(accept) is expected


API_ACCEPTS = [None, "*/*", "application/json", "application/json, text/html;q=0.9"]


@pytest.mark.parametrize("accept", API_ACCEPTS)
async def test_api_clients_keep_json(tree: TestClient, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    port = tree.server.port
    listing = await raw_request(port, "GET", f"{A}?path=0/r1/artifacts/sub", headers=headers)
    assert listing.status == 200
    assert listing.headers["content-type"].startswith("application/json")
    assert listing.json() == {
        "files": [
            {"path": "deeper", "is_dir": True},
            {"path": "notes.md", "is_dir": False, "file_size": 8},
        ]
    }
    for target in (f"{A}/0/r1/artifacts/sub", f"{A}/0/r1/artifacts/sub/", f"{A}/"):
        response = await raw_request(port, "GET", target, headers=headers)
        assert response.status == 400, target
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    missing = await raw_request(port, "GET", f"{A}/0/nothing/here", headers=headers)
    assert (missing.status, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert (await raw_request(port, "GET", f"{A}?path=0/nothing", headers=headers)).json() == {}


@pytest.mark.parametrize(
    "target",
    [
        f"{A}/0/r1/artifacts/sub",
        f"{A}/0/r1/artifacts/sub/",
        f"{A}?path=0/r1/artifacts/sub",
        f"{A}?path=0/r1/artifacts/sub/",
        "/ajax-api/2.0/mlflow-artifacts/artifacts/0/r1/artifacts/sub/",
    ],
)
async def test_every_form_of_a_directory_url_gives_the_same_page(
    tree: TestClient, target: str
) -> None:
    page, url = await get_page(tree, target)
    assert page.names == ["deeper", "notes.md"]
    prefix = target.split("/mlflow-artifacts")[0]
    canonical = f"{prefix}/mlflow-artifacts/artifacts/0/r1/artifacts/sub/"
    assert resolve(page, url, "./") == canonical
    assert resolve(page, url, page.href("deeper/")) == canonical + "deeper/"
    assert resolve(page, url, page.href("root")) == f"{prefix}/mlflow-artifacts/artifacts/"
    assert resolve(page, url, page.href("artgw")) == "/"


async def test_root_listing(tree: TestClient) -> None:
    for target in (f"{A}/", A):
        page, _ = await get_page(tree, target)
        assert page.names == ["0"]


async def test_names_are_escaped_and_links_fetch_the_right_bytes(tree: TestClient) -> None:
    response = await tree.get(f"{A}/0/r1/artifacts/", headers=HTML)
    text = await response.text()
    assert "<img" not in text and "'apos'" not in text and '"quoted"' not in text
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in text
    assert "&amp;lt;not-an-entity&amp;gt;.csv" in text
    page = Page(text)
    assert set(HOSTILE) <= set(page.names)
    for name in HOSTILE:
        href = page.href(name)
        assert href == quote(name, safe="")
        download = await tree.get(resolve(page, str(response.url), href))
        assert download.status == 200
        assert await download.read() == name.encode() + b"\n"
        assert "attachment" in download.headers["Content-Disposition"]


async def test_page_security_headers_admit_exactly_its_own_style_and_script(
    tree: TestClient,
) -> None:
    response = await tree.get(f"{A}/0/r1/artifacts/", headers=HTML)
    page = Page(await response.text())
    policy = response.headers["Content-Security-Policy"]
    for kind, blocks in (("script-src", page.scripts), ("style-src", page.styles)):
        assert len(blocks) == 1
        digest = base64.b64encode(hashlib.sha256(blocks[0].encode()).digest()).decode()
        assert f"{kind} 'sha256-{digest}'" in policy
    assert "unsafe-inline" not in policy and "default-src 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Vary"] == "Accept"


async def test_sizes_times_and_view_links(tree: TestClient) -> None:
    page, _ = await get_page(tree, f"{A}/0/r1/artifacts/")
    rows = {row["data-name"]: row for row in page.rows}
    assert rows["big.log"]["data-size"] == str((1 << 20) + 1)
    assert float(rows["big.log"]["data-time"]) > 0
    assert rows["sub"]["data-dir"] == "1"
    view_links = [href for label, href in page.links if label == "view"]
    assert f"{quote(HOSTILE[3], safe='')}?view=1" in view_links
    assert not any(href.startswith("big.log") for href in view_links)  # over 1 MiB
    assert page.names[:2] == ["empty", "sub"]  # directories first


async def test_view_shows_small_text_inline_and_downloads_the_rest(tree: TestClient) -> None:
    base = f"{A}/0/r1/artifacts"
    inline = await tree.get(f"{base}/sub/notes.md?view=1", headers=HTML)
    assert inline.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert inline.headers["X-Content-Type-Options"] == "nosniff"
    assert inline.headers["Content-Disposition"].startswith("inline")
    assert await inline.read() == b"# notes\n"
    big = await tree.get(f"{base}/big.log?view=1")
    assert big.headers["Content-Disposition"].startswith("attachment")
    binary = await tree.get(f"{base}/sub/deeper/model.bin?view=1")
    assert binary.headers["Content-Type"] == "application/octet-stream"
    assert binary.headers["Content-Disposition"].startswith("attachment")
    plain = await tree.get(f"{base}/sub/notes.md")
    assert plain.headers["Content-Disposition"].startswith("attachment")


async def test_missing_directory_is_a_404_page_for_browsers(tree: TestClient) -> None:
    for target in (f"{A}/0/nothing/", f"{A}/0/nothing", f"{A}?path=0/nothing"):
        response = await tree.get(target, headers=HTML)
        assert response.status == 404, target
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "RESOURCE_DOES_NOT_EXIST" in await response.text()
    file_as_dir = await tree.get(f"{A}/0/r1/artifacts/big.log/", headers=HTML)
    assert file_as_dir.status == 404
    hostile = await tree.get(f"{A}/{quote('<b>x</b>')}/", headers=HTML)
    assert "<b>" not in await hostile.text()
    bad_page = await tree.get(f"{A}/?page=zero", headers=HTML)
    assert bad_page.status == 400 and "page must be" in await bad_page.text()


async def test_empty_directory_and_head(tree: TestClient) -> None:
    page, _ = await get_page(tree, f"{A}/0/r1/artifacts/empty/")
    assert page.rows == []
    head = await tree.head(f"{A}/0/r1/artifacts/empty/", headers=HTML)
    assert head.status == 200 and head.headers["Content-Type"].startswith("text/html")


async def test_names_that_are_not_utf8_still_render(tree: TestClient, destination: Path) -> None:
    os.close(os.open(bytes(destination) + b"/bad-\xff.txt", os.O_CREAT | os.O_WRONLY, 0o644))
    page, _ = await get_page(tree, f"{A}/")
    assert "bad-\ufffd.txt" in page.names


# -- pagination, sorting, filtering --------------------------------------------------------------


@pytest.fixture
async def crowded(gateway: TestClient, destination: Path) -> TestClient:
    folder = destination / "many"
    folder.mkdir()
    for i in range(2500):
        (folder / f"f{i:05d}.txt").write_bytes(b"x" * (i % 7))
    (folder / "zdir").mkdir()
    return gateway


async def test_pages_of_a_thousand(crowded: TestClient) -> None:
    first, _ = await get_page(crowded, f"{A}/many/")
    assert len(first.rows) == 1000
    assert first.names[:2] == ["zdir", "f00000.txt"]
    assert "Next" in [label for label, _ in first.links]
    last, _ = await get_page(crowded, f"{A}/many/{first.href('Last')}")
    assert len(last.rows) == 501
    assert last.names[-1] == "f02499.txt"
    beyond, _ = await get_page(crowded, f"{A}/many/?page=99")
    assert beyond.names == last.names


async def test_server_side_sort_and_filter_span_all_pages(crowded: TestClient) -> None:
    by_size, _ = await get_page(crowded, f"{A}/many/?sort=size&order=desc")
    assert by_size.names[0] == "zdir"
    sizes = [int(row["data-size"]) for row in by_size.rows[1:]]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 6
    last, _ = await get_page(crowded, f"{A}/many/{by_size.href('Last')}")
    assert [row["data-size"] for row in last.rows][-358:] == ["0"] * 358
    filtered, _ = await get_page(crowded, f"{A}/many/?filter=F0249")
    assert filtered.names == [f"f0249{i}.txt" for i in range(10)]
    response = await crowded.get(f"{A}/many/?filter=F0249", headers=HTML)
    assert "10 of 2,501 entries match" in await response.text()


def test_build_page_orders_directories_first_in_both_directions() -> None:
    entries = [Entry("b", False, 5, 2.0), Entry("A", True), Entry("a", False, 9, None)]
    for order in ("asc", "desc"):
        for sort in ("name", "size", "time"):
            shown = build_page(entries, ListingQuery(sort=sort, order=order))
            assert shown.entries[0].name == "A"
    newest = build_page(entries, ListingQuery(sort="time", order="desc"))
    assert [e.name for e in newest.entries] == ["A", "b", "a"]


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1048575, "1.0 MiB"), (5 << 30, "5.0 GiB")],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


# -- landing page ----------------------------------------------------------------------------------


async def test_landing_page_on_an_artifacts_only_server(tree: TestClient) -> None:
    for headers in (HTML, {}):
        response = await tree.get("/", headers=headers)
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = Page(await response.text())
    href = page.href("All artifacts")
    assert href == artifact_listing_href("") == "api/2.0/mlflow-artifacts/artifacts/"
    listing, _ = await get_page(tree, "/" + href)
    assert listing.names == ["0"]


async def test_landing_sources_feed_the_page(make_gateway) -> None:
    async def experiments(app: web.Application) -> list[Section]:
        run = Link("<run & co>", artifact_listing_href("0/r1/artifacts"), "FINISHED")
        return [Section("<script>exp</script>", [run]), Section("Empty experiment")]

    client = await make_gateway()
    add_landing_source(client.app, experiments)
    text = await (await client.get("/")).text()
    assert "<script>exp" not in text and "&lt;script&gt;exp&lt;/script&gt;" in text
    page = Page(text)
    assert page.href("<run & co>") == "api/2.0/mlflow-artifacts/artifacts/0/r1/artifacts/"
    assert text.index("&lt;script&gt;exp") < text.index("All artifacts")
    assert "Nothing here yet." in text


async def test_unknown_pages_are_html_for_browsers_json_for_clients(gateway: TestClient) -> None:
    browser = await gateway.get("/nope", headers=HTML)
    assert browser.status == 404 and "ENDPOINT_NOT_FOUND" in await browser.text()
    assert browser.headers["Content-Type"].startswith("text/html")
    client = await gateway.get("/nope")
    assert json.loads(await client.text())["error_code"] == "ENDPOINT_NOT_FOUND"
    upload = await gateway.put(f"{A}/x/", data=b"x", headers=HTML)
    assert upload.headers["Content-Type"].startswith("application/json")


def test_no_inline_event_handlers_or_style_attributes_in_the_templates() -> None:
    """The CSP admits only the hashed blocks: inline handlers and style="" would be dead code."""
    source = "".join(
        (Path(__file__).parents[2] / "gateway" / "web" / name).read_text()
        for name in ("pages.py", "listing_html.py", "landing.py")
    )
    assert not re.search(r"\son[a-z]+=|\sstyle=", source)


async def test_favicon_is_not_a_404(gateway: TestClient) -> None:
    assert (await gateway.get("/favicon.ico")).status == 204
