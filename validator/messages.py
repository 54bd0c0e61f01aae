"""The check stage's wording: every message a record-level rule gives, and the near matches
it suggests (``did you mean ...?``).

A message is built only for a row that failed (``per_value`` builds each distinct value's
once); values are quoted on one line and cut after ``QUOTE_LIMIT`` characters (``quote``).
"""

from __future__ import annotations

import datetime
import difflib
import math
import re
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from validator.buffers import E164_PATTERN
from validator.phone import to_e164
from validator.schema import NumberRule, Schema, ValueRule, load_schema

QUOTE_LIMIT = 40  # longer values are cut in messages


_CONTROL = {i: f"\\u{i:04x}" for i in range(32)} | {9: "\\t", 10: "\\n", 13: "\\r"}


def quote(value: Any) -> str:
    """A value for a message: strings quoted, cut after QUOTE_LIMIT characters, one line."""
    if isinstance(value, str):
        text = value if len(value) <= QUOTE_LIMIT else value[: QUOTE_LIMIT - 1] + "…"
        return "'" + text.translate(_CONTROL) + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value).replace("inf", "Infinity").replace("nan", "NaN")
    if value is None:
        return "null"
    return str(value)


def describe(value: Any) -> str:
    """What a JSON value is, for FIELD_TYPE messages: ``a string ('abc')``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({quote(value)})"
    if isinstance(value, str):
        return f"a string ({quote(value)})"
    if isinstance(value, int | float):
        return f"a number ({quote(value)})"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def or_list(values: Iterable[str]) -> str:
    items = list(values)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def suggest_field(name: str) -> str | None:
    """The supported dotted field ``name`` most likely meant (``channeltype`` -> ``ChannelType``),
    or None. Tries stray spaces or a BOM, a case slip, a near-miss map prefix
    (``Attribute.plan`` -> ``Attributes.plan``), then difflib over the fixed fields."""
    schema = load_schema()
    cleaned = name.strip().lstrip("\ufeff").strip()
    if cleaned != name and schema.is_supported(cleaned):
        return cleaned
    lowered = cleaned.lower()
    fixed = {f.lower(): f for f in schema.fields}
    if lowered in fixed:
        return fixed[lowered]
    for prefix in sorted(schema.maps, key=len, reverse=True):
        if lowered.startswith(prefix.lower() + ".") and len(cleaned) > len(prefix) + 1:
            return prefix + cleaned[len(prefix) :]
    for i, char in enumerate(cleaned):
        if char != "." or i + 1 >= len(cleaned):
            continue
        head = cleaned[:i].lower()
        close = difflib.get_close_matches(head, [p.lower() for p in schema.maps], n=1, cutoff=0.8)
        if close:
            prefix = next(p for p in schema.maps if p.lower() == close[0])
            return f"{prefix}.{cleaned[i + 1 :]}"
    if cleaned in schema.maps:
        return f"{cleaned}.<name>"
    by_last: dict[str, list[str]] = {}
    for f in schema.fields:
        by_last.setdefault(f.rpartition(".")[2].lower(), []).append(f)
    if len(by_last.get(lowered, ())) == 1:
        return by_last[lowered][0]
    close = difflib.get_close_matches(lowered, list(fixed), n=1, cutoff=0.85)
    return fixed[close[0]] if close else None


def unknown_message(name: str, what: str) -> str:
    """The message for an unknown name; the problem's field already shows the name."""
    if not name:
        return f"an empty name is not {what}"
    hint = suggest_field(name)
    if hint is None or hint == name:
        return f"not {what}"
    if hint.lower() == name.lower():
        return f"not {what}; names are case-sensitive: did you mean {quote(hint)}?"
    return f"not {what}; did you mean {quote(hint)}?"


def list_item_problem(items: list[Any]) -> str | None:
    for i, item in enumerate(items, 1):
        if not isinstance(item, str):
            return f"expected an array of strings, got {describe(item)} as item {i}"
    return None


def per_value(values: list[Any], make: Callable[[Any], str]) -> list[str]:
    """One message per value, each distinct value's built once (a bad file repeats itself)."""
    memo: dict[Any, str] = {}
    out = []
    for value in values:
        key = value if isinstance(value, str | int | float | bool | None) else repr(value)
        text = memo.get(key)
        if text is None:
            text = memo[key] = make(value)
        out.append(text)
    return out


@cache
def _lower_map(values: frozenset[str] | tuple[str, ...]) -> dict[str, str]:
    return {v.lower(): v for v in sorted(values)}


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def value_ok_py(rule: ValueRule, value: str) -> bool:
    """``_value_ok`` for one value, in Python: for messages, not for whole columns."""
    if rule.enum is not None and value not in rule.enum:
        return False
    if rule.values is not None and value not in rule.values:
        return False
    if rule.pattern is not None and not _regex(rule.pattern).fullmatch(value):
        return False
    if rule.calendar_date:
        month, day = (5, 8) if value[4:5] == "-" else (4, 6)
        try:
            datetime.date(int(value[0:4]), int(value[month : month + 2]), int(value[day : day + 2]))
        except ValueError:
            return False
    return True


def value_message(schema: Schema, rule: ValueRule, value: str) -> str:
    q = quote(value)
    ref = rule.values_ref or ""
    if ref.startswith("iso3166-1.json"):
        upper = value.strip().upper()
        alpha2 = schema.alpha3_to_alpha2.get(upper)
        if alpha2:
            return (
                f"{q} is an ISO 3166-1 alpha-3 code; Pinpoint expects alpha-2: "
                f"{quote(alpha2)} ({schema.country_names.get(alpha2, alpha2)})"
            )
        reserved = schema.reserved_to_alpha2.get(upper)
        if reserved:
            return (
                f"{q} is not {rule.what} (it is only reserved); the code for "
                f"{schema.country_names.get(reserved, reserved)} is {quote(reserved)}"
            )
    text = f"{q} is not {rule.what}"
    suggestion = suggest_value(schema, rule, value)
    if rule.pattern is None and suggestion:
        # a value list: the near match says more than the list or the example
        return f"{text}; did you mean {quote(suggestion)}?"
    if rule.calendar_date and rule.pattern and _regex(rule.pattern).fullmatch(value):
        return f"{q} is not a real date"
    if rule.enum is not None:
        text += f" ({or_list(rule.enum)})"
    if rule.hint:
        text += f": {rule.hint}"
    if suggestion:
        text += f"; did you mean {quote(suggestion)}?"
    elif ref == "join" and value.strip().lower() in schema.languages:
        text += "; it names a language but no country"
    elif rule.pattern and rule.pattern.startswith("^\\+") and value.strip().isdigit():
        text += "; it has no leading '+'"
    return text


def suggest_value(schema: Schema, rule: ValueRule, value: str) -> str | None:
    pool = rule.enum if rule.enum is not None else rule.values
    stripped = value.strip()
    if pool is not None:
        hit = _lower_map(pool).get(stripped.lower().replace("-", "_"))
        if hit:
            return hit
        if rule.values_ref == "join":
            return None
    if rule.pattern == E164_PATTERN:
        # libphonenumber, never text edits: only a valid number that carries its own country
        # code is suggested (a masked or national number gets none)
        number = to_e164(value)
        return number if number is not None and number != value else None
    candidates = [stripped]
    if rule.calendar_date:
        candidates.append(stripped.replace(" ", "T", 1))
    candidates.append(re.sub(r"\s", "", stripped))
    for candidate in candidates:
        if candidate and candidate != value and value_ok_py(rule, candidate):
            return candidate
    return None


def number_message(schema: Schema, rule: NumberRule, value: Any) -> str:
    number = _regex(schema.number_text_pattern)
    if isinstance(value, str) and number.fullmatch(value):
        return f"{quote(value)} is not a finite number (too large for a double)"
    if isinstance(value, float):
        return f"{quote(value)} is not a finite number"
    text = f"{quote(value)} is not {rule.what}"
    if isinstance(value, str):
        for candidate in (value.strip(), value.strip().replace(",", ".", 1)):
            if number.fullmatch(candidate) and math.isfinite(float(candidate)):
                return f"{text}; did you mean {quote(candidate)}?"
    return text


def range_message(what: str, span: str, value: Any) -> str:
    return f"{quote(value)} is not {what} ({span})"


# -- the wording of the other rules, in the order of the rule table ------------------------------

EMPTY_ATTRIBUTE_NAME = "an attribute name cannot be empty"


def expected(what: str, value: Any) -> str:
    """FIELD_TYPE: ``expected a string, got a number (5)``."""
    return f"expected {what}, got {describe(value)}"


def is_not(value: Any, what: str) -> str:
    return f"{quote(value)} is not {what}"


def array_item_problem(value: Any) -> str:
    """FIELD_TYPE for a JSON array that holds something other than strings."""
    return list_item_problem(value) or "expected an array of strings"


def dotted_name_in_json(parts: list[str]) -> str:
    """FIELD_UNKNOWN for a dotted JSON key that names a field: how to nest it."""
    nest = "".join(f'{{"{part}": ' for part in parts) + "..." + "}" * len(parts)
    return f"not an endpoint field: in JSON a dotted name is nested, {nest}"


def header_repeats(schema: Schema, name: str, first_column: int) -> str:
    """CSV_HEADER_DUPLICATE; ``first_column`` is 0-based."""
    return (
        f"{quote(name)} repeats column {first_column + 1}; only "
        f"{or_list([p + '.*' for p, m in schema.maps.items() if m.repeatable])} "
        "headers may repeat (one value each)"
    )


def required_missing(unless: str, fields: Iterable[str]) -> str:
    needs = " and ".join(fields)
    return f"missing: an endpoint without an {unless} is new, and a new endpoint needs {needs}"


def range_span(low: float, high: float) -> str:
    return f"{number_text(low)}..{number_text(high)}"


def attribute_name_too_long(attr: str, limit: int) -> str:
    return f"attribute name {quote(attr)} has {len(attr)} characters; at most {limit}"


def attribute_name_characters(attr: str, pattern: str, hint: str | None) -> str:
    """The characters of an attribute name that its pattern refuses, each named once."""
    bad = sorted({c for c in attr if not re.fullmatch(pattern, c)})
    message = f"attribute name {quote(attr)} contains {or_list([quote(c) for c in bad])}"
    return message + (f"; {hint}" if hint else "")


def too_many_values(count: int, limit: int) -> str:
    return f"{count} values; at most {limit} per attribute"


def value_too_long(items: list[str | None], limit: int) -> str:
    """The first value of an attribute over ``limit`` characters, and how many more are."""
    long = [v for v in items if v is not None and len(v) > limit]
    text = f"value {quote(long[0])} has {len(long[0])} characters; at most {limit}"
    if len(long) > 1:
        more = len(long) - 1
        text += f" (and {more} more value{'s' if more > 1 else ''} over {limit})"
    return text


def endpoint_too_large(size: int, limit: int) -> str:
    kb = f"{limit / 1024:g} KB" if limit % 1024 == 0 else f"{limit:,} bytes"
    return f"the endpoint is {size:,} bytes as JSON; Pinpoint allows {kb} ({limit:,} bytes)"
