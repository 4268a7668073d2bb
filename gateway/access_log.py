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
        sent = bytes_sent(request, response)
        rid = request_id.of(request)
        user = request.get(USER)
        self.line(
            request.method, request.path_qs, response.status, sent, duration * 1000, rid, user
        )

    def line(
        self,
        method: str,
        path_qs: str,
        status: int,
        sent: int,
        ms: float,
        rid: str,
        user: str | None,
    ) -> None:
        """The line of one answered request (gateway/fastlane.py writes its own with it)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S %z")
        fields = {"method": method, "path": path_qs, "status": status}
        fields |= {"bytes": sent, "ms": round(ms, 1), "request_id": rid}
        if user:
            fields["user"] = user
        self.logger.debug(
            "[%s] [%d] [DEBUG] %s %s %d %d %.1fms %s%s",
            stamp,
            os.getpid(),
            method,
            SIGNED.sub(r"\1***", path_qs),
            status,
            sent,
            ms,
            rid or "-",
            f" user={user}" if user else "",
            extra=fields,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.DEBUG)
