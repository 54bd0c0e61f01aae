"""Stage 2, the pieces: cut every file into record-aligned byte ranges of roughly equal size.

A piece ends at a line start after its share of the bytes. For NDJSON every line start is a
record start. For CSV a line start is one unless a quoted line break runs across it, and a
quoted value is bounded (``read_csv.DEFAULT_BOUND``, 64 KiB: an endpoint is at most 15 KB), so
:func:`settle_csv_boundary` settles a boundary from at most that many bytes before it: the first
line start at or after the target with no line holding an odd number of quotes in the bound
before it is a record start however the file before it is read (a record that spans lines starts
with such a line and is at most the bound long; a broken quote costs only its own line). Every
piece then reads exactly the records a single reader would, in parallel, and none is read twice.
Each file's head is read here once: compressed content, a byte order mark, the CSV header.
"""

from __future__ import annotations

import io
import itertools
import math
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from validator import blocks, check, transport
from validator.errors import OptionError, UsageError
from validator.model import Piece, Problem
from validator.read_csv import (
    DEFAULT_BOUND,
    Columns,
    _legit_multiline,
    parse_header,
    utf8_valid,
)
from validator.settings import AwsSettings, with_client
from validator.source import Listing, SourceFile, open_binary

DEFAULT_PIECE_SIZE = 64 << 20
_A = TypeVar("_A")
_R = TypeVar("_R")
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
    # a small S3 object whose head the worker reads, from the one GET of the whole object it
    # makes anyway (pack.run_pack): until then nothing above is known, and it has one piece
    inspect_later: bool = False


def _read_head(f: SourceFile, settings: AwsSettings | None, s3_client: Any) -> bytes:
    # a stream keeps its head: the piece's reader gets these bytes again
    return transport.read_head(f, HEAD, settings=with_client(settings, s3_client))


def inspect_file(
    f: SourceFile,
    fmt: str,
    settings: AwsSettings | None = None,
    s3_client: Any = None,
    data: bytes | None = None,
) -> FilePlan:
    """Read the head of a file: compression, BOM, emptiness and the CSV header. ``data``: the
    whole file, when it is in hand already (nothing is read then)."""
    plan = FilePlan(f)
    head = data[:HEAD] if data is not None else _read_head(f, settings, s3_client)
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

        def read_on(start: int) -> Any:  # the file from ``start``, for a header past the head
            if data is not None:
                return nullcontext(io.BytesIO(data[start:]))
            return open_binary(f, start, settings=settings, s3_client=s3_client)

        _inspect_csv_header(f, plan, head, read_on)
    return plan


def _header_line(
    f: SourceFile, plan: FilePlan, head: bytes, read_on: Callable[[int], Any]
) -> bytes | None:
    """The header line (with its newline), read on past the head when it is longer; None when
    it has no newline within ``blocks.MAX_LINE`` bytes of a file that goes on."""
    newline = head.find(b"\n", plan.data_start)
    if newline >= 0:
        return head[plan.data_start : newline + 1]
    if transport.read_once(f) or len(head) < HEAD:
        return head[plan.data_start :]
    line = head[plan.data_start :]
    with read_on(len(head)) as stream:
        while len(line) <= blocks.MAX_LINE:
            chunk = stream.read(HEAD)
            if not chunk:
                return line
            newline = chunk.find(b"\n")
            if newline >= 0:
                return line + chunk[: newline + 1]
            line += chunk
    return None


def _inspect_csv_header(
    f: SourceFile, plan: FilePlan, head: bytes, read_on: Callable[[int], Any]
) -> None:
    first = head[plan.data_start :]
    nl = first.find(b"\n")
    cr = first.find(b"\r")
    if nl < 0 and cr >= 0 and not first.startswith(b"\r\n", cr):
        # No line feed at all, and a bare CR: every line ends in one, so the file is one line.
        plan.readable = False
        plan.problems.append(
            Problem(
                None,
                None,
                None,
                "FILE_LINE_ENDINGS",
                "lines end in a bare CR (classic Mac line endings), so the file reads as "
                "one line; save it with LF or CRLF line endings",
            )
        )
        return
    line = _header_line(f, plan, head, read_on)
    if line is None:
        plan.readable = False
        plan.problems.append(
            Problem(
                None,
                None,
                None,
                "CSV_HEADER_UNKNOWN",
                f"the first line runs over {blocks.MAX_LINE:,} bytes with no line break: "
                "it is not a CSV header",
            )
        )
        return
    body = line[:-1] if line.endswith(b"\n") else line
    body = body[:-1] if body.endswith(b"\r") else body
    if b"\r" in body:
        at = plan.data_start + body.index(b"\r")
        plan.problems.append(
            Problem(
                None,
                None,
                None,
                "FILE_LINE_ENDINGS",
                f"the header holds a bare CR (a classic Mac line end) at byte {at}; Pinpoint "
                "reads lines that end in LF or CRLF",
            )
        )
    if not utf8_valid(line):
        bad = _first_bad(line)
        plan.problems.append(
            Problem(
                None,
                None,
                None,
                "FILE_NOT_UTF8",
                f"byte 0x{line[bad]:02X} at offset {plan.data_start + bad} in the header is not "
                "UTF-8; Pinpoint reads UTF-8 only",
            )
        )
    plan.header = parse_header(line)
    plan.data_start += len(line)
    drop = set()
    for hp in check.check_csv_header(plan.header):
        plan.problems.append(Problem(None, None, hp.field, hp.code, hp.message))
        if hp.code == "CSV_HEADER_UNKNOWN":
            drop.add(hp.column)
    plan.columns = Columns.from_header(plan.header, drop)


def _first_bad(data: bytes) -> int:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return 0


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


def _read_at(
    f: SourceFile, start: int, n: int, settings: AwsSettings | None, s3_client: Any
) -> bytes:
    with open_binary(f, start, settings=settings, s3_client=s3_client) as stream:
        out = b""
        while len(out) < n:
            chunk = stream.read(n - len(out))
            if not chunk:
                break
            out += chunk
        return out


def _each(f: SourceFile, read: Callable[[_A], _R], items: list[_A]) -> list[_R]:
    """``read`` of each item, in order: a remote file's reads are latency-bound, so side by
    side on threads (joined before any worker is forked)."""
    if transport.is_remote(f) and len(items) > 1:
        with ThreadPoolExecutor(min(HEAD_READERS, len(items))) as pool:
            return list(pool.map(read, items))
    return [read(x) for x in items]


def newline_boundaries(
    f: SourceFile, targets: list[int], settings: AwsSettings | None, s3_client: Any
) -> list[int]:
    """NDJSON: the line start at or after each target (every line start is a record start)."""

    def line_start(target: int) -> int:
        with open_binary(f, target - 1, settings=settings, s3_client=s3_client) as stream:
            seen = 0
            while seen < BOUNDARY_REACH:
                chunk = stream.read(HEAD)
                if not chunk:
                    break
                nl = chunk.find(b"\n")
                if nl >= 0:
                    return target + seen + nl
                seen += len(chunk)
        return -1

    out: list[int] = []
    for pos in _each(f, line_start, targets):
        if pos > 0 and (not out or pos > out[-1]) and pos < f.size:
            out.append(pos)
    return out


SETTLE_CHECKS = 4096  # quoted line breaks tried per boundary before giving the boundary up


def settle_csv_boundary(
    window: bytes,
    lo: int,
    target: int,
    width: int,
    *,
    bound: int = DEFAULT_BOUND,
    at_line_start: bool = False,
    at_end: bool = False,
) -> int | None:
    """Where a CSV piece may end: the first line start at or after ``target`` that is a record
    start however the file before the window is read, or None if the window shows none.

    ``window`` holds the file's bytes from offset ``lo`` (``target - bound`` or the start of
    the data, whichever is later) to past the target; ``at_line_start`` says whether ``lo``
    is a line start, ``at_end`` whether the window ends at the end of the file. Reading from a
    line start is deterministic: a line with an even number of
    quotes is one record, a line with an odd number is one record with the lines up to the next
    odd one when that text is at most ``bound`` bytes and one row of the header's ``width``
    (the same rule as :func:`validator.read_csv.scan`), else a broken quote of its own. The
    record that covers ``lo`` ends before the target (it is at most ``bound`` long, or one
    line), so a single reader starts a record at some line start in the window; a line start
    ``P`` that no record from any earlier line start of the window runs across is then one of
    its record starts.
    """
    arr = np.frombuffer(window, np.uint8)
    newlines = np.flatnonzero(arr == 10)
    if at_end and len(arr) and arr[-1] != 10:
        # The file's last line has no newline: a reader ends it at the end of the file, so
        # it is a complete line here too (a quote it closes closes a record before it).
        newlines = np.append(newlines, len(arr))
    if at_line_start:
        starts, ends = np.concatenate(([0], newlines + 1)), newlines
    else:  # the first line of the window began before it: its quotes are not known
        starts, ends = newlines + 1, newlines[1:]
    n = len(ends)  # lines 0..n-1 end in the window; line n starts at starts[n]
    complete = starts[:n]
    if not n:
        return None
    quotes = np.flatnonzero(arr == 34)
    per_line = np.searchsorted(quotes, ends) - np.searchsorted(quotes, complete)
    too_long = (ends + 1 - complete) > blocks.MAX_LINE + 1  # records of their own
    per_line[too_long] = 0
    nxt = np.arange(1, n + 1, dtype=np.int64)  # the next record's line, from each line
    odd = np.flatnonzero(per_line & 1)
    if len(odd) > SETTLE_CHECKS:
        odd = odd[:SETTLE_CHECKS]
        nxt[odd[-1] :] = n + 1  # not looked at: no boundary after them
    for k, first in enumerate(odd.tolist()):
        if k + 1 < len(odd):
            last = int(odd[k + 1])
            start, end = int(complete[first]), int(ends[last]) + 1
            if (
                end - start <= bound
                and not too_long[first : last + 1].any()
                and _legit_multiline(window[start:end], width)
            ):
                nxt[first] = last + 1
        elif not at_end and len(window) - int(complete[first]) <= bound:
            nxt[first] = n + 1  # it may close after the window: undecided
    # Line p is a record start of every reading from the window's line starts when no line
    # before it has its next record after it.
    # (The first known line start qualifies too: a record across it would start before lo.)
    reach = np.concatenate(([0], np.maximum.accumulate(nxt)))
    line = np.arange(n + 1)
    free = np.flatnonzero(
        (reach <= line) & (starts[: n + 1] + lo >= target) & (starts[: n + 1] < len(arr))
    )
    return int(starts[free[0]]) + lo if len(free) else None


def csv_boundaries(
    f: SourceFile,
    targets: list[int],
    data_start: int,
    width: int,
    settings: AwsSettings | None,
    s3_client: Any,
) -> list[int]:
    out: list[int] = []
    lows = [max(data_start, target - DEFAULT_BOUND) for target in targets]

    def first_window(at: tuple[int, int]) -> bytes:
        lo, target = at
        return _read_at(f, lo, target - lo + 2 * HEAD, settings, s3_client)

    firsts = _each(f, first_window, list(zip(lows, targets, strict=True)))
    for target, lo, first in zip(targets, lows, firsts, strict=True):
        pos = None
        for reach in (2 * HEAD, BOUNDARY_REACH):  # nearly always settled in the first
            window = (
                first
                if reach == 2 * HEAD
                else _read_at(f, lo, target - lo + reach, settings, s3_client)
            )
            pos = settle_csv_boundary(
                window,
                lo,
                target,
                width,
                at_line_start=lo == data_start,
                at_end=lo + len(window) >= f.size,
            )
            if pos is not None or lo + len(window) >= f.size:
                break
        if pos is not None and pos > data_start and (not out or pos > out[-1]) and pos < f.size:
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
    inspect_later: Callable[[SourceFile], bool] | None = None,
) -> list[FilePlan]:
    """Inspect every selected file and cut it into pieces, numbered in source order.

    ``inspect_later``: files (small ones, read whole by a pack) whose head is read by the
    worker that reads them, in one piece (``FilePlan.inspect_later``)."""
    files = listing.selected

    def inspect(f: SourceFile) -> FilePlan:
        if inspect_later is not None and inspect_later(f):
            return FilePlan(f, inspect_later=True)
        return inspect_file(f, listing.format, settings, s3_client)

    if sum(transport.is_remote(f) for f in files) > 1:
        # One small ranged read per object: latency-bound, so side by side, in order.
        with ThreadPoolExecutor(HEAD_READERS) as pool:
            plans = list(pool.map(inspect, files))
    else:
        plans = [inspect(f) for f in files]
    readable = [p for p in plans if p.readable]
    counts = dict(
        zip((id(p) for p in readable), _count_for(readable, pieces, piece_size), strict=True)
    )
    index = 0
    for plan in plans:
        if not plan.readable:
            continue
        f = plan.file
        one = transport.read_once(f) or f.display in one_piece or plan.inspect_later
        n = 1 if one else counts[id(plan)]
        bounds: list[int] | None = []
        if n > 1:
            span = f.size - plan.data_start
            targets = sorted(
                {plan.data_start + span * k // n for k in range(1, n)} - {plan.data_start}
            )
            if plan.columns is not None:
                bounds = csv_boundaries(
                    f, targets, plan.data_start, plan.columns.width, settings, s3_client
                )
            else:
                bounds = newline_boundaries(f, targets, settings, s3_client)
        edges = [0, *(bounds or []), -1]
        header = tuple(plan.header) if plan.header is not None else None
        for start, end in itertools.pairwise(edges):
            plan.pieces.append(Piece(index, f, start, end, header, plan.data_start))
            index += 1
    return plans
