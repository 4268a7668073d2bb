"""Reading a run's artifacts through the tracking API, as MLflow's UI and REST users do:
`GET .../mlflow/artifacts/list` and `GET /get-artifact` (API-TRACKING.md D.2, D.3)."""

from aiohttp import web
from aiohttp.typedefs import Handler

from backends import Entry
from gateway.artifacts import json_response
from gateway.errors import InvalidParameter
from gateway.tracking import artifact_reads
from gateway.tracking.keys import STORE
from gateway.tracking.validation import Spec, request_fields, string

RUN_ID = {"run_id": Spec(string, required=True)}
MAX_UPLOAD = 10 << 20
RUN_ID_ALIAS = {"run_uuid": "run_id"}


def listing_body(root_uri: str, path: str, entries: list[Entry]) -> dict:
    """MLflow's ListArtifacts response: paths relative to the root; `files` left out if empty."""
    body: dict = {"root_uri": root_uri}
    prefix = path.rstrip("/") + "/" if path.rstrip("/") else ""
    files = [
        {"path": prefix + e.name, "is_dir": True}
        if e.is_dir
        else {"path": prefix + e.name, "is_dir": False, "file_size": e.size}
        for e in entries
    ]
    if files:
        body["files"] = files
    return body


async def list_artifacts(request: web.Request) -> web.Response:
    schema = {**RUN_ID, "path": Spec(string), "page_token": Spec(string)}
    fields = await request_fields(request, schema, RUN_ID_ALIAS)
    run = await request.app[STORE].get_run(fields["run_id"])
    path = fields.get("path", "")
    place = artifact_reads.where(request, run.info.artifact_uri, path)
    entries = await artifact_reads.list_entries(request, place)
    return json_response(listing_body(run.info.artifact_uri, path, entries))


async def get_artifact(request: web.Request) -> web.StreamResponse:
    schema = {**RUN_ID, "path": Spec(string, required=True)}
    fields = await request_fields(request, schema, RUN_ID_ALIAS)
    run = await request.app[STORE].get_run(fields["run_id"])
    place = artifact_reads.where(request, run.info.artifact_uri, fields["path"])
    return await artifact_reads.send_file(request, place)


async def upload_artifact(request: web.Request) -> web.Response:
    """The UI's small upload (`POST .../upload-artifact?run_uuid=&path=`, at most 10 MB) into the
    run's artifact root, wherever that may be read and written (as for reads)."""
    run_id = request.query.get("run_uuid") or request.query.get("run_id")
    if not run_id:
        raise InvalidParameter("Request must specify run_uuid.")
    path = request.query.get("path")
    if not path:
        raise InvalidParameter("Request must specify path.")
    if (request.content_length or 0) > MAX_UPLOAD:
        raise InvalidParameter("Artifact size is too large. Max size is 10MB.")
    run = await request.app[STORE].get_run(run_id)
    place = artifact_reads.where(request, run.info.artifact_uri, path)
    body = await request.content.read(MAX_UPLOAD + 1)
    if len(body) > MAX_UPLOAD:
        raise InvalidParameter("Artifact size is too large. Max size is 10MB.")
    if not body:
        raise InvalidParameter("Request must specify data.")
    await artifact_reads.store_file(request, place, body)
    return json_response({})


ENDPOINTS: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "artifacts/list", list_artifacts),
    ("POST", "upload-artifact", upload_artifact),
)
"""Routes under `<prefix>/mlflow/`; `/get-artifact` sits at the root (see `root_routes`)."""


def root_routes() -> list[web.RouteDef]:
    return [web.get("/get-artifact", get_artifact)]
