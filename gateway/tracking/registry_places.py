"""The places this server reads model files from, built once from the settings (see
tracking/registry_sources.py): its destination, the artifacts servers it may fetch from (the
same allow-list as the tracking-side reads: --allowed-artifact-servers and the host of
--default-artifact-root), and a `--default-artifact-root` that clients write to directly."""

import os

from aiohttp import web

from backends.registry import scheme_of
from gateway.settings import Settings
from tracking.artifact_roots import allow_list
from tracking.registry_sources import PROXY_SCHEME, Places, locate

PLACES = web.AppKey("registry_places", Places)


def places_from(settings: Settings) -> Places:
    """Reads the working directory (a relative local destination): call it at start-up."""
    destination = settings.artifacts_destination
    if not scheme_of(destination) and not os.path.isabs(destination):
        destination = os.path.abspath(destination)
    root = settings.default_artifact_root
    if not scheme_of(root) and not os.path.isabs(root):
        root = os.path.abspath(root)
    hosts = allow_list(settings.default_artifact_root, settings.allowed_artifact_servers)
    places = Places(destination=destination, hosts=hosts)
    if locate(root, places) is None and scheme_of(root) != PROXY_SCHEME:
        places = Places(destination=destination, hosts=hosts, roots=(root,))
    return places


def places_of(app: web.Application) -> Places:
    return app[PLACES]
