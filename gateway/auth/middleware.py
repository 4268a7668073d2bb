"""The one place every request is checked: classify its route, authenticate, authorize.

Order: the route's rule (open routes pass untouched) -> `--read-only` refuses writes and deletes
-> who is it (401 / 429) -> what does it act on (a malformed target is the handler's 400) -> may
they (403 naming the permission; 401 when anonymous) -> the handler -> searches drop what the
caller may not read. Nothing is read from the body before the caller is known, and an upload's
body is never read here at all.
"""

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.auth import PRINCIPAL, USER, tracking_store
from gateway.auth.checker import Checker
from gateway.auth.failures import Throttled, Unauthenticated
from gateway.auth.permissions import Permission, Target
from gateway.auth.policy import Principal
from gateway.auth.rules import UNCLASSIFIED, Rule, route_rule
from gateway.errors import ApiError, Handler, PermissionDenied, render_error

if TYPE_CHECKING:
    from gateway.auth.reload import AuthState

REALM = 'realm="artgw"'


class NotSignedIn(ApiError):
    status = 401
    error_code = "UNAUTHENTICATED"


class TooManyFailures(ApiError):
    status = 429
    error_code = "REQUEST_LIMIT_EXCEEDED"


class RouteRules:
    """Each route's rule, computed on first use (a route missing from the tables is admin-only)."""

    def __init__(self) -> None:
        self._rules: dict[web.AbstractRoute, Rule] = {}

    def of(self, request: web.Request) -> Rule | None:
        route = request.match_info.route
        if route.resource is None:  # aiohttp's own 404/405 (a new route object each time)
            return None
        rule = self._rules.get(route)
        if rule is None:
            rule = self._rules[route] = route_rule(route) or UNCLASSIFIED
        return rule


def auth_middleware(state: "AuthState | None", read_only: bool) -> Any:
    rules = RouteRules()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        rule = rules.of(request)
        if rule is None or rule.permission is None:
            return await handler(request)
        if read_only and rule.permission >= Permission.WRITE:
            raise PermissionDenied(
                f"This server is read-only (--read-only): {request.method} needs "
                f"'{rule.permission.word}' permission, which it refuses to everyone."
            )
        if state is None:
            return await handler(request)
        return await _checked(request, handler, rule, state)

    return check


async def _checked(
    request: web.Request, handler: Handler, rule: Rule, state: "AuthState"
) -> web.StreamResponse:
    authenticator = state.authenticator
    try:
        who = await authenticator.principal(request)
    except Throttled as exc:
        busy = render_error(request, TooManyFailures(str(exc)))
        busy.headers["Retry-After"] = str(exc.retry_after)
        return busy
    except Unauthenticated as exc:
        return challenge(request, str(exc))
    request[PRINCIPAL] = who
    if who.name is not None:
        request[USER] = who.name
    checker = Checker(authenticator.policy, tracking_store(request.app), authenticator.lookups)
    assert rule.permission is not None
    for target in await rule.targets(request):
        if not await checker.allows(who, rule.permission, target):
            return refusal(request, who, rule.permission, target)
    for target in await rule.reads(request) if rule.reads else ():
        if not await checker.allows(who, Permission.READ, target):
            return refusal(request, who, Permission.READ, target)
    response = await handler(request)
    if rule.results is not None:
        return await _readable_results(response, rule.results, checker, who)
    return response


def challenge(request: web.Request, message: str) -> web.Response:
    response = render_error(request, NotSignedIn(message))
    bearer = request.headers.get("Authorization", "").lower().startswith("bearer")
    scheme = (
        f'Bearer {REALM}, error="invalid_token"' if bearer else f'Basic {REALM}, charset="UTF-8"'
    )
    response.headers["WWW-Authenticate"] = scheme
    return response


def refusal(
    request: web.Request, who: Principal, needed: Permission, target: Target
) -> web.Response:
    if who.name is None:
        return challenge(
            request, f"Sign in: '{needed.word}' permission on {target.describe()} is needed."
        )
    return render_error(
        request,
        PermissionDenied(
            f"Permission denied: user '{who.name}' does not have '{needed.word}' permission "
            f"on {target.describe()}."
        ),
    )


async def _readable_results(
    response: web.StreamResponse, spec: tuple[str, str, str], checker: Checker, who: Principal
) -> web.StreamResponse:
    """A search's answer without the items the caller may not read."""
    if response.status != 200 or not isinstance(response, web.Response) or response.body is None:
        return response
    list_key, item_key, kind = spec
    try:
        body = json.loads(response.body)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return response
    items = body.get(list_key) if isinstance(body, dict) else None
    if not isinstance(items, list):
        return response
    kept = []
    for item in items:
        checker.remember(kind, item)
        value = item.get(item_key) if isinstance(item, dict) else None
        if value is not None and await checker.allows(
            who, Permission.READ, Target(kind, str(value))
        ):
            kept.append(item)
    body[list_key] = kept
    return web.Response(status=200, body=json.dumps(body).encode(), content_type="application/json")
