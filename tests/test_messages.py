"""messages.py: the wording of the record-level rules, exact to the character."""

from __future__ import annotations

from validator.messages import (
    QUOTE_LIMIT,
    endpoint_too_large,
    expected,
    header_repeats,
    per_value,
    quote,
    required_missing,
    suggest_field,
    value_too_long,
)
from validator.schema import load_schema


def test_quote_keeps_a_value_on_one_line_and_short() -> None:
    assert quote("a\tb\nc\x01") == "'a\\tb\\nc\\u0001'"
    long = "x" * (QUOTE_LIMIT + 5)
    assert quote(long) == "'" + "x" * (QUOTE_LIMIT - 1) + "…'"
    assert [quote(v) for v in (True, None, float("inf"), float("nan"), 5)] == [
        "true",
        "null",
        "Infinity",
        "NaN",
        "5",
    ]


def test_type_and_required_wording() -> None:
    assert expected("a string", 5) == "expected a string, got a number (5)"
    assert expected("a number", [1]) == "expected a number, got an array"
    assert required_missing("Id", ["ChannelType", "Address"]) == (
        "missing: an endpoint without an Id is new, and a new endpoint needs ChannelType and "
        "Address"
    )


def test_header_repeats_names_the_repeatable_maps() -> None:
    text = header_repeats(load_schema(), "Address", 1)
    assert text.startswith("'Address' repeats column 2; only ")
    assert text.endswith(" headers may repeat (one value each)")
    assert "Attributes.*" in text


def test_value_too_long_counts_the_others() -> None:
    assert value_too_long(["ok", "x" * 5], 4) == "value 'xxxxx' has 5 characters; at most 4"
    assert value_too_long(["x" * 5, None, "y" * 6, "z" * 7], 4) == (
        "value 'xxxxx' has 5 characters; at most 4 (and 2 more values over 4)"
    )


def test_endpoint_too_large_in_kb_or_bytes() -> None:
    assert endpoint_too_large(16_385, 16_384) == (
        "the endpoint is 16,385 bytes as JSON; Pinpoint allows 16 KB (16,384 bytes)"
    )
    assert endpoint_too_large(1_001, 1_000) == (
        "the endpoint is 1,001 bytes as JSON; Pinpoint allows 1,000 bytes (1,000 bytes)"
    )


def test_per_value_builds_each_distinct_message_once() -> None:
    made: list[object] = []

    def make(value: object) -> str:
        made.append(value)
        return f"<{value}>"

    assert per_value(["a", "b", "a", None, ["x"], ["x"]], make) == [
        "<a>",
        "<b>",
        "<a>",
        "<None>",
        "<['x']>",
        "<['x']>",
    ]
    assert made == ["a", "b", None, ["x"]]


def test_suggest_field_near_misses() -> None:
    assert suggest_field("channeltype") == "ChannelType"
    assert suggest_field(" Address") == "Address"
    assert suggest_field("Attribute.plan") == "Attributes.plan"
    assert suggest_field("zzzz") is None
