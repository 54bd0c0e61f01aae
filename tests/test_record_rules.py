"""record_rules.py: each kind of rule on its own, over a prepared batch (the whole stage, in
order, is tests/test_check.py)."""

from __future__ import annotations

import pyarrow as pa

from validator.buffers import Batch
from validator.record_rules import (
    Finding,
    check_attributes,
    check_numbers,
    check_required,
    check_size,
    check_values,
    prepare,
)
from validator.schema import load_schema


def _prepared(fmt: str = "CSV", **columns: list[object]) -> tuple[Batch, list[Finding]]:
    table = pa.table({name.replace("__", "."): values for name, values in columns.items()})
    findings: list[Finding] = []
    return prepare(table, fmt, load_schema(), findings), findings


def _codes(found: list[Finding]) -> list[tuple[str, str, list[int]]]:
    return [(f.code, f.field, f.rows.tolist()) for f in found]


def test_each_rule_kind_finds_only_its_own_codes() -> None:
    schema = load_schema()
    batch, early = _prepared(
        ChannelType=["SMS", "FAX", None],
        Address=["+12065550100", "+12065550101", "+12065550102"],
        Location__Latitude=["1.5", "91", None],
    )
    assert early == []
    assert _codes(check_required(schema, batch)) == [("REQUIRED_MISSING", "ChannelType", [2])]
    assert _codes(check_values(schema, batch)) == [("CHANNEL_TYPE", "ChannelType", [1])]
    assert _codes(check_numbers(schema, batch)) == [("COORDINATE_RANGE", "Location.Latitude", [1])]
    assert check_attributes(schema, batch) == []
    assert check_size(schema, batch) == []


def test_prepare_reports_json_types_on_the_way() -> None:
    _, found = _prepared("JSON", Id=["a", "b"], ChannelType=[1, 2])
    assert _codes(found) == [("FIELD_TYPE", "ChannelType", [0, 1])]
    assert found[0].messages == [
        "expected a string, got a number (1)",
        "expected a string, got a number (2)",
    ]
