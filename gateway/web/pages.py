"""The HTML page shell shared by listings, the landing page and browser error pages.

No template engine: pages are small functions returning strings. Every name goes through `esc`,
every path in a link through `quote_path`; the only style and script are the hashed inline blocks
of `gateway.web.assets`, enforced by the Content-Security-Policy sent with every page.
"""

from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from aiohttp import web

from gateway.web.assets import CONTENT_SECURITY_POLICY, CSS, JS

UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def quote_path(path: str) -> str:
    """Percent-encode each segment of a relative artifact path (`/` stays a separator)."""
    return "/".join(quote(part, safe="", errors="surrogateescape") for part in path.split("/"))


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in UNITS:
        value /= 1024
        if round(value, 1) < 1024 or unit == UNITS[-1]:
            break
    return f"{value:.1f} {unit}"


def utc_time(mtime: float) -> str:
    return datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%d %H:%M")


def iso_time(mtime: float) -> str:
    return datetime.fromtimestamp(mtime, UTC).isoformat(timespec="seconds")


def page(title: str, body: str, *, base: str | None = None) -> str:
    base_tag = f'<base href="{esc(base)}">' if base is not None else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"{base_tag}<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body>{body}<script>{JS}</script></body></html>\n"
    )


def html_response(text: str, status: int = 200) -> web.Response:
    """A page as UTF-8 (names that are not valid Unicode show as U+FFFD), never cached."""
    return web.Response(
        status=status,
        body=_utf8(text),
        content_type="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Vary": "Accept",
        },
    )


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a stored name that is not UTF-8 (kept as surrogate escapes)
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").encode("utf-8")


def home_from(raw_path: str) -> str:
    """A relative link from the page at `raw_path` to the landing page `/`."""
    return "../" * (raw_path.split("?", 1)[0].count("/") - 1) or "./"


def error_page(status: int, code: str, message: str, home: str) -> str:
    body = (
        f'<main class="error"><h1>{status} {esc(code)}</h1><p><code>{esc(message)}</code></p>'
        f'<p><a href="{esc(home)}">artgw home</a></p></main>'
    )
    return page(f"{status} {code} - artgw", body)
