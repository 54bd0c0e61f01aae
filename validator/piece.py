"""The piece: read and check one piece. The worker's job; it returns only plain data.

A worker opens its byte range, reads it into batches (``read_csv`` / ``read_json``), checks each
batch column-wide (``check``), with ``--repair`` repairs the rows that failed (``repair``), and
hashes the keys the job-wide rules need (``crossrecord``), so
that the fold, in source order, never sees the records themselves.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from validator import check as checks
from validator import read_csv, schema
from validator.crossrecord import hash_strings
from validator.details import ValueBudget
from validator.model import Batch, PackKeys, Piece, PieceKeys, PieceResult, Problem, RecordSpans
from validator.read_csv import Columns
from validator.report import FIRST
from validator.settings import AwsSettings
from validator.source import open_binary

if TYPE_CHECKING:
    from validator.repair import RepairOptions

Tick = Callable[[Piece, int, int], None]  # (piece, bytes read, records read) after each block


@dataclass(frozen=True)
class PieceTask:
    """Everything a worker needs to read and check one piece."""

    piece: Piece
    fmt: str
    columns: Columns | None
    settings: AwsSettings | None
    keep_spans: bool = False
    repair: RepairOptions | None = None  # --repair: repair failing rows, check them again
    inspect_later: bool = False  # the file's head is read from its bytes (pack.run_pack)


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
    # int32, as PieceKeys holds them: a piece's keys wait in these parts until its end
    return (
        hash_strings(col)[rows],
        records[rows].astype(np.int32),
        lines[rows].astype(np.int32),
        rows,
    )


class Reading:
    """One task as it is read and checked: its result so far, the keys of its checked rows,
    the lines it has seen, the budget of offending values and, with --repair, its repairs.

    ``run_piece`` checks each batch as it is read (a piece alone); ``pack.run_pack`` reads the
    batches of many small files and checks them together. Both go through ``batches`` and
    ``check``, so a file gives the same result either way."""

    def __init__(self, task: PieceTask) -> None:
        self.task = task
        piece = task.piece
        first_piece = piece.start == 0
        self.read_from = piece.header_end if first_piece else piece.start
        self.line0 = 1 if first_piece and task.fmt == "CSV" else 0
        self.length = -1 if piece.end < 0 else piece.end - self.read_from
        self.result = PieceResult(piece)
        self.users: list[tuple[np.ndarray, ...]] = []  # (hashes, records, lines, push) per part
        self.ids: list[tuple[np.ndarray, ...]] = []
        self.lines_seen: list[int] = []
        self.budget = ValueBudget(FIRST)  # the report's offending values: the first records
        self.repairs: Any = None
        if task.repair is not None:  # only then: repair's module is not needed to check
            from validator.repair import PieceRepairs

            self.repairs = PieceRepairs()

    def open(self, s3_client: Any = None, data: bytes | None = None) -> Any:
        """The piece's bytes from where its records start: ``data`` when already fetched."""
        if data is not None:
            return nullcontext(io.BytesIO(data))
        t = self.task
        return open_binary(t.piece.file, self.read_from, settings=t.settings, s3_client=s3_client)

    def batches(
        self, stream: IO[bytes], rules: schema.Schema, tick: Tick | None = None
    ) -> Iterator[Batch]:
        """The piece's batches as they are read, each batch's structural problems kept as it
        comes; at the end, the reader's counts. ``tick``: as ``run_piece``'s."""
        task, result = self.task, self.result
        if tick is not None:  # the bytes move as they arrive, not only once a block
            from validator.progress import counting

            stream = counting(stream, tick, task.piece, self.read_from - task.piece.start)
        byte_ranges = task.keep_spans or task.repair is not None  # a repair rewrites its record
        if task.fmt == "CSV":
            assert task.columns is not None
            read: Iterator[tuple[Batch, Any]] = read_csv.read_piece(
                stream,
                self.length,
                task.columns,
                offset=self.read_from,
                line=self.line0,
                keep_spans=byte_ranges,
            )
        else:
            from validator import read_json  # only for NDJSON: msgspec and its structs

            read = read_json.read_piece(
                stream, self.length, offset=self.read_from, line=self.line0, keep_spans=byte_ranges
            )
        reader = None
        for batch, reader in read:  # the last reader has the counts
            for p in batch.problems:
                p.severity = rules.severity(p.code)
            result.problems.extend(batch.problems)
            result.attribute_names |= (
                _custom_names(batch.table)
                if batch.attribute_names is None
                else batch.attribute_names
            )
            if len(batch.lines):
                self.lines_seen += [int(batch.lines[0]), int(batch.lines[-1])]
            self.lines_seen += [p.line for p in batch.problems if p.line is not None]
            if tick is not None:
                tick(task.piece, reader.offset - task.piece.start, reader.record)
            yield batch
        if reader is not None:
            result.records = reader.record
            result.newlines = reader.line
            result.quote_trouble = reader.quote_trouble
            result.quotes = reader.quotes
            result.bytes_read = reader.offset - self.read_from
            if task.keep_spans and reader.spans:
                lines, starts, ends = (np.concatenate(x) for x in zip(*reader.spans, strict=True))
                result.spans = RecordSpans(lines, starts, ends)
        else:
            result.newlines = self.line0

    def finish(self, s3_client: Any = None, keys: bool = True) -> PieceResult:
        """The result, with its keys in source order (and its repairs, when it has any);
        ``keys=False``: without them (a pack's, given as one by ``shared_keys``)."""
        result, task = self.result, self.task
        if self.lines_seen:
            result.first_line, result.last_line = min(self.lines_seen), max(self.lines_seen)
        if self.repairs is not None:
            from validator import repair

            repair.finish_piece(
                result,
                self.repairs,
                task.fmt,
                dict(task.columns.scalars) if task.columns is not None else None,
                partial(open_binary, task.piece.file, settings=task.settings, s3_client=s3_client)
                if task.keep_spans
                else None,
            )
        if keys:
            result.users = PieceKeys.build(*_parts(self.users, 4))
            result.ids = PieceKeys.build(*_parts(self.ids, 3))
        return result


def shared_keys(readings: Sequence[Reading]) -> PackKeys:
    """The keys of consecutive readings (the files of a pack) as one, each keyed record with
    its reading's index: one sort and one fold for the pack instead of one per file."""

    def owners(parts: list[tuple[int, tuple[np.ndarray, ...]]]) -> np.ndarray:
        arrays = [np.full(len(p[0]), i, np.int32) for i, p in parts]
        return np.concatenate(arrays) if arrays else np.empty(0, np.int32)

    users = [(i, p) for i, r in enumerate(readings) for p in r.users]
    ids = [(i, p) for i, r in enumerate(readings) for p in r.ids]
    return PackKeys(
        PieceKeys.build(*_parts([p for _, p in users], 4)),
        PieceKeys.build(*_parts([p for _, p in ids], 3)),
        owners(users),
        owners(ids),
    )


def _parts(parts: list[tuple[np.ndarray, ...]], n: int) -> list[list[np.ndarray]]:
    """Parallel per-part arrays as ``n`` lists (keys, records, lines[, push])."""
    return [[p[j] for p in parts] for j in range(n)]


def check(members: Sequence[tuple[Reading, Batch]], fmt: str, rules: schema.Schema) -> None:
    """Check batches of one column layout as one table, in order (consecutive batches of one
    reading or of several); every finding, offending value and key goes back to the reading
    (and record) its row came from."""
    if len(members) == 1:
        ((only, batch),) = members
        table, records, lines = batch.table, batch.records, batch.lines
        readings, owner = [only], None
    else:
        table = pa.concat_tables([b.table for _, b in members])
        records = np.concatenate([b.records for _, b in members])
        lines = np.concatenate([b.lines for _, b in members])
        readings = list({id(r): r for r, _ in members}.values())
        index = {id(r): i for i, r in enumerate(readings)}
        owner = np.repeat(
            np.array([index[id(r)] for r, _ in members], np.int64),
            [b.table.num_rows for _, b in members],
        )
    findings = checks.check_batch(table, fmt)
    first = readings[0]
    if first.task.repair is not None:  # repaired pieces are never packed: one batch here
        from validator import repair

        ((_, batch),) = members
        findings = repair.repair_batch(
            table,
            findings,
            fmt,
            first.task.repair,
            batch.records,
            batch.lines,
            batch.starts,
            batch.ends,
            first.repairs,
        )
    keep = _values_kept(readings, owner, findings, rules)
    for finding in findings:
        severity = rules.severity(finding.code)
        rows = np.asarray(finding.rows)
        values = ValueBudget.values(table, finding, keep)
        recs, lns = records[rows].tolist(), lines[rows].tolist()
        if owner is None:
            first.result.problems.extend(
                Problem(int(r), int(ln), finding.field, finding.code, m, severity, v)
                for r, ln, m, v in zip(recs, lns, finding.messages, values, strict=True)
            )
            continue
        who = owner[rows].tolist()
        for w, r, ln, m, v in zip(who, recs, lns, finding.messages, values, strict=True):
            readings[w].result.problems.append(
                Problem(int(r), int(ln), finding.field, finding.code, m, severity, v)
            )
    names = table.column_names
    if "User.UserId" in names:
        k, r, ln, rows = _keys(table, "User.UserId", records, lines)
        if "ChannelType" in names:
            push = pa.array(sorted(rules.push_channel_types), pa.string())  # typed: no dateutil
            is_push = np.asarray(pc.fill_null(pc.is_in(table.column("ChannelType"), push), False))
            p = is_push[rows]
        else:
            p = np.zeros(len(rows), bool)
        _scatter([x.users for x in readings], owner, rows, k, r, ln, p)
    if "Id" in names:
        k, r, ln, rows = _keys(table, "Id", records, lines)
        _scatter([x.ids for x in readings], owner, rows, k, r, ln)


@dataclass(frozen=True)
class _Rows:
    """A finding's rows that belong to one reading (what ``ValueBudget.rows`` reads)."""

    code: str
    rows: np.ndarray


def _values_kept(
    readings: list[Reading], owner: np.ndarray | None, findings: list[Any], rules: Any
) -> np.ndarray:
    """The table rows whose offending values the problems carry: each reading's budget spent
    on its own rows, in its own record order."""
    if owner is None:
        return readings[0].budget.rows(findings, rules.severity)
    mine: list[list[_Rows]] = [[] for _ in readings]
    for finding in findings:
        rows = np.asarray(finding.rows)
        if not len(rows):
            continue
        who = owner[rows]
        order = np.argsort(who, kind="stable")
        who_sorted = who[order]
        cuts = np.flatnonzero(np.diff(who_sorted)) + 1
        for a, b in itertools.pairwise([0, *cuts.tolist(), len(rows)]):
            mine[int(who_sorted[a])].append(_Rows(finding.code, rows[order[a:b]]))
    kept = [r.budget.rows(f, rules.severity) for r, f in zip(readings, mine, strict=True) if f]
    return np.concatenate(kept) if kept else np.empty(0, np.int64)


def _scatter(
    into: list[list[tuple[np.ndarray, ...]]],
    owner: np.ndarray | None,
    rows: np.ndarray,
    *arrays: np.ndarray,
) -> None:
    """Parallel arrays split by owner (the rows of one owner are contiguous and in order)."""
    if owner is None:
        into[0].append(arrays)
        return
    who = owner[rows]
    if not len(who):
        return
    cuts = np.flatnonzero(np.diff(who)) + 1
    for a, b in itertools.pairwise([0, *cuts.tolist(), len(who)]):
        into[int(who[a])].append(tuple(x[a:b] for x in arrays))


def run_piece(
    task: PieceTask, s3_client: Any = None, tick: Tick | None = None, data: bytes | None = None
) -> PieceResult:
    """Read and check one piece, each batch as it comes. Runs in a worker process; returns
    only plain data. ``tick(piece, bytes, records)``, when given, hears after each block read
    how far the piece is (the progress display's counter, ``validator.progress``); it changes
    nothing else. ``data``: the piece's bytes, when they were fetched already."""
    rules = schema.load()
    reading = Reading(task)
    with reading.open(s3_client, data) as stream:
        for batch in reading.batches(stream, rules, tick):
            check([(reading, batch)], task.fmt, rules)
    return reading.finish(s3_client)
