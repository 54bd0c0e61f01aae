"""The progress display: on a terminal (a pty here, 40 columns wide) it shows bytes of the
total, percent, records, rate and time left for the job, every line within the width (so
nothing wraps into stale lines); silent in a pipe and with --quiet."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
import unicodedata
from pathlib import Path

import pytest

EXE = shutil.which("pinpoint-preflight")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "endpoints.csv"
    rows = ["ChannelType,Address"] + [f"EMAIL,user{i:06d}@example.com" for i in range(60_000)]
    path.write_text("\n".join(rows) + "\n")
    return path


def under_pty(*args: str, columns: int = 40) -> tuple[int, str, str]:
    """Run the command with stderr on a pty ``columns`` wide; exit code, stdout, stderr."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    cmd = [EXE, *args] if EXE else [sys.executable, "-m", "validator", *args]
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=env
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=120)
    return code, out, b"".join(chunks).decode("utf-8", "replace")


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def test_on_a_narrow_terminal_every_line_fits_and_says_what_is_done(csv_file):
    code, out, err = under_pty(
        "validate", str(csv_file), "--piece-size", "256KiB", "--query", "TotalProcessed"
    )
    assert code == 0, err
    assert out == "60000\n"
    plain = ANSI.sub("", err)
    lines = [seg for line in plain.split("\n") for seg in line.split("\r") if seg.strip()]
    assert lines, err
    assert max(width(line) for line in lines) <= 40, [x for x in lines if width(x) > 40]
    final = lines[-1]
    assert final.startswith("job") and "100%" in final
    size = csv_file.stat().st_size / 1e6
    assert final.startswith(f"job 100% {size:.1f} MB/{size:.1f} MB 60,000 r"), final


def test_on_a_wide_terminal_the_job_line_has_bytes_records_rate_and_eta(csv_file):
    code, _, err = under_pty(
        "validate", str(csv_file), "--piece-size", "256KiB", "--output", "off", columns=160
    )
    assert code == 0
    final = [line for line in ANSI.sub("", err).replace("\r", "\n").splitlines() if line.strip()][
        -1
    ]
    size = csv_file.stat().st_size / 1e6
    assert re.fullmatch(
        rf"job +━+╸? +100% {size:.1f}/{size:.1f} MB 60,000 records [0-9.]+ [kMG]?B/s "
        r"[0-9]:[0-9]{2}:[0-9]{2} *",
        final,
    ), final


def test_silent_in_a_pipe_and_with_quiet(csv_file):
    cmd = [EXE] if EXE else [sys.executable, "-m", "validator"]
    piped = subprocess.run(
        [*cmd, "validate", str(csv_file), "--output", "off"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (piped.returncode, piped.stderr) == (0, "")
    code, _, err = under_pty("validate", str(csv_file), "--quiet", "--progress", "--output", "off")
    assert (code, err) == (0, "")
