"""Which store a `--backend-store-uri` names."""

from tracking.sql_store import SqlStore
from tracking.store import TrackingStore


def store_from_uri(uri: str, default_artifact_root: str, *, create: bool = True) -> TrackingStore:
    """The (not yet opened) store a `--backend-store-uri` names: every one is a SQL database
    (tracking/store_uri.py lists the forms); a bad URI raises StoreError now."""
    return SqlStore(uri, default_artifact_root, create=create)
