"""Local output files (``--failures-out``, ``--rejects`` and its reasons, split pieces): whole or
not at all, and never anyone else's file replaced.

What a path names decides how it is written:

- a regular file, or nothing yet: written under a temporary name in the same folder, then given
  its name when the run ends well (``os.replace``), removed if not;
- a symbolic link: followed; the file it points to is the one written (the link stays a link);
- ``-``, ``/dev/stdout``, ``/dev/stderr``, ``/dev/fd/N`` and ``/proc/self/fd/N`` (process
  substitution): the open descriptor is written to, never reopened or truncated;
- a FIFO, a character or block device, a socket: streamed to as it is (a device stays a device);
- a folder, or a path whose folder does not exist: a usage error (252) before any work.

A write that fails (disk full, I/O error, read-only) is a ``LocalPathError`` (253) naming the
path and the reason; the partial file is removed. Streams cannot be taken back: what reached
them stays there.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import uuid
from typing import IO, Any

from validator import options, signals
from validator.errors import PreflightError, UsageError, from_os_error

__all__ = ["Output", "atomic_output", "fs_error", "is_stream"]

_FD_PATH = re.compile(r"^/(?:dev/fd|proc/self/fd|proc/thread-self/fd)/(\d+)$")
_STD = {"/dev/stdout": 1, "/dev/stderr": 2, "-": 1}


def fs_error(exc: OSError, path: str, what: str = "") -> PreflightError:
    """The one-line error for a local file-system refusal while writing ``path``: the tool's
    one mapping (:func:`validator.errors.from_os_error`), ``cannot write <path>: <reason>``
    (253; 252 for a path of the wrong kind)."""
    return from_os_error(exc, path, action="cannot write")


def _fd_of(path: str) -> int | None:
    if path in _STD:
        return _STD[path]
    m = _FD_PATH.match(path)
    return int(m.group(1)) if m else None


def is_stream(path: str) -> bool:
    """True when ``path`` is written as a stream (not atomically): std streams, fds, FIFOs,
    devices, sockets."""
    if _fd_of(path) is not None:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


class Output:
    """One output file; use as a context manager, or call :meth:`commit` / :meth:`discard`."""

    def __init__(self, path: str | os.PathLike[str], what: str = "") -> None:
        self.path = os.fspath(path)
        self.what = what
        self.tmp: str | None = None
        self.final: str | None = None  # the regular file given its name on commit
        self.fh: IO[bytes] | None = None
        self.committed = False
        self._close_fh = True
        self._open()

    def _open(self) -> None:
        fd = _fd_of(self.path)
        label = f"{self.what} {self.path}" if self.what else self.path
        if fd is not None:
            if fd in (1, 2):
                std = sys.stdout if fd == 1 else sys.stderr
                with contextlib.suppress(Exception):
                    std.flush()
            try:
                self.fh = os.fdopen(os.dup(fd), "wb", buffering=1 << 16)
            except OSError as exc:
                raise UsageError(f"{label}: descriptor {fd} is not open for writing") from exc
            return
        real = os.path.realpath(self.path)  # a symbolic link is followed, never replaced
        try:
            mode: int | None = os.stat(real).st_mode
        except FileNotFoundError:
            mode = None
        except OSError as exc:
            raise fs_error(exc, self.path, self.what) from exc
        if mode is not None and stat.S_ISDIR(mode):
            raise UsageError(f"{label}: is a folder; give a file name")
        if mode is not None and not stat.S_ISREG(mode):
            try:  # FIFO, device, socket: written as it is
                self.fh = open(real, "ab" if stat.S_ISFIFO(mode) else "wb", buffering=1 << 16)  # noqa: SIM115
            except OSError as exc:
                raise fs_error(exc, self.path, self.what) from exc
            return
        folder = os.path.dirname(real)
        if not os.path.isdir(folder):
            raise UsageError(f"{label}: no such folder {os.path.dirname(self.path) or '.'}")
        tmp = os.path.join(folder, f".{os.path.basename(real)}.partial-{uuid.uuid4().hex[:12]}")
        with signals.critical():
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            except OSError as exc:
                raise fs_error(exc, self.path, self.what) from exc
            self.tmp = tmp
        self.final = real
        if mode is not None:  # replacing a file: keep its permissions
            with contextlib.suppress(OSError):
                os.chmod(tmp, stat.S_IMODE(mode))
        self.fh = os.fdopen(fd, "wb", buffering=1 << 16)

    @property
    def streamed(self) -> bool:
        return self.final is None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        assert self.fh is not None
        try:
            return self.fh.write(data)
        except OSError as exc:
            raise fs_error(exc, self.path, self.what) from exc

    def flush(self) -> None:
        assert self.fh is not None
        try:
            self.fh.flush()
        except OSError as exc:
            raise fs_error(exc, self.path, self.what) from exc

    def commit(self) -> None:
        """Close the file and give it its name (a stream is flushed and closed)."""
        if self.committed:
            return
        fh, self.fh = self.fh, None
        try:
            if fh is not None:
                fh.close()  # flushes: a full disk says so here, before the file has its name
            with signals.critical():
                if self.tmp is not None and self.final is not None:
                    os.replace(self.tmp, self.final)
                    self.tmp = None
                self.committed = True
        except OSError as exc:
            with contextlib.suppress(OSError):
                if fh is not None:
                    fh.close()
            self.discard()
            raise fs_error(exc, self.path, self.what) from exc

    def discard(self) -> None:
        """Close and remove the temporary file (nothing to take back from a stream)."""
        with signals.critical():
            fh, self.fh = self.fh, None
            if fh is not None:
                with contextlib.suppress(OSError):
                    fh.close()
            if self.tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.tmp)
                self.tmp = None

    def remove(self) -> None:
        """Take back a committed file (a later output of the same run failed)."""
        self.discard()
        if self.committed and self.final is not None:
            with signals.critical(), contextlib.suppress(FileNotFoundError):
                os.unlink(self.final)
            self.committed = False

    def __enter__(self) -> Output:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


class atomic_output:  # a context manager used like open()
    """``with atomic_output(path) as out:`` a writer (or None when ``path`` is None) that appears
    whole at ``path`` when the block ends well, and not at all if not. Written text is masked
    (:mod:`validator.redact`)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        what: str = "--failures-out",
        option: str = "failures_out",
    ) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.what = what
        self.option = option
        self.out: Output | None = None

    def __enter__(self) -> Any:
        if self.path is None:
            return None
        from validator.redact import Writer

        options.check_output_path(self.path, self.option)  # a folder, no such folder: 252

        # No signal between the temporary file's creation and its owner knowing of it (a FIFO
        # may wait for a reader: Ctrl-C must still work there).
        with contextlib.nullcontext() if is_stream(self.path) else signals.critical():
            self.out = Output(self.path, self.what)
        return Writer(self.out)  # type: ignore[arg-type]

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self.out is None:
            return
        if kind is None:
            self.out.commit()
        else:
            self.out.discard()
            if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
                raise fs_error(exc, self.path or "", self.what) from exc
