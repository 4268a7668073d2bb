"""Browsing from a web browser: HTML listings of artifact directories and inline text views.

`gateway.artifacts` hands a request here only when it prefers HTML (`prefers_html`); API clients
never get here and keep MLflow's JSON. Failures are raised as usual: `gateway.errors` renders
them as an HTML page for such requests.
"""

import asyncio

from aiohttp import web

from backends import Entry
from gateway.errors import NotFound
from gateway.mime import guess_mime_type, is_text_like
from gateway.request_parts import backend_of
from gateway.urls import ARTIFACTS
from gateway.web.listing import ListingQuery, build_page
from gateway.web.listing_html import ListingView, render
from gateway.web.pages import html_response, quote_path

VIEW_LIMIT = 1 << 20
"""Text files up to this size are shown inline with `?view=1`; bigger ones download."""


def viewable(name: str, size: int) -> bool:
    return size <= VIEW_LIMIT and is_text_like(guess_mime_type(name))


def wants_view(request: web.Request) -> bool:
    return request.query.get("view") == "1"


async def listing_page(request: web.Request, path: str) -> web.Response:
    """The HTML listing of directory `path` (already confined; '' is the root)."""
    query = ListingQuery.parse(request.query)
    entries = await _directory_entries(request, path)
    base, home = _locations(request.raw_path, path)
    text = await asyncio.to_thread(_render, path, entries, query, base, home)
    response = html_response(text)
    response.enable_compression()
    return response


def _render(path: str, entries: list[Entry], query: ListingQuery, base: str, home: str) -> str:
    """Runs in a thread: sorting 50,000 entries takes tens of milliseconds."""
    shown = build_page(entries, query)
    names = frozenset(e.name for e in shown.entries if not e.is_dir and viewable(e.name, e.size))
    return render(ListingView(path, shown, query, base, home, names))


async def _directory_entries(request: web.Request, path: str) -> list[Entry]:
    try:
        return await backend_of(request).list_dir(path)
    except NotADirectoryError:
        raise NotFound(f"Not a directory: '{path}'") from None


def _locations(raw_path: str, path: str) -> tuple[str, str]:
    """(base, home): the directory's canonical URL relative to the request, and `/` from there.

    The request is `<prefix>/mlflow-artifacts/artifacts/<raw tail>` or `...artifacts?path=`; the
    raw (still encoded) tail is what the browser resolves relative links against.
    """
    prefix, _, tail = raw_path.split("?", 1)[0].partition(ARTIFACTS)
    to_root = "../" * tail[1:].count("/") if tail.startswith("/") else "artifacts/"
    directory = quote_path(path) + "/" if path else ""
    depth = prefix.count("/") + 2 + (path.count("/") + 1 if path else 0)
    return to_root + directory or "./", "../" * depth
