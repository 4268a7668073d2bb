"""Registry entities as MLflow's JSON: what the client's from_proto reads."""

from gateway.tracking.registry_wire import model_version, registered_model
from tracking.registry import Alias, ModelVersion, RegisteredModel
from tracking.store import Tag


def test_a_bare_version_still_says_ready_and_numbers_as_strings():
    body = model_version(ModelVersion("m", 3, 10, 20, "runs:/r/model", "runs:/r/model"))
    assert body == {
        "name": "m",
        "version": "3",
        "creation_timestamp": 10,
        "last_updated_timestamp": 20,
        "current_stage": "None",
        "source": "runs:/r/model",
        "status": "READY",
    }


def test_a_full_version():
    version = ModelVersion(
        "m",
        1,
        1,
        2,
        "s",
        "loc",
        "Production",
        "",
        "r1",
        "http://x",
        "m-1",
        (Tag("k", "v"),),
        ("champion",),
    )
    body = model_version(version)
    assert body["description"] == ""  # set (even empty) is sent; the client reads HasField
    assert body["run_id"] == "r1" and body["run_link"] == "http://x"
    assert body["tags"] == [{"key": "k", "value": "v"}]
    assert body["aliases"] == ["champion"]
    assert "model_id" not in body and "storage_location" not in body  # as MLflow's server


def test_registered_model():
    latest = ModelVersion("m", 2, 1, 2, "s", "s")
    model = RegisteredModel("m", 1, 2, "", (latest,), (Tag("t", "1"),), (Alias("a", 2),))
    body = registered_model(model)
    assert "description" not in body  # an empty description is left out, as MLflow does
    assert body["latest_versions"][0]["version"] == "2"
    assert body["aliases"] == [{"alias": "a", "version": "2"}]
    assert body["tags"] == [{"key": "t", "value": "1"}]
    assert set(registered_model(RegisteredModel("n", 1, 1))) == {
        "name",
        "creation_timestamp",
        "last_updated_timestamp",
    }
