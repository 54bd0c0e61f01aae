"""Stage 4: the record-level rules, column-wide over one batch's table.

The stage has three layers, each a module: ``validator.buffers`` reads the Arrow columns and
buffers (numpy, no rule), ``validator.record_rules`` holds the rules (from the schema, one
function per kind), ``validator.messages`` the wording. This module is the entry point the
readers and the piece import:

- ``check_batch(table, fmt)``: the field rules over a reader's table -> ``Finding``s.
- ``check_csv_header(names)``: the CSV header -> ``HeaderProblem``s.
- ``check_json_object(obj)``: the slow path for one parsed JSON line that msgspec refused.
- ``endpoint_sizes(table, fmt)``: each row's size as compact JSON.

A value that is null (an empty CSV cell, a JSON null) or an empty string is absent: no value
rule applies to it, and ``REQUIRED_MISSING`` counts it as missing.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from validator.buffers import DATE_TIME_PATTERN, E164_PATTERN, json_sizes
from validator.messages import suggest_field
from validator.record_rules import (
    Finding,
    HeaderProblem,
    check_attributes,
    check_csv_header,
    check_json_object,
    check_numbers,
    check_required,
    check_size,
    check_values,
    prepare,
)
from validator.schema import load_schema

__all__ = [
    "DATE_TIME_PATTERN",
    "E164_PATTERN",
    "Finding",
    "HeaderProblem",
    "check_batch",
    "check_csv_header",
    "check_json_object",
    "endpoint_sizes",
    "suggest_field",
]


def endpoint_sizes(table: pa.Table, fmt: str) -> np.ndarray:
    """Per row, the byte length of the endpoint as compact JSON (what ``orjson.dumps`` gives
    for it with numbers as floats, nulls and empty attributes left out); ``fmt`` is CSV or JSON.
    Columns that break a type rule and unknown columns are not counted."""
    schema = load_schema()
    batch = prepare(table, fmt.upper(), schema, [])
    return json_sizes(schema, batch, None, exact=True)[0]


def check_batch(table: pa.Table, fmt: str) -> list[Finding]:
    """Every record-level rule over one batch's table (``fmt``: ``CSV`` or ``JSON``).

    The table has one row per record and dotted column names (nested structs of the schema's
    objects are flattened here if a reader left them). Findings come per rule and field, rows
    ascending; the severity of a code is ``load_schema().severity(code)``.
    """
    schema = load_schema()
    if table.num_rows == 0:
        return []
    findings: list[Finding] = []
    batch = prepare(table, fmt.upper(), schema, findings)
    findings += check_required(schema, batch)
    findings += check_values(schema, batch)
    findings += check_numbers(schema, batch)
    findings += check_attributes(schema, batch)
    findings += check_size(schema, batch)
    return findings
