"""pinpoint-preflight: check Amazon Pinpoint endpoint-import data before create-import-job.

import validator
report = validator.preflight("exports/", format="CSV")
report.job_status          # "COMPLETED" or "FAILED"
report.to_dict()           # the ImportJobResponse-shaped report
"""

from validator.engine import preflight
from validator.errors import (
    ConfigError,
    ImportJobFailed,
    Interrupted,
    PreflightError,
    PreflightFailed,
    ServiceError,
    SourceError,
    UsageError,
)
from validator.report import Report
from validator.ruletable import rules
from validator.settings import AwsSettings

__all__ = [
    "AwsSettings",
    "ConfigError",
    "ImportJobFailed",
    "Interrupted",
    "PreflightError",
    "PreflightFailed",
    "Report",
    "ServiceError",
    "SourceError",
    "UsageError",
    "create_import_job",
    "preflight",
    "rules",
    "split",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # split and create_import_job live in later stages; import them only when asked for.
    if name == "split":
        from validator.write import split

        return split
    if name == "create_import_job":
        from validator.launch import create_import_job

        return create_import_job
    raise AttributeError(name)
