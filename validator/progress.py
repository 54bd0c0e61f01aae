"""A progress line on stderr for people at a terminal: bytes and records, per file."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from validator.model import PieceResult


class Progress:
    """Shown only on a TTY, and only once a run has taken more than a second."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.bytes = 0
        self.records = 0
        self.pieces = 0
        self.shown = False

    def update(self, result: PieceResult) -> None:
        self.bytes += result.bytes_read
        self.records += result.records
        self.pieces += 1
        elapsed = time.monotonic() - self.started
        if elapsed < 1.0:
            return
        rate = self.bytes / elapsed / 1e6
        self.stream.write(
            f"\r{result.piece.file.display}: {self.pieces} pieces, "
            f"{self.bytes / 1e6:,.1f} MB, {self.records:,} records "
            f"({rate:,.0f} MB/s)\x1b[K"
        )
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()

    @classmethod
    @contextmanager
    def maybe(cls, wanted: bool | None) -> Iterator[Progress | None]:
        on = sys.stderr.isatty() if wanted is None else wanted
        bar = cls() if on else None
        try:
            yield bar
        finally:
            if bar:
                bar.close()
