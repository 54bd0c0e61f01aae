"""Stage 7, write, the worker's side: one piece's part files, copied from the source.

``split`` (``validator.write``) decides on the client, from a checked piece's record byte ranges
and which records failed, what goes where: the part files' names (and job folders), the byte
runs each gets, the repaired records' new bytes. That plan is a :class:`PartsTask`, plain data;
:func:`write_parts` runs it wherever the pieces were checked (a process pool's worker, a Dask
worker, or this process): it opens the piece's byte range through the source's transport and
writes each part through the destination's (``open_writer`` → ``commit``/``discard``), so the
client never copies the data. Rejected records come back as bytes (there are few; the rejects
file is one file, written by the client in source order).

A task that fails discards the part it was writing and says which parts it committed, so the
client's rollback removes exactly what exists. A worker that dies mid-task says nothing: the
client then removes every name of the task, and what the transport left pending
(``transport.clear_partial``).
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Protocol

from validator import signals, transport
from validator.errors import UsageError
from validator.settings import AwsSettings
from validator.source import SourceFile, open_binary

COPY_CHUNK = 1 << 20

Run = tuple[int, int, bool]  # (start, end, to the rejects) in source bytes, ascending


@dataclass(frozen=True)
class PartGroup:
    """Consecutive records of a piece: the kept ones go to ``url`` (None: there are none), the
    rejected ones back to the client. ``subst``: a repaired record's start -> its new bytes."""

    runs: Sequence[Run]
    url: str | None
    header: bytes = b""
    subst: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class PartsTask:
    """Everything a worker needs to write one piece's parts. No credentials: ``settings``
    carries names only (endpoint, region, profile), and the worker's own AWS configuration."""

    file: SourceFile
    start: int  # where the piece's first record starts
    settings: AwsSettings | None
    groups: tuple[PartGroup, ...]

    @property
    def urls(self) -> list[str]:
        return [g.url for g in self.groups if g.url is not None]


@dataclass(frozen=True)
class Part:
    """A part file as committed: its size and sha256 (for the manifest)."""

    url: str
    size: int
    sha256: str


@dataclass
class PartsDone:
    """What a task did: the parts committed (one per group, None for a group with no kept
    record), each group's rejected bytes, and, if it failed, the error and what its clean-up
    could not take back."""

    parts: list[Part | None] = field(default_factory=list)
    rejects: list[bytes] = field(default_factory=list)
    error: Exception | None = None
    left: list[str] = field(default_factory=list)

    @property
    def committed(self) -> list[str]:
        return [p.url for p in self.parts if p is not None]


class _Sink(Protocol):
    def write(self, data: bytes | memoryview) -> object: ...


class _Counted:
    """A transport writer that counts the bytes and their sha256 as they go."""

    def __init__(self, url: str, settings: AwsSettings | None) -> None:
        self.url = url
        self.sha = hashlib.sha256()
        self.size = 0
        self.out = transport.for_output(url).open_writer(url, settings=settings)

    def write(self, data: bytes | memoryview) -> object:
        self.out.write(data)
        self.sha.update(data)
        self.size += len(data)
        return None


class _Collected:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes | memoryview) -> object:
        self.data += data
        return None


def _skip(stream: IO[bytes], n: int) -> None:
    while n > 0:
        got = stream.read(min(n, COPY_CHUNK))
        if not got:
            raise UsageError("the source changed while it was being split")
        n -= len(got)


def copy_runs(
    stream: IO[bytes],
    pos: int,
    runs: Sequence[Run],
    outs: dict[bool, _Sink],
    subst: dict[int, bytes] | None = None,
) -> int:
    """Copy byte ranges (ascending) from ``stream``, which is at ``pos``, to ``outs[label]``;
    a run that starts at a key of ``subst`` (a repaired record) is written as its value. A
    record without a final newline (the file's last) gets one: the next one needs it."""
    for start, end, label in runs:
        out = outs[label]
        if subst and start in subst:
            _skip(stream, end - pos)  # past the original bytes
            data = subst[start]
            out.write(data)
            if not data.endswith(b"\n"):
                out.write(b"\n")
            pos = end
            continue
        _skip(stream, start - pos)
        todo = end - start
        chunk = b""
        while todo:
            chunk = stream.read(min(todo, COPY_CHUNK))
            if not chunk:
                raise UsageError("the source changed while it was being split")
            out.write(chunk)
            todo -= len(chunk)
        pos = end
        if chunk and not chunk.endswith(b"\n"):
            out.write(b"\n")
    return pos


def write_parts(task: PartsTask) -> PartsDone:
    """Write one piece's parts (the worker's job). An error is returned, not raised, with
    what was committed before it: the client's rollback then knows what exists."""
    done = PartsDone()
    current: _Counted | None = None
    try:
        with open_binary(task.file, task.start, settings=task.settings) as stream:
            pos = task.start
            for group in task.groups:
                collected = _Collected()
                outs: dict[bool, _Sink] = {True: collected}
                if group.url is None:
                    pos = copy_runs(stream, pos, group.runs, outs, group.subst)
                    done.parts.append(None)
                else:
                    with signals.critical():  # in this process: never an upload untracked
                        current = _Counted(group.url, task.settings)
                    if group.header:
                        current.write(group.header)
                    outs[False] = current
                    pos = copy_runs(stream, pos, group.runs, outs, group.subst)
                    with signals.critical():
                        current.out.commit()
                        done.parts.append(Part(current.url, current.size, current.sha.hexdigest()))
                        current = None
                done.rejects.append(bytes(collected.data))
    except Exception as exc:
        done.error = exc
    finally:
        if current is not None:  # cut short: the part being written is taken back
            with contextlib.suppress(Exception):
                left = current.out.discard()
                if left:
                    done.left.append(left)
    return done
