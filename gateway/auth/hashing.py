"""Password and token hashes: argon2id (argon2-cffi) for new passwords, bcrypt accepted for
imported ones; API tokens are random and stored as their SHA-256.

Verifying a password costs what its hash's parameters say (tens of milliseconds by default), so
the server runs it in a thread; the dummy hash, made with the file's own parameters, gives an
unknown user the same cost as a wrong password.
"""

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.auth.users_file import TOKEN_HASH_PREFIX

TOKEN_PREFIX = "artgw_"


def hasher(params: dict[str, int]) -> PasswordHasher:
    return PasswordHasher(
        time_cost=params["time_cost"],
        memory_cost=params["memory_cost"],
        parallelism=params["parallelism"],
        type=Type.ID,
    )


def hash_password(password: str, params: dict[str, int]) -> str:
    return hasher(params).hash(password)


def dummy_hash(params: dict[str, int]) -> str:
    """A hash of a random secret nobody knows: verified for unknown users."""
    return hash_password(secrets.token_urlsafe(24), params)


def verify_password(stored: str, password: str) -> bool:
    """Blocking and deliberately slow; never raises for a malformed hash (it is just no match)."""
    if stored.startswith("$argon2"):
        try:
            return PasswordHasher().verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    return _verify_bcrypt(stored, password)


def _verify_bcrypt(stored: str, password: str) -> bool:
    try:
        import bcrypt
    except ImportError:
        return False
    try:
        return bcrypt.checkpw(password.encode(), stored.encode())
    except ValueError:
        return False


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Tokens carry 256 random bits, so a fast hash is enough: nothing to brute-force."""
    return TOKEN_HASH_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
