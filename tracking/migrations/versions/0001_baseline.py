"""The schema of artgw 0.1 (its schema_version 1): experiments, experiment_tags, runs, params,
tags, metrics and latest_metrics.

The baseline: a database made by artgw 0.1 is stamped with this revision as it is (then its
schema_version is set to 2), and a new database is created from tracking/schema.py and stamped
at the head, so this revision has nothing to do. The next revision starts from here.
"""

revision = "0001"
down_revision = None


def upgrade() -> None:
    """Nothing: no database is older than the baseline."""


def downgrade() -> None:
    raise NotImplementedError("artgw does not downgrade its schema")
