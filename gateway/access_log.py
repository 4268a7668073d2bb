"""One line per request at debug level, shaped like the seed's sample output, plus the request id
and, when signed in, `user=NAME`.

In JSON logs (`--log-format json`) the same facts are also fields of the record.
"""

import logging
import os
import re
import time

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from gateway.auth import USER
from gateway.observability import request_id
from gateway.observability.middleware import bytes_sent

SIGNED = re.compile(r"([?&](?:token|upload_id)=)[^&]*")
"""Query values that grant access (gateway part uploads and signed downloads): never logged."""


class AccessLogger(AbstractAccessLogger):
    """`[date] [pid] [DEBUG] METHOD path status bytes ms request-id [user=NAME]`; bytes are those
    sent, headers included, sendfile() bodies too."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, duration: float) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %z")
        user = request.get(USER)
        rid = request_id.of(request)
        sent = bytes_sent(request, response)
        ms = duration * 1000
        fields = {"method": request.method, "path": request.path_qs, "status": response.status}
        fields |= {"bytes": sent, "ms": round(ms, 1), "request_id": rid}
        if user:
            fields["user"] = user
        self.logger.debug(
            "[%s] [%d] [DEBUG] %s %s %d %d %.1fms %s%s",
            stamp,
            os.getpid(),
            request.method,
            SIGNED.sub(r"\1***", request.path_qs),
            response.status,
            sent,
            ms,
            rid or "-",
            f" user={user}" if user else "",
            extra=fields,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)
