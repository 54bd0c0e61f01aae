"""Start-up: a command imports what it needs when it needs it (behaviour, not timing).

Each test runs the real ``python -m validator`` in a fresh interpreter and looks at the modules
it ended with (``sys.modules`` when the command has returned), so nothing another test imported
can hide an eager import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"

# Run the command as ``python -m validator`` does, then print what it imported (and its exit
# code) as the last line of stderr.
PROBE = """
import json, runpy, sys
sys.argv = ["validator", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("validator", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
sys.stderr.write("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules)}) + "\\n")
"""

S3_STACK = ("boto3", "botocore", "smart_open", "s3transfer")
ONLY_WHEN_USED = ("yaml", "jmespath")


def run_probe(*args: str) -> tuple[int, set[str], subprocess.CompletedProcess[str]]:
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120
    )
    last = json.loads(r.stderr.rstrip("\n").rsplit("\n", 1)[-1])
    return last["code"], {m.split(".")[0] for m in last["modules"]}, r


def test_validate_of_a_small_local_csv_imports_no_s3_yaml_jmespath_or_process_pool():
    code, top, r = run_probe(
        "validate", str(DATA / "aws_docs_example.csv"), "--no-progress", "--workers", "1"
    )
    assert code == 0, r.stderr
    assert json.loads(r.stdout)["TotalProcessed"] == 5
    assert sorted(top & {*S3_STACK, *ONLY_WHEN_USED}) == []


def test_validate_with_process_workers_still_imports_no_s3_stack(tmp_path):
    code, top, r = run_probe(
        "validate",
        str(DATA / "aws_docs_example.csv"),
        "--no-progress",
        "--workers",
        "2",
        "--output",
        "text",
    )
    assert code == 0, r.stderr
    assert sorted(top & set(S3_STACK)) == []


@pytest.mark.parametrize(
    ("extra", "module"),
    [(("--output", "yaml"), "yaml"), (("--query", "TotalProcessed"), "jmespath")],
)
def test_yaml_and_jmespath_are_imported_when_asked_for(extra, module):
    code, top, r = run_probe(
        "validate", str(DATA / "aws_docs_example.csv"), "--no-progress", "--workers", "1", *extra
    )
    assert code == 0, r.stderr
    assert module in top
    assert sorted(top & set(S3_STACK)) == []


def test_help_of_create_import_job_needs_no_botocore():
    code, top, r = run_probe("create-import-job", "--help")
    assert code == 0, r.stderr
    assert "--import-job-request" in r.stdout
    assert sorted(top & set(S3_STACK)) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--workers", "abc"),
            "Invalid value for '--workers': Input should be a valid integer, unable to parse "
            "string as an integer",
        ),
        (
            ("--workers", "1.5"),
            "Invalid value for '--workers': Input should be a valid integer, unable to parse "
            "string as an integer",
        ),
    ],
)
def test_option_values_typer_rejects_keep_typers_message(args, message):
    code, _top, r = run_probe("validate", str(DATA / "aws_docs_example.csv"), *args)
    assert code == 252
    assert r.stderr.startswith(f"pinpoint-preflight validate: error: {message}\n")


def test_plain_numbers_with_spaces_and_signs_parse_as_before():
    # " 1" parses as 1, as typer's own coercion does.
    code, _top, r = run_probe(
        "validate", str(DATA / "aws_docs_example.csv"), "--no-progress", "--workers", " 1"
    )
    assert code == 0, r.stderr
