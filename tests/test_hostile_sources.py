"""Hostile sources: never a pass on nothing, option values checked before any work, and the
local file system's refusals as one line with the contract's exit code.

Every file is made by the test itself. The command runs as a subprocess (``python -m
validator``) where the exit code and the stderr line are the point; a few parametrized
variants of one path run in-process through ``cli.run``, which is the same code. Each case
also checks what was left on disk.
"""

from __future__ import annotations

import bz2
import ctypes
import gzip
import io
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from s3_servers import S3Server

import validator
from validator import cli
from validator.errors import LocalPathError, OptionError, UsageError
from validator.pieces import parse_size

HEADER = "ChannelType,Address\n"
GOOD = "SMS,+15551234567\n"
BAD = "SMS,bad\n"
E164 = "Address: 'bad' is not E.164: '+', then 1 to 15 digits, no spaces, dashes or brackets"
JSON_LINE = '{"ChannelType":"SMS","Address":"+15551234567"}\n'
ERROR = "pinpoint-preflight: error: "
ZSTD_FRAME = b"\x28\xb5\x2f\xfd\x20\x00\x01\x00\x00"  # an empty zstd frame (magic, header)


def cli_run(
    *args: str, cwd: Path, stdin: bytes | None = None, preexec: Any = None
) -> subprocess.CompletedProcess[str]:
    """``python -m validator ARGS`` in ``cwd``, so sources show as typed (relative)."""
    package_root = Path(validator.__file__).resolve().parent.parent
    return subprocess.run(
        [sys.executable, "-m", "validator", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(package_root)},
        preexec_fn=preexec,
    )  # type: ignore[call-overload, no-any-return]


def stderr_line(result: Any) -> str:
    """The one line on stderr, never a traceback."""
    text = result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr
    assert "Traceback" not in text
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def report_of(result: Any) -> dict[str, Any]:
    assert "Traceback" not in result.stderr.decode()
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def in_process(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.run(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err.strip()


def tree(root: Path) -> list[str]:
    """Everything below ``root``, as relative paths (what a run left on disk)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# --- never a pass on nothing ------------------------------------------------------------------


def test_an_empty_folder_is_job_empty(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = cli_run("validate", "empty", "--format", "CSV", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr == b""
    d = report_of(r)
    assert d["JobStatus"] == "FAILED"
    assert d["JobFailures"] == ["empty: no CSV file to read: the folder is empty [JOB_EMPTY]"]
    assert d["FailuresByCode"] == {"JOB_EMPTY": 1}
    assert (d["TotalProcessed"], d["TotalFailures"], d["TotalPieces"], d["Files"]) == (0, 0, 0, [])
    assert tree(tmp_path) == ["empty"]


def test_nothing_of_the_declared_format_says_what_was_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    for name in ("a.json", "b.json", "c.ndjson"):
        (folder / name).write_text(JSON_LINE)
    out = tmp_path / "failures.jsonl"
    r = cli_run("validate", "p/", "--format", "csv", "--failures-out", str(out), cwd=tmp_path)
    assert r.returncode == 1 and r.stderr == b""
    d = report_of(r)
    message = "no CSV file to read (3 JSON files skipped): is --format right?"
    assert d["JobFailures"] == [f"p/: {message} [JOB_EMPTY]"]
    assert [(f["Source"], f["Status"], f["Reason"]) for f in d["Files"]] == [
        ("p/a.json", "SKIPPED", "not CSV: a JSON file"),
        ("p/b.json", "SKIPPED", "not CSV: a JSON file"),
        ("p/c.ndjson", "SKIPPED", "not CSV: a JSON file"),
    ]
    assert [json.loads(x) for x in out.read_text().splitlines()] == [
        {
            "source": "p/",
            "line": None,
            "piece": None,
            "field": None,
            "code": "JOB_EMPTY",
            "severity": "error",
            "message": message,
        }
    ]
    assert tree(tmp_path) == ["failures.jsonl", "p", "p/a.json", "p/b.json", "p/c.ndjson"]


def _zip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("endpoints.csv", data)
    return buffer.getvalue()


COMPRESSORS = {
    "gzip": gzip.compress,
    "zip": _zip,
    "bzip2": bz2.compress,
    "xz": lzma.compress,
    "zstd": lambda data: ZSTD_FRAME,
}


@pytest.mark.parametrize("how", list(COMPRESSORS))
def test_a_skipped_compressed_file_is_named_as_compressed(
    tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "endpoints.csv.bin").write_bytes(COMPRESSORS[how]((HEADER + GOOD).encode()))
    (folder / "notes.json").write_text(JSON_LINE)
    code = cli.run(["validate", str(folder), "--format", "CSV"])
    captured = capsys.readouterr()
    assert (code, captured.err) == (1, "")
    report = json.loads(captured.out)
    assert report["JobFailures"] == [
        f"{folder}: no CSV file to read (1 {how}-compressed file, 1 JSON file skipped): "
        "Pinpoint can't import compressed files: decompress them [JOB_EMPTY]"
    ]
    assert report["Files"][0]["Reason"] == (
        f"not CSV: the extension is not one of .csv; {how}-compressed content"
    )


def test_files_that_hold_no_record(tmp_path: Path) -> None:
    (tmp_path / "only-header.csv").write_text(HEADER)
    (tmp_path / "packed.csv").write_bytes(gzip.compress((HEADER + GOOD).encode()))
    r = cli_run("validate", "only-header.csv", "packed.csv", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr == b""
    d = report_of(r)
    assert sorted(d["Failures"]) == [  # (file-level failures come in the fold's order)
        "only-header.csv: no record after the header [FILE_EMPTY]",
        "packed.csv: gzip-compressed content; Pinpoint can't import compressed files: "
        "decompress it first [FILE_COMPRESSED]",
    ]
    assert d["TotalFailures"] == 2 and d["TotalProcessed"] == 0
    assert d["JobFailures"] == [
        "only-header.csv, packed.csv: no record in the 2 CSV files read: see Files and "
        "Failures for why [JOB_EMPTY]"
    ]


def test_empty_standard_input_is_job_empty(tmp_path: Path) -> None:
    r = cli_run("validate", "-", "--format", "JSON", cwd=tmp_path, stdin=b"")
    assert r.returncode == 1 and r.stderr == b""
    d = report_of(r)
    assert d["Failures"] == ["-: no record [FILE_EMPTY]"]
    assert d["JobFailures"] == [
        "-: no record in the JSON file read: see Files and Failures for why [JOB_EMPTY]"
    ]


def test_split_of_an_empty_job_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = cli_run(
        "split", "empty", "--format", "CSV", "--to", "out", "--valid-only", "--rejects",
        "rejects.csv", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 1 and r.stderr == b""
    d = report_of(r)
    assert d["FailuresByCode"] == {"JOB_EMPTY": 1} and d["Manifest"] is None
    assert tree(tmp_path) == ["empty"]  # no out/, no manifest, no rejects


# --- --format and what a name says ------------------------------------------------------------


def test_a_named_file_of_the_other_format_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(JSON_LINE)
    r = cli_run("validate", "a.json", "--format", "CSV", cwd=tmp_path)
    assert r.returncode == 252 and r.stdout == b""
    assert stderr_line(r) == (
        ERROR + "--format: a.json is a JSON file by its extension, not CSV: give --format "
        "JSON, or rename it"
    )
    with pytest.raises(OptionError) as caught:
        validator.preflight(str(tmp_path / "a.json"), format="CSV")
    assert caught.value.parameter == "format"


@pytest.mark.parametrize("alias", ["NDJSON", "jsonl", "NdJson"])
def test_ndjson_and_jsonl_are_json_with_a_note(tmp_path: Path, alias: str) -> None:
    (tmp_path / "a.ndjson").write_text(JSON_LINE)
    r = cli_run("validate", "a.ndjson", "--format", alias, cwd=tmp_path)
    assert r.returncode == 0
    assert stderr_line(r) == (
        f"pinpoint-preflight: note: --format {alias} is read as JSON: Pinpoint's JSON format "
        "is newline-delimited JSON, one endpoint per line"
    )
    assert report_of(r)["Definition"]["Format"] == "JSON"


@pytest.mark.parametrize("value", ["csv", "Csv", " JSON "])
def test_format_in_any_case(tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.csv").write_text(HEADER + GOOD)
    (tmp_path / "a.json").write_text(JSON_LINE)
    name = "a.json" if "JSON" in value else "a.csv"
    assert in_process(["validate", str(tmp_path / name), "--format", value], capsys) == (0, "")


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(HEADER + GOOD)
    r = cli_run("validate", "a.csv", "--format", "XML", cwd=tmp_path)
    assert r.returncode == 252
    assert stderr_line(r) == (
        ERROR + "--format: 'XML' is not a format: CSV or JSON (newline-delimited JSON)"
    )


def test_a_folder_named_like_a_csv_file_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "x.csv" / "y.csv").mkdir(parents=True)
    (tmp_path / "x.csv" / "in.csv").write_text(HEADER + GOOD + BAD)
    r = cli_run("validate", "x.csv", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr == b""
    d = report_of(r)
    assert [f["Source"] for f in d["Files"]] == ["x.csv/in.csv"]
    assert d["Failures"] == [f"x.csv/in.csv:3: {E164} [ADDRESS_E164]"]
    assert d["TotalProcessed"] == 2


# --- standard input ---------------------------------------------------------------------------


def test_csv_on_standard_input_reads_the_header_as_the_header(tmp_path: Path) -> None:
    data = HEADER + GOOD + BAD + GOOD + BAD
    r = cli_run("validate", "-", "--format", "CSV", cwd=tmp_path, stdin=data.encode())
    assert r.returncode == 1 and r.stderr == b""
    d = report_of(r)
    assert d["TotalProcessed"] == 4
    assert d["Failures"] == [f"-:3: {E164} [ADDRESS_E164]", f"-:5: {E164} [ADDRESS_E164]"]
    assert [(p["FirstLine"], p["LastLine"], p["Records"]) for p in d["Pieces"]] == [(2, 5, 4)]


def test_a_long_header_on_standard_input(tmp_path: Path) -> None:
    """More than one pipe buffer before the first newline, then a BOM'd body."""
    names = [f"Attributes.a{i}" for i in range(3000)]
    header = "\ufeff" + ",".join(["ChannelType", "Address", *names]) + "\n"
    row = "SMS,+15551234567" + "," * len(names) + "\n"
    bad = "SMS,bad" + "," * len(names) + "\n"
    r = cli_run(
        "validate", "-", "--format", "CSV", cwd=tmp_path, stdin=(header + row + bad).encode()
    )
    assert r.returncode == 1
    d = report_of(r)
    assert d["TotalProcessed"] == 2
    assert d["Failures"] == [f"-:3: {E164} [ADDRESS_E164]"]
    assert d["WarningsByCode"] == {"FILE_BOM": 1}


def test_json_on_standard_input_counts_from_line_1(tmp_path: Path) -> None:
    data = JSON_LINE + '{"ChannelType":"SMS","Address":"bad"}\n'
    r = cli_run("validate", "-", "--format", "JSON", cwd=tmp_path, stdin=data.encode())
    assert r.returncode == 1
    assert report_of(r)["Failures"] == [f"-:2: {E164} [ADDRESS_E164]"]


@pytest.mark.parametrize("fmt", ["CSV", "JSON"])
@pytest.mark.parametrize("how", ["<(cat file)", "named pipe"])
def test_a_pipe_named_as_a_source_is_streamed_as_standard_input_is(
    tmp_path: Path, how: str, fmt: str
) -> None:
    """bash's ``<(cat file)`` (a /dev/fd/N pipe) and a named pipe: one piece, read once, the
    header the header, every line number exact (they used to be refused, exit 252)."""
    if fmt == "CSV":
        data, lines = HEADER + GOOD + BAD + GOOD + BAD, [3, 5]
    else:
        bad = '{"ChannelType":"SMS","Address":"bad"}\n'
        data, lines = JSON_LINE + bad + JSON_LINE + bad, [2, 4]
    (tmp_path / "in.data").write_text(data)
    if how == "named pipe":
        os.mkfifo(tmp_path / "pipe")

        def feed() -> None:
            with open(tmp_path / "pipe", "wb") as w:  # waits for the command to open it
                w.write(data.encode())

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        r = cli_run("validate", "pipe", "--format", fmt, "--workers", "2", cwd=tmp_path)
        writer.join(10)
        shown = "pipe"
    else:
        bash = shutil.which("bash")
        if bash is None:
            pytest.skip("no bash for <(...)")
        package_root = Path(validator.__file__).resolve().parent.parent
        r = subprocess.run(
            [bash, "-c", f"{sys.executable} -m validator validate <(cat in.data) --format {fmt}"],
            capture_output=True,
            timeout=120,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(package_root)},
        )
        shown = report_of(r)["Files"][0]["Source"]
        assert re.fullmatch(r"/dev/fd/[0-9]+", shown), shown
    assert (r.returncode, r.stderr) == (1, b"")
    d = report_of(r)
    assert d["TotalProcessed"] == 4
    assert d["Failures"] == [f"{shown}:{n}: {E164} [ADDRESS_E164]" for n in lines]
    assert [(p["FirstLine"], p["LastLine"], p["Records"]) for p in d["Pieces"]] == [
        (lines[0] - 1, lines[1], 4)
    ]
    assert [(f["Source"], f["Status"]) for f in d["Files"]] == [(shown, "FAILED")]


def test_a_pipe_needs_the_format_named(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    r = cli_run("validate", "pipe", cwd=tmp_path)
    assert r.returncode == 252
    assert r.stderr.decode() == (
        f"{ERROR}reading the pipe pipe needs --format CSV or --format JSON\n"
    )


# --- each file read once ----------------------------------------------------------------------


def test_the_same_file_named_twice_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(HEADER + GOOD + BAD)
    r = cli_run("validate", "a.csv", "a.csv", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr == b""
    d = report_of(r)
    assert (d["TotalProcessed"], d["TotalFailures"], d["TotalPieces"]) == (2, 1, 1)
    assert d["Failures"] == [f"a.csv:3: {E164} [ADDRESS_E164]"]
    assert d["Files"] == [
        {
            "Source": "a.csv",
            "Size": 45,
            "Format": "CSV",
            "Status": "FAILED",
            "Note": "named 2 times: read once",
            "Records": 2,
            "FailedRecords": 1,
        }
    ]


def test_a_folder_and_files_inside_it(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.csv").write_text(HEADER + GOOD + BAD)
    (folder / "b.csv").write_text(HEADER + GOOD)
    os.symlink("a.csv", folder / "link.csv")
    r = cli_run("validate", "d", "d/a.csv", "./d/b.csv", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr == b""
    d = report_of(r)
    assert (d["TotalProcessed"], d["TotalFailures"]) == (3, 1)
    assert "FILE_EMPTY" not in d["FailuresByCode"]
    rows = [(f["Source"], f["Status"], f.get("DuplicateOf"), f.get("Note")) for f in d["Files"]]
    assert rows == [
        ("d/a.csv", "FAILED", None, "named 2 times: read once"),
        ("d/b.csv", "READ", None, None),
        ("d/link.csv", "SKIPPED", "d/a.csv", None),
        ("./d/b.csv", "SKIPPED", "d/b.csv", None),
    ]
    assert d["Files"][2]["Reason"] == "duplicate of d/a.csv (the same file): read once"


# --- option values, before any work -----------------------------------------------------------


EXAMPLES = "(examples: 64MiB, 1GB, 500000)"
OPTION_CASES = [
    (["--pieces", "0"], "--pieces: must be at least 1, not 0"),
    (["--pieces", "1000000000"], "--pieces: must be at most 100,000, not 1,000,000,000"),
    (["--piece-size", "1e400"], "--piece-size: '1e400' is not a size " + EXAMPLES),
    (["--piece-size", "-1"], "--piece-size: '-1' is not a size " + EXAMPLES),
    (["--piece-size", "0.4"], "--piece-size: must be more than 0 bytes, not '0.4'"),
    (["--workers", "0"], "--workers: must be at least 1, not 0"),
    (["--workers", "-3"], "--workers: must be at least 1, not -3"),
    (["--max-job-size", "lots"], "--max-job-size: 'lots' is not a size " + EXAMPLES),
    (["--max-job-size", "0GB"], "--max-job-size: must be more than 0 bytes, not '0GB'"),
    (["--failures-out", "folder"], "--failures-out: folder is a folder: give a file name"),
    (["--failures-out", "nowhere/f.jsonl"], "--failures-out: no such folder nowhere"),
    (["--failures-out", "a.csv/f.jsonl"], "--failures-out: a.csv is not a folder"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "line"), OPTION_CASES)
@pytest.mark.parametrize("command", ["validate", "split"])
def test_bad_option_values_are_one_line_before_any_work(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
    extra: list[str],
    line: str,
) -> None:
    """The source does not exist: the option's error comes first, so nothing was listed."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "a.csv").write_text(HEADER + GOOD)
    args = [command, "no-such-source", "--format", "CSV", *extra]
    if command == "split":
        args += ["--to", "out"]
    code, err = in_process(args, capsys)
    assert (code, err) == (252, ERROR + line)
    assert tree(tmp_path) == ["a.csv", "folder"]


def test_option_values_through_the_command(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(HEADER + GOOD)
    (tmp_path / "folder").mkdir()
    r = cli_run("validate", "a.csv", "--failures-out", "folder", cwd=tmp_path)
    assert r.returncode == 252
    assert stderr_line(r) == ERROR + "--failures-out: folder is a folder: give a file name"
    r = cli_run("validate", "a.csv", "--pieces", "1e9", cwd=tmp_path)
    assert r.returncode == 252
    assert "'--pieces'" in stderr_line(r)
    assert tree(tmp_path) == ["a.csv", "folder"]


def test_failures_out_is_never_a_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text(HEADER + BAD)
    for command in (["validate"], ["split", "--to", "out"]):
        code, err = in_process([*command, "d", "--failures-out", "d/a.csv"], capsys)
        line = "--failures-out: d/a.csv is one of the sources (d/a.csv)"
        assert (code, err) == (252, ERROR + line)
    assert (tmp_path / "d" / "a.csv").read_text() == HEADER + BAD
    assert tree(tmp_path) == ["d", "d/a.csv"]


def test_the_library_names_the_parameter(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(HEADER + GOOD)
    cases = [
        ({"pieces": 0}, "pieces", "pieces: must be at least 1, not 0"),
        ({"workers": True}, "workers", "workers: True is not a whole number"),
        ({"piece_size": "1e400"}, "piece_size", "piece_size: '1e400' is not a size "
         "(examples: 64MiB, 1GB, 500000)"),
        ({"max_job_size": -5}, "max_job_size", "max_job_size: must be more than 0 bytes, not -5"),
        ({"failures_out": tmp_path}, "failures_out", f"failures_out: {tmp_path} is a folder: "
         "give a file name"),
    ]  # fmt: skip
    for kwargs, parameter, message in cases:
        with pytest.raises(OptionError) as caught:
            validator.preflight(str(tmp_path / "a.csv"), format="CSV", **kwargs)
        assert (caught.value.parameter, str(caught.value)) == (parameter, message)
        assert caught.value.exit_code == 252


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("64MiB", 64 << 20),
        ("1.5KiB", 1536),
        ("1GB", 10**9),
        ("500000", 500000),
        ("2.0000000000000000000001 TB", 2 * 10**12),
        ("9" * 400, int("9" * 400)),  # exact, no float to overflow
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


# --- the local file system's refusals ---------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def _without_root_overrides() -> None:
    """In the child, before exec: root without the capabilities that skip permission checks
    (the tests run as root; a dropped uid could not run the interpreter under /root)."""
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.fixture
def permissions_apply(tmp_path: Path) -> None:
    """Skip unless a file without permissions can be made unreadable to the child."""
    probe = tmp_path / "probe"
    probe.write_text("x")
    probe.chmod(0)
    if os.geteuid() != 0:
        if os.access(probe, os.R_OK):
            pytest.skip("permissions are not enforced for this user")
        return
    try:
        r = subprocess.run(
            ["cat", str(probe)], capture_output=True, preexec_fn=_without_root_overrides
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"as root, and cannot drop CAP_DAC_OVERRIDE: {exc}")
    probe.unlink()
    if r.returncode == 0:
        pytest.skip("as root, and dropping CAP_DAC_OVERRIDE did not make the file unreadable")


def _restricted() -> Any:
    return _without_root_overrides if os.geteuid() == 0 else None


@pytest.mark.usefixtures("permissions_apply")
def test_permission_denied_on_a_file_and_a_folder(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "a.csv").write_text(HEADER + GOOD)
    (tmp_path / "d" / "sub" / "b.csv").write_text(HEADER + GOOD)
    (tmp_path / "locked.csv").write_text(HEADER + GOOD)
    (tmp_path / "locked.csv").chmod(0)
    (tmp_path / "d" / "sub").chmod(0)
    try:
        r = cli_run("validate", "locked.csv", cwd=tmp_path, preexec=_restricted())
        assert r.returncode == 253 and r.stdout == b""
        assert stderr_line(r) == ERROR + "cannot read locked.csv: permission denied"
        r = cli_run("validate", "d", "--format", "CSV", cwd=tmp_path, preexec=_restricted())
        assert r.returncode == 253
        assert stderr_line(r) == ERROR + "cannot list d/sub: permission denied"
        r = cli_run(
            "validate", "d/a.csv", "--failures-out", "d/sub/f.jsonl", cwd=tmp_path,
            preexec=_restricted(),
        )  # fmt: skip
        assert r.returncode == 253
        assert stderr_line(r) == ERROR + "cannot write d/sub/f.jsonl: permission denied"
    finally:
        (tmp_path / "d" / "sub").chmod(0o755)
    assert tree(tmp_path) == ["d", "d/a.csv", "d/sub", "d/sub/b.csv", "locked.csv"]


def test_a_name_too_long(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(HEADER + GOOD)
    long = "x" * 300 + ".csv"
    r = cli_run("validate", long, cwd=tmp_path)
    assert (r.returncode, stderr_line(r)) == (253, f"{ERROR}cannot read {long}: file name too long")
    r = cli_run("validate", "a.csv", "--failures-out", long, cwd=tmp_path)
    assert (r.returncode, stderr_line(r)) == (
        253,
        f"{ERROR}cannot write {long}: file name too long",
    )
    assert tree(tmp_path) == ["a.csv"]


@pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs Linux's /proc")
def test_an_io_error_while_reading_names_the_file(tmp_path: Path) -> None:
    """/proc/self/mem is a regular file whose first bytes can't be read: EIO, on a read."""
    r = cli_run("validate", "/proc/self/mem", "--format", "CSV", cwd=tmp_path)
    assert r.returncode == 253 and r.stdout == b""
    assert stderr_line(r) == ERROR + "cannot read /proc/self/mem: input/output error"


def test_a_path_through_a_file_is_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text(HEADER + GOOD)
    r = cli_run("validate", "a.csv/b.csv", cwd=tmp_path)
    assert r.returncode == 252
    assert stderr_line(r) == ERROR + "a.csv/b.csv: a part of the path is not a folder"


def test_a_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "ok.csv").write_text(HEADER + GOOD)
    with open(os.path.join(os.fsencode(folder), b"\xff.csv"), "wb") as fh:
        fh.write((HEADER + BAD).encode())
    r = cli_run("validate", "d", "--failures-out", "f.jsonl", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr == b""
    d = report_of(r)
    assert [f["Source"] for f in d["Files"]] == ["d/ok.csv", "d/\\xff.csv"]
    assert d["Failures"] == [f"d/\\xff.csv:2: {E164} [ADDRESS_E164]"]
    assert json.loads((tmp_path / "f.jsonl").read_text())["source"] == "d/\\xff.csv"
    named = subprocess.run(
        [sys.executable, "-m", "validator", "validate", os.path.join(b"d", b"\xff.csv")],
        capture_output=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(validator.__file__).parent.parent)},
    )
    assert named.returncode == 1 and named.stderr == b""
    assert json.loads(named.stdout)["Failures"] == [f"d/\\xff.csv:2: {E164} [ADDRESS_E164]"]


def test_what_is_no_regular_file_in_a_folder_is_listed(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.csv").write_text(HEADER + GOOD)
    os.mkfifo(folder / "pipe.csv")
    os.symlink("nowhere.csv", folder / "broken.csv")
    (tmp_path / "elsewhere").mkdir()
    os.symlink("../elsewhere", folder / "linked")
    r = cli_run("validate", "d", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [(f["Source"], f["Status"], f.get("Reason")) for f in report_of(r)["Files"]]
    assert rows == [
        ("d/a.csv", "READ", None),
        ("d/broken.csv", "SKIPPED", "a broken symbolic link"),
        ("d/linked", "SKIPPED", "a link to a folder: not followed"),
        ("d/pipe.csv", "SKIPPED", "a FIFO, not a file"),
    ]


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (needs root and mount); skipped with the reason otherwise."""
    where = tmp_path / "small"
    where.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a small tmpfs needs root to mount")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_disk_full_while_writing_failures_out(tmp_path: Path, small_tmpfs: Path) -> None:
    (tmp_path / "many.csv").write_text(HEADER + BAD * 3000)  # ~600 KB of problems
    r = cli_run("validate", "many.csv", "--failures-out", "small/f.jsonl", cwd=tmp_path)
    assert r.returncode == 253 and r.stdout == b""
    assert stderr_line(r) == ERROR + "cannot write small/f.jsonl: no space left on the device"
    assert tree(small_tmpfs) == []  # no partial file


def test_read_only_destination_for_failures_out(tmp_path: Path, small_tmpfs: Path) -> None:
    remount = subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], capture_output=True)
    if remount.returncode != 0:
        pytest.skip(f"cannot remount read-only: {remount.stderr.decode().strip()}")
    (tmp_path / "a.csv").write_text(HEADER + BAD)
    r = cli_run("validate", "a.csv", "--failures-out", "small/f.jsonl", cwd=tmp_path)
    assert r.returncode == 253
    assert stderr_line(r) == ERROR + "cannot write small/f.jsonl: read-only file system"
    assert tree(small_tmpfs) == []


def test_errno_mapping_is_one_place() -> None:
    from validator.errors import from_os_error

    denied = from_os_error(PermissionError(13, "Permission denied", "/x/\udcff.csv"))
    assert isinstance(denied, LocalPathError) and denied.exit_code == 253
    assert str(denied) == "/x/\\xff.csv: permission denied"
    missing = from_os_error(FileNotFoundError(2, "No such file"), "a.csv", option="failures_out")
    assert isinstance(missing, OptionError) and str(missing) == (
        "failures_out: a.csv: no such file or folder"
    )
    odd = from_os_error(OSError(errno_not_mapped(), "Strange"), "a.csv", action="cannot read")
    assert isinstance(odd, LocalPathError) and str(odd) == "cannot read a.csv: strange"
    assert not isinstance(odd, UsageError)


def errno_not_mapped() -> int:
    import errno

    return errno.ENOEXEC


# --- a CSV header's problems are one failure --------------------------------------------------


def test_a_header_error_counts_once_per_file(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_text(
        "\ufeffChannelType,Adress,Foo,Address\nSMS,x,y,+15551234567\nSMS,x,y,bad\n"
    )
    r = cli_run("validate", "h.csv", cwd=tmp_path)
    assert r.returncode == 1
    d = report_of(r)
    assert d["TotalFailures"] == 2  # the file's header, once; the record on line 3
    assert d["Failures"] == [
        "h.csv: Adress: not a supported header; did you mean 'Address'? [CSV_HEADER_UNKNOWN]; "
        "Foo: not a supported header [CSV_HEADER_UNKNOWN]",
        f"h.csv:3: {E164} [ADDRESS_E164]",
    ]
    assert d["FailuresByCode"] == {"CSV_HEADER_UNKNOWN": 2, "ADDRESS_E164": 1}
    assert d["TotalWarnings"] == 1 and d["WarningsByCode"] == {"FILE_BOM": 1}


# --- S3: an empty prefix, nothing of the format, a prefix and an object under it; no launch ---

moto_only = pytest.mark.parametrize(
    "s3_server", [pytest.param("moto", marks=pytest.mark.s3)], indirect=True
)
ROLE = "arn:aws:iam::123456789012:role/PinpointImport"
APP = "4f2d3c1b0a9e8d7c6b5a4f3e2d1c0b9a"


@pytest.fixture
def json_only(s3_env: S3Server) -> str:
    """A prefix holding three JSON objects and a gzip-compressed CSV: nothing to read as CSV."""
    bucket = s3_env.make_bucket("hostile")
    client = s3_env.client()
    for key in ("p/a.json", "p/b.json", "p/sub/c.jsonl"):
        client.put_object(Bucket=bucket, Key=key, Body=JSON_LINE.encode())
    client.put_object(Bucket=bucket, Key="p/d.csv.gz", Body=gzip.compress(b"x"))
    client.put_object(Bucket=bucket, Key="q/a.csv", Body=(HEADER + GOOD + BAD).encode())
    return bucket


@moto_only
def test_s3_prefix_with_nothing_of_the_format(s3_env: S3Server, json_only: str) -> None:
    url = f"s3://{json_only}/p/"
    r = cli_run(
        "validate", url, "--format", "CSV", "--endpoint-url", s3_env.endpoint_url, cwd=Path.cwd()
    )
    assert r.returncode == 1 and r.stderr == b""
    d = report_of(r)
    assert d["JobFailures"] == [
        f"{url}: no CSV file to read (1 gzip-compressed file, 3 JSON files skipped): Pinpoint "
        "can't import compressed files: decompress them [JOB_EMPTY]"
    ]
    assert [f["Status"] for f in d["Files"]] == ["SKIPPED"] * 4


@moto_only
def test_s3_prefix_and_an_object_under_it_are_read_once(
    s3_env: S3Server, json_only: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix, key = f"s3://{json_only}/q/", f"s3://{json_only}/q/a.csv"
    args = ["validate", prefix, key, "--endpoint-url", s3_env.endpoint_url]
    code = cli.run(args)
    captured = capsys.readouterr()
    assert (code, captured.err) == (1, "")
    d = json.loads(captured.out)
    assert (d["TotalProcessed"], d["TotalFailures"]) == (2, 1)
    assert d["Failures"] == [f"{key}:3: {E164} [ADDRESS_E164]"]
    assert [(f["Source"], f.get("Note")) for f in d["Files"]] == [(key, "named 2 times: read once")]


@moto_only
def test_s3_object_named_with_the_other_formats_extension(
    s3_env: S3Server, json_only: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"s3://{json_only}/p/a.json"
    code, err = in_process(
        ["validate", url, "--format", "CSV", "--endpoint-url", s3_env.endpoint_url], capsys
    )
    assert (code, err) == (
        252,
        f"{ERROR}--format: {url} is a JSON file by its extension, not CSV: give --format JSON, "
        "or rename it",
    )


@moto_only
@pytest.mark.launch
@pytest.mark.parametrize("where", ["p/", "nothing/here/"])
def test_create_import_job_never_launches_on_an_empty_job(
    s3_env: S3Server, json_only: str, where: str
) -> None:
    from pinpoint_server import PinpointServer

    url = f"s3://{json_only}/{where}"
    with PinpointServer(
        access_key=s3_env.access_key, secret_key=s3_env.secret_key, region=s3_env.region
    ) as pinpoint:
        r = cli_run(
            "create-import-job", "--application-id", APP, "--import-job-request",
            f"S3Url={url},Format=CSV,RoleArn={ROLE},RegisterEndpoints=true", "--no-progress",
            "--s3-endpoint-url", s3_env.endpoint_url, "--endpoint-url", pinpoint.endpoint_url,
            cwd=Path.cwd(),
        )  # fmt: skip
        assert pinpoint.requests == []
    assert r.returncode == 1
    line = stderr_line(r)
    assert line.startswith(f"{ERROR}preflight failed: 0 failed records; {url}: no CSV file")
    assert line.endswith("[JOB_EMPTY]")
    assert report_of(r)["FailuresByCode"] == {"JOB_EMPTY": 1}
