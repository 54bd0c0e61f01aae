"""Properties over random CSV (valid and broken rows, quotes, quoted line breaks, lone CRs, tabs,
bytes that are not UTF-8): no crash; TotalProcessed equals an independent count; the report and
--failures-out do not depend on how the job is cut, read or run; split's pieces and rejects are
the input's records, byte for byte."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from csv_tokens import HEADER, TOKENS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import validator
import validator.blocks as blocks
import validator.engine as engine

WIDTH = 4
BOUND = 64 * 1024


body_st = st.lists(st.sampled_from(TOKENS), max_size=80).map(b"".join)


def examples(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def reference_records(body: bytes) -> list[tuple[int, int]]:
    """The records of a CSV body as [start, end) ranges, by the rule in read_csv's docstring,
    line by line in plain Python (no numpy, no pyarrow)."""
    lines = []
    pos = 0
    while pos < len(body):
        nl = body.find(b"\n", pos)
        end = len(body) if nl < 0 else nl + 1
        lines.append((pos, end))
        pos = end

    def odd(k: int) -> bool:
        a, b = lines[k]
        return body.count(b'"', a, b) % 2 == 1

    def one_row(text: bytes) -> bool:
        try:
            rows = list(csv.reader(io.StringIO(text.decode("utf-8", "replace")), strict=True))
        except csv.Error:
            return False
        return len(rows) == 1 and len(rows[0]) == WIDTH

    out = []
    i = 0
    while i < len(lines):
        start, end = lines[i]
        if body[start:end].rstrip(b"\n") in (b"", b"\r"):
            i += 1
            continue
        if odd(i):
            j = next((k for k in range(i + 1, len(lines)) if odd(k)), None)
            if j is not None:
                close = lines[j][1]
                if close - start <= BOUND and one_row(body[start:close]):
                    out.append((start, close))
                    i = j + 1
                    continue
        out.append((start, end))
        i += 1
    return out


def run(path: Path, tmp: Path, **kw) -> tuple[dict, list[dict]]:
    out = tmp / "failures.ndjson"
    report = validator.preflight(str(path), format="CSV", failures_out=out, **kw).to_dict()
    failures = [json.loads(x) for x in out.read_text().splitlines()]
    for f in failures:
        f.pop("piece")
    keep = ("TotalProcessed", "TotalFailures", "Failures", "FailuresByCode", "TotalWarnings")
    return {k: report[k] for k in keep}, failures


@examples(60)
@given(body=body_st, block=st.sampled_from([None, 16, 100]))
def test_no_crash_and_every_cut_gives_the_same_report(tmp_path_factory, body, block):
    tmp = tmp_path_factory.mktemp("p")
    src = tmp / "in.csv"
    src.write_bytes(HEADER + body)
    base, base_failures = run(src, tmp, pieces=1, workers=1)
    assert base["TotalProcessed"] == len(reference_records(body))
    lines = {f["line"] for f in base_failures} - {None}  # None: the file (FILE_EMPTY)
    assert all(2 <= x <= body.count(b"\n") + 2 for x in lines)
    old = blocks.BLOCK_SIZE
    try:
        if block:
            blocks.BLOCK_SIZE = block
        for kw in ({"pieces": 3}, {"piece_size": 40}, {"piece_size": 150}):
            got, failures = run(src, tmp, workers=1, **kw)
            assert got == base
            assert failures == base_failures
    finally:
        blocks.BLOCK_SIZE = old


@examples(8)
@given(body=body_st)
def test_two_worker_processes_give_the_same_report(tmp_path_factory, body):
    tmp = tmp_path_factory.mktemp("w")
    src = tmp / "in.csv"
    src.write_bytes(HEADER + body)
    base = run(src, tmp, pieces=1, workers=1)
    old = engine.IN_PROCESS_BELOW
    engine.IN_PROCESS_BELOW = 0
    try:
        assert run(src, tmp, pieces=4, workers=2) == base
    finally:
        engine.IN_PROCESS_BELOW = old


def test_two_worker_processes_on_a_file_of_every_kind(tmp_path, monkeypatch):
    body = b"".join(TOKENS[i * 7 % len(TOKENS)] for i in range(4000))
    src = tmp_path / "in.csv"
    src.write_bytes(HEADER + body)
    base = run(src, tmp_path, pieces=1, workers=1)
    assert base[0]["TotalProcessed"] == len(reference_records(body))
    monkeypatch.setattr(engine, "IN_PROCESS_BELOW", 0)
    for pieces in (2, 5, 13):
        assert run(src, tmp_path, pieces=pieces, workers=2) == base


def _terminated(record: bytes) -> bytes:
    return record if record.endswith(b"\n") else record + b"\n"


@examples(30)
@given(body=body_st, piece_size=st.sampled_from([40, 120, 10_000]))
def test_split_pieces_and_rejects_are_the_input_records(tmp_path_factory, body, piece_size):
    tmp = tmp_path_factory.mktemp("s")
    src = tmp / "in.csv"
    src.write_bytes(HEADER + body)
    try:
        validator.split(
            str(src),
            to=str(tmp / "out"),
            format="CSV",
            workers=1,
            piece_size=piece_size,
            valid_only=True,
            rejects=str(tmp / "rejects.csv"),
        )
    except validator.errors.PreflightFailed:  # pragma: no cover - split reports, not raises
        pytest.fail("split raised")
    records = [_terminated(body[a:b]) for a, b in reference_records(body)]
    if not records:  # JOB_EMPTY: nothing is written
        assert not (tmp / "out" / "manifest.txt").exists()
        return
    manifest = json.loads((tmp / "out" / "manifest.txt").read_text())
    kept = b"".join(
        (tmp / "out" / p["Path"]).read_bytes()[len(HEADER) :] for p in manifest["Pieces"]
    )
    rejects = tmp / "rejects.csv"
    rejected = rejects.read_bytes()[len(HEADER) :] if rejects.exists() else b""
    # Each record went, whole and in order, to the pieces or to the rejects.
    i = j = 0
    for record in records:
        if kept.startswith(record, i):
            i += len(record)
        else:
            assert rejected.startswith(record, j), (record, rejected[j : j + 80])
            j += len(record)
    assert (i, j) == (len(kept), len(rejected))
    assert manifest["Totals"]["InputRecords"] == len(records)
