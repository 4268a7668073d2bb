"""The model registry (issue 13): registered models, their tags and aliases, model versions and
their tags."""

from typing import Any

import sqlalchemy as sa
from alembic import op

from tracking.schema import Int64, Str

revision = "0003_registry"
down_revision = "0002_mlflow3"
MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


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
        **MYSQL,
    )
    op.create_table(
        "registered_model_tags",
        sa.Column(
            "model_key",
            Int64,
            sa.ForeignKey("registered_models.model_key", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key", Str(250), primary_key=True),
        sa.Column("value", Str, nullable=False),
        **MYSQL,
    )
    op.create_table(
        "model_versions",
        sa.Column(
            "model_key",
            Int64,
            sa.ForeignKey("registered_models.model_key", ondelete="CASCADE"),
            primary_key=True,
        ),
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
        **MYSQL,
    )
    op.create_table(
        "model_version_tags",
        sa.Column("model_key", Int64, primary_key=True),
        sa.Column("version", Int64, primary_key=True),
        sa.Column("key", Str(250), primary_key=True),
        sa.Column("value", Str, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_key", "version"],
            ["model_versions.model_key", "model_versions.version"],
            ondelete="CASCADE",
            name="model_version_tags_model_key_version_fkey",
        ),
        **MYSQL,
    )
    op.create_table(
        "registered_model_aliases",
        sa.Column("model_key", Int64, primary_key=True),
        sa.Column("alias", Str(255), primary_key=True),
        sa.Column("version", Int64, nullable=False),
        sa.ForeignKeyConstraint(
            ["model_key", "version"],
            ["model_versions.model_key", "model_versions.version"],
            ondelete="CASCADE",
            name="registered_model_aliases_model_key_version_fkey",
        ),
        **MYSQL,
    )


def downgrade() -> None:
    raise NotImplementedError("artgw does not downgrade its schema")
