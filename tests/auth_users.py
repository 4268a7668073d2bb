"""Users files for the auth tests: the real file format, hashed with the real argon2id, at the low
cost a file may choose for itself in its [hashing] table (production defaults are untouched)."""

import json
from dataclasses import dataclass, field
from pathlib import Path

from gateway.auth.hashing import hash_password, token_hash

FAST = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
"""1 MiB, one pass: about a millisecond per verification."""


@dataclass(frozen=True)
class Person:
    name: str
    password: str
    token: str = ""


ADMIN = Person(
    "admin", "admin-password-1", "artgw_admin-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
)
READER = Person(
    "reader", "reader-password-1", "artgw_reader-token-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)
WRITER = Person(
    "writer", "writer-password-1", "artgw_writer-token-cccccccccccccccccccccccccccccccccccccc"
)
OTHER = Person("other", "other-password-1")

TEAM_GRANTS = """
[[grants]]
to = ["user:admin"]
permission = "admin"
all = true

[[grants]]
to = ["user:reader"]
permission = "read"
all = true

[[grants]]
to = ["group:team"]
permission = "write"
artifacts = ["team"]
experiments = ["1"]
experiment_names = ["team-*"]
registered_models = ["team-*"]

[[grants]]
to = ["user:other"]
permission = "delete"
artifacts = ["other"]
experiments = ["99"]
experiment_names = ["other-*"]
registered_models = ["other-*"]
"""


@dataclass
class UsersFile:
    path: Path
    people: list[Person] = field(default_factory=lambda: [ADMIN, READER, WRITER, OTHER])
    groups: dict[str, list[str]] = field(default_factory=lambda: {"writer": ["team"]})
    grants: str = TEAM_GRANTS
    hashing: dict[str, int] = field(default_factory=lambda: dict(FAST))
    extra: str = ""

    def text(self) -> str:
        lines = ["[hashing]", *(f"{k} = {v}" for k, v in self.hashing.items()), ""]
        for person in self.people:
            lines.append(f"[users.{person.name}]")
            lines.append(f"password = {json.dumps(hash_password(person.password, self.hashing))}")
            lines.append(f"groups = {json.dumps(self.groups.get(person.name, []))}")
            if person.token:
                digest = json.dumps(token_hash(person.token))
                lines.append(f'tokens = [{{ label = "test", hash = {digest} }}]')
            lines.append("")
        return "\n".join(lines) + self.grants + self.extra

    def write(self) -> Path:
        self.path.write_text(self.text())
        return self.path


def basic(person: Person, password: str | None = None) -> dict[str, str]:
    import base64

    pair = f"{person.name}:{password if password is not None else person.password}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
