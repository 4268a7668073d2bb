"""The typed app keys of the tracking store (set by `gateway.tracking.install`): the store, and
the same store seen as the logged-model store."""

from aiohttp import web

from tracking.logged_models import ModelStore
from tracking.store import TrackingStore

STORE = web.AppKey("tracking_store", TrackingStore)
MODELS = web.AppKey("logged_model_store", ModelStore)
