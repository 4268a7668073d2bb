"""Which store a `--backend-store-uri` names."""

from tracking.errors import StoreError
from tracking.postgres_conn import is_postgres_uri
from tracking.postgres_store import PostgresStore
from tracking.sqlite_store import SqliteStore
from tracking.store import TrackingStore


def store_from_uri(uri: str, default_artifact_root: str, *, create: bool = True) -> TrackingStore:
    """The (not yet opened) store a `--backend-store-uri` names."""
    if is_postgres_uri(uri):
        return PostgresStore(uri, default_artifact_root, create=create)
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    if scheme not in ("", "sqlite"):
        raise StoreError(
            f"Unsupported --backend-store-uri {scheme}://...: use sqlite:///path.db, a path, "
            "or postgresql://user:password@host:port/database"
        )
    return SqliteStore(uri, default_artifact_root, create=create)
