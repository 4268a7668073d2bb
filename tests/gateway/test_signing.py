"""The gateway's signed tokens: each way of altering one is refused, table-driven."""

import base64
import json

import pytest

from gateway.signing import Signer, TokenError, TokenExpired

SIGNER = Signer("the secret")
TOKEN = SIGNER.sign("upload", "0/r/artifacts/a.bin", 86_400, s="store-id", n=3)
"""Made at collection: valid for a day, so that a long suite reaches these tests in time."""


def reclaimed(token: str, **changes: object) -> str:
    """The token with its claims changed and its old signature kept."""
    head, _, mac = token.partition(".")
    claims = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    text = base64.urlsafe_b64encode(json.dumps({**claims, **changes}).encode()).rstrip(b"=")
    return f"{text.decode()}.{mac}"


def test_a_token_verifies_for_its_use_and_path() -> None:
    claims = SIGNER.verify(TOKEN, "upload", "0/r/artifacts/a.bin")
    assert (claims["s"], claims["n"]) == ("store-id", 3)
    assert Signer("the secret").verify(TOKEN, "upload", "0/r/artifacts/a.bin")  # another worker


REFUSED = [
    ("another path", TOKEN, "upload", "0/r/artifacts/b.bin", TokenError),
    ("a parent path", TOKEN, "upload", "0/r/artifacts", TokenError),
    ("another use", TOKEN, "download", "0/r/artifacts/a.bin", TokenError),
    ("more parts claimed", reclaimed(TOKEN, n=9), "upload", "0/r/artifacts/a.bin", TokenError),
    ("path changed", reclaimed(TOKEN, p="x"), "upload", "x", TokenError),
    ("expiry pushed back", reclaimed(TOKEN, e=2**40), "upload", "0/r/artifacts/a.bin", TokenError),
    ("signature cut", TOKEN[:-3], "upload", "0/r/artifacts/a.bin", TokenError),
    ("no signature", TOKEN.split(".")[0], "upload", "0/r/artifacts/a.bin", TokenError),
    ("non-ASCII signature", TOKEN[:-1] + "é", "upload", "0/r/artifacts/a.bin", TokenError),
    ("empty", "", "upload", "0/r/artifacts/a.bin", TokenError),
    ("only a dot", ".", "upload", "0/r/artifacts/a.bin", TokenError),
    (
        "another secret",
        Signer("other").sign("upload", "0/r/artifacts/a.bin", 60),
        "upload",
        "0/r/artifacts/a.bin",
        TokenError,
    ),
    (
        "expired",
        SIGNER.sign("upload", "0/r/artifacts/a.bin", -1),
        "upload",
        "0/r/artifacts/a.bin",
        TokenExpired,
    ),
]


@pytest.mark.parametrize(
    ("case", "token", "kind", "path", "error"), REFUSED, ids=[case[0] for case in REFUSED]
)
def test_altered_tokens_are_refused(case, token, kind, path, error) -> None:
    with pytest.raises(error):
        SIGNER.verify(token, kind, path)


def test_an_expired_token_may_still_name_its_upload_for_abort() -> None:
    token = SIGNER.sign("upload", "a", -1, s="id")
    assert SIGNER.verify(token, "upload", "a", allow_expired=True)["s"] == "id"
