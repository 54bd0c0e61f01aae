"""pinpoint-preflight: check Amazon Pinpoint endpoint-import data before create-import-job.

    import validator
    report = validator.preflight("exports/", format="CSV", max_failure_rate="1%")
    report.job_status          # "COMPLETED" or "FAILED" (Pinpoint's meaning)
    report.passed              # the gate: within the tolerance
    report.to_dict()           # the ImportJobResponse-shaped report (schemas/report.schema.json)
    report.failure_problems    # the first failed records' problems, as ProblemDetail objects
    validator.split("big.csv", to="s3://bucket/jobs/", format="CSV")   # a SplitResult
    validator.rules()          # the rule table

Errors are subclasses of PreflightError, each with the exit code the command line uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from validator.errors import (
    ConfigError,
    ImportJobFailed,
    Interrupted,
    PreflightError,
    PreflightFailed,
    ServiceError,
    SourceError,
    Terminated,
    UsageError,
)
from validator.gate import Tolerance
from validator.settings import AwsSettings

if TYPE_CHECKING:
    from validator.details import ProblemDetail
    from validator.engine import preflight
    from validator.launch import create_import_job
    from validator.launch_split import get_import_job, launch_manifest
    from validator.report import REPORT_VERSION, Report
    from validator.ruletable import explain, rules
    from validator.write import SplitResult, split

__all__ = [
    "REPORT_VERSION",
    "AwsSettings",
    "ConfigError",
    "ImportJobFailed",
    "Interrupted",
    "PreflightError",
    "PreflightFailed",
    "ProblemDetail",
    "Report",
    "ServiceError",
    "SourceError",
    "SplitResult",
    "Terminated",
    "Tolerance",
    "UsageError",
    "create_import_job",
    "explain",
    "get_import_job",
    "launch_manifest",
    "preflight",
    "rules",
    "split",
]

__version__ = "0.1.0"

# Imported when first asked for: ``import validator`` (and so ``import validator.cli``) loads
# no numpy or pyarrow, so the command line can set up before they load, and the later stages
# (split, launch) only when used. help(validator) and dir() list them all the same.
_LAZY = {
    "ProblemDetail": "validator.details",
    "preflight": "validator.engine",
    "REPORT_VERSION": "validator.report",
    "Report": "validator.report",
    "explain": "validator.ruletable",
    "rules": "validator.ruletable",
    "split": "validator.write",
    "SplitResult": "validator.write",
    "create_import_job": "validator.launch",
    "get_import_job": "validator.launch_split",
    "launch_manifest": "validator.launch_split",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'validator' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
