"""The registry's rules for names, versions, aliases, tags and stages (MLflow's), table-driven."""

import pytest

from tracking.errors import InvalidValue
from tracking.registry import (
    ModelVersion,
    canonical_stage,
    check_alias,
    check_name,
    check_tag,
    check_version,
    latest_per_stage,
)
from tracking.store import Tag


@pytest.mark.parametrize("name", ["m", "my model", "cls-1.v2", "ünïcode", "a" * 256])
def test_good_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "   ", "a/b", "a:b", "models:/x", ".", "..", "a" * 257, "./a", "a/../b"]
)
def test_bad_names(name):
    with pytest.raises(InvalidValue):
        check_name(name)


@pytest.mark.parametrize(("text", "number"), [("1", 1), ("42", 42), (" 7 ", 7), (3, 3)])
def test_versions(text, number):
    assert check_version(text) == number


@pytest.mark.parametrize("text", ["", "one", "1.5", "1e3", "9" * 30, "v1"])
def test_bad_versions(text):
    with pytest.raises(InvalidValue, match="integer"):
        check_version(text)


@pytest.mark.parametrize("alias", ["champion", "prod-2", "a_b", "x" * 255])
def test_good_aliases(alias):
    assert check_alias(alias, for_set=True) == alias


@pytest.mark.parametrize(
    ("alias", "for_set"),
    [
        ("", False),
        ("has space", False),
        ("a.b", False),
        ("a/b", False),
        ("x" * 256, False),
        ("latest", True),
        ("LATEST", True),
        ("v1", True),
        ("V23", True),
    ],
)
def test_bad_aliases(alias, for_set):
    with pytest.raises(InvalidValue):
        check_alias(alias, for_set=for_set)


def test_reserved_aliases_may_be_read():
    assert check_alias("latest") == "latest"
    assert check_alias("v1") == "v1"


@pytest.mark.parametrize(
    "tag",
    [Tag("k", "v"), Tag("a.b/c d:e-f_g", ""), Tag("k" * 250, "v" * 100_000)],
)
def test_good_tags(tag):
    assert check_tag(tag) == tag


@pytest.mark.parametrize(
    "tag",
    [
        Tag("", "v"),
        Tag("k" * 251, "v"),
        Tag("k", "v" * 100_001),
        Tag("bad!char", "v"),
        Tag("../up", "v"),
        Tag("/abs", "v"),
        Tag("a//b", "v"),
    ],
)
def test_bad_tags(tag):
    with pytest.raises(InvalidValue):
        check_tag(tag)


@pytest.mark.parametrize(
    ("given", "stage"),
    [
        ("none", "None"),
        ("STAGING", "Staging"),
        ("production", "Production"),
        ("Archived", "Archived"),
    ],
)
def test_stages(given, stage):
    assert canonical_stage(given) == stage


@pytest.mark.parametrize("given", ["", "prod", "Deleted_Internal"])
def test_bad_stages(given):
    with pytest.raises(InvalidValue, match="Invalid Model Version stage"):
        canonical_stage(given)


def version(number: int, stage: str) -> ModelVersion:
    return ModelVersion("m", number, 0, 0, "s", "s", current_stage=stage)


def test_latest_per_stage_in_stage_order():
    versions = [
        version(1, "Production"),
        version(2, "None"),
        version(3, "Production"),
        version(4, "Staging"),
        version(5, "None"),
    ]
    assert [(v.current_stage, v.version) for v in latest_per_stage(versions)] == [
        ("None", 5),
        ("Staging", 4),
        ("Production", 3),
    ]
