"""A minimal HTTP/1.1 client over asyncio streams: sends the request target byte for byte.

Ordinary clients normalise `..`, re-encode or reject odd characters; path-safety tests need the
exact bytes an attacker would send.
"""

import asyncio
import json
from dataclasses import dataclass


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


async def raw_request(
    port: int, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> RawResponse:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method in ("PUT", "POST"):
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        return await _read_response(reader, head_only=method == "HEAD")
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader, *, head_only: bool) -> RawResponse:
    status_line = (await reader.readline()).decode("latin-1")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := (await reader.readline()).decode("latin-1").strip()) != "":
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if head_only or status == 304:
        return RawResponse(status, headers, b"")
    length = headers.get("content-length")
    data = await (reader.readexactly(int(length)) if length is not None else reader.read())
    return RawResponse(status, headers, data)
