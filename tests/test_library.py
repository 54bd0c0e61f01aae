"""The library as a caller sees it: __all__ pinned, every public function in help(validator),
py.typed, the problem objects and SplitResult exported, errors naming the parameter."""

from __future__ import annotations

import inspect
import pydoc
import re
from pathlib import Path

import pytest

import validator

ROOT = Path(__file__).parent.parent
EXAMPLE = str(ROOT / "examples" / "endpoints.csv")


def test_all_is_pinned():
    assert validator.__all__ == [
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
    for name in validator.__all__:
        assert getattr(validator, name) is not None
    assert set(validator.__all__) <= set(dir(validator))


def test_every_public_function_and_class_is_in_help():
    text = pydoc.render_doc(validator, renderer=pydoc.plaintext)
    functions = text.split("FUNCTIONS")[1].split("DATA")[0]
    listed = set(re.findall(r"^    (\w+)\(", functions, re.M))
    public = {n for n in validator.__all__ if inspect.isfunction(getattr(validator, n))}
    assert public == {
        "create_import_job", "explain", "get_import_job", "launch_manifest", "preflight",
        "rules", "split",
    }  # fmt: skip
    assert public <= listed
    classes = text.split("CLASSES")[1].split("FUNCTIONS")[0]
    for name in ("Report", "SplitResult", "ProblemDetail", "Tolerance", "PreflightError"):
        assert re.search(rf"^    class {name}\b", classes, re.M), name


def test_the_package_is_typed():
    assert (Path(validator.__file__).parent / "py.typed").is_file()


def test_problem_objects_and_split_result(tmp_path):
    report = validator.preflight(EXAMPLE, format="CSV")
    first = report.failure_problems[0]
    assert isinstance(first, validator.ProblemDetail)
    assert (first.line, first.field, first.code, first.value, first.suggestion) == (
        4, "Address", "ADDRESS_E164", "+1 (206) 555-0100", "+12065550100",
    )  # fmt: skip
    assert [p.code for p in report.warning_problems] == ["LOCALE", "COUNTRY_CODE"]
    result = validator.split(
        EXAMPLE, to=str(tmp_path / "out"), format="CSV", valid_only=True,
        rejects=str(tmp_path / "rejects.csv"),
    )  # fmt: skip
    assert isinstance(result, validator.SplitResult)
    assert result.passed and result.job_status == "FAILED"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: validator.preflight(EXAMPLE, workers=0), "workers: must be at least 1"),
        (lambda: validator.preflight(EXAMPLE, pieces=0), "pieces: must be at least 1"),
        (lambda: validator.preflight(EXAMPLE, piece_size="lots"), "piece_size: 'lots' is not"),
        (lambda: validator.preflight(EXAMPLE, max_job_size=0), "max_job_size"),
        (lambda: validator.preflight(EXAMPLE, max_failures=-1), "max_failures must be 0 or"),
        (lambda: validator.preflight(EXAMPLE, max_failure_rate=2), "max_failure_rate must be"),
        (lambda: validator.split(EXAMPLE, to="x", valid_only=True), "valid_only needs a rejects"),
        (lambda: validator.split(EXAMPLE, to="x", rejects="r.csv"), "rejects goes with valid_only"),
        (lambda: validator.explain("NOPE"), "no rule 'NOPE'"),
    ],
)
def test_library_errors_name_the_parameter_not_the_flag(call, message):
    with pytest.raises(validator.UsageError) as caught:
        call()
    assert str(caught.value).startswith(message), str(caught.value)
    assert "--" not in str(caught.value).split(":")[0]
