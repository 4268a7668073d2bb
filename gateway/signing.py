"""Signed, expiring, path-bound tokens for the URLs artgw hands out (parts, ranged downloads).

A token is `<claims>.<mac>`: the claims as compact JSON in URL-safe base64, and an HMAC-SHA256 of
that text under the gateway's secret (`--secret`), truncated to 128 bits. Every worker and every
replica with the same secret accepts the others' tokens; nothing is stored. The claims name what
the token is for (`kind`), the artifact path it is bound to, and when it expires.
"""

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

MAC_BYTES = 16


class TokenError(Exception):
    """The token is not one this gateway issued for this use (or it was altered)."""


class TokenExpired(TokenError):
    pass


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"artgw-token\0" + secret.encode()).digest()

    def _mac(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest()[:MAC_BYTES])

    def sign(self, kind: str, path: str, ttl: float, **claims: Any) -> str:
        body = {"k": kind, "p": path, "e": int(time.time() + ttl), **claims}
        text = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{text}.{self._mac(text)}"

    def verify(self, token: str, kind: str, path: str, *, allow_expired: bool = False) -> dict:
        """The claims of a token issued for `kind` on `path`; TokenError otherwise."""
        text, _, mac = token.partition(".")
        if not text or not mac.isascii() or not hmac.compare_digest(mac, self._mac(text)):
            raise TokenError("the signature does not match")
        try:
            claims = json.loads(_unb64(text))
        except (ValueError, binascii.Error):
            raise TokenError("the claims are unreadable") from None
        if not isinstance(claims, dict) or claims.get("k") != kind:
            raise TokenError("it was issued for another use")
        if claims.get("p") != path:
            raise TokenError("it was issued for another path")
        if not allow_expired and not time.time() < claims.get("e", 0):
            raise TokenExpired("it has expired")
        return claims
