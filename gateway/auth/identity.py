"""Who sent a request: HTTP Basic (users file passwords), Bearer API tokens, Bearer OIDC JWTs.

Every failure looks the same from outside: an unknown user costs one verification of the dummy
hash, a wrong password one of the user's hash, both with the file's parameters, and both answer
the same 401. Passwords are verified in a thread, a few at a time (each argon2 verification holds
its memory cost), and a verified (user, password) pair is remembered for `CACHE_SECONDS` under a
keyed hash, so a client that sends its password with every request pays the hash cost once.
"""

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from ipaddress import IPv4Network, IPv6Network, ip_address

from aiohttp import web

from gateway.auth import hashing, oidc
from gateway.auth.failures import Throttled, Unauthenticated
from gateway.auth.lookups import Lookups
from gateway.auth.policy import ANONYMOUS_PRINCIPAL, Policy, Principal, principal
from gateway.auth.throttle import Throttle

CACHE_SECONDS = 300.0
CACHE_ENTRIES = 10_000
VERIFY_AT_ONCE = max(1, min(os.cpu_count() or 1, 4))


class Authenticator:
    """Holds what lasts across requests (cache, throttle, JWKS keys) for one `Policy`; a reload
    builds a new one, which also empties the cache."""

    def __init__(self, policy: Policy, throttle: Throttle | None = None) -> None:
        self.policy = policy
        limits = policy.source.throttle
        same = throttle is not None and (throttle.failures, throttle.window) == (
            limits.failures,
            limits.window_seconds,
        )
        self.throttle: Throttle = (
            throttle if same and throttle else Throttle(limits.failures, limits.window_seconds)
        )
        self.keys = oidc.JwksKeys(policy.source.oidc) if policy.source.oidc else None
        self._secret = secrets.token_bytes(32)
        self._verified: dict[bytes, float] = {}
        self._slots = asyncio.Semaphore(VERIFY_AT_ONCE)
        self._pending: dict[bytes, asyncio.Future[bool]] = {}
        self.lookups = Lookups()
        """Tracking-store lookups of the checker, shared by this policy's requests."""

    async def principal(self, request: web.Request) -> Principal:
        header = request.headers.get("Authorization", "")
        if not header:
            return ANONYMOUS_PRINCIPAL
        address = client_address(request, self.policy.source.throttle.trusted_proxies)
        wait = self.throttle.retry_after(address)
        if wait:
            raise Throttled(wait)
        who = await self._from_header(header)
        if who is None:
            self.throttle.failed(address)
            raise Unauthenticated("Invalid credentials")
        return who

    async def _from_header(self, header: str) -> Principal | None:
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            pair = _basic_pair(value.strip())
            return await self._password(*pair) if pair else None
        if scheme == "bearer":
            return await self._bearer(value.strip())
        return None

    async def _password(self, name: str, password: str) -> Principal | None:
        user = self.policy.users.get(name)
        key = hmac.new(self._secret, f"{name}\0{password}".encode(), hashlib.sha256).digest()
        if user is not None and self._verified.get(key, 0.0) > time.monotonic():
            return self.policy.principal_of(user)
        stored = user.password if user is not None and user.password else self.policy.dummy_hash
        ok = await self._verify_once(key, stored, password)
        if not ok or user is None or not user.password:
            return None
        self._remember(key)
        return self.policy.principal_of(user)

    async def _verify_once(self, key: bytes, stored: str, password: str) -> bool:
        """Concurrent requests with the same credentials (a client's first parallel downloads)
        share one verification instead of queueing one each."""
        task = self._pending.get(key)
        if task is None:
            task = asyncio.ensure_future(self._verify(stored, password))
            self._pending[key] = task
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        return await asyncio.shield(task)

    async def _verify(self, stored: str, password: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(hashing.verify_password, stored, password)

    def _remember(self, key: bytes) -> None:
        if len(self._verified) >= CACHE_ENTRIES:
            now = time.monotonic()
            self._verified = {k: t for k, t in self._verified.items() if t > now}
            if len(self._verified) >= CACHE_ENTRIES:
                self._verified.clear()
        self._verified[key] = time.monotonic() + CACHE_SECONDS

    async def _bearer(self, token: str) -> Principal | None:
        if not token:
            return None
        if self.keys is not None and oidc.looks_like_jwt(token):
            return await self._jwt(token)
        found = self.policy.tokens.get(hashing.token_hash(token))
        return self.policy.principal_of(found[0]) if found else None

    async def _jwt(self, token: str) -> Principal | None:
        assert self.keys is not None
        claims = await oidc.verify(self.keys, token)
        found = oidc.identity(self.keys.oidc, claims) if claims is not None else None
        if found is None:
            return None
        name, groups = found
        user = self.policy.users.get(name)
        return principal(name, (*groups, *(user.groups if user else ())), via="oidc")


def _basic_pair(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    return (name, password) if sep and name else None


def client_address(request: web.Request, trusted: tuple[IPv4Network | IPv6Network, ...]) -> str:
    """The peer, or behind trusted proxies the nearest X-Forwarded-For hop that is not one of
    them (hops further left are the client's to forge)."""
    hops = [request.remote or "?"]
    if trusted:
        forwarded = request.headers.getall("X-Forwarded-For", [])
        hops = [h.strip() for line in forwarded for h in line.split(",") if h.strip()] + hops
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0]


def _is_trusted(hop: str, trusted: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        address = ip_address(hop)
    except ValueError:
        return False
    return any(address in network for network in trusted)
