"""The typed app key of the tracking store (set by `gateway.tracking.install`)."""

from aiohttp import web

from tracking.store import TrackingStore

STORE = web.AppKey("tracking_store", TrackingStore)
