"""The values that travel between stages: pieces, batches, problems and piece results.

Everything here is plain data and picklable, because pieces run in worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from validator.source import SourceFile


@dataclass(frozen=True)
class Piece:
    """A record-aligned byte range ``[start, end)`` of one file (``end`` -1: to the end)."""

    index: int
    file: SourceFile
    start: int
    end: int
    header: tuple[str, ...] | None = None  # CSV: the file's header, for pieces after the first
    header_end: int = 0  # CSV: where the header line ends (first piece skips it)


@dataclass(slots=True)
class Problem:
    """One problem with one record (or with a file, when ``line`` is None).

    Inside a piece, ``line`` is relative to the piece's first line and ``record`` is the
    record's number in the piece; the engine makes lines absolute in source order.
    """

    record: int | None
    line: int | None
    field: str | None
    code: str
    message: str
    severity: str = "error"
    value: str | None = None  # the offending value, cut (only for a piece's first records)


@dataclass
class Batch:
    """Structurally sound records as an Arrow table, and the problems of the others.

    ``records``, ``lines``, ``starts`` and ``ends`` hold, per table row, the record number in
    the piece, its 1-based start line relative to the piece, and its byte range in the file
    (CSV: the byte ranges only when the reader keeps spans, for split and --repair; else
    empty).
    """

    table: pa.Table
    records: np.ndarray
    lines: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    problems: list[Problem] = field(default_factory=list)
    # Custom attribute names holding a value in some row, when the reader knows them and the
    # table does not carry the attribute columns (the NDJSON fast path); None: read the table.
    attribute_names: set[str] | None = None


@dataclass
class RecordSpans:
    """Where every record of a piece is, structurally sound or not (for writing pieces)."""

    lines: np.ndarray
    starts: np.ndarray
    ends: np.ndarray


@dataclass
class PieceKeys:
    """One kind of key of a piece (user ids, endpoint ids), hashed and sorted in the worker so
    that the fold only looks up and merges distinct keys.

    ``distinct``: the distinct hashes, ascending; ``counts``: how often each occurs in the piece;
    and per keyed record, in source order: ``hashes`` (its key's hash), its record number, its
    relative line, and (users) whether its channel is a push channel. ``which`` (each keyed
    record's index in ``distinct``) is computed on request: the fold needs it only for the keys
    a rule flags, and an inverse for every key cost the worker a second sort.
    """

    distinct: np.ndarray
    counts: np.ndarray
    hashes: np.ndarray
    records: np.ndarray
    lines: np.ndarray
    push: np.ndarray

    @property
    def which(self) -> np.ndarray:
        return np.searchsorted(self.distinct, self.hashes)

    @classmethod
    def build(
        cls,
        keys: list[np.ndarray],
        records: list[np.ndarray],
        lines: list[np.ndarray],
        push: list[np.ndarray] | None = None,
    ) -> PieceKeys:
        def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)

        hashes = cat(keys, np.uint64)
        distinct, counts = np.unique(hashes, return_counts=True)
        return cls(
            distinct,
            counts.astype(np.int32),
            hashes,
            cat(records, np.int32),
            cat(lines, np.int32),
            cat(push or [], np.bool_) if push else np.zeros(len(hashes), np.bool_),
        )

    def subset(self, rows: np.ndarray) -> PieceKeys:
        """The keys of some of the keyed records (``rows``, ascending: source order) as a
        PieceKeys of their own."""
        hashes = self.hashes[rows]
        distinct, counts = np.unique(hashes, return_counts=True)
        return PieceKeys(
            distinct,
            counts.astype(np.int32),
            hashes,
            self.records[rows],
            self.lines[rows],
            self.push[rows],
        )


@dataclass
class PackKeys:
    """The keys of every file of a pack as one (``pack.run_pack``), so that the fold counts
    them once for all its files; ``*_owner``: per keyed record, its file's index in the pack.
    The files come one after another in source order, so the ordinals are those of folding
    them one by one."""

    users: PieceKeys
    ids: PieceKeys
    user_owner: np.ndarray
    id_owner: np.ndarray


@dataclass
class PieceResult:
    """What a worker sends back for one piece: counts, problems and hashed cross-record keys
    (or, from a cluster, the cross-record problems those keys gave)."""

    piece: Piece
    records: int = 0
    newlines: int = 0  # physical lines the piece spans, to number the next piece's lines
    first_line: int | None = None  # relative to the piece
    last_line: int | None = None
    bytes_read: int = 0
    problems: list[Problem] = field(default_factory=list)
    file_problems: list[Problem] = field(default_factory=list)
    quote_trouble: bool = False  # CSV quoting broken: the engine re-reads the file in one piece
    quotes: int = 0  # CSV: double quotes in the piece, to check that its end is a record end
    # The hashed keys of the job-wide rules; None once they were taken off the result where it
    # ran (a cluster keeps them on its workers, partitioned by hash: validator.cluster_keys).
    users: PieceKeys | None = field(default_factory=lambda: PieceKeys.build([], [], []))
    ids: PieceKeys | None = field(default_factory=lambda: PieceKeys.build([], [], []))
    # The key rules' problems for this piece when they were found off the client (the cluster's
    # partition tasks); None: the fold finds them from ``users`` and ``ids``.
    cross: list[Problem] | None = None
    # A piece run as several tasks (validator.subtasks): the (users, ids) keys of its later
    # parts, in order, records and lines relative to the piece; folded after users and ids.
    key_parts: list[tuple[PieceKeys, PieceKeys]] = field(default_factory=list)
    attribute_names: set[str] = field(default_factory=set)
    spans: RecordSpans | None = None  # only when the run writes pieces
    repairs: Any = None  # validator.repair.PieceRepairs: the repaired records (--repair)
    plan: Any = None  # pieces.FilePlan, when the worker read the file's head (a packed S3 object)
    # A packed file: its keys are in the pack's PackKeys (shared by the pack's results), at
    # this index; ``users`` and ``ids`` are then empty.
    pack: tuple[PackKeys, int] | None = None
