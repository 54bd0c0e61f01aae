"""The progress display: on a terminal (a pty here, 40 columns wide) it shows bytes of the
total, percent, records, rate and time left for the job, every line within the width (so
nothing wraps into stale lines); its counts move inside a piece, in this process and from
worker processes; silent in a pipe and with --quiet; the report is the same either way."""

from __future__ import annotations

import contextlib
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
from fault_proxy import Fault, FaultProxy

EXE = shutil.which("pinpoint-preflight")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "endpoints.csv"
    rows = ["ChannelType,Address"] + [f"EMAIL,user{i:06d}@example.com" for i in range(60_000)]
    path.write_text("\n".join(rows) + "\n")
    return path


def under_pty(*args: str, columns: int = 40, launch: str | None = None) -> tuple[int, str, str]:
    """Run the command (or ``python -c launch``) with stderr on a pty ``columns`` wide; exit
    code, stdout, stderr."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    cmd = [EXE, *args] if EXE else [sys.executable, "-m", "validator", *args]
    if launch is not None:
        cmd = [sys.executable, "-c", launch, *args]
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
        rf"job +━+╸? +100% {size:.1f}/{size:.1f} MB 60,000 records 7/7 pieces [0-9.]+ [kMG]?B/s "
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


# The command with the readers' blocks at 128 KiB instead of 8 MiB, so that a file of a few MB
# is many blocks (the tick comes once a block), each of which then takes 0.1 s more, as on a slow
# disk or a loaded machine (in the tick, after it has counted: the counts themselves are real),
# and worker processes for any size of job.
SLOW_BLOCKS = (
    "import sys, time, validator.blocks as b, validator.engine as e, validator.progress as p; "
    "b.BLOCK_SIZE = 128 << 10; e.IN_PROCESS_BELOW = 0; tick = p.Meter.tick; "
    "p.Meter.tick = lambda *a: (tick(*a), time.sleep(0.1)) and None; "
    "from validator.cli import main; main(sys.argv[1:])"
)
ROWS = 120_000
SAME = "{P: TotalProcessed, F: Failures, D: FailureDetails, W: WarningDetails, S: Files}"


@pytest.fixture(scope="module")
def slow_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3.2 MB, one warning in a thousand rows: 25 blocks of 128 KiB."""
    path = tmp_path_factory.mktemp("progress") / "audience.csv"
    rows = (
        f"SMS,+1{i:07d}\n" if i % 1000 == 0 else f"EMAIL,user{i:07d}@example.com\n"
        for i in range(ROWS)
    )
    path.write_text("ChannelType,Address\n" + "".join(rows))
    return path


def shown(err: str, name: str) -> list[int]:
    """The distinct record counts the line of ``name`` showed, in the order first shown."""
    plain = ANSI.sub("\n", err)
    seen = re.findall(rf"^{re.escape(name)} +\d+% [^\n]*? ([0-9,]+) rec", plain, re.M)
    return list(dict.fromkeys(int(v.replace(",", "")) for v in seen))


@pytest.mark.parametrize(
    "how",
    [["--workers", "1"], ["--pieces", "2", "--workers", "2"]],
    ids=["in this process", "from worker processes"],
)
def test_the_counts_move_inside_a_piece(slow_file, how):
    """One piece (or two, on two worker processes): the counts used to move only when a piece
    ended (0, then the first piece, then all). Now the job's and the file's lines show several
    counts between, each higher than the last; the job's ends exact; the report is the one a
    pipe gets."""
    code, out, err = under_pty(
        "validate", str(slow_file), "--query", SAME, *how, columns=80, launch=SLOW_BLOCKS
    )
    piped = subprocess.run(
        [sys.executable, "-c", SLOW_BLOCKS, "validate", str(slow_file), "--query", SAME, *how],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (code, piped.stderr) == (piped.returncode, "")
    assert out == piped.stdout
    for name in ("job", slow_file.name):  # a file's line goes when the file is done
        counts = shown(err, name)
        assert counts == sorted(counts), (name, counts)
        assert counts[-1] == ROWS or name != "job", (name, counts)
        between = [c for c in counts if 0 < c < ROWS]
        assert len(between) >= 3, (name, counts)
    size = slow_file.stat().st_size / 1e6
    assert f"job 100% {size:.1f} MB/{size:.1f} MB {ROWS:,} rec" in ANSI.sub("\n", err)


# A slow source: standard input fed by a process that writes 64 KiB every 50 ms (~1.3 MB/s,
# as S3 at a few MB/s), at the readers' real 8 MiB blocks. The whole input is less than one
# block: a count that moved once a block would show 0, then everything.
SLOW_WRITER = (
    "import sys, time; data = open(sys.argv[1], 'rb').read(); out = sys.stdout.buffer\n"
    "for i in range(0, len(data), 64 << 10):\n"
    "    out.write(data[i : i + (64 << 10)]); out.flush(); time.sleep(0.05)\n"
)


def read_pty_of(proc: subprocess.Popen[bytes], master: int) -> str:
    """Everything the command wrote to the pty, once it has closed it."""
    chunks = []
    with contextlib.suppress(OSError):  # EIO: the child closed the pty
        while data := os.read(master, 65536):
            chunks.append(data)
    os.close(master)
    return b"".join(chunks).decode("utf-8", "replace")


def job_bytes_shown(err: str, total: str) -> list[float]:
    """The distinct bytes-done the job's line showed (``total``: ``?`` or the size shown)."""
    plain = ANSI.sub("\n", err)
    seen = re.findall(rf"^job +[?0-9]+% ([0-9.]+) (kB|MB|B|bytes)/{re.escape(total)} ", plain, re.M)
    scale = {"B": 1, "bytes": 1, "kB": 1e3, "MB": 1e6}
    return list(dict.fromkeys(float(v) * scale[u] for v, u in seen))


def test_bytes_move_as_they_are_read_from_a_slow_source(slow_file):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    writer = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(slow_file)], stdout=subprocess.PIPE
    )
    cmd = [EXE] if EXE else [sys.executable, "-m", "validator"]
    proc = subprocess.Popen(
        [*cmd, "validate", "-", "--format", "CSV", "--query", "TotalProcessed"],
        stdin=writer.stdout,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "COLUMNS": "80", "TERM": "xterm"},
    )
    assert writer.stdout is not None
    writer.stdout.close()
    os.close(slave)
    err = read_pty_of(proc, master)
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert (proc.wait(timeout=120), writer.wait(timeout=120), out) == (0, 0, f"{ROWS}\n")
    # Standard input has no known size: "job ?% 1.2 MB/? ..."
    done = job_bytes_shown(err, "?")
    between = [d for d in done if 0 < d < slow_file.stat().st_size * 0.95]
    # ~2.5 s of reading, redrawn 4 times a second: at least twice a second a new count.
    assert len(between) >= 5, done
    assert done == sorted(done), done


# The command with worker processes for any size of job.
WORKERS_ALWAYS = (
    "import sys, validator.engine as e; e.IN_PROCESS_BELOW = 0; "
    "from validator.cli import main; main(sys.argv[1:])"
)


def test_bytes_move_as_they_are_read_from_a_slow_s3(tmp_path, s3_env):
    """The same on S3 served at 2 MB/s a request (a proxy in front of the S3 test server), two
    pieces of 6 MB on two worker processes: S3's ranged GETs (1 MiB, then 2, 4, 8) tick their
    bytes as they come in, not once a range or once a block. (A piece's first 1 MiB is fetched
    when it is opened, before the display's hook is on the stream: 0.5 s here.)"""
    rows = "".join(f"EMAIL,user{i:07d}@example.com\n" for i in range(400_000))
    path = tmp_path / "big.csv"
    path.write_text("ChannelType,Address\n" + rows)
    size = path.stat().st_size
    bucket = s3_env.make_bucket("progress")
    s3_env.client().upload_file(str(path), bucket, "in/big.csv")
    with FaultProxy(s3_env.endpoint_url) as proxy:
        proxy.add(Fault("GetObject", action="slow", rate=2_000_000, times=None))
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        args = [sys.executable, "-c", WORKERS_ALWAYS, "validate", f"s3://{bucket}/in/"]
        args += ["--endpoint-url", proxy.endpoint_url, "--pieces", "2", "--workers", "2"]
        proc = subprocess.Popen(
            [*args, "--query", "TotalProcessed"],
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "COLUMNS": "80", "TERM": "xterm"},
        )
        os.close(slave)
        err = read_pty_of(proc, master)
        out = proc.stdout.read().decode() if proc.stdout else ""
        assert (proc.wait(timeout=120), out) == (0, "400000\n"), err
        assert any(f.fired for f in proxy.faults)
    done = job_bytes_shown(err, f"{size / 1e6:.1f} MB")
    between = [d for d in done if 0 < d < size * 0.95]
    # ~3 s of reading; a count that moved once a range would show 6 at most.
    assert len(between) >= 8, done
    assert done == sorted(done), done
    assert done[-1] == round(size / 1e5) * 1e5, done  # the last line: all of it
