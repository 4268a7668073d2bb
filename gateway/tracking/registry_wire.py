"""Registry entities -> MLflow's JSON (model_registry.proto through protobuf's JSON mapping).

What the client reads matters most: `status` is always sent (a missing one decodes as
PENDING_REGISTRATION and the client waits five minutes for it), `version` is a string, and
optional fields are left out rather than sent empty (the client tests them with HasField).
"""

from gateway.tracking.wire import JsonObject, add_present, key_values
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
    add_present(body, run_id=v.run_id)
    if v.run_link is not None:
        body["run_link"] = v.run_link
    return add_present(body, tags=key_values(v.tags), aliases=list(v.aliases))


def registered_model(m: RegisteredModel) -> JsonObject:
    body: JsonObject = {
        "name": m.name,
        "creation_timestamp": m.creation_timestamp,
        "last_updated_timestamp": m.last_updated_timestamp,
    }
    return add_present(
        body,
        description=m.description,
        latest_versions=[model_version(v) for v in m.latest_versions],
        tags=key_values(m.tags),
        aliases=[{"alias": a.alias, "version": str(a.version)} for a in m.aliases],
    )
