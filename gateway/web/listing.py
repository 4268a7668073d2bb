"""What one HTML listing page shows: entries sorted (directories first), filtered and paginated.

Sorting and filtering happen on the server over the whole directory, so they hold across pages;
the page's script repeats them without a round trip when one page holds the whole directory.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

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


def _name_key(entry: Entry) -> tuple[str, str]:
    return entry.name.casefold(), entry.name


_KEYS: dict[str, Callable[[Entry], tuple]] = {
    "name": _name_key,
    "size": lambda e: (e.size, *_name_key(e)),
    "time": lambda e: (e.mtime if e.mtime is not None else float("-inf"), *_name_key(e)),
}


def sort_entries(entries: Sequence[Entry], sort: str, descending: bool) -> list[Entry]:
    ordered = sorted(entries, key=_KEYS[sort], reverse=descending)
    return [e for e in ordered if e.is_dir] + [e for e in ordered if not e.is_dir]


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
