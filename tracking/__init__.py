"""The tracking store: experiments, runs and their data, in SQLite, PostgreSQL or MySQL/MariaDB.

No HTTP here: the gateway's tracking handlers (gateway/tracking/) call a `TrackingStore` and map
the exceptions of `tracking.errors` to MLflow's JSON errors.
"""
