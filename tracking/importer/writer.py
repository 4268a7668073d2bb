"""Inserting a source's rows into artgw's tables, each call inside one transaction of the
target (the caller's `Connection`): rows already present and equal are skipped, so an import
run again imports nothing twice and an interrupted one resumes where its last transaction
ended. A row present with other values is a conflict: the target's is kept and reported."""

from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, insert, select, text, update

from tracking import sql_exec, sql_query
from tracking.importer import merge
from tracking.importer.merge import chunks
from tracking.importer.report import Report
from tracking.importer.source import Batch, Row, SourceExperiment
from tracking.importer.writer_models import ModelWriter
from tracking.schema import experiment_tags, experiments, latest_metrics, metrics, runs
from tracking.store import DEFAULT_EXPERIMENT_ID

EXPERIMENT_COLUMNS = ("artifact_location", "lifecycle_stage", "creation_time", "last_update_time")
RUN_COLUMNS = ("experiment_id", "name", "user_id", "status", "start_time", "end_time")
Rank = tuple[int, int, float]


class Writer(ModelWriter):
    def __init__(self, report: Report) -> None:
        super().__init__()
        self.report = report
        self.blocked_experiments: set[int] = set()
        self.blocked_runs: set[str] = set()
        self.latest: dict[tuple[str, str], tuple[Rank, Row]] = {}

    # -- experiments -----------------------------------------------------------------------------

    def experiment(self, c: Connection, source: SourceExperiment) -> None:
        """The experiment and its tags; an id or name the target uses otherwise blocks it."""
        row, tally = source.row, self.report["experiments"]
        key, name = row["experiment_id"], row["name"]
        held = c.execute(select(experiments).where(experiments.c.experiment_id == key)).first()
        if held is not None and held.name != name:
            self._block(key, f"id {key} ({name!r}) is experiment {held.name!r} in the target")
            return
        if held is None:
            other = c.execute(
                select(experiments.c.experiment_id).where(experiments.c.name == name)
            ).scalar()
            if other is not None:
                self._block(key, f"{key} ({name!r}): the name is experiment {other}'s there")
                return
            c.execute(insert(experiments).values(**row))
            tally.imported += 1
        elif self._adopt_default(c, held._mapping, row):
            tally.imported += 1
        else:
            tally.skipped += 1
        self._experiment_tags(c, key, source.tags)

    def _block(self, key: int, reason: str) -> None:
        self.blocked_experiments.add(key)
        self.report["experiments"].conflict(reason)

    def _adopt_default(self, c: Connection, held: Any, row: Row) -> bool:
        """The target's own Default experiment, still without runs, takes the source's
        location and times (its runs' artifacts are there)."""
        if str(row["experiment_id"]) != DEFAULT_EXPERIMENT_ID:
            return False
        if all(held[column] == row[column] for column in EXPERIMENT_COLUMNS):
            return False
        has_runs = c.execute(select(runs.c.run_id).where(runs.c.experiment_id == 0).limit(1))
        if has_runs.first() is not None:
            return False
        values = {column: row[column] for column in EXPERIMENT_COLUMNS}
        c.execute(update(experiments).where(experiments.c.experiment_id == 0).values(**values))
        return True

    def _experiment_tags(self, c: Connection, key: int, tags: list[tuple[str, str]]) -> None:
        held = dict(
            c.execute(
                select(experiment_tags.c.key, experiment_tags.c.value).where(
                    experiment_tags.c.experiment_id == key
                )
            ).all()
        )
        tally, new = self.report["experiment_tags"], []
        for tag_key, value in tags:
            if tag_key not in held:
                new.append({"experiment_id": key, "key": tag_key, "value": value})
            elif held[tag_key] == value:
                tally.skipped += 1
            else:
                tally.conflict(f"experiment {key} tag {tag_key!r} differs in the target")
        sql_exec.many(c, insert(experiment_tags), new)
        tally.imported += len(new)

    def finish_experiments(self, c: Connection) -> None:
        """PostgreSQL's identity sequence past the ids inserted (SQLite and MySQL move their
        counters themselves)."""
        if c.dialect.name != "postgresql":
            return
        top = c.execute(select(func.max(experiments.c.experiment_id))).scalar() or 0
        c.execute(
            text("SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'), :top)"),
            {"top": max(top, 1)},
        )

    # -- runs ------------------------------------------------------------------------------------

    def runs(self, c: Connection, batch: Batch) -> None:
        tally, new = self.report["runs"], []
        held = self._held_runs(c, [row["run_id"] for row in batch])
        known = self._known_experiments(c, {row["experiment_id"] for row in batch})
        for row in batch:
            run_id, experiment_id = row["run_id"], row["experiment_id"]
            if experiment_id in self.blocked_experiments or experiment_id not in known:
                self.blocked_runs.add(run_id)
                tally.conflict(f"run {run_id}: its experiment {experiment_id} was not imported")
            elif run_id in held and held[run_id] != experiment_id:
                self.blocked_runs.add(run_id)
                tally.conflict(f"run {run_id} is in experiment {held[run_id]} in the target")
            elif run_id in held:
                tally.skipped += 1
            else:
                new.append(row)
        sql_exec.many(c, insert(runs), new)
        tally.imported += len(new)

    def _held_runs(self, c: Connection, run_ids: list[str]) -> dict[str, int]:
        statement = select(runs.c.run_id, runs.c.experiment_id).where(
            runs.c.run_id.in_(bindparam("ids", expanding=True))
        )
        found: dict[str, int] = {}
        for part in chunks(run_ids):
            found.update((run_id, key) for run_id, key in c.execute(statement, {"ids": part}))
        return found

    def _known_experiments(self, c: Connection, keys: set[int]) -> set[int]:
        statement = select(experiments.c.experiment_id).where(
            experiments.c.experiment_id.in_(bindparam("ids", expanding=True))
        )
        return {key for part in chunks(sorted(keys)) for key in c.scalars(statement, {"ids": part})}

    # -- params and tags -------------------------------------------------------------------------

    def texts(self, c: Connection, table: Table, batch: Batch) -> None:
        """Params or run tags: new keys inserted, equal ones skipped, different ones kept."""
        tally = self.report[table.name]
        batch = [row for row in batch if row["run_id"] not in self.blocked_runs]
        held = self._held_texts(c, table, sorted({row["run_id"] for row in batch}))
        new = []
        for row in batch:
            value = held.get((row["run_id"], row["key"]))
            if value is None:
                new.append(row)
            elif value == row["value"]:
                tally.skipped += 1
            else:
                tally.conflict(
                    f"run {row['run_id']} {table.name[:-1]} {row['key']!r} differs in the target"
                )
        sql_exec.many(c, insert(table), new)
        tally.imported += len(new)

    def _held_texts(self, c: Connection, table: Table, run_ids: list[str]) -> dict[Any, str]:
        statement = select(table.c.run_id, table.c.key, table.c.value).where(
            table.c.run_id.in_(bindparam("ids", expanding=True))
        )
        found: dict[Any, str] = {}
        for part in chunks(run_ids):
            for run_id, key, value in c.execute(statement, {"ids": part}):
                found[(run_id, key)] = value
        return found

    # -- metrics ---------------------------------------------------------------------------------

    def metrics(self, c: Connection, batch: Batch) -> None:
        """Points (a point already there is skipped); each key's latest is noted for
        `finish_metrics`."""
        tally = self.report["metrics"]
        batch = [row for row in batch if row["run_id"] not in self.blocked_runs]
        added = sql_exec.many(c, merge.insert_new(c.dialect.name, metrics), batch)
        tally.imported += added
        tally.skipped += len(batch) - added
        for row in batch:
            rank = (row["step"], row["timestamp"], row["value"])
            where = (row["run_id"], row["key"])
            best = self.latest.get(where)
            if best is None or rank >= best[0]:
                self.latest[where] = (rank, row)

    def finish_metrics(self, c: Connection, pairs: list[tuple[str, str]]) -> None:
        """Each key's latest point into latest_metrics, unless the target holds a later one."""
        run_ids = sorted({run_id for run_id, _key in pairs})
        statement = select(
            latest_metrics.c.run_id,
            latest_metrics.c.key,
            latest_metrics.c.step,
            latest_metrics.c.timestamp,
            latest_metrics.c.value,
        ).where(latest_metrics.c.run_id.in_(bindparam("ids", expanding=True)))
        held: dict[tuple[str, str], Rank] = {}
        for part in chunks(run_ids):
            for run_id, key, step, timestamp, value in c.execute(statement, {"ids": part}):
                held[(run_id, key)] = (step, timestamp, value)
        winners = []
        for pair in pairs:
            rank, row = self.latest[pair]
            if pair not in held or rank > held[pair]:
                winners.append(row)
        upsert = sql_query.upsert(c, latest_metrics, "value", "is_nan", "timestamp", "step")
        sql_exec.many(c, upsert, winners)
