"""Pieces: CSV boundaries settled from a bounded window, never inside a record; the same report
and --failures-out however a job is cut, read in blocks or run in workers."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import validator
import validator.blocks as blocks
import validator.engine as engine
from validator.pieces import plan_pieces, settle_csv_boundary
from validator.read_csv import Columns, CsvReader, parse_header
from validator.source import list_sources

HEADER = b"Id,ChannelType,Address,Attributes.a\n"
WIDTH = 4


def row(i: int, kind: str) -> bytes:
    """One record (or line) of a kind; every structural defect the reader knows."""
    a = b"+1206555%04d" % (i % 10_000)
    return {
        "ok": b"%d,SMS,%s,v%d\n" % (i, a, i),
        "quoted": b'%d,EMAIL,"u%d@example.com","x, ""y"""\n' % (i, i),
        "newline": b'%d,SMS,%s,"two\nlines"\n' % (i, a),
        "broken": b'%d,SMS,"%s,v\n' % (i, a),
        "stray": b'%d,SMS,%s,x"y\n' % (i, a),
        "short": b"%d,SMS,%s\n" % (i, a),
        "long": b"%d,SMS,%s,v,w\n" % (i, a),
        "tab": b"%d,SMS,%s,a\tb\n" % (i, a),
        "cr_in": b'%d,SMS,%s,"a\rb"\n' % (i, a),
        "cr_out": b"%d,SMS,%s,a\rb\n" % (i, a),
        "latin1": b"%d,EMAIL,caf\xe9@example.com,v\n" % i,
        "latin1_short": b"%d,EMAIL,caf\xe9@example.com\n" % i,
        "blank": b"\n",
        "crlf": b"%d,SMS,%s,v\r\n" % (i, a),
        "e164": b"%d,SMS,555 %04d,v\n" % (i, i % 10_000),
        "huge_quote": b'%d,SMS,%s,"%s\n' % (i, a, b"z" * 70_000),
    }[kind]


KINDS = sorted(
    {"ok", "quoted", "newline", "broken", "stray", "short", "long", "tab", "cr_in", "cr_out"}
    | {"latin1", "latin1_short", "blank", "crlf", "e164"}
)


def generated(n: int, seed: int, *, huge: bool = False) -> tuple[bytes, int]:
    """A file of ``n`` lines of every kind, and how many records it holds."""
    rng = random.Random(seed)
    weights = {k: 1 for k in KINDS} | {"ok": 30, "quoted": 5}
    kinds = rng.choices(list(weights), list(weights.values()), k=n)
    if huge:
        kinds[n // 2] = "huge_quote"
    data = HEADER + b"".join(row(i, k) for i, k in enumerate(kinds))
    return data, sum(k != "blank" for k in kinds)


def report_of(path: Path, tmp: Path, **kw) -> tuple[dict, list[dict]]:
    out = tmp / "f.ndjson"
    report = validator.preflight(str(path), format="CSV", failures_out=out, **kw).to_dict()
    failures = [json.loads(x) for x in out.read_text().splitlines()]
    for f in failures:
        f.pop("piece")
    keep = ("TotalProcessed", "TotalFailures", "Failures", "FailuresByCode", "TotalWarnings")
    return {k: report[k] for k in keep} | {"Pieces": report["TotalPieces"]}, failures


def record_spans(data: bytes, header_end: int, bound: int = 65536) -> list[tuple[int, int]]:
    """Where a single reader finds each record: [start, end) byte ranges."""
    cols = Columns.from_header(parse_header(data[:header_end]))
    stream = io.BytesIO(data)
    stream.seek(header_end)
    reader = CsvReader(cols, offset=header_end, line=1, bound=bound, keep_spans=True)
    for _ in reader.read(stream, -1):
        pass
    return [
        (int(a), int(b))
        for _, starts, ends in reader.spans
        for a, b in zip(starts, ends, strict=True)
    ]


def inside_a_record(pos: int, spans: list[tuple[int, int]]) -> bool:
    return any(a < pos < b for a, b in spans)


# -- the settlement ------------------------------------------------------------------------------


def test_a_clean_window_ends_at_the_first_line_start_past_the_target():
    window = b"1,SMS,+1,a\n2,SMS,+2,b\n3,SMS,+3,c\n"
    assert settle_csv_boundary(window, 100, 105, WIDTH, at_line_start=True) == 111
    assert settle_csv_boundary(window, 100, 111, WIDTH, at_line_start=True) == 111
    # The window's first line is not known to start there: its quotes don't count.
    assert settle_csv_boundary(b'x"\n' + window, 97, 98, WIDTH) == 100


def test_a_quoted_line_break_across_the_target_moves_the_boundary_past_it():
    window = b'1,SMS,+1,a\n2,SMS,+2,"b\nc"\n3,SMS,+3,d\n'
    assert settle_csv_boundary(window, 0, 15, WIDTH, at_line_start=True, at_end=True) == 26
    assert settle_csv_boundary(window, 0, 23, WIDTH, at_line_start=True, at_end=True) == 26
    # Whether the last odd line closes after the window is not known: no boundary after it.
    assert settle_csv_boundary(window, 0, 15, WIDTH, at_line_start=True) is None


def test_a_quoted_line_break_in_a_last_line_without_a_newline_is_not_a_boundary():
    """The file's last line has no newline: a reader ends it at the end of the file, so the
    quote it closes makes one record of the two lines (no boundary inside it, none past it)."""
    window = b'1,SMS,+1,a\n2,SMS,+2,"b\nc"'
    assert settle_csv_boundary(window, 0, 15, WIDTH, at_line_start=True, at_end=True) is None
    assert settle_csv_boundary(window, 0, 5, WIDTH, at_line_start=True, at_end=True) == 11


def test_a_csv_file_ending_inside_a_two_line_record_counts_it_once(tmp_path):
    """Found by test_write's split property: a piece boundary inside the last record's quoted
    line break, in a file with no final newline, counted three records for two."""
    src = tmp_path / "in.csv"
    src.write_bytes(
        b"Id,ChannelType,Address,Attributes.note\n0,SMS,555-0000,n\n"
        b'1,EMAIL,u1@example.com,"line\nbreak"'
    )
    for piece_size in (None, 40, 45, 50):
        report = validator.preflight(str(src), format="CSV", workers=1, piece_size=piece_size)
        assert (report.total_processed, report.total_failures) == (2, 2), piece_size
        codes = [f.rsplit("[", 1)[1] for f in report.failures]
        assert codes == ["ADDRESS_E164]", "CSV_NEWLINE_IN_VALUE]"]


def test_a_broken_quote_costs_its_own_line_not_the_boundary():
    # The odd line cannot close within the bound: it is a broken quote, the next line a start.
    window = b'1,SMS,"+1,a\n' + b"2,SMS,+2,b\n" * 7000
    assert settle_csv_boundary(window, 0, 5, WIDTH, at_line_start=True) == 12
    # At the end of the file it cannot close either.
    short = b'1,SMS,"+1,a\n2,SMS,+2,b\n3,SMS,+3,c\n'
    assert settle_csv_boundary(short, 0, 5, WIDTH, at_line_start=True) is None
    assert settle_csv_boundary(short, 0, 5, WIDTH, at_line_start=True, at_end=True) == 12


def test_quoted_line_breaks_everywhere_still_settle_when_the_readings_meet():
    # Records of two lines each: read from a second line, the pair is not a row, so every
    # reading meets the single reader's at the next record.
    window = b'1,SMS,+1,"a\nb",c,d\n' * 100
    assert settle_csv_boundary(window, 0, 50, 6, at_line_start=True, at_end=True) == 57


def test_no_boundary_where_two_readings_never_meet():
    # '"\n"' is one row of one field: read from line 0 or from line 1, pairs never meet.
    assert settle_csv_boundary(b'"\n' * 5000, 0, 50, 1, at_line_start=True) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=50),
    cut=st.floats(min_value=0, max_value=1),
    lead=st.integers(min_value=0, max_value=200),
    bound=st.sampled_from([40, 200, 65536]),
)
def test_a_settled_boundary_is_a_record_start_of_the_single_reader(kinds, cut, lead, bound):
    data = HEADER + b"".join(row(i, k) for i, k in enumerate(kinds))
    header_end = len(HEADER)
    target = header_end + 1 + int(cut * (len(data) - header_end - 1))
    lo = max(header_end, target - bound - lead)
    p = settle_csv_boundary(
        data[lo:], lo, target, WIDTH, bound=bound, at_line_start=lo == header_end, at_end=True
    )
    if p is not None and p < len(data):
        assert p >= target
        assert not inside_a_record(p, record_spans(data, header_end, bound))


# -- the planner ---------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"Id", b"Id\n", b"Id\n1\n", b"{}", b"{}\n{}\n"])
@pytest.mark.parametrize("pieces", [2, 3, 1000])
def test_more_pieces_than_bytes_gives_fewer_pieces(tmp_path, data, pieces):
    fmt = "JSON" if data.startswith(b"{") else "CSV"
    src = tmp_path / f"x.{fmt.lower()}"
    src.write_bytes(data)
    plans = plan_pieces(list_sources([str(src)], fmt), pieces=pieces)
    cuts = [(p.start, p.end) for p in plans[0].pieces]
    assert 1 <= len(cuts) <= max(1, data.count(b"\n"))
    assert cuts[-1][1] == -1
    report = validator.preflight(str(src), format=fmt, pieces=pieces).to_dict()
    assert report["TotalProcessed"] == (data.count(b"\n") + (not data.endswith(b"\n"))) - (
        fmt == "CSV"
    )


def test_a_csv_boundary_is_never_inside_a_quoted_line_break(tmp_path):
    body = b"".join(row(i, "newline" if i % 2 else "ok") for i in range(2000))
    src = tmp_path / "n.csv"
    src.write_bytes(HEADER + body)
    plans = plan_pieces(list_sources([str(src)], "CSV"), pieces=20)
    spans = record_spans(HEADER + body, len(HEADER))
    cuts = [p.start for p in plans[0].pieces[1:]]
    assert len(cuts) == 19  # parallelism kept: every boundary settles near its target
    assert not any(inside_a_record(c, spans) for c in cuts)


# -- the same report however the job is cut ------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2])
def test_the_report_is_the_same_for_every_cut_block_size_and_worker_count(
    tmp_path, monkeypatch, seed
):
    src = tmp_path / "g.csv"
    data, records = generated(3000, seed, huge=seed == 2)
    src.write_bytes(data)
    base, base_failures = report_of(src, tmp_path, pieces=1, workers=1)
    assert base["TotalProcessed"] == records
    monkeypatch.setattr(engine, "IN_PROCESS_BELOW", 0)
    for kw in [
        {"pieces": 3, "workers": 1},
        {"pieces": 7, "workers": 2},
        {"piece_size": "10KB", "workers": 2},
        {"piece_size": 777, "workers": 1},
    ]:
        got, failures = report_of(src, tmp_path, **kw)
        assert got.pop("Pieces") > 1
        assert got == {k: v for k, v in base.items() if k != "Pieces"}
        assert failures == base_failures
    for block in (64, 1000, 4096):
        monkeypatch.setattr(blocks, "BLOCK_SIZE", block)
        got, failures = report_of(src, tmp_path, pieces=5, workers=1)
        assert failures == base_failures
    # The exact path alone (no block proven by counts) gives the same records and problems.
    monkeypatch.setattr(CsvReader, "_fast", lambda self, data, limit, final: False)
    got, failures = report_of(src, tmp_path, pieces=1, workers=1)
    assert failures == base_failures


def test_broken_quotes_at_every_block_and_piece_boundary(tmp_path, monkeypatch):
    lines = [row(i, "broken" if i % 9 == 4 else "ok") for i in range(900)]
    src = tmp_path / "b.csv"
    src.write_bytes(HEADER + b"".join(lines))
    base, base_failures = report_of(src, tmp_path, pieces=1, workers=1)
    assert base["TotalProcessed"] == 900
    assert [f["line"] for f in base_failures] == [i + 2 for i in range(900) if i % 9 == 4]
    assert {f["code"] for f in base_failures} == {"CSV_QUOTE"}
    monkeypatch.setattr(engine, "IN_PROCESS_BELOW", 0)
    for size in (len(lines[0]) * k for k in (1, 3, 10, 41)):
        monkeypatch.setattr(blocks, "BLOCK_SIZE", size)
        for workers in (1, 2):
            got, failures = report_of(src, tmp_path, piece_size=size * 2, workers=workers)
            assert got.pop("Pieces") > 1
            assert failures == base_failures
            assert got == {k: v for k, v in base.items() if k != "Pieces"}
