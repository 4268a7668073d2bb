"""Authentication and authorization: the users file, and the middleware that checks every route.

`install(app, settings)` adds the middleware when `--auth-file` or `--read-only` is given; without
either the server is open, as before. The users file needs the `auth` extra
(`pip install 'artgw[auth]'`): it is imported only then.
"""

import functools
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.auth.reload import AuthState

USER = web.RequestKey("user", str)
"""The request key holding the signed-in user's name (the access log prints it)."""
PRINCIPAL = web.RequestKey("principal", object)
"""Who sent the request (`gateway.auth.policy.Principal`), once authenticated."""
AUTH_STATE = web.AppKey("auth_state", object)
"""The app's `gateway.auth.reload.AuthState`, when it runs with --auth-file."""
AUTH_STORE = web.AppKey("auth_store", object)
"""--auth-store-uri: an --artifacts-only server's view of the tracking store, for grants only."""
MISSING_EXTRA = "--auth-file needs the auth extra: pip install 'artgw[auth]'"


def install(app: web.Application, settings: Settings) -> None:
    if not (settings.auth_file or settings.read_only):
        return
    from gateway.auth.middleware import auth_middleware

    state = None
    if settings.auth_file:
        state = _state(settings.auth_file)
        from gateway.auth.reload import auth_context

        app.cleanup_ctx.append(functools.partial(auth_context, state=state))
        app[AUTH_STATE] = state
        if settings.artifacts_only and settings.auth_store_uri:
            _add_store(app, settings)
    app.middlewares.append(auth_middleware(state, settings.read_only))


def _state(path: str) -> "AuthState":
    try:
        from gateway.auth.reload import AuthState
    except ImportError as exc:
        raise ValueError(MISSING_EXTRA) from exc
    return AuthState(path)


def check_file(path: str) -> None:
    """Load the users file once (blocking), raising ValueError with the reason when unusable."""
    try:
        from gateway.auth.reload import check_file as check
    except ImportError as exc:
        raise ValueError(MISSING_EXTRA) from exc
    check(path)


def _add_store(app: web.Application, settings: Settings) -> None:
    """The tracking store an --artifacts-only server reads (never writes) to find which
    experiment an artifact path belongs to; it must exist already."""
    from tracking.open import store_from_uri

    store = store_from_uri(settings.auth_store_uri, settings.default_artifact_root, create=False)
    app[AUTH_STORE] = store

    async def opened(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        yield
        await store.close()

    app.cleanup_ctx.append(opened)


def tracking_store(app: web.Application) -> object | None:
    """Where the checker looks up runs and experiments: this server's tracking store, or the
    one --auth-store-uri names."""
    from gateway.tracking.keys import STORE

    return app.get(STORE) or app.get(AUTH_STORE)
