"""Tasks smaller than pieces: a piece cut into parts for the executor, their results folded back.

Pieces are the report's units (``TotalPieces``, the ``Pieces`` rows, ``--pieces``,
``--piece-size``); the executor's tasks need not be. With several workers, a few large pieces
leave a worker idle at the end (three 64 MiB pieces on two workers: at most 1.5x), so each
large piece is cut into parts of about ``PART_SIZE`` bytes at record starts, settled exactly as
the planner settles a piece boundary (``pieces.settle_csv_boundary``, a line start for NDJSON):
each part reads exactly the records a single reader of the piece reads there. The parts' results
come back in order and :func:`merge` folds them into the piece's result, records and lines
shifted by the parts before: the report is the one the piece alone gives.

The keys of the later parts are not merged (a ``np.unique`` over the piece's keys in the main
process): they ride on the result as ``PieceResult.key_parts``, already shifted, and the fold
counts them after the first part's, in source order, as it would count the next pieces'.

The offending values a part's problems carry are chosen from each part's own budget
(``details.ValueBudget``), so a part after the first may carry values a single reader would not
have read; they belong to records after the piece's first ``FIRST`` with a problem of that
severity, which the report never shows (its details are the job's first ``FIRST`` records).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from validator import transport
from validator.model import PieceKeys, PieceResult
from validator.piece import PieceTask
from validator.pieces import HEAD_READERS, csv_boundaries, newline_boundaries

PART_SIZE = 16 << 20  # a task's bytes when a piece is cut into parts


def splittable(task: PieceTask) -> bool:
    """A piece of a file of known size whose result is only checked (no spans, no repair)."""
    f = task.piece.file
    return (
        task.repair is None
        and not task.keep_spans
        and not task.inspect_later
        and f.size > 0
        and not transport.read_once(f)
    )


def _bounds(task: PieceTask, part_size: int) -> list[int]:
    """The record starts inside the task's piece where its parts begin (none: one part)."""
    piece, f = task.piece, task.piece.file
    lo = piece.start if piece.start else piece.header_end
    hi = f.size if piece.end < 0 else piece.end
    k = round((hi - lo) / part_size)
    if k < 2:
        return []
    targets = [lo + (hi - lo) * j // k for j in range(1, k)]
    if task.columns is not None:
        found = csv_boundaries(
            f, targets, piece.header_end, task.columns.width, task.settings, None
        )
    else:
        found = newline_boundaries(f, targets, task.settings, None)
    return [b for b in found if lo < b < hi]


def split(
    tasks: list[PieceTask], workers: int, part_size: int | None = None
) -> tuple[list[PieceTask], list[int]]:
    """The tasks to run (each piece of at least 1.5 parts as its parts, in order) and how
    many parts each of ``tasks`` became. One worker: the tasks as they are."""
    part_size = part_size or PART_SIZE
    counts = [1] * len(tasks)
    if workers <= 1:
        return list(tasks), counts
    large = [
        i
        for i, t in enumerate(tasks)
        if splittable(t)
        and ((t.piece.file.size if t.piece.end < 0 else t.piece.end) - t.piece.start)
        >= 1.5 * part_size
    ]
    if not large:
        return list(tasks), counts
    remote = any(transport.is_remote(tasks[i].piece.file) for i in large)
    with ThreadPoolExecutor(HEAD_READERS if remote else 1) as pool:
        found = pool.map(lambda i: _bounds(tasks[i], part_size), large)
        bounds = dict(zip(large, found, strict=True))
    out: list[PieceTask] = []
    for i, t in enumerate(tasks):
        cuts = bounds.get(i, [])
        if not cuts:
            out.append(t)
            continue
        piece = t.piece
        edges = [piece.start, *cuts, piece.end]
        out += [
            replace(t, piece=replace(piece, start=a, end=b)) for a, b in itertools.pairwise(edges)
        ]
        counts[i] = len(edges) - 1
    return out, counts


def _shift_keys(keys: PieceKeys, records: int, lines: int) -> PieceKeys:
    if not records and not lines:
        return keys
    return replace(keys, records=keys.records + records, lines=keys.lines + lines)


def merge(results: list[PieceResult], piece_task: PieceTask) -> PieceResult:
    """The piece's result from its parts' results, in order (see the module)."""
    first = results[0]
    if len(results) == 1:
        return first
    out = PieceResult(piece_task.piece)
    out.users, out.ids = first.users, first.ids
    records = lines = 0
    seen: list[int] = []
    for j, res in enumerate(results):
        for p in res.problems:
            if p.record is not None:
                p.record += records
            if p.line is not None:
                p.line += lines
        out.problems += res.problems
        out.file_problems += res.file_problems
        if res.first_line is not None and res.last_line is not None:
            seen += [res.first_line + lines, res.last_line + lines]
        if j:
            assert res.users is not None and res.ids is not None, "a part's keys were taken"
            out.key_parts.append(
                (_shift_keys(res.users, records, lines), _shift_keys(res.ids, records, lines))
            )
        out.key_parts += [
            (_shift_keys(u, records, lines), _shift_keys(i, records, lines))
            for u, i in res.key_parts
        ]
        out.attribute_names |= res.attribute_names
        out.quote_trouble = out.quote_trouble or res.quote_trouble
        out.quotes += res.quotes
        out.bytes_read += res.bytes_read
        records += res.records
        lines += res.newlines
    out.records, out.newlines = records, lines
    if seen:
        out.first_line, out.last_line = min(seen), max(seen)
    return out


def regroup(
    results: Iterable[PieceResult], tasks: list[PieceTask], counts: list[int]
) -> Iterator[PieceResult]:
    """One result per task of ``tasks``, from the results of the parts ``split`` made."""
    it = iter(results)
    for task, n in zip(tasks, counts, strict=True):
        if n == 1:
            yield next(it)
        else:
            yield merge([next(it) for _ in range(n)], task)
