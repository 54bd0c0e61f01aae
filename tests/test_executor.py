"""The executor seam of ``engine.py``: any ``concurrent.futures.Executor`` runs the pieces, and
the report, ``--failures-out`` and split's outputs are the same as the default run's."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

import validator

PIECES = 6


def _data(tmp_path: Path, fmt: str) -> Path:
    """Every kind of problem the fold orders: failures, warnings, job-wide rules, quoted line
    breaks across piece ends (CSV), structural problems."""
    if fmt == "CSV":
        rows = []
        for i in range(3000):
            address = "555 0100" if i % 11 == 3 else f"+1206555{i:04d}"
            if i % 11 == 7:
                rows.append(f'{i % 900},SMS,"{address}\nsecond line",u{i % 40},n{i}\n')
            elif i == 2990:
                rows.append(f'{i},SMS,"{address},u1,n\n')  # an unbalanced quote in the last piece
            elif i % 29 == 0:
                rows.append(f"{i},SMS,{address}\n")  # short
            else:
                rows.append(f'{i % 900},SMS,{address},u{i % 40},"note, {i}"\n')
        text = "Id,ChannelType,Address,User.UserId,Attributes.note\n" + "".join(rows)
        path = tmp_path / "g.csv"
    else:
        rows = []
        for i in range(3000):
            address = "555 0100" if i % 11 == 3 else f"+1206555{i:04d}"
            if i % 31 == 0:
                rows.append("{not json\n")
            else:
                rows.append(
                    f'{{"Id":"{i % 900}","ChannelType":"SMS","Address":"{address}",'
                    f'"User":{{"UserId":"u{i % 40}"}}}}\n'
                )
        text = "".join(rows)
        path = tmp_path / "g.json"
    path.write_text(text)
    return path


def _comparable(report: validator.Report) -> dict:
    d = report.to_dict()
    for key in ("Id", "CreationDate", "CompletionDate"):
        d.pop(key)
    return d


@pytest.fixture(params=["threads", "processes"])
def executor(request) -> Iterator[Executor]:
    if request.param == "threads":
        pool: Executor = ThreadPoolExecutor(2)
    else:
        # spawn, not forkserver: a forkserver started here would serve later tests' workers
        # with this moment's environment (their AWS variables unset).
        pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"))
    with pool:
        yield pool


def _still_running(pool: Executor) -> bool:
    return pool.submit(abs, -3).result(timeout=60) == 3


@pytest.mark.parametrize("fmt", ["CSV", "JSON"])
def test_a_given_executor_gives_the_default_report_and_failures_out(tmp_path, executor, fmt):
    src = _data(tmp_path, fmt)
    base = validator.preflight(
        str(src), format=fmt, pieces=PIECES, failures_out=tmp_path / "base.ndjson"
    )
    got = validator.preflight(
        str(src),
        format=fmt,
        pieces=PIECES,
        failures_out=tmp_path / "got.ndjson",
        executor=executor,
    )
    assert base.total_pieces > 1
    assert base.total_failures > 0 and base.total_warnings > 0
    assert _comparable(got) == _comparable(base)
    assert (tmp_path / "got.ndjson").read_bytes() == (tmp_path / "base.ndjson").read_bytes()
    assert _still_running(executor)  # the caller's executor: not shut down by the library


def test_a_given_executor_gives_the_default_split_byte_for_byte(tmp_path, executor):
    src = _data(tmp_path, "CSV")

    def run(root: Path, **kw) -> tuple[dict, str, dict[str, bytes]]:
        root.mkdir()
        result = validator.split(
            str(src),
            to=str(root / "out"),
            format="CSV",
            pieces=PIECES,
            valid_only=True,
            rejects=str(root / "rejects.csv"),
            failures_out=root / "failures.ndjson",
            **kw,
        )
        manifest = json.dumps(result.manifest).replace(str(root), "ROOT")
        files = {
            str(p.relative_to(root)): p.read_bytes()
            for p in root.rglob("*")
            if p.is_file() and p.name != "manifest.txt"  # it names the destination
        }
        return _comparable(result.report), manifest, files

    base = run(tmp_path / "base")
    got = run(tmp_path / "got", executor=executor)
    assert got == base
    assert len(base[2]) > 4  # pieces, rejects, their reasons, --failures-out
    assert _still_running(executor)


def test_a_given_executor_is_used_even_for_a_small_job(tmp_path):
    # The default runs a job this small in this process; a given executor still gets the work.
    src = _data(tmp_path, "JSON")
    seen = []

    class Counting(ThreadPoolExecutor):
        def map(self, fn, *iterables, **kw):  # type: ignore[override]
            seen.append(len(iterables[0]))
            return super().map(fn, *iterables, **kw)

    with Counting(2) as pool:
        r = validator.preflight(str(src), format="JSON", pieces=PIECES, executor=pool)
    assert seen == [r.total_pieces] and r.total_pieces == PIECES


def test_the_default_process_pool_loses_no_record_to_a_quote_in_the_last_piece(tmp_path):
    # Results come back from worker processes as copies: the last piece of a file is known
    # by its index, so its odd quote count is settled, not held back for a piece that never
    # comes (which lost every record from the held piece on). In a process of its own, so
    # that the pool the engine picks (fork or forkserver) is started there.
    src = _data(tmp_path, "CSV")
    base = validator.preflight(str(src), format="CSV", pieces=PIECES, workers=1)
    script = (
        "import json, validator, validator.engine as e\n"
        "e.IN_PROCESS_BELOW = 0\n"
        f"r = validator.preflight({str(src)!r}, format='CSV', pieces={PIECES}, workers=2)\n"
        "print(json.dumps(r.to_dict()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    pooled = json.loads(out.stdout)
    assert pooled["TotalProcessed"] == base.total_processed == 3000
    for key in ("Id", "CreationDate", "CompletionDate"):
        pooled.pop(key)
    assert pooled == _comparable(base)
