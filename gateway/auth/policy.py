"""The rules in force: the users file made ready to answer "who is this" and "what may they do".

A `Policy` is immutable; a reload builds a new one and swaps it in, so a request sees one set of
rules from start to end.
"""

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from gateway.auth.permissions import Permission
from gateway.auth.users_file import Grant, User, UsersFile, load

ANONYMOUS = "anonymous"
AUTHENTICATED = "authenticated"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sent a request: `name` is None for anonymous requests."""

    name: str | None
    subjects: frozenset[str]
    via: str = "file"
    """"file" (a password or token of the users file) or "oidc" (a JWT)."""

    @property
    def shown(self) -> str:
        return self.name if self.name is not None else ANONYMOUS


ANONYMOUS_PRINCIPAL = Principal(None, frozenset({ANONYMOUS}))


def principal(name: str, groups: tuple[str, ...] | list[str] = (), via: str = "file") -> Principal:
    subjects = {ANONYMOUS, AUTHENTICATED, f"user:{name}", *(f"group:{g}" for g in groups)}
    return Principal(name, frozenset(subjects), via)


@dataclass(frozen=True)
class Policy:
    source: UsersFile
    dummy_hash: str
    tokens: dict[str, tuple[User, str]] = field(default_factory=dict)
    """sha256 token hash -> (user, token label)."""

    @property
    def users(self) -> dict[str, User]:
        return self.source.users

    def principal_of(self, user: User, extra_groups: tuple[str, ...] = ()) -> Principal:
        return principal(user.name, (*user.groups, *extra_groups))

    def grants(self, who: Principal, needed: Permission) -> list[Grant]:
        return [
            g for g in self.source.grants if g.permission >= needed and g.subjects & who.subjects
        ]


def build(source: UsersFile) -> Policy:
    """Blocking: makes the dummy hash, which costs one password hash."""
    from gateway.auth import hashing

    tokens = {t.hash: (user, t.label) for user in source.users.values() for t in user.tokens}
    return Policy(source, hashing.dummy_hash(source.hashing), tokens)


def load_policy(path: str | Path) -> Policy:
    return build(load(path))


# -- matching one grant against one resource ---------------------------------------------------


def under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def covers_path(grant: Grant, path: str) -> bool:
    return any(under(path, prefix) for prefix in grant.artifacts)


def covers_experiment_id(grant: Grant, experiment_id: str) -> bool:
    return any(fnmatchcase(experiment_id, pattern) for pattern in grant.experiments)


def covers_experiment_name(grant: Grant, name: str) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in grant.experiment_names)


def covers_registered_model(grant: Grant, name: str) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in grant.registered_models)
