"""Content negotiation: does a request prefer an HTML page to MLflow's JSON?

A browser asks for `text/html,...,*/*;q=0.8`; the mlflow client sends `*/*` or no Accept at all.
Only a strictly higher q-value for text/html than for application/json selects HTML, so every
tie (no header, `*/*`, garbage) keeps the JSON API exactly as it is.
"""

from collections.abc import Iterator

from aiohttp import web

MediaRange = tuple[str, str, float]


def prefers_html(request: web.Request) -> bool:
    return html_preferred(request.headers.get("Accept"))


def html_preferred(accept: str | None) -> bool:
    if not accept:
        return False
    ranges = list(_media_ranges(accept))
    return quality(ranges, "text", "html") > quality(ranges, "application", "json")


def quality(ranges: list[MediaRange], kind: str, subtype: str) -> float:
    """q of the most specific range matching kind/subtype (RFC 9110, 12.5.1); 0 if none does."""
    best_rank, best_q = -1, 0.0
    for range_kind, range_subtype, q in ranges:
        rank = _rank(range_kind, range_subtype, kind, subtype)
        if rank > best_rank or (rank == best_rank and rank >= 0 and q > best_q):
            best_rank, best_q = rank, q
    return best_q


def _rank(range_kind: str, range_subtype: str, kind: str, subtype: str) -> int:
    if range_kind == kind and range_subtype == subtype:
        return 2
    if range_kind == kind and range_subtype == "*":
        return 1
    if range_kind == "*" and range_subtype == "*":
        return 0
    return -1


def _media_ranges(accept: str) -> Iterator[MediaRange]:
    for item in accept.split(","):
        media, *params = item.split(";")
        kind, slash, subtype = media.strip().lower().partition("/")
        if slash and kind and subtype:
            yield kind, subtype.strip(), _q_value(params)


def _q_value(params: list[str]) -> float:
    """The q parameter, 1 when absent; a malformed or out-of-range q counts as 0."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0
