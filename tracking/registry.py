"""The model registry's entities and the rules every store applies to them (MLflow's).

A registered model has a unique name, tags, aliases and numbered versions; a version points at
the artifacts of a model (`source` as the client sent it, `storage_location` where the files
are). Stages are MLflow's deprecated lifecycle: still stored and answered as MLflow does.
"""

import posixpath
import re
from dataclasses import dataclass

from tracking.errors import InvalidValue
from tracking.store import Tag

STAGE_NONE = "None"
STAGES = (STAGE_NONE, "Staging", "Production", "Archived")
ACTIVE_STAGES = ("Staging", "Production")
"""The stages `archive_existing_versions` may be used with."""
READY = "READY"
IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
MAX_TAG_KEY = 250
MAX_TAG_VALUE = 100_000
MAX_ALIAS = 255
MAX_NAME = 256
"""MLflow's column size for names (VARCHAR(256))."""
MAX_SEARCH_MODELS = 1000
MAX_SEARCH_VERSIONS = 200_000
_ALIAS = re.compile(r"[\w\-]*")
_VERSION_ALIAS = re.compile(r"[vV]\d+")
_TAG_KEY = re.compile(r"[/\w.\- :]*")


@dataclass(frozen=True, slots=True)
class NewVersion:
    """What `RegistryStore.create_model_version` is given: the source as the client sent it,
    where its files are (`storage_location`), and what it came from."""

    name: str
    source: str
    storage_location: str
    run_id: str | None = None
    run_link: str | None = None
    description: str | None = None
    tags: tuple[Tag, ...] = ()
    model_id: str | None = None


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: int
    creation_timestamp: int
    last_updated_timestamp: int
    source: str
    storage_location: str
    current_stage: str = STAGE_NONE
    description: str | None = None
    run_id: str | None = None
    run_link: str | None = None
    model_id: str | None = None
    tags: tuple[Tag, ...] = ()
    aliases: tuple[str, ...] = ()

    @property
    def download_uri(self) -> str:
        return self.storage_location or self.source


@dataclass(frozen=True, slots=True)
class Alias:
    alias: str
    version: int


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    description: str | None = None
    latest_versions: tuple[ModelVersion, ...] = ()
    """The highest version in each stage, as MLflow lists them."""
    tags: tuple[Tag, ...] = ()
    aliases: tuple[Alias, ...] = ()

    @property
    def is_prompt(self) -> bool:
        return any(t.key == IS_PROMPT_TAG and t.value.lower() == "true" for t in self.tags)


# -- rules -------------------------------------------------------------------------------------


def check_name(name: str, field: str = "name") -> str:
    """A registered model name: not blank, no `/` or `:`, a path that names only itself (MLflow
    uses names in `models:/<name>/<version>` URIs and as folder names)."""
    if not name.strip():
        raise InvalidValue(f"Missing value for required parameter '{field}'.")
    if "/" in name or ":" in name:
        raise InvalidValue(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    if len(name) > MAX_NAME:
        raise InvalidValue(f"Invalid model name: longer than {MAX_NAME} characters.")
    normal = posixpath.normpath(name)
    if normal != name or normal in (".", "..") or normal.startswith("/"):
        raise InvalidValue(
            f"Invalid value '{name}' for parameter '{field}': names must not resolve to other "
            f"names when treated as paths (this one resolves to '{normal}')."
        )
    return name


def check_version(version: str | int, field: str = "version") -> int:
    """A version number, sent by the client as a string."""
    text = str(version).strip()
    if not (text.isdigit() or (text.startswith("-") and text[1:].isdigit())) or len(text) > 18:
        raise InvalidValue(f"Parameter '{field}' must be an integer, got '{version}'.")
    return int(text)


def check_alias(alias: str, *, for_set: bool = False) -> str:
    if not alias:
        raise InvalidValue("Registered model alias name cannot be empty.")
    if not _ALIAS.fullmatch(alias):
        raise InvalidValue(
            f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, "
            "underscores (_), and dashes (-)."
        )
    if len(alias) > MAX_ALIAS:
        raise InvalidValue(
            f"Registered model alias name exceeds the maximum length of {MAX_ALIAS}."
        )
    if for_set and alias.lower() == "latest":
        raise InvalidValue("'latest' alias name (case insensitive) is reserved.")
    if for_set and _VERSION_ALIAS.fullmatch(alias):
        raise InvalidValue(f"Version alias name '{alias}' is reserved.")
    return alias


def check_tag(tag: Tag) -> Tag:
    """MLflow's tag key rules (characters, a path naming only itself, length) and value length."""
    key = tag.key
    if not key:
        raise InvalidValue("Missing value for required parameter 'key'.")
    if not _TAG_KEY.fullmatch(key):
        raise InvalidValue(
            f"Invalid value '{key}' for parameter 'key': names may only contain alphanumerics, "
            "underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)."
        )
    normal = posixpath.normpath(key)
    if normal != key or normal == "." or normal.startswith(("..", "/")):
        raise InvalidValue(
            f"Invalid value '{key}' for parameter 'key': it would resolve to '{normal}' as a path."
        )
    if len(key) > MAX_TAG_KEY:
        raise InvalidValue(f"Tag key '{key[:40]}...' is longer than {MAX_TAG_KEY} characters.")
    if len(tag.value) > MAX_TAG_VALUE:
        raise InvalidValue(f"Tag value of '{key}' is longer than {MAX_TAG_VALUE} characters.")
    return tag


def canonical_stage(stage: str) -> str:
    for known in STAGES:
        if stage.lower() == known.lower():
            return known
    raise InvalidValue(
        f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES)}."
    )


def latest_per_stage(versions: list[ModelVersion]) -> tuple[ModelVersion, ...]:
    """The highest version of each stage, in stage order (MLflow's `latest_versions`)."""
    best: dict[str, ModelVersion] = {}
    for version in versions:
        held = best.get(version.current_stage)
        if held is None or held.version < version.version:
            best[version.current_stage] = version
    return tuple(best[stage] for stage in STAGES if stage in best)
