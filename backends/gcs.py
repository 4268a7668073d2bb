"""Google Cloud Storage (gs://bucket/prefix, gcs://), over gcsfs and its aiohttp session.

Credentials: google-auth's defaults (GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata server)
or storage options (`token` = a service-account JSON file, "anon", "google_default", ...;
`project`, `endpoint_url`). STORAGE_EMULATOR_HOST points gcsfs at an emulator.
Uploads are resumable uploads in 8 MiB chunks (one media upload when the body fits one chunk);
the object exists only after the last chunk, and a failed upload's session is cancelled.
Reads are one streamed ranged GET; deletes list a page of keys and delete them concurrently.
"""

import asyncio
import contextlib
import errno
import io
import json
import posixpath
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import gcsfs  # an uninstalled provider fails here, with the install hint
from gcsfs.core import initiate_upload, quote
from gcsfs.retry import HttpError, is_retriable, validate_response
from google.auth import exceptions as google_auth
from requests import exceptions as requests_errors

from backends.base import Capabilities, Completion, Stat
from backends.fsspec_store import DIGEST_METADATA, configuring, translated
from backends.objstore import CONNECT_TIMEOUT, READ_CHUNK, READ_TIMEOUT, ObjectStoreBackend
from backends.objstore import PartUpload as PartUploadBase
from backends.parts import StagedParts
from backends.retry import retrying

COMPOSE_LIMIT = 32
"""Sources one GCS compose request takes."""


class RetryingGcs(gcsfs.GCSFileSystem):
    """gcsfs with backends/retry.py's policy (its own tries a request 6 times over ~30 s)."""

    async def _request(self, *args: Any, **kwargs: Any) -> Any:
        once = gcsfs.GCSFileSystem._request.__wrapped__
        return await retrying(lambda: once(self, *args, **kwargs), is_retriable)


class GcsBackend(ObjectStoreBackend, StagedParts):
    """Part uploads are staged part objects (`StagedParts`), joined in the store by compose."""

    capabilities = Capabilities(part_uploads=True)
    delete_batch = 64

    def default_options(self) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT
        )
        return {"requests_timeout": timeout}

    async def make_filesystem(self, options: dict[str, Any]) -> None:
        """In a thread: gcsfs looks for client-certificate settings on disk as it starts."""
        await asyncio.to_thread(self._create, options)

    def _create(self, options: dict[str, Any]) -> None:
        """gcsfs, with backends/retry.py's retries."""
        with configuring(self.url):
            self.files.fs = RetryingGcs(**options)

    async def connect(self) -> None:
        await self.fs._set_session()  # type: ignore[union-attr]

    async def check_bucket(self) -> None:
        try:
            await self.request("GET", f"b/{quote(self.bucket)}")
        except FileNotFoundError:
            message = f"The bucket {self.bucket!r} does not exist"
            raise FileNotFoundError(errno.ENOENT, message, self.url) from None

    async def disconnect(self) -> None:
        session = getattr(self.fs, "_session", None)
        if session is not None and not session.closed:
            await session.close()

    def api(self, path: str) -> str:
        fs: Any = self.fs
        return path if path.startswith("http") else f"{fs.base}{path}"

    @asynccontextmanager
    async def response(
        self, method: str, path: str, **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request, no retries; HTTP errors become gcsfs's exceptions."""
        fs: Any = self.fs
        headers = fs._get_headers(kwargs.pop("headers", None))
        url = self.api(path)
        async with fs.session.request(
            method, url, headers=headers, timeout=fs.requests_timeout, **kwargs
        ) as answer:
            if answer.status >= 400:
                validate_response(answer.status, await answer.read(), url)
            yield answer

    async def request(self, method: str, path: str, **kwargs: Any) -> bytes:
        """One request whose whole answer is read, tried again on a transient failure (a bytes
        `data` is sent afresh each time)."""

        async def once() -> bytes:
            data = kwargs.get("data")
            sent = {**kwargs, "data": io.BytesIO(data)} if isinstance(data, bytes) else kwargs
            async with self.response(method, path, **sent) as answer:
                return await answer.read()

        return await retrying(once, is_retriable)

    async def is_file(self, key: str) -> bool:
        try:
            await self.fs._call("GET", "b/{}/o/{}", self.bucket, key)  # type: ignore[union-attr]
        except FileNotFoundError:
            return False
        return True

    async def list_keys(self, prefix: str, limit: int) -> list[str]:
        page = await self.fs._call(  # type: ignore[union-attr]
            "GET", "b/{}/o", self.bucket, prefix=prefix, maxResults=limit, json_out=True
        )
        return [item["name"] for item in page.get("items", [])][:limit]

    async def delete_keys(self, keys: list[str]) -> None:
        await asyncio.gather(*(self._delete_one(key) for key in keys))

    async def _delete_one(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await self.fs._call("DELETE", "b/{}/o/{}", self.bucket, key)  # type: ignore[union-attr]

    async def put_small(self, key: str, data: bytes, digests: str | None = None) -> None:
        """A media upload carries no metadata: with digests, a one-chunk resumable upload."""
        if digests:
            upload = await self.begin_upload(key, digests)
            await upload.part(data, last=True)
            return
        fs: Any = self.fs
        location = f"{fs._location}/upload/storage/v1/b/{quote(self.bucket)}/o"
        params = {"uploadType": "media", "name": key}
        headers = {"Content-Type": "application/octet-stream"}
        await self.request("POST", location, params=params, headers=headers, data=data)

    async def begin_upload(self, key: str, digests: str | None = None) -> PartUploadBase:
        metadata = {DIGEST_METADATA: digests} if digests else None
        location = await initiate_upload(self.fs, self.bucket, key, metadata=metadata)
        return GcsUpload(self, location)

    async def read_stream(
        self, key: str, offset: int, length: int, stat: Stat
    ) -> AsyncGenerator[bytes, None]:
        url = self.fs.url(f"{self.bucket}/{key}")  # type: ignore[union-attr]
        span = {"Range": f"bytes={offset}-{offset + length - 1}"}
        async with self.response("GET", url, headers=span) as answer:
            async for chunk in answer.content.iter_chunked(READ_CHUNK):
                yield chunk

    # -- part uploads: staged part objects (StagedParts), joined by compose ----------------------

    async def join_files(self, path: str, sources: list[str], upload: Completion) -> None:
        """Compose the part objects into the target inside the store: no byte goes through the
        gateway (but once, in order, for the check). A compose takes at most 32 sources, so
        larger uploads compose groups first (into objects beside the parts, removed with them)."""
        if upload.check is not None:
            await self.check_files(sources, upload.check)
        with translated(path):
            await self.check_target(path)
            keys = [self.key(source) for source in sources]
            level = 0
            while len(keys) > COMPOSE_LIMIT:
                folder = posixpath.dirname(keys[0])
                groups = [keys[i : i + COMPOSE_LIMIT] for i in range(0, len(keys), COMPOSE_LIMIT)]
                names = [f"{folder}/c{level}-{i:05d}" for i in range(len(groups))]
                await asyncio.gather(
                    *(self.compose(g, n) for g, n in zip(groups, names, strict=True))
                )
                keys, level = names, level + 1
            await self.compose(keys, self.key(path), upload.digests)

    async def compose(
        self, sources: list[str], destination: str, digests: str | None = None
    ) -> None:
        target: dict[str, Any] = {"contentType": "application/octet-stream"}
        if digests:
            target["metadata"] = {DIGEST_METADATA: digests}
        body = {"sourceObjects": [{"name": key} for key in sources], "destination": target}
        url = f"b/{quote(self.bucket)}/o/{quote(destination)}/compose"
        await self.request("POST", url, json=body)


class GcsUpload(PartUploadBase):
    """A resumable upload session; chunks go in order, the one flagged last finalises it."""

    def __init__(self, backend: GcsBackend, location: str) -> None:
        self.backend = backend
        self.location = location
        self.offset = 0

    async def part(self, data: bytes, last: bool) -> None:
        view = memoryview(data)
        while view:
            end = self.offset + len(view)
            total = str(end) if last else "*"
            headers = {"Content-Range": f"bytes {self.offset}-{end - 1}/{total}"}
            async with self.backend.response(
                "POST", self.location, headers=headers, data=io.BytesIO(view)
            ) as answer:
                persisted = _persisted(answer, end)
            view = view[persisted - self.offset :]
            self.offset = persisted

    async def commit(self) -> None:
        """The chunk flagged last already finalised the object."""

    async def abort(self) -> None:
        await self.backend.request("DELETE", self.location)


def _persisted(answer: aiohttp.ClientResponse, end: int) -> int:
    """How many bytes the session holds: all when done, else what its Range header says."""
    if answer.status in (200, 201):
        return end
    received = answer.headers.get("Range")
    return int(received.rsplit("-", 1)[1]) + 1 if received else 0


def from_url(url: str, scheme: str, storage_options: dict[str, Any]) -> GcsBackend:
    return GcsBackend(url, "gs", url.split("://", 1)[1], storage_options)


def translate(exc: BaseException, path: str) -> BaseException | None:
    """gcsfs / google-auth exceptions -> built-in file errors; None for anything else."""
    if isinstance(exc, HttpError):
        code = int(exc.code or 0)
        if code in (401, 403):
            return PermissionError(errno.EACCES, "The store refused access", path)
        if code in (429, 503):
            return OSError(errno.EBUSY, f"The store is busy ({code})", path)
        if code >= 500:
            return OSError(errno.EREMOTEIO, f"The store failed ({code})", path)
        return OSError(errno.EIO, f"The store answered with an error ({code})", path)
    if isinstance(exc, requests_errors.ProxyError):  # how gcsfs reports a 502
        return OSError(errno.EREMOTEIO, "The store failed (502)", path)
    if isinstance(exc, google_auth.GoogleAuthError):
        return PermissionError(errno.EACCES, "No usable credentials for the store", path)
    if type(exc) is OSError and str(exc).startswith("Forbidden"):  # gcsfs's 403
        return PermissionError(errno.EACCES, "The store refused access", path)
    if isinstance(exc, ValueError) and str(exc).startswith("Bad Request"):
        return OSError(errno.EINVAL, "The store rejected the request", path)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return TimeoutError(errno.ETIMEDOUT, "The store did not answer in time", path)
    if isinstance(exc, aiohttp.ClientConnectionError):
        return OSError(errno.EHOSTUNREACH, "The store cannot be reached", path)
    if isinstance(exc, json.JSONDecodeError | aiohttp.ClientError):
        return OSError(errno.EIO, f"Store client error: {type(exc).__name__}", path)
    return None


translated.translators.append(translate)
