"""S3 sources: the client from the user's settings, listing with the paginator, streaming reads
through smart-open, and one place that turns AWS errors into the tool's own.

A source ``s3://bucket/key`` names one object when that object exists; otherwise it is a prefix,
and every object below it is a file of the job (subfolders included, folder markers left out),
as Pinpoint reads an ``S3Url``. Errors map as the contract says::

    ConfigError  253   no credentials, unknown profile, bad region, unreadable config file
    SourceError  254   no such bucket or key, access denied, throttled past retries,
                       credentials refused by S3, endpoint unreachable, any other S3 error
    UsageError   252   a malformed s3:// URL or --endpoint-url

Clients are not picklable: a worker process builds its own with ``make_client(settings)``.
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Callable
from typing import IO, Any, TypeVar, cast
from urllib.parse import urlsplit

try:
    import boto3
    import botocore.exceptions as bx
    import smart_open
    import smart_open.s3
    from botocore import UNSIGNED
    from botocore.config import Config
except ImportError as _missing:  # pragma: no cover - both are dependencies of the package
    raise ImportError(
        f"S3 sources need boto3 and smart-open: pip install 'smart-open[s3]' boto3 ({_missing})"
    ) from _missing

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
CONNECT_TIMEOUT = 10  # seconds; botocore's 60 makes an unreachable endpoint look like a hang
# botocore's own check on bucket names (access-point aliases included); ARNs are not taken.
_BUCKET = re.compile(r"^[a-zA-Z0-9.\-_]{1,255}$")
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}\b")

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
    settings = settings or AwsSettings()
    try:
        session = boto3.session.Session(profile_name=settings.profile)
        options: dict[str, Any] = {
            "retries": {"mode": _retry_mode(session)},
            "connect_timeout": CONNECT_TIMEOUT,
            "user_agent_extra": "pinpoint-preflight",
        }
        if settings.no_sign_request:
            options["signature_version"] = UNSIGNED
        return session.client(
            "s3",
            region_name=settings.region,
            endpoint_url=settings.endpoint_url,
            config=Config(**options),
        )
    except ValueError as exc:
        if isinstance(exc, bx.BotoCoreError):  # InvalidRegionError, UnknownEndpointError
            raise translate(exc, None, None) from exc
        if not str(exc).startswith("Invalid endpoint"):
            raise
        # An endpoint that is not a URL: a bad option value, or a bad variable or config entry.
        if settings.endpoint_url:
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


def _retry_mode(session: boto3.session.Session) -> str:
    """The user's retry mode (variable, then profile), else ``standard``; botocore's own
    default is ``legacy``, which cannot be told apart from a choice once it has resolved."""
    configured = os.environ.get("AWS_RETRY_MODE")
    if not configured:
        configured = session._session.get_scoped_config().get("retry_mode")  # the profile's
    return str(configured or "standard")


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
    """Open an S3 object for reading bytes from ``start``: streamed, buffered, never
    decompressed (a compressed object is a rule to report, not something to undo).

    Errors while opening, reading or seeking come out as ``SourceError``/``ConfigError``.
    """
    if f.bucket is None or f.key is None:
        raise ValueError(f"{f.display}: not an S3 object")
    bucket, key = f.bucket, f.key
    client = client if client is not None else shared_client(settings)
    params: dict[str, Any] = {
        "client": client,
        "buffer_size": READ_BUFFER,
        "defer_seek": True,
        "range_chunk_size": RANGE_CHUNK,
    }

    def _open() -> IO[bytes]:
        uri = display(bucket, key)
        parsed = smart_open.s3.parse_uri(uri)
        fh: Any
        if (parsed["bucket_id"], parsed["key_id"], parsed["version_id"]) == (bucket, key, None):
            fh = smart_open.open(uri, "rb", compression="disable", transport_params=params)
        else:  # a key that smart-open's URL parsing would change (it holds "?versionId=")
            fh = smart_open.s3.open(bucket, key, "rb", **params)
        fh.seek(start)  # the first GET: asks for the range from start, and fails here if it must
        return cast("IO[bytes]", fh)

    if 0 <= f.size <= start:
        # Nothing to read. Not every server says how long the object is when a range starts
        # past its end (SeaweedFS does not), and smart-open then loses the position.
        empty = io.BytesIO()
        empty.seek(start)
        return cast("IO[bytes]", _ObjectReader(empty, bucket, key))
    return cast("IO[bytes]", _ObjectReader(_call(_open, bucket, key), bucket, key))


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

    def tell(self) -> int:
        return self._inner.tell()

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
            finally:
                super().close()


# --- errors ----------------------------------------------------------------------------------

_NO_BUCKET = ("NoSuchBucket",)
_NO_KEY = ("NoSuchKey", "NotFound", "404")
_DENIED = ("AccessDenied", "403", "Forbidden", "AllAccessDisabled", "AccountProblem")
_THROTTLED = (
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestThrottled",
    "ServiceUnavailable",
    "503",
)
_CREDENTIALS_REFUSED = {
    "InvalidAccessKeyId": "S3 does not know the access key in use",
    "SignatureDoesNotMatch": "S3 refused the request signature: the secret key does not match "
    "the access key",
    "ExpiredToken": "the session token in use has expired",
    "TokenRefreshRequired": "the session token in use has expired",
    "InvalidToken": "the session token in use is not valid",
    "InvalidSecurity": "S3 refused the security credentials in use",
}
_CONFIG_ERRORS = (
    bx.NoCredentialsError,
    bx.PartialCredentialsError,
    bx.CredentialRetrievalError,
    bx.ProfileNotFound,
    bx.ConfigNotFound,
    bx.ConfigParseError,
    bx.NoRegionError,
    bx.InvalidRegionError,
    bx.UnknownEndpointError,
    bx.TokenRetrievalError,
    bx.SSOError,
    bx.UnknownCredentialError,
    bx.InvalidConfigError,
    bx.InvalidRetryConfigurationError,
)


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


def _botocore_cause(exc: BaseException) -> BaseException:
    """The botocore error inside ``exc``: itself, smart-open's ``backend_error``, or a cause."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (bx.BotoCoreError, bx.ClientError)):
            return current
        backend = getattr(current, "backend_error", None)  # smart_open.s3._get's wrapping
        if isinstance(backend, BaseException):
            return backend
        current = current.__cause__ or current.__context__
    return exc


def _code(exc: bx.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: bx.ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


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
    """``text`` on one line, with anything that looks like an access key id masked."""
    return _ACCESS_KEY_ID.sub("<access key>", " ".join(text.split()))
