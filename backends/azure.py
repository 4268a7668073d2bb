"""Azure Blob Storage (az://container/prefix, abfs://, abfss://), over adlfs and azure-storage-blob.

Credentials: AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME with
AZURE_STORAGE_ACCOUNT_KEY / AZURE_STORAGE_SAS_TOKEN / a service principal, or
DefaultAzureCredential; the same as storage options (`connection_string`, `account_name`,
`account_key`, ...).
Uploads stage 8 MiB blocks and commit the block list at the end (one Put Blob when the body fits
one block); a failed upload commits nothing, and Azure discards its uncommitted blocks by itself.
Reads are one download pinned to the ETag seen by `stat`, fetched in 4 MiB ranges; deletes page
through the listing and delete 32 blobs at a time.
"""

import asyncio
import base64
import contextlib
import errno
import io
import secrets
import weakref
from collections.abc import AsyncGenerator
from typing import Any

import adlfs  # noqa: F401 - an uninstalled provider fails here, with the install hint
from azure.core import MatchConditions
from azure.core import exceptions as az
from azure.storage.blob import BlobBlock
from azure.storage.blob.aio import BlobServiceClient, ContainerClient

from backends.base import Stat
from backends.fsspec_store import translated
from backends.objstore import (
    CONNECT_TIMEOUT,
    PARTS_IN_FLIGHT,
    READ_TIMEOUT,
    ObjectStoreBackend,
    PartUpload,
)

GET_SIZE = 4 << 20
"""The SDK holds one such range in memory at a time while a download streams."""
SINGLE_PUT_LIMIT = 1 << 20
"""Above this a Put Blob would hand aiohttp one large bytes body (the SDK reads the stream into
memory first, and aiohttp warns that this can stall the loop); one staged block does not."""


class AzureBackend(ObjectStoreBackend):
    container: ContainerClient
    delete_batch = 100

    def default_options(self) -> dict[str, Any]:
        return {"connection_timeout": CONNECT_TIMEOUT, "read_timeout": READ_TIMEOUT}

    async def connect(self) -> None:
        """Swap adlfs's client for one with timeouts, bounded reads and few retries."""
        fs: Any = self.fs
        given = fs.service_client
        fs.service_client = BlobServiceClient(
            account_url=given.url,
            credential=given.credential,
            retry_total=3,
            max_single_get_size=GET_SIZE,
            max_chunk_get_size=GET_SIZE,
            **fs._timeout_kwargs,
        )
        await given.close()
        self.container = fs.service_client.get_container_client(self.bucket)

    async def check_bucket(self) -> None:
        try:
            await self.container.get_container_properties(retry_total=0)
        except az.ResourceNotFoundError:
            message = f"The container {self.bucket!r} does not exist"
            raise FileNotFoundError(errno.ENOENT, message, self.url) from None

    async def disconnect(self) -> None:
        fs: Any = self.fs
        await fs.service_client.close()
        credential = getattr(fs, "credential", None)
        if credential is not None and hasattr(credential, "close"):
            await credential.close()
        _detach_finalizers(fs)

    async def is_file(self, key: str) -> bool:
        return bool(await self.container.get_blob_client(key).exists())

    async def list_keys(self, prefix: str, limit: int) -> list[str]:
        keys = []
        async for blob in self.container.list_blobs(
            name_starts_with=prefix, results_per_page=limit
        ):
            keys.append(blob.name)
            if len(keys) == limit:
                break
        return keys

    async def put_small(self, key: str, data: bytes) -> None:
        if len(data) > SINGLE_PUT_LIMIT:
            upload = AzureUpload(self.container, key)
            await upload.part(data, last=True)
            await upload.commit()
            return
        blob = self.container.get_blob_client(key)
        await blob.upload_blob(io.BytesIO(data), length=len(data), overwrite=True)

    async def begin_upload(self, key: str) -> PartUpload:
        return AzureUpload(self.container, key)

    async def read_stream(
        self, key: str, offset: int, length: int, stat: Stat
    ) -> AsyncGenerator[bytes, None]:
        pinned: dict[str, Any] = {}
        if stat.etag:
            pinned = {"etag": f'"{stat.etag}"', "match_condition": MatchConditions.IfNotModified}
        blob = self.container.get_blob_client(key)
        download = await blob.download_blob(offset, length, max_concurrency=1, **pinned)
        async for chunk in download.chunks():
            yield chunk

    async def delete_keys(self, keys: list[str]) -> None:
        """Concurrent single deletes: Azurite rejects the SDK's blob batches (InvalidInput)."""
        await asyncio.gather(*(self._delete_one(key) for key in keys))

    async def _delete_one(self, key: str) -> None:
        with contextlib.suppress(az.ResourceNotFoundError):
            await self.container.delete_blob(key)


class AzureUpload(PartUpload):
    """Staged blocks with ids unique to this upload, so racing writers never mix blocks."""

    concurrency = PARTS_IN_FLIGHT

    def __init__(self, container: ContainerClient, key: str) -> None:
        self.blob = container.get_blob_client(key)
        self.tag = secrets.token_hex(8)
        self.blocks: list[BlobBlock] = []

    async def part(self, data: bytes, last: bool) -> None:
        block_id = base64.b64encode(f"{self.tag}-{len(self.blocks):06d}".encode()).decode()
        self.blocks.append(BlobBlock(block_id))  # the list's order is the blob's order
        await self.blob.stage_block(block_id, io.BytesIO(data), length=len(data))

    async def commit(self) -> None:
        await self.blob.commit_block_list(self.blocks)

    async def abort(self) -> None:
        """Nothing to do: uncommitted blocks are invisible and expire within 7 days."""


def from_url(url: str, scheme: str, storage_options: dict[str, Any]) -> AzureBackend:
    """az://container/prefix, or abfs[s]://container@account.dfs.core.windows.net/prefix."""
    head, _, prefix = url.split("://", 1)[1].partition("/")
    container, _, host = head.partition("@")
    if host:
        storage_options.setdefault("account_name", host.split(".", 1)[0])
    return AzureBackend(url, "abfs", f"{container}/{prefix}", storage_options)


def _detach_finalizers(fs: object) -> None:
    """adlfs's finalizers hold the instance and would close it again on a dead loop at exit."""
    for finalizer in list(getattr(weakref.finalize, "_registry", {})):
        info = finalizer.peek()
        if info is not None and info[0] is fs:
            finalizer.detach()


def _timed_out(exc: BaseException) -> bool:
    inner = getattr(exc, "inner_exception", None) or exc.__cause__
    return isinstance(inner, TimeoutError) or "timeout" in type(inner).__name__.lower()


def translate(exc: BaseException, path: str) -> BaseException | None:
    """azure-core's exceptions -> built-in file errors; None for anything else."""
    if isinstance(exc, az.ResourceNotFoundError):
        return FileNotFoundError(errno.ENOENT, "No such blob or container in the store", path)
    if isinstance(exc, az.ClientAuthenticationError):
        return PermissionError(errno.EACCES, "The store refused the credentials", path)
    if isinstance(exc, az.ServiceRequestTimeoutError | az.ServiceResponseTimeoutError):
        return TimeoutError(errno.ETIMEDOUT, "The store did not answer in time", path)
    if isinstance(exc, az.HttpResponseError):
        status = exc.status_code or 0
        if status == 403:
            return PermissionError(errno.EACCES, "The store refused access", path)
        return OSError(errno.EIO, f"The store answered with an error ({status})", path)
    if isinstance(exc, az.ServiceRequestError | az.ServiceResponseError):
        if _timed_out(exc):
            return TimeoutError(errno.ETIMEDOUT, "The store did not answer in time", path)
        return OSError(errno.EHOSTUNREACH, "The store cannot be reached", path)
    if isinstance(exc, az.AzureError):
        return OSError(errno.EIO, f"Store client error: {type(exc).__name__}", path)
    return None


translated.translators.append(translate)
