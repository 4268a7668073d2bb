"""Bringing an existing MLflow tracking store into artgw's: `artgw import SOURCE`.

A source (an MLflow file store directory, `source_file.py`, or an MLflow SQL database,
`source_sql.py`) yields its rows in artgw's column names, in batches; `writer.py` inserts them
into artgw's tables inside the target store's transactions, skipping rows already present, and
`run.py` drives the entities in dependency order and keeps the report. Sources are only read.
"""
