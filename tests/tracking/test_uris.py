"""Artifact URIs as MLflow derives them (API.md 5.1-5.3) and `artifact_location` validation."""

from pathlib import Path

import pytest

from tracking.errors import InvalidValue
from tracking.uris import (
    append_path,
    destination_path,
    resolve_if_local,
    service_base,
    validate_location,
)

SEED_ROOT = "http://localhost:5000/api/2.0/mlflow-artifacts/artifacts/experiments"


@pytest.mark.parametrize(
    ("root", "parts", "uri"),
    [
        ("mlflow-artifacts:/", ["0"], "mlflow-artifacts:/0"),
        ("mlflow-artifacts:/0", ["R", "artifacts"], "mlflow-artifacts:/0/R/artifacts"),
        (SEED_ROOT, ["1"], SEED_ROOT + "/1"),
        (SEED_ROOT + "/", ["1", "R", "artifacts"], SEED_ROOT + "/1/R/artifacts"),
        ("s3://bucket/base?region=x", ["1"], "s3://bucket/base/1?region=x"),
        ("/abs/root", ["2"], "/abs/root/2"),
        ("file:///abs/root", ["2"], "file:///abs/root/2"),
        ("http://host:1", ["3"], "http://host:1/3"),
    ],
)
def test_append_path(root: str, parts: list[str], uri: str) -> None:
    assert append_path(root, *parts) == uri


@pytest.mark.parametrize(
    ("uri", "path", "base"),
    [
        ("mlflow-artifacts:/0/R/artifacts", "0/R/artifacts", "http://t:5000/api/2.0"),
        (
            "mlflow-artifacts://other:9/0/R/artifacts",
            "0/R/artifacts",
            "http://other:9/api/2.0",
        ),
        (
            SEED_ROOT + "/0/R/artifacts",
            "experiments/0/R/artifacts",
            "http://localhost:5000/api/2.0",
        ),
        (
            "https://h/prefix/api/2.0/mlflow-artifacts/artifacts/x/R/artifacts",
            "x/R/artifacts",
            "https://h/prefix/api/2.0",
        ),
        ("s3://bucket/0/R/artifacts", None, None),
        ("/local/0/R/artifacts", None, None),
        ("http://h/elsewhere/0/R/artifacts", None, None),
    ],
)
def test_proxied_uris_name_a_destination_path(uri: str, path: str | None, base: str | None):
    assert destination_path(uri) == path
    assert service_base(uri, "http://t:5000") == base


@pytest.mark.parametrize(
    "location",
    [
        "s3://bucket/x",
        "mlflow-artifacts:/custom",
        SEED_ROOT.replace("experiments", "custom"),
        "gs://b/a..b/c",
    ],
)
def test_valid_locations(location: str) -> None:
    assert validate_location(location, SEED_ROOT) == location


@pytest.mark.parametrize(
    ("uri", "resolved"),
    [("rel/dir", "{cwd}/rel/dir"), ("/abs", "/abs"), ("s3://b/rel", "s3://b/rel")],
)
def test_only_relative_local_paths_are_made_absolute(uri: str, resolved: str) -> None:
    assert resolve_if_local(uri) == resolved.format(cwd=Path.cwd())


@pytest.mark.parametrize(
    "location",
    [
        "s3://b/x#frag",
        "s3://b/x;param",
        "s3://b/../x",
        "s3://b/%2e%2e/x",
        "s3://b/%252e%252e/x",
        "http:///?/../../etc/",
        "runs:/R/path",
        "http://elsewhere:5000/api/2.0/mlflow-artifacts/artifacts/x",
        "mlflow-artifacts://elsewhere:1/x",
        "s3://b/" + "x" * 2048,
        "s3://b/x\x00y",
    ],
)
def test_invalid_locations(location: str) -> None:
    with pytest.raises(InvalidValue, match="'artifact_location'"):
        validate_location(location, SEED_ROOT)
