"""Transports: one module per kind of source and destination, found by URL scheme.

In the manner of smart_open's ``transport.py``: every module here exposes the same few
functions, and nothing outside this package asks which kind a file is. A module has

- ``NAME`` (the ``SourceFile.kind`` of its files) and ``SCHEMES`` (the URL schemes it serves);
- what it can do, as data that the stages ask through the functions below, never by name:
  ``REMOTE`` (reads wait on a network: small files are still worth reading side by side),
  ``READ_ONCE`` (a stream: the job reads it once, never twice nor in parallel; its head is kept
  for the reader that follows, ``read_head``), ``ANYWHERE`` (a location names the same data on
  every machine: a cluster's workers read and write it as this process does; a local path they
  may not) and ``FETCH_SMALL_WHOLE`` (a small file is best fetched whole, in one request, and
  its head read from those bytes);
- reading: ``list_source(source, *, settings)`` -> ``SourceFile``s (``[]`` or ``EmptySource``
  when nothing is there), ``names_one(source, listed)`` (the source named one file, read
  whatever its extension), ``warnings(source, listed)``, ``open_range(f, start, *, settings)``
  (buffered bytes from ``start``, never decompressed; a stream that fetches ahead may have
  ``watch(arrived)``, calling ``arrived(n)`` as its bytes come in, ``n`` counted from ``start``:
  the progress display's), ``display(location)``;
- writing, whole or not at all: ``prepare(url, *, settings)`` (before any work: a location
  that cannot be reached as configured fails here), ``join(root, name)``,
  ``exists(url, *, settings)``, ``remove(url, *, settings)``,
  ``open_writer(url, what, *, settings)`` -> a :class:`Writer`,
  ``claim(url, body, *, settings)`` (create only if absent), ``make_folder(url, *, settings,
  label)``, ``remove_folder(url, *, settings, tree)``, ``read_bytes(url, *, settings)``,
  ``holds_other_files(root, ignore, *, settings)``, ``is_folder(url)``, ``is_stream(url)``,
  ``split_name(url)``, ``clear_partial(root, urls, *, settings)`` (take back writes to these
  outputs that were cut short where no writer could discard them, a worker that died: a pending
  multipart upload, a temporary file; what could not be, described).
- optionally ``read_head(f, n, *, settings)`` (default: the first ``n`` bytes of ``open_range``)
  and ``describe(f)`` (the file in words, for messages; default: its display name).

Errors come out as the tool's own (``validator.errors``), translated in the module.

A new kind (``gs://``) is one module with these functions plus one line in ``_BUILTIN`` (or
``register(module)`` from outside the package, as ``tests/folder_transport.py`` is).
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from validator.settings import AwsSettings
    from validator.source import SourceFile

__all__ = [
    "Writer",
    "anywhere",
    "describe",
    "fetch_small_whole",
    "for_file",
    "for_output",
    "for_source",
    "is_remote",
    "read_head",
    "read_once",
    "register",
    "scheme_of",
]

# name -> (module, the URL schemes it serves): imported when first needed (a local run never
# imports boto3). A new built-in transport is one line here.
_BUILTIN: dict[str, tuple[str, tuple[str, ...]]] = {
    "local": ("validator.transport.local", ()),  # whatever has no scheme
    "stdin": ("validator.transport.stdin", ()),  # "-"
    "s3": ("validator.transport.s3", ("s3",)),
}
_SCHEMES = {scheme: name for name, (_, schemes) in _BUILTIN.items() for scheme in schemes}
_loaded: dict[str, ModuleType] = {}
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


class Writer(Protocol):
    """One output being written: it exists under its name only once :meth:`commit` returns."""

    made: list[str]  # folders made for it (removed on a rollback, if empty)

    @property
    def streamed(self) -> bool:
        """Written as a stream (standard output, a FIFO): what reached it cannot be taken back."""
        ...

    def write(self, data: bytes | memoryview) -> object: ...

    def commit(self) -> None: ...

    def discard(self) -> str | None:
        """Take back what was written; what is left behind (described) when that fails too."""
        ...

    def remove(self) -> None:
        """Remove the committed output."""
        ...


def register(module: ModuleType) -> None:
    """Add a transport module (its ``NAME`` and ``SCHEMES``), or replace one of that name."""
    _loaded[module.NAME] = module
    for scheme in module.SCHEMES:
        _SCHEMES[scheme] = module.NAME


def _named(name: str) -> ModuleType:
    module = _loaded.get(name)
    if module is None:
        module = _loaded[name] = importlib.import_module(_BUILTIN[name][0])
    return module


def scheme_of(location: str) -> str | None:
    """The URL scheme of ``location`` when a transport serves it (``s3``), else None."""
    m = _URL.match(location)
    return m.group(1).lower() if m and m.group(1).lower() in _SCHEMES else None


def for_source(location: str) -> ModuleType:
    """The transport for a SOURCE argument or an output location: by URL scheme, ``-`` for
    standard input, else the local file system."""
    if location == "-":
        return _named("stdin")
    scheme = scheme_of(location)
    return _named(_SCHEMES[scheme] if scheme else "local")


def for_output(location: str) -> ModuleType:
    """The transport that writes ``location`` (``-`` is standard output: a local stream)."""
    scheme = scheme_of(location)
    return _named(_SCHEMES[scheme] if scheme else "local")


def for_file(f: SourceFile) -> ModuleType:
    """The transport that listed ``f`` (by its ``kind``)."""
    return _named(f.kind)


def is_remote(f: SourceFile) -> bool:
    """Whether reading ``f`` waits on a network (its transport's ``REMOTE``)."""
    return bool(getattr(for_file(f), "REMOTE", False))


def read_once(f: SourceFile) -> bool:
    """Whether ``f`` is a stream the job reads once (its transport's ``READ_ONCE``)."""
    return bool(getattr(for_file(f), "READ_ONCE", False))


def anywhere(where: SourceFile | str) -> bool:
    """Whether a file (or an output location) is the same on every machine: a cluster's
    workers reach it as this process does (its transport's ``ANYWHERE``)."""
    module = for_output(where) if isinstance(where, str) else for_file(where)
    return bool(getattr(module, "ANYWHERE", False))


def fetch_small_whole(f: SourceFile) -> bool:
    """Whether a small ``f`` is best fetched whole in one request (``FETCH_SMALL_WHOLE``)."""
    return bool(getattr(for_file(f), "FETCH_SMALL_WHOLE", False))


def read_head(f: SourceFile, n: int, *, settings: AwsSettings | None = None) -> bytes:
    """The first ``n`` bytes of ``f`` (fewer at its end); a stream keeps them for its reader."""
    module = for_file(f)
    own = getattr(module, "read_head", None)
    if own is not None:
        return bytes(own(f, n, settings=settings))
    with module.open_range(f, 0, settings=settings) as stream:
        return bytes(stream.read(n))


def describe(f: SourceFile) -> str:
    """``f`` in words, for a message (standard input, a pipe, a path or URL)."""
    own = getattr(for_file(f), "describe", None)
    return str(own(f)) if own is not None else f.display
