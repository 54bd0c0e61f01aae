"""The piece: read and check one piece. The worker's job; it returns only plain data.

A worker opens its byte range, reads it into batches (``read_csv`` / ``read_json``), checks each
batch column-wide (``check``), with ``--repair`` repairs the rows that failed (``repair``), and
hashes the keys the job-wide rules need (``crossrecord``), so
that the fold, in source order, never sees the records themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from validator import check, read_csv, read_json, repair, schema
from validator.crossrecord import hash_strings
from validator.details import ValueBudget
from validator.model import Piece, PieceKeys, PieceResult, Problem, RecordSpans
from validator.read_csv import Columns
from validator.repair import PieceRepairs, RepairOptions
from validator.report import FIRST
from validator.settings import AwsSettings
from validator.source import open_binary


@dataclass(frozen=True)
class PieceTask:
    """Everything a worker needs to read and check one piece."""

    piece: Piece
    fmt: str
    columns: Columns | None
    settings: AwsSettings | None
    keep_spans: bool = False
    repair: RepairOptions | None = None  # --repair: repair failing rows, check them again


def _custom_names(table: pa.Table) -> set[str]:
    """Custom attribute and metric names that hold a value in some row of the table."""
    names = set()
    for name in table.column_names:
        if name.startswith(("Attributes.", "User.UserAttributes.", "Metrics.")):
            col = table.column(name)
            if pa.types.is_list(col.type):
                present = any(len(c.values) - c.values.null_count > 0 for c in col.chunks)
            else:
                present = col.null_count < len(col)
            if present:
                names.add(name)
    return names


def _keys(
    table: pa.Table, column: str, records: np.ndarray, lines: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    col = table.column(column)
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string(), safe=False)
    present = np.asarray(pc.fill_null(pc.greater(pc.binary_length(col), 0), False))
    rows = np.flatnonzero(present)
    return hash_strings(col)[rows], records[rows], lines[rows], rows


def run_piece(
    task: PieceTask, s3_client: Any = None, tick: Callable[[Piece, int, int], None] | None = None
) -> PieceResult:
    """Read and check one piece. Runs in a worker process; returns only plain data.
    ``tick(piece, bytes, records)``, when given, hears after each block read how far the piece
    is (the progress display's counter, ``validator.progress``); it changes nothing else."""
    rules = schema.load()
    piece = task.piece
    result = PieceResult(piece)
    first_piece = piece.start == 0
    read_from = piece.header_end if first_piece else piece.start
    line0 = 1 if first_piece and task.fmt == "CSV" else 0
    length = -1 if piece.end < 0 else piece.end - read_from
    push = pa.array(sorted(rules.push_channel_types), pa.string())  # typed: no dateutil import
    user_keys, user_records, user_lines, user_push = [], [], [], []
    id_keys, id_records, id_lines = [], [], []
    lines_seen: list[int] = []
    budget = ValueBudget(FIRST)  # the report's offending values: each piece's first records
    repairs = PieceRepairs()
    byte_ranges = task.keep_spans or task.repair is not None  # a repair rewrites its record
    with ExitStack() as stack:
        stream: IO[bytes] = stack.enter_context(
            open_binary(piece.file, read_from, settings=task.settings, s3_client=s3_client)
        )
        if task.fmt == "CSV":
            assert task.columns is not None
            batches: Iterator[tuple[Any, Any]] = read_csv.read_piece(
                stream,
                length,
                task.columns,
                offset=read_from,
                line=line0,
                keep_spans=byte_ranges,
            )
        else:
            batches = read_json.read_piece(
                stream, length, offset=read_from, line=line0, keep_spans=byte_ranges
            )
        reader = None
        for batch, reader in batches:  # the last reader has the counts
            for p in batch.problems:
                p.severity = rules.severity(p.code)
            result.problems.extend(batch.problems)
            table = batch.table
            findings = check.check_batch(table, task.fmt)
            if task.repair is not None:
                findings = repair.repair_batch(
                    table,
                    findings,
                    task.fmt,
                    task.repair,
                    batch.records,
                    batch.lines,
                    batch.starts,
                    batch.ends,
                    repairs,
                )
            keep = budget.rows(findings, rules.severity)  # rows whose values the report shows
            for finding in findings:
                severity = rules.severity(finding.code)
                recs = batch.records[finding.rows]
                lns = batch.lines[finding.rows]
                values = budget.values(table, finding, keep)
                result.problems.extend(
                    Problem(int(r), int(ln), finding.field, finding.code, m, severity, v)
                    for r, ln, m, v in zip(
                        recs.tolist(), lns.tolist(), finding.messages, values, strict=True
                    )
                )
            if "User.UserId" in table.column_names:
                k, r, ln, rows = _keys(table, "User.UserId", batch.records, batch.lines)
                user_keys.append(k)
                user_records.append(r)
                user_lines.append(ln)
                if "ChannelType" in table.column_names:
                    is_push = pc.fill_null(pc.is_in(table.column("ChannelType"), push), False)
                    user_push.append(np.asarray(is_push)[rows])
                else:
                    user_push.append(np.zeros(len(rows), bool))
            if "Id" in table.column_names:
                k, r, ln, _ = _keys(table, "Id", batch.records, batch.lines)
                id_keys.append(k)
                id_records.append(r)
                id_lines.append(ln)
            result.attribute_names |= (
                _custom_names(table) if batch.attribute_names is None else batch.attribute_names
            )
            if len(batch.lines):
                lines_seen += [int(batch.lines[0]), int(batch.lines[-1])]
            lines_seen += [p.line for p in batch.problems if p.line is not None]
            if tick is not None:
                tick(piece, reader.offset - piece.start, reader.record)
        if reader is not None:
            result.records = reader.record
            result.newlines = reader.line
            result.quote_trouble = reader.quote_trouble
            result.quotes = reader.quotes
            result.bytes_read = reader.offset - read_from
            if task.keep_spans and reader.spans:
                lines, starts, ends = (np.concatenate(x) for x in zip(*reader.spans, strict=True))
                result.spans = RecordSpans(lines, starts, ends)
        else:
            result.newlines = line0
    if lines_seen:
        result.first_line, result.last_line = min(lines_seen), max(lines_seen)
    repair.finish_piece(
        result,
        repairs,
        task.fmt,
        dict(task.columns.scalars) if task.columns is not None else None,
        partial(open_binary, piece.file, settings=task.settings, s3_client=s3_client)
        if task.keep_spans
        else None,
    )

    result.users = PieceKeys.build(user_keys, user_records, user_lines, user_push)
    result.ids = PieceKeys.build(id_keys, id_records, id_lines)
    return result
