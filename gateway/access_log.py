"""One line per request at debug level, shaped like the seed's sample output."""

import logging
import os
import time

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from gateway.auth import USER


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
            request.path_qs,
            response.status,
            response.body_length,
            duration * 1000,
            f" user={user}" if user else "",
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)
