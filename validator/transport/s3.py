"""S3: ``s3://bucket/key`` names one object, or every object below a prefix. The client,
the listing, the ranged reads and the multipart writer live in :mod:`validator.s3`; this
module gives them the transport's functions.

The client is the caller's own (``AwsSettings.s3_client``, from ``s3_client=``) or one per
process and settings (``validator.s3.shared_client``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from validator import s3
from validator.settings import AwsSettings
from validator.source import SourceFile

NAME = "s3"
SCHEMES = ("s3",)
REMOTE = True
READ_ONCE = False
ANYWHERE = True  # an object is the same from every machine (with its credentials)
FETCH_SMALL_WHOLE = True  # a request costs a round trip: a small object in one GET


def _client(settings: AwsSettings | None) -> Any:
    given = settings.s3_client if settings is not None else None
    return given if given is not None else s3.shared_client(settings)


# --- reading ---------------------------------------------------------------------------------


def list_source(source: str, *, settings: AwsSettings | None = None) -> list[SourceFile]:
    """The object ``source`` names, or every object below it (``EmptySource`` if none)."""
    return s3.list_source(source, settings=settings, client=_client(settings))


def names_one(source: str, listed: list[SourceFile]) -> bool:
    return len(listed) == 1 and listed[0].key == s3.parse_url(source)[1]


def warnings(source: str, listed: list[SourceFile]) -> list[tuple[str, str, str]]:
    return s3.url_warnings(source, listed)


def display(location: str) -> str:
    return location


def open_range(f: SourceFile, start: int = 0, *, settings: AwsSettings | None = None) -> IO[bytes]:
    return s3.open_object(f, start, settings=settings, client=_client(settings))


# --- writing ---------------------------------------------------------------------------------


def prepare(url: str, *, settings: AwsSettings | None = None) -> None:
    """Before any work: the URL well formed and a client built (a configuration problem is
    said here, not halfway through a split)."""
    s3.parse_url(url.rstrip("/") + "/")
    _client(settings)


def join(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def _where(url: str) -> tuple[str, str]:
    return s3.parse_url(url)


def exists(url: str, *, settings: AwsSettings | None = None) -> bool:
    bucket, key = _where(url)
    try:
        _client(settings).head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NotFound"):
            return False
        raise s3.translate(exc, bucket, key) from exc
    return True


def is_folder(url: str) -> bool:
    return False  # a prefix is no object: an output name is always a key


def is_stream(url: str) -> bool:
    return False


def split_name(url: str) -> tuple[str, str]:
    head, _, tail = url.rstrip("/").rpartition("/")
    return head, tail


def make_folder(url: str, *, settings: AwsSettings | None = None, label: str = "") -> list[str]:
    return []  # S3 has no folders: a key's prefix is enough


def remove_folder(url: str, *, settings: AwsSettings | None = None, tree: bool = False) -> None:
    return None


def holds_other_files(root: str, ignore: Any, *, settings: AwsSettings | None = None) -> bool:
    """Not asked of S3 (it would list the prefix): an earlier split is found by its manifest."""
    return False


def read_bytes(url: str, *, settings: AwsSettings | None = None) -> bytes:
    bucket, key = _where(url)
    client = _client(settings)
    return s3._call(
        lambda: bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read()), bucket, key
    )


def claim(url: str, body: bytes, *, settings: AwsSettings | None = None) -> bool:
    """PutObject with ``If-None-Match: *``: False when the object exists already."""
    bucket, key = _where(url)
    try:
        _client(settings).put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
    except Exception as exc:
        answer = getattr(exc, "response", {})
        code = answer.get("Error", {}).get("Code")
        status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
            return False
        raise s3.translate(exc, bucket, key) from exc
    return True


def clear_partial(
    root: str, urls: Iterable[str], *, settings: AwsSettings | None = None
) -> list[str]:
    """Abort the multipart uploads pending on these outputs' keys (a worker that died
    mid-write leaves one; it is no object, but S3 keeps and bills its parts); the ones that
    could not be aborted. One listing of the uploads below ``root``."""
    wanted = {_where(u)[1] for u in urls}
    if not wanted:
        return []
    bucket, prefix = _where(root.rstrip("/") + "/")
    client = _client(settings)
    left = []
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    while True:
        page = s3._call(lambda: client.list_multipart_uploads(**request), bucket, prefix)
        for upload in page.get("Uploads", []):
            key, upload_id = upload["Key"], upload["UploadId"]
            if key not in wanted:
                continue  # not this run's: never touched
            try:
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except Exception:  # reported by the caller as left behind
                left.append(f"s3://{bucket}/{key} (pending multipart upload {upload_id})")
        if not page.get("IsTruncated"):
            return left
        request["KeyMarker"] = page.get("NextKeyMarker", "")
        request["UploadIdMarker"] = page.get("NextUploadIdMarker", "")


def remove(url: str, *, settings: AwsSettings | None = None) -> None:
    bucket, key = _where(url)
    client = _client(settings)
    s3._call(lambda: client.delete_object(Bucket=bucket, Key=key), bucket, key)


class _UploadWriter:
    """A multipart upload (:class:`validator.s3.ObjectWriter`) as a transport writer."""

    made: list[str] = []  # noqa: RUF012 - never changed: S3 makes no folders
    streamed = False

    def __init__(self, url: str, settings: AwsSettings | None) -> None:
        self.url = url
        self.settings = settings
        bucket, key = _where(url)
        self._out = s3.ObjectWriter(_client(settings), bucket, key)

    def write(self, data: bytes | memoryview) -> object:
        return self._out.write(data)

    def commit(self) -> None:
        self._out.commit()

    def discard(self) -> str | None:
        if self._out.discard():
            return None
        return f"{self.url} (pending multipart upload {self._out.pending})"

    def remove(self) -> None:
        remove(self.url, settings=self.settings)


def open_writer(url: str, what: str = "", *, settings: AwsSettings | None = None) -> _UploadWriter:
    return _UploadWriter(url, settings)
