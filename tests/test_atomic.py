"""Output paths: regular files appear whole or not at all; streams, FIFOs, descriptors and
devices are written to as they are; a symlink is followed; a full disk is one line (253) and
leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from validator import atomic, cli
from validator.errors import LocalPathError, UsageError

HEADER = b"Id,ChannelType,Address\n"


def failing_csv(path: Path, rows: int) -> Path:
    """A CSV whose every record fails (ADDRESS_E164): one --failures-out line each."""
    path.write_bytes(HEADER + b"".join(f"{i},SMS,555-{i:06d}\n".encode() for i in range(rows)))
    return path


def run(*args: str, pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[bytes]:
    r = subprocess.run(
        [sys.executable, "-m", "validator", *args],
        capture_output=True,
        timeout=120,
        pass_fds=pass_fds,
    )
    assert b"Traceback" not in r.stderr, r.stderr.decode()
    return r


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- the helper itself ---------------------------------------------------------------------------


def test_a_regular_file_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"earlier\n")
    with pytest.raises(RuntimeError), atomic.atomic_output(target) as out:
        out.write(b"half")
        assert files_under(tmp_path) != ["out.jsonl"]  # the temporary file, beside it
        raise RuntimeError
    assert files_under(tmp_path) == ["out.jsonl"]
    assert target.read_bytes() == b"earlier\n"  # untouched
    with atomic.atomic_output(target) as out:
        out.write(b"whole\n")
        assert target.read_bytes() == b"earlier\n"  # not yet
    assert target.read_bytes() == b"whole\n"
    assert files_under(tmp_path) == ["out.jsonl"]


def test_a_symlink_is_followed_never_replaced(tmp_path):
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "problems.jsonl"
    real.write_bytes(b"old\n")
    os.chmod(real, 0o640)
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    with atomic.atomic_output(link) as out:
        out.write(b"new\n")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new\n"
    assert stat.S_IMODE(real.stat().st_mode) == 0o640  # the file's permissions are kept
    assert files_under(tmp_path) == ["link.jsonl", "real", "real/problems.jsonl"]
    # A dangling link: the file it names is created, the link stays.
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "real" / "later.jsonl")
    with atomic.atomic_output(dangling) as out:
        out.write(b"x\n")
    assert dangling.is_symlink() and (tmp_path / "real" / "later.jsonl").read_bytes() == b"x\n"


def test_a_device_stays_a_device():
    with atomic.atomic_output("/dev/null") as out:
        out.write(b"gone\n")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_folder_or_a_missing_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="is a folder"), atomic.atomic_output(tmp_path):
        pass
    with (
        pytest.raises(UsageError, match="no such folder"),
        atomic.atomic_output(tmp_path / "nope" / "x.jsonl"),
    ):
        pass
    assert files_under(tmp_path) == []


def test_a_descriptor_that_is_not_open_is_a_usage_error():
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(UsageError, match="not open"), atomic.atomic_output(f"/dev/fd/{fd}"):
        pass


# --- through the command line ----------------------------------------------------------------


def test_dash_and_dev_stdout_and_dev_stderr_are_streamed(tmp_path):
    src = failing_csv(tmp_path / "in.csv", 3)
    for target, stream in (("-", "stdout"), ("/dev/stdout", "stdout"), ("/dev/stderr", "stderr")):
        r = run("validate", str(src), "--failures-out", target, "--output", "text")
        assert r.returncode == 1
        lines = [ln for ln in getattr(r, stream).splitlines() if ln.startswith(b"{")]
        assert [json.loads(ln)["line"] for ln in lines] == [2, 3, 4], (target, r)
    assert files_under(tmp_path) == ["in.csv"]


def test_dev_stdout_redirected_to_a_file_is_not_truncated(tmp_path):
    """/dev/stdout pointing at a file: the report and the failures share it, neither lost."""
    src = failing_csv(tmp_path / "in.csv", 2)
    out = tmp_path / "all.txt"
    with out.open("wb") as fh:
        args = [sys.executable, "-m", "validator", "validate", str(src)]
        args += ["--failures-out", "/dev/stdout", "--output", "json"]
        r = subprocess.run(
            args,
            stdout=fh,
            stderr=subprocess.PIPE,
            timeout=120,
        )
    assert r.returncode == 1 and r.stderr == b""
    text = out.read_bytes()
    assert text.count(b'"code":"ADDRESS_E164"') == 2
    assert b'"JobStatus"' in text


def test_a_process_substitution_descriptor_is_streamed(tmp_path):
    """As bash's >(cmd) hands over: /dev/fd/N, the write end of a pipe."""
    src = failing_csv(tmp_path / "in.csv", 4)
    read_end, write_end = os.pipe()
    got = bytearray()
    reader = threading.Thread(target=lambda: got.extend(_read_all(read_end)))
    reader.start()
    try:
        fd_path = f"/dev/fd/{write_end}"
        r = run("validate", str(src), "--failures-out", fd_path, pass_fds=(write_end,))
    finally:
        os.close(write_end)
        reader.join(30)
    assert r.returncode == 1
    assert [json.loads(ln)["line"] for ln in got.splitlines()] == [2, 3, 4, 5]
    assert files_under(tmp_path) == ["in.csv"]


def _read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def test_a_fifo_is_streamed_to(tmp_path):
    src = failing_csv(tmp_path / "in.csv", 5)
    fifo = tmp_path / "problems.fifo"
    os.mkfifo(fifo)
    got = bytearray()
    reader = threading.Thread(target=lambda: got.extend(fifo.read_bytes()))
    reader.start()
    r = run("validate", str(src), "--failures-out", str(fifo))
    reader.join(30)
    assert r.returncode == 1
    assert len(got.splitlines()) == 5
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert files_under(tmp_path) == ["in.csv", "problems.fifo"]


def test_split_rejects_to_standard_output(tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(HEADER + b"1,SMS,+12065550100\n2,SMS,555\n3,SMS,+12065550101\n")
    r = run(
        "split", str(src), "--to", str(tmp_path / "out"), "--valid-only", "--rejects", "-",
        "--output", "text",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr  # failures all in the rejects: split --valid-only passes
    assert r.stdout.startswith(HEADER + b"2,SMS,555\n")
    written = files_under(tmp_path / "out")
    assert written == ["job-0001", "job-0001/part-00001-in.csv", "manifest.txt"]


def test_failures_out_as_a_symlink_through_the_cli(tmp_path):
    src = failing_csv(tmp_path / "in.csv", 2)
    (tmp_path / "logs").mkdir()
    link = tmp_path / "latest.jsonl"
    link.symlink_to(tmp_path / "logs" / "run1.jsonl")
    assert cli.run(["validate", str(src), "--failures-out", str(link)]) == 1
    assert link.is_symlink()
    assert len((tmp_path / "logs" / "run1.jsonl").read_bytes().splitlines()) == 2


# --- a full disk ---------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 64 KiB (root only; skipped with the reason otherwise); ``remount`` resizes."""
    if os.geteuid() != 0:
        pytest.skip("a small tmpfs needs root (mount -t tmpfs); the tests do not run as root")
    disk = tmp_path / "disk"
    disk.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {r.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def remount(disk: Path, size: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)


def test_failures_out_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, small_disk, capsys):
    src = failing_csv(tmp_path / "in.csv", 3000)  # about 400 KB of problems
    code = cli.run(["validate", str(src), "--failures-out", str(small_disk / "p.jsonl")])
    err = capsys.readouterr().err
    assert code == 253
    assert err == (
        f"pinpoint-preflight: error: cannot write {small_disk / 'p.jsonl'}: "
        "no space left on the device\n"
    )
    assert files_under(small_disk) == []


def test_library_raises_config_error_on_a_full_disk(tmp_path, small_disk):
    import validator

    src = failing_csv(tmp_path / "in.csv", 3000)
    with pytest.raises(LocalPathError, match="no space left"):
        validator.preflight(str(src), failures_out=small_disk / "p.jsonl")
    assert files_under(small_disk) == []


def test_split_on_a_full_disk_removes_everything_whatever_fills_it(tmp_path, small_disk, capsys):
    """Disk sizes from too small for the first piece to big enough for all: each run either
    writes a split that matches its manifest, or fails with 253, one line, and leaves nothing.
    Across the sizes, the disk fills while writing pieces, the rejects, and the manifest."""
    rows = [f"{i},SMS,+1206{i:07d}\n" if i % 5 else f"{i},SMS,555-{i:04d}\n" for i in range(1200)]
    src = tmp_path / "in.csv"
    src.write_bytes(HEADER + "".join(rows).encode())
    seen: set[str] = set()
    passed = 0
    for kib in (8, *range(40, 140, 4)):
        remount(small_disk, kib << 10)
        out, rejects = small_disk / "out", small_disk / "rejects.csv"
        args = ["split", str(src), "--to", str(out), "--piece-size", "2KiB", "--workers", "1"]
        args += ["--valid-only", "--rejects", str(rejects), "--output", "text"]
        code = cli.run(args)
        captured = capsys.readouterr()
        if code == 253:
            lines = captured.err.splitlines()
            assert len(lines) == 1 and "no space left on the device" in lines[0], captured.err
            assert lines[0].endswith("the split was not written (what it had written was removed)")
            what = lines[0].partition("cannot write ")[2].partition(":")[0]
            seen.add(
                "manifest" if what.endswith("manifest.txt")
                else "rejects" if "rejects.csv" in what
                else "piece" if "/part-" in what
                else lines[0]
            )  # fmt: skip
            assert files_under(small_disk) == [], kib
        else:
            assert code == 0, captured.err  # every failure went to the rejects: the gate passes
            manifest = json.loads((out / "manifest.txt").read_text())
            listed = {p["Path"] for p in manifest["Pieces"]} | {"manifest.txt"}
            on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
            assert on_disk == listed
            passed += 1
            shutil.rmtree(out)
            rejects.unlink()
            with contextlib.suppress(FileNotFoundError):
                (small_disk / "rejects.csv.reasons.jsonl").unlink()
    assert passed >= 1
    assert {"piece", "rejects", "manifest"} <= seen, seen
