"""Read a piece as a stream of line-aligned blocks: fixed-size reads, so memory stays bounded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

import numpy as np
import pyarrow as pa

from validator.model import Batch, Problem

BLOCK_SIZE = 8 << 20
MAX_LINE = 32 << 20  # a line this long without a newline is not an endpoint: it is skipped


def line_blocks(
    stream: IO[bytes],
    length: int,
    consume: Callable[[bytes, bool], int],
    overlong: Callable[[int, int, bool], None] | None = None,
    block_size: int | None = None,
    whole: bool = False,
) -> Iterator[None]:
    """Feed ``consume(buf, final)`` buffers that end at a newline (or at the end of the piece).

    ``consume`` returns how many bytes of ``buf`` it used; the rest is carried into the next
    buffer (a CSV record whose quoted value runs past the block). ``length`` is the number of
    bytes to read, or -1 for "to the end of the stream". Yields after each buffer. With
    ``whole`` a buffer is passed as read, past its last newline too (no copy of the part that
    ends at it): ``consume`` then uses it up to that newline at most.
    """
    block_size = block_size or BLOCK_SIZE
    carry = b""
    remaining = length
    while True:
        want = block_size if remaining < 0 else min(block_size, remaining)
        chunk = stream.read(want) if want else b""
        if remaining >= 0:
            remaining -= len(chunk)
        final = not chunk or remaining == 0
        buf = carry + chunk if carry else chunk
        if final:
            if buf:
                used = consume(buf, True)
                assert used == len(buf), "the final buffer must be consumed whole"
                yield None
            return
        cut = buf.rfind(b"\n") + 1
        if cut == 0:
            carry = buf
            if len(carry) > MAX_LINE and overlong is not None:
                # No endpoint is this long: stream past the line to its newline, counting it,
                # and let the reader report it, instead of holding it in memory.
                skipped, quotes = len(carry), carry.count(b'"')
                carry = b""
                while True:
                    want = block_size if remaining < 0 else min(block_size, remaining)
                    chunk = stream.read(want) if want else b""
                    if remaining >= 0:
                        remaining -= len(chunk)
                    nl = chunk.find(b"\n")
                    if nl >= 0:
                        skipped += nl + 1
                        quotes += chunk.count(b'"', 0, nl + 1)
                        overlong(skipped, quotes, True)
                        carry = chunk[nl + 1 :]
                        break
                    skipped += len(chunk)
                    quotes += chunk.count(b'"')
                    if not chunk or remaining == 0:
                        overlong(skipped, quotes, False)
                        yield None  # the reader's batch for the line, before the end
                        return
                yield None
            continue
        used = consume(buf if whole or cut == len(buf) else buf[:cut], False)
        carry = buf[used:]
        yield None


class PieceReader:
    """What both readers keep while reading a piece: where they are (file offset, lines and
    records so far), the batches read and not yet taken, the record spans when writing, and
    the quotes seen (for CSV piece ends)."""

    whole_buffers = False  # consume takes buffers past their last newline (see line_blocks)

    def __init__(self, *, offset: int, line: int, keep_spans: bool = False) -> None:
        self.offset = offset  # file offset of the next buffer
        self.line = line  # lines before the next buffer, relative to the piece
        self.record = 0
        self.batches: list[Batch] = []
        self.keep_spans = keep_spans
        self.spans: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.quote_trouble = False
        self.quotes = 0

    def consume(self, buf: bytes, final: bool) -> int:
        raise NotImplementedError

    def overlong(self, length: int, quotes: int, newline: bool) -> None:
        """A line too long to be an endpoint, skipped unread: one failed record."""
        line = self.line + 1
        empty = np.empty(0, np.int64)
        problem = Problem(
            self.record,
            line,
            None,
            "ENDPOINT_TOO_LARGE",
            f"a line of {length:,} bytes with no line break; an endpoint is at "
            "most 15 KB: is this really an endpoint file?",
        )
        self.batches.append(Batch(pa.table({}), empty, empty, empty, empty, [problem]))
        if self.keep_spans:
            self.spans.append(
                (np.array([line]), np.array([self.offset]), np.array([self.offset + length]))
            )
        self.record += 1
        self.line += 1 if newline else 0
        self.offset += length
        self.quotes += quotes
        self.quote_trouble = self.quote_trouble or bool(quotes & 1)

    def read(self, stream: IO[bytes], length: int) -> Iterator[Batch]:
        """Read ``length`` bytes (-1: to the end) and yield the batches as they are made."""
        for _ in line_blocks(stream, length, self.consume, self.overlong, whole=self.whole_buffers):
            while self.batches:
                yield self.batches.pop(0)
