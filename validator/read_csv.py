"""Stage 3 for CSV: a piece's bytes → batches of records, with exact physical line numbers.

What a record is does not depend on how the file is read (blocks, pieces, workers):

* lines end at LF (a CR before it is part of the ending); an empty line, or a lone CR, is not
  a record;
* a record starts at a line start. A line with an even number of double quotes is a record of
  its own. A line with an odd number opens a quoted line break: the record runs to the next
  line with an odd number, and it is one record (``CSV_NEWLINE_IN_VALUE``) when that text is at
  most ``bound`` bytes (64 KiB: an endpoint is at most 15 KB) and parses as one row of the
  header's width. Otherwise its first line alone has a broken quote (``CSV_QUOTE``) and the
  next record starts on the next line: one bad quote costs its own line, never the rest;
* a line longer than ``blocks.MAX_LINE`` is one record too large to be an endpoint
  (``ENDPOINT_TOO_LARGE``), streamed past, never held;
* a CR not followed by LF is a line break inside a quoted value (``CSV_NEWLINE_IN_VALUE``), and
  outside one a classic-Mac line end (``FILE_LINE_ENDINGS``);
* a quote must open a field, close one, or be doubled inside one (else ``CSV_QUOTE``); fields
  are one more than the commas outside quotes (``CSV_ROW_WIDTH``); a tab in a value is
  ``CSV_TAB_IN_VALUE``; bytes that are not UTF-8 are ``FILE_NOT_UTF8``.

Blocks are read at known offsets (``os.pread`` for local files, so nothing is carried and
copied), each parsed by pyarrow in one call with every column as bytes. A block's structure is
then proven cheaply: pyarrow's rows and invalid rows add up to the block's newlines (no quote
swallowed a line), every quote opens or closes a field (tested on the quote positions only),
no bare CR, valid UTF-8 (one Arrow validation of the whole block). Only a block that fails the
proof takes the exact path (:func:`scan`), and within it only the lines with an odd number of
quotes are walked in Python.
"""

from __future__ import annotations

import csv
import io
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from validator import blocks
from validator.blocks import PieceReader
from validator.model import Batch, Problem

NL, QUOTE, COMMA, TAB, CR = 10, 34, 44, 9, 13

# Kinds of record found by the scan.
OK, QUOTE_BAD, WIDTH_BAD, CR_BAD, TOO_LONG = 0, 2, 3, 5, 6

# How far a quoted value may run: a record can never be larger than an endpoint (15 KB) by much.
DEFAULT_BOUND = 64 * 1024
PARSE_BLOCK = 2 << 20  # pyarrow's block in one parse call: runs in cache (8 MiB: ~2x slower)

_EMPTY = np.empty(0, np.int64)


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
    """The header's names, as the csv module reads one line (quotes allowed). Never raises:
    a bare CR stays in the name it is in (written ``\\r``), a broken quote ends the line."""
    text = line.decode("utf-8", errors="replace")
    text = text[:-1] if text.endswith("\n") else text
    text = text[:-1] if text.endswith("\r") else text
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    try:
        rows = list(csv.reader([text]))
    except csv.Error:  # pragma: no cover - one line with no line break cannot fail
        return text.split(",")
    return rows[0] if rows else []


def _bare_crs(buf: bytes | bytearray | memoryview, limit: int, final: bool) -> np.ndarray:
    """Positions of CRs not followed by LF in ``buf[:limit]`` (a CR that ends the file is a
    line end)."""
    arr = np.frombuffer(buf, np.uint8, count=limit)
    cr = np.flatnonzero(arr == CR)
    if not len(cr):
        return cr
    nxt = cr + 1
    last = nxt >= limit
    follow = np.where(last, NL, arr[np.minimum(nxt, limit - 1)])
    bare = follow != NL
    if not final:
        bare |= last  # cannot happen: a non-final buffer ends with LF
    return cr[bare]


def utf8_valid(data: bytes | bytearray | memoryview) -> bool:
    """Whether ``data`` is UTF-8, checked by Arrow in one pass."""
    if not len(data):
        return True
    offsets = pa.py_buffer(np.array([0, len(data)], np.int64).tobytes())
    array = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        array.cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _utf8_bad(text: bytes | bytearray) -> int | None:
    """Column (0-based byte) of the first invalid UTF-8 byte, or None."""
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def _stray(
    arr: np.ndarray, q: np.ndarray, inside: np.ndarray, begin: np.ndarray, limit: int
) -> np.ndarray:
    """Which of the quotes at ``q`` are stray.

    A quote opens a field (at its start), closes one (before a comma, CR, LF or the end), or is
    half of a doubled quote. ``inside`` says whether each quote comes after an odd number of
    quotes in its record (so it closes), ``begin`` where its record starts.
    """
    prev = np.where(q > 0, arr[np.maximum(q - 1, 0)], NL)
    nxt = np.where(q + 1 < limit, arr[np.minimum(q + 1, limit - 1)], NL)
    good_open = (q == begin) | (prev == COMMA) | (prev == QUOTE) | (prev == NL)
    good_close = (nxt == COMMA) | (nxt == CR) | (nxt == NL) | (nxt == QUOTE) | (q + 1 >= limit)
    return np.where(inside, ~good_close, ~good_open)


def _legit_multiline(text: bytes | bytearray, width: int) -> bool:
    try:
        rows = list(csv.reader(io.StringIO(text.decode("utf-8", errors="replace")), strict=True))
    except csv.Error:
        return False
    return len(rows) == 1 and len(rows[0]) == width


@dataclass
class Scan:
    """What the exact scan found in one buffer."""

    consumed: int  # bytes fully used (records whose end is inside the buffer)
    lines_consumed: int  # newlines inside the consumed bytes
    rec_first: np.ndarray  # first line (index in buffer) of each record
    rec_last: np.ndarray  # last line of each record
    rec_kind: np.ndarray  # OK, QUOTE_BAD, WIDTH_BAD, CR_BAD
    rec_fields: np.ndarray  # fields counted outside quotes
    rec_tabs: np.ndarray  # tabs inside the record
    rec_break: np.ndarray  # a line break inside a quoted value (LF or bare CR)
    line_start: np.ndarray  # byte offset where each line starts
    line_end: np.ndarray  # byte offset just past each line (after its newline)


def _lines(arr: np.ndarray, final: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Newline positions, and each line's end position, start and end (past its newline)."""
    size = len(arr)
    newlines = np.flatnonzero(arr == NL)
    last_open = final and (size == 0 or arr[-1] != NL)  # the last line has no newline
    ends_at = np.append(newlines, size) if last_open else newlines
    n = len(ends_at)
    line_start = np.empty(n, np.int64)
    line_start[:1] = 0
    line_start[1:] = ends_at[:-1] + 1
    line_end = np.minimum(ends_at + 1, size).astype(np.int64)
    return newlines, ends_at, line_start, line_end


def scan(
    buf: bytes | bytearray,
    final: bool,
    width: int,
    bound: int = DEFAULT_BOUND,
    *,
    count_fields: bool = True,
    avail: int | None = None,
) -> Scan:
    """The exact path: records, their lines and their structural problems in ``buf``.

    ``buf`` starts at a record start and, unless ``final``, ends with a newline. Lines with an
    even number of quotes are records of their own; only the lines with an odd number are
    walked, one quoted line break (or broken quote) at a time. A quoted line break that may end
    past the buffer (at most ``bound`` bytes from its start to the end of the ``avail`` bytes
    read, which may run past ``buf``) is left unconsumed. A line longer than
    ``blocks.MAX_LINE`` + 1 bytes is a record of its own (``TOO_LONG``), and no quoted line
    break runs through one. Without ``count_fields`` the widths are left to the parser
    (``rec_fields`` is all the header's width).
    """
    arr = np.frombuffer(buf, dtype=np.uint8)
    newlines, ends_at, line_start, line_end = _lines(arr, final)
    n = len(ends_at)
    content = ends_at - line_start
    blank = (content == 0) | (
        (content == 1) & (arr[np.minimum(line_start, max(len(buf) - 1, 0))] == CR)
    )
    quotes = np.flatnonzero(arr == QUOTE)
    line_of = np.searchsorted(ends_at, quotes)
    odd = np.flatnonzero(np.bincount(line_of, minlength=n) & 1).tolist()
    too_long = (line_end - line_start) > blocks.MAX_LINE + 1
    long_lines = np.flatnonzero(too_long)
    avail = len(buf) if avail is None else avail

    firsts: list[np.ndarray] = []
    lasts: list[np.ndarray] = []
    kinds: list[np.ndarray] = []

    def singles(a: int, b: int) -> None:
        if b > a:
            r = np.arange(a, b, dtype=np.int64)
            firsts.append(r)
            lasts.append(r)
            kinds.append(np.zeros(b - a, np.int8))

    def one(first: int, last: int, kind: int) -> None:
        firsts.append(np.array([first], np.int64))
        lasts.append(np.array([last], np.int64))
        kinds.append(np.array([kind], np.int8))

    i = 0
    k = 0
    consumed_line = n
    while k < len(odd):
        first = odd[k]
        singles(i, first)
        if too_long[first]:
            one(first, first, TOO_LONG)
            i, k = first + 1, k + 1
            continue
        if k + 1 < len(odd):
            last = odd[k + 1]
            start, end = int(line_start[first]), int(line_end[last])
            if (
                end - start <= bound
                and not too_long[first : last + 1].any()
                and _legit_multiline(buf[start:end], width)
            ):
                one(first, last, OK)
                i, k = last + 1, k + 2
                continue
        elif not final and avail - int(line_start[first]) <= bound:
            consumed_line = i = first  # may close in the next buffer: wait for it
            break
        one(first, first, QUOTE_BAD)
        i, k = first + 1, k + 1
    if consumed_line == n:
        singles(i, n)
    rec_first = np.concatenate(firsts) if firsts else _EMPTY
    rec_last = np.concatenate(lasts) if lasts else _EMPTY
    rec_kind = np.concatenate(kinds) if kinds else np.empty(0, np.int8)
    keep = ~((rec_first == rec_last) & blank[rec_first] & (rec_kind == OK))
    rec_first, rec_last, rec_kind = rec_first[keep], rec_last[keep], rec_kind[keep]
    if len(long_lines):
        single = rec_first == rec_last
        rec_kind[single & too_long[rec_first]] = TOO_LONG
    consumed = int(line_start[consumed_line]) if consumed_line < n else len(buf)
    lines_consumed = int(np.count_nonzero(newlines < consumed))

    nrec = len(rec_first)
    rec_fields = np.ones(nrec, np.int64) if count_fields else np.full(nrec, width, np.int64)
    rec_tabs = np.zeros(nrec, np.int64)
    rec_break = rec_last > rec_first
    if nrec:
        # Each line belongs to the record whose first line is the last one at or before it.
        rec_of_line = np.full(n, -1, np.int64)
        owner = np.searchsorted(rec_first, np.arange(n), side="right") - 1
        valid = (owner >= 0) & (np.arange(n) <= rec_last[np.maximum(owner, 0)])
        rec_of_line[valid] = owner[valid]
        limit = consumed
        rec_qbase = np.searchsorted(quotes, line_start[rec_first])
        rec_begin = line_start[rec_first]

        def owners(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            """The record of each position (dropping blank lines') and whether it is inside a
            quoted value."""
            rec = rec_of_line[np.searchsorted(ends_at, pos)]
            ok = rec >= 0
            pos, rec = pos[ok], rec[ok]
            inside = ((np.searchsorted(quotes, pos) - rec_qbase[rec]) & 1) == 1
            return pos, rec, inside

        commas = np.flatnonzero(arr[:limit] == COMMA) if count_fields else _EMPTY
        if len(commas):
            _, c_rec, inside = owners(commas)
            rec_fields += np.bincount(c_rec[~inside], minlength=nrec)
        tabs = np.flatnonzero(arr[:limit] == TAB)
        if len(tabs):
            _, t_rec, _ = owners(tabs)
            rec_tabs = np.bincount(t_rec, minlength=nrec)
        nq = int(np.searchsorted(quotes, limit))
        if nq:
            q_rec = rec_of_line[line_of[:nq]]
            ok = q_rec >= 0
            q, q_rec, q_idx = quotes[:nq][ok], q_rec[ok], np.flatnonzero(ok)
            inside = ((q_idx - rec_qbase[q_rec]) & 1) == 1
            stray = _stray(arr, q, inside, rec_begin[q_rec], limit)
            if stray.any():
                bad = np.unique(q_rec[stray])
                rec_kind[bad[rec_kind[bad] != TOO_LONG]] = QUOTE_BAD
        bare = _bare_crs(buf, limit, final and limit == len(buf))
        if len(bare):
            _, b_rec, inside = owners(bare)
            rec_break[b_rec[inside]] = True
            outside = np.unique(b_rec[~inside])
            rec_kind[outside[rec_kind[outside] == OK]] = CR_BAD
        rec_kind[(rec_kind == OK) & (rec_fields != width)] = WIDTH_BAD
    return Scan(
        consumed,
        lines_consumed,
        rec_first,
        rec_last,
        rec_kind,
        rec_fields,
        rec_tabs,
        rec_break,
        line_start,
        line_end,
    )


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index runs where ``mask`` is true."""
    if not len(mask):
        return []
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _parse_arrow(
    data: bytes | bytearray | memoryview, width: int, invalid: list[tuple[int | None, int]]
) -> pa.Table:
    """Parse records in one call, every column as bytes; rows of the wrong width are skipped
    and listed in ``invalid`` as (1-based row number among non-blank rows, fields). The data
    must be UTF-8 (pyarrow decodes a skipped row's text before it calls the handler)."""
    names = [f"c{i}" for i in range(width)]

    def skip(row: Any) -> str:
        invalid.append((row.number, row.actual_columns))
        return "skip"

    return pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(
            column_names=names, use_threads=False, block_size=PARSE_BLOCK
        ),
        parse_options=pacsv.ParseOptions(
            newlines_in_values=True, ignore_empty_lines=True, invalid_row_handler=skip
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.binary()),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        ),
    )


def _parse_python(texts: Sequence[bytes | bytearray], width: int) -> tuple[pa.Table, list[int]]:
    """The slow path: the csv module, one record at a time (only when pyarrow disagrees).
    Returns the table of rows of the right width, and every row's field count (-1: the csv
    module could not read it)."""
    columns: list[list[bytes | None]] = [[] for _ in range(width)]
    counts = []
    for text in texts:
        try:
            row = next(csv.reader(io.StringIO(text.decode("utf-8", errors="replace"))), [])
        except csv.Error:
            counts.append(-1)
            continue
        counts.append(len(row))
        if len(row) == width:
            for col, value in zip(columns, row, strict=True):
                col.append(value.encode() if value else None)
    table = pa.table({f"c{i}": pa.array(c, pa.binary()) for i, c in enumerate(columns)})
    return table, counts


def _as_text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column parsed as bytes, seen as strings (its block was checked to be UTF-8); its
    chunks are left as they are, to be combined only by a check that reads the column."""
    return pa.chunked_array([c.view(pa.string()) for c in col.chunks], pa.string())


def _to_batch_table(raw: pa.Table, cols: Columns) -> pa.Table:
    n = raw.num_rows
    arrays: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name, pos in cols.scalars:
        arrays[name] = _as_text(raw.column(pos))
    for name, positions in cols.lists:
        parts = [_as_text(raw.column(p)).combine_chunks() for p in positions]
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


def _quotes_proper(arr: np.ndarray) -> bool:
    """Whether the quotes of a block (from a record start) open and close fields in turn: an
    even number, each even-numbered one opening a field (after a comma, a newline, a quote or
    at the start), each odd-numbered one closing one (before a comma, CR, LF, a quote or the
    end). With pyarrow's rows matching the newlines, this proves no line holds a stray or an
    unbalanced quote. Only the bytes around the quotes are looked at."""
    q = np.flatnonzero(arr == QUOTE)
    if len(q) & 1:
        return False
    if not len(q):
        return True
    opens, closes = q[0::2], q[1::2]
    prev = arr[np.maximum(opens - 1, 0)]
    good = (prev == COMMA) | (prev == NL) | (prev == QUOTE)
    good[0] |= opens[0] == 0
    if not good.all():
        return False
    nxt = arr[np.minimum(closes + 1, len(arr) - 1)]
    good = (nxt == COMMA) | (nxt == NL) | (nxt == CR) | (nxt == QUOTE)
    good[-1] |= closes[-1] + 1 >= len(arr)
    return bool(good.all())


class _Source:
    """Bytes of a piece at known offsets: ``os.pread`` on a local file, else a forward-only
    buffer over the stream (S3, standard input)."""

    def __init__(self, stream: IO[bytes], offset: int) -> None:
        self.stream = stream
        self.fd: int | None = None
        try:
            fd = stream.fileno()
            if stat.S_ISREG(os.fstat(fd).st_mode):
                self.fd = fd
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            pass
        self.start = offset  # file offset of self.buf[0]
        self.buf = b""
        self.eof = False
        self.scratch = bytearray()
        self.block = bytearray()

    def _refused(self, pos: int) -> None:
        """A read the system refused: go on through the stream, whose own read says which
        file and why (``source.open_binary``)."""
        self.fd = None
        self.stream.seek(pos)
        self.start, self.buf, self.eof = pos, b"", False

    def fetch(self, pos: int, n: int) -> bytes | bytearray:
        """Up to ``n`` bytes from file offset ``pos`` (fewer only at the end of the file); a
        local file's are valid until the next fetch."""
        if self.fd is not None:
            # Into one buffer, reused: pyarrow copies what it parses, and nothing else keeps a
            # block past the next fetch (no allocation and page faults of 8 MiB a block).
            if len(self.block) != n:
                self.block = bytearray(n)
            view = memoryview(self.block)
            got = 0
            try:
                while got < n:
                    k = os.preadv(self.fd, [view[got:]], pos + got)
                    if not k:
                        break
                    got += k
            except OSError:
                self._refused(pos)
            else:
                return self.block if got == n else bytes(view[:got])
        if pos > self.start:
            self.buf = self.buf[pos - self.start :]
            self.start = pos
        while len(self.buf) < n and not self.eof:
            # what is missing, no more: the buffer is then the block itself (S3, pipes), not a
            # block and the next one copied twice
            chunk = self.stream.read(n - len(self.buf))
            if not chunk:
                self.eof = True
                break
            self.buf += chunk
        return self.buf[:n]

    def scan(self, pos: int, n: int, keep: bool = True) -> tuple[bytes | bytearray, int]:
        """Up to ``n`` bytes at ``pos`` to look at and let go (a local file reads them into
        one reused buffer): the bytes and how many there are. A stream keeps what it read
        from its current start unless ``keep`` is false (then it drops what is before
        ``pos``)."""
        if self.fd is None:
            if not keep:
                data = self.fetch(pos, n)
                return data, len(data)
            while len(self.buf) < pos - self.start + n and not self.eof:
                chunk = self.stream.read(max(pos - self.start + n - len(self.buf), 1 << 16))
                if not chunk:
                    self.eof = True
                    break
                self.buf += chunk
            data = self.buf[pos - self.start : pos - self.start + n]
            return data, len(data)
        if len(self.scratch) < n:
            self.scratch = bytearray(n)
        view = memoryview(self.scratch)[:n]
        got = 0
        try:
            while got < n:
                k = os.preadv(self.fd, [view[got:]], pos + got)
                if not k:
                    break
                got += k
        except OSError:
            self._refused(pos)
            return self.scan(pos, n, keep)
        return self.scratch, got

    def find_newline(self, pos: int, stop: int) -> tuple[int, int]:
        """The offset of the first LF in ``[pos, stop)``, or -1; and where the data ends if
        it ends before ``stop`` (else ``stop``)."""
        while pos < stop:
            n = min(blocks.BLOCK_SIZE, stop - pos)
            data, got = self.scan(pos, n)
            nl = data.find(b"\n", 0, got)
            if nl >= 0:
                return pos + nl, stop
            if got < n:
                return -1, pos + got
            pos += got
        return -1, stop


_QUOTE_MESSAGE = (
    "unbalanced or stray double quote; a quote must enclose a whole value, and a quote inside "
    'one is written twice ("")'
)
_CR_MESSAGE = (
    "a bare CR (a classic Mac line end) inside the line; Pinpoint reads lines that end in LF "
    "or CRLF"
)


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

    def read(self, stream: IO[bytes], length: int) -> Iterator[Batch]:
        """Read the records that start in the next ``length`` bytes (-1: to the end)."""
        src = _Source(stream, self.offset)
        end = None if length < 0 else self.offset + length
        want = blocks.BLOCK_SIZE
        while True:
            pos = self.offset
            n = want if end is None else min(want, end - pos)
            if n <= 0:
                return
            buf = src.fetch(pos, n)
            if not buf:
                return
            final = len(buf) < n or (end is not None and pos + len(buf) >= end)
            if not final:
                cut = buf.rfind(b"\n") + 1
                if cut == 0:
                    # A line longer than the block: look for its end without holding it.
                    stop = pos + blocks.MAX_LINE + 1
                    stop = stop if end is None else min(stop, end)
                    nl, data_end = src.find_newline(pos + len(buf), stop)
                    if nl >= 0:
                        want = nl + 1 - pos  # then read it whole
                        continue
                    if data_end < stop:
                        want = data_end - pos + 1  # to the end of the file: a final buffer
                        continue
                    if stop == end:
                        want = end - pos  # to the end of the piece
                        continue
                    self._overlong(src, pos, end)
                    used = 1
                else:
                    used = self.consume(buf, False, len(buf), cut)
            else:
                used = self.consume(buf, True)
            while self.batches:
                yield self.batches.pop(0)
            if final and used:
                return
            want = blocks.BLOCK_SIZE if used else 2 * len(buf)

    def _overlong(self, src: _Source, pos: int, end: int | None) -> None:
        """A line longer than MAX_LINE at ``pos``: one record, streamed past to its newline."""
        length = 0
        quotes = 0
        while True:
            n = blocks.BLOCK_SIZE if end is None else min(blocks.BLOCK_SIZE, end - pos - length)
            chunk, got = src.scan(pos + length, n, keep=False) if n > 0 else (b"", 0)
            nl = chunk.find(b"\n", 0, got)
            if nl >= 0:
                quotes += chunk.count(b'"', 0, nl + 1)
                self.overlong(length + nl + 1, quotes, True)
                return
            length += got
            quotes += chunk.count(b'"', 0, got)
            if got < n or not got:
                self.overlong(length, quotes, False)
                return

    def consume(
        self,
        buf: bytes | bytearray,
        final: bool,
        avail: int | None = None,
        limit: int | None = None,
    ) -> int:
        """Read the records of ``buf[:limit]`` (from a record start; ending with a newline
        unless ``final``; ``avail`` bytes were read from its start) and return the bytes used.
        The fast path reads ``buf`` in place; only the exact path takes a copy of the part."""
        limit = len(buf) if limit is None else limit
        if not self._fast(buf, limit, final):
            self._exact(buf[:limit] if limit < len(buf) else buf, final, avail or limit)
        return limit if final else self._used

    # -- the fast path: every line one record, proven by counts ------------------------------

    def _fast(self, data: bytes | bytearray, limit: int, final: bool) -> bool:
        """Every line of ``data[:limit]`` one record, proven by counts; False if not proven."""
        width = self.cols.width
        arr = np.frombuffer(data, np.uint8, count=limit)
        buf = memoryview(data)[:limit]
        newlines = int(np.count_nonzero(arr == NL))
        lines = newlines + (1 if final and limit and arr[-1] != NL else 0)
        if not lines or limit > blocks.MAX_LINE + 1:
            return False  # a line may be too long to be an endpoint
        if data.find(b"\r", 0, limit) >= 0 and len(_bare_crs(data, limit, final)):
            return False
        if not _quotes_proper(arr) or not utf8_valid(buf):
            return False
        invalid: list[tuple[int | None, int]] = []
        try:
            raw = _parse_arrow(buf, width, invalid)
        except pa.ArrowInvalid:
            return False
        if raw.num_rows + len(invalid) != lines:
            return False
        numbers = np.array([-1 if r is None else r for r, _ in invalid], np.int64) - 1
        if len(numbers) and (numbers.min() < 0 or numbers.max() >= lines):
            return False
        ok = np.ones(lines, bool)
        ok[numbers] = False
        base = self.line + 1
        problems = [
            Problem(
                self.record + int(r),
                base + int(r),
                None,
                "CSV_ROW_WIDTH",
                f"{fields} fields, but the header has {width}",
            )
            for r, (_, fields) in zip(numbers.tolist(), invalid, strict=True)
        ]
        if data.find(b"\t", 0, limit) >= 0:
            tabs = np.flatnonzero(arr == TAB)
            # The line of each tab: the newlines before it (every line is one record here).
            t_line = np.unique(np.searchsorted(np.flatnonzero(arr == NL), tabs))
            problems += [
                Problem(self.record + r, base + r, None, "CSV_TAB_IN_VALUE", _TAB_MESSAGE)
                for r in t_line[ok[t_line]].tolist()
            ]
            problems.sort(key=lambda p: p.record or 0)
        idx = np.arange(lines, dtype=np.int64)
        if self.keep_spans:
            # Byte ranges of every record, only when asked (repair and split need them).
            _, _, starts, ends = _lines(arr, final)
            self.spans.append((idx + base, self.offset + starts, self.offset + ends))
        else:
            starts = ends = _EMPTY
        self._emit(raw, idx[ok] + self.record, idx[ok] + base, starts, ends, ok, problems)
        self.record += lines
        self.line += newlines
        self.offset += len(buf)
        self._used = len(buf)
        return True

    def _emit(
        self,
        raw: pa.Table,
        records: np.ndarray,
        lines: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        ok: np.ndarray,
        problems: list[Problem],
    ) -> None:
        table = _to_batch_table(raw, self.cols)
        if self.keep_spans:
            starts, ends = self.offset + starts[ok], self.offset + ends[ok]
        else:
            starts = ends = _EMPTY
        self.batches.append(Batch(table, records, lines, starts, ends, problems))

    # -- the exact path ----------------------------------------------------------------------

    def _exact(self, buf: bytes | bytearray, final: bool, avail: int) -> None:
        width = self.cols.width
        s = scan(buf, final, width, self.bound, count_fields=False, avail=avail)
        nrec = len(s.rec_first)
        rec_start = s.line_start[s.rec_first]
        rec_end = s.line_end[s.rec_last]
        lines = self.line + s.rec_first + 1
        records = self.record + np.arange(nrec, dtype=np.int64)
        kind = s.rec_kind
        fields = s.rec_fields.copy()
        problems: list[Problem] = []
        # Bytes that are not UTF-8: their record is not parsed.
        bad_utf8 = np.zeros(nrec, bool)
        if not utf8_valid(memoryview(buf)[: s.consumed]):
            for r in np.flatnonzero(kind != TOO_LONG).tolist():
                col = _utf8_bad(buf[rec_start[r] : rec_end[r]])
                if col is not None:
                    bad_utf8[r] = True
                    byte = buf[rec_start[r] + col]
                    problems.append(
                        Problem(
                            int(records[r]),
                            int(lines[r]),
                            None,
                            "FILE_NOT_UTF8",
                            f"byte 0x{byte:02X} at offset {self.offset + int(rec_start[r]) + col}"
                            " is not UTF-8; Pinpoint reads UTF-8 only",
                        )
                    )
        ok = (kind == OK) & ~bad_utf8
        for r in np.flatnonzero((kind == OK) & bad_utf8).tolist():
            # Not parsed, but a wrong width is its own problem: count the fields here.
            counts = _parse_python([buf[rec_start[r] : rec_end[r]]], width)[1]
            fields[r] = counts[0]
            if counts[0] != width:
                kind[r] = WIDTH_BAD if counts[0] >= 0 else QUOTE_BAD
        data = self._sound_bytes(buf, s, ok)
        invalid: list[tuple[int | None, int]] = []
        raw: pa.Table | None
        try:
            raw = _parse_arrow(data, width, invalid)
        except pa.ArrowInvalid:
            raw = None
        ok_idx = np.flatnonzero(ok)
        if raw is not None and invalid:
            # Rows of the wrong width, numbered among the records given to pyarrow.
            numbers = np.array([-1 if r is None else r for r, _ in invalid], np.int64) - 1
            if numbers.min() >= 0 and numbers.max() < len(ok_idx):
                bad = ok_idx[numbers]
                kind[bad] = WIDTH_BAD
                fields[bad] = [c for _, c in invalid]
                ok = (kind == OK) & ~bad_utf8
            else:
                raw = None
        if raw is None or raw.num_rows != int(ok.sum()):
            # A quirk the scan and pyarrow see differently: the csv module, record by record.
            kind[ok_idx] = OK
            ok = (kind == OK) & ~bad_utf8
            texts = [buf[rec_start[r] : rec_end[r]] for r in ok_idx.tolist()]
            raw, counts = _parse_python(texts, width)
            counted = np.array(counts, np.int64)
            fields[ok_idx] = counted
            kind[ok_idx[counted < 0]] = QUOTE_BAD
            kind[ok_idx[(counted >= 0) & (counted != width)]] = WIDTH_BAD
            ok = (kind == OK) & ~bad_utf8

        structural: list[tuple[np.ndarray, str, Callable[[int], str]]] = [
            (kind == QUOTE_BAD, "CSV_QUOTE", lambda r: _QUOTE_MESSAGE),
            (
                kind == TOO_LONG,
                "ENDPOINT_TOO_LARGE",
                lambda r: (
                    f"a line of {int(rec_end[r] - rec_start[r]):,} bytes with no line "
                    "break; an endpoint is at most 15 KB: is this really an endpoint file?"
                ),
            ),
            (kind == CR_BAD, "FILE_LINE_ENDINGS", lambda r: _CR_MESSAGE),
            (
                kind == WIDTH_BAD,
                "CSV_ROW_WIDTH",
                lambda r: f"{int(fields[r])} fields, but the header has {width}",
            ),
            (
                ok & s.rec_break,
                "CSV_NEWLINE_IN_VALUE",
                lambda r: (
                    "a quoted value holds a line break (the record spans "
                    f"{int(s.rec_last[r] - s.rec_first[r] + 1)} lines); Pinpoint can't import line "
                    "breaks in values"
                    if s.rec_last[r] > s.rec_first[r]
                    else "a quoted value holds a bare CR (a line break); Pinpoint can't import "
                    "line breaks in values"
                ),
            ),
            (ok & (s.rec_tabs > 0), "CSV_TAB_IN_VALUE", lambda r: _TAB_MESSAGE),
        ]
        for mask, code, message in structural:
            problems.extend(
                Problem(int(records[r]), int(lines[r]), None, code, message(r))
                for r in np.flatnonzero(mask).tolist()
            )
        problems.sort(key=lambda p: p.record or 0)
        self._emit(raw, records[ok], lines[ok], rec_start, rec_end, ok, problems)
        if self.keep_spans:
            self.spans.append((lines, self.offset + rec_start, self.offset + rec_end))
        self.record += nrec
        self.line += s.lines_consumed
        self.offset += s.consumed
        self._used = s.consumed

    @staticmethod
    def _sound_bytes(buf: bytes | bytearray, s: Scan, ok: np.ndarray) -> bytes | bytearray:
        if ok.all():
            return buf[: s.consumed]
        # Keep the lines of sound records (blank lines may stay: pyarrow skips them too).
        n = len(s.line_start)
        keep = np.ones(n, bool)
        for r in np.flatnonzero(~ok):
            keep[s.rec_first[r] : s.rec_last[r] + 1] = False
        consumed_lines = int(np.searchsorted(s.line_start, s.consumed))
        keep[consumed_lines:] = False
        view = memoryview(buf)
        return b"".join(view[int(s.line_start[a]) : int(s.line_end[b - 1])] for a, b in _runs(keep))


_TAB_MESSAGE = "a value holds a tab character; Pinpoint can't import tabs in values"


def read_piece(
    stream: IO[bytes],
    length: int,
    cols: Columns,
    *,
    offset: int,
    line: int,
    keep_spans: bool = False,
) -> Iterator[tuple[Batch, CsvReader]]:
    """Yield the batches of one CSV piece as they are read: the records that start in its
    ``length`` bytes from ``offset`` (-1: to the end of the file)."""
    reader = CsvReader(cols, offset=offset, line=line, keep_spans=keep_spans)
    for batch in reader.read(stream, length):
        yield batch, reader
