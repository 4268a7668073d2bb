"""The users file (`--auth-file`, TOML): users, their password and token hashes, groups, grants,
and optional OIDC settings. Parsed strictly: an unknown key or a plain-text password is an error
naming where it is, so a typo never silently widens or narrows access.

```toml
[hashing]                       # parameters of new argon2id hashes (and of the dummy hash)
time_cost = 3
memory_cost = 65536             # KiB
parallelism = 4

[users.alice]
password = "$argon2id$v=19$..."  # written by `artgw users add|passwd`
groups = ["team-a"]
tokens = [{ label = "ci", hash = "sha256:..." }]

[[grants]]
to = ["group:team-a"]           # user:NAME, group:NAME, authenticated, anonymous
permission = "write"            # read < write < delete < admin
artifacts = ["team-a"]          # path prefixes in the destination
experiments = ["1", "2"]        # experiment ids (patterns: "*" is every experiment)
experiment_names = ["team-a/*"] # experiment name patterns (also for experiments/create)
registered_models = ["team-a-*"]
all = false                     # true: everything on this server

[oidc]
jwks = "https://idp.example/jwks.json"   # or a file
issuer = "https://idp.example/"
audience = "artgw"
```
"""

import tomllib
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

from gateway.auth.permissions import Permission

ARGON2_DEFAULTS = {"time_cost": 3, "memory_cost": 65536, "parallelism": 4}
"""argon2-cffi's defaults (RFC 9106's low-memory profile); the file may choose others."""
HASH_PREFIXES = ("$argon2id$", "$2a$", "$2b$", "$2y$")
TOKEN_HASH_PREFIX = "sha256:"
SUBJECT_KINDS = ("user:", "group:")
SPECIAL_SUBJECTS = ("anonymous", "authenticated")


class AuthFileError(ValueError):
    """The users file cannot be used; the message says where and why (never a secret)."""


@dataclass(frozen=True, slots=True)
class Token:
    label: str
    hash: str


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password: str | None = None
    groups: tuple[str, ...] = ()
    tokens: tuple[Token, ...] = ()


@dataclass(frozen=True, slots=True)
class Grant:
    subjects: frozenset[str]
    permission: Permission
    artifacts: tuple[str, ...] = ()
    experiments: tuple[str, ...] = ()
    experiment_names: tuple[str, ...] = ()
    registered_models: tuple[str, ...] = ()
    all: bool = False


@dataclass(frozen=True, slots=True)
class Oidc:
    jwks: str
    issuer: str
    audience: str
    algorithms: tuple[str, ...] = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")
    username_claim: str = "sub"
    groups_claim: str = "groups"
    cache_seconds: int = 300
    leeway_seconds: int = 30


@dataclass(frozen=True, slots=True)
class Throttle:
    failures: int = 10
    window_seconds: int = 60
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    """Proxies (nginx, a load balancer) whose X-Forwarded-For names the real client."""


@dataclass(frozen=True, slots=True)
class UsersFile:
    users: dict[str, User] = field(default_factory=dict)
    grants: tuple[Grant, ...] = ()
    hashing: dict[str, int] = field(default_factory=lambda: dict(ARGON2_DEFAULTS))
    oidc: Oidc | None = None
    throttle: Throttle = Throttle()


def load(path: str | Path) -> UsersFile:
    """Read and check the file (blocking: call it from a thread when a loop runs)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AuthFileError(f"{path}: cannot read the users file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise AuthFileError(f"{path}: the users file is not UTF-8 text") from None
    return parse(text, str(path))


def parse(text: str, where: str = "users file") -> UsersFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AuthFileError(f"{where}: not valid TOML: {exc}") from None
    try:
        return _users_file(data)
    except (ValueError, TypeError) as exc:
        raise AuthFileError(f"{where}: {exc}") from None


def _users_file(data: dict[str, Any]) -> UsersFile:
    _only(data, "the file", {"hashing", "users", "grants", "oidc", "throttle"})
    users = {name: _user(name, raw) for name, raw in _table(data, "users", "the file").items()}
    grants = tuple(_grant(i, raw) for i, raw in enumerate(_list(data, "grants", "the file")))
    return UsersFile(
        users=users,
        grants=grants,
        hashing=_hashing(_table(data, "hashing", "the file")),
        oidc=_oidc(data["oidc"]) if "oidc" in data else None,
        throttle=_throttle(_table(data, "throttle", "the file")),
    )


def _only(table: dict[str, Any], where: str, keys: set[str]) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in {where} (allowed: {', '.join(sorted(keys))})"
        )


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} in {where} must be a table")
    return value


def _list(data: dict[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key!r} in {where} must be an array")
    return value


def _strings(data: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = _list(data, key, where)
    if not all(isinstance(v, str) and v for v in values):
        raise ValueError(f"{key!r} in {where} must be an array of non-empty strings")
    return tuple(values)


def _string(data: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key!r} in {where} must be a non-empty string")
    return value


def _integer(data: dict[str, Any], key: str, where: str, default: int, low: int = 1) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{key!r} in {where} must be an integer of at least {low}")
    return value


def _user(name: str, raw: Any) -> User:
    where = f"users.{name}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a table")
    if not name or ":" in name or name != name.strip():
        raise ValueError(f"{where}: a user name must be non-empty, without ':' or outer spaces")
    _only(raw, where, {"password", "groups", "tokens"})
    password = raw.get("password")
    if password is not None:
        password = _string(raw, "password", where)
        if not password.startswith(HASH_PREFIXES):
            raise ValueError(
                f"the password of {where} is not an argon2id or bcrypt hash (plain text is "
                "refused): set it with `artgw users passwd`"
            )
    tokens = tuple(
        _token(f"{where}.tokens[{i}]", t) for i, t in enumerate(_list(raw, "tokens", where))
    )
    return User(name, password, _strings(raw, "groups", where), tokens)


def _token(where: str, raw: Any) -> Token:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a table")
    _only(raw, where, {"label", "hash", "created"})
    digest = _string(raw, "hash", where)
    if not digest.startswith(TOKEN_HASH_PREFIX) or len(digest) != len(TOKEN_HASH_PREFIX) + 64:
        raise ValueError(f"'hash' in {where} must be sha256:<64 hex digits> (`artgw users token`)")
    return Token(_string(raw, "label", where, "token"), digest.lower())


def _grant(index: int, raw: Any) -> Grant:
    where = f"grants[{index}]"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a table")
    keys = {"to", "permission", "artifacts", "experiments", "experiment_names"}
    _only(raw, where, keys | {"registered_models", "all"})
    subjects = frozenset(_strings(raw, "to", where))
    for subject in subjects:
        if subject not in SPECIAL_SUBJECTS and not subject.startswith(SUBJECT_KINDS):
            raise ValueError(
                f"{where}: unknown subject {subject!r} (user:NAME, group:NAME, authenticated, "
                "anonymous)"
            )
    grant = Grant(
        subjects=subjects,
        permission=Permission.parse(_string(raw, "permission", where)),
        artifacts=tuple(_prefix(p, where) for p in _strings(raw, "artifacts", where)),
        experiments=_strings(raw, "experiments", where),
        experiment_names=_strings(raw, "experiment_names", where),
        registered_models=_strings(raw, "registered_models", where),
        all=_boolean(raw, "all", where),
    )
    if not subjects:
        raise ValueError(f"{where}: 'to' names nobody")
    if not (
        grant.all
        or grant.artifacts
        or grant.experiments
        or grant.experiment_names
        or grant.registered_models
    ):
        raise ValueError(
            f"{where} grants nothing: give artifacts, experiments, experiment_names, "
            "registered_models or all = true"
        )
    return grant


def _boolean(raw: dict[str, Any], key: str, where: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key!r} in {where} must be true or false")
    return value


def _prefix(prefix: str, where: str) -> str:
    cleaned = prefix.strip("/")
    segments = cleaned.split("/")
    if not cleaned or any(s in ("", ".", "..") for s in segments) or "\\" in cleaned:
        raise ValueError(
            f"{where}: artifact prefix {prefix!r} must be a relative path of real names "
            "(use all = true for everything)"
        )
    return cleaned


def _hashing(raw: dict[str, Any]) -> dict[str, int]:
    _only(raw, "hashing", set(ARGON2_DEFAULTS))
    values = {
        key: _integer(raw, key, "hashing", default) for key, default in ARGON2_DEFAULTS.items()
    }
    if values["memory_cost"] < 8 * values["parallelism"]:
        raise ValueError("hashing.memory_cost must be at least 8 x parallelism (KiB)")
    return values


def _oidc(raw: Any) -> Oidc:
    if not isinstance(raw, dict):
        raise ValueError("'oidc' must be a table")
    keys = {"jwks", "issuer", "audience", "algorithms", "username_claim", "groups_claim"}
    _only(raw, "oidc", keys | {"cache_seconds", "leeway_seconds"})
    defaults = Oidc("", "", "")
    algorithms = _strings(raw, "algorithms", "oidc") or defaults.algorithms
    if any(a.upper().startswith("HS") or a.lower() == "none" for a in algorithms):
        raise ValueError("oidc.algorithms: only public-key algorithms (RS*, PS*, ES*, EdDSA)")
    return Oidc(
        jwks=_string(raw, "jwks", "oidc"),
        issuer=_string(raw, "issuer", "oidc"),
        audience=_string(raw, "audience", "oidc"),
        algorithms=algorithms,
        username_claim=_string(raw, "username_claim", "oidc", defaults.username_claim),
        groups_claim=_string(raw, "groups_claim", "oidc", defaults.groups_claim),
        cache_seconds=_integer(raw, "cache_seconds", "oidc", defaults.cache_seconds),
        leeway_seconds=_integer(raw, "leeway_seconds", "oidc", defaults.leeway_seconds, low=0),
    )


def _throttle(raw: dict[str, Any]) -> Throttle:
    _only(raw, "throttle", {"failures", "window_seconds", "trusted_proxies"})
    defaults = Throttle()
    proxies = []
    for text in _strings(raw, "trusted_proxies", "throttle"):
        try:
            proxies.append(ip_network(text, strict=False))
        except ValueError:
            raise ValueError(
                f"throttle.trusted_proxies: {text!r} is not an address or network"
            ) from None
    return Throttle(
        failures=_integer(raw, "failures", "throttle", defaults.failures),
        window_seconds=_integer(raw, "window_seconds", "throttle", defaults.window_seconds),
        trusted_proxies=tuple(proxies),
    )
