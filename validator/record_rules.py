"""The record-level rules, one function per kind of rule, in the order of the rule table.

Every rule comes from the compiled schema (``validator.schema``): which fields exist, their
enums, patterns, value lists, ranges and limits, and each rule's code. A rule here finds the
failing rows with the column-wide helpers of ``validator.buffers`` and words them with
``validator.messages``; Python touches a row's value only after the row has failed.

A value that is null (an empty CSV cell, a JSON null) or an empty string is absent: no value
rule applies to it, and ``REQUIRED_MISSING`` counts it as missing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa

from validator.buffers import (
    Batch,
    Column,
    ListParts,
    calendar_ok,
    flat_columns,
    in_pool,
    is_list,
    is_number,
    is_text,
    json_sizes,
    list_chunks,
    matches,
    number_values,
    pick,
    repeats,
    size_bound,
    valid_np,
)
from validator.messages import (
    EMPTY_ATTRIBUTE_NAME,
    array_item_problem,
    attribute_name_characters,
    attribute_name_too_long,
    dotted_name_in_json,
    endpoint_too_large,
    expected,
    header_repeats,
    is_not,
    list_item_problem,
    number_message,
    per_value,
    range_message,
    range_span,
    required_missing,
    too_many_values,
    unknown_message,
    value_message,
    value_too_long,
)
from validator.schema import MapField, NumberRule, Schema, ValueRule, load_schema


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule broken by some rows of a table: their indices (ascending) and a message each."""

    code: str
    field: str
    rows: np.ndarray  # int64 table row indices, ascending
    messages: list[str]  # one per row


@dataclass(frozen=True, slots=True)
class HeaderProblem:
    """A problem with one CSV header name; ``column`` is its 0-based position."""

    column: int
    field: str
    code: str
    message: str


def check_csv_header(names: list[str]) -> list[HeaderProblem]:
    """CSV_HEADER_UNKNOWN and CSV_HEADER_DUPLICATE for a header row (without the BOM)."""
    schema = load_schema()
    problems: list[HeaderProblem] = []
    first_at: dict[str, int] = {}
    for column, name in enumerate(names):
        if not schema.is_supported(name):
            problems.append(
                HeaderProblem(
                    column, name, "CSV_HEADER_UNKNOWN", unknown_message(name, "a supported header")
                )
            )
            continue
        found = schema.map_for(name)
        repeatable = found is not None and found[0].repeatable
        if name in first_at and not repeatable:
            problems.append(
                HeaderProblem(
                    column,
                    name,
                    "CSV_HEADER_DUPLICATE",
                    header_repeats(schema, name, first_at[name]),
                )
            )
        first_at.setdefault(name, column)
    return problems


def _json_number_problem(
    value: Any, rule: NumberRule | None, type_code: str
) -> tuple[str, str] | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return type_code, expected("a number", value)
    try:
        finite = math.isfinite(float(value))
    except OverflowError:
        finite = False
    if not finite and rule is not None:
        return rule.code, is_not(value, rule.what)
    return None


def check_json_object(obj: Any) -> list[tuple[str | None, str, str]]:
    """(field, code, message) for one parsed JSON line: JSON_NOT_OBJECT, FIELD_UNKNOWN,
    FIELD_TYPE, and the number codes for a number no double can hold.

    A line with no problem here parses with ``pyarrow.json`` and ``arrow_json_schema()``,
    except for a key repeated within one object, which a parsed ``dict`` no longer shows.
    """
    schema = load_schema()
    if not isinstance(obj, dict):
        return [(None, schema.not_object_code, expected("an object", obj))]
    out: list[tuple[str | None, str, str]] = []
    _walk_json(schema, obj, "", schema.top_level, out)
    return out


def _walk_json(
    schema: Schema,
    obj: dict[str, Any],
    path: str,
    members: tuple[str, ...],
    out: list[tuple[str | None, str, str]],
) -> None:
    type_code = schema.type_code
    for key, value in obj.items():
        dotted = f"{path}.{key}" if path else key
        if key not in members:
            if "." in key and schema.is_supported(dotted):
                found = schema.map_for(dotted)
                parts = [*found[0].prefix.split("."), found[1]] if found else dotted.split(".")
                text = dotted_name_in_json(parts)
            else:
                text = unknown_message(dotted, "an endpoint field")
            out.append((dotted, schema.unknown_code, text))
            continue
        if value is None:
            continue
        if dotted in schema.containers:
            if isinstance(value, dict):
                _walk_json(schema, value, dotted, schema.containers[dotted], out)
            else:
                out.append((dotted, type_code, expected("an object", value)))
        elif dotted in schema.maps:
            if isinstance(value, dict):
                _walk_json_map(schema, schema.maps[dotted], value, out)
            else:
                out.append((dotted, type_code, expected("an object", value)))
        elif schema.fields[dotted] == "number":
            problem = _json_number_problem(value, schema.number_rules.get(dotted), type_code)
            if problem:
                out.append((dotted, *problem))
        elif not isinstance(value, str):
            out.append((dotted, type_code, expected("a string", value)))


def _walk_json_map(
    schema: Schema, m: MapField, obj: dict[str, Any], out: list[tuple[str | None, str, str]]
) -> None:
    for name, value in obj.items():
        dotted = f"{m.prefix}.{name}"
        if not name:
            out.append((dotted, schema.unknown_code, EMPTY_ATTRIBUTE_NAME))
            continue
        if value is None:
            continue
        if m.kind == "numbers":
            problem = _json_number_problem(value, m.number, schema.type_code)
            if problem:
                out.append((dotted, *problem))
        elif not isinstance(value, list):
            out.append((dotted, schema.type_code, expected("an array of strings", value)))
        else:
            message = list_item_problem(value)
            if message:
                out.append((dotted, schema.type_code, message))


def findings_of(code: str, name: str, rows: np.ndarray, messages: list[str]) -> list[Finding]:
    if rows.size == 0:
        return []
    return [Finding(code, name, rows.astype(np.int64, copy=False), messages)]


def type_finding(
    schema: Schema,
    name: str,
    col: pa.ChunkedArray,
    what: str,
    rows: np.ndarray | None = None,
    message: Callable[[Any], str] | None = None,
) -> list[Finding]:
    rows = np.flatnonzero(valid_np(col)) if rows is None else rows
    values = col.take(rows).to_pylist() if rows.size else []
    messages = [message(v) if message else expected(what, v) for v in values]
    return findings_of(schema.type_code, name, rows, messages)


def prepare(table: pa.Table, fmt: str, schema: Schema, findings: list[Finding]) -> Batch:
    """Sort the columns into kinds; for JSON report FIELD_UNKNOWN and FIELD_TYPE on the way."""
    batch = Batch(table.num_rows, fmt)
    json = fmt == "JSON"
    n = table.num_rows
    for name, col in flat_columns(table, schema):
        t = col.type
        if pa.types.is_null(t):
            continue
        found = schema.map_for(name)
        kind = schema.fields.get(name) or (found[0].kind if found else None)
        if kind is None:
            if not json:
                continue  # a CSV header problem, reported once per file
            if name in schema.containers or name in schema.maps:
                findings += type_finding(schema, name, col, "an object")
            else:
                rows = np.flatnonzero(valid_np(col))
                text = (
                    EMPTY_ATTRIBUTE_NAME
                    if name[:-1] in schema.maps
                    else unknown_message(name, "an endpoint field")
                )
                findings += findings_of(schema.unknown_code, name, rows, [text] * rows.size)
            continue
        m, attr = found if found else (None, None)
        if kind == "string":
            if is_text(t):
                batch.add(Column(name, col, kind))
            elif json:
                findings += type_finding(schema, name, col, "a string")
        elif kind in ("number", "numbers"):
            if is_number(t) or (is_text(t) and not json):
                batch.add(Column(name, col, kind, m, attr))
            elif json:
                findings += type_finding(schema, name, col, "a number")
        elif is_list(t) and (is_text(t.value_type) or pa.types.is_null(t.value_type)):
            if json:
                findings += _null_items(schema, name, col)
            if is_text(t.value_type):
                batch.add(Column(name, col, kind, m, attr))
        elif is_list(t) and json:
            findings += _non_string_items(schema, name, col)
        elif is_text(t) and not json:
            # a single CSV column not built as a list: one value per row
            wrapped = pa.ListArray.from_arrays(
                pa.array(np.arange(n + 1, dtype=np.int32)), col.combine_chunks()
            )
            batch.add(Column(name, pa.chunked_array([wrapped]), kind, m, attr))
        elif json:
            findings += type_finding(schema, name, col, "an array of strings")
    return batch


def _null_items(schema: Schema, name: str, col: pa.ChunkedArray) -> list[Finding]:
    """JSON rows whose array holds a null: not a string."""
    parts = []
    for start, chunk in list_chunks(col):
        if chunk.values.null_count == 0:
            continue
        lists = ListParts(chunk)
        nulls = lists.sums(~valid_np(lists.values))
        parts.append(np.flatnonzero(nulls > 0) + start)
    rows = np.concatenate(parts) if parts else np.empty(0, np.int64)
    return type_finding(
        schema,
        name,
        col,
        "",
        rows,
        array_item_problem,
    )


def _non_string_items(schema: Schema, name: str, col: pa.ChunkedArray) -> list[Finding]:
    """JSON rows whose array holds a non-null item of another type than string."""
    parts = []
    for start, chunk in list_chunks(col):
        lists = ListParts(chunk)
        parts.append(np.flatnonzero(lists.sums(valid_np(lists.values)) > 0) + start)
    rows = np.concatenate(parts) if parts else np.empty(0, np.int64)
    return type_finding(
        schema,
        name,
        col,
        "",
        rows,
        array_item_problem,
    )


def _rule_ok(rule: ValueRule, values: pa.Array) -> np.ndarray:
    """Per value, whether it passes the rule (``value_ok_py`` for a whole array); each test
    runs only on the values that passed the ones before."""
    ok = np.ones(len(values), bool)
    for pool in (rule.enum, rule.values):
        if pool is not None:
            ok &= in_pool(pool, values)
    if rule.pattern is not None:
        idx = np.flatnonzero(ok)
        ok[idx] = matches(rule.pattern, pick(values, idx))
    if rule.calendar_date:
        idx = np.flatnonzero(ok & valid_np(values))
        ok[idx] = calendar_ok(pick(values, idx))
    return ok


def _failing(rule: ValueRule, col: Column, candidates: np.ndarray) -> np.ndarray:
    """Rows among ``candidates`` whose value breaks ``rule``: judged once per distinct value
    when the column repeats itself, else on the candidates only (an SMS rule in a file that is
    mostly email)."""
    if not candidates.any():
        return np.empty(0, np.int64)
    lookups_only = rule.pattern is None and not rule.calendar_date
    if lookups_only or col.has_distinct() or repeats(col.array()):
        dictionary, codes = col.distinct()
        bad = ~_rule_ok(rule, dictionary)
        if not bad.any():
            return np.empty(0, np.int64)
        return np.flatnonzero(bad[codes] & candidates)
    idx = np.flatnonzero(candidates)
    return idx[~_rule_ok(rule, pick(col.array(), idx))]


def check_values(schema: Schema, batch: Batch) -> list[Finding]:
    out: list[Finding] = []
    for rule in schema.value_rules:
        col = batch.by_name.get(rule.field)
        if col is None:
            continue
        candidates = col.present()
        if rule.when_field is not None:
            when = batch.by_name.get(rule.when_field)
            if when is None:
                continue
            assert rule.when_values is not None
            candidates = candidates & when.in_set(rule.when_values)
        rows = _failing(rule, col, candidates)
        messages = per_value(col.data.take(rows).to_pylist(), partial(value_message, schema, rule))
        out += findings_of(rule.code, rule.field, rows, messages)
    return out


def check_required(schema: Schema, batch: Batch) -> list[Finding]:
    rule = schema.required
    n = batch.n

    def present(name: str) -> np.ndarray:
        col = batch.by_name.get(name)
        return col.present() if col is not None else np.zeros(n, bool)

    new = ~present(rule.unless)
    if not new.any():
        return []
    out: list[Finding] = []
    for name in rule.fields:
        rows = np.flatnonzero(new & ~present(name))
        message = required_missing(rule.unless, rule.fields)
        out += findings_of(rule.code, name, rows, [message] * rows.size)
    return out


def check_numbers(schema: Schema, batch: Batch) -> list[Finding]:
    out: list[Finding] = []
    for col in batch.columns:
        if col.kind == "number":
            rule = schema.number_rules.get(col.name)
        elif col.kind == "numbers" and col.map is not None:
            rule = col.map.number
        else:
            continue
        if rule is None:
            continue
        given, values = number_values(schema, batch, col)
        rows = np.flatnonzero(given & np.isnan(values))
        messages = per_value(col.data.take(rows).to_pylist(), partial(number_message, schema, rule))
        out += findings_of(rule.code, col.name, rows, messages)
        if rule.range_code is None:
            continue
        low = -np.inf if rule.minimum is None else rule.minimum
        high = np.inf if rule.maximum is None else rule.maximum
        with np.errstate(invalid="ignore"):
            rows = np.flatnonzero((values < low) | (values > high))
        span = range_span(low, high)
        messages = per_value(
            col.data.take(rows).to_pylist(),
            partial(range_message, rule.range_what or "in range", span),
        )
        out += findings_of(rule.range_code, col.name, rows, messages)
    return out


def check_attributes(schema: Schema, batch: Batch) -> list[Finding]:
    out: list[Finding] = []
    for col in batch.columns:
        m, attr = col.map, col.attr
        if m is None or attr is None:
            continue
        stats = col.lists() if col.kind == "strings" else None
        present = stats.count > 0 if stats is not None else number_values(schema, batch, col)[0]
        for rule in m.name_rules:
            message = None
            if rule.max_length is not None and len(attr) > rule.max_length:
                message = attribute_name_too_long(attr, rule.max_length)
            elif rule.pattern is not None and not re.fullmatch(rule.pattern, attr):
                message = attribute_name_characters(attr, rule.pattern, rule.hint)
            if message:
                rows = np.flatnonzero(present)
                out += findings_of(rule.code, col.name, rows, [message] * rows.size)
        if stats is None:
            continue
        if m.values_code and m.max_values is not None:
            rows = np.flatnonzero(stats.count > m.max_values)
            messages = [too_many_values(int(k), m.max_values) for k in stats.count[rows]]
            out += findings_of(m.values_code, col.name, rows, messages)
        if m.value_code and m.max_value_length is not None:
            limit = m.max_value_length
            rows = np.flatnonzero(stats.too_long > 0)
            messages = [value_too_long(items, limit) for items in col.data.take(rows).to_pylist()]
            out += findings_of(m.value_code, col.name, rows, messages)
    return out


def check_size(schema: Schema, batch: Batch) -> list[Finding]:
    limit = schema.limits.endpoint_size_bytes
    if size_bound(schema, batch) <= limit:
        return []
    size, slack = json_sizes(schema, batch, None, exact=False)
    maybe = np.flatnonzero(size + slack > limit)
    if maybe.size == 0:
        return []
    exact, _ = json_sizes(schema, batch, maybe, exact=True)
    over = exact > limit
    rows = maybe[over]
    messages = [endpoint_too_large(int(s), limit) for s in exact[over]]
    return findings_of("ENDPOINT_TOO_LARGE", "", rows, messages)
