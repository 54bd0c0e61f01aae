"""Stage 3 for NDJSON: a piece's bytes → batches of records, one record per non-blank line.

Two paths, so that the common record costs one msgspec decode and the rare one costs Python:

* **Fast.** Runs of lines are decoded in one ``decode_lines`` call into the Structs of
  ``validator.json_struct``, which carry most rules as constraints (types, value lists, ranges,
  attribute limits, no unknown key). A record that decodes breaks none of them; the rules the
  Structs cannot carry (patterns, calendars, conditions, the required fields, the cross-record
  keys) run column-wide in ``check.check_batch`` over a narrow table of just those fields
  (``Plan.table_fields``). The endpoint's size is bounded from its line's length (strings and
  keys never grow as compact JSON, a number by at most 24 bytes), and the rare long line whose
  bound is over the limit takes the slow path. When msgspec refuses a run, its error names the
  record (or the byte); that line is taken out and the rest decoded again, so a bad line costs
  about its own decode.
* **Slow.** A line msgspec refused is checked as before: not UTF-8 (``FILE_NOT_UTF8``), not JSON
  (``JSON_SYNTAX``, orjson's message; nesting past orjson's depth limit is a syntax error, not a
  crash), then ``check.check_json_object`` lists every structural problem (``JSON_NOT_OBJECT``,
  ``FIELD_UNKNOWN``, ``FIELD_TYPE``). An object's well-typed fields then go, as a full table
  with the Batch contract's columns, through ``check.check_batch`` like any other record.

Duplicate keys (``JSON_DUPLICATE_KEY``), which msgspec and orjson both resolve silently, are
found by counting: every key ends with an unescaped quote followed by ``:`` or white space, so
counting those pairs bounds the keys of the text from above; when that bound equals the keys
decoded, no key repeats. Only lines where it does not are scanned token by token.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from itertools import chain
from operator import attrgetter
from typing import IO, Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa

from validator import check, schema
from validator.blocks import PieceReader
from validator.json_struct import Plan, plan
from validator.messages import quote
from validator.model import Batch, Problem

NL, CR, LBRACE, RBRACE = 10, 13, 123, 125
QUOTE, COLON, SPACE, TAB, BACKSLASH = 34, 58, 32, 9, 92
LBRACKET, COMMA = 91, 44
_AT_RECORD = re.compile(r"at `\$\[(\d+)\]")
_AT_BYTE = re.compile(r"\(byte (\d+)\)")
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]:,]')
_TWICE = "appears more than once in one object; which value Pinpoint keeps is undefined"
NUMBER_GROWTH = 24  # the most bytes a JSON number gains as orjson's float text (0 -> 0.0, ...)


def _key_bound(data: bytes) -> int:
    """An upper bound on the object keys in ``data``: unescaped quotes followed by ``:`` or
    JSON white space (each key's closing quote is one). Escaped quotes are subtracted by
    inclusion-exclusion over the backslashes before them."""
    total = 0
    for after in (b":", b" ", b"\t", b"\r", b"\n"):
        count = data.count(b'"' + after)
        total += count
        run, sign = 1, -1
        while count:
            count = data.count(b"\\" * run + b'"' + after)
            total += sign * count
            run, sign = run + 1, -sign
    return total


def _duplicates(line: bytes) -> list[tuple[str, str]]:
    """(dotted key, message) for each key repeated within one object of a JSON line, by a scan
    of its tokens (no recursion, whatever the depth). Keys are compared decoded."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[set[str] | None, str]] = []  # per open container: its keys, its path
    expect_key = False
    pending = ""  # the path of a container that would open now
    for match in _TOKEN.finditer(line):
        token = match.group()
        first = token[:1]
        if first == b"{":
            stack.append((set(), pending))
            expect_key = True
        elif first == b"[":
            stack.append((None, pending))
            expect_key = False
        elif first in (b"}", b"]"):
            if stack:
                stack.pop()
            expect_key = False
        elif first == b",":
            if stack:
                keys, pending = stack[-1]
                expect_key = keys is not None
        elif first == b'"' and expect_key and stack:
            expect_key = False
            try:
                key = orjson.loads(token)
            except orjson.JSONDecodeError:
                continue
            keys, path = stack[-1]
            pending = f"{path}.{key}" if path else str(key)
            if keys is not None:
                if key in keys:
                    out.append(
                        (
                            pending,
                            f"the key {quote(key)} {_TWICE}",
                        )
                    )
                keys.add(key)
    return out


def _compact_keys(data: bytes) -> int:
    """A lower bound on the keys in compact JSON (no white space): unescaped quotes followed
    by ``:``, less those that open a string (after ``{ [ , :``) whose text starts with ``:``."""
    arr = np.frombuffer(data, np.uint8)
    quotes = np.flatnonzero(arr[:-1] == QUOTE)
    quotes = quotes[arr[quotes + 1] == COLON]
    before = arr[np.maximum(quotes - 1, 0)]
    opener = (before == LBRACE) | (before == LBRACKET) | (before == COMMA) | (before == COLON)
    count = int(quotes.size - np.count_nonzero(opener))
    for q in quotes[before == BACKSLASH].tolist():
        run = 0
        while q - run - 1 >= 0 and data[q - run - 1] == BACKSLASH:
            run += 1
        count -= run & 1
    return count


def _count_keys(value: Any) -> int:
    """Keys in a parsed JSON value, counted without recursion."""
    count = 0
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            count += len(item)
            todo.extend(v for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            todo.extend(v for v in item if isinstance(v, dict | list))
    return count


def _slow_line(line: bytes) -> tuple[list[tuple[str | None, str, str]], dict[str, Any] | None]:
    """Every problem of one line msgspec refused, and the object when it is one."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [
            (
                None,
                "FILE_NOT_UTF8",
                f"byte 0x{line[exc.start]:02X} at column {exc.start + 1} "
                "is not UTF-8; Pinpoint reads UTF-8 only",
            )
        ], None
    text = line.rstrip(b"\r\n")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return [(None, "JSON_SYNTAX", f"not valid JSON: {exc.msg} at column {exc.colno}")], None
    found: list[tuple[str | None, str, str]] = []
    if isinstance(value, dict) and _key_bound(text) > _count_keys(value):
        found += [(key, "JSON_DUPLICATE_KEY", message) for key, message in _duplicates(text)]
    found += check.check_json_object(value)
    return found, value if isinstance(value, dict) else None


def _well_typed(value: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    """The endpoint's fields as dotted names, those named in a problem left out (their rules
    were reported), nulls left out. The walk follows the schema, so its depth is bounded."""
    rules = schema.load()
    out: dict[str, Any] = {}

    def walk(obj: dict[str, Any], path: str, members: tuple[str, ...]) -> None:
        for key, item in obj.items():
            dotted = f"{path}.{key}" if path else key
            if key not in members or item is None or dotted in skip:
                continue
            if dotted in rules.containers:
                if isinstance(item, dict):
                    walk(item, dotted, rules.containers[dotted])
            elif dotted in rules.maps:
                if isinstance(item, dict):
                    for name, member in item.items():
                        full = f"{dotted}.{name}"
                        if name and member is not None and full not in skip:
                            out[full] = member
            else:
                out[dotted] = item

    walk(value, "", rules.top_level)
    return out


def _named(value: dict[str, Any]) -> set[str]:
    """The custom attribute names an object gives a value, whatever its type (an array
    counts when some item is not null)."""
    rules = schema.load()
    out: set[str] = set()
    for prefix in rules.maps:
        holder: Any = value
        for part in prefix.split("."):
            holder = holder.get(part) if isinstance(holder, dict) else None
        if isinstance(holder, dict):
            for name, item in holder.items():
                if item is None or (isinstance(item, list) and all(v is None for v in item)):
                    continue
                out.add(f"{prefix}.{name}")
    return out


def _arrow_type(name: str) -> pa.DataType:
    kind = schema.load().kind(name)
    if kind in ("number", "numbers"):
        return pa.float64()
    if kind == "strings":
        return pa.list_(pa.string())
    return pa.string()


def _slow_table(rows: list[dict[str, Any]]) -> pa.Table:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = {}
    for name in names:
        values = [row.get(name) for row in rows]
        t = _arrow_type(name)
        if pa.types.is_floating(t):
            values = [float(v) if v is not None else None for v in values]
        columns[name] = pa.array(values, t)
    if not columns:
        return pa.table({"Id": pa.nulls(len(rows), pa.string())})
    return pa.table(columns)


class _Block:
    """The records of one buffer while they are decoded: their byte ranges, numbers and lines,
    the Structs of those that decoded (``fast``), and the rest (``slow``)."""

    def __init__(
        self, buf: bytes, starts: np.ndarray, ends: np.ndarray, records: np.ndarray
    ) -> None:
        self.buf = buf
        self.view = memoryview(buf)
        self.starts = starts
        self.ends = ends
        self.records = records
        self.starts_list: list[int] = starts.tolist()
        self.ends_list: list[int] = ends.tolist()
        self.fast_rows: list[int] = []
        self.fast: list[Any] = []
        self.slow_rows: list[int] = []
        self.plan: Plan = plan()

    def line(self, r: int) -> bytes:
        return self.buf[self.starts_list[r] : self.ends_list[r]]

    def decode(self) -> None:
        n = len(self.starts)
        if not n:
            return
        buf = self.buf
        arr = np.frombuffer(buf, np.uint8)
        last = self.ends - 1
        last -= arr[last] == NL
        last -= (arr[np.maximum(last, 0)] == CR) & (last > self.starts)
        shaped = (arr[self.starts] == LBRACE) & (arr[np.maximum(last, 0)] == RBRACE)
        lo = 0
        for r in np.flatnonzero(~shaped).tolist():
            if r > lo:
                self._run(lo, r)
            self._run(r, r + 1)
            lo = r + 1
        if lo < n:
            self._run(lo, n)

    def _accept(self, lo: int, objs: list[Any]) -> None:
        self.fast_rows.extend(range(lo, lo + len(objs)))
        self.fast.extend(objs)

    def _run(self, lo: int, hi: int) -> None:
        """Decode records ``[lo, hi)``: in one call, or around the record msgspec names."""
        decoder = self.plan.decoder
        while lo < hi:
            if hi - lo == 1:
                try:
                    obj = decoder.decode(self.view[self.starts_list[lo] : self.ends_list[lo]])
                except (msgspec.ValidationError, msgspec.DecodeError):
                    self.slow_rows.append(lo)
                else:
                    self._accept(lo, [obj])
                return
            a, b = self.starts_list[lo], self.ends_list[hi - 1]
            try:
                objs = decoder.decode_lines(self.view[a:b])
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                bad = self._locate(str(exc), lo, hi)
            else:
                if len(objs) == hi - lo:
                    self._accept(lo, objs)
                    return
                bad = None  # two objects on one line: no record to trust
            if bad is None:
                mid = (lo + hi) // 2
                self._run(lo, mid)
                lo = mid
                continue
            if bad > lo:
                self._run(lo, bad)
            self._run(bad, bad + 1)
            lo = bad + 1

    def _locate(self, message: str, lo: int, hi: int) -> int | None:
        match = _AT_RECORD.search(message)
        if match:
            bad = lo + int(match.group(1))
            return bad if bad < hi else None
        match = _AT_BYTE.search(message)
        if match:
            at = self.starts_list[lo] + int(match.group(1))
            bad = int(np.searchsorted(self.ends[lo:hi], at, side="right")) + lo
            return bad if bad < hi else None
        if "truncated" in message:
            return hi - 1
        return None

    # -- the fast records -------------------------------------------------------------------------

    def fast_table(self) -> tuple[pa.Table, set[str]]:
        """The narrow table of the fast records, and the custom attribute names with a value.
        Records whose text may repeat a key, or whose size bound is over the limit, move to
        the slow path first."""
        p = self.plan
        if not self.fast:
            return pa.table({}), set()
        move = self._repeated_keys() | self._maybe_too_large()
        if move:
            keep = [i for i in range(len(self.fast)) if i not in move]
            self.slow_rows += [self.fast_rows[i] for i in sorted(move)]
            self.fast_rows = [self.fast_rows[i] for i in keep]
            self.fast = [self.fast[i] for i in keep]
        objs = self.fast
        if not objs:
            return pa.table({}), set()
        heads = sorted({name.partition(".")[0] for name in p.table_fields} | set(p.map_heads))
        by_top = dict(zip(heads, zip(*map(attrgetter(*heads), objs), strict=True), strict=True))
        arrays: dict[str, pa.Array] = {}
        for name in p.table_fields:
            head, _, rest = name.partition(".")
            values: Any = by_top[head]
            if rest:
                values = [getattr(v, rest) if v else None for v in values]
            arrays[name] = pa.array(values, pa.string())
        names: set[str] = set()
        for prefix, m in schema.load().maps.items():
            head, _, rest = prefix.partition(".")
            maps = [v for v in by_top[head] if v]
            if rest:
                maps = [v for v in (getattr(c, rest) for c in maps) if v]
            if not maps:
                continue
            numbers = m.kind == "numbers"
            for key in set(chain.from_iterable(maps)):
                if any((d.get(key) is not None) if numbers else d.get(key) for d in maps):
                    names.add(f"{prefix}.{key}")
        return pa.table(arrays), names

    def _key_ends(self) -> np.ndarray:
        """Positions of the quotes that may close a key: unescaped, followed by ``:`` or JSON
        white space."""
        arr = np.frombuffer(self.buf, np.uint8)
        quotes = np.flatnonzero(arr == QUOTE)
        quotes = quotes[quotes + 1 < len(arr)]
        after = arr[quotes + 1]
        closing = (after == COLON) | (after == SPACE) | (after == TAB) | (after == CR)
        closing |= after == NL
        ends_key = quotes[closing]
        escaped = ends_key[(ends_key > 0) & (arr[np.maximum(ends_key - 1, 0)] == BACKSLASH)]
        if escaped.size:
            odd = []
            for q in escaped.tolist():
                run = 0
                while q - run - 1 >= 0 and self.buf[q - run - 1] == BACKSLASH:
                    run += 1
                if run & 1:
                    odd.append(q)
            ends_key = np.setdiff1d(ends_key, np.asarray(odd, np.int64), assume_unique=True)
        return ends_key

    def _repeated_keys(self) -> set[int]:
        """Fast records whose text may repeat a key (see the module).

        The keys of the buffer's text are bounded from above (``_key_ends``), the keys
        decoded from below, in msgspec's compact encoding of the Structs (UNSET members are
        left out, a null is written; the table fields' None is left out too, so an explicit
        null there only sends its record down the slow path). Text keys >= decoded keys,
        so equal bounds prove that no key repeats. Otherwise the same per record."""
        encode = self.plan.encoder.encode
        ends_key = self._key_ends()
        slow = sum(_key_bound(self.line(r)) for r in self.slow_rows)
        if len(ends_key) - slow == _compact_keys(encode(self.fast)):
            return set()
        per_record = np.bincount(
            np.searchsorted(self.ends, ends_key, side="right"), minlength=len(self.ends) + 1
        )
        bounds = per_record[np.asarray(self.fast_rows, np.int64)].tolist()
        return {
            i
            for i, (obj, bound) in enumerate(zip(self.fast, bounds, strict=True))
            if _compact_keys(encode(obj)) != bound
        }

    def _maybe_too_large(self) -> set[int]:
        """Fast records whose endpoint might be over the size limit as compact JSON."""
        rules = schema.load()
        limit = rules.limits.endpoint_size_bytes
        numbers = [f for f, k in rules.fields.items() if k == "number"]
        # Strings and keys never grow as compact JSON; a number grows by NUMBER_GROWTH at
        # most, and a metric takes at least 6 bytes ("k":0,), so a line this short is safe.
        safe = (limit - NUMBER_GROWTH * len(numbers)) * 6 // (6 + NUMBER_GROWTH)
        rows = np.asarray(self.fast_rows, np.int64)
        length = self.ends[rows] - self.starts[rows]
        long = np.flatnonzero(length > safe).tolist()
        if not long:
            return set()
        metrics = [m for m, f in rules.maps.items() if f.kind == "numbers"]
        move = set()
        for i in long:
            count = len(numbers)
            for prefix in metrics:
                holder: Any = self.fast[i]
                for part in prefix.split("."):
                    holder = getattr(holder, part, None) if holder else None
                count += len(holder) if holder else 0
            if int(length[i]) + NUMBER_GROWTH * count > limit:
                move.add(i)
        return move

    # -- the slow records -------------------------------------------------------------------------

    def slow(self, lines: np.ndarray) -> tuple[pa.Table, np.ndarray, list[Problem], set[str]]:
        """The slow records: the table of those that are objects (their row indices in the
        block), every structural problem, and the custom attribute names with a value."""
        problems: list[Problem] = []
        rows: list[int] = []
        values: list[dict[str, Any]] = []
        raw: list[dict[str, Any]] = []
        for r in sorted(self.slow_rows):
            found, value = _slow_line(self.line(r))
            record, line = int(self.records[r]), int(lines[r])
            problems.extend(Problem(record, line, f, c, m) for f, c, m in found)
            if value is not None:
                skip = {f for f, c, _ in found if f is not None and c != "JSON_DUPLICATE_KEY"}
                rows.append(r)
                raw.append(value)
                values.append(_well_typed(value, skip))
        table = _slow_table(values) if values else pa.table({})
        names = set().union(*map(_named, raw)) if raw else set()
        return table, np.asarray(rows, np.int64), problems, names


class JsonReader(PieceReader):
    """Reads one piece of an NDJSON file into batches; keeps counts for the piece result."""

    def consume(self, buf: bytes, final: bool) -> int:
        arr = np.frombuffer(buf, dtype=np.uint8)
        newlines = np.flatnonzero(arr == NL)
        ends_at = newlines if (buf.endswith(b"\n") or not buf) else np.append(newlines, len(buf))
        n = len(ends_at)
        line_start = np.empty(n, np.int64)
        line_start[:1] = 0
        line_start[1:] = ends_at[:-1] + 1
        line_end = np.minimum(ends_at + 1, len(buf)).astype(np.int64)
        # A line is blank when it holds only white space: look only at lines whose first byte
        # is white space (or that are empty), which are rare.
        length = line_end - line_start
        first = arr[np.minimum(line_start, max(len(buf) - 1, 0))] if n else arr[:0]
        maybe = (length <= 1) | (first == 32) | (first == 9) | (first == 13)
        solid = np.ones(n, bool)
        for i in np.flatnonzero(maybe).tolist():
            solid[i] = bool(buf[line_start[i] : line_end[i]].strip())
        rec_line = np.flatnonzero(solid)
        nrec = len(rec_line)
        starts = line_start[rec_line]
        ends = line_end[rec_line]
        records = self.record + np.arange(nrec, dtype=np.int64)
        lines = self.line + rec_line + 1

        block = _Block(buf, starts, ends, records)
        # A buffer's records are many small containers alive at once: the cyclic collector
        # would walk them again and again while they are built (they hold no cycles).
        collecting = gc.isenabled()
        gc.disable()
        try:
            block.decode()
            table, names = block.fast_table()
            block.fast = []  # freed now, so that the collector, back on, has nothing to walk
        finally:
            if collecting:
                gc.enable()
        rows = np.asarray(block.fast_rows, np.int64)
        problems: list[Problem] = []
        if block.slow_rows:
            # One batch in source order (the cross-record rules count keys in arrival order).
            slow_table, slow_rows, problems, slow_names = block.slow(lines)
            names |= slow_names
            if slow_rows.size:
                both = np.concatenate([rows, slow_rows])
                order = np.argsort(both, kind="stable")
                if not table.num_columns:
                    table = pa.table({"Id": pa.nulls(len(rows), pa.string())})
                table = pa.concat_tables([table, slow_table], promote_options="default")
                table = table.take(order) if (np.diff(order) != 1).any() else table
                rows = both[order]
        self.batches.append(
            Batch(
                table,
                records[rows],
                lines[rows],
                self.offset + starts[rows],
                self.offset + ends[rows],
                problems,
                attribute_names=names,
            )
        )
        if self.keep_spans:
            self.spans.append((lines, self.offset + starts, self.offset + ends))
        self.record += nrec
        self.line += len(newlines)
        self.offset += len(buf)
        return len(buf)


def read_piece(
    stream: IO[bytes], length: int, *, offset: int, line: int, keep_spans: bool = False
) -> Iterator[tuple[Batch, JsonReader]]:
    """Yield the batches of one NDJSON piece as they are read."""
    reader = JsonReader(offset=offset, line=line, keep_spans=keep_spans)
    for batch in reader.read(stream, length):
        yield batch, reader
