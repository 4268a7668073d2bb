"""OIDC bearer tokens: real JWTs signed by keys the test makes, verified against a JWKS served by
a small local aiohttp server (or read from a file); issuer, audience, expiry, key rotation."""

import json
import time
from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.auth import oidc
from tests.auth_users import UsersFile, bearer
from tests.conftest import ARTIFACTS, GatewayFactory
from tests.oidc_keys import AUDIENCE, ISSUER, OIDC_GRANTS, Keys, oidc_table


@pytest.fixture
async def idp(aiohttp_server: Callable) -> tuple[Keys, TestServer, list[int]]:
    keys = Keys()
    keys.add("k1")
    fetches: list[int] = []

    async def jwks(request: web.Request) -> web.Response:
        fetches.append(1)
        return web.json_response(keys.jwks())

    app = web.Application()
    app.router.add_get("/jwks.json", jwks)
    return keys, await aiohttp_server(app), fetches


@pytest.fixture
async def client(make_gateway: GatewayFactory, tmp_path: Path, idp) -> TestClient:
    _, server, _ = idp
    users = UsersFile(
        tmp_path / "users.toml",
        grants=OIDC_GRANTS,
        extra=oidc_table(str(server.make_url("/jwks.json"))),
    )
    return await make_gateway(auth_file=str(users.write()))


async def put_status(client: TestClient, token: str) -> int:
    async with client.put(f"{ARTIFACTS}/team/j.txt", data=b"j", headers=bearer(token)) as r:
        if r.status == 401:
            assert (await r.json())["error_code"] == "UNAUTHENTICATED"
            assert r.headers["WWW-Authenticate"].startswith('Bearer realm="artgw"')
        return r.status


async def test_a_valid_token_signs_in_with_its_groups(client: TestClient, idp) -> None:
    keys, _, _ = idp
    assert await put_status(client, keys.token(roles=["ml"])) == 200
    assert await put_status(client, keys.token(roles="ml")) == 200  # one group as a string
    assert await put_status(client, keys.token(roles=["other"])) == 403
    async with client.put(
        f"{ARTIFACTS}/x/j.txt", data=b"j", headers=bearer(keys.token(roles=["ml"]))
    ) as r:
        assert "user 'dana'" in (await r.json())["message"]


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 3600},
        {"aud": "someone-else"},
        {"iss": "https://evil.test/"},
        {"sub": ""},
    ],
    ids=["expired", "audience", "issuer", "no subject"],
)
async def test_tokens_failing_a_check_are_refused(client: TestClient, idp, claims: dict) -> None:
    keys, _, _ = idp
    assert await put_status(client, keys.token(roles=["ml"], **claims)) == 401


async def test_forged_tokens_are_refused(client: TestClient, idp) -> None:
    keys, _, _ = idp
    good = keys.token(roles=["ml"])
    header, body, _ = good.split(".")
    forger = Keys()
    forger.add("k1")  # same key id, another key
    assert await put_status(client, forger.token(roles=["ml"])) == 401
    assert await put_status(client, f"{header}.{body}.AAAA") == 401
    unsigned = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "dana", "exp": 2**31, "roles": ["ml"]},
        None,
        algorithm="none",
    )
    assert await put_status(client, unsigned) == 401
    public_pem = (
        keys.private["k1"]
        .public_key()
        .public_bytes(
            encoding=__import__(
                "cryptography.hazmat.primitives.serialization", fromlist=["x"]
            ).Encoding.PEM,
            format=__import__(
                "cryptography.hazmat.primitives.serialization", fromlist=["x"]
            ).PublicFormat.SubjectPublicKeyInfo,
        )
    )
    hs = _hs256_with(
        public_pem, {"iss": ISSUER, "aud": AUDIENCE, "sub": "dana", "exp": 2**31, "roles": ["ml"]}
    )
    assert await put_status(client, hs) == 401


def _hs256_with(secret: bytes, claims: dict) -> str:
    """The classic confusion attack: HS256 keyed with the RSA public key (PyJWT refuses to sign
    with a PEM key, so the token is built by hand)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
        + "."
        + b64(json.dumps(claims).encode())
    )
    signature = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64(signature)


async def test_a_rotated_key_is_fetched_when_first_seen(
    client: TestClient, idp, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys, _, fetches = idp
    monkeypatch.setattr(oidc, "REFETCH_SECONDS", 0.0)
    assert await put_status(client, keys.token(roles=["ml"])) == 200
    assert await put_status(client, keys.token(roles=["ml"])) == 200
    assert len(fetches) == 1  # cached
    keys.add("k2", "ec")
    assert await put_status(client, keys.token("k2", "ES256", roles=["ml"])) == 200
    assert len(fetches) == 2


async def test_the_jwks_may_be_a_file(make_gateway: GatewayFactory, tmp_path: Path) -> None:
    keys = Keys()
    keys.add("k1")
    (tmp_path / "jwks.json").write_text(json.dumps(keys.jwks()))
    users = UsersFile(
        tmp_path / "users.toml", grants=OIDC_GRANTS, extra=oidc_table(str(tmp_path / "jwks.json"))
    )
    client = await make_gateway(auth_file=str(users.write()))
    assert await put_status(client, keys.token(roles=["ml"])) == 200


async def test_api_tokens_still_work_beside_oidc(client: TestClient) -> None:
    from tests.auth_users import ADMIN

    async with client.put(f"{ARTIFACTS}/team/t.txt", data=b"t", headers=bearer(ADMIN.token)) as r:
        assert r.status == 403  # admin holds no grant in this file's rules, but is signed in
