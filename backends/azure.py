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
import posixpath
import re
import secrets
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from typing import Any

import adlfs  # noqa: F401 - an uninstalled provider fails here, with the install hint
from azure.core import MatchConditions
from azure.core import exceptions as az
from azure.storage.blob import BlobBlock, ContentSettings
from azure.storage.blob.aio import (
    BlobClient,
    BlobServiceClient,
    ContainerClient,
    ExponentialRetry,
)

from backends.base import Capabilities, Completion, Part, Stat
from backends.fsspec_store import DIGEST_METADATA, translated
from backends.objstore import (
    CONNECT_TIMEOUT,
    PARTS_IN_FLIGHT,
    READ_TIMEOUT,
    ObjectStoreBackend,
    PartUpload,
)
from backends.parts import FOLDER
from backends.retry import ATTEMPTS, pause
from backends.streams import exact_blocks

GET_SIZE = 4 << 20
"""The SDK holds one such range in memory at a time while a download streams."""
SINGLE_PUT_LIMIT = 1 << 20
"""Above this a Put Blob would hand aiohttp one large bytes body (the SDK reads the stream into
memory first, and aiohttp warns that this can stall the loop); one staged block does not."""

BLOCK_SIZE = 16 << 20
"""Blocks a gateway part is staged in: memory holds one; Azure takes 50,000 per blob."""
_TAG = re.compile(r"^v?[0-9a-f]{16}$")
_SENT = re.compile(r"^([0-9a-f]{8})-(\d{1,6})$")
STAGED = "v"
"""The id of a gateway part upload staged on a hidden blob, to be checked before it is placed."""
UNANNOUNCED = (
    "On this store (Azure) staged blocks cannot be read before they are committed: announce the "
    "whole file's digest on mpu/create (Repr-Digest) for it to be checked before the file appears"
)
COPY_POLL = 0.2


def _started(upload_id: str) -> int:
    return int(upload_id.removeprefix(STAGED)[:8], 16)


def _staged_at(upload_id: str) -> str:
    return f"{FOLDER}/{upload_id}"


def _aborted(upload_id: str) -> str:
    return f"{FOLDER}/{upload_id}.aborted"


def _check_tag(upload_id: str, path: str) -> None:
    if not _TAG.match(upload_id):
        raise FileNotFoundError(errno.ENOENT, "No such multipart upload", path)


def _block_id(number: int, sending: str, index: int) -> str:
    """23 characters, as `AzureUpload`'s ids (Azure wants one length for all of a blob's ids)
    and never equal to one of them (no '-' at 16). `sending` is random per part sent, so no
    other upload of the blob can have these ids."""
    return base64.b64encode(f"{sending}{number:05d}{index:06d}mpu0".encode()).decode()


class ShortRetry(ExponentialRetry):
    """The storage SDK's retries, with backends/retry.py's pauses (its own: 15, 18, 24 s)."""

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return pause(settings["count"])


class AzureBackend(ObjectStoreBackend):
    capabilities = Capabilities(part_uploads=True)
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
            retry_policy=ShortRetry(retry_total=ATTEMPTS - 1),
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

    async def put_small(self, key: str, data: bytes, digests: str | None = None) -> None:
        if len(data) > SINGLE_PUT_LIMIT:
            upload = AzureUpload(self.container, key, digests)
            await upload.part(data, last=True)
            await upload.commit()
            return
        blob = self.container.get_blob_client(key)
        await blob.upload_blob(
            io.BytesIO(data), length=len(data), overwrite=True, **_properties(digests)
        )

    async def begin_upload(self, key: str, digests: str | None = None) -> PartUpload:
        return AzureUpload(self.container, key, digests)

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

    # -- part uploads through the gateway (Capabilities.part_uploads) ---------------------------

    async def begin_parts(self, path: str, digests: str | None = None) -> str:
        """Nothing to create: the parts are blocks staged on the target blob itself. The id is
        the start time and a random tag (16 hex digits). With the whole file's `digests`
        announced, the blocks go to a hidden blob instead (id `v...`), committed and checked
        there on complete, then copied into place inside the store."""
        return f"{STAGED if digests else ''}{int(time.time()):08x}{secrets.token_hex(4)}"

    def _parts_blob(self, path: str, upload_id: str) -> BlobClient:
        staged = upload_id.startswith(STAGED)
        return self.container.get_blob_client(self.key(_staged_at(upload_id) if staged else path))

    async def write_part(self, path: str, part: Part, body: AsyncIterable[bytes]) -> str:
        """Stage the part as blocks of at most BLOCK_SIZE (memory stays at one block). The ETag
        names this sending of the part and its block count, so `finish_parts` knows the ids."""
        _check_tag(part.upload_id, path)
        sending = secrets.token_hex(4)
        blob = self._parts_blob(path, part.upload_id)
        count = 0
        with translated(path):
            async for block in exact_blocks(body, lambda index: BLOCK_SIZE):
                if not block:
                    break  # an empty part: no block
                block_id = _block_id(part.number, sending, count)
                await blob.stage_block(block_id, io.BytesIO(block), length=len(block))
                count += 1
        return f"{sending}-{count}"

    async def finish_parts(self, path: str, upload: Completion) -> None:
        """Commit the block list: atomic; committing the same list again is a no-op. Blocks
        that are not staged (a wrong ETag, or another upload's commit discarded them) make
        Azure refuse the list (InvalidBlockList: 400), and the blob stays as it was."""
        upload_id = upload.upload_id
        _check_tag(upload_id, path)
        staged = upload_id.startswith(STAGED)
        if upload.check is not None and not staged:
            raise OSError(errno.EINVAL, UNANNOUNCED, path)
        blocks = []
        for number, etag in upload.parts:
            match = _SENT.match(etag)
            if not match:
                raise OSError(errno.EINVAL, f"Part {number} has an ETag artgw never gave", path)
            sending, count = match.group(1), int(match.group(2))
            blocks += [BlobBlock(_block_id(number, sending, i)) for i in range(count)]
        with translated(path):
            if await self.is_file(self.key(_aborted(upload_id))):
                raise FileNotFoundError(errno.ENOENT, "The multipart upload was aborted", path)
            await self.check_target(path)
            if staged:
                await self._finish_staged(path, upload, blocks)
                return
            blob = self.container.get_blob_client(self.key(path))
            await blob.commit_block_list(blocks, metadata={"artgw_upload": upload_id})

    async def _finish_staged(self, path: str, upload: Completion, blocks: list[BlobBlock]) -> None:
        """Commit the hidden blob, read it through the check, copy it to `path` (inside the
        store, with the digests) and remove it; a retried complete finds the copy done."""
        upload_id, check = upload.upload_id, upload.check
        staging = self._parts_blob(path, upload_id)
        target = self.container.get_blob_client(self.key(path))
        if not await staging.exists() and await self._copied(target, upload_id):
            return
        properties = _properties(upload.digests)
        await staging.commit_block_list(blocks, **properties)
        try:
            info = await self.stat(_staged_at(upload_id))
            if check is not None:
                key = self.key(_staged_at(upload_id))
                read = self.read_stream(key, 0, info.size, info) if info.size else _nothing()
                async for _ in check(read):
                    pass
            await self.check_target(path)
            metadata = {**properties.get("metadata", {}), "artgw_upload": upload_id}
            copy = await target.start_copy_from_url(staging.url, metadata=metadata)
            status = copy.get("copy_status")
            while status == "pending":
                await asyncio.sleep(COPY_POLL)
                status = (await target.get_blob_properties()).copy.status
            if status != "success":
                raise OSError(errno.EIO, f"The store's copy into place ended {status}", path)
        finally:
            with contextlib.suppress(Exception):
                await staging.delete_blob()

    async def _copied(self, target: BlobClient, upload_id: str) -> bool:
        try:
            properties = await target.get_blob_properties()
        except az.ResourceNotFoundError:
            return False
        return bool(properties.metadata.get("artgw_upload") == upload_id)

    async def discard_parts(self, path: str, upload_id: str) -> None:
        """Record the abort (so the upload cannot be completed), and drop the staged blocks if
        the blob has no committed content: Azure has no call that drops staged blocks of a blob
        that exists; they stay invisible until its next commit, or at most 7 days."""
        _check_tag(upload_id, path)
        with translated(path):
            await self.put_small(self.key(_aborted(upload_id)), b"")
            blob = self._parts_blob(path, upload_id)
            if not await blob.exists():
                with contextlib.suppress(az.ResourceNotFoundError):
                    await blob.delete_blob()

    async def sweep_parts(self, started_before: float) -> int:
        """Remove the abort records of uploads begun before this time (staged blocks expire
        by themselves, see `discard_parts`)."""
        removed = 0
        with translated(""):
            for key in await self.list_keys(self.key(FOLDER) + "/", 5000):
                tag = posixpath.basename(key).removesuffix(".aborted")
                if _TAG.match(tag) and _started(tag) < started_before:
                    await self._delete_one(key)
                    removed += 1
        return removed


class AzureUpload(PartUpload):
    """Staged blocks with ids unique to this upload, so racing writers never mix blocks."""

    concurrency = PARTS_IN_FLIGHT

    def __init__(self, container: ContainerClient, key: str, digests: str | None = None) -> None:
        self.blob = container.get_blob_client(key)
        self.tag = secrets.token_hex(8)
        self.blocks: list[BlobBlock] = []
        self.digests = digests

    async def part(self, data: bytes, last: bool) -> None:
        block_id = base64.b64encode(f"{self.tag}-{len(self.blocks):06d}".encode()).decode()
        self.blocks.append(BlobBlock(block_id))  # the list's order is the blob's order
        await self.blob.stage_block(block_id, io.BytesIO(data), length=len(data))

    async def commit(self) -> None:
        await self.blob.commit_block_list(self.blocks, **_properties(self.digests))

    async def abort(self) -> None:
        """Nothing to do: uncommitted blocks are invisible and expire within 7 days."""


def _properties(digests: str | None) -> dict[str, Any]:
    """The blob's metadata (artgw's digest field) and its Content-MD5 property, if an MD5."""
    if not digests:
        return {}
    properties: dict[str, Any] = {"metadata": {DIGEST_METADATA.replace("-", "_"): digests}}
    for member in digests.split(","):
        name, _, value = member.strip().partition("=")
        if name == "md5":
            md5 = bytearray(base64.b64decode(value.strip(":")))
            properties["content_settings"] = ContentSettings(content_md5=md5)
    return properties


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


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
        code = getattr(exc, "error_code", None)
        if code == "InvalidBlockList":
            return OSError(errno.EINVAL, "Some listed parts are not staged in the store", path)
        if status in (429, 503) or code == "ServerBusy":
            return OSError(errno.EBUSY, f"The store is busy ({code or status})", path)
        if status >= 500:
            return OSError(errno.EREMOTEIO, f"The store failed ({code or status})", path)
        return OSError(errno.EIO, f"The store answered with an error ({status})", path)
    if isinstance(exc, az.ServiceRequestError | az.ServiceResponseError):
        if _timed_out(exc):
            return TimeoutError(errno.ETIMEDOUT, "The store did not answer in time", path)
        return OSError(errno.EHOSTUNREACH, "The store cannot be reached", path)
    if isinstance(exc, az.AzureError):
        return OSError(errno.EIO, f"Store client error: {type(exc).__name__}", path)
    return None


translated.translators.append(translate)
