"""Stage 4: the record-level rules, column-wide over one batch's table.

Every rule comes from the compiled schema (``validator.schema``): which fields exist, their
enums, patterns, value lists, ranges and limits, and each rule's code. The checks run as
Arrow compute kernels and numpy over whole columns, most of them straight on the Arrow buffers
(offsets, validity bitmaps, bytes); a value list is looked up once per distinct value of a
column; Python touches a row's value only after the row has failed, to write the message.
Three entry points:

- ``check_batch(table, fmt)``: the field rules over a reader's table -> ``Finding``s.
- ``check_csv_header(names)``: the CSV header -> ``HeaderProblem``s.
- ``check_json_object(obj)``: the slow path for one parsed JSON line that msgspec refused.

A value that is null (an empty CSV cell, a JSON null) or an empty string is absent: no value
rule applies to it, and ``REQUIRED_MISSING`` counts it as missing.
"""

from __future__ import annotations

import datetime
import difflib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from validator.phone import to_e164
from validator.schema import MapField, NumberRule, Schema, ValueRule, load_schema

__all__ = [
    "Finding",
    "HeaderProblem",
    "check_batch",
    "check_csv_header",
    "check_json_object",
    "endpoint_sizes",
    "suggest_field",
]

QUOTE_LIMIT = 40  # longer values are cut in messages


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


# -- messages -------------------------------------------------------------------------------------

_CONTROL = {i: f"\\u{i:04x}" for i in range(32)} | {9: "\\t", 10: "\\n", 13: "\\r"}


def _quote(value: Any) -> str:
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


def _describe(value: Any) -> str:
    """What a JSON value is, for FIELD_TYPE messages: ``a string ('abc')``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({_quote(value)})"
    if isinstance(value, str):
        return f"a string ({_quote(value)})"
    if isinstance(value, int | float):
        return f"a number ({_quote(value)})"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _or_list(values: Iterable[str]) -> str:
    items = list(values)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# -- near matches ---------------------------------------------------------------------------------


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


def _unknown_message(name: str, what: str) -> str:
    """The message for an unknown name; the problem's field already shows the name."""
    if not name:
        return f"an empty name is not {what}"
    hint = suggest_field(name)
    if hint is None or hint == name:
        return f"not {what}"
    if hint.lower() == name.lower():
        return f"not {what}; names are case-sensitive: did you mean {_quote(hint)}?"
    return f"not {what}; did you mean {_quote(hint)}?"


# -- CSV header -----------------------------------------------------------------------------------


def check_csv_header(names: list[str]) -> list[HeaderProblem]:
    """CSV_HEADER_UNKNOWN and CSV_HEADER_DUPLICATE for a header row (without the BOM)."""
    schema = load_schema()
    problems: list[HeaderProblem] = []
    first_at: dict[str, int] = {}
    for column, name in enumerate(names):
        if not schema.is_supported(name):
            problems.append(
                HeaderProblem(
                    column, name, "CSV_HEADER_UNKNOWN", _unknown_message(name, "a supported header")
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
                    f"{_quote(name)} repeats column {first_at[name] + 1}; only "
                    f"{_or_list([p + '.*' for p, m in schema.maps.items() if m.repeatable])} "
                    "headers may repeat (one value each)",
                )
            )
        first_at.setdefault(name, column)
    return problems


# -- JSON slow path -------------------------------------------------------------------------------


def _list_item_problem(items: list[Any]) -> str | None:
    for i, item in enumerate(items, 1):
        if not isinstance(item, str):
            return f"expected an array of strings, got {_describe(item)} as item {i}"
    return None


def _json_number_problem(
    value: Any, rule: NumberRule | None, type_code: str
) -> tuple[str, str] | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return type_code, f"expected a number, got {_describe(value)}"
    try:
        finite = math.isfinite(float(value))
    except OverflowError:
        finite = False
    if not finite and rule is not None:
        return rule.code, f"{_quote(value)} is not {rule.what}"
    return None


def check_json_object(obj: Any) -> list[tuple[str | None, str, str]]:
    """(field, code, message) for one parsed JSON line: JSON_NOT_OBJECT, FIELD_UNKNOWN,
    FIELD_TYPE, and the number codes for a number no double can hold.

    A line with no problem here parses with ``pyarrow.json`` and ``arrow_json_schema()``,
    except for a key repeated within one object, which a parsed ``dict`` no longer shows.
    """
    schema = load_schema()
    if not isinstance(obj, dict):
        return [(None, schema.not_object_code, f"expected an object, got {_describe(obj)}")]
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
                nest = "".join(f'{{"{part}": ' for part in parts) + "..." + "}" * len(parts)
                text = f"not an endpoint field: in JSON a dotted name is nested, {nest}"
            else:
                text = _unknown_message(dotted, "an endpoint field")
            out.append((dotted, schema.unknown_code, text))
            continue
        if value is None:
            continue
        if dotted in schema.containers:
            if isinstance(value, dict):
                _walk_json(schema, value, dotted, schema.containers[dotted], out)
            else:
                out.append((dotted, type_code, f"expected an object, got {_describe(value)}"))
        elif dotted in schema.maps:
            if isinstance(value, dict):
                _walk_json_map(schema, schema.maps[dotted], value, out)
            else:
                out.append((dotted, type_code, f"expected an object, got {_describe(value)}"))
        elif schema.fields[dotted] == "number":
            problem = _json_number_problem(value, schema.number_rules.get(dotted), type_code)
            if problem:
                out.append((dotted, *problem))
        elif not isinstance(value, str):
            out.append((dotted, type_code, f"expected a string, got {_describe(value)}"))


def _walk_json_map(
    schema: Schema, m: MapField, obj: dict[str, Any], out: list[tuple[str | None, str, str]]
) -> None:
    for name, value in obj.items():
        dotted = f"{m.prefix}.{name}"
        if not name:
            out.append((dotted, schema.unknown_code, "an attribute name cannot be empty"))
            continue
        if value is None:
            continue
        if m.kind == "numbers":
            problem = _json_number_problem(value, m.number, schema.type_code)
            if problem:
                out.append((dotted, *problem))
        elif not isinstance(value, list):
            out.append(
                (dotted, schema.type_code, f"expected an array of strings, got {_describe(value)}")
            )
        else:
            message = _list_item_problem(value)
            if message:
                out.append((dotted, schema.type_code, message))


# -- columns --------------------------------------------------------------------------------------


@dataclass
class _ListInfo:
    count: np.ndarray  # non-null values per row
    nbytes: np.ndarray  # UTF-8 bytes of those values per row
    too_long: np.ndarray  # values over the map's length limit per row


@dataclass
class _Column:
    """A usable column; what several checks need from it is computed once."""

    name: str
    data: pa.ChunkedArray
    kind: str  # "string", "number", "strings" (attribute), "numbers" (metric)
    map: MapField | None = None
    attr: str | None = None
    _nbytes: np.ndarray | None = None
    _present: np.ndarray | None = None
    _lists: _ListInfo | None = None
    _distinct: tuple[pa.Array, np.ndarray] | None = None

    def array(self) -> pa.Array:
        """The column as one array (``_flat_columns`` leaves one chunk)."""
        data = self.data
        return data.chunk(0) if data.num_chunks == 1 else data.combine_chunks()

    def nbytes(self) -> np.ndarray:
        """Text columns: UTF-8 bytes per row, 0 when null."""
        if self._nbytes is None:
            self._nbytes = _text_nbytes(self.data)
        return self._nbytes

    def present(self) -> np.ndarray:
        """Text columns: non-null and non-empty; attribute columns: at least one value.
        Shared: never change it in place."""
        if self._present is None:
            if self.kind == "strings":
                self._present = self.lists().count > 0
            elif self._nbytes is not None:
                self._present = self._nbytes > 0
            else:
                self._present = _text_present(self.data)
        return self._present

    def max_nbytes(self) -> int:
        """Text columns: at least the most UTF-8 bytes of any value (exactly, but for a null
        that a writer gave bytes)."""
        if self._nbytes is not None:
            return int(self._nbytes.max(initial=0))
        most = 0
        for chunk in _chunks(self.data):
            offsets = _offsets(chunk if _is_text(chunk.type) else pc.cast(chunk, pa.string()))
            most = max(most, int(np.max(offsets[1:] - offsets[:-1], initial=0)))
        return most

    def lists(self) -> _ListInfo:
        if self._lists is None:
            limit = self.map.max_value_length if self.map is not None else None
            self._lists = _list_info(self.data, limit)
        return self._lists

    def has_distinct(self) -> bool:
        return self._distinct is not None

    def distinct(self) -> tuple[pa.Array, np.ndarray]:
        """Text columns: the distinct values (null among them, if any) and per row the index
        of its value: one hash pass, shared by every rule on the column."""
        if self._distinct is None:
            encoded = pc.dictionary_encode(self.array(), null_encoding="encode")
            codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False))
            self._distinct = (encoded.dictionary, codes)
        return self._distinct

    def in_set(self, values: frozenset[str]) -> np.ndarray:
        """Text columns: per row, whether its value is one of ``values``."""
        dictionary, codes = self.distinct()
        return _in_pool(values, dictionary)[codes]


def _list_info(data: pa.ChunkedArray, limit: int | None) -> _ListInfo:
    counts, sizes, longs = [], [], []
    for _, chunk in _list_chunks(data):
        parts = _ListParts(chunk)
        item_bytes = _text_nbytes(parts.values)
        counts.append(parts.sums(_valid_np(parts.values)))
        sizes.append(parts.sums(item_bytes))
        too_long = np.zeros(len(chunk), np.int64)
        if limit is not None:
            # a value over the limit in characters is over it in bytes: count only those
            first, last = int(parts.offsets[0]), int(parts.offsets[-1])
            long = np.flatnonzero(item_bytes[first:last] > limit) + first  # the rows' items
            long = long[_np(pc.utf8_length(parts.values.take(long)), 0) > limit]
            if long.size:
                too_long = np.bincount(parts.rows_of(long), minlength=len(chunk)) * parts.valid
        longs.append(too_long)
    return _ListInfo(_concat(counts), _concat(sizes), _concat(longs))


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(0, np.int64)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


@dataclass
class _Batch:
    """A table's usable columns by kind, with what several checks share computed once."""

    n: int
    fmt: str
    columns: list[_Column] = field(default_factory=list)
    by_name: dict[str, _Column] = field(default_factory=dict)
    numbers: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def add(self, col: _Column) -> None:
        self.columns.append(col)
        self.by_name.setdefault(col.name, col)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def _flat_columns(table: pa.Table, schema: Schema) -> list[tuple[str, pa.ChunkedArray]]:
    """Columns by dotted name, with the schema's objects and maps flattened if still nested."""
    nested = set(schema.containers) | set(schema.maps)
    out: list[tuple[str, pa.ChunkedArray]] = []

    def visit(name: str, col: pa.ChunkedArray) -> None:
        if col.null_count == len(col):
            return  # no value in the batch: no rule can fail, it adds nothing to a size
        if col.num_chunks > 1:
            # a reader's many small blocks: one copy now beats per-chunk work in every check
            col = pa.chunked_array([col.combine_chunks()], col.type)
        col = _plain(col)
        if name in nested and pa.types.is_struct(col.type):
            for child_field, child in zip(col.type, col.flatten(), strict=True):
                visit(f"{name}.{child_field.name}", child)
        else:
            out.append((name, col))

    for name, col in zip(table.column_names, table.columns, strict=True):
        visit(name, col)
    return out


def _plain(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary-encoded and view strings (and lists of them) as plain strings."""
    t = col.type
    if pa.types.is_dictionary(t) and (_is_text(t.value_type) or _is_view(t.value_type)):
        return pc.cast(col, pa.string())
    if _is_view(t):
        return pc.cast(col, pa.string())
    if (pa.types.is_list_view(t) or _is_list(t)) and _is_view(t.value_type):
        return pc.cast(col, pa.list_(pa.string()))
    return col


def _is_view(t: pa.DataType) -> bool:
    return pa.types.is_string_view(t)


def _np(values: pa.ChunkedArray | pa.Array, fill: Any) -> np.ndarray:
    if values.null_count:
        values = pc.fill_null(values, fill)
    return np.asarray(values.to_numpy(zero_copy_only=False))


def _chunks(col: pa.ChunkedArray | pa.Array) -> list[pa.Array]:
    return col.chunks if isinstance(col, pa.ChunkedArray) else [col]


def _valid_np(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Per row, whether it is not null: read from the validity bitmaps where there are some."""
    if col.null_count == 0:
        return np.ones(len(col), bool)
    parts = []
    for chunk in _chunks(col):
        t, n, start = chunk.type, len(chunk), chunk.offset
        bitmap = chunk.buffers()[0] if _is_text(t) or _is_list(t) or _is_number(t) else None
        if chunk.null_count == 0:
            parts.append(np.ones(n, bool))
        elif bitmap is None:
            parts.append(_np(pc.is_valid(chunk), False))
        else:
            first = start // 8
            raw = np.frombuffer(bitmap, np.uint8, (start + n + 7) // 8 - first, first)
            bits = np.unpackbits(raw, bitorder="little")
            parts.append(bits[start % 8 : start % 8 + n].view(bool))
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def _offsets(chunk: pa.Array) -> np.ndarray:
    """The ``len + 1`` offsets of a string or list array into its data, zero-copy."""
    t = chunk.type
    if len(chunk) == 0:
        return np.zeros(1, np.int64)
    wide = pa.types.is_large_string(t) or pa.types.is_large_list(t)
    offsets = np.frombuffer(chunk.buffers()[1], np.int64 if wide else np.int32)
    return offsets[chunk.offset : chunk.offset + len(chunk) + 1]


def _text_present(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Per string, whether it is neither null nor empty."""
    parts = []
    for chunk in _chunks(col):
        if not _is_text(chunk.type):
            chunk = pc.cast(chunk, pa.string())
        offsets = _offsets(chunk)
        present = offsets[1:] > offsets[:-1]
        if chunk.null_count:
            present &= _valid_np(chunk)
        parts.append(present)
    return _concat(parts) if parts else np.zeros(0, bool)


def _text_nbytes(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """UTF-8 bytes per string (int64), 0 when null: from the offsets, not a kernel."""
    parts = []
    for chunk in _chunks(col):
        if not _is_text(chunk.type):
            chunk = pc.cast(chunk, pa.string())
        offsets = _offsets(chunk)
        size = np.diff(offsets).astype(np.int64)
        if chunk.null_count:
            size *= _valid_np(chunk)
        parts.append(size)
    return _concat(parts)


def _messages(values: list[Any], make: Callable[[Any], str]) -> list[str]:
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


def _findings(code: str, name: str, rows: np.ndarray, messages: list[str]) -> list[Finding]:
    if rows.size == 0:
        return []
    return [Finding(code, name, rows.astype(np.int64, copy=False), messages)]


def _type_finding(
    schema: Schema,
    name: str,
    col: pa.ChunkedArray,
    expected: str,
    rows: np.ndarray | None = None,
    describe: Callable[[Any], str] | None = None,
) -> list[Finding]:
    rows = np.flatnonzero(_valid_np(col)) if rows is None else rows
    values = col.take(rows).to_pylist() if rows.size else []
    messages = [
        describe(v) if describe else f"expected {expected}, got {_describe(v)}" for v in values
    ]
    return _findings(schema.type_code, name, rows, messages)


def _list_chunks(col: pa.ChunkedArray) -> Iterable[tuple[int, pa.Array]]:
    start = 0
    for chunk in col.chunks:
        yield start, chunk
        start += len(chunk)


class _ListParts:
    """One list chunk: its child values, per-row validity, and per-row sums over the child.

    A CSV's attribute lists have the same number of items in every row (one per repeated
    header); their sums are a few strided adds instead of a cumulative sum.
    """

    def __init__(self, chunk: pa.Array) -> None:
        self.offsets = _offsets(chunk)
        self.values: pa.Array = chunk.values
        self.valid = _valid_np(chunk)
        self.all_valid = chunk.null_count == 0
        n = len(chunk)
        self.n = n
        self.first = int(self.offsets[0])
        span = int(self.offsets[-1]) - self.first
        self.width = -1
        if n > 0 and span % n == 0:
            k = span // n
            if k == 0 or (np.diff(self.offsets) == k).all():
                self.width = k

    def rows_of(self, items: np.ndarray) -> np.ndarray:
        """The row of each child index (ascending) that some row holds."""
        return np.searchsorted(self.offsets, items, side="right") - 1

    def sums(self, weights: np.ndarray) -> np.ndarray:
        """Per row, the sum of its items' weights (weights index the child), 0 for null rows."""
        n, k = self.n, self.width
        if k == 0:
            return np.zeros(n, np.int64)
        if k > 0:
            block = weights[self.first : self.first + n * k].reshape(n, k)
            if k > 8:
                out = block.sum(axis=1, dtype=np.int64)
            else:
                out = block[:, 0].astype(np.int64)
                for j in range(1, k):
                    out += block[:, j]
        else:
            cum = np.concatenate(([0], np.cumsum(weights, dtype=np.int64)))
            out = cum[self.offsets[1:]] - cum[self.offsets[:-1]]
        if not self.all_valid:
            out *= self.valid
        return out


def _prepare(table: pa.Table, fmt: str, schema: Schema, findings: list[Finding]) -> _Batch:
    """Sort the columns into kinds; for JSON report FIELD_UNKNOWN and FIELD_TYPE on the way."""
    batch = _Batch(table.num_rows, fmt)
    json = fmt == "JSON"
    n = table.num_rows
    for name, col in _flat_columns(table, schema):
        t = col.type
        if pa.types.is_null(t):
            continue
        found = schema.map_for(name)
        kind = schema.fields.get(name) or (found[0].kind if found else None)
        if kind is None:
            if not json:
                continue  # a CSV header problem, reported once per file
            if name in schema.containers or name in schema.maps:
                findings += _type_finding(schema, name, col, "an object")
            else:
                rows = np.flatnonzero(_valid_np(col))
                text = (
                    "an attribute name cannot be empty"
                    if name[:-1] in schema.maps
                    else _unknown_message(name, "an endpoint field")
                )
                findings += _findings(schema.unknown_code, name, rows, [text] * rows.size)
            continue
        m, attr = found if found else (None, None)
        if kind == "string":
            if _is_text(t):
                batch.add(_Column(name, col, kind))
            elif json:
                findings += _type_finding(schema, name, col, "a string")
        elif kind in ("number", "numbers"):
            if _is_number(t) or (_is_text(t) and not json):
                batch.add(_Column(name, col, kind, m, attr))
            elif json:
                findings += _type_finding(schema, name, col, "a number")
        elif _is_list(t) and (_is_text(t.value_type) or pa.types.is_null(t.value_type)):
            if json:
                findings += _null_items(schema, name, col)
            if _is_text(t.value_type):
                batch.add(_Column(name, col, kind, m, attr))
        elif _is_list(t) and json:
            findings += _non_string_items(schema, name, col)
        elif _is_text(t) and not json:
            # a single CSV column not built as a list: one value per row
            wrapped = pa.ListArray.from_arrays(
                pa.array(np.arange(n + 1, dtype=np.int32)), col.combine_chunks()
            )
            batch.add(_Column(name, pa.chunked_array([wrapped]), kind, m, attr))
        elif json:
            findings += _type_finding(schema, name, col, "an array of strings")
    return batch


def _null_items(schema: Schema, name: str, col: pa.ChunkedArray) -> list[Finding]:
    """JSON rows whose array holds a null: not a string."""
    parts = []
    for start, chunk in _list_chunks(col):
        if chunk.values.null_count == 0:
            continue
        lists = _ListParts(chunk)
        nulls = lists.sums(~_valid_np(lists.values))
        parts.append(np.flatnonzero(nulls > 0) + start)
    rows = np.concatenate(parts) if parts else np.empty(0, np.int64)
    return _type_finding(
        schema,
        name,
        col,
        "",
        rows,
        lambda v: _list_item_problem(v) or "expected an array of strings",
    )


def _non_string_items(schema: Schema, name: str, col: pa.ChunkedArray) -> list[Finding]:
    """JSON rows whose array holds a non-null item of another type than string."""
    parts = []
    for start, chunk in _list_chunks(col):
        lists = _ListParts(chunk)
        parts.append(np.flatnonzero(lists.sums(_valid_np(lists.values)) > 0) + start)
    rows = np.concatenate(parts) if parts else np.empty(0, np.int64)
    return _type_finding(
        schema,
        name,
        col,
        "",
        rows,
        lambda v: _list_item_problem(v) or "expected an array of strings",
    )


# -- value rules ----------------------------------------------------------------------------------


@cache
def _value_array(values: frozenset[str] | tuple[str, ...]) -> pa.Array:
    return pa.array(sorted(values), pa.string())


@cache
def _lower_map(values: frozenset[str] | tuple[str, ...]) -> dict[str, str]:
    return {v.lower(): v for v in sorted(values)}


_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _text_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(the ``len + 1`` offsets from 0, int32 or int64, the UTF-8 bytes they index) of a string
    array; the bytes are a zero-copy view of its buffer."""
    if not _is_text(values.type):
        values = pc.cast(values, pa.string())
    offsets = _offsets(values)
    first, last = int(offsets[0]), int(offsets[-1])
    if last == first:
        return offsets - first, np.zeros(0, np.uint8)
    return offsets - first, np.frombuffer(values.buffers()[2], np.uint8, last - first, first)


def _digits(data: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """The numbers written with ``width`` ASCII digits at byte offsets ``starts`` of ``data``."""
    out = np.zeros(starts.size, np.int64)
    for i in range(width):
        out = out * 10 + data[starts + i] - 48
    return out


def _calendar_ok(values: pa.Array) -> np.ndarray:
    """Whether each ``YYYY-MM-DD...`` (extended) or ``YYYYMMDD...`` (basic) value names a real
    day (the pattern already matched), read straight from the string buffers: only days 29 to
    31 need a closer look."""
    ok = np.ones(len(values), bool)
    offsets, data = _text_buffers(values)
    rows = np.flatnonzero(_valid_np(values)) if values.null_count else None
    starts = offsets[:-1] if rows is None else offsets[rows]
    if starts.size == 0:
        return ok
    basic = data[starts + 4] != 0x2D  # extended dates have '-' after the year
    day_at = starts + np.where(basic, 6, 8)
    tens, units = data[day_at], data[day_at + 1]
    late = np.flatnonzero((tens > 0x32) | ((tens == 0x32) & (units == 0x39)))
    rows = late if rows is None else rows[late]
    starts, day_at, basic = starts[late], day_at[late], basic[late]
    year = _digits(data, starts, 4)
    month = _digits(data, starts + np.where(basic, 4, 5), 2)
    day = _digits(data, day_at, 2)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    ok[rows] = day <= _DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    return ok


# -- patterns as byte kernels ---------------------------------------------------------------------
#
# A regex over a column costs a call per value (some 60 ns); a pattern of a few fixed character
# classes is cheaper to test on the string buffers with numpy. A kernel gives exactly the regex's
# answer (RE2, as ``pc.match_substring_regex`` runs it) for every string; tests/test_check.py
# checks that on generated strings. A pattern without a kernel runs as a regex (the email one:
# its RE2 measured faster than numpy passes over the positions of '@' and '.').

E164_PATTERN = r"^\+[1-9][0-9]{0,14}$"


def _row_of(offsets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The row holding each byte position (rows never empty there)."""
    return np.searchsorted(offsets, positions, side="right") - 1


def _e164_ok(values: pa.Array) -> np.ndarray:
    """``^\\+[1-9][0-9]{0,14}$``: 2 to 16 bytes, '+', a digit 1-9, then ASCII digits only."""
    offsets, data = _text_buffers(values)
    starts, size = offsets[:-1], np.diff(offsets)
    ok = (size >= 2) & (size <= 16)
    rows = np.flatnonzero(ok)
    first = starts[rows]
    ok[rows] = (data[first] == 0x2B) & (data[first + 1] - np.uint8(0x31) < 9)
    # every other byte of those rows is a digit: no non-digit left once their '+' is cleared
    other = data - np.uint8(0x30) > 9
    other[starts[ok]] = False
    ok[_row_of(offsets, np.flatnonzero(other))] = False
    return ok


DATE_TIME_PATTERN = (
    r"^([0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.,][0-9]+)?)?"
    r"(Z|[+-]([01][0-9]|2[0-3])(:?[0-5][0-9])?)?)?"
    r"|[0-9]{4}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])"
    r"(T([01][0-9]|2[0-3])[0-5][0-9]([0-5][0-9]([.,][0-9]+)?)?"
    r"(Z|[+-]([01][0-9]|2[0-3])([0-5][0-9])?)?)?)$"
)

# The date-time pattern as fixed-width shapes, one character a byte: '9' a digit, 'M' 'D' 'h' 'm'
# the two digits of a month (01-12), day (01-31), hour (00-23) or minute or second (00-59), '.'
# one of '.' ',' and '~' one of '+' '-'; anything else stands for itself. Two formats (ISO 8601
# section 4.3.2): extended (2017-10-11T15:05:48Z) and basic (20171011T150548Z).
_ZONES = ("Z", "~hh:mm", "", "~hhmm", "~hh")  # the usual first
_BASIC_ZONES = ("Z", "~hhmm", "", "~hh")
_LONGEST_DATE_TIME = 40  # longer text (a fraction of over 20 digits) goes to the regex
_SHAPE_RANGE = {"9": "09", "M": "01", "D": "03", "h": "02", "m": "05", ".": ",.", "~": "+-"}
_TWO_DIGITS = {"M": (1, 12), "D": (1, 31), "h": (0, 23)}


@cache
def _date_time_shapes(size: int) -> list[str]:
    """Every shape of the pattern's text that is ``size`` bytes long, extended ones first."""
    shapes = []
    for date, minutes, colon, zones in (
        ("9999-MM-DD", "Thh:mm", ":", _ZONES),
        ("9999MMDD", "Thhmm", "", _BASIC_ZONES),
    ):
        if size == len(date):
            shapes.append(date)
        for zone in zones:
            rest = size - len(date) - len(minutes) - len(zone)  # after the minutes
            seconds = len(colon) + 2
            if rest in (0, seconds) or rest >= seconds + 2:
                second = (
                    ""
                    if rest == 0
                    else colon + "mm"
                    if rest == seconds
                    else colon + "mm." + "9" * (rest - seconds - 1)
                )
                shapes.append(date + minutes + second + zone)
    return shapes


@cache
def _shape_tests(shape: str) -> tuple[np.ndarray, np.ndarray, tuple[tuple[int, str], ...]]:
    """(lowest byte, highest byte) per position, and the positions of what a byte range cannot
    say: a two-digit field's value (the 13th month, the 24th hour), '.' and '~'."""
    ranges, extra = [], []
    first = False  # the previous character began a two-digit field ('mmmm': minute, second)
    for i, c in enumerate(shape):
        second = first and shape[i - 1] == c
        first = c in "MDhm" and not second
        ranges.append("09" if second else _SHAPE_RANGE.get(c, c + c))
        if c in ".~" or (c in _TWO_DIGITS and not second):
            extra.append((i, c))
    low = np.array([ord(r[0]) for r in ranges], np.uint8)
    high = np.array([ord(r[1]) for r in ranges], np.uint8)
    return low, high, tuple(extra)


def _shape_ok(columns: np.ndarray, shape: str) -> np.ndarray:
    """Per text, whether it has ``shape``; ``columns`` holds the texts' bytes by position (a
    row per byte position, a column per text), so each test runs along contiguous memory."""
    low, high, extra = _shape_tests(shape)
    ok = ((columns - low[:, None]) <= (high - low)[:, None]).all(axis=0)
    for i, c in extra:
        if c == ".":
            ok &= columns[i] != 0x2D  # '-' lies between ',' and '.'
        elif c == "~":
            ok &= columns[i] != 0x2C  # ',' lies between '+' and '-'
        else:
            value = columns[i].astype(np.int16) * 10 + columns[i + 1] - 11 * 0x30
            first, last = _TWO_DIGITS[c]
            ok &= (value >= first) & (value <= last)
    return ok


def _date_time_ok(values: pa.Array) -> np.ndarray:
    """The date-time pattern, tested as fixed-width shapes: the texts of one length at a time
    as a byte matrix, against each shape of that length in turn, for the texts no shape before
    took (a file tends to keep one format)."""
    offsets, data = _text_buffers(values)
    size = np.diff(offsets)
    ok = np.zeros(len(values), bool)
    counts = np.bincount(np.minimum(size, _LONGEST_DATE_TIME + 1))
    for length in np.flatnonzero(counts).tolist():
        if length > _LONGEST_DATE_TIME:
            rows = np.flatnonzero(size > _LONGEST_DATE_TIME)
            ok[rows] = _np(pc.match_substring_regex(values.take(rows), DATE_TIME_PATTERN), False)
            continue
        shapes = _date_time_shapes(length)
        if not shapes:
            continue
        if counts[length] == len(values):
            rows = np.arange(len(values))
            matrix = data.reshape(-1, length)  # the offsets step by length: no copy
        else:
            rows = np.flatnonzero(size == length)
            matrix = _text_buffers(values.take(rows))[1].reshape(-1, length)
        columns = np.ascontiguousarray(matrix.T)
        for shape in shapes:
            found = _shape_ok(columns, shape)
            ok[rows[found]] = True
            rows, columns = rows[~found], columns[:, ~found]
            if rows.size == 0:
                break
    return ok


_KERNELS: dict[str, Callable[[pa.Array], np.ndarray]] = {
    E164_PATTERN: _e164_ok,
    DATE_TIME_PATTERN: _date_time_ok,
}


def _matches(pattern: str, values: pa.Array) -> np.ndarray:
    """Per value, whether it matches ``pattern`` (False for null): a kernel when there is one."""
    kernel = _KERNELS.get(pattern)
    if kernel is None:
        return _np(pc.match_substring_regex(values, pattern), False)
    ok = kernel(values)
    return ok & _valid_np(values) if values.null_count else ok


def _repeats(values: pa.Array) -> bool:
    """Whether a sample says the values repeat a lot (a file's dates often do): then a rule
    runs once per distinct value, as a regex costs more than a hash."""
    return len(values) >= 4096 and len(pc.unique(values.slice(0, 1024))) <= 64


@cache
def _as_set(pool: frozenset[str] | tuple[str, ...]) -> frozenset[str]:
    return frozenset(pool)


def _in_pool(pool: frozenset[str] | tuple[str, ...], values: pa.Array) -> np.ndarray:
    """Per value, whether it is in ``pool`` (False for null): a Python set lookup for a few
    values (a hash table of a long pool costs more to build than to probe), else ``is_in``."""
    if len(values) <= max(64, len(pool) // 16):
        members = _as_set(pool)
        return np.fromiter((v in members for v in values.to_pylist()), bool, len(values))
    return _np(pc.is_in(values, value_set=_value_array(pool)), False)


def _rule_ok(rule: ValueRule, values: pa.Array) -> np.ndarray:
    """Per value, whether it passes the rule (``_value_ok_py`` for a whole array); each test
    runs only on the values that passed the ones before."""
    ok = np.ones(len(values), bool)
    for pool in (rule.enum, rule.values):
        if pool is not None:
            ok &= _in_pool(pool, values)
    if rule.pattern is not None:
        idx = np.flatnonzero(ok)
        ok[idx] = _matches(rule.pattern, _pick(values, idx))
    if rule.calendar_date:
        idx = np.flatnonzero(ok & _valid_np(values))
        ok[idx] = _calendar_ok(_pick(values, idx))
    return ok


def _pick(values: pa.Array, idx: np.ndarray) -> pa.Array:
    """``values.take(idx)`` for ascending ``idx``, without the copy when it takes them all."""
    return values if idx.size == len(values) else values.take(idx)


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _value_ok_py(rule: ValueRule, value: str) -> bool:
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


def _failing(rule: ValueRule, col: _Column, candidates: np.ndarray) -> np.ndarray:
    """Rows among ``candidates`` whose value breaks ``rule``: judged once per distinct value
    when the column repeats itself, else on the candidates only (an SMS rule in a file that is
    mostly email)."""
    if not candidates.any():
        return np.empty(0, np.int64)
    lookups_only = rule.pattern is None and not rule.calendar_date
    if lookups_only or col.has_distinct() or _repeats(col.array()):
        dictionary, codes = col.distinct()
        bad = ~_rule_ok(rule, dictionary)
        if not bad.any():
            return np.empty(0, np.int64)
        return np.flatnonzero(bad[codes] & candidates)
    idx = np.flatnonzero(candidates)
    return idx[~_rule_ok(rule, _pick(col.array(), idx))]


def _value_message(schema: Schema, rule: ValueRule, value: str) -> str:
    q = _quote(value)
    ref = rule.values_ref or ""
    if ref.startswith("iso3166-1.json"):
        upper = value.strip().upper()
        alpha2 = schema.alpha3_to_alpha2.get(upper)
        if alpha2:
            return (
                f"{q} is an ISO 3166-1 alpha-3 code; Pinpoint expects alpha-2: "
                f"{_quote(alpha2)} ({schema.country_names.get(alpha2, alpha2)})"
            )
        reserved = schema.reserved_to_alpha2.get(upper)
        if reserved:
            return (
                f"{q} is not {rule.what} (it is only reserved); the code for "
                f"{schema.country_names.get(reserved, reserved)} is {_quote(reserved)}"
            )
    text = f"{q} is not {rule.what}"
    suggestion = _suggest_value(schema, rule, value)
    if rule.pattern is None and suggestion:
        # a value list: the near match says more than the list or the example
        return f"{text}; did you mean {_quote(suggestion)}?"
    if rule.calendar_date and rule.pattern and _regex(rule.pattern).fullmatch(value):
        return f"{q} is not a real date"
    if rule.enum is not None:
        text += f" ({_or_list(rule.enum)})"
    if rule.hint:
        text += f": {rule.hint}"
    if suggestion:
        text += f"; did you mean {_quote(suggestion)}?"
    elif ref == "join" and value.strip().lower() in schema.languages:
        text += "; it names a language but no country"
    elif rule.pattern and rule.pattern.startswith("^\\+") and value.strip().isdigit():
        text += "; it has no leading '+'"
    return text


def _suggest_value(schema: Schema, rule: ValueRule, value: str) -> str | None:
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
        if candidate and candidate != value and _value_ok_py(rule, candidate):
            return candidate
    return None


def _check_values(schema: Schema, batch: _Batch) -> list[Finding]:
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
        messages = _messages(col.data.take(rows).to_pylist(), partial(_value_message, schema, rule))
        out += _findings(rule.code, rule.field, rows, messages)
    return out


def _check_required(schema: Schema, batch: _Batch) -> list[Finding]:
    rule = schema.required
    n = batch.n

    def present(name: str) -> np.ndarray:
        col = batch.by_name.get(name)
        return col.present() if col is not None else np.zeros(n, bool)

    new = ~present(rule.unless)
    if not new.any():
        return []
    needs = " and ".join(rule.fields)
    out: list[Finding] = []
    for name in rule.fields:
        rows = np.flatnonzero(new & ~present(name))
        message = (
            f"missing: an endpoint without an {rule.unless} is new, and a new endpoint "
            f"needs {needs}"
        )
        out += _findings(rule.code, name, rows, [message] * rows.size)
    return out


# -- numbers --------------------------------------------------------------------------------------


def _parse_numbers(text: pa.Array, pattern: str) -> np.ndarray:
    """float64 per value, NaN where the text is not a finite number: one cast when all of it
    parses.

    Else the text with a character no number has, or none, is NaN without a look at the
    pattern; the rest is cast again, and only when that fails too does the pattern pick the
    text to cast (slicing around bad text measured slower: defects are spread). Over
    ``0-9 + - . e E`` Arrow's cast takes exactly the pattern's text (a test tries every string
    of up to 5 of them); other text it takes is a NaN or Infinity spelling, not finite either.
    """
    try:
        return _finite(pc.cast(text, pa.float64()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    text = _with_nulls(text, _odd_number_text(text))
    try:
        return _finite(pc.cast(text, pa.float64()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        syntax = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    return _finite(pc.cast(pc.if_else(syntax, text, pa.scalar(None, text.type)), pa.float64()))


def _finite(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """float64 per value, NaN where it is null, NaN or infinite."""
    total = pc.sum(values).as_py()  # over the non-null values: finite when all of them are
    out = _np(values, np.nan)
    if total is None or math.isfinite(total):
        return out
    return np.where(np.isfinite(out), out, np.nan)


def _odd_number_text(text: pa.Array) -> np.ndarray:
    """Per value, whether it cannot be number text for a reason cheap to see: it is empty, has
    a byte other than ``0-9 + - . e E``, or does not end in a digit or a digit and '.'."""
    offsets, data = _text_buffers(text)
    step = data - np.uint8(0x2B)  # '+' ',' '-' '.' '/' '0'..'9' are 0..14
    odd = ((step > 14) & ((data | np.uint8(0x20)) != 0x65)) | (step == 1) | (step == 4)
    out = offsets[1:] == offsets[:-1]
    out[_row_of(offsets, np.flatnonzero(odd))] = True
    rows = np.flatnonzero(~out)
    starts, ends = offsets[:-1][rows], offsets[1:][rows]
    last, before = data[ends - 1], data[np.maximum(ends - 2, starts)]
    digit_dot = (last == 0x2E) & (ends - starts >= 2) & (before - np.uint8(0x30) < 10)
    out[rows] = ~((last - np.uint8(0x30) < 10) | digit_dot)
    return out


def _with_nulls(values: pa.Array, rows: np.ndarray) -> pa.Array:
    """``values`` with the rows where ``rows`` is True null too; the other buffers are shared."""
    valid = np.concatenate((np.zeros(values.offset, bool), _valid_np(values) & ~rows))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    buffers = [bitmap, *values.buffers()[1:]]
    return pa.Array.from_buffers(values.type, len(values), buffers, offset=values.offset)


def _numbers(schema: Schema, batch: _Batch, col: _Column) -> tuple[np.ndarray, np.ndarray]:
    """(given, float64 value) per row; a value is NaN when it is not a finite number.

    CSV text is cast in one go when it all parses; Arrow's cast takes exactly the schema's
    number text plus NaN/Infinity spellings, which fail as not finite. Only a column with some
    other text goes through the pattern first.
    """
    if col.name in batch.numbers:
        return batch.numbers[col.name]
    data = col.data
    if _is_text(data.type):
        given = col.present()
        values = _parse_numbers(col.array(), schema.number_text_pattern)
    else:
        given = _valid_np(data)
        values = _finite(pc.cast(data, pa.float64()))
    batch.numbers[col.name] = (given, values)
    return given, values


def _number_message(schema: Schema, rule: NumberRule, value: Any) -> str:
    number = _regex(schema.number_text_pattern)
    if isinstance(value, str) and number.fullmatch(value):
        return f"{_quote(value)} is not a finite number (too large for a double)"
    if isinstance(value, float):
        return f"{_quote(value)} is not a finite number"
    text = f"{_quote(value)} is not {rule.what}"
    if isinstance(value, str):
        for candidate in (value.strip(), value.strip().replace(",", ".", 1)):
            if number.fullmatch(candidate) and math.isfinite(float(candidate)):
                return f"{text}; did you mean {_quote(candidate)}?"
    return text


def _range_message(what: str, span: str, value: Any) -> str:
    return f"{_quote(value)} is not {what} ({span})"


def _check_numbers(schema: Schema, batch: _Batch) -> list[Finding]:
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
        given, values = _numbers(schema, batch, col)
        rows = np.flatnonzero(given & np.isnan(values))
        messages = _messages(
            col.data.take(rows).to_pylist(), partial(_number_message, schema, rule)
        )
        out += _findings(rule.code, col.name, rows, messages)
        if rule.range_code is None:
            continue
        low = -np.inf if rule.minimum is None else rule.minimum
        high = np.inf if rule.maximum is None else rule.maximum
        with np.errstate(invalid="ignore"):
            rows = np.flatnonzero((values < low) | (values > high))
        span = f"{_number_text(low)}..{_number_text(high)}"
        messages = _messages(
            col.data.take(rows).to_pylist(),
            partial(_range_message, rule.range_what or "in range", span),
        )
        out += _findings(rule.range_code, col.name, rows, messages)
    return out


# -- custom attributes ----------------------------------------------------------------------------


def _check_attributes(schema: Schema, batch: _Batch) -> list[Finding]:
    out: list[Finding] = []
    for col in batch.columns:
        m, attr = col.map, col.attr
        if m is None or attr is None:
            continue
        stats = col.lists() if col.kind == "strings" else None
        present = stats.count > 0 if stats is not None else _numbers(schema, batch, col)[0]
        for rule in m.name_rules:
            message = None
            if rule.max_length is not None and len(attr) > rule.max_length:
                message = (
                    f"attribute name {_quote(attr)} has {len(attr)} characters; "
                    f"at most {rule.max_length}"
                )
            elif rule.pattern is not None and not re.fullmatch(rule.pattern, attr):
                bad = sorted({c for c in attr if not re.fullmatch(rule.pattern, c)})
                message = (
                    f"attribute name {_quote(attr)} contains {_or_list([_quote(c) for c in bad])}"
                )
                message += f"; {rule.hint}" if rule.hint else ""
            if message:
                rows = np.flatnonzero(present)
                out += _findings(rule.code, col.name, rows, [message] * rows.size)
        if stats is None:
            continue
        if m.values_code and m.max_values is not None:
            rows = np.flatnonzero(stats.count > m.max_values)
            messages = [
                f"{int(k)} values; at most {m.max_values} per attribute" for k in stats.count[rows]
            ]
            out += _findings(m.values_code, col.name, rows, messages)
        if m.value_code and m.max_value_length is not None:
            limit = m.max_value_length
            rows = np.flatnonzero(stats.too_long > 0)
            messages = []
            for items in col.data.take(rows).to_pylist():
                long = [v for v in items if v is not None and len(v) > limit]
                text = f"value {_quote(long[0])} has {len(long[0])} characters; at most {limit}"
                if len(long) > 1:
                    more = len(long) - 1
                    text += f" (and {more} more value{'s' if more > 1 else ''} over {limit})"
                messages.append(text)
            out += _findings(m.value_code, col.name, rows, messages)
    return out


# -- endpoint size --------------------------------------------------------------------------------

_ESCAPE_EXTRA = np.zeros(256, np.int64)
_ESCAPE_EXTRA[:32] = 5  # \u00XX
_ESCAPE_EXTRA[[8, 9, 10, 12, 13, 34, 92]] = 1  # \b \t \n \f \r \" \\


def _escape_extra(values: pa.Array) -> np.ndarray:
    """Per string, the bytes JSON escaping adds (orjson's escapes), from the Arrow buffers."""
    if not _is_text(values.type):
        values = pc.cast(values, pa.string())
    n = len(values)
    buffers = values.buffers()
    if n == 0 or buffers[2] is None:
        return np.zeros(n, np.int64)
    kind = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(buffers[1], kind)[values.offset : values.offset + n + 1]
    data = np.frombuffer(buffers[2], np.uint8)
    start, stop = int(offsets[0]), int(offsets[-1])
    segment = data[start:stop]
    hits = np.flatnonzero((segment < 0x20) | (segment == 0x22) | (segment == 0x5C))
    if hits.size == 0:
        return np.zeros(n, np.int64)
    rows = np.searchsorted(offsets, hits + start, side="right") - 1
    extra = np.bincount(rows, weights=_ESCAPE_EXTRA[segment[hits]], minlength=n)
    return extra.astype(np.int64)


def _float_lengths(values: np.ndarray) -> np.ndarray:
    """Per float, the length of orjson's text for it (``5.0``, ``1e16``, ``0.00001``)."""
    if values.size == 0:
        return np.zeros(0, np.int64)
    clean = np.ascontiguousarray(
        np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0), dtype=np.float64
    )
    text = orjson.dumps(clean, option=orjson.OPT_SERIALIZE_NUMPY)
    commas = np.flatnonzero(np.frombuffer(text, np.uint8) == 0x2C)
    bounds = np.concatenate(([0], commas, [len(text) - 1]))
    return np.diff(bounds).astype(np.int64) - 1


def _key_length(key: str) -> int:
    return len(orjson.dumps(key))


def _text_sizes(values: pa.Array | pa.ChunkedArray, exact: bool) -> tuple[np.ndarray, np.ndarray]:
    """(JSON length, bytes escaping might add at most) per string; exact counts escapes."""
    size = _text_nbytes(values) + 2
    if not exact:
        return size, (size - 2) * 5
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    extra = [_escape_extra(c) for c in chunks]
    return size + (np.concatenate(extra) if extra else 0), np.zeros(len(values), np.int64)


def _leaf_size(
    schema: Schema, batch: _Batch, col: _Column, rows: np.ndarray | None, exact: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(present, JSON value length, slack) per row for one column; ``rows`` picks a subset."""
    if col.kind in ("number", "numbers"):
        _, values = _numbers(schema, batch, col)
        if rows is not None:
            values = values[rows]
        finite = ~np.isnan(values)
        if exact:
            length = np.where(finite, _float_lengths(values), 0)
            return finite, length, np.zeros(len(values), np.int64)
        return finite, np.full(len(values), 3, np.int64), np.full(len(values), 21, np.int64)
    if rows is None and not exact:
        if col.kind == "string":
            nbytes = col.nbytes()
            return _valid_np(col.data), nbytes + 2, nbytes * 5
        info = col.lists()
        count = info.count
        return (count > 0, 2 + info.nbytes + 2 * count + np.maximum(count - 1, 0), info.nbytes * 5)
    data = col.data if rows is None else col.data.take(rows)
    if col.kind == "string":
        size, slack = _text_sizes(data, exact)
        return _valid_np(data), size, slack
    present_parts, size_parts, slack_parts = [], [], []
    for _, chunk in _list_chunks(data):
        lists = _ListParts(chunk)
        item_valid = _valid_np(lists.values)
        item_size, item_slack = _text_sizes(lists.values, exact)
        count = lists.sums(item_valid)
        total = lists.sums(item_size * item_valid)
        present_parts.append(count > 0)
        size_parts.append(2 + total + np.maximum(count - 1, 0))
        slack_parts.append(lists.sums(item_slack * item_valid))
    return (np.concatenate(present_parts), np.concatenate(size_parts), np.concatenate(slack_parts))


def _sizes(
    schema: Schema, batch: _Batch, rows: np.ndarray | None, exact: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(size, slack) per row of the endpoint as compact JSON. With ``exact`` the size is exact
    and the slack 0; without, escapes count 0 and numbers 3 bytes, and size + slack bounds it."""
    n = batch.n if rows is None else rows.size
    count: dict[str, np.ndarray] = {}
    content: dict[str, np.ndarray] = {}
    slack = np.zeros(n, np.int64)

    def add(parent: str, key: str, present: np.ndarray, length: np.ndarray) -> None:
        if parent not in count:
            count[parent] = np.zeros(n, np.int64)
            content[parent] = np.zeros(n, np.int64)
        count[parent] += present
        np.add(content[parent], length + (_key_length(key) + 1), out=content[parent], where=present)

    for col in batch.columns:
        present, length, extra = _leaf_size(schema, batch, col, rows, exact)
        parent, key = (col.map.prefix, col.attr) if col.map else _split(col.name)
        add(parent, key or "", present, length)
        if not exact:
            np.add(slack, extra, out=slack, where=present)
    # fold nested objects and maps into their parents, deepest first
    for path in _nested_paths(schema):
        if path not in count:
            continue
        parent, key = _split(path)
        length = 2 + content[path] + np.maximum(count[path] - 1, 0)
        add(parent, key, count[path] > 0, length)
    top_count = count.get("", np.zeros(n, np.int64))
    top = content.get("", np.zeros(n, np.int64))
    return 2 + top + np.maximum(top_count - 1, 0), slack


@cache
def _nested_paths(schema: Schema) -> tuple[str, ...]:
    return tuple(sorted({*schema.containers, *schema.maps}, key=lambda p: -p.count(".")))


def _split(dotted: str) -> tuple[str, str]:
    parent, _, key = dotted.rpartition(".")
    return parent, key


def _size_bound(schema: Schema, batch: _Batch) -> int:
    """No row of the batch is larger than this as JSON: every column at its longest, every
    character escaped, every object present. Cheap: one maximum per column."""
    bound = 2
    for col in batch.columns:
        key = col.attr if col.map is not None and col.attr is not None else _split(col.name)[1]
        if col.kind in ("number", "numbers"):
            value = 24
        elif col.kind == "string":
            value = 2 + 6 * col.max_nbytes()
        else:
            info = col.lists()
            value = 2 + int((6 * info.nbytes + 3 * info.count).max(initial=0))
        bound += _key_length(key) + 2 + value
    for path in _nested_paths(schema):
        bound += _key_length(_split(path)[1]) + 4
    return bound


def _check_size(schema: Schema, batch: _Batch) -> list[Finding]:
    limit = schema.limits.endpoint_size_bytes
    if _size_bound(schema, batch) <= limit:
        return []
    size, slack = _sizes(schema, batch, None, exact=False)
    maybe = np.flatnonzero(size + slack > limit)
    if maybe.size == 0:
        return []
    exact, _ = _sizes(schema, batch, maybe, exact=True)
    over = exact > limit
    rows = maybe[over]
    kb = f"{limit / 1024:g} KB" if limit % 1024 == 0 else f"{limit:,} bytes"
    messages = [
        f"the endpoint is {int(s):,} bytes as JSON; Pinpoint allows {kb} ({limit:,} bytes)"
        for s in exact[over]
    ]
    return _findings("ENDPOINT_TOO_LARGE", "", rows, messages)


def endpoint_sizes(table: pa.Table, fmt: str) -> np.ndarray:
    """Per row, the byte length of the endpoint as compact JSON (what ``orjson.dumps`` gives
    for it with numbers as floats, nulls and empty attributes left out); ``fmt`` is CSV or JSON.
    Columns that break a type rule and unknown columns are not counted."""
    schema = load_schema()
    batch = _prepare(table, fmt.upper(), schema, [])
    return _sizes(schema, batch, None, exact=True)[0]


# -- the batch ------------------------------------------------------------------------------------


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
    batch = _prepare(table, fmt.upper(), schema, findings)
    findings += _check_required(schema, batch)
    findings += _check_values(schema, batch)
    findings += _check_numbers(schema, batch)
    findings += _check_attributes(schema, batch)
    findings += _check_size(schema, batch)
    return findings
