"""Stage 1, the source: turn the SOURCE arguments into the list of files a job reads.

A source is a local file, a local folder (every file below it), ``-`` (standard input) or an
``s3://bucket/key`` URL naming one object or a prefix. Only files of the declared format are
read; every other file is kept in the listing as skipped, with the reason.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from validator.errors import (
    EmptySource,
    OptionError,
    UsageError,
    display_path,
    from_os_error,
)
from validator.settings import AwsSettings

FORMATS = ("CSV", "JSON")
ALIASES = {"NDJSON": "JSON", "JSONL": "JSON"}  # what people call newline-delimited JSON
EXTENSIONS = {".csv": "CSV", ".json": "JSON", ".jsonl": "JSON", ".ndjson": "JSON"}
MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"PK\x03\x04", "zip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
SNIFF_AT_MOST = 20  # skipped files whose first bytes an empty job looks at


def format_of(name: str) -> str | None:
    """The format a file name declares by its extension, or None."""
    return EXTENSIONS.get(os.path.splitext(name)[1].lower())


def compression_of(head: bytes) -> str | None:
    """The compression whose magic bytes ``head`` starts with (gzip, zip, ...), or None."""
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    return None


@dataclass(frozen=True)
class SourceFile:
    """One file of the job. ``display`` is the path or URL as the user would type it (a
    local name that is not UTF-8 shows its bytes as ``\\xff``; ``path`` is the real one)."""

    display: str
    size: int
    kind: str  # "local", "s3" or "stdin" (a stream read once: standard input, or a pipe at path)
    path: str | None = None  # local path
    bucket: str | None = None
    key: str | None = None
    format: str | None = None  # declared by the extension
    selected: bool = True
    skip_reason: str | None = None
    note: str | None = None  # e.g. "named 2 times: read once"
    duplicate_of: str | None = None  # the display of the same file, read under that name
    identity: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)

    def row(self) -> dict[str, Any]:
        """This file's entry in the report's ``Files``, before it is read."""
        row: dict[str, Any] = {
            "Source": self.display,
            "Size": self.size if self.size >= 0 else None,
            "Format": self.format,
            "Status": "READ" if self.selected else "SKIPPED",
        }
        if not self.selected:
            row["Reason"] = self.skip_reason
        if self.duplicate_of is not None:
            row["DuplicateOf"] = self.duplicate_of
        if self.note:
            row["Note"] = self.note
        return row


@dataclass
class Listing:
    """What the sources hold: the files to read, in order, and those skipped."""

    files: list[SourceFile] = field(default_factory=list)
    format: str = "CSV"
    warnings: list[tuple[str, str, str]] = field(default_factory=list)  # (source, code, message)
    sources: list[str] = field(default_factory=list)  # as given, printable (see display_path)
    # Sources that held nothing at all, with what was seen (an S3 prefix's folder markers).
    empty_sources: list[tuple[str, str]] = field(default_factory=list)

    @property
    def selected(self) -> list[SourceFile]:
        return [f for f in self.files if f.selected]


def normalize_format(value: str | None) -> str | None:
    """``CSV`` or ``JSON`` from any case; ``NDJSON`` and ``JSONL`` are JSON (see
    :func:`format_note`). Anything else is an :class:`OptionError` naming ``format``."""
    if value is None:
        return None
    upper = value.strip().upper()
    upper = ALIASES.get(upper, upper)
    if upper not in FORMATS:
        raise OptionError(
            "format", f"{value!r} is not a format: CSV or JSON (newline-delimited JSON)"
        )
    return upper


def format_note(value: str | None) -> str | None:
    """What to tell the user when ``value`` is an alias (``ndjson`` is read as ``JSON``)."""
    if value is None or value.strip().upper() not in ALIASES:
        return None
    return (
        f"--format {value} is read as JSON: Pinpoint's JSON format is newline-delimited JSON, "
        "one endpoint per line"
    )


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


def _local_files(source: str) -> list[SourceFile]:
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
                kind="local",
                path=os.path.abspath(source),  # workers elsewhere (a cluster) open it too
                format=format_of(shown),
                identity=(st.st_dev, st.st_ino),
            )
        ]
    if stat.S_ISFIFO(st.st_mode):  # a named pipe, or bash's <(cmd) (/dev/fd/N): as stdin
        return [
            SourceFile(
                display=shown,
                size=-1,
                kind="stdin",
                path=os.path.abspath(source),
                format=format_of(shown),
                identity=("pipe", st.st_dev, st.st_ino),
            )
        ]
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
                kind="local",
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


def _stdin_file() -> SourceFile:
    return SourceFile(display="-", size=-1, kind="stdin", identity=("stdin",))


def list_sources(
    sources: Iterable[str],
    format: str | None = None,
    *,
    settings: AwsSettings | None = None,
    s3_client: Any = None,
) -> Listing:
    """Resolve SOURCE arguments into a Listing, choosing only files of the declared format.

    Without ``format`` the format comes from the extensions of the files found, when they
    agree; otherwise it is a usage error. A file named explicitly whose extension is the other
    format's is a usage error too. A file reached twice (named twice, or named and inside a
    named folder or prefix) is read once: the later name is listed as its duplicate.
    """
    declared = normalize_format(format)
    found: list[SourceFile] = []
    explicit: set[str] = set()  # sources naming one file: read whatever their extension
    s3_listed: dict[str, list[SourceFile]] = {}  # s3:// source -> the objects it names
    sources = list(sources)
    empty_sources: list[tuple[str, str]] = []
    if not sources:
        raise UsageError("give at least one SOURCE: a file, a folder, - or s3://bucket/prefix")
    for source in sources:
        if source == "-":
            found.append(_stdin_file())
            explicit.add("-")
        elif source.startswith("s3://"):
            from validator import s3

            try:
                listed = s3.list_source(source, settings=settings, client=s3_client)
            except EmptySource as exc:
                empty_sources.append((source, str(exc)))
                continue
            s3_listed[source] = listed
            found.extend(listed)
            if len(listed) == 1 and listed[0].key == s3.parse_url(source)[1]:
                explicit.add(listed[0].display)
        else:
            files = _local_files(source)
            if not files:
                shown = "the folder" if len(sources) == 1 else display_path(source)
                empty_sources.append((source, f"{shown} is empty"))
            found.extend(files)
            if len(files) == 1 and files[0].path == os.path.abspath(source):
                explicit.add(files[0].display)
    found = _read_once(found)
    if declared is None:
        kinds = {f.format for f in found if f.format and f.duplicate_of is None}
        if len(found) == 1 and found[0].kind == "stdin" and found[0].format is None:
            what = "standard input" if found[0].path is None else f"the pipe {found[0].display}"
            raise UsageError(f"reading {what} needs --format CSV or --format JSON")
        if len(kinds) != 1:
            what = (
                "files of both formats"
                if len(kinds) > 1
                else "no .csv, .json, .jsonl or .ndjson file"
            )
            raise UsageError(
                f"the sources hold {what}: say which to read with --format CSV or --format JSON"
            )
        declared = kinds.pop()
    listing = Listing(
        format=declared, sources=[display_path(s) for s in sources], empty_sources=empty_sources
    )
    formats_seen = set()
    for f in found:
        if not f.selected:  # a duplicate, or no regular file
            listing.files.append(f)
            continue
        if f.kind == "stdin" or (f.display in explicit and f.format in (None, declared)):
            listing.files.append(f)
            formats_seen.add(declared)
            continue
        if f.display in explicit:
            raise OptionError(
                "format",
                f"{f.display} is a {f.format} file by its extension, not {declared}: give "
                f"--format {f.format}, or rename it",
            )
        if f.format:
            formats_seen.add(f.format)
        if f.format == declared:
            listing.files.append(f)
        else:
            reason = (
                f"not {declared}: a {f.format} file"
                if f.format
                else f"not {declared}: the extension is not one of "
                + ", ".join(e for e, k in EXTENSIONS.items() if k == declared)
            )
            listing.files.append(
                SourceFile(**{**f.__dict__, "selected": False, "skip_reason": reason})
            )
    if len(formats_seen) > 1:
        listing.warnings.append(
            (
                ", ".join(listing.sources),
                "FORMAT_MIXED",
                "the sources hold both CSV and JSON files; Pinpoint imports only "
                f"the {declared} files, and the console wants one format per path",
            )
        )
    for source, listed in s3_listed.items():
        from validator import s3

        listing.warnings.extend(s3.url_warnings(source, listed))
    return listing


def _read_once(found: list[SourceFile]) -> list[SourceFile]:
    """Each file once, at its first name. A later name of the same file (same inode, same S3
    object) is kept as a skipped duplicate; the same name again only notes the first."""
    out: list[SourceFile] = []
    first: dict[tuple[Any, ...], int] = {}
    named: Counter[int] = Counter()
    for f in found:
        identity = f.identity or (("s3", f.bucket, f.key) if f.kind == "s3" else None)
        if identity is None or not f.selected:
            out.append(f)
            continue
        i = first.get(identity)
        if i is None:
            first[identity] = len(out)
            out.append(f)
        elif out[i].display == f.display:
            named[i] += 1
        else:
            out.append(
                SourceFile(
                    **{
                        **f.__dict__,
                        "selected": False,
                        "skip_reason": f"duplicate of {out[i].display} (the same file): read once",
                        "duplicate_of": out[i].display,
                    }
                )
            )
    for i, n in named.items():
        out[i] = SourceFile(**{**out[i].__dict__, "note": f"named {n + 1} times: read once"})
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def sniff_compression(
    f: SourceFile, *, settings: AwsSettings | None = None, s3_client: Any = None
) -> str | None:
    """The compression of a file by its first bytes, or None (also when it can't be read)."""
    if f.kind == "stdin":
        return None
    try:
        with open_binary(f, 0, settings=settings, s3_client=s3_client) as fh:
            return compression_of(fh.read(8))
    except Exception:
        return None


def job_empty_message(
    listing: Listing,
    rows: list[dict[str, Any]],
    *,
    settings: AwsSettings | None = None,
    s3_client: Any = None,
) -> str:
    """What an empty job saw instead of records, for ``JOB_EMPTY``: "no CSV file to read (3
    JSON files skipped): is --format right?". The first skipped files are sniffed for
    compression; their ``Files`` rows (``rows``) say so too."""
    fmt = listing.format
    by_display = {r["Source"]: r for r in rows}
    skipped = [f for f in listing.files if not f.selected]
    kinds: Counter[str] = Counter()
    compressed: Counter[str] = Counter()
    for n, f in enumerate(skipped):
        if f.duplicate_of is not None:
            kinds["duplicate"] += 1
            continue
        how = None
        if n < SNIFF_AT_MOST and f.size > 0:
            how = sniff_compression(f, settings=settings, s3_client=s3_client)
        if how:
            compressed[how] += 1
            row = by_display.get(f.display)
            if row is not None and row.get("Reason"):
                row["Reason"] += f"; {how}-compressed content"
        elif f.format:
            kinds[f"{f.format} file"] += 1
        elif f.size < 0:
            kinds["entry that is no regular file"] += 1
        else:
            kinds["file of another extension"] += 1
    parts = [_plural(n, f"{how}-compressed file") for how, n in compressed.items()]
    parts += [_plural(n, kind) for kind, n in kinds.items()]
    seen = f" ({', '.join(parts)} skipped)" if parts else ""
    empties = "; ".join(what for _, what in listing.empty_sources)
    if listing.selected:
        n = len(listing.selected)
        names = f"the {fmt} file" if n == 1 else f"the {n} {fmt} files"
        return f"no record in {names} read{seen}: see Files and Failures for why"
    if compressed:
        hint = "Pinpoint can't import compressed files: decompress them"
    elif any(f.format and f.format != fmt for f in skipped):
        hint = "is --format right?"
    elif empties and not skipped:
        return f"no {fmt} file to read: {empties}"
    else:
        hint = f"a {fmt} file's name ends in " + " or ".join(
            e for e, k in EXTENSIONS.items() if k == fmt
        )
    return f"no {fmt} file to read{seen}: {hint}" + (f" ({empties})" if empties else "")


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


def stdin_head(n: int, f: SourceFile | None = None) -> bytes:
    """The first ``n`` bytes of standard input (or of the pipe ``f``), kept for the reader
    that comes next."""
    return _stream_of(f).read_head(n)


def open_binary(
    f: SourceFile, start: int = 0, *, settings: AwsSettings | None = None, s3_client: Any = None
) -> IO[bytes]:
    """Open a file of the job for reading bytes from ``start``, buffered, never decompressed.

    A local file the system refuses is one :class:`validator.errors.LocalPathError` naming it.
    """
    if f.kind == "local":
        assert f.path is not None
        try:
            fh = io.BufferedReader(_ReadRaw(f.path, f.display), 1 << 20)
            if start:
                fh.seek(start)
        except OSError as exc:
            raise from_os_error(exc, f.display, action="cannot read") from exc
        return fh
    if f.kind == "stdin":
        return _stream_of(f).open(start)
    from validator import s3

    return s3.open_object(f, start, settings=settings, client=s3_client)
