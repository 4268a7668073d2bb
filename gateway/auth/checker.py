"""Deciding one request: does this principal hold this permission on these targets?

Grants name artifact prefixes, experiments (by id or name pattern), registered models, or
everything. A run, a logged model and an artifact path are covered by their experiment's grants,
found through the tracking store: the run's or model's own artifact root must contain the path,
so naming a run id inside someone else's folder gains nothing, whatever the artifact root layout.
Lookups are memoised for the request only.
"""

import re
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any, ClassVar

from gateway.auth import permissions as kinds
from gateway.auth.lookups import Lookups
from gateway.auth.permissions import Permission, Target
from gateway.auth.policy import (
    Policy,
    Principal,
    covers_experiment_id,
    covers_experiment_name,
    covers_path,
    covers_registered_model,
    under,
)
from gateway.auth.users_file import Grant
from tracking.errors import TrackingError, Unavailable
from tracking.uris import destination_path

RUN_ID = re.compile(r"[0-9a-f]{32}")
MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
EXPERIMENT_SEGMENTS = 2
"""Leading path segments tried as experiment ids: `<id>/...` and `experiments/<id>/...`."""


class Checker:
    """One request's authorization, over `policy` and the tracking `store` (None when the server
    runs artifacts-only: then only artifact prefixes and `all` grants apply to paths)."""

    def __init__(self, policy: Policy, store: Any | None, shared: Lookups | None = None) -> None:
        self.policy = policy
        self.store = store
        self.shared = shared if shared is not None else Lookups()
        self._memo: dict[tuple[str, str], Any] = {}

    async def allows(self, who: Principal, needed: Permission, target: Target) -> bool:
        grants = self.policy.grants(who, needed)
        if not grants:
            return False
        if target.kind == kinds.SITE or any(g.all for g in grants):
            return True
        if target.kind == kinds.SERVER:
            return False
        check = self._checks[target.kind]
        return await check(self, grants, target.value)

    def remember(self, kind: str, item: object) -> None:
        """An experiment a search returned: its name is known, no need to look it up."""
        if kind == kinds.EXPERIMENT and isinstance(item, dict) and "experiment_id" in item:
            found = SimpleNamespace(experiment_id=item["experiment_id"], name=item.get("name", ""))
            self._memo["get_experiment", str(item["experiment_id"])] = found

    # -- one function per kind of target -------------------------------------------------------

    async def _artifact(self, grants: list[Grant], path: str) -> bool:
        if any(covers_path(g, path) for g in grants):
            return True
        for experiment_id in await self._experiments_of_path(path):
            if await self._experiment(grants, experiment_id):
                return True
        return False

    async def _experiment(self, grants: list[Grant], experiment_id: str) -> bool:
        if any(covers_experiment_id(g, experiment_id) for g in grants):
            return True
        if not any(g.experiment_names for g in grants):
            return False
        experiment = await self._lookup("get_experiment", experiment_id)
        return experiment is not None and any(
            covers_experiment_name(g, experiment.name) for g in grants
        )

    async def _experiment_name(self, grants: list[Grant], name: str) -> bool:
        if any(covers_experiment_name(g, name) for g in grants):
            return True
        experiment = await self._lookup("get_experiment_by_name", name)
        return experiment is not None and any(
            covers_experiment_id(g, experiment.experiment_id) for g in grants
        )

    async def _run(self, grants: list[Grant], run_id: str) -> bool:
        run = await self._lookup("get_run", run_id)
        return run is not None and await self._experiment(grants, run.info.experiment_id)

    async def _logged_model(self, grants: list[Grant], model_id: str) -> bool:
        model = await self._lookup("get_logged_model", model_id)
        return model is not None and await self._experiment(grants, _model_experiment(model))

    async def _registered_model(self, grants: list[Grant], name: str) -> bool:
        return any(covers_registered_model(g, name) for g in grants)

    _checks: ClassVar[dict[str, Callable[["Checker", list[Grant], str], Awaitable[bool]]]] = {
        kinds.ARTIFACT: _artifact,
        kinds.EXPERIMENT: _experiment,
        kinds.EXPERIMENT_NAME: _experiment_name,
        kinds.RUN: _run,
        kinds.LOGGED_MODEL: _logged_model,
        kinds.REGISTERED_MODEL: _registered_model,
    }

    # -- the tracking store --------------------------------------------------------------------

    async def _experiments_of_path(self, path: str) -> list[str]:
        """Experiments whose experiment, run or logged-model artifact root contains `path`."""
        found = []
        segments = path.split("/")
        for segment in segments[:EXPERIMENT_SEGMENTS]:
            if segment.isdigit():
                experiment = await self._lookup("get_experiment", segment)
                if experiment is not None and _contains(experiment.artifact_location, path):
                    found.append(experiment.experiment_id)
        for segment in segments:
            if RUN_ID.fullmatch(segment):
                run = await self._lookup("get_run", segment)
                if run is not None and _contains(run.info.artifact_uri, path):
                    found.append(run.info.experiment_id)
            elif MODEL_ID.fullmatch(segment):
                model = await self._lookup("get_logged_model", segment)
                if model is not None and _contains(_model_location(model), path):
                    found.append(_model_experiment(model))
        return found

    async def _lookup(self, method: str, key: str) -> Any | None:
        """`store.<method>(key)`, or None when it does not exist (or this store lacks it)."""
        if (method, key) in self._memo:
            return self._memo[method, key]
        found = self.shared.get((method, key))
        if found is None:
            found = await self._call(method, key)
            if found is not None:
                self.shared.put((method, key), found)
        self._memo[method, key] = found
        return found

    async def _call(self, method: str, key: str) -> Any | None:
        call = getattr(self.store, method, None) if self.store is not None else None
        try:
            return await call(key) if call is not None else None
        except Unavailable:
            raise  # 503: the database is down, which is not a refusal
        except TrackingError:
            return None


def _contains(artifact_uri: str, path: str) -> bool:
    root = destination_path(artifact_uri or "")
    return root is not None and root != "" and under(path, root)


def _model_experiment(model: Any) -> str:
    info = getattr(model, "info", model)
    return str(info.experiment_id)


def _model_location(model: Any) -> str:
    info = getattr(model, "info", model)
    return str(getattr(info, "artifact_location", "") or "")
