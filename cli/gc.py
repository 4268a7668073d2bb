"""`artgw gc`: remove deleted runs for good: their artifacts, their emptied folder, their rows."""

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from backends import DestinationError
from cli.options import mounts, options_for, storage_options
from gateway.errors import ApiError
from gateway.tracking.remote_gc import ArtifactsServer
from tracking.artifact_roots import allow_list
from tracking.errors import StoreError
from tracking.gc import (
    Area,
    Destination,
    Freed,
    GcFailed,
    GcRefused,
    Plan,
    make_plan,
    remove_artifacts,
    remove_model_artifacts,
)
from tracking.logged_models import LoggedModel, ModelStore
from tracking.open import store_from_uri
from tracking.store import RunInfo, TrackingStore

_DURATION = re.compile(
    r"(?:(?P<d>[\d.]+)d)?(?:(?P<h>[\d.]+)h)?(?:(?P<m>[\d.]+)m)?(?:(?P<s>[\d.]+)s)?"
)
T = TypeVar("T")
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000}


def parse_duration(text: str) -> int:
    """`1d2h3m4s` (any part optional, floats allowed) -> milliseconds."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or not match or not any(match.groupdict().values()):
        raise click.BadParameter(f"expected e.g. 1d2h3m4s, got {text!r}", param_hint="--older-than")
    try:
        return int(sum(float(v) * _UNIT_MS[k] for k, v in match.groupdict().items() if v))
    except ValueError:
        raise click.BadParameter(f"not a duration: {text!r}", param_hint="--older-than") from None


def id_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@click.command()
@options_for(
    "artifacts_destination",
    "storage_option",
    "storage_options_file",
    "mount",
    "mounts_file",
    "backend_store_uri",
    "default_artifact_root",
    "allowed_artifact_servers",
)
@click.option("--run-ids", default="", help="Comma-separated ids of deleted runs: only these go.")
@click.option(
    "--logged-model-ids",
    default="",
    help="Comma-separated ids of deleted logged models: only these go (with --run-ids, both).",
)
@click.option(
    "--experiment-ids",
    default="",
    help="Comma-separated ids of deleted experiments: they go with all their deleted runs.",
)
@click.option(
    "--older-than",
    default="",
    help="Only what was deleted longer ago than this, e.g. 1d2h3m4s (floats allowed).",
)
@click.option(
    "--tracking-uri",
    default="",
    envvar="ARTGW_TRACKING_URI",
    help="Delete through the artifacts server each run's URI names (its HTTP DELETE), as in the "
    "split setup, instead of directly in --artifacts-destination; mlflow-artifacts: URIs "
    "resolve against this URI.",
)
@click.pass_context
def gc(ctx: click.Context, **values: Any) -> None:
    """Remove deleted runs for good: their artifacts, their emptied run folder, then their rows.

    With neither --run-ids nor --experiment-ids, every deleted run and deleted experiment goes.
    A run or experiment named explicitly that is not deleted stops gc before anything is
    removed. A run whose artifact folder is already gone is fine.
    """
    source = ctx.get_parameter_source("artifacts_destination")
    if values["tracking_uri"] and source == click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("Give either --artifacts-destination or --tracking-uri, not both.")
    threshold = None
    if values["older_than"]:
        threshold = int(time.time() * 1000) - parse_duration(values["older_than"])
    store = store_from_uri(values["backend_store_uri"], "mlflow-artifacts:/", create=False)
    try:
        failures = asyncio.run(collect(store, _area(values), values, threshold))
    except (GcRefused, StoreError, DestinationError) as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot use the artifacts destination: {exc}") from exc
    if failures:
        raise SystemExit(1)


def _area(values: dict[str, Any]) -> Area:
    """Where artifacts are deleted. Only URIs of this destination (`mlflow-artifacts:`) or of
    the allowed artifacts servers (the default root's, --allowed-artifact-servers, and the
    tracking server's) are touched: a location a client chose elsewhere is left alone."""
    allowed = allow_list(values["default_artifact_root"], values["allowed_artifact_servers"])
    if values["tracking_uri"]:
        return ArtifactsServer(values["tracking_uri"], allowed)
    values = dict(values)
    options = storage_options(values)
    return Destination(values["artifacts_destination"], options, mounts(values), allowed)


async def collect(
    store: TrackingStore, area: Area, values: dict[str, Any], threshold: int | None
) -> int:
    """Carry out the plan; return how many runs had to be kept."""
    await store.open()
    try:
        plan = await make_plan(
            store,
            id_list(values["run_ids"]),
            id_list(values["experiment_ids"]),
            threshold,
            id_list(values["logged_model_ids"]),
        )
        for run_id in plan.missing:
            click.echo(f"Run {run_id} does not exist (collected already?); nothing to do.")
        async with area:
            freed, kept = await _remove_runs(store, area, plan)
            kept_models = await _remove_models(store, area, plan)
        holding = {r.experiment_id for r in kept} | {m.experiment_id for m in kept_models}
        kept_experiments = await _remove_experiments(store, plan, holding)
    finally:
        await store.close()
    click.echo(
        f"Freed {len(plan.runs) - len(kept)} run(s), {freed.files} file(s), {freed.bytes} bytes"
        + (f"; kept {len(kept)} run(s) that failed." if kept else ".")
    )
    return len(kept) + len(kept_models) + kept_experiments


async def _remove_models(store: TrackingStore, area: Area, plan: Plan) -> list[LoggedModel]:
    """Remove the planned logged models' folders, then their rows; return those kept."""

    async def row(model: LoggedModel) -> None:
        assert isinstance(store, ModelStore)  # the plan holds models only from such a store
        await store.hard_delete_logged_model(model.model_id)

    def artifacts(model: LoggedModel) -> Awaitable[Freed]:
        return remove_model_artifacts(area, model)

    _, kept = await _remove_each(
        plan.models, lambda m: f"Logged model {m.model_id}", artifacts, row
    )
    return kept


async def _remove_runs(store: TrackingStore, area: Area, plan: Plan) -> tuple[Freed, list[RunInfo]]:
    def artifacts(run: RunInfo) -> Awaitable[Freed]:
        return remove_artifacts(area, run)

    def row(run: RunInfo) -> Awaitable[None]:
        return store.hard_delete_run(run.run_id)

    return await _remove_each(plan.runs, lambda r: f"Run {r.run_id}", artifacts, row)


async def _remove_each(
    items: list[T],
    name: Callable[[T], str],
    artifacts: Callable[[T], Awaitable[Freed]],
    row: Callable[[T], Awaitable[None]],
) -> tuple[Freed, list[T]]:
    """Remove each item's artifacts, then its row (an item whose artifacts stay keeps its
    row); (what was freed, the items kept)."""
    total, kept = Freed(), []
    for item in items:
        try:
            freed = await artifacts(item)
        except (GcFailed, OSError) as exc:
            click.echo(f"{name(item)} kept: {exc}", err=True)
            kept.append(item)
            continue
        await row(item)
        total = Freed(total.files + freed.files, total.bytes + freed.bytes)
        click.echo(f"{name(item)} permanently deleted: {freed.files} file(s), {freed.bytes} bytes.")
    return total, kept


async def _remove_experiments(store: TrackingStore, plan: Plan, kept: set[str]) -> int:
    """Hard-delete the planned experiments whose runs all went; return how many stayed."""
    stayed = 0
    for experiment in plan.experiments:
        try:
            if experiment.experiment_id in kept:
                raise GcFailed("some of its runs had to be kept")
            await store.hard_delete_experiment(experiment.experiment_id)
        except (GcFailed, ApiError) as exc:
            click.echo(f"Experiment {experiment.experiment_id} kept: {exc}", err=True)
            stayed += 1
            continue
        click.echo(f"Experiment {experiment.experiment_id} permanently deleted.")
    return stayed
