"""`search_logged_models`' filter, order and page token, as MLflow parses them (API-TRACKING.md
A.5): comparisons joined by AND over attributes (`name`, `status`, `creation_timestamp`, ...),
`metrics.<key>` (numbers), `params.<key>` and `tags.<key>` (strings, also IN / NOT IN, LIKE,
ILIKE). Anything else is `InvalidValue` naming the problem, never a 500.
"""

import base64
import binascii
import json
from typing import Any

from tracking.errors import InvalidValue
from tracking.logged_models import ModelOrder, ModelStatus
from tracking.search import FilterSyntax, describe, string_list, tokenize, unquote
from tracking.store import Clause

NUMERIC_ATTRIBUTES = ("creation_timestamp_ms", "last_updated_timestamp_ms")
STRING_ATTRIBUTES = ("model_id", "name", "model_type", "status", "source_run_id", "experiment_id")
ALIASES = {
    "creation_time": "creation_timestamp_ms",
    "creation_timestamp": "creation_timestamp_ms",
    "last_updated_timestamp": "last_updated_timestamp_ms",
}
KINDS = {"attributes": "attribute", "metrics": "metric", "params": "param", "tags": "tag"}
NUMBER_OPS = ("<", "<=", ">", ">=", "=", "!=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")


def parse_filter(text: str | None) -> tuple[Clause, ...]:
    if not text or not text.strip():
        return ()
    try:
        tokens = tokenize(text)
        clauses = [_clause(tokens)]
        while tokens:
            if tokens.pop(0)[1].upper() != "AND":
                raise FilterSyntax(
                    "comparisons must be joined with AND (OR and parentheses are not supported)"
                )
            clauses.append(_clause(tokens))
    except (ValueError, IndexError) as exc:
        detail = str(exc) or "it ends too early"
        raise InvalidValue(f"Invalid filter string: {text!r}: {detail}.") from None
    return tuple(clauses)


def _clause(tokens: list[tuple[str, str]]) -> Clause:
    kind, key = _entity(tokens)
    numeric = kind == "metric" or key in NUMERIC_ATTRIBUTES
    op = _operator(tokens)
    allowed = NUMBER_OPS if numeric else STRING_OPS
    if op not in allowed:
        raise FilterSyntax(f"{op} cannot compare {describe(kind, key)}; use one of {allowed}")
    if op in ("IN", "NOT IN"):
        value: Any = string_list(tokens)
    else:
        token_kind, text = tokens.pop(0)
        if numeric and token_kind == "number":
            value = float(text)
        elif not numeric and token_kind == "string":
            value = unquote(text)
        else:
            expected = "a number" if numeric else "a quoted string"
            raise FilterSyntax(f"{describe(kind, key)} needs {expected}, got {text!r}")
    if key == "status" and kind == "attribute":
        value = _status_value(value, op)
    return Clause(kind, key, op, value)


def _entity(tokens: list[tuple[str, str]]) -> tuple[str, str]:
    token_kind, text = tokens.pop(0)
    if token_kind == "backtick":
        return "attribute", _attribute(text[1:-1])
    if token_kind != "word":
        raise FilterSyntax(f"expected a name, got {text!r}")
    prefix, dot, key = text.partition(".")
    if not dot:
        return "attribute", _attribute(ALIASES.get(text, text))
    if prefix not in KINDS:
        raise FilterSyntax(f"unknown entity type {prefix!r}; expected one of {list(KINDS)}")
    if not key and tokens and tokens[0][0] in ("backtick", "string"):
        key = unquote(tokens.pop(0)[1])
    if not key:
        raise FilterSyntax(f"a {KINDS[prefix]} name is missing")
    kind = KINDS[prefix]
    return kind, _attribute(key) if kind == "attribute" else key


def _attribute(key: str) -> str:
    if key not in NUMERIC_ATTRIBUTES + STRING_ATTRIBUTES:
        known = ", ".join((*STRING_ATTRIBUTES, "creation_timestamp", "last_updated_timestamp"))
        raise FilterSyntax(f"unknown attribute {key!r}; known: {known}")
    return key


def _operator(tokens: list[tuple[str, str]]) -> str:
    token_kind, text = tokens.pop(0)
    if token_kind == "op":
        return "!=" if text == "<>" else text
    word = text.upper()
    if token_kind == "word" and word == "NOT" and tokens and tokens[0][1].upper() == "IN":
        tokens.pop(0)
        return "NOT IN"
    if token_kind == "word" and word in ("LIKE", "ILIKE", "IN"):
        return word
    raise FilterSyntax(f"expected a comparison operator, got {text!r}")


def _status_value(value: Any, op: str) -> Any:
    """Statuses compare by name (`'READY'` or `'LOGGED_MODEL_READY'`); stored as numbers."""
    if op in ("LIKE", "ILIKE"):
        raise FilterSyntax("status compares with =, !=, IN or NOT IN")
    names = value if isinstance(value, tuple) else (value,)
    numbers = tuple(_status_number(name) for name in names)
    return numbers if isinstance(value, tuple) else numbers[0]


def _status_number(name: str) -> int:
    for candidate in (name, f"LOGGED_MODEL_{name}"):
        if candidate in ModelStatus.__members__:
            return int(ModelStatus[candidate])
    if name == "FAILED":
        return int(ModelStatus.LOGGED_MODEL_UPLOAD_FAILED)
    raise FilterSyntax(f"unknown status {name!r}; known: PENDING, READY, UPLOAD_FAILED")


def parse_order(entries: list[dict[str, Any]]) -> tuple[ModelOrder, ...]:
    """The request's `order_by` objects: `field_name` a column (aliases apply) or
    `metrics.<key>`."""
    orders = []
    for entry in entries:
        field = entry["field_name"]
        prefix, dot, key = field.partition(".")
        if dot:
            if prefix != "metrics" or not key:
                raise InvalidValue(
                    f"Invalid order by field name: {field!r}. Only metrics are supported "
                    "(metrics.<key>), besides the model's own columns."
                )
            key = key.strip("`")
            field = f"metrics.{key}"
        else:
            field = ALIASES.get(field, field)
            if field not in NUMERIC_ATTRIBUTES + STRING_ATTRIBUTES:
                raise InvalidValue(f"Invalid order by field name: {entry['field_name']!r}.")
        orders.append(
            ModelOrder(
                field,
                entry.get("ascending", True),
                entry.get("dataset_name") or "",
                entry.get("dataset_digest") or "",
            )
        )
    return tuple(orders)


def encode_token(query: dict[str, Any], offset: int) -> str:
    return base64.b64encode(json.dumps({**query, "offset": offset}).encode()).decode()


def decode_token(token: str | None, query: dict[str, Any]) -> int:
    """The offset a page token carries; it must come from the same search (MLflow's rule)."""
    if not token:
        return 0
    try:
        found = json.loads(base64.b64decode(token, validate=True))
        offset = found.pop("offset")
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError, AttributeError):
        raise InvalidValue("Invalid page token: not a token this server issued.") from None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidValue("Invalid page token: not a token this server issued.")
    if found != query:
        raise InvalidValue(
            "Invalid page token: the experiment ids, filter or order in the page token do not "
            "match the request's."
        )
    return offset
