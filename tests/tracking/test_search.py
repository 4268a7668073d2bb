"""Search filters and orderings: MLflow's syntax in, store-neutral clauses out, or a 400."""

import pytest

from tracking.errors import InvalidValue
from tracking.search import (
    EXPERIMENTS,
    RUNS,
    decode_token,
    encode_token,
    parse_filter,
    parse_order_by,
)
from tracking.store import Clause, Order

FILTERS = [
    ("metrics.acc > 0.9", [Clause("metric", "acc", ">", 0.9)]),
    ("metric.acc>=1e-3", [Clause("metric", "acc", ">=", 0.001)]),
    ("params.lr = '0.1'", [Clause("param", "lr", "=", "0.1")]),
    ('params.lr != "0.1"', [Clause("param", "lr", "!=", "0.1")]),
    ("params.lr <> '0.1'", [Clause("param", "lr", "!=", "0.1")]),
    ("tags.mlflow.runName LIKE 'a%'", [Clause("tag", "mlflow.runName", "LIKE", "a%")]),
    ("tags.`my key` ilike '%x'", [Clause("tag", "my key", "ILIKE", "%x")]),
    ("tags.\"quoted.key\" = 'it\\'s'", [Clause("tag", "quoted.key", "=", "it's")]),
    ("attributes.status = 'FINISHED'", [Clause("attribute", "status", "=", "FINISHED")]),
    ("run_name = 'r'", [Clause("attribute", "run_name", "=", "r")]),
    ("attr.start_time < 100", [Clause("attribute", "start_time", "<", 100.0)]),
    ("run_id IN ('a', 'b')", [Clause("attribute", "run_id", "IN", ("a", "b"))]),
    (
        "metrics.m < -1 AND params.p = 'x' and tags.t = 'y'",
        [
            Clause("metric", "m", "<", -1.0),
            Clause("param", "p", "=", "x"),
            Clause("tag", "t", "=", "y"),
        ],
    ),
]


@pytest.mark.parametrize(("text", "clauses"), FILTERS)
def test_run_filters(text: str, clauses: list[Clause]) -> None:
    assert parse_filter(text, RUNS) == tuple(clauses)


BAD_FILTERS = [
    "metrics.acc",
    "metrics.acc >",
    "metrics.acc > 'high'",
    "params.p > 'x'",
    "params.p = 1",
    "tags.t IN ('a')",
    "run_id IN 'a'",
    "run_id IN ('a' 'b')",
    "colour = 'red'",
    "metrics.m > 1 OR metrics.m < 0",
    "metrics.m > 1 AND",
    "datasets.name = 'x'",
    "params. = 'x'",
    "'text' = params.p",
    "params.p = 'unterminated",
    "params.p = 'x'; DROP TABLE runs",
]


@pytest.mark.parametrize("text", BAD_FILTERS)
def test_bad_run_filters_name_the_filter(text: str) -> None:
    with pytest.raises(InvalidValue, match="'filter'"):
        parse_filter(text, RUNS)


def test_experiment_filters_know_their_own_names() -> None:
    assert parse_filter("name LIKE 'a%'", EXPERIMENTS) == (
        Clause("attribute", "name", "LIKE", "a%"),
    )
    assert parse_filter("tags.k = 'v'", EXPERIMENTS) == (Clause("tag", "k", "=", "v"),)
    for text in ("metrics.m > 1", "params.p = 'x'", "run_name = 'x'"):
        with pytest.raises(InvalidValue):
            parse_filter(text, EXPERIMENTS)


@pytest.mark.parametrize(
    ("items", "orders"),
    [
        (["metrics.m"], [Order("metric", "m", True)]),
        (
            ["metrics.m DESC", "run_name asc"],
            [Order("metric", "m", False), Order("attribute", "run_name", True)],
        ),
        (["tags.`a b` DESC"], [Order("tag", "a b", False)]),
    ],
)
def test_order_by(items: list[str], orders: list[Order]) -> None:
    assert parse_order_by(items, RUNS) == tuple(orders)


@pytest.mark.parametrize("item", ["metrics.m SIDEWAYS", "", "metrics.m DESC more", "colour"])
def test_bad_order_by(item: str) -> None:
    with pytest.raises(InvalidValue, match="'order_by'"):
        parse_order_by([item], RUNS)


def test_page_tokens_round_trip_and_refuse_forgeries() -> None:
    assert decode_token(encode_token(40)) == 40
    assert decode_token(None) == decode_token("") == 0
    for token in ("nope", "eyJvZmZzZXQiOiAtMX0=", "eyJ4IjogMX0=", "bnVsbA==", "W10="):
        with pytest.raises(InvalidValue, match="'page_token'"):
            decode_token(token)
