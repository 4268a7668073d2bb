"""The tracking database's tables: one SQLAlchemy Core definition for SQLite, PostgreSQL and
MySQL/MariaDB.

A new database is created from this `metadata` and stamped at the newest Alembic revision; a
database made earlier is brought there by the revisions in tracking/migrations/versions/, run at
start-up (tracking/migrate.py). So every change here comes with a revision that makes the same
change to an existing database.

Adding a table (or a column, an index):
1. Define it below with `table(...)`. Text columns are `Str(n)` when they are part of a key,
   unique or indexed (n: the longest value the API accepts; MySQL needs it), else `Str`;
   integers `Int64` (times, ids, steps) or `Integer`; floats `Float64`.
2. Add tracking/migrations/versions/<id>.py: `revision = "<id>"`, `down_revision = "<the
   current head's id>"`, and `upgrade()` making the change with `op.create_table(...)` /
   `op.add_column(...)` (spell the columns out: a revision stays as written, while the tables
   here move on). `downgrade()` may raise: artgw never runs it.
3. tests/tracking/test_migrations.py checks that a database migrated from the oldest schema
   matches this metadata exactly, on every engine.

Queries are Core expressions on these `Table` objects (`select(runs).where(...)`), run inside
`Database.read` / `Database.write` transactions (tracking/db.py).

Types: text compares and orders by code point everywhere (PostgreSQL: the "C" collation;
MySQL/MariaDB: a binary, no-pad utf8mb4 collation), as SQLite does, so that names are unique
case-sensitively and ordering and LIKE agree across engines. Constraint names follow
PostgreSQL's defaults (`runs_pkey`, `experiments_name_key`, `params_run_id_fkey`), which the
databases of artgw 0.1 have, so later revisions can name them on old and new databases alike.
"""

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Dialect,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING = {
    "pk": "%(table_name)s_pkey",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "ix": "%(table_name)s_%(column_0_N_name)s_idx",
    "ck": "%(table_name)s_%(constraint_name)s_check",
}
metadata = MetaData(naming_convention=NAMING)

Int64: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")
"""BIGINT; INTEGER on SQLite (the same storage, and the rowid alias a primary key needs there)."""
Float64: TypeEngine[float] = Double().with_variant(sqlite.REAL(), "sqlite")
MYSQL_COLLATION = "utf8mb4_bin"
MARIADB_COLLATION = "utf8mb4_nopad_bin"


class Str(TypeDecorator[str]):
    """Text of any length, compared by code point (see the module docstring). On MySQL, a
    column that is a key must have a length: use `Str(n)`."""

    impl = Text
    cache_ok = True

    def __init__(self, length: int | None = None) -> None:
        super().__init__()
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return postgresql.TEXT(collation="C")
        if dialect.name in ("mysql", "mariadb"):
            return self._mysql(dialect)
        return Text()

    def _mysql(self, dialect: Dialect) -> TypeEngine[Any]:
        collation = MARIADB_COLLATION if getattr(dialect, "is_mariadb", False) else MYSQL_COLLATION
        if self.length is None:
            return mysql.MEDIUMTEXT(charset="utf8mb4", collation=collation)
        return mysql.VARCHAR(self.length, charset="utf8mb4", collation=collation)


KEY = 250
"""The longest metric, param and tag key the API accepts."""
RUN_ID = 32
EXPERIMENT_NAME = 500


MYSQL_TABLE: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
"""Every table's MySQL options (the revisions' `op.create_table` calls take them too)."""


def table(name: str, *columns: Any, **options: Any) -> Table:
    """A table of `metadata`, InnoDB in utf8mb4 on MySQL."""
    return Table(name, metadata, *columns, **MYSQL_TABLE, **options)


# The two helpers below are used by the revisions too: change them only by adding options.


def owned_by(name: str, type_: Any, parent: str, **options: Any) -> Column[Any]:
    """A column naming a row of `parent` ("table.column"), deleted with that row."""
    return Column(name, type_, ForeignKey(parent, ondelete="CASCADE"), **options)


def owned_by_row(table_name: str, parent: str, *columns: str) -> ForeignKeyConstraint:
    """`columns` of `table_name` name a row of `parent` (by its columns of the same names), and
    are deleted with it; the constraint named as PostgreSQL names it."""
    return ForeignKeyConstraint(
        list(columns),
        [f"{parent}.{column}" for column in columns],
        ondelete="CASCADE",
        name=f"{table_name}_{'_'.join(columns)}_fkey",
    )


def keyed_child(name: str, owner: Column[Any], *columns: Column[Any]) -> Table:
    """A table of rows keyed by (`owner`, key), deleted with their owner (tags, params, ...)."""
    return table(name, owner, Column("key", Str(KEY), primary_key=True), *columns)


def text_value() -> Column[Any]:
    return Column("value", Str, nullable=False)


def run_child(name: str, *columns: Column[Any]) -> Table:
    """A table of per-run rows keyed by (run_id, key), deleted with their run."""
    owner = owned_by("run_id", Str(RUN_ID), "runs.run_id", primary_key=True)
    return keyed_child(name, owner, *columns)


def metric_columns() -> list[Column[Any]]:
    return [
        Column("value", Float64, nullable=False),
        Column("is_nan", Integer, nullable=False),
        Column("timestamp", Int64, nullable=False),
        Column("step", Int64, nullable=False),
    ]


schema_version = table("schema_version", Column("version", Integer, nullable=False))
"""artgw 0.1's own version table. It holds 2 from the first Alembic revision on, so that an
artgw 0.1 refuses the database as newer than itself instead of writing to it."""

experiments = table(
    "experiments",
    Column("experiment_id", Int64, Identity(), primary_key=True),
    Column("name", Str(EXPERIMENT_NAME), nullable=False, unique=True),
    Column("artifact_location", Str, nullable=False),
    Column("lifecycle_stage", Str(32), nullable=False),
    Column("creation_time", Int64, nullable=False),
    Column("last_update_time", Int64, nullable=False),
    sqlite_autoincrement=True,
)

experiment_tags = keyed_child(
    "experiment_tags",
    owned_by("experiment_id", Int64, "experiments.experiment_id", primary_key=True),
    text_value(),
)

runs = table(
    "runs",
    Column("run_id", Str(RUN_ID), primary_key=True),
    Column("experiment_id", Int64, ForeignKey("experiments.experiment_id"), nullable=False),
    Column("name", Str, nullable=False),
    Column("user_id", Str, nullable=False),
    Column("status", Str(32), nullable=False),
    Column("start_time", Int64),
    Column("end_time", Int64),
    Column("artifact_uri", Str, nullable=False),
    Column("lifecycle_stage", Str(32), nullable=False),
    Column("deleted_time", Int64),
    Column("deleted_with_experiment", Integer, nullable=False, server_default=text("0")),
    Index("runs_by_experiment", "experiment_id", "start_time"),
)

params = run_child("params", text_value())
tags = run_child("tags", text_value())
latest_metrics = run_child("latest_metrics", *metric_columns())
metrics = table(
    "metrics",
    owned_by("run_id", Str(RUN_ID), "runs.run_id", nullable=False),
    Column("key", Str(KEY), nullable=False),
    *metric_columns(),
    PrimaryKeyConstraint("run_id", "key", "step", "timestamp", "value", "is_nan"),
)
"""Every logged point (a point logged twice is kept once)."""


# -- MLflow 3: logged models, datasets, run inputs and outputs (revision 0002_mlflow3) ----------

MODEL_ID = 36
DATASET_NAME = 500
DIGEST = 36
INPUT_TAG_KEY = 255


def model_child(name: str, *columns: Column[Any]) -> Table:
    """A table of per-model rows keyed by (model_id, key), deleted with their model."""
    owner = owned_by("model_id", Str(MODEL_ID), "logged_models.model_id", primary_key=True)
    return keyed_child(name, owner, *columns)


logged_models = table(
    "logged_models",
    Column("model_id", Str(MODEL_ID), primary_key=True),
    owned_by("experiment_id", Int64, "experiments.experiment_id", nullable=False),
    Column("name", Str(EXPERIMENT_NAME), nullable=False),
    Column("model_type", Str, nullable=False),
    Column("source_run_id", Str(RUN_ID), nullable=False),
    Column("status", Integer, nullable=False),
    Column("status_message", Str, nullable=False),
    Column("artifact_location", Str, nullable=False),
    Column("lifecycle_stage", Str(32), nullable=False),
    Column("creation_timestamp_ms", Int64, nullable=False),
    Column("last_updated_timestamp_ms", Int64, nullable=False),
    Index("logged_models_by_experiment", "experiment_id", "creation_timestamp_ms"),
    Index("logged_models_by_name", "experiment_id", "name"),
)
"""A model logged in an experiment (MLflow 3); `source_run_id` is '' for none."""

logged_model_params = model_child("logged_model_params", text_value())
logged_model_tags = model_child("logged_model_tags", text_value())
logged_model_metrics = table(
    "logged_model_metrics",
    owned_by("model_id", Str(MODEL_ID), "logged_models.model_id", nullable=False),
    Column("key", Str(KEY), nullable=False),
    *metric_columns(),
    Column("run_id", Str(RUN_ID), nullable=False),
    Column("dataset_name", Str, nullable=False),
    Column("dataset_digest", Str(DIGEST), nullable=False),
    PrimaryKeyConstraint("model_id", "key", "timestamp", "step", "run_id", "dataset_digest"),
)
"""Metrics runs logged with a model id ('' for no run or dataset)."""

datasets = table(
    "datasets",
    Column("dataset_uuid", Str(MODEL_ID), primary_key=True),
    owned_by("experiment_id", Int64, "experiments.experiment_id", nullable=False),
    Column("name", Str(DATASET_NAME), nullable=False),
    Column("digest", Str(DIGEST), nullable=False),
    Column("source_type", Str, nullable=False),
    Column("source", Str, nullable=False),
    Column("dataset_schema", Str),
    Column("dataset_profile", Str),
    UniqueConstraint(
        "experiment_id", "name", "digest", name="datasets_experiment_id_name_digest_key"
    ),
)
"""Datasets, once per experiment by (name, digest)."""

inputs = table(
    "inputs",
    owned_by("run_id", Str(RUN_ID), "runs.run_id", primary_key=True),
    owned_by("dataset_uuid", Str(MODEL_ID), "datasets.dataset_uuid", primary_key=True),
)
"""A run used a dataset."""

input_tags = table(
    "input_tags",
    Column("run_id", Str(RUN_ID), primary_key=True),
    Column("dataset_uuid", Str(MODEL_ID), primary_key=True),
    Column("key", Str(INPUT_TAG_KEY), primary_key=True),
    Column("value", Str, nullable=False),
    owned_by_row("input_tags", "inputs", "run_id", "dataset_uuid"),
)
"""Tags of a run's use of a dataset, e.g. mlflow.data.context."""

model_inputs = table(
    "model_inputs",
    owned_by("run_id", Str(RUN_ID), "runs.run_id", primary_key=True),
    Column("model_id", Str(MODEL_ID), primary_key=True),
)
"""A run used a logged model."""

model_outputs = table(
    "model_outputs",
    owned_by("run_id", Str(RUN_ID), "runs.run_id", primary_key=True),
    Column("model_id", Str(MODEL_ID), primary_key=True),
    Column("step", Int64, nullable=False),
)
"""A run produced a logged model (at a step)."""

# -- the model registry ------------------------------------------------------------------------

MODEL_NAME = 256
"""The longest registered model name (MLflow's column)."""
ALIAS = 255
STAGE = 32

registered_models = table(
    "registered_models",
    Column("model_key", Int64, Identity(), primary_key=True),
    Column("name", Str(MODEL_NAME), nullable=False, unique=True),
    Column("description", Str),
    Column("creation_time", Int64, nullable=False),
    Column("last_updated_time", Int64, nullable=False),
    Column("last_version", Int64, nullable=False),
    sqlite_autoincrement=True,
)
"""`model_key` is the model's own key, so a rename is one update; `last_version` is the highest
version number ever given (a new version raises it under the row's lock: no number twice)."""

registered_model_tags = keyed_child(
    "registered_model_tags",
    owned_by("model_key", Int64, "registered_models.model_key", primary_key=True),
    text_value(),
)

model_versions = table(
    "model_versions",
    owned_by("model_key", Int64, "registered_models.model_key", primary_key=True),
    Column("version", Int64, primary_key=True),
    Column("creation_time", Int64, nullable=False),
    Column("last_updated_time", Int64, nullable=False),
    Column("description", Str),
    Column("source", Str, nullable=False),
    Column("storage_location", Str, nullable=False),
    Column("run_id", Str(RUN_ID)),
    Column("run_link", Str),
    Column("model_id", Str(MODEL_ID)),
    Column("current_stage", Str(STAGE), nullable=False),
    Index("model_versions_by_run", "run_id"),
    Index("model_versions_by_model_id", "model_id"),
)
"""`source` as the client sent it; `storage_location` where the files are (a logged model's or a
copied version's location, else the source); `model_id` the logged model registered."""

model_version_tags = table(
    "model_version_tags",
    Column("model_key", Int64, primary_key=True),
    Column("version", Int64, primary_key=True),
    Column("key", Str(KEY), primary_key=True),
    Column("value", Str, nullable=False),
    owned_by_row("model_version_tags", "model_versions", "model_key", "version"),
)

registered_model_aliases = table(
    "registered_model_aliases",
    Column("model_key", Int64, primary_key=True),
    Column("alias", Str(ALIAS), primary_key=True),
    Column("version", Int64, nullable=False),
    owned_by_row("registered_model_aliases", "model_versions", "model_key", "version"),
)
