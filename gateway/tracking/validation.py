"""Request parsing for the tracking API: every client mistake becomes a 400 naming the field.

A schema maps field names to `Spec(check, required)`; a check takes the field's dotted path and the
raw value and returns the converted value, or raises `InvalidParameter`. Types follow protobuf's
JSON mapping, as MLflow's server does: int64 may arrive as a number or a decimal string, a
double as a number or "NaN"/"Infinity", an enum as its name or number. Unknown fields are ignored.

A check may carry a `fast` attribute: the same conversion for the plain, valid values that most
requests send (an ASCII string, an int, a float), without building the field's path, which
returns SLOW for anything else; the check itself then decides, with its message. log-batch's
1,000 metrics are converted that way, each metric without a path (`record`, `array`).
"""

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.errors import InvalidParameter
from gateway.request_parts import decode_json

Check = Callable[[str, Any], Any]
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
FLOAT_WORDS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@dataclass(frozen=True, slots=True)
class Spec:
    check: Check
    required: bool = False
    repeated: bool = False
    """A list: in a GET, the query parameter may appear several times."""


Schema = dict[str, Spec]
SLOW = object()
"""What a `fast` conversion answers for a value it leaves to the check."""


def fast_of(check: Check) -> Callable[[Any], Any] | None:
    return getattr(check, "fast", None)


def with_fast(check: Check, fast: Callable[[Any], Any]) -> Check:
    check.fast = fast  # type: ignore[attr-defined]
    return check


def invalid(path: str, value: Any, expected: str) -> InvalidParameter:
    shown = _show(value)
    return InvalidParameter(
        f"Invalid value {shown} for parameter '{path}' supplied: expected {expected}."
    )


def _show(value: Any) -> str:
    if isinstance(value, dict | list):
        return f"of type {'object' if isinstance(value, dict) else 'array'}"
    text = json.dumps(value) if isinstance(value, str | int | float | bool | None) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def missing(path: str) -> InvalidParameter:
    return InvalidParameter(f"Missing value for required parameter '{path}'.")


# -- checks ------------------------------------------------------------------------------------


def string(path: str, value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(path, value, "a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(path, value, "valid UTF-8 text (no lone surrogates)") from None
    return value


with_fast(string, lambda value: value if type(value) is str and value.isascii() else SLOW)


def integer(path: str, value: Any) -> int:
    from_text = isinstance(value, str) and value.lstrip("-").isdigit() and len(value) < 24
    if from_text or (isinstance(value, float) and value.is_integer()):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(path, value, "an integer")
    if not INT64_MIN <= value <= INT64_MAX:
        raise invalid(path, value, "a 64-bit integer")
    return value


with_fast(integer, lambda v: v if type(v) is int and INT64_MIN <= v <= INT64_MAX else SLOW)


def number(path: str, value: Any) -> float:
    if isinstance(value, str) and value in FLOAT_WORDS:
        return FLOAT_WORDS[value]
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise invalid(path, value, "a number") from None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise invalid(path, value, "a number")
    try:
        return float(value)
    except OverflowError:
        raise invalid(path, value, "a number within double range") from None


def _fast_number(value: Any) -> Any:
    kind = type(value)
    if kind is float or (kind is int and INT64_MIN <= value <= INT64_MAX):
        return float(value)
    return SLOW


with_fast(number, _fast_number)


def boolean(path: str, value: Any) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise invalid(path, value, "true or false")
    return value


def enum(names: Sequence[str], first: int = 1) -> Check:
    """A protobuf enum: its name, or its number (names[0] is `first`)."""

    def check(path: str, value: Any) -> str:
        if isinstance(value, str) and value in names:
            return value
        if isinstance(value, str) and value.isdigit():  # a number in a query string
            value = int(value)
        is_number = isinstance(value, int) and not isinstance(value, bool)
        if is_number and 0 <= value - first < len(names):
            return names[value - first]
        raise invalid(path, value, "one of " + ", ".join(names))

    return check


def bounded(check: Check, low: int, high: int) -> Check:
    def bounded_check(path: str, value: Any) -> Any:
        converted = check(path, value)
        if not low <= converted <= high:
            raise invalid(path, value, f"a value from {low} to {high}")
        return converted

    return bounded_check


def limited(max_chars: int) -> Check:
    """A string of at most `max_chars` characters."""

    def check(path: str, value: Any) -> str:
        text = string(path, value)
        if len(text) > max_chars:
            raise InvalidParameter(
                f"Invalid value for parameter '{path}': longer than {max_chars} characters."
            )
        return text

    def fast(value: Any) -> Any:
        ok = type(value) is str and len(value) <= max_chars and value.isascii()
        return value if ok else SLOW

    return with_fast(check, fast)


def array(item: Check, max_items: int | None = None) -> Check:
    fast = fast_of(item)

    def check(path: str, value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise invalid(path, value, "an array")
        if max_items is not None and len(value) > max_items:
            raise InvalidParameter(
                f"Invalid value for parameter '{path}': at most {max_items} items are allowed."
            )
        if fast is None:
            return [item(f"{path}[{i}]", element) for i, element in enumerate(value)]
        items = []
        for i, element in enumerate(value):
            converted = fast(element)
            items.append(item(f"{path}[{i}]", element) if converted is SLOW else converted)
        return items

    return check


def listed(item: Check, max_items: int | None = None, required: bool = False) -> Spec:
    return Spec(array(item, max_items), required=required, repeated=True)


def one_to(limit: int, values: list[Any], request: str, noun: str) -> list[Any]:
    """`values` of a request that must name 1 to `limit` of them, with MLflow's messages
    (`request`: the request's name, e.g. SearchDatasets; `noun`: what one value is)."""
    if not values:
        raise InvalidParameter(f"{request} request must specify at least one {noun}.")
    if len(values) > limit:
        raise InvalidParameter(
            f"{request} request cannot specify more than {limit} {noun}s. "
            f"Received {len(values)} {noun}s."
        )
    return values


def record(factory: Callable[..., Any], schema: Schema) -> Check:
    """A nested object, converted with `factory(**fields)`."""

    def check(path: str, value: Any) -> Any:
        return factory(**parse_object(value, schema, prefix=f"{path}."))

    fields = [(name, fast_of(spec.check), spec.required) for name, spec in schema.items()]
    if any(fast is None for _, fast, _ in fields):
        return check

    def fast(value: Any) -> Any:
        if type(value) is not dict:
            return SLOW
        parsed = {}
        for name, convert, required in fields:
            raw = value.get(name)
            if raw is None or (required and raw == ""):
                if required:
                    return SLOW
                continue
            converted = convert(raw)  # type: ignore[misc]
            if converted is SLOW:
                return SLOW
            parsed[name] = converted
        return factory(**parsed)

    return with_fast(check, fast)


# -- bodies ------------------------------------------------------------------------------------


def parse_object(
    value: Any, schema: Schema, prefix: str = "", aliases: dict[str, str] | None = None
) -> dict[str, Any]:
    """Check the fields of `schema` in `value`; absent optional fields are left out."""
    if not isinstance(value, dict):
        where = f"parameter '{prefix[:-1]}'" if prefix else "The request body"
        raise InvalidParameter(f"{where} must be a JSON object, got {_kind(value)}.")
    for alias, name in (aliases or {}).items():
        if value.get(name) in (None, "") and value.get(alias) not in (None, ""):
            value = {**value, name: value[alias]}
    parsed: dict[str, Any] = {}
    for name, spec in schema.items():
        raw = value.get(name)
        if raw is None or (spec.required and raw == ""):
            if spec.required:
                raise missing(prefix + name)
            continue
        parsed[name] = spec.check(prefix + name, raw)
    return parsed


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


BODY = web.RequestKey("tracking_body", object)
"""The request's decoded JSON body, kept by `json_body` for a second look at fields its schema
does not hold (log-batch's model metrics), so the body is decoded once."""


async def json_body(
    request: web.Request, schema: Schema, aliases: dict[str, str] | None = None
) -> dict[str, Any]:
    body = request[BODY] = decode_json(await request.read())
    return parse_object(body, schema, aliases=aliases)


async def decoded_body(request: web.Request) -> Any:
    """The request's JSON body, decoded once per request."""
    if BODY not in request:
        request[BODY] = decode_json(await request.read())
    return request[BODY]


def query_params(
    request: web.Request, schema: Schema, aliases: dict[str, str] | None = None
) -> dict[str, Any]:
    """GET requests carry the fields as query parameters; repeated ones may appear many times."""
    values: dict[str, Any] = {}
    for name in request.query:
        spec = schema.get(name)
        repeated = spec is not None and spec.repeated
        values[name] = request.query.getall(name) if repeated else request.query.get(name)
    return parse_object(values, schema, aliases=aliases)


async def request_fields(
    request: web.Request, schema: Schema, aliases: dict[str, str] | None = None
) -> dict[str, Any]:
    if request.method == "GET":
        return query_params(request, schema, aliases)
    return await json_body(request, schema, aliases)
