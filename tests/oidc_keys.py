"""Keys of a test identity provider: RSA and EC keys made here, their JWKS, and JWTs they sign;
the users-file [oidc] table that trusts them."""

import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://idp.test/"
AUDIENCE = "artgw"


class Keys:
    def __init__(self) -> None:
        self.private: dict[str, Any] = {}
        self.published: list[dict[str, Any]] = []

    def add(self, kid: str, kind: str = "rsa") -> None:
        if kind == "rsa":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        self.private[kid] = key
        self.published.append({**jwk, "kid": kid, "use": "sig"})

    def token(self, kid: str = "k1", alg: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "dana", "exp": now + 300, "iat": now}
        body.update(claims)
        return jwt.encode(body, self.private[kid], algorithm=alg, headers={"kid": kid})

    def jwks(self) -> dict[str, Any]:
        return {"keys": self.published}


OIDC_GRANTS = """
[[grants]]
to = ["group:ml"]
permission = "write"
artifacts = ["team"]
"""


def oidc_table(jwks: str) -> str:
    return (
        f'\n[oidc]\njwks = "{jwks}"\nissuer = "{ISSUER}"\naudience = "{AUDIENCE}"\n'
        'groups_claim = "roles"\n'
    )
