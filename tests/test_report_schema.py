"""schemas/report.schema.json is a valid JSON Schema, and the reports match it. Every report
the whole suite produces is also checked at the end of the run (conftest.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
from conftest import REPORT_SCHEMA, logged_reports, report_schema_errors

import validator

ROOT = Path(__file__).parent.parent
EXE = shutil.which("pinpoint-preflight")


def test_the_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(json.loads(REPORT_SCHEMA.read_text()))


def test_passing_failing_and_split_reports_match_the_schema(tmp_path):
    reports = [
        validator.preflight(str(ROOT / "examples" / "endpoints.csv"), format="CSV").to_dict(),
        validator.preflight(str(ROOT / "examples" / "clean"), max_failures=3).to_dict(),
        validator.split(
            str(ROOT / "examples" / "endpoints.ndjson"),
            to=str(tmp_path / "out"),
            format="JSON",
            valid_only=True,
            rejects=str(tmp_path / "rejects.ndjson"),
        ).to_dict(),
    ]
    assert report_schema_errors(reports) == []


def test_a_report_that_breaks_the_schema_is_caught():
    d = validator.preflight(str(ROOT / "examples" / "endpoints.csv"), format="CSV").to_dict()
    d["Gate"]["Verdict"] = "MAYBE"
    del d["FailureDetails"][0]["code"]
    errors = report_schema_errors([d])
    assert len(errors) == 2
    assert any("Gate/Verdict" in e for e in errors)


def test_reports_of_processes_the_tests_start_are_logged_for_the_check():
    cmd = [EXE] if EXE else [sys.executable, "-m", "validator"]
    done = subprocess.run(
        [*cmd, "validate", str(ROOT / "examples" / "endpoints.csv"), "--query", "Id"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    run_id = json.loads(done.stdout)
    assert run_id in {r.get("Id") for r in logged_reports()}
