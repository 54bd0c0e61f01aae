"""S3 sources: the client from the user's settings, listing with the paginator, streaming reads
in byte ranges of their own (ranged GETs, read ahead on a thread), and one place that turns
AWS errors into the tool's own.

A source ``s3://bucket/key`` names one object when that object exists; otherwise it is a prefix,
and every object below it is a file of the job (subfolders included, folder markers left out),
as Pinpoint reads an ``S3Url``. Errors map as the contract says::

    ConfigError  253   no credentials, unknown profile, bad region, unreadable config file
    SourceError  254   no such bucket or key, access denied, throttled past retries,
                       credentials refused by S3, endpoint unreachable, any other S3 error
    UsageError   252   a malformed s3:// URL or --endpoint-url

Clients are not picklable: a worker process builds its own with ``make_client(settings)``
(the one factory, ``validator.aws.make_client``; the botocore error table is ``validator.aws``'s
too, shared with Pinpoint).
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
import re
import threading
from collections.abc import Callable
from typing import IO, Any, TypeVar, cast
from urllib.parse import urlsplit

import botocore.exceptions as bx

from validator import aws, redact
from validator.errors import (
    ConfigError,
    EmptySource,
    PreflightError,
    SourceError,
    UsageError,
)
from validator.settings import AwsSettings
from validator.source import SourceFile, format_of

__all__ = [
    "ObjectWriter",
    "list_source",
    "make_client",
    "open_object",
    "parse_url",
    "shared_client",
    "translate",
    "url_warnings",
]

SCHEME = "s3://"
READ_BUFFER = 1 << 20  # bytes fetched per read from the response stream, as for local files
# Bytes asked for per GET: a piece closed early leaves the server less to throw away.
RANGE_CHUNK = 64 << 20
# Read-ahead: a thread fetches the next byte range while the checks work on this one (the
# socket read releases the GIL). The first range is small (a header, a head sniff); each next
# one doubles, up to READ_AHEAD_CHUNK; AHEAD ranges wait fetched at most, so a reader holds
# about (AHEAD + 2) x READ_AHEAD_CHUNK whatever the object's size.
FIRST_CHUNK = 1 << 20
READ_AHEAD_CHUNK = 8 << 20
ARRIVAL_STEP = 256 << 10  # a range's body is read in parts of this size, each one told
AHEAD = 1
# A response body that breaks off mid-way is asked for again from where it stopped, this many
# times per range (botocore retries the GET itself; it cannot retry a body already streaming).
BODY_RETRIES = 3
CONNECT_TIMEOUT = 10  # seconds; botocore's 60 makes an unreachable endpoint look like a hang
# botocore's own check on bucket names (access-point aliases included); ARNs are not taken.
_BUCKET = re.compile(r"^[a-zA-Z0-9.\-_]{1,255}$")

_T = TypeVar("_T")


def parse_url(url: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into bucket and key (or prefix; ``""`` for the whole bucket)."""
    if not url.startswith(SCHEME):
        raise UsageError(f"{url}: not an S3 URL; write s3://bucket/key or s3://bucket/prefix/")
    bucket, _, key = url[len(SCHEME) :].partition("/")
    if not bucket:
        raise UsageError(f"{url}: no bucket name; write s3://bucket/key or s3://bucket/prefix/")
    if not _BUCKET.match(bucket):
        raise UsageError(
            f"{url}: {bucket!r} is not a valid S3 bucket name "
            "(letters, digits, '.', '-' and '_' only)"
        )
    return bucket, key


def display(bucket: str, key: str | None = "") -> str:
    """The ``s3://`` URL a user would paste for this bucket and key."""
    return f"{SCHEME}{bucket}/{key or ''}"


def make_client(settings: AwsSettings | None = None) -> Any:
    """A boto3 S3 client as the AWS CLI would build it from these settings.

    Profile, region and endpoint fall back to the environment and config files as in boto3
    (``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL_S3``, ...). Retries use botocore's
    ``standard`` mode unless the user configured another (``AWS_RETRY_MODE``, ``retry_mode``);
    ``AWS_MAX_ATTEMPTS`` and ``max_attempts`` are honoured.
    """
    try:
        return aws.make_client(
            "s3", settings, standard_retries=True, connect_timeout=CONNECT_TIMEOUT
        )
    except ValueError as exc:
        if isinstance(exc, bx.BotoCoreError):  # InvalidRegionError, UnknownEndpointError
            raise translate(exc, None, None) from exc
        if not str(exc).startswith("Invalid endpoint"):
            raise
        # An endpoint that is not a URL: a bad option value, or a bad variable or config entry.
        if settings is not None and settings.endpoint_url:
            raise UsageError(
                f"--endpoint-url {settings.endpoint_url!r} is not a URL; write it "
                "as http(s)://host[:port]"
            ) from exc
        raise ConfigError(
            f"the S3 endpoint configured ({str(exc).partition(': ')[2]!r}) is "
            "not a URL; check AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL and the "
            "profile's endpoint_url"
        ) from exc
    except (bx.BotoCoreError, bx.ClientError) as exc:
        raise translate(exc, None, None) from exc


_shared: dict[tuple[Any, ...], Any] = {}
_shared_lock = threading.Lock()


def shared_client(settings: AwsSettings | None = None) -> Any:
    """A client from ``make_client(settings)``, made once per process and AWS environment.

    Worker processes open many byte ranges; building a client for each costs tens of
    milliseconds and its connection pool. The key holds the process id (a forked child builds
    its own) and the ``AWS_*`` variables (a changed environment gets a new client).
    """
    settings = settings or AwsSettings()
    key = (
        settings,
        os.getpid(),
        tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))),
    )
    with _shared_lock:
        client = _shared.get(key)
    if client is None:
        client = make_client(settings)
        with _shared_lock:
            if len(_shared) >= 16:
                _shared.clear()
            client = _shared.setdefault(key, client)
    return client


def list_source(
    url: str,
    *,
    settings: AwsSettings | None = None,
    client: Any = None,
    page_size: int | None = None,
) -> list[SourceFile]:
    """The files an ``s3://`` source names: the one object it names exactly, or else every
    object below it as a prefix, in key order (UTF-8 bytes), folder markers left out.

    ``page_size`` caps the keys per ListObjectsV2 page (S3's default is 1,000).
    """
    bucket, key = parse_url(url)
    client = client if client is not None else shared_client(settings)
    if key and not key.endswith("/"):
        head = _head(client, bucket, key)
        if head is not None:
            return [_source_file(bucket, key, int(head.get("ContentLength", 0)))]
    files: list[SourceFile] = []
    markers = 0
    pagination: dict[str, Any] = {"PageSize": page_size} if page_size else {}
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=key, PaginationConfig=pagination
    )
    for page in _translated(lambda: iter(pages), bucket, key):
        for obj in page.get("Contents", ()):
            if obj["Key"].endswith("/") and not obj.get("Size"):
                markers += 1  # a folder marker from the console: not a file
                continue
            files.append(_source_file(bucket, obj["Key"], int(obj.get("Size", 0))))
    # S3 lists keys in the order of their UTF-8 bytes, and Pinpoint reads them so; some
    # S3-compatible servers (SeaweedFS) list a "folder" before a key that sorts ahead of it.
    files.sort(key=lambda f: (f.key or "").encode())
    if not files:
        only = f" (only {markers} folder marker{'s' if markers > 1 else ''})" if markers else ""
        raise EmptySource(
            f"no object at or below {display(bucket, key)}{only}; check the "
            "bucket, the key or prefix, and --endpoint-url or --region"
        )
    return files


def _head(client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """HeadObject, or None when there is no such object (or we may not see it: then the
    listing decides, and says access denied if so)."""
    try:
        return dict(client.head_object(Bucket=bucket, Key=key))
    except bx.ClientError as exc:
        if _status(exc) in (403, 404) or _code(exc) in ("NoSuchKey", "NotFound", "403", "404"):
            return None
        raise translate(exc, bucket, key) from exc
    except bx.BotoCoreError as exc:
        raise translate(exc, bucket, key) from exc


def _translated(make: Callable[[], Any], bucket: str, key: str) -> Any:
    """Iterate what ``make()`` returns, turning AWS errors into the tool's own."""
    try:
        yield from make()
    except (bx.BotoCoreError, bx.ClientError) as exc:
        raise translate(exc, bucket, key) from exc


def _source_file(bucket: str, key: str, size: int) -> SourceFile:
    return SourceFile(
        display=display(bucket, key),
        size=size,
        kind="s3",
        bucket=bucket,
        key=key,
        format=format_of(key),
    )


def url_warnings(url: str, listed: list[SourceFile] | None = None) -> list[tuple[str, str, str]]:
    """``(source, code, message)`` warnings about how an ``s3://`` URL will be read.

    A URL without a trailing ``/`` used as a prefix also matches sibling "folders"
    (``s3://b/data`` matches ``s3://b/data2/...``), which is seldom what was meant. ``listed``
    is what :func:`list_source` returned for the URL: when it is the one object the URL names
    exactly, the URL is no prefix and there is nothing to say.
    """
    key = parse_url(url)[1]
    if not key or key.endswith("/"):
        return []
    if listed is not None and len(listed) == 1 and listed[0].key == key:
        return []
    strays = [f for f in listed or () if f.key is not None and not f.key.startswith(key + "/")]
    example = f", such as {strays[0].display}" if strays else ""
    return [
        (
            url,
            "S3_PREFIX_NOT_FOLDER",
            f"no trailing /: S3 reads {url} as a plain prefix, so it also matches keys that "
            f"only begin with {key!r}{example}; write {url}/ to read only that folder",
        )
    ]


def open_object(
    f: SourceFile, start: int = 0, *, settings: AwsSettings | None = None, client: Any = None
) -> IO[bytes]:
    """Open an S3 object for reading bytes from ``start``: streamed in byte ranges of its own
    (ranged GETs, the next one fetched on a thread while this one is read), never decompressed
    (a compressed object is a rule to report, not something to undo).

    Errors while opening, reading or seeking come out as ``SourceError``/``ConfigError``.
    """
    if f.bucket is None or f.key is None:
        raise ValueError(f"{f.display}: not an S3 object")
    bucket, key = f.bucket, f.key
    client = client if client is not None else shared_client(settings)
    if 0 <= f.size <= start:
        # Nothing to read. Not every server says how long the object is when a range starts
        # past its end (SeaweedFS does not).
        empty = io.BytesIO()
        empty.seek(start)
        return cast("IO[bytes]", _ObjectReader(empty, bucket, key))
    reader = _RangeReader(client, bucket, key, f.size, start)
    # the first GET now: a missing key or a refused credential fails here, as it did
    _call(reader.prime, bucket, key)
    return cast("IO[bytes]", _ObjectReader(cast("IO[bytes]", reader), bucket, key))


def _body_errors() -> tuple[type[BaseException], ...]:
    """What a response body raises when it breaks off (asked for again from where it stopped)."""
    errors: list[type[BaseException]] = [
        bx.IncompleteReadError,
        bx.ReadTimeoutError,
        bx.ConnectionClosedError,
        ConnectionError,
        TimeoutError,
    ]
    for name in ("ResponseStreamingError",):
        found = getattr(bx, name, None)
        if isinstance(found, type):
            errors.append(found)
    return tuple(errors)  # botocore's body wraps urllib3's own errors in these


class _RangeReader(io.RawIOBase):
    """An object read as consecutive byte ranges, each one GET, the next fetched on a thread.

    The consumer's ``read`` takes bytes from the range in hand; a thread, started on the second
    range, keeps ``AHEAD`` ranges fetched ahead of it, so the network wait (a ``recv_into``
    that releases the GIL) overlaps the checks. Nothing is fetched past the object's end, and
    ``close`` stops the thread (closing the response it is reading) before it returns.
    """

    def __init__(self, client: Any, bucket: str, key: str, size: int, start: int) -> None:
        super().__init__()
        self._client = client
        self._bucket = bucket
        self._key = key
        self._size = size  # -1: not known (then a range past the end ends the object)
        self._pos = start  # the position of the next byte the consumer reads
        self._buf = b""  # the range in hand, from self._pos on (a view of what was fetched)
        self._view = memoryview(b"")
        self._next = start  # where the next range to fetch starts
        self._chunk = min(FIRST_CHUNK, RANGE_CHUNK)
        self._eof = False
        self._queue: queue.Queue[tuple[bytes, BaseException | None]] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._body_lock = threading.Lock()
        self._body: Any = None
        self._origin = start
        self._arrived: Callable[[int], None] | None = None

    def watch(self, arrived: Callable[[int], None]) -> None:
        """Call ``arrived(n)`` as the bytes come in from S3 (on the read-ahead thread too),
        ``n`` counted from where the reader started: the progress display's hook."""
        self._arrived = arrived

    # --- fetching -----------------------------------------------------------------------------

    def _span(self) -> tuple[int, int] | None:
        """The next range to fetch, [a, b), or None at the end of the object."""
        a = self._next
        if self._eof or (self._size >= 0 and a >= self._size):
            return None
        size = min(self._chunk, RANGE_CHUNK)
        b = a + size if self._size < 0 else min(a + size, self._size)
        self._chunk = min(self._chunk * 2, READ_AHEAD_CHUNK)
        self._next = b
        return a, b

    def _fetch(self, a: int, b: int) -> bytes:
        """Bytes [a, b) of the object (fewer at its end), one GET, the body asked for again
        from where it broke off (BODY_RETRIES times). Without a progress display the body is
        read in one call and its bytes returned as they came (no copy) when one response gave
        them all, as it nearly always does; with one, in ARRIVAL_STEP parts that tick it."""
        got: list[bytes] = []
        n = 0
        attempts = 0
        errors = _body_errors()
        arrived = self._arrived
        while a + n < b and not self._stop.is_set():
            at = a + n
            try:
                response = self._client.get_object(
                    Bucket=self._bucket, Key=self._key, Range=f"bytes={at}-{b - 1}"
                )
            except bx.ClientError as exc:
                if _code(exc) == "InvalidRange" or _status(exc) == 416:
                    break  # past the end of an object whose size was not known
                raise
            body = response["Body"]
            with self._body_lock:
                self._body = body
            before = n
            try:
                if arrived is None:
                    data = body.read()
                    if data:
                        got.append(data)
                        n += len(data)
                else:
                    while part := body.read(ARRIVAL_STEP):
                        got.append(part)
                        n += len(part)
                        arrived(a + n - self._origin)
            except errors:
                if self._stop.is_set():
                    break
                attempts += 1
                if attempts > BODY_RETRIES:
                    raise
                continue
            finally:
                with self._body_lock:
                    self._body = None
                with contextlib.suppress(Exception):
                    body.close()
            if n == before:
                break  # the object ended early (it shrank, or its size was not known)
        return got[0] if len(got) == 1 else b"".join(got)

    def prime(self) -> None:
        """The first range, fetched now (so the open fails at once if it must)."""
        span = self._span()
        if span is not None:
            self._take(self._fetch(*span), span)

    def _take(self, data: bytes, span: tuple[int, int]) -> None:
        self._buf = data
        self._view = memoryview(data)
        if len(data) < span[1] - span[0]:
            self._eof = True  # the object ended inside this range
        elif 0 <= self._size <= span[1]:
            self._eof = True  # the range ran to the object's known end: no read-ahead thread

    def _ahead(self) -> None:
        assert self._queue is not None
        q = self._queue
        try:
            while not self._stop.is_set():
                span = self._span()
                if span is None:
                    q.put((b"", None))
                    return
                data = self._fetch(*span)
                while not self._stop.is_set():
                    try:
                        q.put((data, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if len(data) < span[1] - span[0]:
                    q.put((b"", None))
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            if not self._stop.is_set():
                q.put((b"", exc))

    def _refill(self) -> bool:
        """The next range into hand; False at the end of the object."""
        if self._eof:
            return False
        if self._thread is None:
            self._queue = queue.Queue(maxsize=AHEAD)
            self._thread = threading.Thread(
                target=self._ahead, name=f"s3-read-ahead {self._key}", daemon=True
            )
            self._thread.start()
        assert self._queue is not None
        data, error = self._queue.get()
        if error is not None:
            self._eof = True
            raise error
        if not data:
            self._eof = True
            return False
        self._buf = data
        self._view = memoryview(data)
        return True

    # --- the file interface ----------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = [bytes(self._view)]
            self._pos += len(self._view)
            self._view = memoryview(b"")
            while self._refill():
                parts.append(self._buf)
                self._pos += len(self._buf)
                self._view = memoryview(b"")
            return b"".join(parts)
        views: list[memoryview] = []
        want = size
        while want > 0:
            if not len(self._view) and not self._refill():
                break
            piece = self._view[:want]
            self._view = self._view[len(piece) :]
            views.append(piece)
            want -= len(piece)
        self._pos += size - want
        if len(views) == 1:
            return views[0].tobytes()
        return b"".join(views)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        parts: list[bytes] = []
        limit = -1 if size is None else size
        while limit != 0:
            if not len(self._view) and not self._refill():
                break
            at = len(self._buf) - len(self._view)  # the view is the tail of the range in hand
            room = len(self._view) if limit < 0 else min(limit, len(self._view))
            end = self._buf.find(b"\n", at, at + room)
            take = room if end < 0 else end - at + 1
            parts.append(self.read(take))
            if limit > 0:
                limit -= take
            if end >= 0:
                break
        return b"".join(parts)

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            if self._size < 0:
                raise OSError("the object's size is not known")
            offset += self._size
        if offset < 0:
            raise ValueError(f"negative seek position {offset}")
        if offset == self._pos:
            return offset
        ahead = offset - self._pos
        if 0 < ahead <= len(self._view):
            self._view = self._view[ahead:]
            self._pos = offset
            return offset
        self._halt()
        self._pos = self._next = offset
        self._view = memoryview(b"")
        self._eof = False
        self._chunk = min(FIRST_CHUNK, RANGE_CHUNK)
        self._stop = threading.Event()
        self.prime()
        return offset

    def _halt(self) -> None:
        """Stop the read-ahead thread, aborting the GET it is in."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is None:
            return
        with self._body_lock:
            body = self._body
        if body is not None:
            with contextlib.suppress(Exception):
                body.close()
        assert self._queue is not None
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)
        thread.join()
        self._queue = None

    def close(self) -> None:
        if not self.closed:
            try:
                self._halt()
            finally:
                self._view = memoryview(b"")
                self._buf = b""
                super().close()


def _call(fn: Callable[[], _T], bucket: str, key: str) -> _T:
    try:
        return fn()
    except PreflightError:
        raise
    except (bx.BotoCoreError, bx.ClientError, OSError) as exc:
        raise translate(exc, bucket, key) from exc


class _ObjectReader(io.BufferedIOBase):
    """smart-open's reader with AWS errors raised as ``SourceError``/``ConfigError``."""

    def __init__(self, inner: IO[bytes], bucket: str, key: str) -> None:
        super().__init__()
        self._inner = inner
        self._bucket = bucket
        self._key = key
        self.name = display(bucket, key)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return _call(
            lambda: self._inner.read(-1 if size is None else size), self._bucket, self._key
        )

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        return _call(
            lambda: self._inner.readline(-1 if size is None else size), self._bucket, self._key
        )

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return _call(lambda: self._inner.seek(offset, whence), self._bucket, self._key)

    def watch(self, arrived: Callable[[int], None]) -> None:
        """See ``_RangeReader.watch`` (a stream without it tells nothing)."""
        watch = getattr(self._inner, "watch", None)
        if callable(watch):
            watch(arrived)

    def tell(self) -> int:
        return self._inner.tell()

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
            finally:
                super().close()


# --- writing ---------------------------------------------------------------------------------

PART_SIZE = 8 << 20  # bytes per UploadPart (S3 takes 5 MiB to 5 GiB, the last part smaller)


class ObjectWriter:
    """One object written by a multipart upload: whole when :meth:`commit` returns, absent
    after :meth:`discard` (the upload aborted). Every request is its own, through the client's
    retries; an error comes out as ``SourceError``/``ConfigError``.

    If an abort fails, ``pending`` holds the upload id left behind (the caller reports it).
    """

    def __init__(self, client: Any, bucket: str, key: str, part_size: int = PART_SIZE) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.part_size = part_size
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.buffer = bytearray()
        self.pending: str | None = None

    def _do(self, fn: Callable[[], _T]) -> _T:
        return _call(fn, self.bucket, self.key)

    def _upload(self, chunk: bytes) -> None:
        if self.upload_id is None:
            made = self._do(
                lambda: self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)
            )
            self.upload_id = str(made["UploadId"])
        number = len(self.parts) + 1
        upload_id = self.upload_id
        answer = self._do(
            lambda: self.client.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=upload_id,
                PartNumber=number,
                Body=chunk,
            )
        )
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self.buffer += data
        while len(self.buffer) >= self.part_size:
            chunk = bytes(self.buffer[: self.part_size])
            del self.buffer[: self.part_size]
            self._upload(chunk)
        return len(data)

    def commit(self) -> None:
        """Upload what is left and complete the upload: the object now exists."""
        if self.buffer or not self.parts:
            chunk = bytes(self.buffer)
            self.buffer.clear()
            self._upload(chunk)
        upload_id = self.upload_id
        self._do(
            lambda: self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=upload_id,
                MultipartUpload={"Parts": self.parts},
            )
        )
        self.upload_id = None

    def discard(self) -> bool:
        """Abort the upload, if one was started; False when even that failed."""
        self.buffer.clear()
        if self.upload_id is None:
            return True
        upload_id, self.upload_id = self.upload_id, None
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
        except Exception:  # reported by the caller as left behind
            self.pending = upload_id
            return False
        return True


# --- errors ----------------------------------------------------------------------------------

_NO_BUCKET = ("NoSuchBucket",)
_NO_KEY = ("NoSuchKey", "NotFound", "404")
_DENIED = ("AccessDenied", "403", "Forbidden", "AllAccessDisabled", "AccountProblem")
_THROTTLED = aws.THROTTLED
_CONFIG_ERRORS = aws.CONFIG_ERRORS
_CREDENTIALS_REFUSED = {
    code: text.format(service="S3") for code, text in aws.CREDENTIALS_REFUSED.items()
}


def translate(exc: BaseException, bucket: str | None, key: str | None) -> PreflightError:
    """The one-line ``ConfigError`` or ``SourceError`` for an AWS error met while working on
    ``s3://bucket/key``; the caller raises it ``from exc``. Never says a credential.

    A ``SourceError`` says whether it is transient (a retry may succeed) or permanent in
    ``transient``, and S3's error code in ``code``."""
    if isinstance(exc, PreflightError):
        return exc
    error = _translate(exc, bucket, key)
    if isinstance(error, SourceError):
        cause = _botocore_cause(exc)
        error.transient = _transient(cause)
        if isinstance(cause, bx.ClientError):
            error.code = _code(cause) or None
        elif isinstance(cause, bx.BotoCoreError):
            error.code = type(cause).__name__
    return error


def _transient(cause: BaseException) -> bool:
    """Whether a retry may succeed: throttling, server errors, timeouts, lost connections."""
    if isinstance(cause, bx.ClientError):
        status = _status(cause) or 0
        return _code(cause) in _THROTTLED or status == 429 or status >= 500
    return isinstance(cause, bx.BotoCoreError | OSError) and not isinstance(
        cause, bx.ParamValidationError
    )


def _translate(exc: BaseException, bucket: str | None, key: str | None) -> PreflightError:
    where = display(bucket, key) if bucket else "S3"
    cause = _botocore_cause(exc)
    if isinstance(cause, bx.ClientError):
        return _client_error(cause, where, bucket)
    if isinstance(cause, bx.NoCredentialsError):
        return ConfigError(
            f"no AWS credentials found to read {where}; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, pick a profile with --profile, or use "
            "--no-sign-request for a public bucket"
        )
    if isinstance(cause, bx.PartialCredentialsError):
        return ConfigError(
            f"incomplete AWS credentials in {cause.kwargs.get('provider')}: "
            f"{cause.kwargs.get('cred_var')} is missing; set both the access key "
            "and the secret key, or pick a profile with --profile"
        )
    if isinstance(cause, bx.ProfileNotFound):
        return ConfigError(
            f"the AWS profile {cause.kwargs.get('profile')!r} is not in the "
            "AWS config files; check --profile and AWS_PROFILE "
            "(aws configure list-profiles shows the profiles there)"
        )
    if isinstance(cause, bx.InvalidRegionError):
        return ConfigError(
            f"{cause.kwargs.get('region_name')!r} is not an AWS region name; "
            "check --region, AWS_REGION and the profile's region"
        )
    if isinstance(cause, (bx.SSOError, bx.TokenRetrievalError)):
        return ConfigError(
            f"the AWS SSO session for this profile is missing or expired; run "
            f"aws sso login, then read {where} again"
        )
    if isinstance(cause, _CONFIG_ERRORS):
        return ConfigError(
            f"AWS configuration problem while reading {where}: "
            f"{_scrub(str(cause))}; check your AWS config files and variables"
        )
    if isinstance(cause, bx.ParamValidationError):
        return UsageError(
            f"{where}: S3 cannot take this request: {_scrub(' '.join(str(cause).split()))}"
        )
    if isinstance(cause, (bx.ConnectTimeoutError, bx.ReadTimeoutError)):
        return SourceError(
            f"{where}: S3 at {_endpoint(cause)} did not answer in time; check "
            "--endpoint-url, AWS_ENDPOINT_URL_S3 and the network, then retry"
        )
    if isinstance(cause, bx.ConnectionError):  # EndpointConnectionError, SSL, proxy
        return SourceError(
            f"{where}: could not connect to S3 at {_endpoint(cause)}; check "
            "--endpoint-url, AWS_ENDPOINT_URL_S3, --region and the network"
        )
    if isinstance(cause, bx.BotoCoreError):  # a stream cut short, a closed connection, ...
        return SourceError(
            f"{where}: reading from S3 failed: {_scrub(str(cause))}; retry, or use fewer --workers"
        )
    # smart-open gives up on a broken stream with a bare OSError after its own retries.
    return SourceError(
        f"{where}: reading from S3 failed: {_scrub(str(exc))}; retry, or use fewer --workers"
    )


_botocore_cause = aws.botocore_cause
_code = aws.error_code
_status = aws.http_status


def _client_error(exc: bx.ClientError, where: str, bucket: str | None) -> PreflightError:
    code = _code(exc)
    status = _status(exc)
    retries = exc.response.get("ResponseMetadata", {}).get("RetryAttempts")
    if code in _NO_BUCKET:
        return SourceError(
            f"{where}: no such bucket{f' {bucket!r}' if bucket else ''}; check "
            "the bucket name, and --endpoint-url or --region if it lives elsewhere"
        )
    if code in _NO_KEY or (status == 404 and not code):
        return SourceError(
            f"{where}: no such object; check the key (a folder or prefix is read "
            "whole when it ends with /)"
        )
    if code in _DENIED or (status == 403 and code not in _CREDENTIALS_REFUSED):
        return SourceError(
            f"{where}: access denied; the credentials in use need s3:ListBucket "
            "on the bucket and s3:GetObject on the objects (pick others with "
            "--profile, or use --no-sign-request for a public bucket)"
        )
    if code in _THROTTLED or status in (429, 503):
        tries = f" after {int(retries) + 1} attempts" if retries is not None else ""
        return SourceError(
            f"{where}: S3 is throttling requests ({code or status}){tries}; "
            "retry later or with fewer --workers (AWS_MAX_ATTEMPTS allows more "
            "retries)"
        )
    if code in _CREDENTIALS_REFUSED:
        return SourceError(
            f"{where}: {_CREDENTIALS_REFUSED[code]} ({code}); check "
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or the "
            "profile's credentials, and refresh them if they are temporary"
        )
    if code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraint"):
        return SourceError(
            f"{where}: the bucket is in another region than the one in use "
            f"({code}); give its region with --region"
        )
    message = str(exc.response.get("Error", {}).get("Message") or "")
    what = f"{code}: {message}" if message else (code or f"HTTP {status}")
    return SourceError(f"{where}: S3 answered with an error ({_scrub(what)})")


def _endpoint(exc: bx.BotoCoreError) -> str:
    """Scheme, host and port of the endpoint in a connection error: no path, no userinfo."""
    url = str(getattr(exc, "kwargs", {}).get("endpoint_url") or "")
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return "the configured endpoint"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _scrub(text: str) -> str:
    """``text`` on one line, with credentials masked (:mod:`validator.redact`)."""
    return redact.text(" ".join(text.split()))
