"""Packs: many small whole files read and checked as one task, each keeping its own result.

Audiences exported by Spark or a warehouse arrive as hundreds or thousands of part files. One
task per file pays, per file, a round trip to a worker, a reader, and every column-wide check
run over a few hundred rows (the checks cost about the same for 500 rows as for 50,000). A pack
groups consecutive small files: the worker reads each file on its own (its own line and record
numbers, its own structural problems), then checks the batches of all of them at once, as one
table per column layout, and hands each finding back to the file its row came from. S3 objects
of a pack are fetched side by side on threads; each small file is read whole once, its head
(header, BOM, compression) taken from those bytes in the worker, not in the planning process.
The results are the files' own ``PieceResult``s, in source order, exactly what running each
piece alone gives: the fold never knows.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from validator import schema, transport
from validator.model import Batch, PieceResult
from validator.piece import PieceTask, Reading, Tick, check, run_piece, shared_keys
from validator.pieces import FilePlan, inspect_file
from validator.source import SourceFile

PACK_FILE_BELOW = 4 << 20  # a whole file smaller than this may share a task
PACK_BYTES = 16 << 20  # a pack holds about this many bytes at most
PACK_FILES = 512  # and at most this many files
FETCH_THREADS = 8  # S3 objects of a pack fetched at once


def inspected_when_read(f: SourceFile, piece_size: int | None = None) -> bool:
    """A small file, one piece whatever the piece size: a pack reads it whole, so the worker
    reads its head too (an S3 object's from the bytes it fetched: one GET a file instead of
    two, the plan's and the pack's). The plan then knows only its size
    (``pieces.FilePlan.inspect_later``), and thousands of part files are not opened one after
    another in this process before any worker starts."""
    small = 0 < f.size < PACK_FILE_BELOW and (piece_size is None or f.size <= piece_size)
    return small and not transport.read_once(f)


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


def run_pack(
    tasks: Sequence[PieceTask], s3_client: Any = None, tick: Tick | None = None
) -> list[PieceResult]:
    """Read and check a pack of tasks; one PieceResult per task, in order, each the same as
    ``run_piece`` gives for it alone. Runs in a worker process. ``tick``: as ``run_piece``'s.

    The files are read in order; their batches wait until the column layout changes (or the
    pack ends), then the waiting batches are checked as one table (``piece.check``)."""
    if len(tasks) == 1 and not tasks[0].inspect_later:
        return [run_piece(tasks[0], s3_client=s3_client, tick=tick)]
    rules = schema.load()
    fetched = _fetch(tasks, s3_client)
    fmt = tasks[0].fmt
    plans: dict[int, FilePlan] = {}
    for i, t in enumerate(tasks):
        if t.inspect_later:  # its head, from the object in hand
            plans[i] = inspect_file(t.piece.file, fmt, t.settings, s3_client, fetched.get(i))
    readings = [Reading(_inspected(t, plans.get(i))) for i, t in enumerate(tasks)]
    waiting: list[tuple[Reading, Batch]] = []
    for i, reading in enumerate(readings):
        data = fetched.pop(i, None)
        plan = plans.get(i)
        if plan is not None:
            reading.result.plan = plan
            if not plan.readable:
                continue  # compressed or empty: the plan's problems say so, nothing to read
            data = data[plan.data_start :] if data is not None else None
        with reading.open(s3_client, data) as stream:
            for batch in reading.batches(stream, rules, tick):
                if not batch.table.num_rows:
                    continue
                if waiting and waiting[0][1].table.schema != batch.table.schema:
                    check(waiting, fmt, rules)
                    waiting = []
                waiting.append((reading, batch))
    if waiting:
        check(waiting, fmt, rules)
    if len(readings) == 1:
        return [readings[0].finish(s3_client)]
    results = [r.finish(s3_client, keys=False) for r in readings]
    keys = shared_keys(readings)  # the fold counts the pack's keys once, not once a file
    for i, res in enumerate(results):
        res.pack = (keys, i)
    return results


def _inspected(task: PieceTask, plan: FilePlan | None) -> PieceTask:
    """The task as its plan would have made it, once the worker read the file's head."""
    if plan is None:
        return task
    p = task.piece
    header = tuple(plan.header) if plan.header is not None else None
    piece = replace(p, header=header, header_end=plan.data_start)
    plan.pieces = [piece] if plan.readable else []
    return replace(task, piece=piece, columns=plan.columns, inspect_later=False)


def _fetch(tasks: Sequence[PieceTask], s3_client: Any) -> dict[int, bytes]:
    """The pack's S3 objects, whole, fetched side by side; and the small local files whose
    heads it reads, whole: each opened once, for its head and its records."""
    remote = [i for i, t in enumerate(tasks) if transport.fetch_small_whole(t.piece.file)]
    taken = set(remote)
    local = [i for i, t in enumerate(tasks) if t.inspect_later and i not in taken]

    def get(i: int) -> bytes:
        with Reading(tasks[i]).open(s3_client) as stream:
            data: bytes = stream.read()
            return data

    fetched = {i: get(i) for i in local}
    if remote:
        with ThreadPoolExecutor(min(FETCH_THREADS, len(remote))) as pool:
            fetched.update(zip(remote, pool.map(get, remote), strict=True))
    return fetched
