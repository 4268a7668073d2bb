"""Amazon S3 and S3-compatible stores (s3://bucket/prefix), over s3fs and its aiobotocore client.

Credentials come from botocore's usual chain (AWS_* variables, ~/.aws, instance roles) or from
storage options (`key`, `secret`, `endpoint_url`, `client_kwargs`, `config_kwargs`, ...).
Uploads are multipart uploads (a single PUT when the body fits one part), aborted on failure;
reads are one ranged GET pinned to the ETag seen by `stat`; deletes take 1,000 keys a request.
S3 can also sign URLs, so clients may upload parts and download ranges straight from the bucket.
"""

import asyncio
import errno
from collections.abc import AsyncGenerator
from typing import Any

import s3fs  # noqa: F401 - an uninstalled provider fails here, with the install hint
from aiobotocore.session import AioSession
from botocore import exceptions as boto

from backends.base import Capabilities, MultipartUpload, PartUrl, PresignedDownload, Stat
from backends.fsspec_store import translated
from backends.objstore import (
    CONNECT_TIMEOUT,
    PARTS_IN_FLIGHT,
    READ_TIMEOUT,
    ObjectStoreBackend,
    PartUpload,
)
from backends.streams import received_pieces

NOT_FOUND = {"404", "NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NotFound"}
DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled"}
DENIED |= {"ExpiredToken", "InvalidToken", "AccountProblem", "InvalidClientTokenId"}
REJECTED = {"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "InvalidArgument"}
REJECTED |= {"InvalidRequest"}
"""A client's multipart upload that the store refuses: the client's mistake (400)."""


class S3Backend(ObjectStoreBackend):
    capabilities = Capabilities(native_multipart=True, presign=True)
    delete_batch = 1000

    def default_options(self) -> dict[str, Any]:
        config = {
            "connect_timeout": CONNECT_TIMEOUT,
            "read_timeout": READ_TIMEOUT,
            "retries": {"max_attempts": 3, "mode": "standard"},
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

    async def put_small(self, key: str, data: bytes) -> None:
        await self.s3("put_object", Key=key, Body=data)

    async def begin_upload(self, key: str) -> PartUpload:
        created = await self.s3("create_multipart_upload", Key=key)
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
