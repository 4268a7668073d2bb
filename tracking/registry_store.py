"""The registry operations a tracking store provides (the SQL stores implement them in
sql_registry.py). Every method is safe to await from the event loop.

Errors: an unknown model or version is `NotFound`; a duplicate name `AlreadyExists`; anything the
caller got wrong `InvalidValue`. Version numbers of a model are 1, 2, 3, ... with no gaps made by
concurrent creates and none ever reused, not even after a version is deleted.
"""

from abc import ABC, abstractmethod

from tracking.registry import ModelVersion, NewVersion, RegisteredModel
from tracking.registry_search import RegistrySearch
from tracking.store import Page, Tag


class RegistryStore(ABC):
    # -- registered models ---------------------------------------------------------------------

    @abstractmethod
    async def create_registered_model(
        self, name: str, tags: list[Tag], description: str | None
    ) -> RegisteredModel: ...

    @abstractmethod
    async def get_registered_model(self, name: str) -> RegisteredModel: ...

    @abstractmethod
    async def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel: ...

    @abstractmethod
    async def update_registered_model(
        self, name: str, description: str | None
    ) -> RegisteredModel: ...

    @abstractmethod
    async def delete_registered_model(self, name: str) -> None:
        """The model, its versions, tags and aliases; never any artifact."""

    @abstractmethod
    async def search_registered_models(self, search: RegistrySearch) -> Page[RegisteredModel]: ...

    @abstractmethod
    async def get_latest_versions(self, name: str, stages: list[str]) -> list[ModelVersion]:
        """The highest version of each of `stages` (canonical names; all four when empty)."""

    @abstractmethod
    async def set_registered_model_tag(self, name: str, tag: Tag) -> None: ...

    @abstractmethod
    async def delete_registered_model_tag(self, name: str, key: str) -> None: ...

    @abstractmethod
    async def set_alias(self, name: str, alias: str, version: int) -> None: ...

    @abstractmethod
    async def delete_alias(self, name: str, alias: str) -> None: ...

    @abstractmethod
    async def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """`latest` is the highest version; an unknown alias is `InvalidValue` (as MLflow)."""

    # -- model versions ------------------------------------------------------------------------

    @abstractmethod
    async def create_model_version(self, new: NewVersion) -> ModelVersion: ...

    @abstractmethod
    async def get_model_version(self, name: str, version: int) -> ModelVersion: ...

    @abstractmethod
    async def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion: ...

    @abstractmethod
    async def transition_stage(
        self, name: str, version: int, stage: str, archive_existing: bool
    ) -> ModelVersion: ...

    @abstractmethod
    async def delete_model_version(self, name: str, version: int) -> None:
        """The version, its tags and the aliases pointing at it; never any artifact."""

    @abstractmethod
    async def search_model_versions(self, search: RegistrySearch) -> Page[ModelVersion]: ...

    @abstractmethod
    async def set_model_version_tag(self, name: str, version: int, tag: Tag) -> None: ...

    @abstractmethod
    async def delete_model_version_tag(self, name: str, version: int, key: str) -> None: ...
