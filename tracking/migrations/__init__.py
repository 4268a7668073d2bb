"""Alembic revisions of the tracking schema, run by tracking/migrate.py (there is no env.py)."""
