"""The sweep of abandoned S3 multipart uploads, which never trusts the store's clock alone.

S3 says when each upload began (`Initiated`), but an S3-compatible store may say it wrong: moto
dates every upload 2010-11-10, and a store whose clock is off shifts them all. Aborting on that
word alone ends uploads that are being written at that very moment (a streaming PUT's own
multipart upload, a client's part upload). So the sweep also keeps a ledger, an object beside
the sweep lease, of when it first saw each upload listed; an upload is aborted only once both
the store and the ledger date it before the cut-off. The ledger lives in the store, so it
survives restarts and serves every worker and replica that takes the lease in turn; it holds
only the uploads still listed, so it stays as small as the set of unfinished uploads.
"""

import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from backends.fsspec_store import translated
from backends.parts import FOLDER

if TYPE_CHECKING:
    from backends.s3 import S3Backend

LEDGER = f"{FOLDER}/s3-uploads-seen.json"
"""Upload id -> the time (epoch seconds) a sweep first saw it listed."""


async def sweep_uploads(backend: "S3Backend", started_before: float) -> int:
    """Abort the prefix's uploads begun (by the store's and the ledger's word) before this time."""
    seen = await _read_ledger(backend)
    now = time.time()
    still_listed: dict[str, float] = {}
    removed = 0
    async for upload in _listed_uploads(backend):
        first_seen = seen.get(upload["UploadId"], now)
        if first_seen < started_before and upload["Initiated"].timestamp() < started_before:
            with contextlib.suppress(FileNotFoundError), translated(""):
                await backend.s3(
                    "abort_multipart_upload", Key=upload["Key"], UploadId=upload["UploadId"]
                )
            removed += 1
        else:
            still_listed[upload["UploadId"]] = first_seen
    await _write_ledger(backend, still_listed)
    return removed


async def _listed_uploads(backend: "S3Backend") -> AsyncIterator[dict[str, Any]]:
    """Every unfinished upload under the prefix (paged by hand: botocore's paginators read
    their models from disk)."""
    page: dict[str, Any] = {"Prefix": backend.prefix + "/" if backend.prefix else ""}
    while True:
        with translated(""):
            listed = await backend.s3("list_multipart_uploads", **page)
        for upload in listed.get("Uploads", []):
            yield upload
        if not listed.get("IsTruncated"):
            return
        page["KeyMarker"] = listed.get("NextKeyMarker", "")
        page["UploadIdMarker"] = listed.get("NextUploadIdMarker", "")


async def _read_ledger(backend: "S3Backend") -> dict[str, float]:
    try:
        with translated(LEDGER):
            response = await backend.s3("get_object", Key=backend.key(LEDGER))
            async with response["Body"] as body:
                text = await body.read()
    except FileNotFoundError:
        return {}
    try:
        loaded = json.loads(text)
    except ValueError:  # cut short or replaced by hand: start it again
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {str(k): float(v) for k, v in loaded.items() if isinstance(v, int | float)}


async def _write_ledger(backend: "S3Backend", seen: dict[str, float]) -> None:
    body = json.dumps(seen, separators=(",", ":")).encode()
    with translated(LEDGER):
        await backend.s3("put_object", Key=backend.key(LEDGER), Body=body)
