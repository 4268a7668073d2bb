"""Amazon S3 and S3-compatible stores (s3://bucket/prefix), over s3fs and its aiobotocore client.

Credentials come from botocore's usual chain (AWS_* variables, ~/.aws, instance roles) or from
storage options (`key`, `secret`, `endpoint_url`, `client_kwargs`, `config_kwargs`, ...).
Uploads are multipart uploads (a single PUT when the body fits one part), aborted on failure;
reads are one ranged GET pinned to the ETag seen by `stat`; deletes take 1,000 keys a request.
S3 can also sign URLs, so clients may upload parts and download ranges straight from the bucket.
"""

import asyncio
import contextlib
import errno
import re
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Any

import s3fs  # noqa: F401 - an uninstalled provider fails here, with the install hint
from aiobotocore.session import AioSession
from botocore import exceptions as boto

from backends import s3_stream
from backends.base import (
    Capabilities,
    Checker,
    Completion,
    MultipartUpload,
    Part,
    PartUrl,
    PresignedDownload,
    Stat,
)
from backends.fsspec_store import DIGEST_METADATA, stored_digests, translated
from backends.objstore import (
    CONNECT_TIMEOUT,
    PARTS_IN_FLIGHT,
    READ_TIMEOUT,
    ObjectStoreBackend,
    PartUpload,
)
from backends.parts import FOLDER
from backends.retry import ATTEMPTS
from backends.s3_sweep import sweep_uploads
from backends.streams import received_pieces

NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NotFound"}
DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}
DENIED |= {"ExpiredToken", "InvalidToken", "AccountProblem", "InvalidClientTokenId"}
REJECTED = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "InvalidArgument"}
REJECTED |= {"InvalidRequest"}
"""A client's multipart upload that the store refuses: the client's mistake (400)."""
BUSY = {"SlowDown", "ServiceUnavailable", "Throttling", "ThrottlingException", "TooManyRequests"}
BUSY |= {"RequestLimitExceeded", "RequestThrottled", "RequestThrottledException"}
"""The store asks for fewer requests, or is down for now (botocore retried them first)."""
UPLOAD_TAG = "artgw-upload"
"""Object metadata naming the gateway part upload that made the object."""
COPIES_IN_FLIGHT = 8
"""Ranged copies at once: they run in the store and cost the gateway no memory."""
STAGED = "v"
"""The tag of a gateway part upload gathered at a hidden key, to be checked before it is placed."""
UNANNOUNCED = (
    "On this store (S3) the parts of an upload cannot be read before it completes: announce the "
    "whole file's digest on mpu/create (Repr-Digest) for it to be checked before the file appears"
)


def _split_upload(upload_id: str, path: str) -> tuple[str, str]:
    tag, dot, store_id = upload_id.partition(".")
    if not dot or not store_id:
        raise FileNotFoundError(errno.ENOENT, "No such multipart upload", path)
    return tag, store_id


def _upload_key(backend: "S3Backend", path: str, tag: str) -> str:
    """Where a gateway part upload is made: the target's key, or a hidden one if staged."""
    return backend.key(f"{FOLDER}/{tag}" if tag.startswith(STAGED) else path)


_STAGED_NAME = re.compile(rf"^{STAGED}([0-9a-f]{{8}})[0-9a-f]{{8}}$")


def _staged_before(key: str, started_before: float) -> bool:
    match = _STAGED_NAME.match(key.rpartition("/")[2])
    return match is not None and int(match.group(1), 16) < started_before


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


class S3Backend(ObjectStoreBackend):
    capabilities = Capabilities(native_multipart=True, presign=True, part_uploads=True)
    delete_batch = 1000
    copy_limit = 1 << 30
    """A staged upload up to this size is placed by one CopyObject (S3 takes up to 5 GiB), a
    larger one by ranged UploadPartCopy calls in parallel: each store call stays short
    (--store-timeout), and no byte of a copy goes through the gateway."""
    copy_part = 512 << 20

    def default_options(self) -> dict[str, Any]:
        config = {
            "connect_timeout": CONNECT_TIMEOUT,
            "read_timeout": READ_TIMEOUT,
            "retries": {"total_max_attempts": ATTEMPTS, "mode": "standard"},  # backends/retry.py
        }
        return {"config_kwargs": {**config, **self.storage_options.get("config_kwargs", {})}}

    async def connect(self) -> None:
        fs: Any = self.fs
        fs.retries = 1  # botocore's own retries are enough
        if fs.session is None:
            fs.session = AioSession(**fs.kwargs)
            await asyncio.to_thread(_preload, fs.session)
        self.client = await fs.set_session()

    async def check_bucket(self) -> None:
        try:
            await self.client.head_bucket(Bucket=self.bucket)
        except boto.ClientError as exc:
            if _code(exc) in NOT_FOUND:
                message = f"The bucket {self.bucket!r} does not exist"
                raise FileNotFoundError(errno.ENOENT, message, self.url) from None
            raise

    async def disconnect(self) -> None:
        client = getattr(self.fs, "_s3", None)
        if client is not None:
            await client.close()
            self.fs._s3 = None  # type: ignore[union-attr]

    async def s3(self, method: str, **kwargs: Any) -> Any:
        return await getattr(self.client, method)(Bucket=self.bucket, **kwargs)

    async def head(self, key: str) -> Stat | None:
        """The object's own HEAD (one request, as s3fs's), which also gives its user metadata
        and checksum."""
        try:
            head = await self.s3("head_object", Key=key, ChecksumMode="ENABLED")
        except boto.ClientError as exc:
            if _code(exc) not in NOT_FOUND:
                raise
            return None
        return _head_stat(head)

    async def is_file(self, key: str) -> bool:
        try:
            await self.s3("head_object", Key=key)
        except boto.ClientError as exc:
            if _code(exc) in NOT_FOUND:
                return False
            raise
        return True

    async def list_keys(self, prefix: str, limit: int) -> list[str]:
        page = await self.s3("list_objects_v2", Prefix=prefix, MaxKeys=limit)
        return [item["Key"] for item in page.get("Contents", [])]

    async def put_small(self, key: str, data: bytes, digests: str | None = None) -> None:
        """With digests, S3 checks the SHA-256 (or MD5) itself too and keeps the SHA-256 as the
        object's full-object checksum; artgw's own field goes into user metadata."""
        extra: dict[str, Any] = {}
        if digests:
            extra["Metadata"] = {DIGEST_METADATA: digests}
            native = _members(digests)
            if "sha-256" in native:
                extra["ChecksumSHA256"] = native["sha-256"]
            elif "md5" in native:
                extra["ContentMD5"] = native["md5"]
        await self.s3("put_object", Key=key, Body=data, **extra)

    async def begin_upload(self, key: str, digests: str | None = None) -> PartUpload:
        extra = {"Metadata": {DIGEST_METADATA: digests}} if digests else {}
        created = await self.s3("create_multipart_upload", Key=key, **extra)
        return S3Upload(self, key, created["UploadId"])

    async def read_stream(
        self, key: str, offset: int, length: int, stat: Stat
    ) -> AsyncGenerator[bytes, None]:
        pinned = {"IfMatch": f'"{stat.etag}"'} if stat.etag else {}
        span = f"bytes={offset}-{offset + length - 1}"
        response = await self.s3("get_object", Key=key, Range=span, **pinned)
        async with response["Body"] as body:
            async for chunk in received_pieces(body.raw_stream.content):
                yield chunk

    async def delete_keys(self, keys: list[str]) -> None:
        objects = [{"Key": key} for key in keys]
        done = await self.s3("delete_objects", Delete={"Objects": objects, "Quiet": True})
        for error in done.get("Errors", []):
            if error.get("Code") in DENIED:
                raise PermissionError(errno.EACCES, "Access denied by the store", "")
            raise OSError(errno.EIO, f"The store could not delete a key ({error.get('Code')})", "")

    # -- presigned transfers (API.md 1.6) ---------------------------------------------------------

    async def sign(self, method: str, ttl: int, **params: Any) -> str:
        params["Bucket"] = self.bucket
        return await self.client.generate_presigned_url(method, Params=params, ExpiresIn=ttl)

    async def create_multipart(self, path: str, num_parts: int, ttl: int) -> MultipartUpload:
        key = self.key(path)
        with translated(path):
            upload_id = (await self.s3("create_multipart_upload", Key=key))["UploadId"]
            urls = [
                PartUrl(n, await self.sign("upload_part", ttl, Key=key, UploadId=upload_id,
                                           PartNumber=n), {})
                for n in range(1, num_parts + 1)
            ]  # fmt: skip
        return MultipartUpload(upload_id, urls)

    async def complete_multipart(
        self, path: str, upload_id: str | None, parts: list[tuple[int, str]]
    ) -> None:
        listed = {"Parts": [{"PartNumber": n, "ETag": etag} for n, etag in parts]}
        with translated(path):
            await self.s3(
                "complete_multipart_upload",
                Key=self.key(path),
                UploadId=upload_id,
                MultipartUpload=listed,
            )

    async def abort_multipart(self, path: str, upload_id: str | None) -> None:
        with translated(path):
            await self.s3("abort_multipart_upload", Key=self.key(path), UploadId=upload_id)

    async def presign_download(self, path: str, ttl: int) -> PresignedDownload:
        info = await self.stat(path)
        if info.is_dir:
            raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
        with translated(path):
            url = await self.sign("get_object", ttl, Key=self.key(path))
        return PresignedDownload(url, {}, info.size)

    # -- part uploads through the gateway (Capabilities.part_uploads) ---------------------------

    async def begin_parts(self, path: str, digests: str | None = None) -> str:
        """An S3 multipart upload, tagged in the object's metadata so a retried complete can tell
        that the object it finds is this upload's. With the whole file's `digests` announced,
        the upload is made at a hidden key instead (`_upload_key`), checked there on complete
        (S3 checks no whole-file SHA-256 or MD5 of a multipart upload itself, and its parts
        cannot be read before), then copied into place inside the store."""
        tag = f"{STAGED}{int(time.time()):08x}{secrets.token_hex(4)}" if digests else ""
        tag = tag or secrets.token_hex(8)
        metadata = {} if digests else {UPLOAD_TAG: tag}
        with translated(path):
            created = await self.s3(
                "create_multipart_upload", Key=_upload_key(self, path, tag), Metadata=metadata
            )
        return f"{tag}.{created['UploadId']}"

    async def write_part(self, path: str, part: Part, body: AsyncIterable[bytes]) -> str:
        """One UploadPart, streamed as it arrives when the client announced its length
        (backends/s3_stream.py); a part of unknown length is gathered in memory first (at most
        --max-part-size), as S3 needs the length before the body."""
        tag, store_id = _split_upload(part.upload_id, path)
        key = _upload_key(self, path, tag)
        if part.size is not None:
            with translated(path):
                return await s3_stream.upload_part(
                    self.client, self.bucket, key, store_id, part.number, body, part.size
                )
        data = b"".join([chunk async for chunk in body])
        with translated(path):
            done = await self.s3(
                "upload_part",
                Key=key,
                UploadId=store_id,
                PartNumber=part.number,
                Body=data,
            )
        return str(done["ETag"]).strip('"')

    async def finish_parts(self, path: str, upload: Completion) -> None:
        tag, store_id = _split_upload(upload.upload_id, path)
        staged = tag.startswith(STAGED)
        if upload.check is not None and not staged:
            raise OSError(errno.EINVAL, UNANNOUNCED, path)
        listed = {"Parts": [{"PartNumber": n, "ETag": f'"{etag}"'} for n, etag in upload.parts]}
        key, upload_key = self.key(path), _upload_key(self, path, tag)
        try:
            with translated(path):
                await self.check_target(path)
                await self.s3(
                    "complete_multipart_upload",
                    Key=upload_key,
                    UploadId=store_id,
                    MultipartUpload=listed,
                )
        except OSError as exc:  # some stores (moto) answer 500 for an upload that is gone
            if not isinstance(exc, FileNotFoundError) and await self._upload_exists(
                upload_key, store_id
            ):
                raise
            if await self._made_by(key, tag):
                return  # completed before: a retried complete
            raise FileNotFoundError(errno.ENOENT, "No such multipart upload", path) from None
        if staged:
            try:
                await self._check_and_place(path, upload_key, tag, upload.digests, upload.check)
            finally:
                with contextlib.suppress(Exception), translated(path):
                    await self.s3("delete_object", Key=upload_key)

    async def _check_and_place(
        self, path: str, staged: str, tag: str, digests: str | None, check: Checker | None
    ) -> None:
        """Read the completed hidden object through `check`, then copy it to `path` with its
        digests (a copy inside the store: no byte through the gateway)."""
        with translated(path):
            info = _head_stat(await self.s3("head_object", Key=staged))
            if check is not None:
                read = self.read_stream(staged, 0, info.size, info) if info.size else _nothing()
                async for _ in check(read):
                    pass
            metadata = {UPLOAD_TAG: tag, **({DIGEST_METADATA: digests} if digests else {})}
            await self.check_target(path)
            await self.copy_within(staged, self.key(path), info.size, metadata)

    async def copy_within(self, source: str, key: str, size: int, metadata: dict[str, str]) -> None:
        """Copy `source` to `key` inside the bucket with new metadata: one CopyObject up to
        S3's 5 GiB, else a multipart upload of ranged UploadPartCopy calls."""
        origin = {"Bucket": self.bucket, "Key": source}
        if size <= self.copy_limit:  # S3 computes the copy's full-object SHA-256 too
            await self.s3(
                "copy_object",
                Key=key,
                CopySource=origin,
                MetadataDirective="REPLACE",
                Metadata=metadata,
                ChecksumAlgorithm="SHA256",
            )
            return
        upload = await self.s3("create_multipart_upload", Key=key, Metadata=metadata)
        upload_id = upload["UploadId"]
        step = max(self.copy_part, -(-size // 10_000))
        gate = asyncio.Semaphore(COPIES_IN_FLIGHT)

        async def copy_part(number: int, start: int) -> dict[str, Any]:
            span = f"bytes={start}-{min(start + step, size) - 1}"
            async with gate:
                done = await self.s3(
                    "upload_part_copy",
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=origin,
                    CopySourceRange=span,
                )
            return {"PartNumber": number, "ETag": done["CopyPartResult"]["ETag"]}

        try:
            copied = await asyncio.gather(
                *(copy_part(i + 1, start) for i, start in enumerate(range(0, size, step)))
            )
            await self.s3(
                "complete_multipart_upload",
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": list(copied)},
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await self.s3("abort_multipart_upload", Key=key, UploadId=upload_id)
            raise

    async def _upload_exists(self, key: str, store_id: str) -> bool:
        try:
            await self.s3("list_parts", Key=key, UploadId=store_id, MaxParts=1)
        except boto.ClientError as exc:
            if _code(exc) in NOT_FOUND:
                return False
            raise
        return True

    async def _made_by(self, key: str, tag: str) -> bool:
        try:
            head = await self.s3("head_object", Key=key)
        except boto.ClientError:
            return False
        return head.get("Metadata", {}).get(UPLOAD_TAG) == tag

    async def discard_parts(self, path: str, upload_id: str) -> None:
        tag, store_id = _split_upload(upload_id, path)
        with contextlib.suppress(FileNotFoundError), translated(path):
            await self.s3(
                "abort_multipart_upload", Key=_upload_key(self, path, tag), UploadId=store_id
            )

    async def sweep_parts(self, started_before: float) -> int:
        """Abort the prefix's multipart uploads begun before this time (backends/s3_sweep.py:
        by the store's date and by the sweep's own ledger, never by the store's word alone),
        and remove the hidden objects of staged uploads that never got placed (a crash between
        their complete and their copy), dated by the start time in their own names."""
        removed = await sweep_uploads(self, started_before)
        with translated(""):
            keys = await self.list_keys(self.key(f"{FOLDER}/{STAGED}"), 1000)
            stale = [key for key in keys if _staged_before(key, started_before)]
            if stale:
                await self.delete_keys(stale)
        return removed + len(stale)


class S3Upload(PartUpload):
    concurrency = PARTS_IN_FLIGHT

    def __init__(self, backend: S3Backend, key: str, upload_id: str) -> None:
        self.backend = backend
        self.key = key
        self.upload_id = upload_id
        self.sent = 0
        self.parts: list[dict[str, Any]] = []

    async def part(self, data: bytes, last: bool) -> None:
        self.sent += 1
        number = self.sent
        done = await self.backend.s3(
            "upload_part", Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        self.parts.append({"PartNumber": number, "ETag": done["ETag"]})

    async def commit(self) -> None:
        parts = sorted(self.parts, key=lambda part: part["PartNumber"])
        await self.backend.s3(
            "complete_multipart_upload",
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": parts},
        )

    async def abort(self) -> None:
        await self.backend.s3("abort_multipart_upload", Key=self.key, UploadId=self.upload_id)


def _head_stat(head: dict[str, Any]) -> Stat:
    digests = stored_digests({"Metadata": head.get("Metadata") or {}})
    checksum = head.get("ChecksumSHA256", "")
    if not digests and checksum and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
        digests = f"sha-256=:{checksum}:"  # a multipart upload's composite one is not the file's
    return Stat(
        size=int(head["ContentLength"]),
        is_dir=False,
        mtime=head["LastModified"].timestamp() if head.get("LastModified") else None,
        etag=str(head.get("ETag", "")).strip('"') or None,
        digests=digests,
    )


def _members(digests: str) -> dict[str, str]:
    """`sha-256=:abc=:, md5=:def=:` -> {"sha-256": "abc=", "md5": "def="}."""
    found = {}
    for member in digests.split(","):
        name, _, value = member.strip().partition("=")
        found[name] = value.strip(":")
    return found


def _preload(session: AioSession) -> None:
    """What botocore reads from disk when a client is made (config files, JSON models), in
    a thread, so creating the client on the event loop finds it all cached."""
    session.get_scoped_config()
    loader = session.get_component("data_loader")
    for name in ("service-2", "endpoint-rule-set-1"):  # called as botocore does: cached by kwargs
        loader.load_service_model("s3", name, api_version=None)
    loader.load_data("partitions")
    loader.load_data("endpoints")
    loader.load_data("sdk-default-configuration")


def from_url(url: str, scheme: str, storage_options: dict[str, Any]) -> S3Backend:
    return S3Backend(url, "s3", url.split("://", 1)[1], storage_options)


def _code(exc: boto.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(exc: BaseException, path: str) -> BaseException | None:
    """botocore's exceptions -> built-in file errors; None for anything else."""
    if isinstance(exc, boto.ClientError):
        code = _code(exc)
        if code in NOT_FOUND:
            return FileNotFoundError(errno.ENOENT, "No such object in the store", path)
        if code in DENIED:
            return PermissionError(errno.EACCES, f"The store refused access ({code})", path)
        if code in REJECTED:
            return OSError(errno.EINVAL, f"The store rejected the request ({code})", path)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if code in BUSY or status in (429, 503):
            return OSError(errno.EBUSY, f"The store is busy ({code})", path)
        if status >= 500 or code == "InternalError":
            return OSError(errno.EREMOTEIO, f"The store failed ({code})", path)
        return OSError(errno.EIO, f"The store answered with an error ({code})", path)
    if isinstance(exc, boto.ConnectTimeoutError | boto.ReadTimeoutError):
        return TimeoutError(errno.ETIMEDOUT, "The store did not answer in time", path)
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return PermissionError(errno.EACCES, "No usable credentials for the store", path)
    if isinstance(exc, boto.EndpointConnectionError | boto.ConnectionError):
        return OSError(errno.EHOSTUNREACH, "The store cannot be reached", path)
    if isinstance(exc, boto.BotoCoreError):
        return OSError(errno.EIO, f"Store client error: {type(exc).__name__}", path)
    return None


translated.translators.append(translate)
