"""Standard input (``-``) and pipes (a FIFO, bash's ``<(cmd)`` as ``/dev/fd/N``), each read
once by the whole job: the head the planner reads is kept and replayed to the reader that
follows, as a pipe can't seek back. The local transport lists a pipe it meets as one of these.

Reading only: ``-`` as an output is standard output, a stream of the local transport.
"""

from __future__ import annotations

import io
import sys
from typing import IO, Any

from validator.errors import from_os_error
from validator.settings import AwsSettings
from validator.source import SourceFile, format_of

NAME = "stdin"
SCHEMES: tuple[str, ...] = ()  # named by "-"
REMOTE = False
READ_ONCE = True
ANYWHERE = False  # this process's own input: no other machine can read it
FETCH_SMALL_WHOLE = False


def list_source(source: str, *, settings: AwsSettings | None = None) -> list[SourceFile]:
    return [SourceFile(display="-", size=-1, kind=NAME, identity=("stdin",))]


def pipe_file(shown: str, path: str, dev: int, ino: int) -> SourceFile:
    """The ``SourceFile`` of a named pipe at ``path`` (``shown`` as the user wrote it)."""
    return SourceFile(
        display=shown,
        size=-1,
        kind=NAME,
        path=path,
        format=format_of(shown),
        identity=("pipe", dev, ino),
    )


def names_one(source: str, listed: list[SourceFile]) -> bool:
    return True


def warnings(source: str, listed: list[SourceFile]) -> list[tuple[str, str, str]]:
    return []


def display(location: str) -> str:
    return "-"


def describe(f: SourceFile) -> str:
    return "standard input" if f.path is None else f"{f.display} (a pipe)"


class _Stdin:
    """Standard input (or the pipe at ``path``), read once by the whole job. The head the
    planner reads is kept, and replayed to the reader that follows (a pipe can't seek back)."""

    def __init__(self, path: str | None = None, display: str = "-") -> None:
        self.path = path
        self.display = display
        self.stream: IO[bytes] | None = None
        self.head = b""

    def _current(self) -> IO[bytes]:
        if self.path is not None:  # a pipe: opened once (the writer may wait for it)
            if self.stream is None:
                try:
                    self.stream = open(self.path, "rb", buffering=0)  # noqa: SIM115 - kept open
                except OSError as exc:
                    raise from_os_error(exc, self.display, action="cannot read") from exc
            return self.stream
        stream = sys.stdin.buffer
        if stream is not self.stream:  # a new standard input (tests swap it): forget the old
            self.stream, self.head = stream, b""
        return stream

    def read_head(self, n: int) -> bytes:
        """Up to ``n`` bytes from the start (fewer only at the end of the input)."""
        stream = self._current()
        while len(self.head) < n:
            chunk = stream.read(n - len(self.head))
            if not chunk:
                break
            self.head += chunk
        return self.head[:n]

    def open(self, start: int) -> IO[bytes]:
        return io.BufferedReader(_StdinReader(self, self._current(), start), 1 << 20)


class _StdinReader(io.RawIOBase):
    """Standard input from ``start``: what the head kept, then the rest, never closed."""

    def __init__(self, stdin: _Stdin, stream: IO[bytes], start: int) -> None:
        self._pending = memoryview(stdin.head)[start:]
        self._skip = max(0, start - len(stdin.head))
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._skip:
            dropped = self._stream.read(min(self._skip, 1 << 20))
            if not dropped:
                return 0
            self._skip -= len(dropped)
        if len(self._pending):
            n = min(len(buffer), len(self._pending))
            buffer[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        read1 = getattr(self._stream, "read1", self._stream.read)
        data = read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)


_stdin = _Stdin()
_pipes: dict[str, _Stdin] = {}  # named pipes and /dev/fd/N sources, by path


def _stream_of(f: SourceFile | None) -> _Stdin:
    if f is None or f.path is None:
        return _stdin
    pipe = _pipes.get(f.path)
    if pipe is None:
        pipe = _pipes[f.path] = _Stdin(f.path, f.display)
    return pipe


def head(n: int, f: SourceFile | None = None) -> bytes:
    """The first ``n`` bytes of standard input (or of the pipe ``f``), kept for the reader
    that comes next."""
    return _stream_of(f).read_head(n)


def read_head(f: SourceFile, n: int, *, settings: AwsSettings | None = None) -> bytes:
    """The first ``n`` bytes, kept for the reader that comes next (a pipe can't seek back)."""
    return head(n, f)


def open_range(f: SourceFile, start: int = 0, *, settings: AwsSettings | None = None) -> IO[bytes]:
    return _stream_of(f).open(start)
