"""Stage 2, the pieces: cut every file into record-aligned byte ranges of roughly equal size.

A piece ends at the first newline after its share of the bytes. For NDJSON that is a record
end. For CSV it is one when an even number of quotes came before it; the workers count the
quotes they read and the engine checks each end in source order, reading the rest of a file
in one piece from the first end that is not (a quoted line break or a broken quote across it).
So no quoted value is ever cut, and no extra pass over the data is needed to find out.
Each file's head is read here once: compressed content, a byte order mark, the CSV header.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from validator import check
from validator.errors import OptionError, UsageError
from validator.model import Piece, PieceResult, Problem
from validator.read_csv import Columns, parse_header
from validator.settings import AwsSettings
from validator.source import Listing, SourceFile, open_binary, stdin_head

DEFAULT_PIECE_SIZE = 64 << 20
HEAD_READERS = 16  # objects whose heads are read at once
HEAD = 1 << 16
SCAN_BLOCK = 8 << 20
BOUNDARY_REACH = 1 << 20  # how far past a target a piece boundary may be looked for

MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"PK\x03\x04", "zip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
BOM = b"\xef\xbb\xbf"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "ki": 1 << 10,
    "kib": 1 << 10,
    "mi": 1 << 20,
    "mib": 1 << 20,
    "gi": 1 << 30,
    "gib": 1 << 30,
    "ti": 1 << 40,
    "tib": 1 << 40,
}


def parse_size(value: str | int, option: str = "piece_size") -> int:
    """``64MiB``, ``1GB``, ``500k`` or a number of bytes; an OptionError naming ``option``."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise OptionError(option, f"{value!r} is not a size (examples: 64MiB, 1GB, 500000)")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(value)
        if not match:
            raise OptionError(option, f"{value!r} is not a size (examples: 64MiB, 1GB, 500000)")
        whole, _, fraction = match.group(1).partition(".")  # exact: no float to overflow
        unit = _UNITS[(match.group(2) or "").lower()]
        size = int(whole) * unit + int(fraction or "0") * unit // 10 ** len(fraction)
    if size <= 0:
        raise OptionError(option, f"must be more than 0 bytes, not {value!r}")
    return size


@dataclass
class FilePlan:
    """What the head of one file said, and how the file is cut."""

    file: SourceFile
    data_start: int = 0  # after the BOM and, for CSV, the header line
    header: list[str] | None = None
    columns: Columns | None = None
    problems: list[Problem] = field(default_factory=list)  # file-level
    readable: bool = True
    pieces: list[Piece] = field(default_factory=list)


def _read_head(f: SourceFile, settings: AwsSettings | None, s3_client: Any) -> bytes:
    if f.kind == "stdin":
        return stdin_head(HEAD)  # kept: the piece's reader gets these bytes again
    with open_binary(f, 0, settings=settings, s3_client=s3_client) as stream:
        return stream.read(HEAD)


def inspect_file(
    f: SourceFile, fmt: str, settings: AwsSettings | None = None, s3_client: Any = None
) -> FilePlan:
    """Read the head of a file: compression, BOM, emptiness and the CSV header."""
    plan = FilePlan(f)
    head = _read_head(f, settings, s3_client)
    for magic, name in MAGIC:
        if head.startswith(magic):
            plan.readable = False
            plan.problems.append(
                Problem(
                    None,
                    None,
                    None,
                    "FILE_COMPRESSED",
                    f"{name}-compressed content; Pinpoint can't import "
                    "compressed files: decompress it first",
                )
            )
            return plan
    if head.startswith(BOM):
        plan.data_start = len(BOM)
        plan.problems.append(
            Problem(
                None,
                None,
                None,
                "FILE_BOM",
                "starts with a UTF-8 byte order mark (as Excel writes 'CSV "
                "UTF-8'); the header is checked without it",
                "warning",
            )
        )
    if not head[plan.data_start :].strip():
        plan.readable = False
        plan.problems.append(
            Problem(
                None,
                None,
                None,
                "FILE_EMPTY",
                "no header and no record" if fmt == "CSV" else "no record",
            )
        )
        return plan
    if fmt == "CSV":
        newline = head.find(b"\n", plan.data_start)
        if newline < 0 and f.kind != "stdin" and len(head) == HEAD:
            raise UsageError(
                f"{f.display}: the first line is longer than {HEAD} bytes; is this a CSV file?"
            )
        end = newline + 1 if newline >= 0 else len(head)
        plan.header = parse_header(head[plan.data_start : end])
        plan.data_start = end
        drop = set()
        for hp in check.check_csv_header(plan.header):
            plan.problems.append(Problem(None, None, hp.field, hp.code, hp.message))
            if hp.code == "CSV_HEADER_UNKNOWN":
                drop.add(hp.column)
        plan.columns = Columns.from_header(plan.header, drop)
    return plan


def _count_for(files: list[FilePlan], pieces: int | None, piece_size: int | None) -> list[int]:
    sizes = [max(p.file.size - p.data_start, 0) for p in files]
    if pieces is not None:
        if pieces < 1:
            raise UsageError("pieces must be at least 1")
        total = sum(sizes) or 1
        counts = [max(1, math.floor(pieces * s / total)) for s in sizes]
        # Hand out what rounding left, to the files with the largest pieces.
        while sum(counts) < pieces and any(s > 0 for s in sizes):
            i = max(range(len(sizes)), key=lambda j: sizes[j] / counts[j])
            counts[i] += 1
        return counts
    size = piece_size or DEFAULT_PIECE_SIZE
    return [max(1, math.ceil(s / size)) for s in sizes]


def _newline_boundaries(
    f: SourceFile, targets: list[int], settings: AwsSettings | None, s3_client: Any
) -> list[int]:
    out: list[int] = []
    for target in targets:
        with open_binary(f, target - 1, settings=settings, s3_client=s3_client) as stream:
            pos = target - 1
            while True:
                chunk = stream.read(HEAD)
                if not chunk:
                    pos = -1
                    break
                nl = chunk.find(b"\n")
                if nl >= 0:
                    pos += nl + 1
                    break
                pos += len(chunk)
        if pos > 0 and (not out or pos > out[-1]) and pos < f.size:
            out.append(pos)
    return out


def plan_pieces(
    listing: Listing,
    *,
    pieces: int | None = None,
    piece_size: int | None = None,
    settings: AwsSettings | None = None,
    s3_client: Any = None,
    one_piece: frozenset[str] = frozenset(),
) -> list[FilePlan]:
    """Inspect every selected file and cut it into pieces, numbered in source order."""
    files = listing.selected
    if sum(f.kind == "s3" for f in files) > 1:
        # One small ranged read per object: latency-bound, so side by side, in order.
        with ThreadPoolExecutor(HEAD_READERS) as pool:
            plans = list(
                pool.map(lambda f: inspect_file(f, listing.format, settings, s3_client), files)
            )
    else:
        plans = [inspect_file(f, listing.format, settings, s3_client) for f in files]
    readable = [p for p in plans if p.readable]
    counts = dict(
        zip((id(p) for p in readable), _count_for(readable, pieces, piece_size), strict=True)
    )
    index = 0
    for plan in plans:
        if not plan.readable:
            continue
        f = plan.file
        n = counts[id(plan)] if f.kind != "stdin" and f.display not in one_piece else 1
        bounds: list[int] | None = []
        if n > 1:
            span = f.size - plan.data_start
            targets = [plan.data_start + span * k // n for k in range(1, n)]
            bounds = _newline_boundaries(f, targets, settings, s3_client)
        edges = [0, *(bounds or []), -1]
        header = tuple(plan.header) if plan.header is not None else None
        for start, end in itertools.pairwise(edges):
            plan.pieces.append(Piece(index, f, start, end, header, plan.data_start))
            index += 1
    return plans


@dataclass
class CsvPieceEnds:
    """Where the CSV piece-end settlement stands, per file: quote parity, pieces held back,
    files whose remaining pieces are dropped (read in one piece from a broken quote on)."""

    parity: dict[str, int] = field(default_factory=dict)
    held: dict[str, list[PieceResult]] = field(default_factory=dict)
    skip_rest_of: set[str] = field(default_factory=set)


def settle_csv_piece_end(
    res: PieceResult,
    last: bool,
    ends: CsvPieceEnds,
    reread: Callable[[Piece], PieceResult],
) -> PieceResult | None:
    """The second half of the CSV pieces rule, on each piece's result in source order.

    Returns the result to fold (``res`` itself, or a re-read of a merged range), or None when
    the piece is held back or dropped. ``last`` says whether it is its file's last piece;
    ``reread`` reads and checks one piece (the engine's worker function).
    """
    src = res.piece.file.display
    if src in ends.skip_rest_of:
        return None
    # A piece ends at the newline after its target: a record end only after an even
    # number of quotes since the data began. If odd, hold it and merge it with the
    # next pieces until the count is even again (a quoted line break across the
    # end), then read that range as one piece. The held pieces' own results are
    # dropped: a piece that starts inside a quoted value sees broken quotes.
    ends.parity[src] = (ends.parity.get(src, 0) + res.quotes) & 1
    if src in ends.held or (ends.parity[src] and not last):
        ends.held.setdefault(src, []).append(res)
        if ends.parity[src] and not last:
            return None
        first = ends.held.pop(src)[0].piece
        end = res.piece.end
        res = reread(
            Piece(first.index, first.file, first.start, end, first.header, first.header_end)
        )
    if res.quote_trouble and not last:
        # A broken quote: the reader resynchronised on the next line, so quote
        # parity no longer says where records end. Read the rest of the file in one
        # piece, as a single reader would, and drop the rest of this file's results.
        ends.skip_rest_of.add(src)
        first = res.piece
        res = reread(
            Piece(first.index, first.file, first.start, -1, first.header, first.header_end)
        )
    return res
