"""Errors as small HTML pages, for browsers: the renderer gateway/errors.py asks for."""

from aiohttp import web

from gateway.errors import HTML_ERRORS, ApiError
from gateway.web.negotiation import prefers_html
from gateway.web.pages import error_page, home_from, html_response


def html_error(request: web.Request, error: ApiError) -> web.Response | None:
    """The error page for a request that prefers text/html; None for an API client."""
    if not prefers_html(request):
        return None
    home = home_from(request.raw_path)
    page = error_page(error.status, error.error_code, error.message, home)
    return html_response(page, error.status)


def install(app: web.Application) -> None:
    app[HTML_ERRORS] = html_error
