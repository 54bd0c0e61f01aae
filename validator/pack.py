"""Packs: many small whole files read and checked as one task, each keeping its own result.

Audiences exported by Spark or a warehouse arrive as hundreds or thousands of part files. One
task per file pays, per file, a round trip to a worker, a reader, and every column-wide check
run over a few hundred rows (the checks cost about the same for 500 rows as for 50,000). A pack
groups consecutive small files: the worker reads each file on its own (its own line and record
numbers, its own structural problems), then checks the batches of all of them at once, as one
table per column layout, and hands each finding back to the file its row came from. S3 objects
of a pack are fetched side by side on threads. The results are the files' own ``PieceResult``s,
in source order, exactly what running each piece alone gives: the fold never knows.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from validator import check, read_csv, read_json, schema
from validator.model import Batch, Piece, PieceKeys, PieceResult, Problem, RecordSpans
from validator.piece import PieceTask, _custom_names, _keys, run_piece
from validator.source import open_binary

PACK_FILE_BELOW = 4 << 20  # a whole file smaller than this may share a task
PACK_BYTES = 16 << 20  # a pack holds about this many bytes at most
PACK_FILES = 512  # and at most this many files
FETCH_THREADS = 8  # S3 objects of a pack fetched at once


def packable(task: PieceTask) -> bool:
    """A piece that is a whole small file, checked only (no --repair, no spans to write)."""
    p = task.piece
    plain = task.repair is None and not task.keep_spans
    return plain and p.start == 0 and p.end < 0 and 0 <= p.file.size < PACK_FILE_BELOW


def pack_tasks(tasks: Sequence[PieceTask], workers: int = 1) -> list[list[PieceTask]]:
    """Consecutive packable tasks grouped (source order kept); any other task alone.

    With several workers a pack holds at most a share of the small files' bytes, so that
    the workers still get several packs each.
    """
    small = sum(t.piece.file.size for t in tasks if packable(t))
    limit = PACK_BYTES if workers <= 1 else max(min(PACK_BYTES, small // (4 * workers)), 1)
    packs: list[list[PieceTask]] = []
    current: list[PieceTask] = []
    size = 0
    for t in tasks:
        if not packable(t):
            if current:
                packs.append(current)
                current, size = [], 0
            packs.append([t])
            continue
        if current and (size + t.piece.file.size > limit or len(current) >= PACK_FILES):
            packs.append(current)
            current, size = [], 0
        current.append(t)
        size += t.piece.file.size
    if current:
        packs.append(current)
    return packs


@dataclass
class _Read:
    """One file of a pack after reading: its result so far and its batches, not yet checked."""

    task: PieceTask
    result: PieceResult
    batches: list[Batch] = field(default_factory=list)
    lines_seen: list[int] = field(default_factory=list)


def run_pack(
    tasks: Sequence[PieceTask],
    s3_client: Any = None,
    tick: Callable[[Piece, int, int], None] | None = None,
) -> list[PieceResult]:
    """Read and check a pack of tasks; one PieceResult per task, in order, each the same as
    ``run_piece`` gives for it alone. Runs in a worker process. ``tick``: as ``run_piece``'s."""
    if len(tasks) == 1:
        return [run_piece(tasks[0], s3_client=s3_client, tick=tick)]
    rules = schema.load()
    fetched = _fetch_s3(tasks, s3_client)
    reads = [_read(t, fetched.get(i), s3_client, tick) for i, t in enumerate(tasks)]
    for r in reads:
        for b in r.batches:
            for p in b.problems:
                p.severity = rules.severity(p.code)
            r.result.problems.extend(b.problems)
    _check_together(reads, tasks[0].fmt, rules)
    return [r.result for r in reads]


def _fetch_s3(tasks: Sequence[PieceTask], s3_client: Any) -> dict[int, bytes]:
    """The S3 objects of a pack, whole, fetched side by side."""
    wanted = [i for i, t in enumerate(tasks) if t.piece.file.kind == "s3"]
    if not wanted:
        return {}

    def get(i: int) -> bytes:
        t = tasks[i]
        start = t.piece.header_end
        with open_binary(t.piece.file, start, settings=t.settings, s3_client=s3_client) as s:
            return s.read()

    with ThreadPoolExecutor(min(FETCH_THREADS, len(wanted))) as pool:
        return dict(zip(wanted, pool.map(get, wanted), strict=True))


def _read(
    task: PieceTask,
    data: bytes | None,
    s3_client: Any,
    tick: Callable[[Piece, int, int], None] | None = None,
) -> _Read:
    piece = task.piece
    result = PieceResult(piece)
    read_from = piece.header_end
    line0 = 1 if task.fmt == "CSV" else 0
    out = _Read(task, result)
    with ExitStack() as stack:
        stream: IO[bytes] = (
            io.BytesIO(data)
            if data is not None
            else stack.enter_context(
                open_binary(piece.file, read_from, settings=task.settings, s3_client=s3_client)
            )
        )
        if task.fmt == "CSV":
            assert task.columns is not None
            batches: Any = read_csv.read_piece(
                stream, -1, task.columns, offset=read_from, line=line0, keep_spans=task.keep_spans
            )
        else:
            batches = read_json.read_piece(
                stream, -1, offset=read_from, line=line0, keep_spans=task.keep_spans
            )
        reader = None
        for batch, reader in batches:  # the last reader has the counts
            out.batches.append(batch)
            result.attribute_names |= (
                _custom_names(batch.table)
                if batch.attribute_names is None
                else batch.attribute_names
            )
            if len(batch.lines):
                out.lines_seen += [int(batch.lines[0]), int(batch.lines[-1])]
            out.lines_seen += [p.line for p in batch.problems if p.line is not None]
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
    if out.lines_seen:
        result.first_line, result.last_line = min(out.lines_seen), max(out.lines_seen)
    return out


def _check_together(reads: list[_Read], fmt: str, rules: Any) -> None:
    """Check the batches of every file at once, one table per column layout; each finding and
    each key goes back to the file (and record) its row came from."""
    groups: dict[pa.Schema, list[tuple[int, Batch]]] = {}
    for i, r in enumerate(reads):
        for b in r.batches:
            if b.table.num_rows:
                groups.setdefault(b.table.schema, []).append((i, b))
    push = pa.array(sorted(rules.push_channel_types), pa.string())
    users: list[list[tuple[np.ndarray, ...]]] = [[] for _ in reads]
    ids: list[list[tuple[np.ndarray, ...]]] = [[] for _ in reads]
    for members in groups.values():
        table = pa.concat_tables([b.table for _, b in members])
        records = np.concatenate([b.records for _, b in members])
        lines = np.concatenate([b.lines for _, b in members])
        owner = np.concatenate([np.full(b.table.num_rows, i, np.int64) for i, b in members])
        for finding in check.check_batch(table, fmt):
            severity = rules.severity(finding.code)
            rows = np.asarray(finding.rows)
            who = owner[rows].tolist()
            recs = records[rows].tolist()
            lns = lines[rows].tolist()
            for w, rec, ln, m in zip(who, recs, lns, finding.messages, strict=True):
                reads[w].result.problems.append(
                    Problem(int(rec), int(ln), finding.field, finding.code, m, severity)
                )
        if "User.UserId" in table.column_names:
            k, rec, ln, rows = _keys(table, "User.UserId", records, lines)
            if "ChannelType" in table.column_names:
                is_push = pc.fill_null(pc.is_in(table.column("ChannelType"), push), False)
                p = np.asarray(is_push)[rows]
            else:
                p = np.zeros(len(rows), bool)
            _scatter(users, owner[rows], k, rec, ln, p)
        if "Id" in table.column_names:
            k, rec, ln, rows = _keys(table, "Id", records, lines)
            _scatter(ids, owner[rows], k, rec, ln)
    for i, r in enumerate(reads):
        r.result.users = _build(users[i], push=True)
        r.result.ids = _build(ids[i], push=False)


def _scatter(
    into: list[list[tuple[np.ndarray, ...]]], who: np.ndarray, *arrays: np.ndarray
) -> None:
    """Split parallel arrays by owner (rows of one owner are contiguous and in order)."""
    if not len(who):
        return
    cuts = np.flatnonzero(np.diff(who)) + 1
    bounds = [0, *cuts.tolist(), len(who)]
    for a, b in itertools.pairwise(bounds):
        into[int(who[a])].append(tuple(x[a:b] for x in arrays))


def _build(parts: list[tuple[np.ndarray, ...]], *, push: bool) -> PieceKeys:
    """A file's keys in source order (its batches may have been checked in different groups)."""
    if len(parts) > 1:
        order = np.argsort(np.concatenate([p[1] for p in parts]), kind="stable")
        joined = [np.concatenate([p[j] for p in parts])[order] for j in range(len(parts[0]))]
        parts = [tuple(joined)]
    keys = [p[0] for p in parts]
    records = [p[1] for p in parts]
    lines = [p[2] for p in parts]
    return PieceKeys.build(keys, records, lines, [p[3] for p in parts] if push else None)
