"""The installed command end to end: exit codes, output forms, --failures-out, --query."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parent.parent / "examples"
EXE = shutil.which("pinpoint-preflight")


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [EXE, *args] if EXE else [sys.executable, "-m", "validator", *args]
    return subprocess.run(
        cmd, input=stdin.decode() if stdin else None, capture_output=True, text=True, timeout=120
    )


def test_exit_0_on_clean_data_with_the_json_report():
    r = cli("validate", str(DATA / "aws_docs_example.csv"), "--format", "CSV")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["JobStatus"] == "COMPLETED" and d["TotalProcessed"] == 5
    assert r.stderr == ""


def test_exit_1_on_failures_and_failures_out_has_every_problem(tmp_path):
    out = tmp_path / "problems.ndjson"
    r = cli(
        "validate",
        str(EXAMPLES / "endpoints.csv"),
        "--format",
        "CSV",
        "--output",
        "json",
        "--failures-out",
        str(out),
    )
    assert r.returncode == 1
    d = json.loads(r.stdout)
    assert d["JobStatus"] == "FAILED"
    problems = [json.loads(x) for x in out.read_text().splitlines()]
    assert {p["severity"] for p in problems} == {"error", "warning"}
    errors = {(p["line"], p["code"]) for p in problems if p["severity"] == "error"}
    assert (4, "ADDRESS_E164") in errors
    assert (5, "CHANNEL_TYPE") in errors
    assert d["TotalFailures"] == len({p["line"] for p in problems if p["severity"] == "error"})
    for p in problems:
        assert set(p) == {"source", "line", "piece", "field", "code", "severity", "message"}


def test_summary_output_is_a_readable_verdict():
    r = cli("validate", str(EXAMPLES / "endpoints.csv"), "--format", "CSV", "--output", "summary")
    assert r.returncode == 1
    assert r.stdout.startswith("Preflight FAILED")
    assert "ADDRESS_E164" in r.stdout
    assert "First failures:" in r.stdout


def test_query_applies_jmespath_to_the_report():
    r = cli(
        "validate",
        str(DATA / "aws_docs_example.json"),
        "--format",
        "JSON",
        "--query",
        "[JobStatus, TotalProcessed]",
        "--output",
        "text",
    )
    assert r.returncode == 0
    assert r.stdout.strip() == "COMPLETED\t5"


def test_stdin_is_a_source():
    data = (DATA / "aws_docs_example.json").read_bytes()
    r = cli("validate", "-", "--format", "JSON", "--query", "TotalProcessed", stdin=data)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "5"


@pytest.mark.parametrize(
    "args,needle",
    [
        (["validate", "x.csv", "--bogus"], "No such option"),
        (["validate", str(DATA / "aws_docs_example.csv"), "--format", "XML"], "--format"),
        (["validate", str(DATA / "aws_docs_example.csv"), "--output", "html"], "--output"),
        (["validate", "/no/such/file.csv"], "no such file"),
        (["validate", str(DATA / "aws_docs_example.csv"), "--piece-size", "lots"], "--piece-size"),
        (["validate", str(DATA / "aws_docs_example.csv"), "--workers", "0"], "--workers"),
        (["validate", str(DATA / "aws_docs_example.csv"), "--query", "[["], "--query"),
        (["validate", str(DATA)], "--format"),
    ],
)
def test_usage_errors_exit_252_with_one_line_and_no_traceback(args, needle):
    r = cli(*args)
    assert r.returncode == 252, (r.stdout, r.stderr)
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == ""


def test_python_dash_m_behaves_like_the_command():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "validator",
            "validate",
            str(DATA / "aws_docs_example.csv"),
            "--query",
            "JobStatus",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0
    assert json.loads(r.stdout) == "COMPLETED"


def test_yaml_output_is_the_same_report():
    import yaml

    r = cli("validate", str(DATA / "aws_docs_example.csv"), "--output", "yaml")
    assert r.returncode == 0
    d = yaml.safe_load(r.stdout)
    assert d["JobStatus"] == "COMPLETED" and d["TotalProcessed"] == 5 and d["Type"] == "IMPORT"
