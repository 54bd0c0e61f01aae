"""Read a piece as a stream of line-aligned blocks: fixed-size reads, so memory stays bounded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO

BLOCK_SIZE = 8 << 20
MAX_LINE = 32 << 20  # a line this long without a newline is not an endpoint: it is cut off


def line_blocks(
    stream: IO[bytes],
    length: int,
    consume: Callable[[bytes, bool], int],
    block_size: int | None = None,
) -> Iterator[None]:
    """Feed ``consume(buf, final)`` buffers that end at a newline (or at the end of the piece).

    ``consume`` returns how many bytes of ``buf`` it used; the rest is carried into the next
    buffer (a CSV record whose quoted value runs past the block). ``length`` is the number of
    bytes to read, or -1 for "to the end of the stream". Yields after each buffer.
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
            if len(carry) > MAX_LINE:
                consume(carry, True)  # the reader reports the overlong line and moves on
                carry = b""
            continue
        used = consume(buf[:cut] if cut < len(buf) else buf, False)
        carry = buf[used:]
        yield None
