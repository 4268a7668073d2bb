"""Authorization of the gateway's own signed URLs (gateway/multipart.py): part uploads
(`mpu/part/...?upload_id=`) and signed downloads (`signed/...?token=`).

Clients send those requests without credentials, as they would to a store's presigned URL, so
the routes are open to the middleware and the token is the authorization. It records who asked
for it (`creator`); each use checks that this user may still write (read) the path under the
rules in force (`may_use`), so revoking a grant or a user also stops the uploads they started.
An OIDC identity cannot be re-checked (its groups came with its JWT): its tokens stand until they
expire.
"""

from aiohttp import web

from gateway.auth import AUTH_STATE, PRINCIPAL, tracking_store
from gateway.errors import PermissionDenied
from gateway.keys import SETTINGS

OIDC_PREFIX = "oidc:"


def creator(request: web.Request) -> str | None:
    """What a token records of the user who asked for it (None: anonymous or no auth)."""
    who = request.get(PRINCIPAL)
    if who is None or who.name is None:
        return None
    return OIDC_PREFIX + who.name if who.via == "oidc" else who.name


async def may_use(request: web.Request, user: str | None, write: bool, path: str) -> None:
    if write and request.app[SETTINGS].read_only:
        raise PermissionDenied("This server is read-only (--read-only): parts are refused.")
    state = request.app.get(AUTH_STATE)
    if state is None or (user or "").startswith(OIDC_PREFIX):
        return
    # imported here, past the no-auth return: a gateway without auth never loads the checker
    # (its first part PUT spent ~0.2 s on the event loop compiling these modules)
    from gateway.auth.checker import Checker
    from gateway.auth.permissions import ARTIFACT, Permission, Target
    from gateway.auth.policy import ANONYMOUS_PRINCIPAL

    needed = Permission.WRITE if write else Permission.READ
    authenticator = state.authenticator  # type: ignore[attr-defined]
    policy = authenticator.policy
    if user is None:
        who = ANONYMOUS_PRINCIPAL
    elif user in policy.users:
        who = policy.principal_of(policy.users[user])
    else:
        raise PermissionDenied(f"The user '{user}' of this token no longer exists.")
    checker = Checker(policy, tracking_store(request.app), authenticator.lookups)
    if not await checker.allows(who, needed, Target(ARTIFACT, path)):
        raise PermissionDenied(
            f"Permission denied: user '{who.shown}' does not have '{needed.word}' permission "
            f"on artifact path '{path}' any more."
        )
