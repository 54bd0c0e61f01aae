"""validator.rules(), `pinpoint-preflight rules` and `explain CODE`: every rule from
schemas/, each with a failing and a passing example, and the record examples hold true."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_inprocess import run_cli

import validator

ROOT = Path(__file__).parent.parent
EXE = shutil.which("pinpoint-preflight")
RULES = json.loads((ROOT / "schemas" / "rules.json").read_text())["rules"]
EXAMPLES = json.loads((ROOT / "schemas" / "rule-examples.json").read_text())["examples"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """In-process, but for --version (the installed command's own)."""
    if args != ("--version",):
        return run_cli(*args)
    cmd = [EXE, *args] if EXE else [sys.executable, "-m", "validator", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_every_rule_is_in_the_table_with_both_examples():
    table = validator.rules()
    assert [r["Code"] for r in table] == [r["code"] for r in RULES]
    for row, rule in zip(table, RULES, strict=True):
        assert row["Severity"] == rule["severity"]
        assert row["Source"] == rule["source"] and row["Checks"] == rule["description"]
        assert isinstance(row["FailingExample"], str) and isinstance(row["PassingExample"], str)
    assert set(EXAMPLES) == {r["code"] for r in RULES}
    assert next(r for r in table if r["Code"] == "ADDRESS_E164")["Fields"] == ["Address"]


RECORD_EXAMPLES = sorted(code for code, e in EXAMPLES.items() if "field" in e)


def _csv(columns: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerow(columns.values())
    return out.getvalue()


@pytest.mark.parametrize("code", RECORD_EXAMPLES)
def test_the_record_examples_fail_and_pass_as_they_say(code, tmp_path):
    example = EXAMPLES[code]
    codes = {}
    for kind in ("fail", "pass"):
        path = tmp_path / f"{kind}.csv"
        path.write_text(_csv({**example["with"], example["field"]: example[kind]}))
        d = validator.preflight(str(path), format="CSV").to_dict()
        codes[kind] = {**d["FailuresByCode"], **d["WarningsByCode"]}
    assert code in codes["fail"], codes
    assert code not in codes["pass"], codes


def test_rules_lists_a_line_per_rule_and_takes_the_output_options():
    r = cli("rules")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert len(lines) == len(RULES)
    assert lines[0].startswith("FILE_COMPRESSED ") and " error " in lines[0]
    address = next(line for line in lines if line.startswith("ADDRESS_E164 "))
    assert address.split()[:3] == ["ADDRESS_E164", "error", "Address:"]
    assert address.endswith(
        "no spaces, dashes or brackets)  "
        "<https://docs.aws.amazon.com/pinpoint/latest/userguide/segments-importing.html>"
    )
    assert all(re.search(r"  <https://[^ ]+>$", line) for line in lines), lines
    j = cli("rules", "--output", "json", "--query", "[?Severity=='warning'].Code")
    assert json.loads(j.stdout) == [r["code"] for r in RULES if r["severity"] == "warning"]


def test_explain_prints_one_rule_with_its_examples():
    r = cli("explain", "address_e164")
    assert r.returncode == 0
    assert r.stdout.splitlines() == [
        "ADDRESS_E164: an SMS or VOICE Address not in E.164 ('+', 1 to 15 digits, no leading "
        "zero, no spaces, dashes or brackets)",
        "  severity: error",
        "  stage:    field",
        "  fields:   Address",
        '  fails:    "+1 (206) 555-0100"',
        '  passes:   "+12065550100"',
        "  source:   https://docs.aws.amazon.com/pinpoint/latest/userguide/segments-importing.html",
    ]


def test_explain_an_unknown_code_is_a_usage_error_with_near_codes():
    r = cli("explain", "ADRESS")
    assert r.returncode == 252
    assert "did you mean ADDRESS_E164 or ADDRESS_EMAIL?" in r.stderr


def test_version_help_and_the_help_word():
    v = cli("--version")
    assert v.returncode == 0 and v.stdout.startswith(f"pinpoint-preflight/{validator.__version__} ")
    for args in (["-h"], ["help"], ["validate", "help"], ["validate", "-h"], ["split", "help"]):
        r = cli(*args)
        assert r.returncode == 0, (args, r.stderr)
        assert r.stdout.startswith("Usage: pinpoint-preflight")
        assert "Exit codes:" in r.stdout and "254  S3 or Pinpoint" in r.stdout
        assert "Examples:" in r.stdout
    listed = cli("--help").stdout.split("Commands:\n")[1].split("\n\n")[0]
    commands = [line.split()[0] for line in listed.splitlines() if line.startswith("  ")]
    assert commands == [
        "validate", "split", "rules", "explain",
        "create-import-job", "get-import-job", "create-import-jobs",
    ]  # fmt: skip
    for command in commands:
        text = cli(command, "--help").stdout
        assert "Examples:\n    pinpoint-preflight " in text, command
        assert "Exit codes:\n    0    " in text and "130  interrupted (Ctrl-C)" in text, command
    text = cli("validate", "--help").stdout
    assert "json, yaml, yaml-stream, text, table, summary, github, junit, off" in " ".join(
        text.split()
    )


def option_blocks(help_text: str) -> dict[str, str]:
    """Each option's lines in a --help, by its flag (the text re-flowed)."""
    options = help_text.split("Options:\n")[1].split("\n\n")[0]
    blocks: dict[str, list[str]] = {}
    flag = ""
    for line in options.splitlines():
        if line.startswith("  -"):
            flag = line.split()[0]
            if flag == "-q,":
                flag = "--quiet"
            blocks[flag] = []
        blocks[flag].append(line)
    return {f: " ".join(" ".join(lines).split()) for f, lines in blocks.items()}


SHARED = [
    "--output", "--query", "--failures-out", "--strict", "--workers", "--progress", "--profile",
    "--region", "--no-sign-request", "--max-failures", "--max-failure-rate", "--quiet",
    "--scheduler",
]  # fmt: skip


def test_the_commands_that_run_a_preflight_share_one_definition_of_each_option():
    """validate, split and create-import-job take the same options from one place: each
    shared option's --help text is the same in all three (get-import-job and
    create-import-jobs take the printing and profile ones)."""
    helps = {c: option_blocks(cli(c, "--help").stdout) for c in ("validate", "split")}
    helps["create-import-job"] = option_blocks(cli("create-import-job", "--help").stdout)
    for flag in SHARED:
        texts = {command: blocks[flag] for command, blocks in helps.items()}
        assert len(set(texts.values())) == 1, texts
    for command in ("get-import-job", "create-import-jobs"):
        blocks = option_blocks(cli(command, "--help").stdout)
        for flag in ("--output", "--query", "--profile", "--region"):
            assert blocks[flag] == helps["validate"][flag], (command, flag)
    assert helps["validate"]["--endpoint-url"].startswith("--endpoint-url <str> The S3 endpoint")
    assert helps["create-import-job"]["--endpoint-url"].startswith(
        "--endpoint-url <str> The Pinpoint endpoint"
    )
