"""Stage 6, the report: Pinpoint's ImportJobResponse members, plus what a preflight knows more.

``Report.to_dict()`` is the JSON report of the contract (its shape: ``ReportVersion`` and
``schemas/report.schema.json``); :mod:`validator.render` prints it, after a JMESPath
``--query`` as the AWS CLI applies it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from typing import Any

from validator.details import ProblemDetail
from validator.errors import UsageError
from validator.gate import Tolerance, evaluate

FIRST = 100  # Pinpoint keeps the first 100 failures; so does the report
REPORT_VERSION = "1.1"  # the shape of to_dict(): schemas/report.schema.json


@cache
def tool_version() -> str:
    """The package's version: ``validator.__version__``, which tests/test_packaging.py holds
    equal to the installed metadata's (reading the metadata costs importlib.metadata and the
    email package on every start-up)."""
    import validator

    return validator.__version__


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Report:
    """The verdict of one preflight run. ``to_dict()`` gives the contract's JSON report."""

    definition: dict[str, Any]
    application_id: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    creation_date: str = field(default_factory=now_iso)
    completion_date: str | None = None
    total_processed: int = 0
    total_failures: int = 0
    failures: list[str] = field(default_factory=list)
    job_failures: list[str] = field(default_factory=list)
    total_warnings: int = 0
    warnings: list[str] = field(default_factory=list)
    failures_by_code: dict[str, int] = field(default_factory=dict)
    warnings_by_code: dict[str, int] = field(default_factory=dict)
    pieces: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    strict: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    failure_details: list[dict[str, Any]] = field(default_factory=list)
    warning_details: list[dict[str, Any]] = field(default_factory=list)
    file_failures: int = 0  # of total_failures: files that failed as a whole
    tolerance: Tolerance | None = None
    split: dict[str, Any] | None = None  # {"ValidOnly", "Totals"} once a split wrote pieces

    @property
    def total_pieces(self) -> int:
        return len(self.pieces)

    @property
    def failed_pieces(self) -> int:
        return sum(1 for p in self.pieces if p["Status"] == "FAILED")

    @property
    def completed_pieces(self) -> int:
        return self.total_pieces - self.failed_pieces

    @property
    def job_status(self) -> str:
        """``COMPLETED`` when no record, file or job-level rule failed, else ``FAILED``."""
        return (
            "FAILED"
            if self.total_failures or self.job_failures or self.failed_pieces
            else "COMPLETED"
        )

    @property
    def failure_problems(self) -> list[ProblemDetail]:
        """``FailureDetails`` as objects: the first failed records' problems."""
        return [ProblemDetail(**d) for d in self.failure_details]

    @property
    def warning_problems(self) -> list[ProblemDetail]:
        """``WarningDetails`` as objects."""
        return [ProblemDetail(**d) for d in self.warning_details]

    def gate(self) -> dict[str, Any]:
        """The ``Gate`` member: limits, counts and verdict (see :mod:`validator.gate`)."""
        return evaluate(self, self.tolerance, self.split)

    @property
    def passed(self) -> bool:
        """Whether the pipeline may go on: the gate's verdict (``JobStatus`` is Pinpoint's)."""
        return self.gate()["Verdict"] == "PASSED"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ReportVersion": REPORT_VERSION,
            "ToolVersion": tool_version(),
            "ApplicationId": self.application_id,
            "Id": self.id,
            "Type": "IMPORT",
            "JobStatus": self.job_status,
            "CreationDate": self.creation_date,
            "CompletionDate": self.completion_date,
            "Definition": self.definition,
            "TotalPieces": self.total_pieces,
            "CompletedPieces": self.completed_pieces,
            "FailedPieces": self.failed_pieces,
            "TotalProcessed": self.total_processed,
            "TotalFailures": self.total_failures,
            "Failures": self.failures,
            "JobFailures": self.job_failures,
            "TotalWarnings": self.total_warnings,
            "Warnings": self.warnings,
            "FailuresByCode": dict(sorted(self.failures_by_code.items())),
            "WarningsByCode": dict(sorted(self.warnings_by_code.items())),
            "FailureDetails": self.failure_details,
            "WarningDetails": self.warning_details,
            "Gate": self.gate(),
            "Strict": self.strict,
            "Pieces": self.pieces,
            "Files": self.files,
        }
        out.update(self.extra)
        return out


def compile_query(query: str | None) -> Any:
    """The compiled JMESPath expression, or None; a bad one is a usage error, said in one line."""
    if not query:
        return None
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(query)
    except JMESPathError as exc:
        first = str(exc).splitlines()[0].rstrip(":")
        raise UsageError(f"--query {query!r} is not a JMESPath expression: {first}") from exc


def apply_query(data: Any, query: str | None) -> Any:
    compiled = compile_query(query)
    return data if compiled is None else compiled.search(data)


def render(data: Any, output: str = "json", query: str | None = None, title: str = "") -> str:
    """The text for stdout (see :mod:`validator.render`), without its final newline."""
    from validator.render import render as _render

    return _render(data, output, query, title).removesuffix("\n")


def summary_lines(d: dict[str, Any]) -> list[str]:
    """The human summary's lines (see :mod:`validator.summary`)."""
    from validator.summary import summary_lines as _lines

    return _lines(d)
