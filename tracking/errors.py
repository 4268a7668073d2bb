"""The tracking store's own exceptions. They say what went wrong in the store's terms; the
gateway's error table (gateway/errors.py) turns each into MLflow's JSON error and HTTP status."""


class TrackingError(Exception):
    """Base of every error a store operation raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(TrackingError):
    """The experiment, run, model or other entity named does not exist."""


class AlreadyExists(TrackingError):
    """An entity with that unique name or key exists already."""


class InvalidValue(TrackingError):
    """A value the caller gave is not acceptable: ill-formed, out of range, or not allowed in
    the entity's current state."""


class Forbidden(TrackingError):
    """The server will not act on this location: it is outside what the server may read."""


class Conflict(TrackingError):
    """The request collides with concurrent work; retrying it later may succeed."""


class Unavailable(TrackingError):
    """The database cannot be reached or used right now (down, restarting, full)."""


class StoreError(Exception):
    """The store cannot be opened: a bad URI, a missing or foreign database, a newer schema."""
