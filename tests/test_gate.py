"""The pipeline gate: problems as objects, the tolerance and its Gate member, split
--valid-only, --quiet and --output off, the report's versions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_inprocess import run_cli

import validator
from validator.details import VALUE_LIMIT, suggestion_in
from validator.errors import UsageError
from validator.gate import Tolerance, parse_rate

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "endpoints.csv"  # 10 records: 4 fail, 1 has warnings
EXE = shutil.which("pinpoint-preflight")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """In-process, except where a test needs its own environment or a real process."""
    if env is None and "--quiet" not in args:
        return run_cli(*args)
    cmd = [EXE, *args] if EXE else [sys.executable, "-m", "validator", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def validate(*args: str) -> subprocess.CompletedProcess[str]:
    return cli("validate", str(EXAMPLE), "--format", "CSV", *args)


# --- problems as objects ---------------------------------------------------------------------


def test_failure_details_are_the_first_failed_records_problems_as_objects():
    d = validator.preflight(str(EXAMPLE), format="CSV").to_dict()
    src = str(EXAMPLE)
    assert d["FailureDetails"] == [
        {
            "source": src,
            "line": 4,
            "piece": 0,
            "field": "Address",
            "code": "ADDRESS_E164",
            "severity": "error",
            "message": "'+1 (206) 555-0100' is not E.164: '+', then 1 to 15 digits, no spaces, "
            "dashes or brackets; did you mean '+12065550100'?",
            "value": "+1 (206) 555-0100",
            "suggestion": "+12065550100",
        },
        {
            "source": src,
            "line": 5,
            "piece": 0,
            "field": "ChannelType",
            "code": "CHANNEL_TYPE",
            "severity": "error",
            "message": "'sms' is not a channel type; did you mean 'SMS'?",
            "value": "sms",
            "suggestion": "SMS",
        },
        {
            "source": src,
            "line": 8,
            "piece": 0,
            "field": "Metrics.visits",
            "code": "METRIC_TYPE",
            "severity": "error",
            "message": "'lots' is not a finite number",
            "value": "lots",
            "suggestion": None,
        },
        {
            "source": src,
            "line": 10,
            "piece": 0,
            "field": "OptOut",
            "code": "OPT_OUT",
            "severity": "error",
            "message": "'YES' is not an opt-out value (ALL or NONE)",
            "value": "YES",
            "suggestion": None,
        },
    ]
    assert [(w["line"], w["code"], w["value"], w["suggestion"]) for w in d["WarningDetails"]] == [
        (7, "LOCALE", "de-CH", "de_CH"),
        (7, "COUNTRY_CODE", "DEU", None),
    ]
    # Failures (the contract's strings) are unchanged and name the same records.
    assert [f.split(":")[1] for f in d["Failures"]] == ["4", "5", "8", "10"]


def test_details_keep_the_first_100_failed_records_with_values_cut(tmp_path):
    long = "x" * 5000
    rows = ["ChannelType,Address,Attributes.note"]
    rows += [f"FAX,a@example.com,{long}{i}" for i in range(150)]
    (tmp_path / "many.csv").write_text("\n".join(rows) + "\n")
    d = validator.preflight(str(tmp_path / "many.csv"), format="CSV", pieces=3).to_dict()
    assert d["TotalFailures"] == 150
    lines = sorted({p["line"] for p in d["FailureDetails"]})
    assert lines == list(range(2, 102))  # the first 100 failed records, in source order
    values = [p["value"] for p in d["FailureDetails"] if p["field"] == "ChannelType"]
    assert values == ["FAX"] * 100
    cut = [p["value"] for p in d["FailureDetails"] if p["field"] == "Attributes.note"]
    assert len(cut) == 100  # an attribute is a list: its value is shown as JSON
    assert all(len(v) == VALUE_LIMIT and v.startswith('["xxx') and v.endswith("…") for v in cut)


def test_warning_details_keep_the_first_100_warned_records(tmp_path):
    rows = ["ChannelType,Address,Location.Country"]
    rows += [f"EMAIL,user{i}@example.com,DEU" for i in range(150)]
    (tmp_path / "warned.csv").write_text("\n".join(rows) + "\n")
    d = validator.preflight(str(tmp_path / "warned.csv"), format="CSV", pieces=3).to_dict()
    assert (d["TotalWarnings"], len(d["Warnings"]), d["TotalFailures"]) == (150, 100, 0)
    assert [w["line"] for w in d["WarningDetails"]] == list(range(2, 102))
    assert {(w["code"], w["severity"], w["value"]) for w in d["WarningDetails"]} == {
        ("COUNTRY_CODE", "warning", "DEU")
    }


def test_details_are_the_same_for_one_and_several_pieces_and_workers(tmp_path):
    rows = ["ChannelType,Address,Location.Country"]
    rows += [
        f"{'FAX' if i % 3 else 'SMS'},+1206555{i:04d},{'DEU' if i % 5 else 'DE'}"
        for i in range(400)
    ]
    (tmp_path / "mixed.csv").write_text("\n".join(rows) + "\n")
    one = validator.preflight(str(tmp_path / "mixed.csv"), format="CSV").to_dict()
    many = validator.preflight(
        str(tmp_path / "mixed.csv"), format="CSV", pieces=7, workers=2
    ).to_dict()
    for key in ("FailureDetails", "WarningDetails"):
        strip = [{k: v for k, v in p.items() if k != "piece"} for p in one[key]]
        assert strip == [{k: v for k, v in p.items() if k != "piece"} for p in many[key]]
        assert all(p["value"] is not None for p in one[key])


def test_a_suggestion_is_read_from_the_message():
    assert suggestion_in("'sms' is not a channel type; did you mean 'SMS'?") == "SMS"
    assert suggestion_in("'x' is not it; did you mean 'it\\'s'?") == "it's"
    assert suggestion_in("'lots' is not a finite number") is None


# --- the gate --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rate"), [("0.05", 0.05), ("5%", 0.05), (" 40 % ", 0.4), ("0", 0.0), ("100%", 1.0)]
)
def test_a_rate_is_a_fraction_or_a_percentage(text, rate):
    assert parse_rate(text) == pytest.approx(rate)


@pytest.mark.parametrize("text", ["5", "-0.1", "lots", "nan", "101%", "1e400"])
def test_a_bad_rate_names_the_parameter(text):
    with pytest.raises(UsageError, match=r"^max_failure_rate must be"):
        parse_rate(text)
    with pytest.raises(UsageError, match=r"^max_failures must be 0 or more"):
        Tolerance.of(-1)


def test_without_a_tolerance_the_gate_is_the_job_status():
    r = validate()
    assert r.returncode == 1
    gate = json.loads(r.stdout)["Gate"]
    assert gate == {
        "MaxFailures": None,
        "MaxFailureRate": None,
        "Records": 10,
        "FailedRecords": 4,
        "FailedFiles": 0,
        "JobFailures": 0,
        "FailureRate": 0.4,
        "Verdict": "FAILED",
        "Reason": "4 record(s) failed and no tolerance was given",
    }


@pytest.mark.parametrize(
    ("args", "code", "verdict"),
    [
        (["--max-failures", "4"], 0, "PASSED"),
        (["--max-failures", "3"], 1, "FAILED"),
        (["--max-failure-rate", "40%"], 0, "PASSED"),
        (["--max-failure-rate", "0.39"], 1, "FAILED"),
        (["--max-failures", "10", "--max-failure-rate", "0.3"], 1, "FAILED"),
        (["--max-failures", "4", "--max-failure-rate", "0.5"], 0, "PASSED"),
    ],
)
def test_within_the_tolerance_the_gate_passes_and_job_status_keeps_its_meaning(args, code, verdict):
    r = validate(*args)
    assert r.returncode == code, r.stderr
    d = json.loads(r.stdout)
    assert d["JobStatus"] == "FAILED"  # Pinpoint's meaning: a record failed
    assert d["Gate"]["Verdict"] == verdict
    assert d["Gate"]["FailedRecords"] == 4


def test_a_tolerance_never_passes_a_job_level_failure():
    r = validate("--max-failure-rate", "100%", "--max-job-size", "1000")
    assert r.returncode == 1
    d = json.loads(r.stdout)
    assert d["Gate"]["Verdict"] == "FAILED"
    assert d["Gate"]["Reason"] == "a job-level rule failed (JobFailures)"
    assert d["FailureDetails"][0]["code"] == "JOB_TOO_LARGE"
    assert d["FailureDetails"][0]["line"] is None


def test_the_gate_never_passes_on_nothing(tmp_path):
    (tmp_path / "a.json").write_text("{}\n")
    r = cli("validate", str(tmp_path), "--format", "CSV", "--max-failure-rate", "100%")
    assert r.returncode == 1
    assert json.loads(r.stdout)["Gate"]["Verdict"] == "FAILED"


def test_a_tolerance_never_passes_a_file_that_failed_as_a_whole(tmp_path):
    (tmp_path / "ok.csv").write_text("ChannelType,Address\nEMAIL,a@example.com\n")
    (tmp_path / "empty.csv").write_text("ChannelType,Address\n")
    r = cli("validate", str(tmp_path), "--format", "CSV", "--max-failures", "5")
    assert r.returncode == 1
    gate = json.loads(r.stdout)["Gate"]
    assert (gate["FailedFiles"], gate["Verdict"]) == (1, "FAILED")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--max-failure-rate", "5"], "--max-failure-rate must be from 0 to 1"),
        (["--max-failure-rate", "x"], "--max-failure-rate must be a fraction"),
        (["--max-failures", "-2"], "--max-failures must be 0 or more"),
    ],
)
def test_bad_tolerances_are_usage_errors_before_any_work(args, says):
    r = validate(*args)
    assert r.returncode == 252
    assert r.stdout == ""
    assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_the_library_takes_the_tolerance():
    report = validator.preflight(str(EXAMPLE), format="CSV", max_failures=4)
    assert report.job_status == "FAILED" and report.passed
    assert not validator.preflight(str(EXAMPLE), format="CSV", max_failure_rate="1%").passed


# --- split --valid-only ----------------------------------------------------------------------


def test_split_valid_only_exits_0_when_every_failure_went_to_the_rejects(tmp_path):
    rejects = tmp_path / "rejects.csv"
    r = cli(
        "split", str(EXAMPLE), "--format", "CSV", "--to", str(tmp_path / "out"),
        "--valid-only", "--rejects", str(rejects),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["JobStatus"] == "FAILED"
    assert d["Gate"]["Verdict"] == "PASSED"
    assert d["Gate"]["Reason"] == "every failed record went to the rejects"
    assert d["Manifest"]["Totals"]["RejectedRecords"] == 4
    assert len(rejects.read_text().splitlines()) == 5  # the header and the 4 failed records


def test_split_valid_only_still_fails_past_the_tolerance(tmp_path):
    r = cli(
        "split", str(EXAMPLE), "--format", "CSV", "--to", str(tmp_path / "out"),
        "--valid-only", "--rejects", str(tmp_path / "rejects.csv"), "--max-failures", "3",
    )  # fmt: skip
    assert r.returncode == 1
    gate = json.loads(r.stdout)["Gate"]
    assert gate["Verdict"] == "FAILED"
    assert gate["Reason"] == "4 failed records exceed max failures 3"


def test_split_without_valid_only_fails_on_failures(tmp_path):
    r = cli("split", str(EXAMPLE), "--format", "CSV", "--to", str(tmp_path / "out"))
    assert r.returncode == 1


def test_split_valid_only_with_nothing_valid_fails(tmp_path):
    (tmp_path / "bad.csv").write_text("ChannelType,Address\nFAX,1\n")
    r = cli(
        "split", str(tmp_path / "bad.csv"), "--format", "CSV", "--to", str(tmp_path / "out"),
        "--valid-only", "--rejects", str(tmp_path / "rejects.csv"),
    )  # fmt: skip
    assert r.returncode == 1
    assert json.loads(r.stdout)["Gate"]["Reason"] == "no record passed: the pieces are empty"


# --- --quiet, --output off, versions --------------------------------------------------------


def test_output_off_prints_nothing_and_the_exit_code_says_it():
    r = validate("--output", "off")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "")
    assert validate("--output", "off", "--max-failures", "4").returncode == 0


def test_quiet_keeps_stderr_empty_even_with_progress_asked_for():
    r = validate("--quiet", "--progress")
    assert r.returncode == 1 and r.stderr == ""
    assert json.loads(r.stdout)["JobStatus"] == "FAILED"


def test_quiet_still_says_errors():
    r = cli("validate", "no-such-file.csv", "--quiet")
    assert r.returncode == 252 and "no-such-file.csv" in r.stderr


def test_the_report_carries_the_tool_and_report_versions():
    d = json.loads(validate().stdout)
    assert d["ToolVersion"] == validator.__version__
    assert d["ReportVersion"] == "1.1"
    assert list(d)[:2] == ["ReportVersion", "ToolVersion"]


# --- permanent and transient S3 errors -------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize("s3_server", ["moto"], indirect=True)
def test_s3_errors_say_whether_a_retry_may_help(s3_env):
    from s3_servers import closed_port

    bucket = s3_env.make_bucket("gate-errors")
    s3_env.client().put_object(Bucket=bucket, Key="a.csv", Body=b"ChannelType,Address\n")
    cases = [
        (f"s3://no-such-bucket-{bucket}/x.csv", s3_env.endpoint_url, False, "NoSuchBucket"),
        (f"s3://{bucket}/a.csv", f"http://127.0.0.1:{closed_port()}", True, None),
    ]
    for url, endpoint, transient, code in cases:
        r = cli("validate", url, "--format", "CSV", "--endpoint-url", endpoint)
        assert r.returncode == 254, r.stderr
        line = r.stderr.strip()
        assert len(line.splitlines()) == 1 and "Traceback" not in line
        if transient:
            assert line.endswith("(a transient error: retrying may succeed)")
        else:
            assert line.endswith("(a permanent error: retrying will not help)")
        error = json.loads(r.stdout)["Error"]
        assert error["Transient"] is transient
        assert error["ExitCode"] == 254 and error["Type"] == "SourceError"
        if code:
            assert error["Code"] == code
        assert error["Message"] in line
    off = cli("validate", cases[0][0], "--endpoint-url", cases[0][1], "--output", "off")
    assert (off.returncode, off.stdout) == (254, "")
