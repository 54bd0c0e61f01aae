"""Hostile CSV input through the command line, as a user runs it: the exit code, one line on
stderr or none, never a traceback or a signal, and each problem's rule code on its line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEADER = b"Id,ChannelType,Address,Attributes.a\n"
QUOTE = "[CSV_QUOTE]"


def run_cli(
    *args: str,
    threshold: int | None = None,
    max_line: int | None = None,
    rss_to: Path | None = None,
) -> tuple[int, dict | None, str]:
    """``python -m validator ARGS``. With ``threshold``/``max_line`` the module attributes are
    lowered first (so that a small file runs in worker processes), and with ``rss_to`` the
    process writes its peak RSS (KiB) there as it exits. Returns the exit code, the JSON report
    (or None) and stderr."""
    if threshold is None and max_line is None and rss_to is None:
        cmd = [sys.executable, "-m", "validator", *args]
    else:
        code = "import sys, validator.engine as e, validator.blocks as b\n"
        if threshold is not None:
            code += f"e.IN_PROCESS_BELOW = {threshold}\n"
        if max_line is not None:
            code += f"b.MAX_LINE = {max_line}\n"
        if rss_to is not None:
            code += (
                # VmHWM is this program's own peak: ru_maxrss would keep the forked parent's
                # (pytest's) size across the exec.
                "import atexit\n"
                f"atexit.register(lambda: open({str(rss_to)!r}, 'w').write(next("
                "line.split()[1] for line in open('/proc/self/status') "
                "if line.startswith('VmHWM:'))))\n"
            )
        code += f"from validator.cli import main\nmain({list(args)!r})\n"
        cmd = [sys.executable, "-c", code]
    env = {k: v for k, v in os.environ.items() if k != "PINPOINT_PREFLIGHT_DEBUG"}
    proc = subprocess.run(cmd, capture_output=True, env=env, timeout=300)
    text = proc.stderr.decode("utf-8", errors="replace")
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {text}"
    assert "Traceback" not in text and "Exception ignored" not in text, text
    assert len(text.splitlines()) <= 1, text
    try:
        report = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        report = None
    return proc.returncode, report, text


def validate(path: Path, *extra: str, **kw) -> tuple[int, dict, str]:
    rc, report, err = run_cli(
        "validate", str(path), "--format", "CSV", "--output", "json", "--no-progress", *extra, **kw
    )
    assert report is not None, err
    return rc, report, err


def codes(report: dict) -> list[tuple[int | None, list[str]]]:
    """(line, codes) of every failure in the report, in order."""
    out = []
    for failure in report["Failures"]:
        where = failure.split(": ", 1)[0]
        line = int(where.rsplit(":", 1)[1]) if where.count(":") else None
        out.append((line, [c.split("]")[0] for c in failure.split("[")[1:]]))
    return out


# -- records lost between worker processes --------------------------------------------------------

LOST = (
    HEADER
    + b"1,SMS,+12065550101,alpha\n"
    + b'2,SMS,"+12065550102,beta\n'  # an unbalanced quote
    + b'3,EMAIL,a@example.com,"gam\rma"\n'  # then a lone CR inside a quoted value
    + b"".join(b"%d,EMAIL,user%d@example.com,value%d\n" % (i, i, i) for i in range(4, 9))
)
LOST = LOST[:-1] + b"x" * (353 - len(LOST)) + b"\n"


def test_the_353_byte_file_reads_8_records_however_the_job_is_cut(tmp_path):
    assert len(LOST) == 353
    src = tmp_path / "lost.csv"
    src.write_bytes(LOST)
    want = [(3, ["CSV_QUOTE"]), (4, ["CSV_NEWLINE_IN_VALUE"])]
    runs = []
    for workers, pieces in [(1, 1), (2, 3), (2, 8)]:
        rc, report, err = validate(
            src, "--workers", str(workers), "--pieces", str(pieces), threshold=0
        )
        assert rc == 1
        assert err == ""
        assert report["TotalProcessed"] == 8
        assert report["TotalFailures"] == 2
        assert codes(report) == want
        assert "FILE_EMPTY" not in json.dumps(report)
        runs.append(report)
    assert runs[1]["TotalPieces"] == 3  # really cut: the boundaries settle past the quote
    assert all(r["Failures"] == runs[0]["Failures"] for r in runs)
    # split writes every record: the six good ones in the pieces, the two bad ones rejected.
    rc, _, err = run_cli(
        "split",
        str(src),
        "--to",
        str(tmp_path / "out"),
        "--format",
        "CSV",
        "--valid-only",
        "--rejects",
        str(tmp_path / "rejects.csv"),
        "--workers",
        "2",
        "--pieces",
        "3",
        "--no-progress",
        threshold=0,
    )
    # Every failed record went to the rejects and the pieces are clean: the gate passes (0).
    assert (rc, err) == (0, "")
    manifest = json.loads((tmp_path / "out" / "manifest.txt").read_text())
    body = b"".join(
        (tmp_path / "out" / p["Path"]).read_bytes()[len(HEADER) :] for p in manifest["Pieces"]
    )
    rejected = (tmp_path / "rejects.csv").read_bytes()[len(HEADER) :]
    lines = [line + b"\n" for line in LOST[len(HEADER) : -1].split(b"\n")]
    assert rejected == lines[1] + lines[2]
    assert body == b"".join(lines[:1] + lines[3:])


# -- line endings, lone CRs -------------------------------------------------------------------


def test_a_lone_cr_inside_a_quoted_value_is_a_rule_code_not_an_exception(tmp_path):
    src = tmp_path / "cr.csv"
    src.write_bytes(HEADER + b'1,SMS,+12065550100,"a\rb"\n2,SMS,555,x\n3,SMS,"+1206\r"555",y\n')
    rc, report, err = validate(src)
    assert (rc, err) == (1, "")
    assert report["TotalProcessed"] == 3
    assert codes(report) == [
        (2, ["CSV_NEWLINE_IN_VALUE"]),
        (3, ["ADDRESS_E164"]),  # the records after it are still checked
        (4, ["CSV_QUOTE"]),
    ]


def test_a_lone_cr_outside_quotes_is_a_line_ending_problem_on_its_line(tmp_path):
    src = tmp_path / "cr.csv"
    src.write_bytes(HEADER + b"1,SMS,+12065550100,a\rb\n2,SMS,555,x\n3,SMS,+12065550101,y\n")
    rc, report, err = validate(src)
    assert (rc, err) == (1, "")
    assert report["TotalProcessed"] == 3
    assert codes(report) == [(2, ["FILE_LINE_ENDINGS"]), (3, ["ADDRESS_E164"])]


@pytest.mark.parametrize("records", [0, 3, 5000])
def test_cr_only_line_endings_fail_the_file(tmp_path, records):
    src = tmp_path / "mac.csv"
    src.write_bytes(
        b"Id,ChannelType,Address\r"
        + b"".join(b"%d,SMS,+1206555%04d\r" % (i, i) for i in range(records))
    )
    rc, report, err = validate(src)
    assert (rc, err) == (1, "")
    assert report["TotalProcessed"] == 0
    assert codes(report) == [(None, ["FILE_LINE_ENDINGS"])]
    assert report["Files"][0]["Status"] == "FAILED"


def test_a_lone_cr_in_the_header_is_reported_and_the_records_are_still_checked(tmp_path):
    src = tmp_path / "h.csv"
    src.write_bytes(b"Id\r,ChannelType,Address\n1,SMS,+12065550100\n2,SMS,555\n")
    rc, report, err = validate(src)
    assert (rc, err) == (1, "")
    assert report["TotalProcessed"] == 2
    assert codes(report) == [  # the header's problems are one failure of the file
        (None, ["FILE_LINE_ENDINGS", "CSV_HEADER_UNKNOWN"]),
        (3, ["ADDRESS_E164"]),
    ]
    assert "Id\\r: not a supported header" in report["Failures"][0]


def test_crlf_files_are_fine(tmp_path):
    src = tmp_path / "dos.csv"
    src.write_bytes(b"Id,ChannelType,Address\r\n1,SMS,+12065550100\r\n\r\n2,SMS,+12065550101\r\n")
    rc, report, err = validate(src)
    assert (rc, err, report["TotalProcessed"], report["Failures"]) == (0, "", 2, [])


# -- bytes that are not UTF-8 --------------------------------------------------------------------


@pytest.mark.parametrize("fields", [b"", b",x,y,z"])
def test_non_utf8_bytes_in_a_row_of_the_wrong_width(tmp_path, fields):
    src = tmp_path / "bin.csv"
    src.write_bytes(HEADER + b"1,SMS,+1206\xff\xfe5550100" + fields + b"\n2,SMS,555,a\n")
    rc, report, err = validate(src)
    assert (rc, err) == (1, "")
    assert report["TotalProcessed"] == 2
    assert codes(report) == [(2, ["FILE_NOT_UTF8", "CSV_ROW_WIDTH"]), (3, ["ADDRESS_E164"])]
    width = 3 + fields.count(b",")
    assert f"{width} fields, but the header has 4" in report["Failures"][0]
    assert f"at offset {len(HEADER) + 11} is not UTF-8" in report["Failures"][0]


def test_a_header_that_is_not_utf8(tmp_path):
    src = tmp_path / "h.csv"
    src.write_bytes(b"Id,Channel\xe9Type,Address\n1,SMS,+12065550100\n")
    rc, report, err = validate(src)
    assert (rc, err) == (1, "")
    assert codes(report) == [(None, ["FILE_NOT_UTF8", "CSV_HEADER_UNKNOWN"])]
    assert report["TotalProcessed"] == 1


# -- tiny files, more pieces than bytes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"x", "CSV_HEADER_UNKNOWN"),
        (b'"', "CSV_HEADER_UNKNOWN"),
        (b"\xff", "FILE_NOT_UTF8"),
        (b"\n", "FILE_EMPTY"),
        (b"\r", "FILE_EMPTY"),
    ],
)
def test_a_one_byte_file(tmp_path, data, code):
    src = tmp_path / "one.csv"
    src.write_bytes(data)
    rc, report, err = validate(src)
    assert (rc, err) == (1, "")
    assert report["TotalProcessed"] == 0
    line, got = codes(report)[0]
    assert (line, got[0]) == (None, code)


@pytest.mark.parametrize("pieces", ["3", "1000"])
def test_more_pieces_than_bytes_or_lines_is_normal_input(tmp_path, pieces):
    two = tmp_path / "two.csv"
    two.write_bytes(b"Id")
    rc, report, err = validate(two, "--pieces", pieces)
    assert (rc, err) == (1, "")
    assert codes(report) == [(None, ["FILE_EMPTY"])]
    small = tmp_path / "small.csv"
    small.write_bytes(b"ChannelType,Address\nSMS,+12065550100\nSMS,555\n")
    for workers in ("1", "2"):
        rc, report, err = validate(small, "--pieces", pieces, "--workers", workers, threshold=0)
        assert (rc, err) == (1, "")
        assert report["TotalProcessed"] == 2
        assert codes(report) == [(3, ["ADDRESS_E164"])]
        assert 1 <= report["TotalPieces"] <= 2
    tiny = tmp_path / "x.json"
    tiny.write_bytes(b"{}")
    rc, report, err = run_cli("validate", str(tiny), "--format", "JSON", "--pieces", pieces)
    assert (rc, err) == (1, "")  # a 2-byte JSON file is one record, not errno 22
    assert report is not None and report["TotalProcessed"] == 1


# -- long lines and long headers ----------------------------------------------------------------


def test_a_100_mb_line_is_a_record_that_fails_and_memory_stays_bounded(tmp_path):
    src = tmp_path / "long.csv"
    with open(src, "wb") as fh:
        fh.write(b"ChannelType,Address\nSMS,+12065550100\n")
        block = b"x" * (1 << 20)
        for _ in range(100):
            fh.write(block)
    rss_file = tmp_path / "rss"
    rc, report, err = run_cli(
        "validate",
        str(src),
        "--format",
        "CSV",
        "--output",
        "json",
        "--no-progress",
        rss_to=rss_file,
    )
    rss = int(rss_file.read_text())
    assert (rc, err) == (1, "")
    assert report is not None
    assert report["TotalProcessed"] == 2
    assert codes(report) == [(3, ["ENDPOINT_TOO_LARGE"])]
    assert "a line of 104,857,600 bytes" in report["Failures"][0]
    assert 0 < rss < 256 * 1024, f"peak RSS {rss} KiB"  # the line is never held whole


def test_a_long_line_followed_by_records_in_pieces_and_workers(tmp_path):
    src = tmp_path / "long.csv"
    src.write_bytes(
        b"ChannelType,Address\nSMS,+12065550100\n"
        + b'"x' * 300_000
        + b"\nSMS,555\n"
        + b"SMS,+12065550101\n" * 2000
    )
    for workers, pieces in [("1", "1"), ("2", "4")]:
        rc, report, err = validate(
            src, "--workers", workers, "--pieces", pieces, threshold=0, max_line=100_000
        )
        assert (rc, err) == (1, "")
        assert report["TotalProcessed"] == 2003
        assert codes(report) == [(3, ["ENDPOINT_TOO_LARGE"]), (4, ["ADDRESS_E164"])]


def test_a_header_longer_than_64_kib_is_data_checked_by_the_rules(tmp_path):
    src = tmp_path / "wide.csv"
    names = b",".join([b"Attributes.x"] * 10_000)
    src.write_bytes(
        b"ChannelType,Address,"
        + names
        + b"\nSMS,+12065550100,"
        + b",".join([b"v"] * 10_000)
        + b"\nSMS,+12065550101,"
        + b"," * 9_999
        + b"\n"
    )
    assert len(names) > 64 * 1024
    rc, report, err = validate(src)
    assert (rc, err) == (1, "")
    assert report["TotalProcessed"] == 2
    assert codes(report) == [(2, ["ATTRIBUTE_VALUES_COUNT", "ENDPOINT_TOO_LARGE"])]
    assert "10000 values" in report["Failures"][0]


def test_a_first_line_longer_than_max_line_is_not_a_header(tmp_path):
    src = tmp_path / "blob.csv"
    src.write_bytes(b"ChannelType" + b"y" * 300_000 + b"\nSMS,+12065550100\n")
    rc, report, err = validate(src, max_line=100_000)
    assert (rc, err) == (1, "")
    assert report["TotalProcessed"] == 0
    assert codes(report) == [(None, ["CSV_HEADER_UNKNOWN"])]
