"""Registry searches in MLflow's syntax: `registered-models/search` and `model-versions/search`.

Filters are `clause AND clause ...`. Registered models: `name` (= != LIKE ILIKE IN NOT IN) and
`tags.<key>` / `tag.<key>` (= != LIKE ILIKE, the key optionally in backticks). Model versions
add `run_id` (also IN, NOT IN), `source_path` and `version_number` (= != < <= > >= with an
integer). Every tag clause must match a tag the entity has, except MLflow's prompt marker
`mlflow.prompt.is_prompt`: prompts are left out unless the filter asks for them, which is what
the client's own exclusion clause (``tag.`mlflow.prompt.is_prompt` != 'true'``) relies on.
Orderings are `<key> [ASC|DESC]`, each key once, with MLflow's tie-breakers appended.
"""

from dataclasses import dataclass

from tracking.errors import InvalidValue
from tracking.registry import IS_PROMPT_TAG, MAX_SEARCH_MODELS, MAX_SEARCH_VERSIONS
from tracking.search import FilterSyntax, decode_token, joined_clauses, unquote
from tracking.store import Clause, Order

_STRING_OPS = ("=", "!=", "LIKE", "ILIKE")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
_TAG_PREFIXES = ("tag", "tags")
_ATTRIBUTE_PREFIXES = ("attribute",)


@dataclass(frozen=True, slots=True)
class Grammar:
    """What one registry search accepts: attribute -> "string" or "number", the attributes that
    take IN lists, and order_by key -> the field it sorts by."""

    attributes: dict[str, str]
    listable: frozenset[str]
    orders: dict[str, str]
    tie_breakers: tuple[Order, ...]
    default_order: tuple[str, ...]
    max_results: int


MODELS = Grammar(
    attributes={"name": "string"},
    listable=frozenset({"name"}),
    orders={
        "name": "name",
        "timestamp": "last_updated_timestamp",
        "last_updated_timestamp": "last_updated_timestamp",
        "creation_timestamp": "creation_timestamp",
    },
    tie_breakers=(Order("attribute", "name"),),
    default_order=(),
    max_results=MAX_SEARCH_MODELS,
)
VERSIONS = Grammar(
    attributes={
        "name": "string",
        "run_id": "string",
        "source_path": "string",
        "version_number": "number",
    },
    listable=frozenset({"name", "run_id"}),
    orders={
        "name": "name",
        "version_number": "version",
        "creation_timestamp": "creation_timestamp",
        "last_updated_timestamp": "last_updated_timestamp",
    },
    tie_breakers=(Order("attribute", "name"), Order("attribute", "version", ascending=False)),
    default_order=("last_updated_timestamp DESC", "name ASC", "version_number DESC"),
    max_results=MAX_SEARCH_VERSIONS,
)


@dataclass(frozen=True, slots=True)
class RegistrySearch:
    """A parsed search. Attribute clauses name fields of the entity (`source_path` is `source`,
    `version_number` is `version`); `exclude_prompts` asks the store to leave out every model
    (or version of a model) tagged as a prompt."""

    clauses: tuple[Clause, ...] = ()
    order_by: tuple[Order, ...] = ()
    max_results: int = 100
    offset: int = 0
    exclude_prompts: bool = True


_FIELDS = {"source_path": "source", "version_number": "version"}


def parse_search(
    grammar: Grammar,
    filter_text: str | None,
    order_by: list[str] | None,
    max_results: int,
    page_token: str | None,
) -> RegistrySearch:
    if not 1 <= max_results <= grammar.max_results:
        raise InvalidValue(
            "Invalid value for request parameter max_results. It must be at most "
            f"{grammar.max_results}, but got value {max_results}"
            if max_results > 0
            else f"Invalid value for max_results: it must be a positive integer, got {max_results}"
        )
    clauses = parse_filter(filter_text or "", grammar)
    querying_prompts = _asks_for_prompts(clauses)
    if not querying_prompts:
        clauses = tuple(c for c in clauses if (c.kind, c.key) != ("tag", IS_PROMPT_TAG))
    return RegistrySearch(
        clauses=clauses,
        order_by=parse_order_by(order_by or list(grammar.default_order), grammar),
        max_results=max_results,
        offset=decode_token(page_token),
        exclude_prompts=not querying_prompts,
    )


def _asks_for_prompts(clauses: tuple[Clause, ...]) -> bool:
    """MLflow's rule: the first clause on the prompt tag decides, `= 'true'` or `!= 'false'`."""
    for clause in clauses:
        if (clause.kind, clause.key) == ("tag", IS_PROMPT_TAG):
            value = str(clause.value).lower()
            return (clause.op, value) in (("=", "true"), ("!=", "false"))
    return False


def parse_filter(text: str, grammar: Grammar) -> tuple[Clause, ...]:
    if not text.strip():
        return ()
    try:
        return joined_clauses(text, lambda tokens: _clause(tokens, grammar))
    except (ValueError, IndexError) as exc:  # ours, or the tokenizer's
        raise InvalidValue(f"Invalid filter {text!r}: {exc or 'it ends too early'}.") from None


def _clause(tokens: list[tuple[str, str]], grammar: Grammar) -> Clause:
    kind, key = _entity(tokens, grammar)
    op = _operator(tokens)
    if kind == "tag":
        if op not in _STRING_OPS:
            raise FilterSyntax(f"{op} cannot compare tags; use one of {', '.join(_STRING_OPS)}")
        return Clause("tag", key, op, _string(tokens, f"tag {key!r}"))
    field = _FIELDS.get(key, key)
    if op in ("IN", "NOT IN"):
        if key not in grammar.listable:
            raise FilterSyntax(f"{op} is only supported for {', '.join(sorted(grammar.listable))}")
        return Clause("attribute", field, op, _string_list(tokens))
    if grammar.attributes[key] == "number":
        if op not in _NUMBER_OPS:
            raise FilterSyntax(f"{op} cannot compare {key}")
        return Clause("attribute", field, op, _integer(tokens, key))
    if op not in _STRING_OPS:
        raise FilterSyntax(f"{op} cannot compare {key}; use one of {', '.join(_STRING_OPS)}, IN")
    return Clause("attribute", field, op, _string(tokens, key))


def _entity(tokens: list[tuple[str, str]], grammar: Grammar) -> tuple[str, str]:
    token_kind, text = tokens.pop(0)
    if token_kind == "backtick":  # `name`
        text = text[1:-1]
    elif token_kind != "word":
        raise FilterSyntax(f"expected a name, got {text!r}")
    prefix, dot, key = text.partition(".")
    if not dot:
        kind, key = "attribute", text
    elif prefix in _TAG_PREFIXES:
        kind = "tag"
    elif prefix in _ATTRIBUTE_PREFIXES:
        kind = "attribute"
    else:
        raise FilterSyntax(f"invalid entity type {prefix!r}; valid types are attribute, tag, tags")
    if not key and tokens and tokens[0][0] in ("backtick", "string"):
        key = tokens.pop(0)[1][1:-1]
    if not key:
        raise FilterSyntax(f"a {kind} name is missing")
    if kind == "attribute" and key not in grammar.attributes:
        raise FilterSyntax(
            f"invalid attribute {key!r}; valid attributes: {', '.join(grammar.attributes)}"
        )
    return kind, key


def _operator(tokens: list[tuple[str, str]]) -> str:
    token_kind, text = tokens.pop(0)
    if token_kind == "op":
        return "!=" if text == "<>" else text
    word = text.upper() if token_kind == "word" else ""
    if word in ("LIKE", "ILIKE", "IN"):
        return word
    if word == "NOT" and tokens and tokens[0][1].upper() == "IN":
        tokens.pop(0)
        return "NOT IN"
    raise FilterSyntax(f"expected a comparison operator, got {text!r}")


def _string(tokens: list[tuple[str, str]], what: str) -> str:
    token_kind, text = tokens.pop(0)
    if token_kind != "string":
        raise FilterSyntax(f"{what} needs a quoted string value, got {text!r}")
    return unquote(text)


def _integer(tokens: list[tuple[str, str]], what: str) -> int:
    token_kind, text = tokens.pop(0)
    body = unquote(text) if token_kind == "string" else text
    if token_kind not in ("string", "number") or not body.lstrip("-").isdigit():
        raise FilterSyntax(f"{what} needs an integer value, got {text!r}")
    return int(body)


def _string_list(tokens: list[tuple[str, str]]) -> tuple[str, ...]:
    if tokens.pop(0)[1] != "(":
        raise FilterSyntax("IN needs a parenthesised list")
    values = []
    while True:
        values.append(_string(tokens, "an IN list"))
        separator = tokens.pop(0)[1]
        if separator == ")":
            return tuple(values)
        if separator != ",":
            raise FilterSyntax("expected ',' or ')' in the IN list")


def parse_order_by(items: list[str], grammar: Grammar) -> tuple[Order, ...]:
    orders: list[Order] = []
    for item in items:
        words = item.replace("`", " ").split()
        if not words or len(words) > 2:
            raise InvalidValue(f"Invalid order_by clause '{item}'. Could not be parsed.")
        key = words[0].removeprefix("attribute.").removeprefix("attributes.")
        field = grammar.orders.get(key)
        if field is None:
            raise InvalidValue(
                f"Invalid order by key '{key}' specified. Valid keys are "
                f"{', '.join(grammar.orders)}."
            )
        direction = words[1].upper() if len(words) == 2 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise InvalidValue(f"Invalid ordering key in order_by clause '{item}'.")
        if any(order.key == field for order in orders):
            raise InvalidValue(f"`order_by` contains duplicate fields: {items}")
        orders.append(Order("attribute", field, direction == "ASC"))
    for tie in grammar.tie_breakers:
        if not any(order.key == tie.key for order in orders):
            orders.append(tie)
    return tuple(orders)
