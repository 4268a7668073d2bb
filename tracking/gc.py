"""Garbage collection of deleted runs: what may go (checked before anything is touched), and
removing a run's artifacts directly in the destination (or, through the `Area` protocol, via an
artifacts server: gateway/tracking/remote_gc.py).

Only runs in the deleted stage are collected. A run whose artifact folder is already gone is
fine; the emptied `<run id>/` folder is removed too. A run's rows go only after its artifacts did.
"""

from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from backends import Backend, Entry, confine
from backends.mounts import Mount, open_mounted
from tracking import artifact_roots
from tracking.errors import NotFound
from tracking.logged_models import MODEL_ARTIFACTS_DIR, MODELS_DIR, LoggedModel, ModelStore
from tracking.store import DELETED, Experiment, RunInfo, Search, TrackingStore, ViewType

ARTIFACTS_DIR = "artifacts"
T = TypeVar("T")


class GcRefused(Exception):
    """Nothing was deleted: the request names something gc must not touch."""


class GcFailed(Exception):
    """One run's artifacts could not be removed; its rows were kept so that gc can retry."""


@dataclass
class Plan:
    runs: list[RunInfo] = field(default_factory=list)
    experiments: list[Experiment] = field(default_factory=list)
    models: list[LoggedModel] = field(default_factory=list)
    """Logged models: deleted ones, and every model of the experiments that go."""
    missing: list[str] = field(default_factory=list)
    """Run ids asked for that do not exist (any more): nothing to do for them."""


@dataclass(frozen=True)
class Freed:
    files: int = 0
    bytes: int = 0


# -- what to collect ---------------------------------------------------------------------------


async def make_plan(
    store: TrackingStore,
    run_ids: list[str],
    experiment_ids: list[str],
    threshold_ms: int | None,
    model_ids: list[str] | None = None,
) -> Plan:
    """Runs, logged models and experiments to remove. Explicit ids that are not deleted (or too
    recent) refuse the whole request. With no ids at all: everything deleted (old enough)."""
    plan = Plan()
    model_ids = model_ids or []
    plan.models = [await _explicit_model(store, m, threshold_ms) for m in model_ids]
    for run_id in run_ids:
        run = await _explicit_run(store, run_id, threshold_ms)
        if run is None:
            plan.missing.append(run_id)
        else:
            plan.runs.append(run)
    if experiment_ids:
        plan.experiments = [
            await _explicit_experiment(store, e, threshold_ms) for e in experiment_ids
        ]
    elif not run_ids and not model_ids:
        plan.runs = [
            r for r in await store.deleted_runs() if _old_enough(r.deleted_time, threshold_ms)
        ]
        plan.experiments = await _deleted_experiments(store, threshold_ms)
        plan.models = [
            m
            for m in await _models(store).deleted_logged_models()
            if _old_enough(m.last_updated_timestamp_ms, threshold_ms)
        ]
    if plan.experiments:
        ids = [e.experiment_id for e in plan.experiments]
        plan.runs.extend(await store.deleted_runs(ids))
        plan.models.extend(await _models(store).deleted_logged_models(ids))
    plan.runs = list({run.run_id: run for run in plan.runs}.values())
    plan.models = list({model.model_id: model for model in plan.models}.values())
    return plan


def _models(store: TrackingStore) -> ModelStore:
    if not isinstance(store, ModelStore):
        raise GcRefused("This tracking store keeps no logged models.")
    return store


async def _explicit_model(
    store: TrackingStore, model_id: str, threshold_ms: int | None
) -> LoggedModel:
    what = f"Logged model {model_id}"
    model = await _existing(what, _models(store).get_logged_model(model_id, allow_deleted=True))
    _refuse_unless_deleted(
        what,
        model.lifecycle_stage,
        model.last_updated_timestamp_ms,
        threshold_ms,
        "gc only removes deleted logged models. Delete it first "
        "(MlflowClient().delete_logged_model), or leave it out.",
    )
    return model


def _old_enough(time_ms: int | None, threshold_ms: int | None) -> bool:
    return threshold_ms is None or (time_ms or 0) < threshold_ms


async def _existing(what: str, found: Awaitable[T]) -> T:
    try:
        return await found
    except NotFound:
        raise GcRefused(f"{what} does not exist.") from None


def _refuse_unless_deleted(
    what: str, stage: str, deleted_ms: int | None, threshold_ms: int | None, active: str
) -> None:
    """GcRefused unless `what` (as the messages name it) was deleted before the threshold;
    `active` says why an active one is refused."""
    if stage != DELETED:
        raise GcRefused(f"{what} is active: {active}")
    if not _old_enough(deleted_ms, threshold_ms):
        raise GcRefused(f"{what} was deleted more recently than --older-than.")


async def _explicit_run(
    store: TrackingStore, run_id: str, threshold_ms: int | None
) -> RunInfo | None:
    try:
        info = (await store.get_run(run_id)).info
    except NotFound:
        return None
    _refuse_unless_deleted(
        f"Run {run_id}",
        info.lifecycle_stage,
        info.deleted_time,
        threshold_ms,
        "gc only removes runs in the deleted stage. Delete the run first "
        "(MlflowClient().delete_run), or leave it out.",
    )
    return info


async def _explicit_experiment(
    store: TrackingStore, experiment_id: str, threshold_ms: int | None
) -> Experiment:
    what = f"Experiment {experiment_id}"
    experiment = await _existing(what, store.get_experiment(experiment_id))
    _refuse_unless_deleted(
        what,
        experiment.lifecycle_stage,
        experiment.last_update_time,
        threshold_ms,
        "gc only removes deleted experiments.",
    )
    return experiment


async def _deleted_experiments(store: TrackingStore, threshold_ms: int | None) -> list[Experiment]:
    found: list[Experiment] = []
    offset: int | None = 0
    while offset is not None:
        page = await store.search_experiments(Search(ViewType.DELETED_ONLY, offset=offset))
        found.extend(e for e in page.items if _old_enough(e.last_update_time, threshold_ms))
        offset = page.next_offset
    return found


# -- where the artifacts are -------------------------------------------------------------------


@dataclass(frozen=True)
class Location:
    """A folder of an artifacts destination: `rel` inside it, reached through `base` (an
    artifacts server's `.../api/2.0`) or directly when `base` is ''."""

    base: str
    rel: str


class Destination:
    """Deletes straight in the artifacts destination, through the backends layer."""

    def __init__(
        self,
        url: str,
        storage_options: dict[str, Any],
        mounts: tuple[Mount, ...] = (),
        allowed: frozenset[str] = frozenset(),
    ) -> None:
        """`allowed`: origins whose `http(s)://.../mlflow-artifacts/artifacts/...` URIs name
        this destination (artifact_roots.allow_list); other URIs are never touched."""
        self.backend: Backend = open_mounted(url, storage_options, mounts)
        self.allowed = allowed

    async def __aenter__(self) -> "Destination":
        await self.backend.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.backend.close()

    def locate(self, artifact_uri: str) -> Location | None:
        where = artifact_roots.reachable(artifact_uri, self.allowed)
        return None if where is None else Location("", where.rel)

    async def list(self, where: Location) -> list[Entry]:
        try:
            return await self.backend.list_dir(where.rel)
        except (FileNotFoundError, NotADirectoryError):
            return []

    async def delete(self, where: Location) -> None:
        await self.backend.delete(where.rel)


class Area(Protocol):
    """Where a run's artifacts are removed: the destination itself (`Destination`) or an artifacts
    server's REST API (gateway/tracking/remote_gc.py). Used as an async context manager."""

    async def __aenter__(self) -> "Area": ...

    async def __aexit__(self, *exc: object) -> None: ...

    def locate(self, artifact_uri: str) -> Location | None: ...

    async def list(self, where: Location) -> list[Entry]: ...

    async def delete(self, where: Location) -> None: ...


# -- removing one run --------------------------------------------------------------------------


async def remove_artifacts(area: Area, run: RunInfo) -> Freed:
    """Delete the run's artifacts folder, then its emptied `<run id>/` folder."""
    where = _run_location(area, run)
    freed = await _measure(area, where)
    await area.delete(where)
    run_folder = Location(where.base, where.rel.rpartition("/")[0])
    if not await area.list(run_folder):
        await area.delete(run_folder)
    return freed


def _run_location(area: Area, run: RunInfo) -> Location:
    where = area.locate(run.artifact_uri)
    if where is None:
        raise GcFailed(
            f"its artifact URI {run.artifact_uri} is not served by an artifacts destination; "
            "remove those files yourself"
        )
    if not where.rel.endswith(f"{run.run_id}/{ARTIFACTS_DIR}"):
        raise GcFailed(f"its artifact URI {run.artifact_uri} does not end in <run id>/artifacts")
    try:
        return Location(where.base, confine(where.rel))
    except ValueError:
        raise GcFailed(f"its artifact URI {run.artifact_uri} names an unsafe path") from None


async def remove_model_artifacts(area: Area, model: LoggedModel) -> Freed:
    """Delete the model's `<...>/models/<model id>/` folder (its artifacts and anything beside)."""
    where = area.locate(model.artifact_location)
    suffix = f"{MODELS_DIR}/{model.model_id}/{MODEL_ARTIFACTS_DIR}"
    if where is None:
        raise GcFailed(
            f"its location {model.artifact_location} is not served by an artifacts destination; "
            "remove those files yourself"
        )
    if not where.rel.endswith(suffix):
        raise GcFailed(f"its location {model.artifact_location} does not end in {suffix}")
    try:
        folder = Location(where.base, confine(where.rel.rpartition("/")[0]))
    except ValueError:
        raise GcFailed(f"its location {model.artifact_location} names an unsafe path") from None
    freed = await _measure(area, folder)
    await area.delete(folder)
    return freed


async def _measure(area: Area, where: Location) -> Freed:
    files = size = 0
    pending = [where.rel]
    while pending:
        folder = pending.pop()
        entries: Iterable[Entry] = await area.list(Location(where.base, folder))
        for entry in entries:
            if entry.is_dir:
                pending.append(f"{folder}/{entry.name}")
            else:
                files, size = files + 1, size + entry.size
    return Freed(files, size)
