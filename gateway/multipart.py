"""Parallel transfers through artgw itself, for every store (API.md 1.6, issue 15).

With `--multipart` (on by default), `mpu/create` answers with part URLs that point back at artgw:
`PUT .../mlflow-artifacts/mpu/part/<path>?upload_id=..&part_number=N`. The upload id is a token
signed with the gateway's secret (`gateway.signing`): it names the path, the store's own id for
the upload, the number of parts, who created it and when it expires, so any worker or replica
can take any part and nothing is kept in the gateway. The parts go into the store's own
mechanism (`Backend.write_part`: S3 UploadPart, Azure staged blocks, hidden part files joined on
`complete` elsewhere). With `--multipart-downloads`, `presigned/<path>` answers a signed
`GET .../mlflow-artifacts/signed/<path>?token=..` URL and the size, and the client fetches ranges
of it in parallel, each a ranged read of the store.

`--presigned-urls` (store-signed URLs, S3) takes precedence where it applies: these handlers
hand over to gateway/presign.py then.
"""

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any
from urllib.parse import quote

from aiohttp import web

from backends import confine
from backends.base import Checker, Completion, Part
from backends.streams import received_pieces
from gateway import digests, presign, receive
from gateway.artifacts import json_response
from gateway.auth import tokens
from gateway.download import file_response
from gateway.errors import (
    ApiError,
    BadDigest,
    InvalidParameter,
    NotFound,
    NotImplementedByStore,
    PermissionDenied,
)
from gateway.keys import BACKEND, SETTINGS
from gateway.observability.metrics import multipart_upload_closed, multipart_upload_opened
from gateway.request_parts import backend_of, json_object
from gateway.signing import Signer, TokenError, TokenExpired, new_secret
from gateway.urls import (
    ANY_PATH,
    ARTIFACTS_API,
    PART_MARKER,
    PRESIGNED_MARKER,
    SIGNED_MARKER,
    api_base,
    url_tail,
)

SIGNER = web.AppKey("signer", Signer)
UPLOAD = "upload"
DOWNLOAD = "download"


class PartTooLarge(ApiError):
    status = 413


# -- what is on -----------------------------------------------------------------------------------


def uploads_enabled(app: web.Application, path: str | None = None) -> bool:
    """Gateway part uploads: on, the store (of `path`; None: any) can take parts, and no
    store-signed URLs instead."""
    on = app[SETTINGS].multipart and presign.capable(app[BACKEND], path, "part_uploads")
    return on and not presign.uploads_enabled(app, path)


def downloads_enabled(app: web.Application, path: str | None = None) -> bool:
    return app[SETTINGS].multipart_downloads and not presign.downloads_enabled(app, path)


def advertised_uploads(app: web.Application, path: str | None = None) -> bool:
    return presign.uploads_enabled(app, path) or uploads_enabled(app, path)


def advertised_downloads(app: web.Application, path: str | None = None) -> bool:
    return presign.downloads_enabled(app, path) or downloads_enabled(app, path)


def install(app: web.Application) -> None:
    """The signer, with the configured secret (a random one when unset: one process only)."""
    app[SIGNER] = Signer(app[SETTINGS].secret or new_secret())


# -- tokens ---------------------------------------------------------------------------------------


def creator(request: web.Request) -> str | None:
    """Who creates an upload: recorded in its id, so that its parts carry that user's right to
    write the path and nothing more."""
    return tokens.creator(request)


async def may_use(request: web.Request, claims: dict[str, Any], kind: str, path: str) -> None:
    """A part or a signed download: the token's user (`claims["u"]`) must still be allowed to
    write (read) the path under the rules in force."""
    await tokens.may_use(request, claims.get("u"), kind == UPLOAD, path)


async def verified(
    request: web.Request, token: object, kind: str, path: str, *, allow_expired: bool = False
) -> dict[str, Any]:
    """The claims of a token this gateway signed for `kind` on `path`, else 403."""
    if not isinstance(token, str) or not token:
        raise InvalidParameter("Missing 'upload_id'" if kind == UPLOAD else "Missing 'token'")
    try:
        claims = request.app[SIGNER].verify(token, kind, path, allow_expired=allow_expired)
    except TokenExpired:
        raise PermissionDenied(f"The {kind} token for '{path}' has expired") from None
    except TokenError as exc:
        raise PermissionDenied(f"The {kind} token is not valid for '{path}': {exc}") from None
    await may_use(request, claims, kind, path)
    return claims


def public_base(request: web.Request) -> str:
    """`scheme://host[/prefix]/mlflow-artifacts` as the client reached this request."""
    raw = request.raw_path.split("?", 1)[0]
    prefix = raw.split(f"{ARTIFACTS_API}/", 1)[0]
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    return f"{scheme}://{request.host}{api_base(prefix)}"


# -- mpu/create, mpu/complete, mpu/abort ----------------------------------------------------------


async def mpu_start(request: web.Request, action: str) -> tuple[str, dict[str, Any], bool]:
    """(path, body, presigned): the request is validated before saying what the store cannot
    do; `presigned` when the store of that path signs its own part URLs (--presigned-urls)."""
    body = await json_object(request, typed=True)
    path = presign.upload_target(request, action, body)
    if presign.uploads_enabled(request.app, path):
        if action != "abort" and digests.object_digests(request.headers):
            raise InvalidParameter(
                "A whole-file digest (Repr-Digest) is checked only for parts uploaded through "
                "artgw, not with the store's own signed part URLs (--presigned-urls)"
            )
        return path, body, True
    if not uploads_enabled(request.app, path):
        raise NotImplementedByStore(presign.NO_MPU)
    return path, body, False


async def create(request: web.Request) -> web.Response:
    path, body, presigned = await mpu_start(request, "create")
    if presigned:
        return await presign.create(request)
    num_parts = presign.int_like(body.get("num_parts"))
    if not 1 <= num_parts <= presign.MAX_PARTS:
        raise InvalidParameter(f"'num_parts' must be between 1 and {presign.MAX_PARTS}")
    whole = digests.field_value(digests.object_digests(request.headers)) or None
    store_id = await backend_of(request).begin_parts(path, whole)
    multipart_upload_opened()
    settings = request.app[SETTINGS]
    announced = {"d": whole} if whole else {}  # the whole file's digests, checked on complete
    upload_id = request.app[SIGNER].sign(
        UPLOAD,
        path,
        settings.multipart_ttl,
        s=store_id,
        n=num_parts,
        u=creator(request),
        **announced,
    )
    url = f"{public_base(request)}/mpu/part/{quote(path)}?upload_id={upload_id}&part_number="
    credentials = [
        {"url": f"{url}{n}", "part_number": n, "headers": {}} for n in range(1, num_parts + 1)
    ]
    return json_response({"upload_id": upload_id, "credentials": credentials})


def listed_parts(body: dict[str, Any], expected: int) -> list[tuple[int, str]]:
    """(number, ETag) in order; exactly the numbers 1..expected, each once."""
    parts = []
    for part in presign.field(body, "parts", list):
        if not isinstance(part, dict):
            raise InvalidParameter("Each of 'parts' must be an object")
        etag = presign.field(part, "etag", str).strip().removeprefix("W/").strip('"')
        parts.append((presign.field(part, "part_number", int), etag))
    parts.sort()
    numbers = [number for number, _ in parts]
    if numbers != list(range(1, expected + 1)):
        missing = sorted(set(range(1, expected + 1)) - set(numbers))
        extra = sorted({n for n in numbers if not 1 <= n <= expected or numbers.count(n) > 1})
        raise InvalidParameter(
            f"'parts' must list parts 1 to {expected} once each; missing {missing[:10]}, "
            f"unexpected or repeated {extra[:10]}"
        )
    return parts


async def complete(request: web.Request) -> web.Response:
    path, body, presigned = await mpu_start(request, "complete")
    if presigned:
        return await presign.complete(request)
    claims = await verified(request, body.get("upload_id"), UPLOAD, path)
    parts = listed_parts(body, claims["n"])
    given = digests.object_digests(request.headers)
    backend = backend_of(request)
    try:
        claimed = digests.merged(digests.parsed(claims.get("d")), given)
        await backend.finish_parts(path, Completion(claims["s"], parts, *whole_file_check(claimed)))
    except FileNotFoundError:
        raise NotFound(f"No such multipart upload for '{path}' (aborted or expired)") from None
    except BadDigest:
        await backend.discard_parts(path, claims["s"])  # nothing is stored, not even the parts
        multipart_upload_closed()
        raise
    multipart_upload_closed()
    return json_response({})


def whole_file_check(claimed: dict[str, bytes]) -> tuple[str | None, Checker | None]:
    """(the digests to keep with the file, the check its joined parts go through) for
    `finish_parts`; (None, None) when the client claims none."""
    if not claimed:
        return None, None

    def check(joined: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        return digests.verified(joined, claimed, DISCARDED)

    return digests.field_value(claimed), check


DISCARDED = "the upload was discarded and nothing was stored"


async def abort(request: web.Request) -> web.Response:
    path, body, presigned = await mpu_start(request, "abort")
    if presigned:
        return await presign.abort(request)
    claims = await verified(request, body.get("upload_id"), UPLOAD, path, allow_expired=True)
    await backend_of(request).discard_parts(path, claims["s"])
    multipart_upload_closed()
    return json_response({})


# -- the part PUT ---------------------------------------------------------------------------------


def part_number(value: str | None, num_parts: int) -> int:
    try:
        number = int(value or "")
    except ValueError:
        raise InvalidParameter("'part_number' must be an integer") from None
    if not 1 <= number <= num_parts:
        raise InvalidParameter(f"'part_number' must be between 1 and {num_parts}")
    return number


async def capped(body: AsyncIterable[bytes], limit: int) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in body:
        received += len(chunk)
        if received > limit:
            raise PartTooLarge(f"A part may hold at most {limit} bytes (--max-part-size)")
        yield chunk


async def put_part(request: web.Request) -> web.Response:
    path = confine(url_tail(request, PART_MARKER))
    if not uploads_enabled(request.app, path):
        raise NotImplementedByStore(presign.NO_MPU)
    claims = await verified(request, request.query.get("upload_id"), UPLOAD, path)
    number = part_number(request.query.get("part_number"), claims["n"])
    limit = request.app[SETTINGS].max_part_size
    if (request.content_length or 0) > limit:
        raise PartTooLarge(f"A part may hold at most {limit} bytes (--max-part-size)")
    body: AsyncIterable[bytes] = capped(received_pieces(request.content), limit)
    claimed = digests.claimed_digests(request.headers)
    # a part's Content-Digest / Content-MD5 is checked before the part is kept; with nothing
    # to hash, a local store may splice the bytes straight from the socket
    body = digests.verified(body, claimed) if claimed else receive.kernel_body(request, body)
    try:
        part = Part(claims["s"], number, request.content_length)
        etag = await backend_of(request).write_part(path, part, body)
    except FileNotFoundError:
        raise NotFound(f"No such multipart upload for '{path}' (aborted or expired)") from None
    response = web.Response(headers={"ETag": f'"{etag}"'})
    if isinstance(body, receive.SplicedBody) and body.took_socket:
        response.force_close()  # aiohttp's parser never saw the body's end
    return response


# -- downloads ------------------------------------------------------------------------------------


async def presigned(request: web.Request) -> web.Response:
    path = confine(url_tail(request, PRESIGNED_MARKER))
    if presign.downloads_enabled(request.app, path):
        return await presign.presigned(request)
    if not downloads_enabled(request.app, path):
        raise NotImplementedByStore(presign.NO_DOWNLOAD)
    info = await backend_of(request).stat(path)
    if info.is_dir:
        raise InvalidParameter(f"Artifact path refers to a directory, not a file: '{path}'")
    ttl = request.app[SETTINGS].presigned_url_ttl
    token = request.app[SIGNER].sign(DOWNLOAD, path, ttl, u=creator(request))
    url = f"{public_base(request)}/signed/{quote(path)}?token={token}"
    return json_response({"url": url, "headers": {}, "file_size": info.size})


async def signed_download(request: web.Request) -> web.StreamResponse:
    """The file, or the Range asked for, read from the store as asked (nothing staged)."""
    path = confine(url_tail(request, SIGNED_MARKER))
    await verified(request, request.query.get("token"), DOWNLOAD, path)
    opened = await backend_of(request).open(path)
    try:
        return await file_response(request, opened, path.rpartition("/")[2])
    finally:
        await opened.close()


def routes(prefix: str) -> list[web.RouteDef]:
    base = api_base(prefix)
    return [
        web.post(f"{base}/mpu/create/{ANY_PATH}", create),
        web.post(f"{base}/mpu/complete/{ANY_PATH}", complete),
        web.post(f"{base}/mpu/abort/{ANY_PATH}", abort),
        web.put(f"{base}/mpu/part/{ANY_PATH}", put_part),
        web.get(f"{base}/presigned/{ANY_PATH}", presigned),
        web.get(f"{base}/signed/{ANY_PATH}", signed_download),
    ]
