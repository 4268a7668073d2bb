"""Registry entities -> MLflow's JSON (model_registry.proto through protobuf's JSON mapping).

What the client reads matters most: `status` is always sent (a missing one decodes as
PENDING_REGISTRATION and the client waits five minutes for it), `version` is a string, and
optional fields are left out rather than sent empty (the client tests them with HasField).
"""

from gateway.tracking.wire import JsonObject, key_values
from tracking.registry import READY, ModelVersion, RegisteredModel


def model_version(v: ModelVersion) -> JsonObject:
    body: JsonObject = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": v.creation_timestamp,
        "last_updated_timestamp": v.last_updated_timestamp,
        "current_stage": v.current_stage,
        "source": v.source,
        "status": READY,
    }
    if v.description is not None:
        body["description"] = v.description
    if v.run_id:
        body["run_id"] = v.run_id
    if v.run_link is not None:
        body["run_link"] = v.run_link
    if v.tags:
        body["tags"] = key_values(v.tags)
    if v.aliases:
        body["aliases"] = list(v.aliases)
    return body


def registered_model(m: RegisteredModel) -> JsonObject:
    body: JsonObject = {
        "name": m.name,
        "creation_timestamp": m.creation_timestamp,
        "last_updated_timestamp": m.last_updated_timestamp,
    }
    if m.description:
        body["description"] = m.description
    if m.latest_versions:
        body["latest_versions"] = [model_version(v) for v in m.latest_versions]
    if m.tags:
        body["tags"] = key_values(m.tags)
    if m.aliases:
        body["aliases"] = [{"alias": a.alias, "version": str(a.version)} for a in m.aliases]
    return body
