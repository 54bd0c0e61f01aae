"""A transport for tests only: ``folder://NAME/path`` is ``path`` inside the local folder
registered as ``ROOTS[NAME]``. It stands for a new source kind (``gs://``): one module with the
transport functions, and one ``transport.register`` line."""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import IO, Any

from validator.errors import EmptySource, UsageError
from validator.source import SourceFile, format_of

NAME = "folder"
SCHEMES = ("folder",)
REMOTE = False
READ_ONCE = False
ANYWHERE = False  # a folder of this machine
FETCH_SMALL_WHOLE = False
ROOTS: dict[str, str] = {}  # NAME -> local folder


def _parts(url: str) -> tuple[str, str]:
    bucket, _, key = url[len("folder://") :].partition("/")
    return bucket, key


def _local(url: str) -> str:
    bucket, key = _parts(url)
    return os.path.join(ROOTS[bucket], key)


# --- reading ---------------------------------------------------------------------------------


def _file(bucket: str, key: str) -> SourceFile:
    size = os.path.getsize(os.path.join(ROOTS[bucket], key))
    return SourceFile(
        display=f"folder://{bucket}/{key}",
        size=size,
        kind=NAME,
        bucket=bucket,
        key=key,
        format=format_of(key),
    )


def list_source(source: str, *, settings: Any = None) -> list[SourceFile]:
    bucket, key = _parts(source)
    path = _local(source)
    if os.path.isfile(path):
        return [_file(bucket, key)]
    keys = []
    for dirpath, _, names in os.walk(path):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), ROOTS[bucket])
            keys.append(rel.replace(os.sep, "/"))
    if not keys:
        raise EmptySource(f"nothing at or below {source}")
    return [_file(bucket, k) for k in sorted(keys, key=str.encode)]


def names_one(source: str, listed: list[SourceFile]) -> bool:
    return len(listed) == 1 and listed[0].display == source


def warnings(source: str, listed: list[SourceFile]) -> list[tuple[str, str, str]]:
    return []


def display(location: str) -> str:
    return location


def open_range(f: SourceFile, start: int = 0, *, settings: Any = None) -> IO[bytes]:
    fh = open(_local(f.display), "rb")  # noqa: SIM115 - the caller closes it
    fh.seek(start)
    return fh


# --- writing ---------------------------------------------------------------------------------


def prepare(url: str, *, settings: Any = None) -> None:
    if _parts(url)[0] not in ROOTS:
        raise UsageError(f"{url}: no folder registered under that name")


def join(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def exists(url: str, *, settings: Any = None) -> bool:
    return os.path.exists(_local(url))


def is_folder(url: str) -> bool:
    return False


def is_stream(url: str) -> bool:
    return False


def split_name(url: str) -> tuple[str, str]:
    head, _, tail = url.rstrip("/").rpartition("/")
    return head, tail


def make_folder(url: str, *, settings: Any = None, label: str = "") -> list[str]:
    return []


def remove_folder(url: str, *, settings: Any = None, tree: bool = False) -> None:
    if tree:
        shutil.rmtree(_local(url), ignore_errors=True)


def holds_other_files(root: str, ignore: Any, *, settings: Any = None) -> bool:
    return False


def read_bytes(url: str, *, settings: Any = None) -> bytes:
    with open(_local(url), "rb") as fh:
        return fh.read()


def claim(url: str, body: bytes, *, settings: Any = None) -> bool:
    path = _local(url)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path, "xb") as fh:
            fh.write(body)
    except FileExistsError:
        return False
    return True


def remove(url: str, *, settings: Any = None) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_local(url))


def clear_partial(root: str, urls: Any, *, settings: Any = None) -> list[str]:
    for url in urls:  # what a writer that died left
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_local(url) + ".part")
    return []


class _Writer:
    made: list[str] = []  # noqa: RUF012
    streamed = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = _local(url)
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.tmp = self.path + ".part"
        self.fh: IO[bytes] | None = open(self.tmp, "wb")  # noqa: SIM115

    def write(self, data: bytes | memoryview) -> object:
        assert self.fh is not None
        return self.fh.write(data)

    def commit(self) -> None:
        assert self.fh is not None
        self.fh.close()
        self.fh = None
        os.replace(self.tmp, self.path)

    def discard(self) -> str | None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)
        return None

    def remove(self) -> None:
        remove(self.url)


def open_writer(url: str, what: str = "", *, settings: Any = None) -> _Writer:
    return _Writer(url)
