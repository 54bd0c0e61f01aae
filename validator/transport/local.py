"""The local file system: files and folders by path (a folder is every file below it).

Outputs are written through :mod:`validator.atomic`: a regular file under a temporary name
given its own at the end, a stream (``-``, ``/dev/stdout``, a FIFO) as it is.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
from collections.abc import Iterable
from typing import IO, Any

from validator import atomic, signals
from validator.errors import UsageError, display_path, from_os_error
from validator.settings import AwsSettings
from validator.source import SourceFile, format_of

NAME = "local"
SCHEMES: tuple[str, ...] = ()  # the default: whatever has no scheme
REMOTE = False
READ_ONCE = False
ANYWHERE = False  # a path names a file on this machine: a cluster's workers may not have it
FETCH_SMALL_WHOLE = False

# --- reading ---------------------------------------------------------------------------------


def _kind_of(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _walk_error(exc: OSError) -> None:
    raise from_os_error(exc, exc.filename, action="cannot list") from exc


def list_source(source: str, *, settings: AwsSettings | None = None) -> list[SourceFile]:
    """The files a local SOURCE names: itself, or every file below a folder (in the order S3
    lists the same tree, and Pinpoint reads it: by the bytes of the relative path, so
    ``a/x.csv`` comes before ``b.csv``). What is below a folder and is no regular file (a link
    to a folder, a broken link, a FIFO) is listed as skipped, never dropped in silence."""
    shown = display_path(source)
    try:
        st = os.stat(source)
    except FileNotFoundError as exc:
        raise UsageError(f"{shown}: no such file or folder") from exc
    except NotADirectoryError as exc:
        raise UsageError(f"{shown}: a part of the path is not a folder") from exc
    except OSError as exc:
        raise from_os_error(exc, shown, action="cannot read") from exc
    if stat.S_ISREG(st.st_mode):
        return [
            SourceFile(
                display=shown,
                size=st.st_size,
                kind=NAME,
                path=os.path.abspath(source),  # workers elsewhere (a cluster) open it too
                format=format_of(shown),
                identity=(st.st_dev, st.st_ino),
            )
        ]
    if stat.S_ISFIFO(st.st_mode):  # a named pipe, or bash's <(cmd) (/dev/fd/N): as stdin
        from validator.transport import stdin

        return [stdin.pipe_file(shown, os.path.abspath(source), st.st_dev, st.st_ino)]
    if not stat.S_ISDIR(st.st_mode):
        raise UsageError(
            f"{shown}: {_kind_of(st.st_mode)}, not a file or folder (for a pipe, use - and "
            "standard input)"
        )
    found: list[tuple[bytes, str, str | None]] = []  # (sort key, path, why skipped)
    for dirpath, dirnames, names in os.walk(source, onerror=_walk_error):
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                found.append((_rel(p, source), p, "a link to a folder: not followed"))
        for name in names:
            p = os.path.join(dirpath, name)
            found.append((_rel(p, source), p, None))
    found.sort(key=lambda t: t[0])
    out = []
    for _, p, why in found:
        # Display paths as the user would type them: the given folder, then the relative part.
        display = display_path(p)
        size = -1
        identity = None
        if why is None:
            try:
                pst = os.stat(p)
            except FileNotFoundError:
                pst = None
                why = "a broken symbolic link" if os.path.islink(p) else "gone while listed"
            except OSError as exc:
                raise from_os_error(exc, display, action="cannot read") from exc
            if pst is not None:
                if stat.S_ISREG(pst.st_mode):
                    size, identity = pst.st_size, (pst.st_dev, pst.st_ino)
                else:
                    why = f"{_kind_of(pst.st_mode)}, not a file"
        out.append(
            SourceFile(
                display=display,
                size=size,
                kind=NAME,
                path=os.path.abspath(p),
                format=format_of(display) if why is None else None,
                selected=why is None,
                skip_reason=why,
                identity=identity,
            )
        )
    return out


def _rel(path: str, root: str) -> bytes:
    return os.fsencode(os.path.relpath(path, root)).replace(os.sep.encode(), b"/")


def names_one(source: str, listed: list[SourceFile]) -> bool:
    """Whether ``source`` named one file (not a folder holding one)."""
    return len(listed) == 1 and listed[0].path == os.path.abspath(source)


def warnings(source: str, listed: list[SourceFile]) -> list[tuple[str, str, str]]:
    return []


def display(location: str) -> str:
    return display_path(location)


class _ReadRaw(io.FileIO):
    """A local file under its buffer: a read the system refuses (an I/O error) names the
    file, as an open that fails does."""

    def __init__(self, path: str, display: str) -> None:
        super().__init__(path, "rb")
        self._display = display

    def readinto(self, buffer: Any) -> int:
        try:
            return super().readinto(buffer) or 0
        except OSError as exc:
            raise from_os_error(exc, self._display, action="cannot read") from exc


def open_range(f: SourceFile, start: int = 0, *, settings: AwsSettings | None = None) -> IO[bytes]:
    """The file from ``start``, buffered. A file the system refuses is one
    :class:`validator.errors.LocalPathError` naming it."""
    assert f.path is not None
    try:
        fh = io.BufferedReader(_ReadRaw(f.path, f.display), 1 << 20)
        if start:
            fh.seek(start)
    except OSError as exc:
        raise from_os_error(exc, f.display, action="cannot read") from exc
    return fh


# --- writing ---------------------------------------------------------------------------------


def prepare(url: str, *, settings: AwsSettings | None = None) -> None:
    """Nothing to check before the work: the folder is made (or refused) when claimed."""


def join(root: str, name: str) -> str:
    return os.path.join(root, name)


def exists(url: str, *, settings: AwsSettings | None = None) -> bool:
    return os.path.exists(url)  # a link is followed: its file is what counts


def is_folder(url: str) -> bool:
    return os.path.isdir(url)


def is_stream(url: str) -> bool:
    return atomic.is_stream(url)


def split_name(url: str) -> tuple[str, str]:
    """(the folder, the name) an output file is written as; a stream is its own name."""
    if atomic.is_stream(url):
        return "", url
    return os.path.dirname(os.path.abspath(url)), os.path.basename(url)


def make_folder(url: str, *, settings: AwsSettings | None = None, label: str = "") -> list[str]:
    """Make the folder ``url`` and its missing parents; the folders made, outermost first."""
    if label and os.path.exists(url) and not os.path.isdir(url):
        raise UsageError(f"{label}: exists and is not a folder")
    missing = []
    here = os.path.abspath(url)
    while not os.path.isdir(here):
        missing.append(here)
        parent = os.path.dirname(here)
        if parent == here:
            break
        here = parent
    made: list[str] = []
    for d in reversed(missing):
        with signals.critical():
            try:
                os.mkdir(d)
            except FileExistsError:
                if not os.path.isdir(d):
                    raise UsageError(f"{d}: exists and is not a folder") from None
                continue
            except OSError as exc:
                raise atomic.fs_error(exc, d) from exc
            made.append(d)
    return made


def remove_folder(url: str, *, settings: AwsSettings | None = None, tree: bool = False) -> None:
    """Remove the folder ``url`` if empty (``tree``: with what is below it); never raises."""
    if tree:
        shutil.rmtree(url, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.rmdir(url)


def holds_other_files(root: str, ignore: Iterable[str], *, settings: Any = None) -> bool:
    return bool(set(os.listdir(root)) - set(ignore))


def read_bytes(url: str, *, settings: AwsSettings | None = None) -> bytes:
    with open(url, "rb") as fh:
        return fh.read()


def claim(url: str, body: bytes, *, settings: AwsSettings | None = None) -> bool:
    """Create ``url`` holding ``body`` only if it does not exist (False if it does)."""
    with signals.critical():
        try:
            fd = os.open(url, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise atomic.fs_error(exc, url, "--to") from exc
    try:
        os.write(fd, body)
    except BaseException as exc:  # not claimed after all: the file goes
        with contextlib.suppress(OSError):
            os.unlink(url)
        if isinstance(exc, OSError):
            raise atomic.fs_error(exc, url, "--to") from exc
        raise
    finally:
        os.close(fd)
    return True


def clear_partial(
    root: str, urls: Iterable[str], *, settings: AwsSettings | None = None
) -> list[str]:
    """Remove the temporary files (``validator.atomic``) a writer of these outputs left when
    its process died; the ones that could not be removed."""
    left = []
    by_folder: dict[str, list[str]] = {}
    for url in urls:
        real = os.path.realpath(url)
        by_folder.setdefault(os.path.dirname(real), []).append(
            f".{os.path.basename(real)}.partial-"
        )
    for folder, stems in by_folder.items():
        try:
            names = os.listdir(folder)
        except OSError:
            continue  # no folder: nothing was written in it
        for name in names:
            if name.startswith(tuple(stems)):
                try:
                    os.unlink(os.path.join(folder, name))
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(os.path.join(folder, name))
    return left


def remove(url: str, *, settings: AwsSettings | None = None) -> None:
    with signals.critical(), contextlib.suppress(FileNotFoundError):
        os.unlink(url)


class _FileWriter:
    """An :class:`validator.atomic.Output` as a transport writer."""

    def __init__(self, url: str, what: str) -> None:
        self.made = make_folder(os.path.dirname(url) or ".")
        try:
            self._out = atomic.Output(url, what)
        except BaseException:
            for d in reversed(self.made):
                remove_folder(d)
            raise

    @property
    def streamed(self) -> bool:
        return self._out.streamed

    def write(self, data: bytes | memoryview) -> object:
        return self._out.write(data)

    def commit(self) -> None:
        self._out.commit()

    def discard(self) -> str | None:
        self._out.discard()
        return None

    def remove(self) -> None:
        with signals.critical():
            self._out.remove()


def open_writer(url: str, what: str = "", *, settings: AwsSettings | None = None) -> _FileWriter:
    return _FileWriter(url, what)
