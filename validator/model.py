"""The values that travel between stages: pieces, batches, problems and piece results.

Everything here is plain data and picklable, because pieces run in worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class Batch:
    """Structurally sound records as an Arrow table, and the problems of the others.

    ``records``, ``lines``, ``starts`` and ``ends`` hold, per table row, the record number in
    the piece, its 1-based start line relative to the piece, and its byte range in the file.
    """

    table: pa.Table
    records: np.ndarray
    lines: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    problems: list[Problem] = field(default_factory=list)


@dataclass
class RecordSpans:
    """Where every record of a piece is, structurally sound or not (for writing pieces)."""

    lines: np.ndarray
    starts: np.ndarray
    ends: np.ndarray


@dataclass
class PieceResult:
    """What a worker sends back for one piece: counts, problems and hashed cross-record keys."""

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
    user_keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    user_records: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    user_push: np.ndarray = field(default_factory=lambda: np.empty(0, np.bool_))
    user_lines: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    id_keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    id_records: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    id_lines: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    attribute_names: set[str] = field(default_factory=set)
    spans: RecordSpans | None = None  # only when the run writes pieces
