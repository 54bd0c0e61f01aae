"""The check stage's reading layer: a batch's Arrow columns as numpy, straight from the buffers.

Everything here is column-wide and knows no rule code or message: the columns a table holds
by kind (``Column``, ``Batch``, ``flat_columns``), validity bitmaps, offsets and UTF-8 bytes
read zero-copy, list columns summed per row (``ListParts``), value lists looked up once per
distinct value (``in_pool``), patterns as byte kernels (``matches``), the calendar test, number
text cast to float64 (``parse_numbers``, ``number_values``), and an endpoint's size as compact
JSON (``json_sizes``, ``size_bound``). ``validator.record_rules`` puts the rules on top.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from validator.schema import MapField, Schema


@dataclass
class ListInfo:
    count: np.ndarray  # non-null values per row
    nbytes: np.ndarray  # UTF-8 bytes of those values per row
    too_long: np.ndarray  # values over the map's length limit per row


@dataclass
class Column:
    """A usable column; what several checks need from it is computed once."""

    name: str
    data: pa.ChunkedArray
    kind: str  # "string", "number", "strings" (attribute), "numbers" (metric)
    map: MapField | None = None
    attr: str | None = None
    _nbytes: np.ndarray | None = None
    _present: np.ndarray | None = None
    _lists: ListInfo | None = None
    _distinct: tuple[pa.Array, np.ndarray] | None = None

    def array(self) -> pa.Array:
        """The column as one array (``flat_columns`` leaves one chunk)."""
        data = self.data
        return data.chunk(0) if data.num_chunks == 1 else data.combine_chunks()

    def nbytes(self) -> np.ndarray:
        """Text columns: UTF-8 bytes per row, 0 when null."""
        if self._nbytes is None:
            self._nbytes = text_nbytes(self.data)
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
                self._present = text_present(self.data)
        return self._present

    def max_nbytes(self) -> int:
        """Text columns: at least the most UTF-8 bytes of any value (exactly, but for a null
        that a writer gave bytes)."""
        if self._nbytes is not None:
            return int(self._nbytes.max(initial=0))
        most = 0
        for chunk in chunks_of(self.data):
            offsets = offsets_of(chunk if is_text(chunk.type) else pc.cast(chunk, pa.string()))
            most = max(most, int(np.max(offsets[1:] - offsets[:-1], initial=0)))
        return most

    def lists(self) -> ListInfo:
        if self._lists is None:
            limit = self.map.max_value_length if self.map is not None else None
            self._lists = list_info(self.data, limit)
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
        return in_pool(values, dictionary)[codes]


def list_info(data: pa.ChunkedArray, limit: int | None) -> ListInfo:
    counts, sizes, longs = [], [], []
    for _, chunk in list_chunks(data):
        parts = ListParts(chunk)
        item_bytes = text_nbytes(parts.values)
        counts.append(parts.sums(valid_np(parts.values)))
        sizes.append(parts.sums(item_bytes))
        too_long = np.zeros(len(chunk), np.int64)
        if limit is not None:
            # a value over the limit in characters is over it in bytes: count only those
            first, last = int(parts.offsets[0]), int(parts.offsets[-1])
            long = np.flatnonzero(item_bytes[first:last] > limit) + first  # the rows' items
            long = long[as_numpy(pc.utf8_length(parts.values.take(long)), 0) > limit]
            if long.size:
                too_long = np.bincount(parts.rows_of(long), minlength=len(chunk)) * parts.valid
        longs.append(too_long)
    return ListInfo(concat(counts), concat(sizes), concat(longs))


def concat(parts: list[np.ndarray]) -> np.ndarray:
    if not parts:
        return np.zeros(0, np.int64)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


@dataclass
class Batch:
    """A table's usable columns by kind, with what several checks share computed once."""

    n: int
    fmt: str
    columns: list[Column] = field(default_factory=list)
    by_name: dict[str, Column] = field(default_factory=dict)
    numbers: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def add(self, col: Column) -> None:
        self.columns.append(col)
        self.by_name.setdefault(col.name, col)


def is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def flat_columns(table: pa.Table, schema: Schema) -> list[tuple[str, pa.ChunkedArray]]:
    """Columns by dotted name, with the schema's objects and maps flattened if still nested.

    A stack, not a recursive closure: a closure that calls itself is a reference cycle, which
    kept every batch's columns alive until the cyclic collector ran (+100-150 MiB a piece)."""
    nested = set(schema.containers) | set(schema.maps)
    out: list[tuple[str, pa.ChunkedArray]] = []
    todo = list(zip(table.column_names, table.columns, strict=True))[::-1]
    while todo:
        name, col = todo.pop()
        if col.null_count == len(col):
            continue  # no value in the batch: no rule can fail, it adds nothing to a size
        if col.num_chunks > 1:
            # a reader's many small blocks: one copy now beats per-chunk work in every check
            col = pa.chunked_array([col.combine_chunks()], col.type)
        col = plain(col)
        if name in nested and pa.types.is_struct(col.type):
            children = zip(col.type, col.flatten(), strict=True)
            todo.extend((f"{name}.{f.name}", child) for f, child in list(children)[::-1])
        else:
            out.append((name, col))
    return out


def plain(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary-encoded and view strings (and lists of them) as plain strings."""
    t = col.type
    if pa.types.is_dictionary(t) and (is_text(t.value_type) or is_view(t.value_type)):
        return pc.cast(col, pa.string())
    if is_view(t):
        return pc.cast(col, pa.string())
    if (pa.types.is_list_view(t) or is_list(t)) and is_view(t.value_type):
        return pc.cast(col, pa.list_(pa.string()))
    return col


def is_view(t: pa.DataType) -> bool:
    return pa.types.is_string_view(t)


def as_numpy(values: pa.ChunkedArray | pa.Array, fill: Any) -> np.ndarray:
    if values.null_count:
        values = pc.fill_null(values, fill)
    return np.asarray(values.to_numpy(zero_copy_only=False))


def chunks_of(col: pa.ChunkedArray | pa.Array) -> list[pa.Array]:
    return col.chunks if isinstance(col, pa.ChunkedArray) else [col]


def valid_np(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Per row, whether it is not null: read from the validity bitmaps where there are some."""
    if col.null_count == 0:
        return np.ones(len(col), bool)
    parts = []
    for chunk in chunks_of(col):
        t, n, start = chunk.type, len(chunk), chunk.offset
        bitmap = chunk.buffers()[0] if is_text(t) or is_list(t) or is_number(t) else None
        if chunk.null_count == 0:
            parts.append(np.ones(n, bool))
        elif bitmap is None:
            parts.append(as_numpy(pc.is_valid(chunk), False))
        else:
            first = start // 8
            raw = np.frombuffer(bitmap, np.uint8, (start + n + 7) // 8 - first, first)
            bits = np.unpackbits(raw, bitorder="little")
            parts.append(bits[start % 8 : start % 8 + n].view(bool))
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def offsets_of(chunk: pa.Array) -> np.ndarray:
    """The ``len + 1`` offsets of a string or list array into its data, zero-copy."""
    t = chunk.type
    if len(chunk) == 0:
        return np.zeros(1, np.int64)
    wide = pa.types.is_large_string(t) or pa.types.is_large_list(t)
    offsets = np.frombuffer(chunk.buffers()[1], np.int64 if wide else np.int32)
    return offsets[chunk.offset : chunk.offset + len(chunk) + 1]


def text_present(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Per string, whether it is neither null nor empty."""
    parts = []
    for chunk in chunks_of(col):
        if not is_text(chunk.type):
            chunk = pc.cast(chunk, pa.string())
        offsets = offsets_of(chunk)
        present = offsets[1:] > offsets[:-1]
        if chunk.null_count:
            present &= valid_np(chunk)
        parts.append(present)
    return concat(parts) if parts else np.zeros(0, bool)


def text_nbytes(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """UTF-8 bytes per string (int64), 0 when null: from the offsets, not a kernel."""
    parts = []
    for chunk in chunks_of(col):
        if not is_text(chunk.type):
            chunk = pc.cast(chunk, pa.string())
        offsets = offsets_of(chunk)
        size = np.diff(offsets).astype(np.int64)
        if chunk.null_count:
            size *= valid_np(chunk)
        parts.append(size)
    return concat(parts)


def list_chunks(col: pa.ChunkedArray) -> Iterable[tuple[int, pa.Array]]:
    start = 0
    for chunk in col.chunks:
        yield start, chunk
        start += len(chunk)


class ListParts:
    """One list chunk: its child values, per-row validity, and per-row sums over the child.

    A CSV's attribute lists have the same number of items in every row (one per repeated
    header); their sums are a few strided adds instead of a cumulative sum.
    """

    def __init__(self, chunk: pa.Array) -> None:
        self.offsets = offsets_of(chunk)
        self.values: pa.Array = chunk.values
        self.valid = valid_np(chunk)
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


@cache
def value_array(values: frozenset[str] | tuple[str, ...]) -> pa.Array:
    return pa.array(sorted(values), pa.string())


_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def text_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(the ``len + 1`` offsets from 0, int32 or int64, the UTF-8 bytes they index) of a string
    array; the bytes are a zero-copy view of its buffer."""
    if not is_text(values.type):
        values = pc.cast(values, pa.string())
    offsets = offsets_of(values)
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


def calendar_ok(values: pa.Array) -> np.ndarray:
    """Whether each ``YYYY-MM-DD...`` (extended) or ``YYYYMMDD...`` (basic) value names a real
    day (the pattern already matched), read straight from the string buffers: only days 29 to
    31 need a closer look."""
    ok = np.ones(len(values), bool)
    offsets, data = text_buffers(values)
    rows = np.flatnonzero(valid_np(values)) if values.null_count else None
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


#
# A regex over a column costs a call per value (some 60 ns); a pattern of a few fixed character
# classes is cheaper to test on the string buffers with numpy. A kernel gives exactly the regex's
# answer (RE2, as ``pc.match_substring_regex`` runs it) for every string; tests/test_buffers.py
# checks that on generated strings. A pattern without a kernel runs as a regex (the email one:
# its RE2 measured faster than numpy passes over the positions of '@' and '.').


E164_PATTERN = r"^\+[1-9][0-9]{0,14}$"


def row_of(offsets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The row holding each byte position (rows never empty there)."""
    return np.searchsorted(offsets, positions, side="right") - 1


def _e164_ok(values: pa.Array) -> np.ndarray:
    """``^\\+[1-9][0-9]{0,14}$``: 2 to 16 bytes, '+', a digit 1-9, then ASCII digits only."""
    offsets, data = text_buffers(values)
    starts, size = offsets[:-1], np.diff(offsets)
    ok = (size >= 2) & (size <= 16)
    rows = np.flatnonzero(ok)
    first = starts[rows]
    ok[rows] = (data[first] == 0x2B) & (data[first + 1] - np.uint8(0x31) < 9)
    # every other byte of those rows is a digit: no non-digit left once their '+' is cleared
    other = data - np.uint8(0x30) > 9
    other[starts[ok]] = False
    ok[row_of(offsets, np.flatnonzero(other))] = False
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
    offsets, data = text_buffers(values)
    size = np.diff(offsets)
    ok = np.zeros(len(values), bool)
    counts = np.bincount(np.minimum(size, _LONGEST_DATE_TIME + 1))
    for length in np.flatnonzero(counts).tolist():
        if length > _LONGEST_DATE_TIME:
            rows = np.flatnonzero(size > _LONGEST_DATE_TIME)
            ok[rows] = as_numpy(
                pc.match_substring_regex(values.take(rows), DATE_TIME_PATTERN), False
            )
            continue
        shapes = _date_time_shapes(length)
        if not shapes:
            continue
        if counts[length] == len(values):
            rows = np.arange(len(values))
            matrix = data.reshape(-1, length)  # the offsets step by length: no copy
        else:
            rows = np.flatnonzero(size == length)
            matrix = text_buffers(values.take(rows))[1].reshape(-1, length)
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


def matches(pattern: str, values: pa.Array) -> np.ndarray:
    """Per value, whether it matches ``pattern`` (False for null): a kernel when there is one."""
    kernel = _KERNELS.get(pattern)
    if kernel is None:
        return as_numpy(pc.match_substring_regex(values, pattern), False)
    ok = kernel(values)
    return ok & valid_np(values) if values.null_count else ok


def repeats(values: pa.Array) -> bool:
    """Whether a sample says the values repeat a lot (a file's dates often do): then a rule
    runs once per distinct value, as a regex costs more than a hash."""
    return len(values) >= 4096 and len(pc.unique(values.slice(0, 1024))) <= 64


@cache
def _as_set(pool: frozenset[str] | tuple[str, ...]) -> frozenset[str]:
    return frozenset(pool)


def in_pool(pool: frozenset[str] | tuple[str, ...], values: pa.Array) -> np.ndarray:
    """Per value, whether it is in ``pool`` (False for null): a Python set lookup for a few
    values (a hash table of a long pool costs more to build than to probe), else ``is_in``."""
    if len(values) <= max(64, len(pool) // 16):
        members = _as_set(pool)
        return np.fromiter((v in members for v in values.to_pylist()), bool, len(values))
    return as_numpy(pc.is_in(values, value_set=value_array(pool)), False)


def pick(values: pa.Array, idx: np.ndarray) -> pa.Array:
    """``values.take(idx)`` for ascending ``idx``, without the copy when it takes them all."""
    return values if idx.size == len(values) else values.take(idx)


def parse_numbers(text: pa.Array, pattern: str) -> np.ndarray:
    """float64 per value, NaN where the text is not a finite number: one cast when all of it
    parses.

    Else the text with a character no number has, or none, is NaN without a look at the
    pattern; the rest is cast again, and only when that fails too does the pattern pick the
    text to cast (slicing around bad text measured slower: defects are spread). Over
    ``0-9 + - . e E`` Arrow's cast takes exactly the pattern's text (a test tries every string
    of up to 5 of them); other text it takes is a NaN or Infinity spelling, not finite either.
    """
    try:
        return finite_floats(pc.cast(text, pa.float64()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    text = _with_nulls(text, _odd_number_text(text))
    try:
        return finite_floats(pc.cast(text, pa.float64()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        syntax = pc.fill_null(pc.match_substring_regex(text, pattern), False)
    return finite_floats(
        pc.cast(pc.if_else(syntax, text, pa.scalar(None, text.type)), pa.float64())
    )


def finite_floats(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """float64 per value, NaN where it is null, NaN or infinite."""
    total = pc.sum(values).as_py()  # over the non-null values: finite when all of them are
    out = as_numpy(values, np.nan)
    if total is None or math.isfinite(total):
        return out
    return np.where(np.isfinite(out), out, np.nan)


def _odd_number_text(text: pa.Array) -> np.ndarray:
    """Per value, whether it cannot be number text for a reason cheap to see: it is empty, has
    a byte other than ``0-9 + - . e E``, or does not end in a digit or a digit and '.'."""
    offsets, data = text_buffers(text)
    step = data - np.uint8(0x2B)  # '+' ',' '-' '.' '/' '0'..'9' are 0..14
    odd = ((step > 14) & ((data | np.uint8(0x20)) != 0x65)) | (step == 1) | (step == 4)
    out = offsets[1:] == offsets[:-1]
    out[row_of(offsets, np.flatnonzero(odd))] = True
    rows = np.flatnonzero(~out)
    starts, ends = offsets[:-1][rows], offsets[1:][rows]
    last, before = data[ends - 1], data[np.maximum(ends - 2, starts)]
    digit_dot = (last == 0x2E) & (ends - starts >= 2) & (before - np.uint8(0x30) < 10)
    out[rows] = ~((last - np.uint8(0x30) < 10) | digit_dot)
    return out


def _with_nulls(values: pa.Array, rows: np.ndarray) -> pa.Array:
    """``values`` with the rows where ``rows`` is True null too; the other buffers are shared."""
    valid = np.concatenate((np.zeros(values.offset, bool), valid_np(values) & ~rows))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    buffers = [bitmap, *values.buffers()[1:]]
    return pa.Array.from_buffers(values.type, len(values), buffers, offset=values.offset)


def number_values(schema: Schema, batch: Batch, col: Column) -> tuple[np.ndarray, np.ndarray]:
    """(given, float64 value) per row; a value is NaN when it is not a finite number.

    CSV text is cast in one go when it all parses; Arrow's cast takes exactly the schema's
    number text plus NaN/Infinity spellings, which fail as not finite. Only a column with some
    other text goes through the pattern first.
    """
    if col.name in batch.numbers:
        return batch.numbers[col.name]
    data = col.data
    if is_text(data.type):
        given = col.present()
        values = parse_numbers(col.array(), schema.number_text_pattern)
    else:
        given = valid_np(data)
        values = finite_floats(pc.cast(data, pa.float64()))
    batch.numbers[col.name] = (given, values)
    return given, values


_ESCAPE_EXTRA = np.zeros(256, np.int64)
_ESCAPE_EXTRA[:32] = 5  # \u00XX
_ESCAPE_EXTRA[[8, 9, 10, 12, 13, 34, 92]] = 1  # \b \t \n \f \r \" \\


def _escape_extra(values: pa.Array) -> np.ndarray:
    """Per string, the bytes JSON escaping adds (orjson's escapes), from the Arrow buffers."""
    if not is_text(values.type):
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
    size = text_nbytes(values) + 2
    if not exact:
        return size, (size - 2) * 5
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    extra = [_escape_extra(c) for c in chunks]
    return size + (np.concatenate(extra) if extra else 0), np.zeros(len(values), np.int64)


def _leaf_size(
    schema: Schema, batch: Batch, col: Column, rows: np.ndarray | None, exact: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(present, JSON value length, slack) per row for one column; ``rows`` picks a subset."""
    if col.kind in ("number", "numbers"):
        _, values = number_values(schema, batch, col)
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
            return valid_np(col.data), nbytes + 2, nbytes * 5
        info = col.lists()
        count = info.count
        return (count > 0, 2 + info.nbytes + 2 * count + np.maximum(count - 1, 0), info.nbytes * 5)
    data = col.data if rows is None else col.data.take(rows)
    if col.kind == "string":
        size, slack = _text_sizes(data, exact)
        return valid_np(data), size, slack
    present_parts, size_parts, slack_parts = [], [], []
    for _, chunk in list_chunks(data):
        lists = ListParts(chunk)
        item_valid = valid_np(lists.values)
        item_size, item_slack = _text_sizes(lists.values, exact)
        count = lists.sums(item_valid)
        total = lists.sums(item_size * item_valid)
        present_parts.append(count > 0)
        size_parts.append(2 + total + np.maximum(count - 1, 0))
        slack_parts.append(lists.sums(item_slack * item_valid))
    return (np.concatenate(present_parts), np.concatenate(size_parts), np.concatenate(slack_parts))


def json_sizes(
    schema: Schema, batch: Batch, rows: np.ndarray | None, exact: bool
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


def size_bound(schema: Schema, batch: Batch) -> int:
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
