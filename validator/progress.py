"""A progress display on stderr for people at a terminal, drawn by rich.

For the job and for each file being read: bytes done of the total, percent, records so far,
rate and time left (and, on a wide terminal, pieces done of the total). rich redraws it 4 times
a second in place and lays each line out within the terminal's width, so a narrow terminal never
wraps it into stale lines. Silent when stderr is not a terminal (unless ``--progress`` asks for
it) and with ``--quiet``.

The counts move inside a piece (pieces are up to 64 MiB), not only when one ends. The read loop
(``piece.run_piece`` and ``pack.run_pack``) calls a ``tick(piece, bytes, records)`` after each
block it reads (8 MiB), with what it has read of that piece so far; and the bytes move as they
arrive, before the block is whole: the piece's stream is wrapped in :class:`Counting`, which
makes each read in steps of 256 KiB and ticks the bytes after each, and a stream that fetches
ahead (S3's ranged GETs) ticks them as they come in from the network (on S3 at a few MB/s a
block is seconds). A :class:`Meter` turns the calls into per-file counts, each the highest it was
told:

- in this process (``--workers 1``, or a thread pool), in a plain array;
- in a process pool, in a shared ``multiprocessing.Array`` the workers get at start-up
  (:func:`attach`, through the pool's initializer) and add to under its lock, once a block;

and each redraw reads them. A Dask cluster gets no tick: its counts move a piece at a time,
with pieces done of the total. What the fold sees (``update``, each piece's result in source
order) is the floor of every count, so nothing ever goes back and the last line is exact.

The engine calls ``start`` with the listing and the pieces before any is read, ``begin`` once
its worker processes are started (the redraw thread starts then, so the workers are still
forked from a process of one thread), and the display with each piece's result as it is folded.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

import numpy as np

from validator.model import Piece, PieceResult

REFRESH_PER_SECOND = 4
STEP = 256 << 10  # a read is made in steps of this size, the bytes ticked after each
WIDE = 110  # columns from which each value has a column of its own, with a bar

Tick = Callable[[Piece, int, int], None]  # (piece, bytes read of it so far, records so far)


def _columns(width: int) -> list[Any]:
    """The display's columns for a terminal ``width`` wide: on a wide one a column per value;
    on a narrow one a single line of text, cut with an ellipsis at the width (never folded)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    from rich.table import Column
    from rich.text import Text

    def cell() -> Column:
        return Column(no_wrap=True, overflow="ellipsis")

    if width >= WIDE:
        return [
            TextColumn("{task.description}", style="bold", table_column=cell()),
            BarColumn(bar_width=24, table_column=cell()),
            TaskProgressColumn(table_column=cell()),
            DownloadColumn(table_column=cell()),
            TextColumn("{task.fields[records]} records", table_column=cell()),
            TextColumn("{task.fields[pieces]} pieces", table_column=cell()),
            TransferSpeedColumn(table_column=cell()),
            TimeRemainingColumn(table_column=cell()),
        ]

    class Compact(ProgressColumn):
        """``job 42% 12.0/31.9 MB 150,871 rec 9.1 MB/s 0:00:02`` on one line."""

        def render(self, task: Any) -> Text:
            from rich.filesize import decimal

            pct = f"{task.percentage:3.0f}%" if task.total else "  ?%"
            total = decimal(int(task.total)) if task.total else "?"
            speed = f"{decimal(int(task.speed))}/s" if task.speed else "?/s"
            left = task.time_remaining
            eta = (
                "-:--:--"
                if left is None
                else f"{int(left) // 3600}:{int(left) % 3600 // 60:02d}:{int(left) % 60:02d}"
            )
            text = (
                f"{task.description} {pct} {decimal(int(task.completed))}/{total} "
                f"{task.fields['records']} rec {speed} {eta}"
            )
            return Text(text, no_wrap=True, overflow="ellipsis")

    return [Compact(table_column=Column(no_wrap=True, overflow="ellipsis", max_width=width - 1))]


class Counting:
    """A piece's stream whose reads tick the bytes as they arrive: ``read(n)`` reads in steps
    of at most :data:`STEP` and calls ``on_bytes(done)`` after each, ``done`` counting from
    ``done`` at the start; it returns what one ``read(n)`` of the stream would (up to ``n``
    bytes, fewer only at the end). Everything else (``fileno``, ``seek``) is the stream's."""

    def __init__(self, stream: IO[bytes], on_bytes: Callable[[int], None], done: int = 0) -> None:
        self._stream = stream
        self._on_bytes = on_bytes
        self.done = done

    def read(self, n: int | None = -1) -> bytes:
        want = -1 if n is None or n < 0 else n
        parts: list[bytes] = []
        while want:
            chunk = self._stream.read(STEP if want < 0 else min(STEP, want))
            if not chunk:
                break
            parts.append(chunk)
            self.done += len(chunk)
            self._on_bytes(self.done)
            if want > 0:
                want -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def counting(stream: IO[bytes], tick: Tick, piece: Piece, done: int) -> IO[bytes]:
    """``stream`` with its bytes ticked as they arrive, as ``tick(piece, bytes, 0)``: the
    records stay where the last block's tick put them (a :class:`Meter` keeps the highest).

    A stream that fetches ahead of its reader (S3's ranges, a GET of up to 8 MiB each) may say
    as its bytes come in from the network: its ``watch(arrived)`` (see
    ``validator.transport``) is given a hook that ticks them, up to the piece's end."""
    length = piece.end - piece.start if piece.end >= 0 else None

    def arrived(n: int) -> None:
        tick(piece, done + n if length is None else min(done + n, length), 0)

    watch = getattr(stream, "watch", None)
    if callable(watch):
        watch(arrived)
    return Counting(stream, lambda n: tick(piece, n, 0), done)  # type: ignore[return-value]


class Meter:
    """Bytes and records read so far, per file of the job (by its place in ``files``).

    ``tick`` is the read loop's hook: it is given the totals of one piece so far and adds what
    is new since that piece's last tick (each count the highest it was told: the bytes ticked
    as they arrive run ahead of the block's tick, and the records come with the block).
    ``counts`` is any array of ``2 * len(files)`` int64 (a plain one, or a shared
    ``multiprocessing.Array``) and ``lock`` guards it.
    """

    def __init__(self, files: Sequence[str], counts: Any = None, lock: Any = None) -> None:
        self.index = {name: i for i, name in enumerate(files)}
        self.counts = np.zeros(2 * len(files), np.int64) if counts is None else counts
        self.lock = lock if lock is not None else threading.Lock()
        self.seen: dict[tuple[str, int], tuple[int, int]] = {}

    def tick(self, piece: Piece, done_bytes: int, done_records: int) -> None:
        i = self.index.get(piece.file.display)
        if i is None:
            return
        key = (piece.file.display, piece.start)
        with self.lock:  # (a stream's read-ahead thread ticks too)
            old_bytes, old_records = self.seen.get(key, (0, 0))
            done_bytes, done_records = max(done_bytes, old_bytes), max(done_records, old_records)
            if (done_bytes, done_records) == (old_bytes, old_records):
                return
            self.seen[key] = (done_bytes, done_records)
            self.counts[2 * i] += done_bytes - old_bytes
            self.counts[2 * i + 1] += done_records - old_records

    def snapshot(self) -> np.ndarray:
        """(bytes, records) per file, as a ``(files, 2)`` array of its own."""
        with self.lock:
            return np.frombuffer(self.counts, np.int64).reshape(-1, 2).copy()

    def shared(self, context: Any) -> tuple[Callable[..., None], tuple[Any, ...]]:
        """Move the counts into memory the workers of a pool made from ``context`` share: the
        function and arguments their initializer calls (:func:`attach`)."""
        counts = context.Array("q", len(self.counts))  # zeroed, with its own lock
        self.counts, self.lock = counts.get_obj(), counts.get_lock()
        return attach, (counts, list(self.index))


_worker_meter: Meter | None = None


def attach(counts: Any, files: list[str]) -> None:
    """In a worker process, at start-up: its ticks go to the shared ``counts``."""
    global _worker_meter
    _worker_meter = Meter(files, counts.get_obj(), counts.get_lock())


def worker_tick(piece: Piece, done_bytes: int, done_records: int) -> None:
    """The tick a process pool's tasks carry (a module function pickles by name)."""
    if _worker_meter is not None:
        _worker_meter.tick(piece, done_bytes, done_records)


class Progress:
    """Job and per-file progress: ``start``, ``begin``, ``update(result)`` per piece folded,
    ``close()`` at the end; ``ticker`` gives the read loop its tick."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        from rich.console import Console
        from rich.progress import Progress as RichProgress

        display = self

        class Bar(RichProgress):
            def get_renderables(self) -> Any:
                if not display.pulling:  # (adding a line redraws: not again from here)
                    display.pull()  # the counts as they are now, at every redraw
                return super().get_renderables()

        self.lock = threading.RLock()
        self.meter: Meter | None = None
        self.pulling = False
        self.stream = stream or sys.stderr
        self.console = Console(file=self.stream, force_terminal=True, highlight=False)
        self.bar = Bar(
            *_columns(self.console.width),
            console=self.console,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=False,
            expand=False,
        )
        self.job = self.bar.add_task("job", total=None, records="0", pieces="0/0")
        self.files: list[str] = []  # displays of the selected files, in order
        self.names: dict[str, int] = {}
        self.sizes = np.zeros(0, np.int64)
        self.pieces = np.zeros(0, np.int64)  # planned, per file
        self.folded = np.zeros((0, 3), np.int64)  # bytes, records, pieces the fold has seen
        self.tasks: dict[int, Any] = {}  # file -> its line, while it is being read
        self.finished = np.zeros(0, bool)  # every piece of the file folded
        self.shown = False

    def start(self, listing: Any, pieces: Sequence[Piece] | None = None) -> None:
        """The totals, before the first piece: every selected file's size, and its pieces."""
        with self.lock:
            self.files = [f.display for f in listing.selected]
            self.names = {name: i for i, name in enumerate(self.files)}
            self.sizes = np.array([max(f.size, 0) for f in listing.selected], np.int64)
            self.pieces = np.zeros(len(self.files), np.int64)
            for p in pieces or ():
                i = self.names.get(p.file.display)
                if i is not None:
                    self.pieces[i] += 1
            self.folded = np.zeros((len(self.files), 3), np.int64)
            self.finished = np.zeros(len(self.files), bool)
            self.meter = Meter(self.files)
            total = int(self.sizes.sum())
            self.bar.update(self.job, total=total or None, pieces=f"0/{int(self.pieces.sum())}")

    def begin(self) -> None:
        """Start drawing (the redraw thread): after the engine has started its workers."""
        if not self.shown:
            self.bar.start()
            self.shown = True

    def update(self, result: PieceResult) -> None:
        """A piece's result, as the fold takes it."""
        self.begin()
        with self.lock:
            i = self.names.get(result.piece.file.display)
            if i is None:
                return
            self.folded[i] += (result.bytes_read, result.records, 1)
            if self.pieces[i] and self.folded[i, 2] >= self.pieces[i]:
                self.finished[i] = True  # every piece of it folded: exactly done
                self.folded[i, 0] = max(self.folded[i, 0], self.sizes[i])
                task = self.tasks.pop(i, None)
                if task is not None:  # a file done: its line goes, the job's stays
                    self.bar.remove_task(task)
            if self.meter is not None:  # the job's line now (a file's at the next redraw)
                self._job(self._done(self.meter.snapshot()))

    __call__ = update

    def pull(self) -> None:
        """Bring the lines up to date with the meter and the fold (each at its higher count).
        Called by every redraw, under rich's own lock, which is always taken first: so it is
        never called from here while ``self.lock`` is held (adding a line redraws)."""
        with self.lock:
            if self.meter is None or self.pulling:
                return
            self.pulling = True
            try:
                self._pull(self.meter.snapshot())
            finally:
                self.pulling = False

    def _job(self, done: np.ndarray) -> None:
        """The job's line (never redraws: rich's lock is not taken under ``self.lock``)."""
        self.bar.update(
            self.job,
            completed=int(done[:, 0].sum()),
            records=f"{int(done[:, 1].sum()):,}",
            pieces=f"{int(self.folded[:, 2].sum())}/{int(self.pieces.sum())}",
        )

    def _done(self, live: np.ndarray) -> np.ndarray:
        """(bytes, records) per file: the meter's or the fold's, whichever is higher, and the
        bytes never past the file's size (a stream may read ahead of its piece's end)."""
        done = np.maximum(live, self.folded[:, :2])
        known = self.sizes > 0
        done[known, 0] = np.minimum(done[known, 0], self.sizes[known])
        return done

    def _pull(self, live: np.ndarray) -> None:
        done = self._done(live)
        self._job(done)
        reading = ((done[:, 0] > 0) | (self.folded[:, 2] > 0)) & ~self.finished
        for i in np.flatnonzero(reading).tolist():
            task = self.tasks.get(i)
            if task is None:
                name = self.files[i].rsplit("/", 1)[-1] or self.files[i]
                size = int(self.sizes[i])
                task = self.bar.add_task(name, total=size or None, records="0", pieces="")
                self.tasks[i] = task
            self.bar.update(
                task,
                completed=int(done[i, 0]),
                records=f"{int(done[i, 1]):,}",
                pieces=f"{int(self.folded[i, 2])}/{int(self.pieces[i])}",
            )

    def ticker(self, processes: bool) -> Tick | None:
        """The read loop's hook: this process's meter, or (``processes``) the function a
        process pool's tasks carry, whose workers :meth:`Meter.shared` attaches."""
        if self.meter is None:
            return None
        return worker_tick if processes else self.meter.tick

    def close(self) -> None:
        if self.shown:
            self.bar.refresh()  # the last counts
            for task in self.tasks.values():
                self.bar.update(task, visible=False)
            self.bar.stop()
            self.shown = False

    @classmethod
    @contextmanager
    def maybe(cls, wanted: bool | None) -> Iterator[Progress | None]:
        """A display when ``wanted`` (None: when stderr is a terminal), else None."""
        on = sys.stderr.isatty() if wanted is None else wanted
        bar = cls() if on else None
        try:
            yield bar
        finally:
            if bar:
                bar.close()
