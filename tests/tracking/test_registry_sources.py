"""Model version sources: what `model-versions/create` accepts, and where the server may read
a version's files from. Each refused shape is one of MLflow's advisories (API.md 2.3)."""

import pytest

from tracking.errors import InvalidValue
from tracking.registry_sources import Location, Places, check_source, locate, within

RUN = "0123456789abcdef0123456789abcdef"
MODEL = "m-" + "a" * 32
PLACES = Places(
    destination="/srv/artgw/mlartifacts",
    hosts=frozenset({"http://artifacts.internal:5002"}),
    roots=("s3://bucket/direct",),
)
PROXY = "http://artifacts.internal:5002/api/2.0/mlflow-artifacts/artifacts"

ACCEPTED = [
    # (source, run_id, model_id) -> (kind, run_id, path, model_id, model_name, reference)
    (f"runs:/{RUN}/model", None, None, ("run", RUN, "model", None, None, None)),
    (f"runs:/{RUN}/model", RUN, None, ("run", RUN, "model", None, None, None)),
    (f"runs:/{RUN}", None, None, ("run", RUN, "", None, None, None)),
    (f"models:/{MODEL}", None, MODEL, ("logged_model", None, "", MODEL, None, None)),
    (f"models:/{MODEL}", None, None, ("logged_model", None, "", MODEL, None, None)),
    ("models:/other/3", None, None, ("registered", None, "", None, "other", "3")),
    ("models:/other/latest", None, None, ("registered", None, "", None, "other", "latest")),
    ("models:/other/Production", None, None, ("registered", None, "", None, "other", "Production")),
    ("models:/other@champion", None, None, ("registered", None, "", None, "other", "@champion")),
    (
        f"mlflow-artifacts:/0/{RUN}/artifacts/model",
        RUN,
        None,
        ("artifact", RUN, "", None, None, None),
    ),
    ("mlflow-artifacts:/0/x/artifacts/model", None, None, ("artifact", None, "", None, None, None)),
    (
        f"{PROXY}/experiments/0/{RUN}/artifacts/model",
        RUN,
        None,
        ("artifact", RUN, "", None, None, None),
    ),
    (
        "file:///srv/artgw/mlartifacts/0/r/artifacts/model",
        None,
        None,
        ("artifact", None, "", None, None, None),
    ),
    (
        "/srv/artgw/mlartifacts/0/r/artifacts/model",
        None,
        None,
        ("artifact", None, "", None, None, None),
    ),
    (
        "s3://bucket/direct/1/r/artifacts/model",
        None,
        None,
        ("artifact", None, "", None, None, None),
    ),
]

REFUSED = [
    # CVE-2023-1177: a local directory as the source, read back through get-artifact
    ("file:///etc/", None, None),
    ("file:///etc/passwd", RUN, None),
    ("/etc", None, None),
    # CVE-2023-2780: the 1177 fix bypassed with backslashes
    ("file:///srv/artgw/mlartifacts/\\..\\..\\etc", None, None),
    ("mlflow-artifacts:/0/r\\..\\..\\..\\etc", None, None),
    # CVE-2023-6018: a source on the attacker's server, which the server would fetch
    ("http://attacker.example/api/2.0/mlflow-artifacts/artifacts/x", None, None),
    ("https://169.254.169.254/latest/meta-data/", None, None),
    ("mlflow-artifacts://attacker.example/x", None, None),
    # CVE-2023-6977: is_local_uri bypassed with //proc/self/root
    ("//proc/self/root/etc/passwd", None, None),
    ("file://proc/self/root/etc", None, None),
    # CVE-2026-2614: file:///etc or schemeless ../../etc on a version
    ("../../etc", None, None),
    ("models/../../../etc", None, None),
    # CVE-2023-2356 / 6909 / 2024-1483 family: traversal hidden by encoding, queries, fragments
    ("mlflow-artifacts:/0/r/artifacts/../../../etc", None, None),
    ("mlflow-artifacts:/0/r/%2e%2e/%2e%2e/etc", None, None),
    ("mlflow-artifacts:/0/r/%252e%252e/%252e%252e/etc", None, None),
    (f"{PROXY}/x/..%2f..%2f..%2fetc", None, None),
    ("http:///?/../../etc/", None, None),
    ("http:///#/../../etc/", None, None),
    (f"{PROXY}/x?y=1", None, None),
    ("mlflow-artifacts:/0/r/a%00b", None, None),
    ("mlflow-artifacts:/0/r/a\nb", None, None),
    ("mlflow-artifacts:/0/r;x=1/model", None, None),
    # other places the server does not own
    ("s3://other-bucket/model", None, None),
    ("s3://bucket/directory-next-door/model", None, None),
    ("file:///srv/artgw/mlartifacts-other/x", None, None),
    ("C:/Windows/win.ini", None, None),
    ("hdfs://namenode/x", None, None),
    ("http://artifacts.internal:5002/not-the-proxy/x", None, None),
    ("", None, None),
    ("   ", None, None),
    ("x" * 3000, None, None),
    # ill-formed runs:/ and models:/ URIs, and mismatched ids
    ("runs://host/r/model", None, None),
    ("runs:/", None, None),
    ("runs:/../model", None, None),
    (f"runs:/{RUN}/model", "another-run", None),
    (f"runs:/{RUN}/model", None, MODEL),
    (f"models:/{MODEL}", None, "m-" + "b" * 32),
    ("models:/not-a-model-id", None, None),
    ("models://host/m/1", None, None),
    ("models:/a/b/c", None, None),
    ("models:/m/1", None, MODEL),
    ("models:/@alias", None, None),
]


@pytest.mark.parametrize(("source", "run_id", "model_id", "expected"), ACCEPTED)
def test_accepted_sources(source, run_id, model_id, expected):
    checked = check_source(source, run_id, model_id, PLACES)
    got = (
        checked.kind,
        checked.run_id,
        checked.path,
        checked.model_id,
        checked.model_name,
        checked.reference,
    )
    assert got == expected
    assert checked.uri == source


@pytest.mark.parametrize(("source", "run_id", "model_id"), REFUSED)
def test_refused_sources(source, run_id, model_id):
    with pytest.raises(InvalidValue, match="Invalid model version source"):
        check_source(source, run_id, model_id, PLACES)


@pytest.mark.parametrize(
    ("uri", "location"),
    [
        ("mlflow-artifacts:/0/r/artifacts/model", Location("0/r/artifacts/model")),
        ("mlflow-artifacts:///0/r/artifacts", Location("0/r/artifacts")),
        ("/srv/artgw/mlartifacts/0/r/artifacts", Location("0/r/artifacts")),
        ("file:///srv/artgw/mlartifacts/0/r", Location("0/r")),
        (f"{PROXY}/experiments/0/r/artifacts", Location("experiments/0/r/artifacts", PROXY)),
        ("mlflow-artifacts://artifacts.internal:5002/0/r", None),
        # accepted as a source (clients write there), but never read by the server
        ("s3://bucket/direct/1/r/artifacts/model", None),
        ("runs:/r/model", None),
        ("file:///etc/passwd", None),
        ("//proc/self/root/etc", None),
        ("../../etc", None),
        ("http://attacker.example/api/2.0/mlflow-artifacts/artifacts/x", None),
        ("mlflow-artifacts:/0/../../etc", None),
        ("REDACTED-SOURCE-PATH", None),
    ],
)
def test_locate(uri, location):
    assert locate(uri, PLACES) == location


@pytest.mark.parametrize(
    ("uri", "root", "tail"),
    [
        ("mlflow-artifacts:/0/r/artifacts/model", "mlflow-artifacts:/0/r/artifacts", "model"),
        ("mlflow-artifacts:/0/r/artifacts", "mlflow-artifacts:/0/r/artifacts", ""),
        ("mlflow-artifacts:/0/r/artifacts2/m", "mlflow-artifacts:/0/r/artifacts", None),
        (
            "mlflow-artifacts:/0/r/artifacts/m",
            "http://h/api/2.0/mlflow-artifacts/artifacts/0/r",
            None,
        ),
        ("HTTP://H:1/a/b", "http://h:1/a", "b"),
        ("s3://b/p/x", "s3://b/p", "x"),
        ("s3://c/p/x", "s3://b/p", None),
        ("/a/b/c", "file:///a/b", "c"),
        ("a/b/c", "a/b", None),  # relative local paths are inside nothing
        ("/a/b/../../etc", "/a/b", None),
        ("/a/b/c", "", None),
    ],
)
def test_within(uri, root, tail):
    assert within(uri, root) == tail
