"""Stage 3 for NDJSON: a piece's bytes → batches of records, one record per non-blank line.

A block is parsed by pyarrow's JSON reader in one call, against the schema's explicit types.
When pyarrow stops at a row (bad JSON, a value of the wrong type), that one line is checked in
Python and parsing resumes after it; only when pyarrow's row and the lines disagree is a whole
block checked line by line. Nested objects are flattened to dotted column names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import IO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from validator import check, schema
from validator.blocks import PieceReader
from validator.model import Batch, Problem

NL = 10
_ROW = re.compile(r" in row (\d+)\s*$")


@cache
def _parse_options() -> pajson.ParseOptions:
    return pajson.ParseOptions(
        explicit_schema=schema.load().arrow_json_schema(),
        unexpected_field_behavior="infer",
        newlines_in_values=False,
    )


def _parse(data: bytes) -> pa.Table:
    return pajson.read_json(
        pa.BufferReader(data),
        read_options=pajson.ReadOptions(use_threads=False, block_size=max(len(data) + 1, 1 << 16)),
        parse_options=_parse_options(),
    )


def flatten(table: pa.Table) -> pa.Table:
    """The schema's nested objects become dotted columns: ``Location.Latitude``,
    ``Attributes.plan``, ``User.UserAttributes.plan``. Other objects stay nested, so that an
    object where a string belongs is a type error, not a field named ``x.y``."""
    rules = schema.load()
    nested = set(rules.containers) | set(rules.maps)
    while any(pa.types.is_struct(f.type) and f.name in nested for f in table.schema):
        names: list[str] = []
        columns: list[pa.ChunkedArray] = []
        for f, col in zip(table.schema, table.columns, strict=True):
            if pa.types.is_struct(f.type) and f.name in nested:
                for i, child in enumerate(f.type):
                    names.append(f"{f.name}.{child.name}")
                    columns.append(
                        pa.chunked_array(
                            [
                                chunk.field(i)
                                if chunk.null_count == 0
                                else pc.struct_field(chunk, [i])
                                for chunk in col.chunks
                            ],
                            type=child.type,
                        )
                    )
            else:
                names.append(f.name)
                columns.append(col)
        table = pa.Table.from_arrays(columns, names=names)
    return table


def _line_problems(line: bytes) -> list[tuple[str | None, str, str]]:
    """Why one line cannot be parsed as an endpoint, or [] when it can."""
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
        ]
    line = line.rstrip(b"\r\n")
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return [(None, "JSON_SYNTAX", f"not valid JSON: {exc.msg} at column {exc.colno}")]
    return [(field, code, message) for field, code, message in check.check_json_object(value)]


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

        block = _Block(buf, starts, ends, records, lines)
        tables = block.parse_all()
        good, problems = block.good, block.problems
        if tables:
            table = (
                tables[0]
                if len(tables) == 1
                else pa.concat_tables(tables, promote_options="permissive")
            )
            table = flatten(table)
        else:
            table = pa.table({})
        self.batches.append(
            Batch(
                table,
                records[good],
                lines[good],
                self.offset + starts[good],
                self.offset + ends[good],
                problems,
            )
        )
        if self.keep_spans:
            self.spans.append((lines, self.offset + starts, self.offset + ends))
        self.record += nrec
        self.line += len(newlines)
        self.offset += len(buf)
        return len(buf)


class _Block:
    """The records of one buffer while they are parsed: their byte ranges, numbers and lines,
    which of them parsed (``good``), and the problems of the others."""

    RETRY_CHUNK = 128

    def __init__(
        self,
        buf: bytes,
        starts: np.ndarray,
        ends: np.ndarray,
        records: np.ndarray,
        lines: np.ndarray,
    ) -> None:
        self.buf = buf
        self.starts = starts
        self.ends = ends
        self.records = records
        self.lines = lines
        self.good = np.ones(len(starts), bool)
        self.problems: list[Problem] = []

    def _bytes(self, lo: int, hi: int) -> bytes:
        return self.buf[self.starts[lo] : self.ends[hi - 1]]

    def _fail(self, r: int, found: list[tuple[str | None, str, str]]) -> None:
        self.good[r] = False
        self.problems.extend(
            Problem(int(self.records[r]), int(self.lines[r]), f, c, m) for f, c, m in found
        )

    def parse_all(self) -> list[pa.Table]:
        """Parse every record in one call; if pyarrow stops, go on in small chunks, each
        parsed up to its bad line, the bad line checked alone, then the rest of the chunk."""
        n = len(self.starts)
        if not n:
            return []
        try:
            whole = _parse(self._bytes(0, n))
        except (pa.ArrowInvalid, UnicodeDecodeError):
            pass
        else:
            if whole.num_rows == n:
                return [whole]
        tables: list[pa.Table] = []
        for lo in range(0, n, self.RETRY_CHUNK):
            tables += self._parse_chunk(lo, min(n, lo + self.RETRY_CHUNK))
        return tables

    def _parse_chunk(self, lo: int, hi: int) -> list[pa.Table]:
        tables: list[pa.Table] = []
        while lo < hi:
            try:
                parsed = _parse(self._bytes(lo, hi))
            except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
                error = str(exc)
            else:
                if parsed.num_rows == hi - lo:
                    tables.append(parsed)
                    break
                error = ""  # two objects on one line, or the like: no row to trust
            match = _ROW.search(error)
            bad = lo + int(match.group(1)) if match else -1
            found = _line_problems(self._bytes(bad, bad + 1)) if lo <= bad < hi else []
            if not found:  # pyarrow's row is no help: check every line of the rest
                tables += self._line_by_line(lo, hi)
                break
            if bad > lo:
                try:
                    tables.append(_parse(self._bytes(lo, bad)))
                except pa.ArrowInvalid:
                    tables += self._line_by_line(lo, bad)
            self._fail(bad, found)
            lo = bad + 1
        return tables

    def _line_by_line(self, lo: int, hi: int) -> list[pa.Table]:
        keep: list[bytes] = []
        for r in range(lo, hi):
            line = self._bytes(r, r + 1)
            found = _line_problems(line)
            if found:
                self._fail(r, found)
            else:
                keep.append(line if line.endswith(b"\n") else line + b"\n")
        if not keep:
            return []
        try:
            return [_parse(b"".join(keep))]
        except pa.ArrowInvalid:  # types that differ between lines: parse them one by one
            return [_parse(line) for line in keep]


def read_piece(
    stream: IO[bytes], length: int, *, offset: int, line: int, keep_spans: bool = False
) -> Iterator[tuple[Batch, JsonReader]]:
    """Yield the batches of one NDJSON piece as they are read."""
    reader = JsonReader(offset=offset, line=line, keep_spans=keep_spans)
    for batch in reader.read(stream, length):
        yield batch, reader
