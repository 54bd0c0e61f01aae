"""The job's parameters, checked before any work is done (no file listed, no byte read).

Each bad value is one :class:`validator.errors.OptionError` naming its parameter as the
library spells it (``piece_size``); the command line prints the option (``--piece-size``).
"""

from __future__ import annotations

import operator
import os
import stat
from dataclasses import dataclass
from typing import Any

from validator.errors import OptionError, display_path, from_os_error
from validator.pieces import parse_size

MAX_PIECES = 100_000  # more is pieces of a few bytes each: --piece-size says that better
MAX_WORKERS = 1024  # processes; more than any machine has cores


@dataclass(frozen=True)
class JobOptions:
    """The checked values: sizes in bytes."""

    pieces: int | None
    piece_size: int | None
    workers: int | None
    max_job_size: int | None


def _count(name: str, value: Any, most: int) -> int | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)  # int, numpy integers; not 2.0, not "2"
    except TypeError:
        raise OptionError(name, f"{value!r} is not a whole number") from None
    if value < 1:
        raise OptionError(name, f"must be at least 1, not {value}")
    if value > most:
        raise OptionError(name, f"must be at most {most:,}, not {value:,}")
    return value


def check_output_path(path: str | os.PathLike[str] | None, name: str) -> None:
    """A file to write: not a folder, in a folder that exists. Special files (``-``, FIFOs,
    devices) are the writer's to judge; a path the system refuses is a LocalPathError."""
    if path is None:
        return
    path = os.fspath(path)
    if path == "-":
        return
    shown = display_path(path)
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # the parent says which
        st = None
    except OSError as exc:
        raise from_os_error(exc, shown, action="cannot write", option=name) from exc
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OptionError(name, f"{shown} is a folder: give a file name")
        return
    parent = os.path.dirname(path) or "."
    try:
        pst = os.stat(parent)
    except FileNotFoundError as exc:
        raise OptionError(name, f"no such folder {display_path(parent)}") from exc
    except NotADirectoryError as exc:
        raise OptionError(name, f"{display_path(parent)} is not a folder") from exc
    except OSError as exc:
        raise from_os_error(exc, shown, action="cannot write", option=name) from exc
    if not stat.S_ISDIR(pst.st_mode):
        raise OptionError(name, f"{display_path(parent)} is not a folder")


def check(
    *,
    pieces: Any = None,
    piece_size: Any = None,
    workers: Any = None,
    max_job_size: Any = None,
    failures_out: str | os.PathLike[str] | None = None,
) -> JobOptions:
    """Check every parameter of a job at once, before it starts."""
    if pieces is not None and piece_size is not None:
        raise OptionError("pieces", "give pieces or piece_size, not both")
    checked = JobOptions(
        pieces=_count("pieces", pieces, MAX_PIECES),
        piece_size=None if piece_size is None else parse_size(piece_size, "piece_size"),
        workers=_count("workers", workers, MAX_WORKERS),
        max_job_size=None if max_job_size is None else parse_size(max_job_size, "max_job_size"),
    )
    check_output_path(failures_out, "failures_out")
    return checked


def check_not_a_source(path: str | os.PathLike[str] | None, name: str, files: Any) -> None:
    """An output must not be one of the job's own files (it would be replaced by the report
    of reading itself). ``files`` are the listing's SourceFiles."""
    if path is None or os.fspath(path) == "-":
        return
    try:
        st = os.stat(path)
    except OSError:
        return  # not there yet: no source
    for f in files:
        if f.identity == (st.st_dev, st.st_ino):
            raise OptionError(name, f"{display_path(path)} is one of the sources ({f.display})")
