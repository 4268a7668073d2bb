"""Registry search filters and orderings: MLflow's grammar in, store-neutral clauses out, or a
400 (INVALID_PARAMETER_VALUE) naming the problem."""

import pytest

from tracking.errors import InvalidValue
from tracking.registry import IS_PROMPT_TAG
from tracking.registry_search import MODELS, VERSIONS, parse_filter, parse_order_by, parse_search
from tracking.search import encode_token
from tracking.store import Clause, Order

MODEL_FILTERS = [
    ("name = 'm'", [Clause("attribute", "name", "=", "m")]),
    ('name != "m"', [Clause("attribute", "name", "!=", "m")]),
    ("attribute.name LIKE 'cls-%'", [Clause("attribute", "name", "LIKE", "cls-%")]),
    ("name ilike '%Forest%'", [Clause("attribute", "name", "ILIKE", "%Forest%")]),
    ("name IN ('a', 'b')", [Clause("attribute", "name", "IN", ("a", "b"))]),
    ("name NOT IN ('a')", [Clause("attribute", "name", "NOT IN", ("a",))]),
    ("tags.team = 'ml'", [Clause("tag", "team", "=", "ml")]),
    ("tag.`my key` LIKE 'x%'", [Clause("tag", "my key", "LIKE", "x%")]),
    ("tags.\"dotted.key\" != 'it\\'s'", [Clause("tag", "dotted.key", "!=", "it's")]),
    (
        "name LIKE 'a%' and tags.t = 'y' AND tags.u ILIKE 'Z'",
        [
            Clause("attribute", "name", "LIKE", "a%"),
            Clause("tag", "t", "=", "y"),
            Clause("tag", "u", "ILIKE", "Z"),
        ],
    ),
]
VERSION_FILTERS = [
    ("run_id = 'abc'", [Clause("attribute", "run_id", "=", "abc")]),
    ("run_id IN ('a','b')", [Clause("attribute", "run_id", "IN", ("a", "b"))]),
    ("source_path LIKE 'runs:/%'", [Clause("attribute", "source", "LIKE", "runs:/%")]),
    ("version_number >= 3", [Clause("attribute", "version", ">=", 3)]),
    ("version_number = '2'", [Clause("attribute", "version", "=", 2)]),
    (
        "name = 'm' AND version_number < 10",
        [
            Clause("attribute", "name", "=", "m"),
            Clause("attribute", "version", "<", 10),
        ],
    ),
    ("tags.validated = 'yes'", [Clause("tag", "validated", "=", "yes")]),
]
BAD_MODEL_FILTERS = [
    "name",  # no operator
    "name = ",  # no value
    "name = m",  # unquoted value
    "name > 'a'",  # no order comparisons on strings
    "creation_timestamp > 5",  # not searchable for models
    "attributes.name = 'x'",  # MLflow accepts only attribute, tag, tags
    "params.p = 'x'",
    "metrics.m > 1",
    "tags.t IN ('a')",  # IN is for names only
    "tags.t > 'a'",
    "name = 'a' OR name = 'b'",
    "name = 'a' name = 'b'",
    "name IN 'a'",
    "name IN ('a' 'b')",
    "name = 'unterminated",
    "run_id = 'x'",  # a version attribute
]
BAD_VERSION_FILTERS = [
    "version_number = 1.5",
    "version_number LIKE '1%'",
    "version_number = 'one'",
    "source_path IN ('a')",
    "version_number IN (1)",
    "current_stage = 'Production'",
]


@pytest.mark.parametrize(("text", "clauses"), MODEL_FILTERS)
def test_model_filters(text, clauses):
    assert list(parse_filter(text, MODELS)) == clauses


@pytest.mark.parametrize(("text", "clauses"), VERSION_FILTERS)
def test_version_filters(text, clauses):
    assert list(parse_filter(text, VERSIONS)) == clauses


@pytest.mark.parametrize("text", BAD_MODEL_FILTERS)
def test_bad_model_filters_are_invalid_values(text):
    with pytest.raises(InvalidValue, match="Invalid filter"):
        parse_filter(text, MODELS)


@pytest.mark.parametrize("text", BAD_VERSION_FILTERS)
def test_bad_version_filters_are_invalid_values(text):
    with pytest.raises(InvalidValue, match="Invalid filter"):
        parse_filter(text, VERSIONS)


ORDERS = [
    (MODELS, [], [Order("attribute", "name")]),
    (MODELS, ["name DESC"], [Order("attribute", "name", False)]),
    (
        MODELS,
        ["timestamp DESC"],
        [Order("attribute", "last_updated_timestamp", False), Order("attribute", "name")],
    ),
    (
        MODELS,
        ["creation_timestamp", "`name` desc"],
        [Order("attribute", "creation_timestamp"), Order("attribute", "name", False)],
    ),
    (
        VERSIONS,
        [],
        [
            Order("attribute", "name"),
            Order("attribute", "version", False),
        ],
    ),
    (
        VERSIONS,
        ["version_number ASC"],
        [Order("attribute", "version"), Order("attribute", "name")],
    ),
]


@pytest.mark.parametrize(("grammar", "items", "orders"), ORDERS)
def test_order_by_with_tie_breakers(grammar, items, orders):
    assert list(parse_order_by(items, grammar)) == orders


@pytest.mark.parametrize(
    ("grammar", "items"),
    [
        (MODELS, ["tags.t"]),
        (MODELS, ["name UP"]),
        (MODELS, ["name ASC extra"]),
        (MODELS, ["timestamp", "last_updated_timestamp"]),  # the same field twice
        (MODELS, ["version_number"]),
        (VERSIONS, ["name", "name DESC"]),
        (VERSIONS, ["run_id"]),
        (VERSIONS, [""]),
    ],
)
def test_bad_order_by(grammar, items):
    with pytest.raises(InvalidValue):
        parse_order_by(items, grammar)


def test_default_version_order_is_mlflows():
    search = parse_search(VERSIONS, None, None, 10, None)
    assert search.order_by == (
        Order("attribute", "last_updated_timestamp", False),
        Order("attribute", "name"),
        Order("attribute", "version", False),
    )


@pytest.mark.parametrize(
    ("grammar", "max_results", "ok"),
    [
        (MODELS, 1, True),
        (MODELS, 1000, True),
        (MODELS, 1001, False),
        (MODELS, 0, False),
        (VERSIONS, 200_000, True),
        (VERSIONS, 200_001, False),
        (VERSIONS, -1, False),
    ],
)
def test_max_results_limits(grammar, max_results, ok):
    if ok:
        assert parse_search(grammar, "", [], max_results, None).max_results == max_results
    else:
        with pytest.raises(InvalidValue, match="max_results"):
            parse_search(grammar, "", [], max_results, None)


def test_page_tokens():
    assert parse_search(MODELS, "", [], 5, encode_token(10)).offset == 10
    for token in ("garbage", encode_token(-1), "eyJub3QiOiAxfQ=="):
        with pytest.raises(InvalidValue, match="page_token"):
            parse_search(MODELS, "", [], 5, token)


@pytest.mark.parametrize(
    ("text", "exclude", "kept"),
    [
        # the clause the client appends to every search: prompts left out, models without the
        # tag kept (so the clause itself is not a tag condition)
        (f"tag.`{IS_PROMPT_TAG}` != 'true'", True, []),
        (f"name LIKE 'a%' AND tags.`{IS_PROMPT_TAG}` = 'false'", True, ["name"]),
        ("", True, []),
        # asking for prompts keeps the clause as a condition
        (f"tags.`{IS_PROMPT_TAG}` = 'true'", False, [IS_PROMPT_TAG]),
        (f"tags.`{IS_PROMPT_TAG}` != 'false'", False, [IS_PROMPT_TAG]),
    ],
)
def test_prompt_marker(text, exclude, kept):
    search = parse_search(MODELS, text, [], 10, None)
    assert search.exclude_prompts is exclude
    assert [clause.key for clause in search.clauses] == kept
