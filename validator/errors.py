"""The exception tree, and the exit code each class means.

    PreflightError        255  anything unexpected
    ├── UsageError        252  bad option, bad value, malformed request, no such local path
    ├── ConfigError       253  no credentials, unknown profile, bad region
    ├── SourceError       254  S3 answered with an error (no bucket or key, denied, throttled)
    ├── ServiceError      254  Pinpoint answered with an error, or did not answer
    ├── PreflightFailed     1  the preflight found failures; carries the report
    ├── ImportJobFailed     1  the import ran and Pinpoint says FAILED; carries its response
    └── Interrupted       130  Ctrl-C; partial outputs were removed

Library callers catch these classes; the CLI maps them to exit codes through ``exit_code``
and nowhere else.
"""

from __future__ import annotations

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


class ConfigError(PreflightError):
    """AWS configuration is missing or wrong: credentials, profile, region."""

    exit_code = 253


class SourceError(PreflightError):
    """Reading the input failed: S3 or the file system answered with an error.

    ``transient`` tells a pipeline whether to retry: True for throttling, timeouts, lost
    connections and server errors; False for what a retry cannot change (no such bucket, key
    or prefix, access denied, wrong region). ``code`` is S3's error code when it gave one.
    """

    exit_code = 254
    transient = False
    code: str | None = None


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
        super().__init__(message or f"preflight failed: {report.total_failures} failed records")
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
