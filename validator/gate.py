"""The pipeline gate: whether a run lets the pipeline go on, within a tolerance of failures.

``JobStatus`` keeps Pinpoint's meaning (``FAILED`` as soon as one record fails). The gate is
the separate question a pipeline asks: with ``max_failures`` and/or ``max_failure_rate`` a
known share of bad records passes, and ``split(valid_only=True)`` passes when every failed
record went to the rejects and the pieces hold only records that passed. A job-level failure
(``JOB_EMPTY``, ``JOB_TOO_LARGE``, ...) never passes, and neither does a file that failed as a
whole, except when a split sent it whole to the rejects: tolerating "one failure" must not
tolerate a file of a million records that could not be read.

The verdict is the report's ``Gate`` member; the CLI exits 0 when it is ``PASSED``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from validator.errors import UsageError

__all__ = ["Tolerance", "evaluate", "parse_max_failures", "parse_rate"]


def parse_rate(value: str | float | None, name: str = "max_failure_rate") -> float | None:
    """A failure rate from a fraction (``0.05``) or a percentage (``"5%"``), 0 to 1."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        rate = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise UsageError(
            f"{name} must be a fraction (0.05) or a percentage (5%), not {value!r}"
        ) from None
    if not math.isfinite(rate) or not 0 <= rate <= 1:
        raise UsageError(
            f"{name} must be from 0 to 1 as a fraction (0.05) or from 0% to 100%, not {value!r}"
        )
    return rate


def parse_max_failures(value: int | str | None, name: str = "max_failures") -> int | None:
    """A count of failed records, 0 or more."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise UsageError(f"{name} must be a whole number of records, not {value!r}")
    try:
        count = int(str(value).strip())
    except ValueError:
        raise UsageError(f"{name} must be a whole number of records, not {value!r}") from None
    if count < 0:
        raise UsageError(f"{name} must be 0 or more, not {value!r}")
    return count


@dataclass(frozen=True)
class Tolerance:
    """How many failed records a run may have and still pass the gate (both when both)."""

    max_failures: int | None = None
    max_failure_rate: float | None = None

    @classmethod
    def of(
        cls,
        max_failures: int | str | None = None,
        max_failure_rate: str | float | None = None,
        *,
        names: tuple[str, str] = ("max_failures", "max_failure_rate"),
    ) -> Tolerance | None:
        """The tolerance these values give, checked, or None when neither is given."""
        count = parse_max_failures(max_failures, names[0])
        rate = parse_rate(max_failure_rate, names[1])
        if count is None and rate is None:
            return None
        return cls(count, rate)


def evaluate(
    report: Any, tolerance: Tolerance | None, split: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``Gate`` member for a report (``split``: ``{"ValidOnly", "Totals"}`` of a split)."""
    records = report.total_processed
    file_failures = report.file_failures
    record_failures = report.total_failures - file_failures
    job_failures = len(report.job_failures)
    rate = record_failures / records if records else 0.0
    valid_only = bool(split and split.get("ValidOnly"))
    out: dict[str, Any] = {
        "MaxFailures": tolerance.max_failures if tolerance else None,
        "MaxFailureRate": tolerance.max_failure_rate if tolerance else None,
        "Records": records,
        "FailedRecords": record_failures,
        "FailedFiles": file_failures,
        "JobFailures": job_failures,
        "FailureRate": round(rate, 6),
        "Verdict": "PASSED",
        "Reason": "",
    }

    def fail(reason: str) -> dict[str, Any]:
        out["Verdict"] = "FAILED"
        out["Reason"] = reason
        return out

    if job_failures:
        return fail("a job-level rule failed (JobFailures)")
    if not records and not file_failures:
        return fail("no record was read")
    if valid_only:
        assert split is not None
        totals = split["Totals"]
        if totals["PieceRecords"] == 0:
            return fail("no record passed: the pieces are empty")
        if totals["PieceRecords"] + totals["RejectedRecords"] != totals["InputRecords"]:
            return fail("records are missing from the pieces and the rejects")
    elif file_failures:
        return fail(f"{file_failures} file(s) failed as a whole")
    if tolerance is None:
        if record_failures and not valid_only:
            return fail(f"{record_failures:,} record(s) failed and no tolerance was given")
        out["Reason"] = (
            "every failed record went to the rejects" if record_failures else "no record failed"
        )
        return out
    if tolerance.max_failures is not None and record_failures > tolerance.max_failures:
        return fail(
            f"{record_failures:,} failed records exceed max failures {tolerance.max_failures:,}"
        )
    if tolerance.max_failure_rate is not None and rate > tolerance.max_failure_rate:
        return fail(
            f"failure rate {rate:.4%} exceeds max failure rate {tolerance.max_failure_rate:.4%}"
        )
    out["Reason"] = "within tolerance" if record_failures else "no record failed"
    return out
