"""Stage 1, the source: turn the SOURCE arguments into the list of files a job reads.

A source is a local file, a local folder (every file below it), ``-`` (standard input) or an
``s3://bucket/key`` URL naming one object or a prefix: each read by its transport
(``validator.transport``, found by URL scheme), which lists it and opens its byte ranges.
Only files of the declared format are read; every other file is kept in the listing as
skipped, with the reason.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from validator import transport
from validator.errors import (
    EmptySource,
    OptionError,
    UsageError,
    display_path,
)
from validator.settings import AwsSettings, with_client

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
    listed_by: dict[str, tuple[Any, list[SourceFile]]] = {}  # source -> (transport, files)
    sources = list(sources)
    empty_sources: list[tuple[str, str]] = []
    if not sources:
        raise UsageError("give at least one SOURCE: a file, a folder, - or s3://bucket/prefix")
    settings = with_client(settings, s3_client)
    for source in sources:
        kind = transport.for_source(source)
        try:
            listed = kind.list_source(source, settings=settings)
        except EmptySource as exc:
            empty_sources.append((source, str(exc)))
            continue
        if not listed:
            shown = "the folder" if len(sources) == 1 else display_path(source)
            empty_sources.append((source, f"{shown} is empty"))
        listed_by[source] = (kind, listed)
        found.extend(listed)
        if listed and kind.names_one(source, listed):
            explicit.add(listed[0].display)
    found = _read_once(found)
    if declared is None:
        kinds = {f.format for f in found if f.format and f.duplicate_of is None}
        if len(found) == 1 and transport.read_once(found[0]) and found[0].format is None:
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
        if transport.read_once(f) or (f.display in explicit and f.format in (None, declared)):
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
    for source, (kind, listed) in listed_by.items():
        listing.warnings.extend(kind.warnings(source, listed))
    return listing


def _read_once(found: list[SourceFile]) -> list[SourceFile]:
    """Each file once, at its first name. A later name of the same file (same inode, same S3
    object) is kept as a skipped duplicate; the same name again only notes the first."""
    out: list[SourceFile] = []
    first: dict[tuple[Any, ...], int] = {}
    named: Counter[int] = Counter()
    for f in found:
        identity = f.identity or ((f.kind, f.bucket, f.key) if f.key is not None else None)
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
    if transport.read_once(f):  # standard input: read by the job, once
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


def open_binary(
    f: SourceFile, start: int = 0, *, settings: AwsSettings | None = None, s3_client: Any = None
) -> IO[bytes]:
    """Open a file of the job for reading bytes from ``start``, buffered, never decompressed,
    through the transport that listed it (``validator.transport``).

    A local file the system refuses is one :class:`validator.errors.LocalPathError` naming it.
    """
    return transport.for_file(f).open_range(f, start, settings=with_client(settings, s3_client))
