"""Hostile NDJSON through the command line: each defect gets its rule code on its own line,
the records after it are still checked, and nothing crashes (no traceback, no signal)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

AFTER = b'{"ChannelType":"sms","Address":"x"}\n'  # checked after every hostile line: CHANNEL_TYPE


def run(
    tmp_path: Path, data: bytes, name: str = "h.json"
) -> tuple[int, list[tuple[int, str]], str]:
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "failures.ndjson"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "validator",
            "validate",
            str(src),
            "--format",
            "JSON",
            "--output",
            "json",
            "--no-progress",
            "--failures-out",
            str(out),
        ],
        capture_output=True,
        timeout=300,
    )
    stderr = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}"
    assert "Traceback" not in stderr and "Traceback" not in proc.stdout.decode("utf-8", "replace")
    found = []
    if out.exists():
        found = [(p["line"], p["code"]) for p in map(json.loads, out.read_bytes().splitlines())]
    return proc.returncode, found, stderr


HOSTILE = [
    (b"null", "JSON_NOT_OBJECT"),
    (b"[1, 2]", "JSON_NOT_OBJECT"),
    (b"[]", "JSON_NOT_OBJECT"),
    (b'"just a string"', "JSON_NOT_OBJECT"),
    (b"42", "JSON_NOT_OBJECT"),
    (b"-1.5e3", "JSON_NOT_OBJECT"),
    (b"true", "JSON_NOT_OBJECT"),
    (b"[" * 100_000 + b"]" * 100_000, "JSON_SYNTAX"),
    (b'{"Id":"d","Attributes":{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}}", "JSON_SYNTAX"),
    (b'{"Id":"d","Location":' + b'{"x":' * 50_000 + b"1" + b"}" * 50_001, "JSON_SYNTAX"),
    (b'{"Id":"n","Attributes":{"a":[null,null]}}', "FIELD_TYPE"),
    (b'{"Id":"n","Attributes":{"a":[null]},"Metrics":{"m":null}}', "FIELD_TYPE"),
    (b'{"Id":"a","Id":"b"}', "JSON_DUPLICATE_KEY"),
    (b'{"Id":"a","Location":{"City":"x","City":null}}', "JSON_DUPLICATE_KEY"),
    (b'{"Id" : "a", "Id" : "a"}', "JSON_DUPLICATE_KEY"),
    (b'{"Id":"a","Attributes":{"k":["1"],"\\u006b":["2"]}}', "JSON_DUPLICATE_KEY"),
    (bytes(b for b in range(256) if b not in (10, 13)), "FILE_NOT_UTF8"),
    (b"\x00\x01\x02\x03garbage\x7f", "JSON_SYNTAX"),
    (b'{"Id":"caf\xe9"}', "FILE_NOT_UTF8"),
    (b'{"Id":"\xff\xfe"}', "FILE_NOT_UTF8"),
    (b'{"Id":"x","RequestId":"' + b"r" * 16_000 + b'"}', "ENDPOINT_TOO_LARGE"),
    (b'{"Id":"a"} {"Id":"b"}', "JSON_SYNTAX"),
    (b'{"Id":"a",}', "JSON_SYNTAX"),
]


def test_each_hostile_line_gets_its_code_and_the_next_line_is_checked(tmp_path: Path) -> None:
    """All of them in one file (one process): hostile line, then a record with a bad value."""
    data = b'{"Id":"before"}\n' + b"".join(line + b"\n" + AFTER for line, _ in HOSTILE)
    rc, found, _ = run(tmp_path, data)
    assert rc == 1
    want = []
    for i, (_, code) in enumerate(HOSTILE):
        want += [(2 + 2 * i, code), (3 + 2 * i, "CHANNEL_TYPE")]
    assert sorted({f for f in found if f[1] != "DUPLICATE_ID"}) == want


@pytest.mark.parametrize("line, code", HOSTILE[:3] + HOSTILE[7:8] + HOSTILE[16:17])
def test_a_hostile_line_alone_at_the_start(tmp_path: Path, line: bytes, code: str) -> None:
    rc, found, _ = run(tmp_path, line + b"\n" + AFTER)
    assert rc == 1
    assert sorted(set(found)) == [(1, code), (2, "CHANNEL_TYPE")]


def test_mixed_types_for_one_key_across_lines(tmp_path: Path) -> None:
    data = (
        b'{"a":[false]}\n{"a":""}\n{"a":{"b":1}}\n'
        b'{"Id":"1","Attributes":{"k":[false]}}\n{"Id":"2","Attributes":{"k":""}}\n'
        b'{"Id":"3","Attributes":{"k":["ok"]}}\n{"Id":"4","Metrics":{"m":"1"}}\n'
        b'{"Id":"5","Metrics":{"m":1}}\n{"Id":"6","Metrics":{"m":[1]}}\n' + AFTER
    )
    rc, found, _ = run(tmp_path, data)
    assert rc == 1
    for n in (1, 2, 3):
        assert (n, "FIELD_UNKNOWN") in found
    for n in (4, 5, 7, 9):
        assert (n, "FIELD_TYPE") in found
    assert not [f for f in found if f[0] in (6, 8)]
    assert (10, "CHANNEL_TYPE") in found


def test_crlf_lines_keep_their_numbers(tmp_path: Path) -> None:
    good = b'{"Id":"%d","ChannelType":"SMS","Address":"+12065550100"}\r\n'
    data = b"".join(good % i for i in range(5)) + b'{"Id":"x","OptOut":"YES"}\r\n' + good % 9
    rc, found, _ = run(tmp_path, data)
    assert (rc, found) == (1, [(6, "OPT_OUT")])
    rc, found, _ = run(tmp_path, b"".join(good % i for i in range(5)))
    assert (rc, found) == (0, [])


@pytest.mark.parametrize("data", [b"x", b"{", b"[", b"\x00", b"\xff", b"1"])
def test_a_one_byte_file_fails_without_a_crash(tmp_path: Path, data: bytes) -> None:
    rc, found, _ = run(tmp_path, data)
    assert rc == 1
    assert len(found) == 1 and found[0][0] == 1


def test_a_100_mb_line_without_a_newline_fails_in_bounded_memory(tmp_path: Path) -> None:
    src = tmp_path / "huge.json"
    with src.open("wb") as f:
        f.write(b'{"Id":"first","ChannelType":"sms"}\n{"Address":"')
        chunk = b"a" * (1 << 20)
        for _ in range(100):
            f.write(chunk)
    out = tmp_path / "f.ndjson"
    err = tmp_path / "stderr.txt"
    hwm = tmp_path / "vmhwm"
    # VmHWM is the program's own peak (ru_maxrss would keep pytest's size across the exec).
    code = (
        "import atexit\n"
        f"atexit.register(lambda: open({str(hwm)!r}, 'w').write(next("
        "line.split()[1] for line in open('/proc/self/status') if line.startswith('VmHWM:'))))\n"
        "from validator.cli import main\n"
        f"main(['validate', {str(src)!r}, '--format', 'JSON', '--output', 'json', "
        f"'--no-progress', '--failures-out', {str(out)!r}, '--workers', '1'])\n"
    )
    with err.open("wb") as stderr:
        proc = subprocess.run(
            [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=stderr, timeout=300
        )
    assert proc.returncode == 1
    assert b"Traceback" not in err.read_bytes()
    found = [(p["line"], p["code"]) for p in map(json.loads, out.read_bytes().splitlines())]
    assert found == [(1, "CHANNEL_TYPE"), (2, "ENDPOINT_TOO_LARGE")]
    peak_mib = int(hwm.read_text()) / 1024
    assert peak_mib < 400, f"peak RSS {peak_mib:.0f} MiB for a 100 MB line"
