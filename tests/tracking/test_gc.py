"""`artgw gc` on a prepared store (SQLite and PostgreSQL) and destination: what it removes, keeps,
refuses and reports."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from cli.main import main
from tracking.errors import NotFound
from tracking.logged_models import LoggedModel, NewModel
from tracking.open import store_from_uri
from tracking.schema import logged_models, runs
from tracking.sql_store import SqlStore
from tracking.store import NewRun, RunInfo

ROOT = "mlflow-artifacts:/"
T = TypeVar("T")


class World:
    """A store file and a destination folder, with runs whose artifacts are on disk."""

    def __init__(self, tmp_path: Path, store_uri: str) -> None:
        self.uri = store_uri
        self.dest = tmp_path / "mlartifacts"
        self.store = store_from_uri(store_uri, ROOT)
        assert isinstance(self.store, SqlStore)

    def run(self, work: Callable[[SqlStore], Awaitable[T]]) -> T:
        """Open the store, await `work(store)`, close it: the test thread has no loop."""

        async def opened() -> T:
            await self.store.open()
            try:
                return await work(self.store)
            finally:
                await self.store.close()

        return asyncio.run(opened())

    def new_run(self, experiment_id: str = "0", files: int = 2, deleted: bool = True) -> RunInfo:
        run = self.run(lambda s: s.create_run(NewRun(experiment_id, "u", 1)))
        folder = self.dest / run.info.artifact_uri.removeprefix(ROOT)
        (folder / "sub").mkdir(parents=True)
        for i in range(files):
            (folder / ("sub" if i % 2 else "") / f"f{i}.bin").write_bytes(b"x" * (10 + i))
        if deleted:
            self.run(lambda s: s.delete_run(run.info.run_id))
        return run.info

    def exists(self, run: RunInfo) -> bool:
        try:
            self.run(lambda s: s.get_run(run.run_id))
        except NotFound:
            return False
        return True

    def folder(self, run: RunInfo) -> Path:
        return self.dest / run.artifact_uri.removeprefix(ROOT).rpartition("/")[0]

    def gc(self, *args: str) -> tuple[int, str, str]:
        options = ["--backend-store-uri", self.uri]
        options += ["--artifacts-destination", str(self.dest)]
        result = CliRunner().invoke(main, ["gc", *options, *args])
        return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def world(tmp_path: Path, store_uri: str) -> World:
    return World(tmp_path, store_uri)


def test_only_the_named_run_goes(world: World) -> None:
    gone, other, active = world.new_run(), world.new_run(), world.new_run(deleted=False)
    code, out, err = world.gc("--run-ids", gone.run_id)
    assert code == 0, err
    assert f"Run {gone.run_id} permanently deleted: 2 file(s), 21 bytes." in out
    assert "Freed 1 run(s), 2 file(s), 21 bytes." in out
    assert not world.folder(gone).exists() and not world.exists(gone)
    assert world.folder(other).is_dir() and world.exists(other)
    assert world.folder(active).is_dir() and world.exists(active)


def test_an_active_run_is_refused_and_nothing_is_deleted(world: World) -> None:
    gone, active = world.new_run(), world.new_run(deleted=False)
    code, _, err = world.gc("--run-ids", f"{gone.run_id},{active.run_id}")
    assert code == 1
    assert f"Run {active.run_id} is active" in err and "deleted stage" in err
    assert world.folder(gone).is_dir() and world.exists(gone)


def test_a_missing_artifact_folder_is_fine(world: World) -> None:
    run = world.new_run()
    for path in sorted(world.folder(run).rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    world.folder(run).rmdir()
    code, out, err = world.gc("--run-ids", run.run_id)
    assert (code, err) == (0, "")
    assert "Freed 1 run(s), 0 file(s), 0 bytes." in out
    assert not world.exists(run)


def test_a_run_folder_holding_more_than_artifacts_stays(world: World) -> None:
    run = world.new_run()
    (world.folder(run) / "notes.txt").write_text("mine")
    assert world.gc("--run-ids", run.run_id)[0] == 0
    assert sorted(p.name for p in world.folder(run).iterdir()) == ["notes.txt"]


def test_gc_is_idempotent(world: World) -> None:
    run = world.new_run()
    assert world.gc("--run-ids", run.run_id)[0] == 0
    code, out, _ = world.gc("--run-ids", run.run_id)
    assert code == 0
    assert f"Run {run.run_id} does not exist" in out
    assert "Freed 0 run(s)" in out


def test_without_ids_every_deleted_run_and_experiment_goes(world: World) -> None:
    experiment_id = world.run(lambda s: s.create_experiment("e", None, []))
    in_experiment = world.new_run(experiment_id, deleted=False)
    world.run(lambda s: s.delete_experiment(experiment_id))
    runs = [world.new_run(), world.new_run()]
    active = world.new_run(deleted=False)
    code, out, err = world.gc()
    assert code == 0, err
    assert "Freed 3 run(s), 6 file(s), 63 bytes." in out
    assert f"Experiment {experiment_id} permanently deleted." in out
    assert not any(world.exists(r) for r in [in_experiment, *runs])
    assert world.exists(active)
    assert world.run(lambda s: s.get_experiment_by_name("e")) is None


def test_experiment_ids_take_their_deleted_runs(world: World) -> None:
    experiment_id = world.run(lambda s: s.create_experiment("e", None, []))
    runs = [world.new_run(experiment_id, deleted=False) for _ in range(2)]
    elsewhere = world.new_run()
    world.run(lambda s: s.delete_experiment(experiment_id))
    code, _out, err = world.gc("--experiment-ids", experiment_id)
    assert code == 0, err
    assert not any(world.exists(r) for r in runs)
    assert world.exists(elsewhere)


def test_an_active_experiment_is_refused(world: World) -> None:
    world.new_run()
    code, _, err = world.gc("--experiment-ids", "0")
    assert code == 1 and "Experiment 0 is active" in err
    code, _, err = world.gc("--experiment-ids", "77")
    assert code == 1 and "Experiment 77 does not exist" in err


def test_older_than(world: World) -> None:
    old, recent = world.new_run(), world.new_run()
    hour_ago = int(time.time() * 1000) - 3_600_000
    world.run(lambda s: _set_deleted_time(s, old.run_id, hour_ago))
    code, _out, _ = world.gc("--older-than", "30m")
    assert code == 0
    assert not world.exists(old) and world.exists(recent)
    code, _, err = world.gc("--older-than", "1d", "--run-ids", recent.run_id)
    assert code == 1 and "more recently than --older-than" in err


async def _set_deleted_time(store: SqlStore, run_id: str, when: int) -> None:
    change = update(runs).where(runs.c.run_id == run_id).values(deleted_time=when)
    await store._write(lambda c: c.execute(change))


def test_a_location_outside_the_destination_is_kept(world: World, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    experiment_id = world.run(lambda s: s.create_experiment("e", str(elsewhere), []))
    run = world.run(lambda s: s.create_run(NewRun(experiment_id, "u", 1)))
    world.run(lambda s: s.delete_run(run.info.run_id))
    code, _out, err = world.gc("--run-ids", run.info.run_id)
    assert code == 1
    assert f"Run {run.info.run_id} kept" in err and "not served by an artifacts destination" in err
    assert world.exists(run.info)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "1x"], "--older-than"),
        (["--older-than", ""], None),
        (["--tracking-uri", "http://h", "--artifacts-destination", "x"], "not both"),
    ],
)
def test_usage_errors(world: World, args: list[str], message: str | None) -> None:
    world.run(lambda s: s.get_experiment("0"))  # create the file
    result = CliRunner().invoke(main, ["gc", "--backend-store-uri", world.uri, *args])
    if message is None:
        assert result.exit_code == 0
    else:
        assert result.exit_code == 2 and message in result.stderr


def test_a_missing_store_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["gc", "--backend-store-uri", str(tmp_path / "none.db")])
    assert result.exit_code == 1 and "No tracking database" in result.stderr
    assert not (tmp_path / "none.db").exists()


# -- logged models, and locations gc must never touch (API.md 2.3) ------------------------------


def new_model(world: World, deleted: bool = True) -> LoggedModel:
    model = world.run(lambda s: s.create_logged_model(NewModel("0", "m")))
    folder = world.dest / model.artifact_location.removeprefix(ROOT)
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_bytes(b"x" * 7)
    if deleted:
        world.run(lambda s: s.delete_logged_model(model.model_id))
    return model


def test_deleted_logged_models_go_with_their_folder(world: World) -> None:
    gone, kept = new_model(world), new_model(world, deleted=False)
    code, out, err = world.gc()
    assert code == 0, err
    assert f"Logged model {gone.model_id} permanently deleted: 1 file(s), 7 bytes." in out
    assert not (world.dest / "0" / "models" / gone.model_id).exists()
    assert (world.dest / "0" / "models" / kept.model_id / "artifacts" / "MLmodel").is_file()
    with pytest.raises(NotFound):
        world.run(lambda s: s.get_logged_model(gone.model_id, allow_deleted=True))


def test_logged_model_ids_name_deleted_models_only(world: World) -> None:
    active = new_model(world, deleted=False)
    code, _, err = world.gc("--logged-model-ids", active.model_id)
    assert code == 1
    assert f"Logged model {active.model_id} is active" in err
    gone = new_model(world)
    code, out, _ = world.gc("--logged-model-ids", gone.model_id)
    assert code == 0
    assert "Freed 0 run(s)" in out and gone.model_id in out


def test_a_deleted_experiments_models_go_with_it(world: World) -> None:
    eid = world.run(lambda s: s.create_experiment("doomed", None, []))
    model = world.run(lambda s: s.create_logged_model(NewModel(eid, "m")))
    folder = world.dest / model.artifact_location.removeprefix(ROOT)
    folder.mkdir(parents=True)
    (folder / "MLmodel").write_text("x")
    world.run(lambda s: s.delete_experiment(eid))
    code, out, err = world.gc("--experiment-ids", eid)
    assert code == 0, err
    assert not folder.exists()
    assert f"Experiment {eid} permanently deleted." in out


@pytest.mark.parametrize(
    "location",
    [
        "/etc",
        "file:///etc",
        "http:///?/../../../../etc",
        "http:///#/../../../../etc",
        "mlflow-artifacts:/../outside",
        "mlflow-artifacts:/%2e%2e/outside",
        "mlflow-artifacts:/%252e%252e/outside",
        "http://169.254.169.254/api/2.0/mlflow-artifacts/artifacts/x",
        "mlflow-artifacts://attacker.example/x",
    ],
)
def test_locations_off_the_destination_are_never_deleted(
    world: World, tmp_path: Path, location: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("x")
    run = world.new_run()
    model = new_model(world)
    run_uri = f"{location}/{run.run_id}/artifacts"
    model_uri = f"{location}/models/{model.model_id}/artifacts"
    world.run(lambda s: _relocate(s, run.run_id, run_uri, model.model_id, model_uri))
    code, _, err = world.gc()
    assert code == 1
    assert "kept" in err
    assert (outside / "keep.txt").is_file()
    assert world.exists(run)


async def _relocate(
    store: SqlStore, run_id: str, run_uri: str, model_id: str, model_uri: str
) -> None:
    """Point a run and a model somewhere else, as a client that logs directly may have."""
    run_change = update(runs).where(runs.c.run_id == run_id).values(artifact_uri=run_uri)
    where = logged_models.c.model_id == model_id
    model_change = update(logged_models).where(where).values(artifact_location=model_uri)
    await store._write(lambda c: (c.execute(run_change), c.execute(model_change)))
