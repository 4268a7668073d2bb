"""Permissions and the resources they are granted on.

The four permissions are ordered, each including the ones before it: `read` < `write` < `delete`
< `admin`. A request needs one permission on one or more targets (`Target`): an artifact path, an
experiment, a run, a logged model, a registered model, or the whole server.
"""

from dataclasses import dataclass
from enum import IntEnum


class Permission(IntEnum):
    READ = 1
    WRITE = 2
    DELETE = 3
    ADMIN = 4

    @property
    def word(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, word: str) -> "Permission":
        try:
            return cls[word.upper()]
        except KeyError:
            names = ", ".join(p.word for p in cls)
            raise ValueError(f"unknown permission {word!r}: one of {names}") from None


ARTIFACT = "artifact path"
EXPERIMENT = "experiment"
EXPERIMENT_NAME = "experiment named"
RUN = "run"
LOGGED_MODEL = "logged model"
REGISTERED_MODEL = "registered model"
SERVER = "server"
"""`SERVER` is the whole server: only a grant with `all = true` covers it."""
SITE = "site"
"""The site's pages (the landing page): any grant of the permission covers it."""


@dataclass(frozen=True, slots=True)
class Target:
    kind: str
    value: str = ""

    def describe(self) -> str:
        if self.kind == SERVER:
            return "this server"
        if self.kind == SITE:
            return "any resource"
        return f"{self.kind} '{self.value}'"


EVERYTHING = Target(SERVER)
ANY = Target(SITE)
