"""`tracking.importer` on a file store the real mlflow client wrote: dry runs write nothing,
conflicts keep the target's rows and say why, a second import adds nothing."""

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests.tracking.import_sources import checksum, file_store_uri, write_store
from tracking.importer.report import Report
from tracking.importer.run import run_import

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture(scope="module")
def mlruns(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("source") / "mlruns"
    write_store(file_store_uri(path))
    return path


def imported(source: Path | str, target: Path, *, dry_run: bool = False) -> Report:
    lines: list[str] = []
    report = asyncio.run(
        run_import(str(source), f"sqlite:///{target}", dry_run=dry_run, progress=lines.append)
    )
    assert any(line.startswith("metrics:") for line in lines)
    return report


def test_dry_run_writes_nothing_and_counts_everything(mlruns: Path, tmp_path: Path) -> None:
    before = checksum(mlruns)
    report = imported(mlruns, tmp_path / "t.db", dry_run=True)
    assert not (tmp_path / "t.db").exists()
    assert (report["runs"].imported, report["metrics"].imported) == (4, 42)
    assert checksum(mlruns) == before


def test_dry_run_on_an_existing_target_rolls_back(mlruns: Path, tmp_path: Path) -> None:
    target = tmp_path / "t.db"
    imported(mlruns, target)
    with sqlite3.connect(target) as db:
        db.execute("DELETE FROM metrics WHERE key = 'loss'")
    before = checksum(target)
    report = imported(mlruns, target, dry_run=True)
    assert (report["metrics"].imported, report["metrics"].skipped) == (20, 22)
    assert report["runs"].skipped == 4
    assert checksum(target) == before


def test_second_import_adds_nothing_and_a_resumed_one_completes(
    mlruns: Path, tmp_path: Path
) -> None:
    target = tmp_path / "t.db"
    first = imported(mlruns, target)
    assert first["params"].imported == 3 and first.conflicting == 0
    again = imported(mlruns, target)
    assert all(tally.imported == 0 for tally in again.tallies.values())
    assert again["metrics"].skipped == 42
    with sqlite3.connect(target) as db:  # as if interrupted after the runs
        db.execute("DELETE FROM metrics")
        db.execute("DELETE FROM params")
    resumed = imported(mlruns, target)
    assert (resumed["metrics"].imported, resumed["params"].imported) == (42, 3)


def test_conflicts_keep_the_target_and_say_why(mlruns: Path, tmp_path: Path) -> None:
    target = tmp_path / "t.db"
    imported(mlruns, target)
    with sqlite3.connect(target) as db:
        db.execute("UPDATE params SET value = 'changed' WHERE key = 'lr'")
        db.execute("UPDATE experiments SET name = 'renamed' WHERE name = 'exp-a'")
    report = imported(mlruns, target)
    assert report["experiments"].conflicting == 1
    assert "is experiment 'renamed' in the target" in report["experiments"].reasons[0]
    assert report["runs"].conflicting == 2  # the runs of the blocked experiment
    assert report["params"].conflicting == 0  # those runs are not touched at all
    assert any("conflict (experiments)" in line for line in report.lines())
