"""The model registry (issue 13): registered models, their tags and aliases, model versions and
their tags."""

import sqlalchemy as sa
from alembic import op

from tracking.schema import MYSQL_TABLE, Int64, Str, owned_by, owned_by_row

revision = "0003_registry"
down_revision = "0002_mlflow3"


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("model_key", Int64, sa.Identity(), primary_key=True),
        sa.Column("name", Str(256), nullable=False, unique=True),
        sa.Column("description", Str),
        sa.Column("creation_time", Int64, nullable=False),
        sa.Column("last_updated_time", Int64, nullable=False),
        sa.Column("last_version", Int64, nullable=False),
        sqlite_autoincrement=True,
        **MYSQL_TABLE,
    )
    op.create_table(
        "registered_model_tags",
        owned_by("model_key", Int64, "registered_models.model_key", primary_key=True),
        sa.Column("key", Str(250), primary_key=True),
        sa.Column("value", Str, nullable=False),
        **MYSQL_TABLE,
    )
    op.create_table(
        "model_versions",
        owned_by("model_key", Int64, "registered_models.model_key", primary_key=True),
        sa.Column("version", Int64, primary_key=True),
        sa.Column("creation_time", Int64, nullable=False),
        sa.Column("last_updated_time", Int64, nullable=False),
        sa.Column("description", Str),
        sa.Column("source", Str, nullable=False),
        sa.Column("storage_location", Str, nullable=False),
        sa.Column("run_id", Str(32)),
        sa.Column("run_link", Str),
        sa.Column("model_id", Str(36)),
        sa.Column("current_stage", Str(32), nullable=False),
        sa.Index("model_versions_by_run", "run_id"),
        sa.Index("model_versions_by_model_id", "model_id"),
        **MYSQL_TABLE,
    )
    op.create_table(
        "model_version_tags",
        sa.Column("model_key", Int64, primary_key=True),
        sa.Column("version", Int64, primary_key=True),
        sa.Column("key", Str(250), primary_key=True),
        sa.Column("value", Str, nullable=False),
        owned_by_row("model_version_tags", "model_versions", "model_key", "version"),
        **MYSQL_TABLE,
    )
    op.create_table(
        "registered_model_aliases",
        sa.Column("model_key", Int64, primary_key=True),
        sa.Column("alias", Str(255), primary_key=True),
        sa.Column("version", Int64, nullable=False),
        owned_by_row("registered_model_aliases", "model_versions", "model_key", "version"),
        **MYSQL_TABLE,
    )


def downgrade() -> None:
    raise NotImplementedError("artgw does not downgrade its schema")
