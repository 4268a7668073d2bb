"""One S3 UploadPart streamed from the client's part PUT, without gathering the part in memory.

botocore cannot send a body it does not hold: over plain HTTP it signs the payload's SHA-256 (and
by default adds a CRC32), both computed over the whole body before the first byte goes. So the
part goes up on an UploadPart URL signed by the same client (query-string SigV4, whose payload
is UNSIGNED-PAYLOAD), sent with that client's own HTTP session (its proxies, TLS settings and
timeouts), with the length the client announced. The gateway then holds a few of the pieces
aiohttp received at a time, whatever the part's size.

The part's digests (Content-Digest, Content-MD5, ...) are still checked by the gateway as the body
streams (gateway/digests.py raises at the body's end). The last piece is held back until the body
has ended well, so a part that fails its check (or comes short) never reaches its announced
length: the store drops the cut request, and no part is stored under that number.
"""

import errno
import re
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from botocore import exceptions as boto
from botocore.awsrequest import AWSPreparedRequest

URL_TTL = 3600
"""How long the signed UploadPart URL is valid: it is used at once, by the gateway only."""
_CODE = re.compile(rb"<Code>([^<]{1,200})</Code>")
_MESSAGE = re.compile(rb"<Message>([^<]{0,500})</Message>")


async def held_back(
    body: AsyncIterable[bytes], size: int, failures: list[BaseException]
) -> AsyncIterator[bytes]:
    """`body` one piece behind: its last piece goes only once it has ended well with exactly
    `size` bytes. What it raised is kept in `failures` (the HTTP client replaces it with its own
    error), for the caller to raise instead."""
    held: bytes | None = None
    received = 0
    try:
        async for piece in body:
            if held is not None:
                yield held
            held = piece
            received += len(piece)
        if received != size:
            raise OSError(errno.EIO, f"The part has {received} bytes, not the {size} announced")
    except BaseException as exc:
        failures.append(exc)
        raise
    if held is not None:
        yield held


async def upload_part(
    client: Any, bucket: str, key: str, upload_id: str, number: int,
    body: AsyncIterable[bytes], size: int,
) -> str:  # fmt: skip
    """UploadPart of `size` bytes streamed from `body`; the part's ETag. The store's refusal is
    a botocore ClientError (the backend translates it as any other call's)."""
    params = {"Bucket": bucket, "Key": key, "UploadId": upload_id, "PartNumber": number}
    url = await client.generate_presigned_url("upload_part", Params=params, ExpiresIn=URL_TTL)
    failures: list[BaseException] = []
    request = AWSPreparedRequest(
        "PUT", url, {"Content-Length": str(size)}, held_back(body, size, failures), False
    )
    try:
        response = await client._endpoint.http_session.send(request)
    except Exception:
        if failures:
            raise failures[0] from None
        raise
    if failures:  # the store answered before the body failed
        raise failures[0]
    content = await response.content
    if response.status_code != 200:
        raise _client_error(response.status_code, content)
    return str(response.headers.get("etag", "")).strip('"')


def _client_error(status: int, content: bytes) -> boto.ClientError:
    code = _CODE.search(content)
    message = _MESSAGE.search(content)
    error = {
        "Code": code.group(1).decode(errors="replace") if code else str(status),
        "Message": message.group(1).decode(errors="replace") if message else "",
    }
    return boto.ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}},
                            "UploadPart")  # fmt: skip
