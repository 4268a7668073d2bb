"""One line per request at debug level, shaped like the seed's sample output."""

import logging
import os
import re
import time

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from gateway.auth import USER

SIGNED = re.compile(r"([?&](?:token|upload_id)=)[^&]*")
"""Query values that grant access (gateway part uploads and signed downloads): never logged."""


class AccessLogger(AbstractAccessLogger):
    """`[date] [pid] [DEBUG] METHOD path status bytes ms`, then `user=NAME` when signed in."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, duration: float) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %z")
        user = request.get(USER)
        self.logger.debug(
            "[%s] [%d] [DEBUG] %s %s %d %d %.1fms%s",
            stamp,
            os.getpid(),
            request.method,
            SIGNED.sub(r"\1***", request.path_qs),
            response.status,
            response.body_length,
            duration * 1000,
            f" user={user}" if user else "",
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)
