"""HTTPS with the standard library's ssl: `--certfile`/`--keyfile`, and `--ca-certs` to require
client certificates signed by those CAs. TLS 1.2 at least; each worker builds its own context."""

import ssl

from gateway.settings import Settings


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The context to serve with, or None for plain HTTP. Raises ValueError for half a setup."""
    if not settings.certfile:
        if settings.keyfile or settings.ca_certs:
            raise ValueError("--keyfile and --ca-certs need --certfile")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.certfile, settings.keyfile or None)
    if settings.ca_certs:
        context.load_verify_locations(cafile=settings.ca_certs)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
