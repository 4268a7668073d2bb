"""The landing page `GET /`: sections of links, fed by whoever has something to show.

The gateway itself contributes the link to the root artifact listing. The tracking module adds
experiments and their runs by registering a source when it installs its routes:

    from gateway.web.landing import Link, Section, add_landing_source, artifact_listing_href

    async def experiments(app: web.Application) -> list[Section]:
        return [
            Section(exp.name, [Link(run.name, artifact_listing_href(run.artifact_path))])
            for exp in ...
        ]

    add_landing_source(app, experiments)

Sources run in the order they were added, before the artifacts section; each returns a list of
sections (keep them bounded: the page is not paginated).
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiohttp import web

from gateway.urls import ROOT_LISTING
from gateway.web.pages import esc, html_response, page, quote_path


@dataclass(frozen=True)
class Link:
    """One line of a section; `href` is relative to the landing page (`/`)."""

    text: str
    href: str
    note: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    links: Sequence[Link] = field(default_factory=tuple)
    empty: str = "Nothing here yet."


LandingSource = Callable[[web.Application], Awaitable[list[Section]]]
LANDING_SOURCES = web.AppKey("landing_sources", list[LandingSource])


def artifact_listing_href(path: str) -> str:
    """Link from the landing page to the HTML listing of artifact directory `path` ('' = root)."""
    return ROOT_LISTING + (quote_path(path.strip("/")) + "/" if path.strip("/") else "")


def add_landing_source(app: web.Application, source: LandingSource) -> None:
    app[LANDING_SOURCES].append(source)


def artifacts_section() -> Section:
    return Section("Artifacts", [Link("All artifacts", artifact_listing_href(""), "root listing")])


async def landing_sections(app: web.Application) -> list[Section]:
    sections: list[Section] = []
    for source in app[LANDING_SOURCES]:
        sections += await source(app)
    return [*sections, artifacts_section()]


async def landing(request: web.Request) -> web.Response:
    return html_response(render(await landing_sections(request.app)))


def render(sections: Sequence[Section]) -> str:
    body = '<header><h1 class="brand">artgw</h1></header>' + "".join(map(_section, sections))
    return page("artgw", body)


def _section(section: Section) -> str:
    items = "".join(
        f'<li><a href="{esc(link.href)}">{esc(link.text)}</a>'
        + (f'<span class="note">{esc(link.note)}</span>' if link.note else "")
        + "</li>"
        for link in section.links
    )
    content = f"<ul>{items}</ul>" if items else f'<p class="empty">{esc(section.empty)}</p>'
    return f"<section><h2>{esc(section.title)}</h2>{content}</section>"


async def no_favicon(request: web.Request) -> web.Response:
    """Browsers ask for /favicon.ico beside every text view and download: answer without a 404."""
    return web.Response(status=204, headers={"Cache-Control": "max-age=86400"})


def install(app: web.Application) -> None:
    app[LANDING_SOURCES] = []
    app.router.add_get("/", landing)
    app.router.add_get("/favicon.ico", no_favicon)
