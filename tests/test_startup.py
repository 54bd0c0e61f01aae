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
# Not needed to check a small local CSV: the time-zone list (only when a Demographic.Timezone
# value is checked), the NDJSON reader and msgspec, the repair stage, the process pool.
NOT_FOR_A_SMALL_CSV = (
    "zoneinfo",
    "validator.read_json",
    "validator.json_struct",
    "msgspec",
    "validator.repair",
    "concurrent.futures.process",
    "multiprocessing",
    "importlib.metadata",  # the report's version is validator.__version__
    "email",
)


def run_probe(*args: str) -> tuple[int, set[str], subprocess.CompletedProcess[str]]:
    code, modules, r = run_probe_modules(*args)
    return code, {m.split(".")[0] for m in modules}, r


def run_probe_modules(*args: str) -> tuple[int, set[str], subprocess.CompletedProcess[str]]:
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120
    )
    last = json.loads(r.stderr.rstrip("\n").rsplit("\n", 1)[-1])
    return last["code"], set(last["modules"]), r


def test_validate_of_a_small_local_csv_imports_no_s3_yaml_jmespath_or_process_pool():
    code, top, r = run_probe(
        "validate", str(DATA / "aws_docs_example.csv"), "--no-progress", "--workers", "1"
    )
    assert code == 0, r.stderr
    assert json.loads(r.stdout)["TotalProcessed"] == 5
    assert sorted(top & {*S3_STACK, *ONLY_WHEN_USED}) == []


def test_validate_of_a_small_local_csv_imports_no_time_zones_json_reader_repair_or_pool():
    code, modules, r = run_probe_modules(
        "validate", str(DATA / "aws_docs_example.csv"), "--no-progress", "--workers", "1"
    )
    assert code == 0, r.stderr
    assert sorted(modules & set(NOT_FOR_A_SMALL_CSV)) == []


def test_time_zones_json_reader_and_repair_are_imported_when_used(tmp_path):
    # a Demographic.Timezone value to check, NDJSON, --repair: each loads what it needs, and
    # the verdict on the time zone is the same as ever
    path = tmp_path / "tz.json"
    path.write_text(
        '{"ChannelType":"SMS","Address":"+12065550100","Demographic":{"Timezone":"Europe/Zurich"}}\n'
        '{"ChannelType":"SMS","Address":"+12065550101","Demographic":{"Timezone":"Mars/Base"}}\n'
    )
    code, modules, r = run_probe_modules("validate", str(path), "--no-progress", "--repair")
    assert code == 0, r.stderr
    report = json.loads(r.stdout)
    assert (report["TotalFailures"], report["TotalWarnings"]) == (0, 1)
    assert [(d["line"], d["code"]) for d in report["WarningDetails"]] == [(2, "TIMEZONE")]
    assert {"zoneinfo", "validator.read_json", "msgspec", "validator.repair"} <= modules


def test_import_validator_loads_no_numpy_or_pyarrow():
    # so that the command line sets itself up (one BLAS thread) before they load
    r = subprocess.run(
        [sys.executable, "-c", "import sys, validator; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    top = {m.split(".")[0] for m in json.loads(r.stdout.replace("'", '"'))}
    assert sorted(top & {"numpy", "pyarrow"}) == []


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
