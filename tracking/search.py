"""Search filters and orderings in MLflow's syntax, parsed into store-neutral `Clause`/`Order`s.

Supported: `clause AND clause ...`, where a clause is `<entity> <op> <value>`, and an entity is
`metrics.<key>`, `params.<key>`, `tags.<key>` or an attribute (`attributes.<name>` or `<name>`).
Keys may be quoted with backticks or double quotes. Metrics and numeric attributes compare with
= != < <= > >=; strings with = != LIKE ILIKE, and `run_id` also with IN (...). Anything else is a
400 naming the filter, never a guess.
"""

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from tracking.errors import InvalidValue
from tracking.store import Clause, Order

RUN_ATTRIBUTES = {
    "run_id": "string",
    "run_name": "string",
    "status": "string",
    "user_id": "string",
    "artifact_uri": "string",
    "start_time": "number",
    "end_time": "number",
}
EXPERIMENT_ATTRIBUTES = {
    "experiment_id": "string",
    "name": "string",
    "creation_time": "number",
    "last_update_time": "number",
}
RUN_KINDS = ("attribute", "metric", "param", "tag")
EXPERIMENT_KINDS = ("attribute", "tag")

_PREFIXES = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attr": "attribute",
    "attribute": "attribute",
    "attributes": "attribute",
    "run": "attribute",
}
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<backtick>`[^`]*`)
    | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<op>!=|<>|<=|>=|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][\w.\-]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Grammar:
    """What one search endpoint accepts."""

    kinds: tuple[str, ...]
    attributes: dict[str, str]


RUNS = Grammar(RUN_KINDS, RUN_ATTRIBUTES)
EXPERIMENTS = Grammar(EXPERIMENT_KINDS, EXPERIMENT_ATTRIBUTES)


class FilterSyntax(ValueError):
    """A filter that does not parse; the search modules turn it into InvalidValue."""


Token = tuple[str, str]
"""(kind, text): a token of a filter."""


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise FilterSyntax(f"unexpected text at {text[position:].strip()[:20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def joined_clauses(text: str, clause: Callable[[list[Token]], Clause]) -> tuple[Clause, ...]:
    """The clauses of a filter, joined by AND, each read by `clause` from the tokens left;
    FilterSyntax (or IndexError: it ends too early) when it does not parse."""
    tokens = tokenize(text)
    clauses = [clause(tokens)]
    while tokens:
        if tokens.pop(0)[1].upper() != "AND":
            raise FilterSyntax("clauses must be joined with AND")
        clauses.append(clause(tokens))
    return tuple(clauses)


def parse_filter(text: str, grammar: Grammar) -> tuple[Clause, ...]:
    try:
        return joined_clauses(text, lambda tokens: _clause(tokens, grammar))
    except (FilterSyntax, IndexError) as exc:
        detail = str(exc) or "it ends too early"
        raise InvalidValue(f"Invalid value for parameter 'filter' ({text!r}): {detail}.") from None


def parse_order_by(items: list[str], grammar: Grammar) -> tuple[Order, ...]:
    orders = []
    for item in items:
        try:
            tokens = tokenize(item)
            kind, key = _entity(tokens, grammar)
            direction = tokens.pop(0)[1].upper() if tokens else "ASC"
            if direction not in ("ASC", "DESC") or tokens:
                raise FilterSyntax("expected ASC or DESC after the name")
        except (FilterSyntax, IndexError) as exc:
            detail = str(exc) or "it ends too early"
            raise InvalidValue(
                f"Invalid value for parameter 'order_by' ({item!r}): {detail}."
            ) from None
        orders.append(Order(kind, key, direction == "ASC"))
    return tuple(orders)


def _clause(tokens: list[tuple[str, str]], grammar: Grammar) -> Clause:
    kind, key = _entity(tokens, grammar)
    numeric = kind == "metric" or (kind == "attribute" and grammar.attributes[key] == "number")
    op = _operator(tokens)
    if op == "IN":
        if (kind, key) != ("attribute", "run_id"):
            raise FilterSyntax("IN is only supported for run_id")
        return Clause(kind, key, op, string_list(tokens))
    allowed = _NUMBER_OPS if numeric else _STRING_OPS
    if op not in allowed:
        raise FilterSyntax(f"{op} cannot compare {describe(kind, key)}")
    token_kind, text = tokens.pop(0)
    if numeric and token_kind == "number":
        return Clause(kind, key, op, float(text))
    if not numeric and token_kind == "string":
        return Clause(kind, key, op, unquote(text))
    raise FilterSyntax(f"{describe(kind, key)} needs a {'number' if numeric else 'quoted string'}")


def _entity(tokens: list[tuple[str, str]], grammar: Grammar) -> tuple[str, str]:
    token_kind, text = tokens.pop(0)
    if token_kind != "word":
        raise FilterSyntax(f"expected a name, got {text!r}")
    prefix, dot, key = text.partition(".")
    if dot and prefix.lower() in _PREFIXES:
        kind = _PREFIXES[prefix.lower()]
        if not key and tokens and tokens[0][0] in ("backtick", "string"):
            key = unquote(tokens.pop(0)[1])
    else:
        kind, key = "attribute", text
    if kind not in grammar.kinds:
        raise FilterSyntax(f"{kind} names cannot be searched here")
    if kind == "attribute" and key not in grammar.attributes:
        raise FilterSyntax(f"unknown attribute {key!r}; known: {', '.join(grammar.attributes)}")
    if not key:
        raise FilterSyntax(f"a {kind} name is missing")
    return kind, key


def _operator(tokens: list[tuple[str, str]]) -> str:
    token_kind, text = tokens.pop(0)
    if token_kind == "op":
        return "!=" if text == "<>" else text
    if token_kind == "word" and text.upper() in ("LIKE", "ILIKE", "IN"):
        return text.upper()
    raise FilterSyntax(f"expected a comparison operator, got {text!r}")


def string_list(tokens: list[tuple[str, str]]) -> tuple[str, ...]:
    if tokens.pop(0)[1] != "(":
        raise FilterSyntax("IN needs a parenthesised list")
    values = []
    while True:
        token_kind, text = tokens.pop(0)
        if token_kind != "string":
            raise FilterSyntax("IN lists hold quoted strings")
        values.append(unquote(text))
        separator = tokens.pop(0)[1]
        if separator == ")":
            return tuple(values)
        if separator != ",":
            raise FilterSyntax("expected ',' or ')' in the IN list")


def unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body) if text[0] != "`" else body


def describe(kind: str, key: str) -> str:
    return key if kind == "attribute" else f"{kind} {key!r}"


def encode_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(token, validate=True))["offset"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        offset = None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidValue("Invalid value for parameter 'page_token': not a token we issued.")
    return offset
