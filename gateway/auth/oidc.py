"""OIDC bearer tokens: JWTs verified against the identity provider's JWKS (a URL or a file).

The key set is cached for `cache_seconds`; a token signed with a key id the cache does not know
makes one refetch (at most every `REFETCH_SECONDS`), so a provider's key rotation is picked up at
once without letting unknown key ids hammer it. Signature, expiry, issuer and audience are
checked by PyJWT with the configured public-key algorithms only.
"""

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from gateway.auth.users_file import Oidc

REFETCH_SECONDS = 10.0
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=10)
log = logging.getLogger("artgw.auth")


class JwksKeys:
    def __init__(self, oidc: Oidc) -> None:
        self.oidc = oidc
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK | None:
        fresh = time.monotonic() - self._fetched < self.oidc.cache_seconds
        if not fresh or (kid not in self._keys and self._may_refetch()):
            await self._refresh()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        return self._keys.get(kid)

    def _may_refetch(self) -> bool:
        return time.monotonic() - self._fetched >= REFETCH_SECONDS

    async def _refresh(self) -> None:
        async with self._lock:
            if self._fetched and time.monotonic() - self._fetched < REFETCH_SECONDS:
                return
            try:
                data = await self._fetch()
                keys = jwt.PyJWKSet.from_dict(data).keys
            except (OSError, ValueError, aiohttp.ClientError, jwt.PyJWTError) as exc:
                log.warning(
                    "JWKS %s not loaded (keeping %d cached keys): %s",
                    self.oidc.jwks,
                    len(self._keys),
                    exc,
                )
                self._fetched = time.monotonic() - self.oidc.cache_seconds + REFETCH_SECONDS
                return
            self._keys = {k.key_id: k for k in keys}
            self._fetched = time.monotonic()

    async def _fetch(self) -> dict[str, Any]:
        source = self.oidc.jwks
        if source.startswith(("http://", "https://")):
            async with (
                aiohttp.ClientSession(timeout=FETCH_TIMEOUT) as session,
                session.get(source) as response,
            ):
                response.raise_for_status()
                return await response.json(content_type=None)
        text = await asyncio.to_thread(Path(source.removeprefix("file://")).read_text)
        return json.loads(text)


async def verify(keys: JwksKeys, token: str) -> dict[str, Any] | None:
    """The token's claims when it is valid, else None (why is logged at debug level)."""
    oidc = keys.oidc
    try:
        header = jwt.get_unverified_header(token)
        key = await keys.key(header.get("kid"))
        if key is None:
            log.debug("JWT refused: unknown key id %r", header.get("kid"))
            return None
        return jwt.decode(
            token,
            key.key,
            algorithms=list(oidc.algorithms),
            audience=oidc.audience,
            issuer=oidc.issuer,
            leeway=oidc.leeway_seconds,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        log.debug("JWT refused: %s", exc)
        return None


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith("artgw_")


def identity(oidc: Oidc, claims: dict[str, Any]) -> tuple[str, tuple[str, ...]] | None:
    name = claims.get(oidc.username_claim)
    if not isinstance(name, str) or not name:
        return None
    groups = claims.get(oidc.groups_claim, [])
    groups = [groups] if isinstance(groups, str) else groups
    if not isinstance(groups, list):
        groups = []
    return name, tuple(g for g in groups if isinstance(g, str))
