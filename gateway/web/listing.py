"""What one HTML listing page shows: entries sorted (directories first), filtered and paginated.

Sorting and filtering happen on the server over the whole directory, so they hold across pages;
the page's script repeats them without a round trip when one page holds the whole directory.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from backends import Entry
from gateway.errors import InvalidParameter

PAGE_SIZE = 1000
SORT_KEYS = ("name", "size", "time")
FIRST_ORDER = {"name": "asc", "size": "desc", "time": "desc"}
"""The order a column sorts in on its first click: names A-Z, biggest and newest first."""


@dataclass(frozen=True)
class ListingQuery:
    sort: str = "name"
    order: str = "asc"
    filter: str = ""
    page: int = 1

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> "ListingQuery":
        sort = query.get("sort", "name")
        order = query.get("order", FIRST_ORDER.get(sort, "asc"))
        if sort not in SORT_KEYS or order not in ("asc", "desc"):
            raise InvalidParameter(f"sort must be one of {', '.join(SORT_KEYS)}; order asc or desc")
        return cls(sort, order, query.get("filter", "").strip(), _page_number(query.get("page")))

    def params(self, **changes: object) -> dict[str, str]:
        """Query parameters for a link to this view with `changes`, defaults left out."""
        values = {"sort": self.sort, "order": self.order, "filter": self.filter, "page": self.page}
        values.update(changes)
        defaults: dict[str, object] = {"sort": "name", "filter": "", "page": 1}
        defaults["order"] = FIRST_ORDER[str(values["sort"])]
        return {k: str(v) for k, v in values.items() if v != defaults[k]}


@dataclass(frozen=True)
class ListingPage:
    entries: Sequence[Entry]
    total: int
    matched: int
    page: int
    pages: int
    first_index: int

    @property
    def complete(self) -> bool:
        """True when this page holds every entry of the directory (so the script may sort)."""
        return self.pages == 1 and self.matched == self.total


def _page_number(value: str | None) -> int:
    if value is None or value == "":
        return 1
    if not value.isdigit() or int(value) < 1:
        raise InvalidParameter(f"page must be a positive integer, not '{value}'")
    return int(value)


_NAME = itemgetter(0)
_SIZE = itemgetter(2)


def sort_entries(entries: Sequence[Entry], sort: str, descending: bool) -> list[Entry]:
    """Directories first, each group by `sort`, ties by case-folded name, then by name.

    Done as successive stable sorts with C-level keys (name, then case-folded name, then the
    column), not one sort on a Python key tuple per entry: several times faster on 100,000
    entries, and nearly linear on a listing that arrives sorted by name."""
    ordered = sorted(entries, key=_NAME, reverse=descending)
    ordered = _stable_by(ordered, [e.name.casefold() for e in ordered], descending)
    if sort == "size":
        ordered.sort(key=_SIZE, reverse=descending)
    elif sort == "time":
        times = [_NO_TIME if e.mtime is None else e.mtime for e in ordered]
        ordered = _stable_by(ordered, times, descending)
    ordered.sort(key=_IS_DIR, reverse=True)  # stable, reverse included: folders first
    return ordered


_IS_DIR = itemgetter(1)
_NO_TIME = float("-inf")


def _stable_by(items: list[Entry], keys: list[Any], descending: bool) -> list[Entry]:
    order = sorted(range(len(items)), key=keys.__getitem__, reverse=descending)
    return [items[i] for i in order]


def filter_entries(entries: Sequence[Entry], needle: str) -> list[Entry]:
    folded = needle.casefold()
    return [e for e in entries if folded in e.name.casefold()] if folded else list(entries)


def build_page(entries: Sequence[Entry], query: ListingQuery, size: int = PAGE_SIZE) -> ListingPage:
    matched = filter_entries(entries, query.filter)
    ordered = sort_entries(matched, query.sort, query.order == "desc")
    pages = max(1, -(-len(ordered) // size))
    page = min(query.page, pages)
    start = (page - 1) * size
    return ListingPage(
        ordered[start : start + size], len(entries), len(ordered), page, pages, start
    )
