"""`RegistryStore` over SQL: each operation is one transaction of tracking/sql_registry.py, run
by the store's `_write` / `_read` (tracking/db.py, off the event loop)."""

from abc import abstractmethod
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection

from tracking import sql_registry as sql
from tracking.registry import ModelVersion, NewVersion, RegisteredModel
from tracking.registry_search import RegistrySearch
from tracking.registry_store import RegistryStore
from tracking.store import Page, Tag

T = TypeVar("T")


class SqlRegistryStore(RegistryStore):
    @abstractmethod
    async def _write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one write transaction (retried on a write conflict)."""

    @abstractmethod
    async def _read(self, work: Callable[[Connection], T]) -> T: ...

    async def create_registered_model(
        self, name: str, tags: list[Tag], description: str | None
    ) -> RegisteredModel:
        return await self._write(lambda c: sql.create_model(c, name, tags, description))

    async def get_registered_model(self, name: str) -> RegisteredModel:
        return await self._read(lambda c: sql.get_model(c, name))

    async def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return await self._write(lambda c: sql.rename_model(c, name, new_name))

    async def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        return await self._write(lambda c: sql.update_model(c, name, description))

    async def delete_registered_model(self, name: str) -> None:
        await self._write(lambda c: sql.delete_model(c, name))

    async def search_registered_models(self, search: RegistrySearch) -> Page[RegisteredModel]:
        return await self._read(lambda c: sql.search_models(c, search))

    async def get_latest_versions(self, name: str, stages: list[str]) -> list[ModelVersion]:
        return await self._read(lambda c: sql.latest_versions(c, name, stages))

    async def set_registered_model_tag(self, name: str, tag: Tag) -> None:
        await self._write(lambda c: sql.set_model_tag(c, name, tag))

    async def delete_registered_model_tag(self, name: str, key: str) -> None:
        await self._write(lambda c: sql.delete_model_tag(c, name, key))

    async def set_alias(self, name: str, alias: str, version: int) -> None:
        await self._write(lambda c: sql.set_alias(c, name, alias, version))

    async def delete_alias(self, name: str, alias: str) -> None:
        await self._write(lambda c: sql.delete_alias(c, name, alias))

    async def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return await self._read(lambda c: sql.version_by_alias(c, name, alias))

    async def create_model_version(self, new: NewVersion) -> ModelVersion:
        return await self._write(lambda c: sql.create_version(c, new))

    async def get_model_version(self, name: str, version: int) -> ModelVersion:
        return await self._read(lambda c: sql.get_version(c, name, version))

    async def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion:
        return await self._write(lambda c: sql.update_version(c, name, version, description))

    async def transition_stage(
        self, name: str, version: int, stage: str, archive_existing: bool
    ) -> ModelVersion:
        return await self._write(
            lambda c: sql.transition(c, name, version, stage, archive_existing)
        )

    async def delete_model_version(self, name: str, version: int) -> None:
        await self._write(lambda c: sql.delete_version(c, name, version))

    async def search_model_versions(self, search: RegistrySearch) -> Page[ModelVersion]:
        return await self._read(lambda c: sql.search_versions(c, search))

    async def set_model_version_tag(self, name: str, version: int, tag: Tag) -> None:
        await self._write(lambda c: sql.set_version_tag(c, name, version, tag))

    async def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        await self._write(lambda c: sql.delete_version_tag(c, name, version, key))
