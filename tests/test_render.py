"""--output: the AWS CLI's json, text and table compared byte for byte with awscli's own
renderers (AWS CLI v1 in a venv of its own: it pins botocore), yaml, the human summary, and the
CI forms (GitHub Actions annotations, JUnit XML)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import venv
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from ci_required import skip_unless_ci

import validator
from validator import render
from validator.report import apply_query

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "endpoints.csv"
EXE = shutil.which("pinpoint-preflight")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [EXE, *args] if EXE else [sys.executable, "-m", "validator", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture(scope="module")
def report() -> dict:
    return validator.preflight(str(EXAMPLE), format="CSV").to_dict()


# --- the AWS CLI's own renderers -------------------------------------------------------------

AWSCLI_RENDER = textwrap.dedent(
    """
    import argparse, io, json, sys
    import jmespath
    from awscli.formatter import get_formatter
    out = []
    for job in json.load(sys.stdin):
        query = jmespath.compile(job["query"]) if job["query"] else None
        args = argparse.Namespace(query=query, color="off")
        stream = io.StringIO()
        get_formatter(job["output"], args)(job["title"], job["data"], stream)
        out.append(stream.getvalue())
    json.dump(out, sys.stdout)
    """
)


@pytest.fixture(scope="session")
def awscli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with awscli (v1) installed in a venv of its own; skipped when pip cannot
    reach the package index (in CI: failed)."""
    folder = tmp_path_factory.mktemp("awscli-venv")
    venv.create(folder, with_pip=True)
    python = folder / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "awscli"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        skip_unless_ci(f"pip could not install awscli from the package index: {last}")
    return python


def aws_render(python: Path, jobs: list[tuple[object, str, str | None, str]]) -> list[str]:
    """What awscli's formatters print for each (data, output, query, title), in one process
    whose stdout is not a terminal (the table is 80 wide, as the AWS CLI's default)."""
    payload = [{"data": d, "output": o, "query": q, "title": t} for d, o, q, t in jobs]
    done = subprocess.run(
        [str(python), "-c", AWSCLI_RENDER],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


QUERIES = [
    None,
    "Gate",
    "FailureDetails[].[line, code, value]",
    "{Status: JobStatus, Failed: TotalFailures, Codes: FailuresByCode}",
    "Files",
    "FailureDetails[0]",
    "Failures",
    "TotalProcessed",
    "WarningDetails",
]


def test_json_text_and_table_are_the_aws_clis_byte_for_byte(awscli, report):
    response = {
        "ImportJobResponse": {
            "ApplicationId": "4f2d3c1b",
            "Id": "job-1",
            "JobStatus": "CREATED",
            "Type": "IMPORT",
            "CreationDate": "2026-12-02T18:00:00.000Z",
            "Definition": {"S3Url": "s3://b/p/", "Format": "CSV", "RegisterEndpoints": True},
        }
    }
    jobs = [
        (data, output, query, title)
        for data, title, queries in (
            (report, "Validate", QUERIES),
            (response, "CreateImportJob", [None, "ImportJobResponse.Definition"]),
            ({}, "Validate", [None]),
        )
        for query in queries
        for output in ("json", "text", "table")
    ]
    theirs = aws_render(awscli, jobs)
    for (data, output, query, title), expected in zip(jobs, theirs, strict=True):
        if output == "table":
            queried = apply_query(data, query) if query else data
            ours = render.table(queried, title, width=80)
        else:
            ours = render.render(data, output, query, title)
        assert ours == expected, (output, query, title)


# --- the command line ------------------------------------------------------------------------


def test_the_commands_text_and_table_are_the_aws_clis_byte_for_byte(awscli, report):
    """What the command prints in a pipe (80 wide, as the AWS CLI's table there), after
    --query, is what awscli's formatters print for the same report and query."""
    queries = ["Gate", "FailureDetails[].[line, code, value, suggestion]", "Files", "Failures"]
    jobs = [(report, o, q, "Validate") for q in queries for o in ("text", "table")]
    theirs = aws_render(awscli, jobs)
    for (_, output, query, _), expected in zip(jobs, theirs, strict=True):
        r = cli("validate", str(EXAMPLE), "--output", output, "--query", query)
        assert (r.returncode, r.stderr) == (1, "")
        assert r.stdout == expected, (output, query)


def test_json_is_indented_by_4_as_the_aws_cli(report):
    r = cli("validate", str(EXAMPLE), "--query", "Gate")
    assert r.stdout.startswith('{\n    "MaxFailures": null,\n')


def test_query_is_applied_before_text():
    r = cli(
        "validate", str(EXAMPLE), "--query", "FailureDetails[].[line, code]", "--output", "text"
    )
    assert r.stdout == "4\tADDRESS_E164\n5\tCHANNEL_TYPE\n8\tMETRIC_TYPE\n10\tOPT_OUT\n"


def test_yaml_and_yaml_stream(report):
    r = cli("validate", str(EXAMPLE), "--output", "yaml", "--query", "Gate")
    assert yaml.safe_load(r.stdout)["Verdict"] == "FAILED"
    s = cli("validate", str(EXAMPLE), "--output", "yaml-stream", "--query", "Gate")
    assert s.stdout.startswith("- ")
    assert yaml.safe_load(s.stdout) == [yaml.safe_load(r.stdout)]


def test_aws_default_output_and_the_profiles_output_are_honoured(tmp_path):
    config = tmp_path / "config"
    config.write_text("[default]\noutput = text\n[profile ci]\noutput = yaml\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_CONFIG_FILE"] = str(config)
    q = ("validate", str(EXAMPLE), "--query", "TotalProcessed")
    assert cli(*q, env=env).stdout == "10\n"  # the default profile's text
    assert cli(*q, "--profile", "ci", env=env).stdout == "10\n...\n"  # yaml
    assert cli(*q, env={**env, "AWS_PROFILE": "ci"}).stdout == "10\n...\n"
    assert cli(*q, env={**env, "AWS_DEFAULT_OUTPUT": "json"}).stdout == "10\n"
    assert cli(*q, "--output", "table", env=env).stdout.startswith("-")
    bad = cli(*q, env={**env, "AWS_DEFAULT_OUTPUT": "xml"})
    assert bad.returncode == 252 and "AWS_DEFAULT_OUTPUT must be one of json" in bad.stderr


def test_the_summary_never_merges_errors_and_warnings_and_shows_the_first_warnings():
    r = cli("validate", str(EXAMPLE), "--output", "summary")
    lines = r.stdout.splitlines()
    assert lines[1] == "Failed records: 4    Warnings: 1"
    assert "Failures by code: ADDRESS_E164 1, CHANNEL_TYPE 1, METRIC_TYPE 1, OPT_OUT 1" in lines
    assert "Warnings by code: COUNTRY_CODE 1, LOCALE 1" in lines
    at = lines.index("First warnings:")
    assert lines[at + 1].startswith(f"  {EXAMPLE}:7: Demographic.Locale: 'de-CH'")
    assert lines.index("First failures:") < at


def test_summary_and_ci_outputs_refuse_a_query():
    r = cli("validate", str(EXAMPLE), "--output", "summary", "--query", "Gate")
    assert r.returncode == 252 and "--query goes with json" in r.stderr


# --- CI outputs ------------------------------------------------------------------------------


def test_github_annotations_name_file_line_and_code():
    r = cli("validate", str(EXAMPLE), "--output", "github")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[0] == (
        f"::error file={EXAMPLE},line=4,title=ADDRESS_E164::Address: '+1 (206) 555-0100' is not "
        "E.164: '+', then 1 to 15 digits, no spaces, dashes or brackets; did you mean "
        "'+12065550100'?"
    )
    assert [line.split("::")[1].split(",")[1] for line in lines[:6]] == [
        "line=4", "line=5", "line=8", "line=10", "line=7", "line=7",
    ]  # fmt: skip
    assert lines[4].startswith("::warning ")
    assert lines[-1].startswith("::notice title=pinpoint-preflight::Preflight FAILED")
    assert len(lines) == 7


def test_github_annotations_escape_what_workflow_commands_read():
    from validator.ci import github_annotations

    d = {
        "FailureDetails": [
            {"source": "a,b:c.csv", "line": 2, "field": "F", "code": "X", "message": "50%\nnext"}
        ],
        "WarningDetails": [],
        "JobStatus": "FAILED",
        "TotalProcessed": 1,
        "TotalFailures": 1,
        "TotalPieces": 1,
        "CompletedPieces": 0,
        "FailedPieces": 1,
    }
    first = github_annotations(d).splitlines()[0]
    assert first == "::error file=a%2Cb%3Ac.csv,line=2,title=X::F: 50%25%0Anext"


def test_junit_has_a_case_per_file_and_a_failure_per_failed_record(tmp_path):
    (tmp_path / "a.csv").write_text(EXAMPLE.read_text())
    (tmp_path / "b.csv").write_text("ChannelType,Address\nEMAIL,a@example.com\n")
    (tmp_path / "c.json").write_text("{}\n")
    r = cli("validate", str(tmp_path), "--format", "CSV", "--output", "junit")
    assert r.returncode == 1
    suite = ET.fromstring(r.stdout).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {str(tmp_path / n) for n in ("a.csv", "b.csv", "c.json")}
    failures = cases[str(tmp_path / "a.csv")].findall("failure")
    assert [f.get("type") for f in failures] == [
        "ADDRESS_E164", "CHANNEL_TYPE", "METRIC_TYPE", "OPT_OUT",
    ]  # fmt: skip
    assert failures[0].text.startswith(f"{tmp_path / 'a.csv'}:4: Address:")
    assert cases[str(tmp_path / "b.csv")].find("failure") is None
    assert cases[str(tmp_path / "c.json")].find("skipped").get("message") == "not CSV: a JSON file"


def test_junit_caps_the_failures_and_says_how_many_more(tmp_path):
    rows = ["ChannelType,Address"] + ["FAX,x"] * 130
    (tmp_path / "many.csv").write_text("\n".join(rows) + "\n")
    r = cli("validate", str(tmp_path / "many.csv"), "--output", "junit")
    case = ET.fromstring(r.stdout).find("testsuite/testcase")
    failures = case.findall("failure")
    assert len(failures) == 101
    assert failures[-1].get("type") == "MORE"
    assert failures[-1].get("message") == "30 more failed records"
