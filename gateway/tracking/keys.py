"""The typed app keys of the tracking store (set by `gateway.tracking.install`): the store, and
the same store seen as the logged-model store and as the model registry (each as the app holds
it: wrapped for the metrics, so handlers ask for the key rather than test the type)."""

from aiohttp import web

from tracking.logged_models import ModelStore
from tracking.registry_store import RegistryStore
from tracking.store import TrackingStore

STORE = web.AppKey("tracking_store", TrackingStore)
MODELS = web.AppKey("logged_model_store", ModelStore)
REGISTRY = web.AppKey("model_registry_store", RegistryStore)
