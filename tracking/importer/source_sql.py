"""An MLflow SQL tracking database (SQLite, PostgreSQL, MySQL), read with SQLAlchemy Core from
MLflow's own tables, reflected (so MLflow 2.x and 3.x schemas both read), in one read-only
connection: SQLite opens the file with `mode=ro`, PostgreSQL in read-only transactions.

Big tables stream (`yield_per`) in their stored order; nothing is held but one batch.
"""

import os
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    MetaData,
    Select,
    Table,
    create_engine,
    literal,
    make_url,
    select,
)
from sqlalchemy.pool import NullPool

from tracking import store_uri
from tracking.errors import StoreError
from tracking.importer.report import ENTITIES
from tracking.importer.source import BATCH, Batch, Row, SourceExperiment, with_experiment_deletion
from tracking.importer.source_sql_models import SqlModelParts

TABLES = tuple(e for e in ENTITIES if e not in ("model_inputs", "model_outputs"))
"""The source's tables: a logged model's inputs and outputs are rows of `inputs`."""
OPTIONAL = ("step", "is_nan")
"""Columns of `metrics` an early MLflow schema lacks."""
DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}


def read_only_engine(uri: str) -> Engine:
    target = store_uri.parse(uri)
    if target.engine == "sqlite":
        path = target.path()

        def connect() -> sqlite3.Connection:
            return sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, check_same_thread=False)

        if not os.path.isfile(path):
            raise StoreError(f"No MLflow database at {path}")
        return create_engine("sqlite+pysqlite://", creator=connect, poolclass=NullPool)
    url = make_url(uri).set(drivername=DRIVERS[target.engine])
    options: dict[str, Any] = {}
    if target.engine == "postgresql":
        options["postgresql_readonly"] = True
    return create_engine(url, poolclass=NullPool, execution_options=options)


class SqlSource(SqlModelParts):
    def __init__(self, uri: str) -> None:
        self.where = store_uri.redact(uri)
        self.engine = read_only_engine(uri)
        self.conn: Connection = self.engine.connect()
        meta = MetaData()
        meta.reflect(self.conn, only=lambda name, _meta: name in TABLES)
        missing = [name for name in ("experiments", "runs") if name not in meta.tables]
        if missing:
            self.close()
            raise StoreError(f"{self.where} is not an MLflow tracking database (no {missing[0]})")
        self.t: dict[str, Table] = dict(meta.tables)
        _floats_as_floats(self.t.values())

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()

    def _stream(self, table: str, *columns: str) -> Iterator[list[Any]]:
        if table not in self.t:
            return
        t = self.t[table]
        yield from self._partitions(select(*(t.c[name] for name in columns)))

    def _partitions(self, statement: Select[Any]) -> Iterator[list[Any]]:
        result = self.conn.execution_options(stream_results=True, yield_per=BATCH).execute(
            statement
        )
        for part in result.partitions():
            yield list(part)

    def _experiment_rows(self) -> dict[int, Row]:
        t = self.t["experiments"].c
        rows = self.conn.execute(select(self.t["experiments"]).order_by(t.experiment_id))
        return {
            int(r.experiment_id): {
                "experiment_id": int(r.experiment_id),
                "name": r.name,
                "artifact_location": r.artifact_location or "",
                "lifecycle_stage": r.lifecycle_stage or "active",
                "creation_time": r.creation_time or 0,
                "last_update_time": r.last_update_time or 0,
            }
            for r in rows
        }

    def experiments(self) -> Iterator[SourceExperiment]:
        tags: dict[int, list[tuple[str, str]]] = {}
        for part in self._stream("experiment_tags", "experiment_id", "key", "value"):
            for experiment_id, key, value in part:
                tags.setdefault(int(experiment_id), []).append((key, value or ""))
        for experiment_id, row in self._experiment_rows().items():
            yield SourceExperiment(row, sorted(tags.get(experiment_id, [])))

    def runs(self) -> Iterator[Batch]:
        experiments = self._experiment_rows()
        columns = (
            "run_uuid",
            "experiment_id",
            "name",
            "user_id",
            "status",
            "start_time",
            "end_time",
            "artifact_uri",
            "lifecycle_stage",
            "deleted_time",
        )
        present = [c for c in columns if c in self.t["runs"].c]
        for part in self._stream("runs", *present):
            batch = []
            for values in part:
                r = dict(zip(present, values, strict=True))
                row = {
                    "run_id": r["run_uuid"],
                    "experiment_id": int(r["experiment_id"]),
                    "name": r.get("name") or "",
                    "user_id": r.get("user_id") or "",
                    "status": r.get("status") or "RUNNING",
                    "start_time": r.get("start_time"),
                    "end_time": r.get("end_time"),
                    "artifact_uri": r.get("artifact_uri") or "",
                    "lifecycle_stage": r.get("lifecycle_stage") or "active",
                    "deleted_time": r.get("deleted_time"),
                }
                batch.append(with_experiment_deletion(row, experiments.get(row["experiment_id"])))
            yield batch

    def _texts(self, table: str) -> Iterator[Batch]:
        for part in self._stream(table, "run_uuid", "key", "value"):
            yield [{"run_id": r, "key": k, "value": v or ""} for r, k, v in part]

    def params(self) -> Iterator[Batch]:
        return self._texts("params")

    def tags(self) -> Iterator[Batch]:
        return self._texts("tags")

    def metrics(self) -> Iterator[Batch]:
        """Points in a fixed column order (an old schema's missing step or is_nan read as 0),
        made into rows with as little per-row work as possible: this is the big table."""
        t = self.t.get("metrics")
        if t is None:
            return
        optional = [t.c[name] if name in t.c else literal(0) for name in OPTIONAL]
        statement = select(t.c.run_uuid, t.c.key, t.c.value, t.c.timestamp, *optional)
        for part in self._partitions(statement):
            yield [
                {
                    "run_id": run_id,
                    "key": key,
                    "value": 0.0 if nan else float(value),
                    "is_nan": 1 if nan else 0,
                    "timestamp": timestamp or 0,
                    "step": step or 0,
                }
                for run_id, key, value, timestamp, step, nan in part
            ]


def _floats_as_floats(tables: Iterable[Table]) -> None:
    """Read floating-point columns as floats: MySQL's reflected DOUBLE reads as a Decimal of 10
    decimal places by default, which would cut metric values."""
    for table in tables:
        for column in table.c:
            if isinstance(column.type, Float):
                column.type.asdecimal = False
