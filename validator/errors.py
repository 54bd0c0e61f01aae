"""The exception tree, and the exit code each class means.

    PreflightError        255  anything unexpected
    ├── UsageError        252  bad option, bad value, malformed request, no such local path
    │   └── OptionError   252  one parameter's value (names the parameter: ``pieces``)
    ├── ConfigError       253  no credentials, unknown profile, bad region
    │   └── LocalPathError 253 the local file system refused a path (denied, full, read-only)
    ├── SourceError       254  S3 answered with an error (no bucket or key, denied, throttled)
    │   └── EmptySource   254  no object at or below an S3 prefix (a job reads it as JOB_EMPTY)
    ├── ServiceError      254  Pinpoint answered with an error, or did not answer
    ├── PreflightFailed     1  the preflight found failures; carries the report
    ├── ImportJobFailed     1  the import ran and Pinpoint says FAILED; carries its response
    └── Interrupted       130  Ctrl-C; partial outputs were removed
        └── Terminated    143  SIGTERM; partial outputs were removed

Library callers catch these classes; the CLI maps them to exit codes through ``exit_code``
and nowhere else. An ``OSError`` from the local file system becomes one of them in one place,
:func:`from_os_error`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from validator.report import Report


class PreflightError(Exception):
    """Base class of every error the tool raises on purpose."""

    exit_code = 255


class UsageError(PreflightError):
    """The command or call was given something it cannot take."""

    exit_code = 252


class OptionError(UsageError):
    """A parameter's value is out of range or malformed, found before any work is done.

    ``parameter`` is the library's name (``piece_size``); the message reads
    ``piece_size: <problem>``, and :meth:`for_cli` gives ``--piece-size: <problem>``.
    """

    def __init__(self, parameter: str, problem: str) -> None:
        self.parameter = parameter.lstrip("-").replace("-", "_")
        self.problem = problem
        super().__init__(f"{self.parameter}: {problem}")

    def __reduce__(self) -> Any:
        return (type(self), (self.parameter, self.problem))

    @property
    def option(self) -> str:
        """The command-line spelling of the parameter."""
        return "--" + self.parameter.replace("_", "-")

    def for_cli(self) -> str:
        return f"{self.option}: {self.problem}"


class ConfigError(PreflightError):
    """AWS configuration is missing or wrong: credentials, profile, region."""

    exit_code = 253


class LocalPathError(ConfigError):
    """The local file system refused a path: permission denied, no space left, read-only,
    a name too long, an I/O error. One line naming the path and the reason."""


class SourceError(PreflightError):
    """Reading the input failed: S3 or the file system answered with an error.

    ``transient`` tells a pipeline whether to retry: True for throttling, timeouts, lost
    connections and server errors; False for what a retry cannot change (no such bucket, key
    or prefix, access denied, wrong region). ``code`` is S3's error code when it gave one.
    """

    exit_code = 254
    transient = False
    code: str | None = None


class EmptySource(SourceError):
    """No object at or below an ``s3://`` prefix. ``list_sources`` turns it into an empty
    source of the job (``JOB_EMPTY``), as an empty local folder is."""


class ServiceError(PreflightError):
    """Pinpoint answered a request with an error, or did not answer at all. ``transient``:
    throttled, a server error or no answer (a retry may succeed)."""

    exit_code = 254

    @property
    def transient(self) -> bool:
        return (
            self.code in ("TooManyRequestsException", "ConnectionError", "EndpointConnectionError")
            or self.status == 429
            or (self.status or 0) >= 500
        )

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        response: Any = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.response = response


class PreflightFailed(PreflightError):
    """The preflight found failures, so nothing was launched. ``report`` says which."""

    exit_code = 1

    def __init__(self, report: Report, message: str | None = None) -> None:
        if message is None:
            message = f"preflight failed: {report.total_failures} failed records"
            if report.job_failures:  # a job-level rule (JOB_EMPTY...) says more than a count
                message += f"; {report.job_failures[0]}"
        super().__init__(message)
        self.report = report


class ImportJobFailed(PreflightError):
    """The import job ran, and Pinpoint says it FAILED. ``response`` is its answer."""

    exit_code = 1

    def __init__(self, response: Mapping[str, Any]) -> None:
        job = response.get("ImportJobResponse", {})
        super().__init__(
            f"import job {job.get('Id')} FAILED: {job.get('FailedPieces', 0)} of "
            f"{job.get('TotalPieces', 0)} pieces failed, {job.get('TotalFailures', 0)} "
            "endpoint definitions failed"
        )
        self.response = response


class Interrupted(PreflightError):
    """The run was interrupted; partial outputs were removed."""

    exit_code = 130


# errno -> (the words for it, the exception class). A path that is missing or of the wrong
# kind is the caller's mistake (252, as the contract says); the rest is the environment (253).
_ERRNO: dict[int, tuple[str, type[PreflightError]]] = {
    errno.ENOENT: ("no such file or folder", UsageError),
    errno.EISDIR: ("is a folder, not a file", UsageError),
    errno.ENOTDIR: ("a part of the path is not a folder", UsageError),
    errno.EACCES: ("permission denied", LocalPathError),
    errno.EPERM: ("operation not permitted", LocalPathError),
    errno.ENAMETOOLONG: ("file name too long", LocalPathError),
    errno.EROFS: ("read-only file system", LocalPathError),
    errno.ENOSPC: ("no space left on the device", LocalPathError),
    errno.EDQUOT: ("disk quota exceeded", LocalPathError),
    errno.EFBIG: ("file too large for the file system", LocalPathError),
    errno.ELOOP: ("too many levels of symbolic links", LocalPathError),
    errno.EIO: ("input/output error", LocalPathError),
    errno.EMFILE: ("too many open files", LocalPathError),
    errno.ENFILE: ("too many open files in the system", LocalPathError),
    errno.EBUSY: ("device or resource busy", LocalPathError),
    errno.ETXTBSY: ("file busy", LocalPathError),
    errno.EEXIST: ("already exists", UsageError),
    errno.ENXIO: ("no such device (a FIFO without a reader?)", LocalPathError),
}


def display_path(path: str | bytes | os.PathLike[Any]) -> str:
    """A local path as text that can always be printed: bytes that are not UTF-8 are shown
    as ``\\xff`` escapes (the file system gives them to Python as surrogates)."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", "backslashreplace")


def from_os_error(
    exc: OSError,
    path: str | bytes | os.PathLike[Any] | None = None,
    *,
    action: str | None = None,
    option: str | None = None,
) -> PreflightError:
    """The one mapping from an ``OSError`` of the local file system to the tool's errors.

    One line: ``[<action> ]<path>: <reason>`` (``action`` such as ``cannot write``); ``path``
    defaults to the one the error names. A missing path or one of the wrong kind given for
    ``option`` is an :class:`OptionError` naming it. Unknown errnos are the environment (253),
    never "unexpected".
    """
    where = path if path is not None else exc.filename
    words, kind = _ERRNO.get(exc.errno or 0, (None, LocalPathError))
    if words is None:
        words = (exc.strerror or type(exc).__name__).lower()
    shown = f"{display_path(where)}: {words}" if where is not None else words
    if kind is UsageError and option:
        return OptionError(option, shown)
    return kind(f"{action} {shown}" if action else shown)


class Terminated(Interrupted):
    """The run got SIGTERM; partial outputs were removed."""

    exit_code = 143
