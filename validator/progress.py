"""A progress display on stderr for people at a terminal, drawn by rich.

For the job and for the file being read: bytes done of the total, percent, records so far,
rate and time left. rich redraws it 4 times a second in place (the elapsed time, rate and
ETA move between pieces) and lays each line out within the terminal's width, so a narrow
terminal never wraps it into stale lines. Silent when stderr is not a terminal (unless
``--progress`` asks for it) and with ``--quiet``.

The engine calls the display with each piece's result as it is folded, and ``start`` with the
listing before the first piece, when the total is known.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from validator.model import PieceResult

REFRESH_PER_SECOND = 4
WIDE = 110  # columns from which each value has a column of its own, with a bar


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


class Progress:
    """Job and per-file progress; ``update(result)`` per piece, ``close()`` at the end."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        from rich.console import Console
        from rich.progress import Progress as RichProgress

        self.stream = stream or sys.stderr
        self.console = Console(file=self.stream, force_terminal=True, highlight=False)
        self.bar = RichProgress(
            *_columns(self.console.width),
            console=self.console,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=False,
            expand=False,
        )
        self.job = self.bar.add_task("job", total=None, records="0")
        self.files: dict[str, Any] = {}
        self.sizes: dict[str, int] = {}
        self.records = 0
        self.shown = False

    def _file_task(self, display: str, size: int | None) -> Any:
        task = self.files.get(display)
        if task is None:
            name = display.rsplit("/", 1)[-1] or display
            task = self.bar.add_task(name, total=size if size and size > 0 else None, records="0")
            self.files[display] = task
        return task

    def start(self, listing: Any) -> None:
        """The totals, before the first piece: every selected file's size."""
        selected = [f for f in listing.selected if f.size and f.size > 0]
        self.sizes = {f.display: f.size for f in selected}
        total = sum(self.sizes.values())
        self.bar.update(self.job, total=total or None)
        self._show()

    def _show(self) -> None:
        if not self.shown:
            self.bar.start()
            self.shown = True

    def update(self, result: PieceResult) -> None:
        self._show()
        file = result.piece.file
        self.records += result.records
        task = self._file_task(file.display, self.sizes.get(file.display, file.size))
        done = self.bar.tasks[self._index(task)].completed + result.bytes_read
        records = int(self.bar.tasks[self._index(task)].fields["records"].replace(",", ""))
        self.bar.update(task, completed=done, records=f"{records + result.records:,}")
        self.bar.update(self.job, advance=result.bytes_read, records=f"{self.records:,}")
        total = self.sizes.get(file.display)
        if total and done >= total:  # a file done: its line goes, the job's stays
            self.bar.update(task, visible=False)

    __call__ = update

    def _index(self, task: Any) -> int:
        return next(i for i, t in enumerate(self.bar.tasks) if t.id == task)

    def close(self) -> None:
        if self.shown:
            for task in self.files.values():
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
