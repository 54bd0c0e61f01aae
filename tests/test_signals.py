"""Signals at random moments of a split with worker processes: SIGINT to the process, SIGINT to
its whole process group (a terminal's Ctrl-C), SIGTERM. Each ends within seconds with its exit
code (130, 143) and one stderr line, leaves no file behind and no process alive; a split the
signal came too late for is whole. A parent killed outright takes its workers with it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import random
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import psutil
import pytest

HEADER = "Id,ChannelType,Address,Attributes.note\n"
# The command, with worker processes even for a small file (as test_engine does).
LAUNCH = (
    "import sys, validator.engine as e; e.IN_PROCESS_BELOW = 0; "
    "from validator.cli import main; main(sys.argv[1:])"
)
SEEDS = (1, 2)
DEADLINE = 30  # seconds a signalled run may take to end: it never hangs


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("signals") / "in.csv"
    rows = (
        f"{i},SMS,+1206{i:07d},n{i}\n" if i % 7 else f"{i},SMS,555-{i:04d},n\n"
        for i in range(120_000)
    )
    path.write_text(HEADER + "".join(rows))
    return path


def start(source: Path, work: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-c", LAUNCH, "split", str(source), "--to", str(work / "out")]
    args += ["--piece-size", "96KiB", "--workers", "2", "--valid-only"]
    args += ["--rejects", str(work / "rejects.csv"), "--failures-out", str(work / "f.jsonl")]
    args += ["--output", "text", "--no-progress"]
    return subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def wait_for_start(proc: subprocess.Popen[bytes], work: Path) -> None:
    """Until the split has claimed its destination (it is past start-up, writing)."""
    claim = work / "out" / ".pinpoint-preflight-split"
    until = time.monotonic() + DEADLINE
    while not claim.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        assert time.monotonic() < until, "the split never started"
        time.sleep(0.01)


def session_processes(sid: int) -> list[psutil.Process]:
    """Every live (not zombie) process of the session the command started."""
    out = []
    for p in psutil.process_iter():
        try:
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (OSError, psutil.Error):
            continue
    return out


def everything_left(work: Path) -> list[str]:
    return sorted(str(p.relative_to(work)) for p in work.rglob("*"))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("how", ["SIGINT", "SIGINT to the group", "SIGTERM"])
def test_a_signal_at_a_random_moment_leaves_nothing(source, tmp_path, how, seed):
    rng = random.Random(f"{how}-{seed}")
    proc = start(source, tmp_path)
    sid = proc.pid  # start_new_session: the command leads its own session and group
    try:
        wait_for_start(proc, tmp_path)
        time.sleep(rng.uniform(0, 2.0))
        workers = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        if how == "SIGINT":
            proc.send_signal(signal.SIGINT)
        elif how == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(sid, signal.SIGINT)
        code = proc.wait(DEADLINE)
        err = proc.stderr.read().decode() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            os.killpg(sid, signal.SIGKILL)
            proc.wait()
    assert "Traceback" not in err
    left_alive = session_processes(sid)
    assert left_alive == [], f"{len(workers)} workers at the signal; alive after: {left_alive}"
    want = 143 if how == "SIGTERM" else 130
    what = "terminated" if how == "SIGTERM" else "interrupted"
    if (tmp_path / "out" / "manifest.txt").exists():
        # The signal came after the split was whole: it stays whole. Before the report was
        # printed, the exit says the signal (and no more); after, the exit is the report's.
        assert (code, err) in ((0, ""), (1, ""), (want, f"pinpoint-preflight: error: {what}\n"))
        assert not (tmp_path / "out" / ".pinpoint-preflight-split").exists()
        return
    assert code == want, (code, err)
    assert err == f"pinpoint-preflight: error: {what}: the partial split was removed\n"
    assert everything_left(tmp_path) == []


def kill_outright(proc: subprocess.Popen[bytes], below: int = 1, *, reap: bool = True) -> None:
    """Once ``below`` processes run below the command, SIGKILL it (reaped at once, or left a
    zombie while its workers look for it): every one of them is gone within 10 s, and nothing
    of its session is left."""
    sid = proc.pid  # start_new_session: the command leads its own session
    try:
        until = time.monotonic() + DEADLINE
        while len(psutil.Process(proc.pid).children(recursive=True)) < below:
            assert proc.poll() is None, "the command ended before its workers started"
            assert time.monotonic() < until, "no worker process started"
            time.sleep(0.01)
        workers = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        if reap:
            proc.wait(DEADLINE)
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert alive == []
        assert [p.pid for p in session_processes(sid)] == []
    finally:
        if proc.poll() is None:
            os.killpg(sid, signal.SIGKILL)
        proc.wait()


def test_workers_die_with_a_parent_killed_outright(source, tmp_path):
    proc = start(source, tmp_path)
    wait_for_start(proc, tmp_path)
    kill_outright(proc)


def test_sigterm_during_validate_removes_the_failures_out(source, tmp_path):
    args = [sys.executable, "-c", LAUNCH, "validate", str(source), "--pieces", "40"]
    args += ["--workers", "2", "--failures-out", str(tmp_path / "f.jsonl"), "--no-progress"]
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        until = time.monotonic() + DEADLINE
        while not list(tmp_path.glob(".f.jsonl.partial-*")):  # the run has begun writing
            assert proc.poll() is None and time.monotonic() < until
            time.sleep(0.01)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(DEADLINE)
        err = proc.stderr.read().decode() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert session_processes(proc.pid) == []
    if (tmp_path / "f.jsonl").exists():  # finished first (maybe not the report): whole
        assert code in (1, 143)
        assert len((tmp_path / "f.jsonl").read_text().splitlines()) == 120_000 // 7 + 1
        return
    assert (code, err) == (143, "pinpoint-preflight: error: terminated\n")
    assert everything_left(tmp_path) == []


# Each worker spends its first second before its initializer, as a loaded machine may make it.
SLOW_START = (
    "import sys, time, validator.engine as e, validator.signals as s; e.IN_PROCESS_BELOW = 0; "
    "real = s.worker_init; "
    "s.worker_init = lambda *a: (time.sleep(1.0), real(*a)); "
    "from validator.cli import main; main(sys.argv[1:])"
)


def test_a_worker_still_starting_when_its_parent_is_killed_does_not_outlive_it(source, tmp_path):
    """The flake of the test above, made certain: the parent is killed before a worker has asked
    for PR_SET_PDEATHSIG, and stays a zombie (unreaped) while the worker looks for it. A zombie
    answers kill(pid, 0), so the worker must look at its own parent pid instead."""
    args = [sys.executable, "-c", SLOW_START, "validate", str(source), "--pieces", "8"]
    args += ["--workers", "2", "--output", "off", "--no-progress"]
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    kill_outright(proc, reap=False)


COMMAND_SCRIPT = """
import sys, time
from concurrent.futures import ProcessPoolExecutor
import multiprocessing
from validator import signals


def slow_init(*args):  # a loaded machine: the worker reaches its initializer late
    time.sleep(1.0)
    signals.worker_init(*args)


if __name__ == "__main__":
    method = sys.argv[1]
    options = {**signals.pool_options(method), "initializer": slow_init}
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method), **options)
    list(pool.map(time.sleep, [60, 60]))
"""
# The processes below the command once its workers exist: the workers, plus the forkserver and
# multiprocessing's resource tracker where the start method has them.
DESCENDANTS = {"fork": 2, "forkserver": 4, "spawn": 3}


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_under_every_start_method_a_late_worker_dies_with_its_parent(tmp_path, method):
    """The same as above for each way multiprocessing starts workers (the command picks the
    forkserver when other threads run): under the forkserver the worker's parent is the
    server, so it asks the pipe whose write end only the command holds."""
    script = tmp_path / "command.py"
    script.write_text(COMMAND_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), method], start_new_session=True)
    kill_outright(proc, DESCENDANTS[method], reap=False)


# The command as a terminal user runs it: a thread already running when the pool starts (so the
# workers come from the forkserver, as under an S3 client's threads), the progress display's
# redraw thread drawing on the terminal, worker processes for any size of job.
THREADED = (
    "import sys, threading, time, validator.engine as e; e.IN_PROCESS_BELOW = 0; "
    "threading.Thread(target=time.sleep, args=(600,), daemon=True).start(); "
    "from validator.cli import main; main(sys.argv[1:])"
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@pytest.fixture(scope="module")
def big_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """17 MB: a few seconds of work for two workers, so that the signal comes during it."""
    path = tmp_path_factory.mktemp("signals") / "big.csv"
    rows = (
        f"{i},SMS,+1206{i:07d},n{i}\n" if i % 7 else f"{i},SMS,555-{i:04d},n\n"
        for i in range(600_000)
    )
    path.write_text(HEADER + "".join(rows))
    return path


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("command", ["validate", "split"])
def test_ctrl_c_on_a_terminal_during_a_forkserver_pool_is_one_line(
    big_source, tmp_path, command, seed
):
    """Ctrl-C (SIGINT to the whole group) while the forkserver's workers check pieces and the
    progress display draws: exit 130, one line after the progress display, no traceback,
    every output removed, no process left."""
    rng = random.Random(f"{command}-{seed}")
    outputs = ["--failures-out", str(tmp_path / "f.jsonl"), "--html", str(tmp_path / "r.html")]
    if command == "split":
        outputs += ["--to", str(tmp_path / "out"), "--valid-only"]
        outputs += ["--rejects", str(tmp_path / "rejects.csv")]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    args = [sys.executable, "-c", THREADED, command, str(big_source), "--piece-size", "256KiB"]
    args += ["--workers", "2", "--output", "text", *outputs]
    proc = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        start_new_session=True,
        env={**os.environ, "COLUMNS": "80", "TERM": "xterm"},
    )
    os.close(slave)
    os.set_blocking(master, False)
    chunks: list[bytes] = []

    def drain() -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while data := os.read(master, 65536):
                chunks.append(data)

    sid = proc.pid
    try:
        until = time.monotonic() + DEADLINE
        # The forkserver, the resource tracker and the two workers.
        while len(psutil.Process(proc.pid).children(recursive=True)) < 4:
            assert proc.poll() is None, b"".join(chunks).decode("utf-8", "replace")
            assert time.monotonic() < until, "no worker process started"
            drain()
            time.sleep(0.01)
        time.sleep(rng.uniform(0.1, 0.8))
        drain()
        os.killpg(sid, signal.SIGINT)
        while proc.poll() is None and time.monotonic() < until + DEADLINE:
            drain()
            time.sleep(0.01)
        code = proc.wait(DEADLINE)
        drain()
    finally:
        if proc.poll() is None:
            os.killpg(sid, signal.SIGKILL)
            proc.wait()
        os.close(master)
    err = ANSI.sub("\n", b"".join(chunks).decode("utf-8", "replace")).replace("\r", "\n")
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    # The forkserver and the resource tracker end when they see the command gone.
    _, alive = psutil.wait_procs(session_processes(sid), timeout=10)
    assert alive == [], [(p.pid, p.cmdline()) for p in alive]
    if code != 130:  # the signal came after the work was done: the outputs are whole
        assert code in (0, 1), (code, err)  # (split --valid-only: 0, the rejects took them)
        assert (tmp_path / "r.html").exists() and (tmp_path / "f.jsonl").exists()
        return
    said = [line for line in err.splitlines() if line.startswith("pinpoint-preflight")]
    removed = ": the partial split was removed" if command == "split" else ""
    assert said == [f"pinpoint-preflight: error: interrupted{removed}"], err
    assert [x for x in err.splitlines() if x.strip()][-1] == said[0]
    assert everything_left(tmp_path) == []
