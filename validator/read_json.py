"""Stage 3 for NDJSON: a piece's bytes → batches of records, one record per non-blank line.

Two paths, so that the common record costs one msgspec decode and the rare one costs Python:

* **Fast.** Runs of 64 lines are decoded in one ``decode_lines`` call into the Structs of
  ``validator.json_struct``, which carry most rules as constraints (types, short value lists,
  ranges, attribute limits, no unknown key). A record that decodes breaks none of them. Every
  1024 decoded records the reader takes what the rest needs and frees the Structs while they
  are in cache: the table fields (``Plan.table_fields``) as Arrow strings, for the rules the
  Structs cannot carry, run column-wide in ``check.check_batch`` (patterns, calendars,
  conditions, the required fields, long or often broken value lists, the cross-record keys);
  the attribute names (each distinct name's pattern tested once); the records' compact
  encoding, for the duplicate-key proof. The endpoint's size is bounded from its line's length
  (strings and keys never grow as compact JSON, a number by at most 24 bytes), and the rare
  long line whose bound is over the limit takes the slow path. When msgspec refuses a run, its
  error names the record (or the byte); that record takes the slow path and the rest of the
  run is decoded again, so a bad line costs about its own decode and its run's prefix.
* **Slow.** A line msgspec refused is checked as before: not UTF-8 (``FILE_NOT_UTF8``), not JSON
  (``JSON_SYNTAX``, orjson's message; nesting past orjson's depth limit is a syntax error, not a
  crash), then ``check.check_json_object`` lists every structural problem (``JSON_NOT_OBJECT``,
  ``FIELD_UNKNOWN``, ``FIELD_TYPE``). An object's well-typed fields then go, as a full table
  with the Batch contract's columns, through ``check.check_batch`` like any other record.

Duplicate keys (``JSON_DUPLICATE_KEY``), which msgspec and orjson both resolve silently, are
found by counting string tokens (two unescaped quotes each) in the text and in msgspec's
compact encoding of what was decoded: a repeated key loses a token, so equal counts for a block
prove that none repeats. Where they differ, records are compared one by one, and those whose
counts differ are scanned token by token on the slow path.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
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


DECODE_RECORDS = 64  # records per decode_lines call: a refused record costs its prefix again
TAKE_RECORDS = 1024  # decoded records whose fields are taken (and Structs freed) at once
NAMES_KEPT = 4096  # distinct attribute names whose patterns are remembered as tested
SCAN = 1 << 18  # bytes a numpy scan looks at at once (its temporaries stay in cache)


def _quote_count(data: bytes | np.ndarray) -> int:
    """The unescaped quotes of JSON text (each delimits a string: two a string token)."""
    if isinstance(data, bytes):
        if b"\\" not in data:
            return data.count(b'"')
        arr = np.frombuffer(data, np.uint8)
    else:
        arr = data
    total = sum(int(np.count_nonzero(arr[i : i + SCAN] == QUOTE)) for i in range(0, arr.size, SCAN))
    escaped = _escaped_quotes(arr)
    return total - escaped.size


def _find(arr: np.ndarray, byte: int) -> np.ndarray:
    """Positions of ``byte`` in ``arr``, a slice at a time (no temporary as large as a block)."""
    if arr.size <= SCAN:
        return np.flatnonzero(arr == byte)
    parts = [np.flatnonzero(arr[i : i + SCAN] == byte) + i for i in range(0, arr.size, SCAN)]
    return np.concatenate(parts)


def _escaped_quotes(arr: np.ndarray) -> np.ndarray:
    """Positions of the quotes escaped by an odd run of backslashes."""
    slashes = _find(arr, BACKSLASH)
    if not slashes.size:
        return slashes
    slashes = slashes[slashes + 1 < arr.size]
    after = slashes[arr[slashes + 1] == QUOTE] + 1
    if not after.size:
        return after
    longer = after[(after >= 2) & (arr[np.maximum(after - 2, 0)] == BACKSLASH)]
    if not longer.size:
        return after
    even = []
    for q in longer.tolist():
        run = 0
        while q - run - 1 >= 0 and arr[q - run - 1] == BACKSLASH:
            run += 1
        if not run & 1:
            even.append(q)
    return np.setdiff1d(after, np.asarray(even, np.int64), assume_unique=True)


def _unescaped_quotes(arr: np.ndarray) -> np.ndarray:
    """Positions of the unescaped quotes of JSON text."""
    quotes = _find(arr, QUOTE)
    escaped = _escaped_quotes(arr)
    return np.setdiff1d(quotes, escaped, assume_unique=True) if escaped.size else quotes


class _Block:
    """The records of one buffer while they are decoded: their byte ranges, numbers and lines,
    what the fast records give (the table fields as lists, attribute names, their compact
    encoding for the duplicate-key proof), and the records left to the slow path."""

    def __init__(
        self, buf: bytes, starts: np.ndarray, ends: np.ndarray, records: np.ndarray
    ) -> None:
        self.buf = buf
        self.size = int(ends[-1]) if len(ends) else 0  # the buffer's bytes past it are not ours
        self.view = memoryview(buf)
        self.starts = starts
        self.ends = ends
        self.records = records
        self.starts_list: list[int] = starts.tolist()
        self.ends_list: list[int] = ends.tolist()
        self.plan: Plan = plan()
        p = self.plan
        self.fast_rows: list[int] = []
        self.slow_rows: list[int] = []
        self.columns: dict[str, list[pa.Array]] = {name: [] for name in p.table_fields}
        self.map_keys: dict[str, set[str]] = {prefix: set() for prefix in schema.load().maps}
        self.encoded: list[bytes] = []  # the fast records as compact JSON lines, in order
        self.encoded_quotes = 0
        self.pending: list[Any] = []  # decoded, fields not taken yet
        self.pending_rows: list[int] = []
        self.move: set[int] = set()  # fast indices that must take the slow path after all
        self.bad_names: dict[str, set[str]] = {}  # per map prefix: names breaking a pattern
        self.getters = {name: attrgetter(name) for name in (*p.table_fields, *self.map_keys)}

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
        for r in [*np.flatnonzero(~shaped).tolist(), n]:
            for c in range(lo, r, DECODE_RECORDS):
                self._run(c, min(c + DECODE_RECORDS, r))
            if r < n:
                self._run(r, r + 1)
            lo = r + 1
        self._take()

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
            refused = False
            try:
                objs = decoder.decode_lines(self.view[a:b])
            except msgspec.ValidationError as exc:
                # JSON values that parsed, one of them refused: if the values are the lines
                # (they are unless some line is not one value), that line is refused alone
                bad = self._locate(str(exc), lo, hi)
                refused = True
            except msgspec.DecodeError as exc:
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
            if refused:
                self.slow_rows.append(bad)  # the slow path is exact for any record
            else:
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

    def _accept(self, lo: int, objs: list[Any]) -> None:
        self.pending += objs
        self.pending_rows.extend(range(lo, lo + len(objs)))
        if len(self.pending) >= TAKE_RECORDS:
            self._take()

    def _take(self) -> None:
        """Keep what the block needs of the decoded records: the table fields, the attribute
        names (their patterns tested once per distinct name), their compact encoding; the
        records that may be over the size limit are marked to move. Their Structs are freed."""
        objs, rows = self.pending, self.pending_rows
        if not objs:
            return
        self.pending, self.pending_rows = [], []
        first = len(self.fast_rows)
        self.fast_rows += rows
        for name, column in self.columns.items():
            # nested objects are never None; the strings go to Arrow while still in cache
            column.append(pa.array(list(map(self.getters[name], objs)), pa.string()))
        for prefix, keys in self.map_keys.items():
            get = self.getters[prefix]
            present = set().union(*filter(None, map(get, objs)))
            new = present - keys
            if new:
                self._new_names(prefix, new)
            bad = self.bad_names.get(prefix)
            if bad and not bad.isdisjoint(present):
                # names that break a pattern: their records go to the slow path (it reports)
                for i, m in enumerate(map(get, objs)):
                    if m and not bad.isdisjoint(m):
                        self.move.add(first + i)
        encoded = self.plan.encoder.encode_lines(objs)
        self.encoded.append(encoded)
        self.encoded_quotes += _quote_count(np.frombuffer(encoded, np.uint8))
        self._maybe_too_large(rows, objs, first)

    def _new_names(self, prefix: str, new: set[str]) -> None:
        """Names not seen before in the block: their patterns are tested (once per process
        for the first ``NAMES_KEPT`` names that pass)."""
        self.map_keys[prefix] |= new
        pattern = self.plan.name_patterns.get(prefix)
        if pattern is None:
            return
        tested = self.plan.tested_names.setdefault(prefix, set())
        bad = {k for k in new - tested if not pattern.search(k)}
        if len(tested) < NAMES_KEPT:
            tested |= new - bad
        if bad:
            self.bad_names.setdefault(prefix, set()).update(bad)

    def _maybe_too_large(self, rows: list[int], objs: list[Any], first: int) -> None:
        """Mark the records whose endpoint might be over the size limit as compact JSON."""
        rules = schema.load()
        limit = rules.limits.endpoint_size_bytes
        numbers = [f for f, k in rules.fields.items() if k == "number"]
        # Strings and keys never grow as compact JSON; a number grows by NUMBER_GROWTH at
        # most, and a metric takes at least 6 bytes ("k":0,), so a line this short is safe.
        safe = (limit - NUMBER_GROWTH * len(numbers)) * 6 // (6 + NUMBER_GROWTH)
        at = np.asarray(rows, np.int64)
        length = self.ends[at] - self.starts[at]
        long = np.flatnonzero(length > safe).tolist()
        if not long:
            return
        metrics = [m for m, f in rules.maps.items() if f.kind == "numbers"]
        for i in long:
            count = len(numbers)
            for prefix in metrics:
                holder: Any = objs[i]
                for part in prefix.split("."):
                    holder = getattr(holder, part, None) if holder else None
                count += len(holder) if holder else 0
            if int(length[i]) + NUMBER_GROWTH * count > limit:
                self.move.add(first + i)

    def _repeated_keys(self) -> None:
        """Mark the fast records whose text may repeat a key.

        The proof counts string tokens (two unescaped quotes each). Every string token of the
        compact encoding of a decoded record stands for a distinct one of its text (a key or
        a string value that was kept), so the text has at least as many; it has more exactly
        when some token was dropped: a repeated key (the earlier value is lost) or a table
        field given as null (left out of the encoding: such a record only takes the slow
        path). Equal counts for the whole block prove that no key repeats; otherwise the
        counts are compared per record."""
        if not self.fast_rows:
            return
        arr = np.frombuffer(self.buf, np.uint8, self.size)
        slow = sum(_quote_count(self.line(r)) for r in self.slow_rows)
        if _quote_count(arr) - slow == self.encoded_quotes:
            return
        encoded = b"".join(self.encoded)
        rows = np.asarray(self.fast_rows, np.int64)
        quotes = _unescaped_quotes(arr)
        text = np.searchsorted(quotes, self.ends[rows]) - np.searchsorted(quotes, self.starts[rows])
        e = np.frombuffer(encoded, np.uint8)
        cuts = np.concatenate(([0], np.flatnonzero(e == NL) + 1))
        if cuts[-1] != len(e):
            cuts = np.append(cuts, len(e))
        mine = np.diff(np.searchsorted(_unescaped_quotes(e), cuts))
        self.move.update(np.flatnonzero(text != mine).tolist())

    def fast_table(self) -> tuple[pa.Table, set[str]]:
        """The narrow table of the fast records, and the custom attribute names with a value.
        Records whose text may repeat a key, whose size bound is over the limit, or that
        hold a name breaking a pattern move to the slow path first."""
        self._repeated_keys()
        self.encoded = []
        # a moved record's names are those the slow path finds for it: the union is the same
        names = {f"{prefix}.{key}" for prefix, keys in self.map_keys.items() for key in keys}
        if not self.fast_rows:
            return pa.table({}), names
        table = pa.table(
            {
                name: chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)
                for name, chunks in self.columns.items()
            }
        )
        self.columns = {}
        if self.move:
            move = self.move
            keep = [i for i in range(len(self.fast_rows)) if i not in move]
            self.slow_rows += [self.fast_rows[i] for i in sorted(move)]
            self.fast_rows = [self.fast_rows[i] for i in keep]
            table = table.take(np.asarray(keep, np.int64))
            if not self.fast_rows:
                return pa.table({}), names
        return table, names

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

    whole_buffers = True  # consume uses a buffer up to its last newline: no copy of the rest

    def consume(self, buf: bytes, final: bool) -> int:
        size = len(buf) if final else buf.rfind(b"\n") + 1
        arr = np.frombuffer(buf, np.uint8, size)
        newlines = _find(arr, NL)
        ends_at = newlines if (not size or arr[-1] == NL) else np.append(newlines, size)
        n = len(ends_at)
        line_start = np.empty(n, np.int64)
        line_start[:1] = 0
        line_start[1:] = ends_at[:-1] + 1
        line_end = np.minimum(ends_at + 1, size).astype(np.int64)
        # A line is blank when it holds only white space: look only at lines whose first byte
        # is white space (or that are empty), which are rare.
        length = line_end - line_start
        first = arr[np.minimum(line_start, max(size - 1, 0))] if n else arr[:0]
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
        self.offset += size
        return size


def read_piece(
    stream: IO[bytes], length: int, *, offset: int, line: int, keep_spans: bool = False
) -> Iterator[tuple[Batch, JsonReader]]:
    """Yield the batches of one NDJSON piece as they are read."""
    reader = JsonReader(offset=offset, line=line, keep_spans=keep_spans)
    for batch in reader.read(stream, length):
        yield batch, reader
