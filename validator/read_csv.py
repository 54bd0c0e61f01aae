"""Stage 3 for CSV: a piece's bytes → batches of records, with exact physical line numbers.

The structure of a block is found with numpy over byte positions (newlines, quotes, commas,
tabs), never with a Python loop per record:

* a newline ends a record only after an even number of quotes since the record began;
* a record that spans lines is a quoted line break (``CSV_NEWLINE_IN_VALUE``) when it parses as
  one row of the right width within the size bound; otherwise its first line has a broken
  quote (``CSV_QUOTE``) and reading resumes on the next line, so one bad quote never swallows
  the records after it;
* a quote must open a field or close one; anything else is a stray quote (``CSV_QUOTE``);
* the number of fields is one more than the commas outside quotes (``CSV_ROW_WIDTH``).

The sound records are then parsed by pyarrow in one call per block, all columns as strings.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from validator.blocks import PieceReader
from validator.model import Batch, Problem

NL, QUOTE, COMMA, TAB, CR = 10, 34, 44, 9, 13

# Kinds of physical line / record found by the scan.
OK, BLANK, QUOTE_BAD, WIDTH_BAD, NOT_UTF8 = 0, 1, 2, 3, 4

# How far a quoted value may run: a record can never be larger than an endpoint (15 KB) by much.
DEFAULT_BOUND = 64 * 1024


@dataclass(frozen=True)
class Columns:
    """How header positions map onto the batch's columns.

    ``scalars``: (name, position) for single-valued fields; ``lists``: (name, positions) for
    custom attributes, whose repeated headers are several values of one attribute.
    """

    width: int
    scalars: tuple[tuple[str, int], ...]
    lists: tuple[tuple[str, tuple[int, ...]], ...]

    @classmethod
    def from_header(
        cls, names: list[str], drop: set[int] | frozenset[int] = frozenset()
    ) -> Columns:
        scalars: list[tuple[str, int]] = []
        lists: dict[str, list[int]] = {}
        seen: set[str] = set()
        for pos, name in enumerate(names):
            if pos in drop:
                continue
            if name.startswith(("Attributes.", "User.UserAttributes.")):
                lists.setdefault(name, []).append(pos)
            elif name not in seen:
                seen.add(name)
                scalars.append((name, pos))
        return cls(len(names), tuple(scalars), tuple((n, tuple(p)) for n, p in lists.items()))


def parse_header(line: bytes) -> list[str]:
    """The header's names, as the csv module reads one line (quotes allowed)."""
    text = line.decode("utf-8", errors="replace").rstrip("\r\n")
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0] if rows else []


@dataclass
class Scan:
    """What the structural scan found in one buffer."""

    consumed: int  # bytes fully used (records whose end is inside the buffer)
    lines_consumed: int  # newlines inside the consumed bytes
    rec_first: np.ndarray  # first line (index in buffer) of each record
    rec_last: np.ndarray  # last line of each record
    rec_kind: np.ndarray  # OK, QUOTE_BAD, WIDTH_BAD
    rec_fields: np.ndarray | None  # fields counted, or None: left to the parser
    rec_tabs: np.ndarray  # tabs inside the record
    line_start: np.ndarray  # byte offset where each line starts
    line_end: np.ndarray  # byte offset just past each line (after its newline)
    quotes: int = 0  # double quotes in the consumed bytes


def _legit_multiline(text: bytes, width: int) -> bool:
    try:
        rows = list(csv.reader(io.StringIO(text.decode("utf-8", errors="replace")), strict=True))
    except csv.Error:
        return False
    return len(rows) == 1 and len(rows[0]) == width


def _stray(
    arr: np.ndarray, q: np.ndarray, inside: np.ndarray, begin: np.ndarray, limit: int
) -> np.ndarray:
    """Which of the quotes at ``q`` are stray.

    A quote opens a field (at its start), closes one (before a comma, CR, LF or the end), or is
    half of a doubled quote. ``inside`` says whether each quote comes after an odd number of
    quotes in its record (so it closes), ``begin`` where its record starts.
    """
    prev = np.where(q > 0, arr[np.maximum(q - 1, 0)], NL)
    nxt = np.where(q + 1 < len(arr), arr[np.minimum(q + 1, len(arr) - 1)], NL)
    good_open = (q == begin) | (prev == COMMA) | (prev == QUOTE)
    good_close = (nxt == COMMA) | (nxt == CR) | (nxt == NL) | (nxt == QUOTE) | (q + 1 >= limit)
    return np.where(inside, ~good_close, ~good_open)


def scan(buf: bytes, final: bool, width: int, bound: int = DEFAULT_BOUND) -> Scan:
    """Find records, their lines and their structural problems in ``buf``.

    ``buf`` starts at a record boundary and, unless ``final``, ends with a newline. When every
    line holds an even number of quotes (nearly always), each non-blank line is a record and
    only the quotes are looked at; field counts are then left to the parser (``rec_fields``
    is None). Otherwise the full scan follows quote parity across lines.
    """
    arr = np.frombuffer(buf, dtype=np.uint8)
    newlines = np.flatnonzero(arr == NL)
    if final and (len(buf) == 0 or buf[-1] != NL):
        ends_at = np.append(newlines, len(buf))  # the last line has no newline
    else:
        ends_at = newlines
    n = len(ends_at)
    line_start = np.empty(n, np.int64)
    line_start[:1] = 0
    line_start[1:] = ends_at[:-1] + 1
    line_end = np.minimum(ends_at + 1, len(buf)).astype(np.int64)
    # Blank lines (empty, or a lone CR) are not records.
    content = ends_at - line_start
    blank = (content == 0) | (
        (content == 1) & (arr[np.minimum(line_start, max(len(buf) - 1, 0))] == CR)
    )
    has_quotes = buf.find(b'"') >= 0
    quotes = np.flatnonzero(arr == QUOTE) if has_quotes else np.empty(0, np.int64)
    line_of = np.searchsorted(ends_at, quotes)  # the line of each quote
    if not has_quotes or not (np.bincount(line_of, minlength=n) & 1).any():
        rec = np.flatnonzero(~blank)
        kind = np.zeros(len(rec), np.int8)
        tabs = np.zeros(len(rec), np.int64)
        if len(quotes):
            # Quotes before each quote on its own line: its index less that of the line's first.
            first_on_line = np.searchsorted(line_of, line_of)
            inside = ((np.arange(len(quotes)) - first_on_line) & 1) == 1
            stray = _stray(arr, quotes, inside, line_start[line_of], len(buf))
            if stray.any():
                rec_of_line = np.full(n, -1, np.int64)
                rec_of_line[rec] = np.arange(len(rec))
                kind[np.unique(rec_of_line[line_of[stray]])] = QUOTE_BAD
        if buf.find(b"\t") >= 0:
            t_line = np.searchsorted(ends_at, np.flatnonzero(arr == TAB))
            rec_of_line = np.full(n, -1, np.int64)
            rec_of_line[rec] = np.arange(len(rec))
            t_rec = rec_of_line[t_line]
            tabs = np.bincount(t_rec[t_rec >= 0], minlength=len(rec))
        return Scan(
            len(buf), len(newlines), rec, rec, kind, None, tabs, line_start, line_end, len(quotes)
        )
    q_before_end = np.searchsorted(quotes, ends_at)
    q_before_start = np.searchsorted(quotes, line_start)

    firsts: list[np.ndarray] = []
    lasts: list[np.ndarray] = []
    kinds: list[np.ndarray] = []
    i = 0
    window = 1 << 16
    consumed_line = n  # lines [0, consumed_line) are used
    while i < n:
        hi = min(n, i + window)
        parity = (q_before_end[i:hi] - q_before_start[i]) & 1
        ends_rel = np.flatnonzero(parity == 0)
        if len(ends_rel) == 0:
            if hi < n:  # no record end in a whole window: the quote is surely broken
                firsts.append(np.array([i]))
                lasts.append(np.array([i]))
                kinds.append(np.array([QUOTE_BAD]))
                i += 1
                window = 64
                continue
            # Lines i.. are one unfinished record: wait for more bytes, unless it cannot be one.
            if not final and int(line_end[-1] - line_start[i]) <= bound:
                consumed_line = i
                break
            firsts.append(np.array([i]))
            lasts.append(np.array([i]))
            kinds.append(np.array([QUOTE_BAD]))
            i += 1
            window = 64
            continue
        last = i + ends_rel
        first = np.empty_like(last)
        first[0] = i
        first[1:] = last[:-1] + 1
        multi = np.flatnonzero(last > first)
        cut = len(last)
        resync = -1
        for m in multi:  # quoted line breaks: rare, and always a failure, so a loop is fine
            f, la = int(first[m]), int(last[m])
            text = buf[line_start[f] : line_end[la]]
            if len(text) > bound or not _legit_multiline(text, width):
                cut, resync = int(m), f
                break
        firsts.append(first[:cut])
        lasts.append(last[:cut])
        kinds.append(np.zeros(cut, np.int8))
        if resync >= 0:
            firsts.append(np.array([resync]))
            lasts.append(np.array([resync]))
            kinds.append(np.array([QUOTE_BAD]))
            i = resync + 1
            window = 64
        else:
            i = int(last[-1]) + 1
            window = min(window * 4, 1 << 16)
    rec_first = np.concatenate(firsts).astype(np.int64) if firsts else np.empty(0, np.int64)
    rec_last = np.concatenate(lasts).astype(np.int64) if lasts else np.empty(0, np.int64)
    rec_kind = np.concatenate(kinds).astype(np.int8) if kinds else np.empty(0, np.int8)
    # Single blank lines are not records.
    keep = ~((rec_first == rec_last) & blank[rec_first] & (rec_kind == OK))
    rec_first, rec_last, rec_kind = rec_first[keep], rec_last[keep], rec_kind[keep]
    consumed = int(line_start[consumed_line]) if consumed_line < n else len(buf)
    lines_consumed = int(np.count_nonzero(newlines < consumed))

    nrec = len(rec_first)
    rec_of_line = np.full(n, -1, np.int64)
    if nrec:
        # Each line belongs to the record whose first line is the last one at or before it.
        owner = np.searchsorted(rec_first, np.arange(n), side="right") - 1
        valid = (owner >= 0) & (np.arange(n) <= rec_last[np.maximum(owner, 0)])
        rec_of_line[valid] = owner[valid]
    rec_fields = np.ones(nrec, np.int64)
    rec_tabs = np.zeros(nrec, np.int64)
    if nrec:
        limit = consumed
        rec_qbase = q_before_start[rec_first]
        rec_begin = line_start[rec_first]
        # Commas outside quotes count fields.
        commas = np.flatnonzero(arr[:limit] == COMMA)
        if len(commas):
            c_line = np.searchsorted(ends_at, commas)
            c_rec = rec_of_line[c_line]
            ok = c_rec >= 0
            c_rec, cpos = c_rec[ok], commas[ok]
            outside = ((np.searchsorted(quotes, cpos) - rec_qbase[c_rec]) & 1) == 0
            rec_fields += np.bincount(c_rec[outside], minlength=nrec)
        tabs = np.flatnonzero(arr[:limit] == TAB)
        if len(tabs):
            t_rec = rec_of_line[np.searchsorted(ends_at, tabs)]
            rec_tabs = np.bincount(t_rec[t_rec >= 0], minlength=nrec)
        q = quotes[quotes < limit]
        if len(q):
            q_rec = rec_of_line[np.searchsorted(ends_at, q)]
            ok = q_rec >= 0
            q, q_rec = q[ok], q_rec[ok]
            inside = ((np.searchsorted(quotes, q) - rec_qbase[q_rec]) & 1) == 1
            stray = _stray(arr, q, inside, rec_begin[q_rec], limit)
            if stray.any():
                rec_kind[np.unique(q_rec[stray])] = QUOTE_BAD
        rec_kind[(rec_kind == OK) & (rec_fields != width)] = WIDTH_BAD
    return Scan(
        consumed,
        lines_consumed,
        rec_first,
        rec_last,
        rec_kind,
        rec_fields,
        rec_tabs,
        line_start,
        line_end,
        int(np.searchsorted(quotes, consumed)),
    )


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index runs where ``mask`` is true."""
    if not len(mask):
        return []
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _parse_arrow(
    data: bytes, width: int, multiline: bool, invalid: list[tuple[int | None, int]]
) -> pa.Table:
    """Parse sound records in one call; rows of the wrong width are skipped and listed in
    ``invalid`` as (1-based row number among non-blank rows, fields)."""
    names = [f"c{i}" for i in range(width)]

    def skip(row: Any) -> str:
        invalid.append((row.number, row.actual_columns))
        return "skip"

    return pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(
            column_names=names, use_threads=False, block_size=max(len(data) + 1, 1 << 16)
        ),
        parse_options=pacsv.ParseOptions(
            newlines_in_values=multiline, ignore_empty_lines=True, invalid_row_handler=skip
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


def _parse_python(texts: list[bytes], width: int) -> tuple[pa.Table, list[int]]:
    """The slow path: the csv module, one record at a time (only when pyarrow disagrees).
    Returns the table of rows of the right width, and every row's field count."""
    columns: list[list[str | None]] = [[] for _ in range(width)]
    counts = []
    for text in texts:
        row = next(csv.reader(io.StringIO(text.decode("utf-8", errors="replace"))), [])
        counts.append(len(row))
        if len(row) == width:
            for col, value in zip(columns, row, strict=True):
                col.append(value or None)
    table = pa.table({f"c{i}": pa.array(c, pa.string()) for i, c in enumerate(columns)})
    return table, counts


def _to_batch_table(raw: pa.Table, cols: Columns) -> pa.Table:
    n = raw.num_rows
    arrays: dict[str, pa.Array] = {}
    for name, pos in cols.scalars:
        arrays[name] = raw.column(pos).combine_chunks()
    for name, positions in cols.lists:
        parts = [raw.column(p).combine_chunks() for p in positions]
        k = len(parts)
        values = (
            parts[0]
            if k == 1
            else pc.take(
                pa.concat_arrays(parts),
                pa.array((np.arange(n)[:, None] + np.arange(k)[None, :] * n).ravel()),
            )
        )
        offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
        arrays[name] = pa.ListArray.from_arrays(offsets, values)
    return pa.table(arrays) if arrays else pa.table({"_": pa.nulls(n)}).drop_columns(["_"])


def _utf8_bad(text: bytes) -> int | None:
    """Column (0-based byte) of the first invalid UTF-8 byte, or None."""
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


class CsvReader(PieceReader):
    """Reads one piece of a CSV file into batches; keeps counts for the piece result."""

    def __init__(
        self,
        cols: Columns,
        *,
        offset: int,
        line: int,
        bound: int = DEFAULT_BOUND,
        keep_spans: bool = False,
    ) -> None:
        super().__init__(offset=offset, line=line, keep_spans=keep_spans)
        self.cols = cols
        self.bound = bound

    def consume(self, buf: bytes, final: bool) -> int:
        s = scan(buf, final, self.cols.width, self.bound)
        nrec = len(s.rec_first)
        rec_start = s.line_start[s.rec_first]
        rec_end = s.line_end[s.rec_last]
        lines = self.line + s.rec_first + 1
        records = self.record + np.arange(nrec, dtype=np.int64)
        problems: list[Problem] = []
        kind = s.rec_kind
        multi = s.rec_last > s.rec_first

        ok = kind == OK
        fields = (
            s.rec_fields if s.rec_fields is not None else np.full(nrec, self.cols.width, np.int64)
        )
        data = self._sound_bytes(buf, s, ok)
        invalid: list[tuple[int | None, int]] = []
        raw: pa.Table | None
        try:
            raw = _parse_arrow(data, self.cols.width, bool((multi & ok).any()), invalid)
        except pa.ArrowInvalid:
            raw = None
        if raw is not None and invalid:
            # Rows of the wrong width, numbered among the non-blank rows given to pyarrow.
            ok_idx = np.flatnonzero(ok)
            numbers = [n for n, _ in invalid]
            if all(n is not None and 1 <= n <= len(ok_idx) for n in numbers):
                bad = ok_idx[np.array(numbers, np.int64) - 1]
                kind[bad] = WIDTH_BAD
                fields[bad] = [c for _, c in invalid]
                ok = kind == OK
            else:
                raw = None
        if raw is None or raw.num_rows != int(ok.sum()):
            # Invalid UTF-8 (pyarrow checks it) or a quirk the scan and pyarrow see differently:
            # find the records with bad bytes, then parse the rest one record at a time.
            for r in np.flatnonzero(ok):
                col = _utf8_bad(buf[rec_start[r] : rec_end[r]])
                if col is not None:
                    kind[r] = NOT_UTF8
                    byte = buf[rec_start[r] + col]
                    problems.append(
                        Problem(
                            int(records[r]),
                            int(lines[r]),
                            None,
                            "FILE_NOT_UTF8",
                            f"byte 0x{byte:02X} at offset {int(rec_start[r]) + col} "
                            "is not UTF-8; Pinpoint reads UTF-8 only",
                        )
                    )
            kind[kind == WIDTH_BAD] = OK  # the csv module decides the widths now
            ok = kind == OK
            ok_idx = np.flatnonzero(ok)
            texts = [buf[rec_start[r] : rec_end[r]] for r in ok_idx.tolist()]
            raw, counts = _parse_python(texts, self.cols.width)
            counted = np.array(counts, np.int64)
            fields[ok_idx] = counted
            kind[ok_idx[counted != self.cols.width]] = WIDTH_BAD
            ok = kind == OK

        width = self.cols.width
        structural: list[tuple[np.ndarray, str, Callable[[int], str]]] = [
            (
                kind == QUOTE_BAD,
                "CSV_QUOTE",
                lambda r: (
                    "unbalanced or stray double quote; a quote must enclose a whole value, and a "
                    'quote inside one is written twice ("")'
                ),
            ),
            (
                kind == WIDTH_BAD,
                "CSV_ROW_WIDTH",
                lambda r: f"{int(fields[r])} fields, but the header has {width}",
            ),
            (
                ok & multi,
                "CSV_NEWLINE_IN_VALUE",
                lambda r: (
                    "a quoted value holds a line break (the record spans "
                    f"{int(s.rec_last[r] - s.rec_first[r] + 1)} lines); Pinpoint can't import line "
                    "breaks in values"
                ),
            ),
            (
                ok & (s.rec_tabs > 0),
                "CSV_TAB_IN_VALUE",
                lambda r: "a value holds a tab character; Pinpoint can't import tabs in values",
            ),
        ]
        for mask, code, message in structural:
            problems.extend(
                Problem(int(records[r]), int(lines[r]), None, code, message(r))
                for r in np.flatnonzero(mask).tolist()
            )
        self.quote_trouble = self.quote_trouble or bool((kind == QUOTE_BAD).any())
        table = _to_batch_table(raw, self.cols)
        self.batches.append(
            Batch(
                table,
                records[ok],
                lines[ok],
                self.offset + rec_start[ok],
                self.offset + rec_end[ok],
                problems,
            )
        )
        if self.keep_spans:
            self.spans.append((lines, self.offset + rec_start, self.offset + rec_end))
        self.record += nrec
        self.line += s.lines_consumed
        self.offset += s.consumed
        self.quotes += s.quotes
        return s.consumed

    @staticmethod
    def _sound_bytes(buf: bytes, s: Scan, ok: np.ndarray) -> bytes:
        if ok.all():
            return buf[: s.consumed]
        # Keep the lines of sound records (blank lines may stay: pyarrow skips them too).
        n = len(s.line_start)
        keep = np.ones(n, bool)
        bad = np.flatnonzero(~ok)
        for r in bad:
            keep[s.rec_first[r] : s.rec_last[r] + 1] = False
        consumed_lines = int(np.searchsorted(s.line_start, s.consumed))
        keep[consumed_lines:] = False
        view = memoryview(buf)
        return b"".join(view[int(s.line_start[a]) : int(s.line_end[b - 1])] for a, b in _runs(keep))


def read_piece(
    stream: IO[bytes],
    length: int,
    cols: Columns,
    *,
    offset: int,
    line: int,
    keep_spans: bool = False,
) -> Iterator[tuple[Batch, CsvReader]]:
    """Yield the batches of one CSV piece as they are read."""
    reader = CsvReader(cols, offset=offset, line=line, keep_spans=keep_spans)
    for batch in reader.read(stream, length):
        yield batch, reader
