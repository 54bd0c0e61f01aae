"""Stage 1, the source: turn the SOURCE arguments into the list of files a job reads.

A source is a local file, a local folder (every file below it), ``-`` (standard input) or an
``s3://bucket/key`` URL naming one object or a prefix. Only files of the declared format are
read; every other file is kept in the listing as skipped, with the reason.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from validator.errors import UsageError
from validator.settings import AwsSettings

FORMATS = ("CSV", "JSON")
EXTENSIONS = {".csv": "CSV", ".json": "JSON", ".jsonl": "JSON", ".ndjson": "JSON"}


def format_of(name: str) -> str | None:
    """The format a file name declares by its extension, or None."""
    return EXTENSIONS.get(os.path.splitext(name)[1].lower())


@dataclass(frozen=True)
class SourceFile:
    """One file of the job. ``display`` is the path or URL as the user would type it."""

    display: str
    size: int
    kind: str  # "local", "s3" or "stdin"
    path: str | None = None  # local path
    bucket: str | None = None
    key: str | None = None
    format: str | None = None  # declared by the extension
    selected: bool = True
    skip_reason: str | None = None


@dataclass
class Listing:
    """What the sources hold: the files to read, in order, and those skipped."""

    files: list[SourceFile] = field(default_factory=list)
    format: str = "CSV"
    warnings: list[tuple[str, str, str]] = field(default_factory=list)  # (source, code, message)

    @property
    def selected(self) -> list[SourceFile]:
        return [f for f in self.files if f.selected]


def normalize_format(value: str | None) -> str | None:
    if value is None:
        return None
    upper = value.strip().upper()
    if upper in ("NDJSON", "JSONL"):
        upper = "JSON"
    if upper not in FORMATS:
        raise UsageError(f"--format must be CSV or JSON, not {value!r}")
    return upper


def _walk_local(root: Path) -> Iterator[Path]:
    """Every file below ``root``, in the order S3 lists the same tree (and Pinpoint reads it):
    by the UTF-8 bytes of the relative path, so ``a/x.csv`` comes before ``b.csv``."""
    found = [Path(dirpath) / name for dirpath, _, names in os.walk(root) for name in names]
    found.sort(key=lambda p: p.relative_to(root).as_posix().encode("utf-8", "surrogateescape"))
    yield from found


def _local_files(source: str) -> list[SourceFile]:
    path = Path(source)
    if not path.exists():
        raise UsageError(f"{source}: no such file or folder")
    if path.is_file():
        return [
            SourceFile(
                display=source,
                size=path.stat().st_size,
                kind="local",
                path=os.path.abspath(path),  # workers elsewhere (a cluster) open it too
                format=format_of(path.name),
            )
        ]
    if not path.is_dir():
        raise UsageError(f"{source}: not a file or folder")
    out = []
    for p in _walk_local(path):
        if not p.is_file():
            continue
        # Display paths as the user would type them: the given folder, then the relative part.
        display = os.path.join(source, os.path.relpath(p, path))
        out.append(
            SourceFile(
                display=display,
                size=p.stat().st_size,
                kind="local",
                path=os.path.abspath(p),
                format=format_of(p.name),
            )
        )
    return out


def _stdin_file() -> SourceFile:
    return SourceFile(display="-", size=-1, kind="stdin")


def list_sources(
    sources: Iterable[str],
    format: str | None = None,
    *,
    settings: AwsSettings | None = None,
    s3_client: Any = None,
) -> Listing:
    """Resolve SOURCE arguments into a Listing, choosing only files of the declared format.

    Without ``format`` the format comes from the extensions of the files found, when they
    agree; otherwise it is a usage error.
    """
    declared = normalize_format(format)
    found: list[SourceFile] = []
    explicit: set[str] = set()  # sources naming one file: read whatever their extension
    s3_listed: dict[str, list[SourceFile]] = {}  # s3:// source -> the objects it names
    sources = list(sources)
    if not sources:
        raise UsageError("give at least one SOURCE: a file, a folder, - or s3://bucket/prefix")
    for source in sources:
        if source == "-":
            found.append(_stdin_file())
            explicit.add("-")
        elif source.startswith("s3://"):
            from validator import s3

            listed = s3.list_source(source, settings=settings, client=s3_client)
            s3_listed[source] = listed
            found.extend(listed)
            if len(listed) == 1 and listed[0].key == s3.parse_url(source)[1]:
                explicit.add(listed[0].display)
        else:
            files = _local_files(source)
            found.extend(files)
            if Path(source).is_file():
                explicit.add(files[0].display)
    if declared is None:
        kinds = {f.format for f in found if f.format}
        if "-" in explicit and len(found) == 1:
            raise UsageError("reading standard input needs --format CSV or --format JSON")
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
    listing = Listing(format=declared)
    formats_seen = set()
    for f in found:
        if f.kind == "stdin" or (f.display in explicit and f.format in (None, declared)):
            listing.files.append(f)
            formats_seen.add(declared)
            continue
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
                ", ".join(sources),
                "FORMAT_MIXED",
                "the sources hold both CSV and JSON files; Pinpoint imports only "
                f"the {declared} files, and the console wants one format per path",
            )
        )
    for source, listed in s3_listed.items():
        from validator import s3

        listing.warnings.extend(s3.url_warnings(source, listed))
    return listing


def open_binary(
    f: SourceFile, start: int = 0, *, settings: AwsSettings | None = None, s3_client: Any = None
) -> IO[bytes]:
    """Open a file of the job for reading bytes from ``start``, buffered, never decompressed."""
    if f.kind == "local":
        assert f.path is not None
        fh = open(f.path, "rb", buffering=1 << 20)  # noqa: SIM115
        if start:
            fh.seek(start)
        return fh
    if f.kind == "stdin":
        return sys.stdin.buffer
    from validator import s3

    return s3.open_object(f, start, settings=settings, client=s3_client)
