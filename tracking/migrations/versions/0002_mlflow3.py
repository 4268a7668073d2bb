"""MLflow 3's logged models (with their params, tags and metrics), datasets, and runs' inputs
(datasets, with input tags; models) and outputs (models)."""

import sqlalchemy as sa
from alembic import op

from tracking.schema import MYSQL_TABLE, Float64, Int64, Str, owned_by, owned_by_row

revision = "0002_mlflow3"
down_revision = "0001"


def _model_id(*, primary_key: bool = True) -> sa.Column:
    model = "logged_models.model_id"
    return owned_by("model_id", Str(36), model, primary_key=primary_key, nullable=False)


def _run_id() -> sa.Column:
    return owned_by("run_id", Str(32), "runs.run_id", primary_key=True)


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("model_id", Str(36), primary_key=True),
        owned_by("experiment_id", Int64, "experiments.experiment_id", nullable=False),
        sa.Column("name", Str(500), nullable=False),
        sa.Column("model_type", Str(), nullable=False),
        sa.Column("source_run_id", Str(32), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("status_message", Str(), nullable=False),
        sa.Column("artifact_location", Str(), nullable=False),
        sa.Column("lifecycle_stage", Str(32), nullable=False),
        sa.Column("creation_timestamp_ms", Int64, nullable=False),
        sa.Column("last_updated_timestamp_ms", Int64, nullable=False),
        **MYSQL_TABLE,
    )
    op.create_index(
        "logged_models_by_experiment", "logged_models", ["experiment_id", "creation_timestamp_ms"]
    )
    op.create_index("logged_models_by_name", "logged_models", ["experiment_id", "name"])
    for name in ("logged_model_params", "logged_model_tags"):
        op.create_table(
            name,
            _model_id(),
            sa.Column("key", Str(250), primary_key=True),
            sa.Column("value", Str(), nullable=False),
            **MYSQL_TABLE,
        )
    op.create_table(
        "logged_model_metrics",
        _model_id(primary_key=False),
        sa.Column("key", Str(250), nullable=False),
        sa.Column("value", Float64, nullable=False),
        sa.Column("is_nan", sa.Integer(), nullable=False),
        sa.Column("timestamp", Int64, nullable=False),
        sa.Column("step", Int64, nullable=False),
        sa.Column("run_id", Str(32), nullable=False),
        sa.Column("dataset_name", Str(), nullable=False),
        sa.Column("dataset_digest", Str(36), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "key", "timestamp", "step", "run_id", "dataset_digest"),
        **MYSQL_TABLE,
    )
    op.create_table(
        "datasets",
        sa.Column("dataset_uuid", Str(36), primary_key=True),
        owned_by("experiment_id", Int64, "experiments.experiment_id", nullable=False),
        sa.Column("name", Str(500), nullable=False),
        sa.Column("digest", Str(36), nullable=False),
        sa.Column("source_type", Str(), nullable=False),
        sa.Column("source", Str(), nullable=False),
        sa.Column("dataset_schema", Str()),
        sa.Column("dataset_profile", Str()),
        sa.UniqueConstraint(
            "experiment_id", "name", "digest", name="datasets_experiment_id_name_digest_key"
        ),
        **MYSQL_TABLE,
    )
    op.create_table(
        "inputs",
        _run_id(),
        owned_by("dataset_uuid", Str(36), "datasets.dataset_uuid", primary_key=True),
        **MYSQL_TABLE,
    )
    op.create_table(
        "input_tags",
        sa.Column("run_id", Str(32), primary_key=True),
        sa.Column("dataset_uuid", Str(36), primary_key=True),
        sa.Column("key", Str(255), primary_key=True),
        sa.Column("value", Str(), nullable=False),
        owned_by_row("input_tags", "inputs", "run_id", "dataset_uuid"),
        **MYSQL_TABLE,
    )
    op.create_table(
        "model_inputs",
        _run_id(),
        sa.Column("model_id", Str(36), primary_key=True),
        **MYSQL_TABLE,
    )
    op.create_table(
        "model_outputs",
        _run_id(),
        sa.Column("model_id", Str(36), primary_key=True),
        sa.Column("step", Int64, nullable=False),
        **MYSQL_TABLE,
    )


def downgrade() -> None:
    raise NotImplementedError("artgw does not downgrade its schema")
