"""The HTML of one directory listing: breadcrumbs, filter box, count, sortable table, pager.

All hrefs are relative to the listed directory (the page's `<base href>`), so the page works at
`.../artifacts/dir`, `.../artifacts/dir/` and `.../artifacts?path=dir` alike, and behind a proxy
that mounts the gateway under a path prefix.
"""

import math
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlencode

from backends import Entry
from gateway.web.listing import FIRST_ORDER, ListingPage, ListingQuery
from gateway.web.pages import esc, human_size, iso_time, page, quote_path, utc_time


@dataclass(frozen=True)
class ListingView:
    """Everything a listing page shows; hrefs are relative to the listed directory."""

    path: str
    page: ListingPage
    query: ListingQuery
    base: str
    """The listed directory's URL relative to the request's (the page's `<base href>`)."""
    home: str
    viewable: frozenset[str]
    """Names of the files on this page that `?view=1` shows inline."""

    def href(self, **changes: object) -> str:
        return "./?" + urlencode(self.query.params(**changes))


def render(view: ListingView) -> str:
    title = "/" + view.path if view.path else "/ (artifacts root)"
    body = (
        f'<header><a class="brand" href="{esc(view.home)}">artgw</a>{_crumbs(view.path)}</header>'
        f"{_toolbar(view)}{_table(view)}{_pager(view)}"
    )
    return page(f"{title} - artgw", body, base=view.base)


def _crumbs(path: str) -> str:
    parts = path.split("/") if path else []
    links = [("root", "../" * len(parts) or "./")]
    links += [(name, "../" * (len(parts) - i - 1) or "./") for i, name in enumerate(parts)]
    sep = '<span class="sep">/</span>'
    html = sep.join(f'<a href="{esc(href)}">{esc(name)}</a>' for name, href in links[:-1])
    last = f'<span aria-current="page">{esc(links[-1][0])}</span>'
    return f'<nav class="crumbs" aria-label="path">{html}{sep if html else ""}{last}</nav>'


def _toolbar(view: ListingView) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">'
        for k, v in view.query.params(filter="", page=1).items()
    )
    hint = "" if view.page.complete else _hint(view.page)
    return (
        f'<form class="bar" role="search" action="./" method="get">{hidden}'
        f'<input id="filter" name="filter" type="search" placeholder="Filter by name"'
        f' aria-label="Filter by name" value="{esc(view.query.filter)}" autocomplete="off">'
        f'<span class="count" id="count">{_count(view)}</span><span class="count" id="shown">'
        f"</span>{hint}{_archive_links()}</form>"
    )


def _archive_links() -> str:
    """The whole folder as one archive (gateway/archive.py), relative to the listed folder."""
    return (
        '<span class="archive">Download folder: <a href="./?archive=zip" download>.zip</a> '
        '<a href="./?archive=tar.gz" download>.tar.gz</a></span>'
    )


def _hint(listing_page: ListingPage) -> str:
    return (
        f'<span class="hint" id="hint" hidden>Press Enter to filter all '
        f"{listing_page.total:,} entries</span>"
    )


def _count(view: ListingView) -> str:
    listing_page = view.page
    dirs = sum(e.is_dir for e in listing_page.entries)
    if view.query.filter:
        text = f"{listing_page.matched:,} of {listing_page.total:,} entries match"
    else:
        text = _plural(listing_page.total, "entry", "entries")
    if listing_page.pages > 1:
        first = listing_page.first_index + 1
        text += f"; showing {first:,}-{first + len(listing_page.entries) - 1:,}"
    elif not view.query.filter:
        text += f" ({_plural(dirs, 'folder')}, {_plural(listing_page.total - dirs, 'file')})"
    return esc(text)


def _plural(count: int, one: str, many: str = "") -> str:
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def _table(view: ListingView) -> str:
    if not view.page.entries:
        what = "No entry matches the filter." if view.query.filter else "This folder is empty."
        return f'<p class="empty" id="empty">{what}</p>'
    show_time = any(e.mtime is not None for e in view.page.entries)
    columns = [("name", "Name", ""), ("size", "Size", "num")]
    columns += [("time", "Modified (UTC)", "time")] if show_time else []
    head = "".join(_header(view, key, label, css) for key, label, css in columns)
    rows = "".join(_row(e, e.name in view.viewable, show_time) for e in view.page.entries)
    complete = "1" if view.page.complete else "0"
    return (
        f'<table id="entries" data-complete="{complete}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _header(view: ListingView, key: str, label: str, css: str) -> str:
    query = view.query
    if query.sort == key:
        state = "ascending" if query.order == "asc" else "descending"
        order = "desc" if query.order == "asc" else "asc"
    else:
        state, order = "none", FIRST_ORDER[key]
    href = view.href(sort=key, order=order, page=1)
    css_class = f' class="{css}"' if css else ""
    return (
        f'<th{css_class} aria-sort="{state}"><a href="{esc(href)}" data-sort="{key}"'
        f' data-first="{FIRST_ORDER[key]}">{label}</a></th>'
    )


def _row(entry: Entry, viewable: bool, show_time: bool) -> str:
    name = esc(entry.name)
    href = esc(quote_path(entry.name) + ("/" if entry.is_dir else ""))
    icon = "dir" if entry.is_dir else "file"
    view = f' <a class="view" href="{href}?view=1">view</a>' if viewable else ""
    size = "" if entry.is_dir else human_size(entry.size)
    title = "" if entry.is_dir else f' title="{entry.size:,} bytes"'
    mtime = "" if entry.mtime is None else repr(entry.mtime)
    time = _time_cell(entry.mtime) if show_time else ""
    return (
        f'<tr data-name="{name}" data-dir="{int(entry.is_dir)}" data-size="{entry.size}"'
        f' data-time="{mtime}"><td class="name"><span class="icon {icon}" aria-hidden="true">'
        f'</span><a href="{href}">{name}{"/" if entry.is_dir else ""}</a>{view}</td>'
        f'<td class="num"{title}>{size}</td>{time}</tr>'
    )


def _time_cell(mtime: float | None) -> str:
    if mtime is None:
        return '<td class="time">-</td>'
    return _second_cell(math.floor(mtime))


@lru_cache(maxsize=4096)
def _second_cell(second: int) -> str:
    """Both formats show whole seconds, and files written together share them: cached."""
    return f'<td class="time"><time datetime="{iso_time(second)}">{utc_time(second)}</time></td>'


def _pager(view: ListingView) -> str:
    listing_page = view.page
    if listing_page.pages == 1:
        return ""
    current, last = listing_page.page, listing_page.pages
    links = [
        ("First", 1, current > 1),
        ("Previous", current - 1, current > 1),
        ("Next", current + 1, current < last),
        ("Last", last, current < last),
    ]
    parts = [
        f'<a href="{esc(view.href(page=number))}">{label}</a>'
        if active
        else f'<span class="count">{label}</span>'
        for label, number, active in links
    ]
    parts.insert(2, f'<span aria-current="page">Page {current:,} of {last:,}</span>')
    return f'<nav class="pager" aria-label="pages">{"".join(parts)}</nav>'
