"""The worker's job (``validator/piece.py``): one piece read and checked into plain data."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from validator.piece import PieceTask, run_piece
from validator.pieces import plan_pieces
from validator.source import list_sources

HEADER = "Id,ChannelType,Address,User.UserId,Attributes.plan\n"


def tasks(path: Path, fmt: str, pieces: int) -> list[PieceTask]:
    listing = list_sources([str(path)], fmt)
    plans = plan_pieces(listing, pieces=pieces)
    return [PieceTask(p, listing.format, plan.columns, None) for plan in plans for p in plan.pieces]


def where(res) -> list[tuple]:
    return [(p.record, p.line, p.field, p.code, p.severity) for p in res.problems]


def test_a_csv_piece_gives_its_counts_problems_and_hashed_keys(tmp_path):
    src = tmp_path / "a.csv"
    src.write_text(
        HEADER + "1,SMS,+12065550100,u1,gold\n2,SMS,555,u1,\n3,SMS,+12065550102\n"
        "1,SMS,+12065550103,u2,\n"
    )
    (task,) = tasks(src, "CSV", 1)
    res = run_piece(task)
    assert (res.records, res.newlines, res.first_line, res.last_line) == (4, 5, 2, 5)
    assert res.bytes_read == src.stat().st_size - len(HEADER)
    assert (res.quotes, res.quote_trouble) == (0, False)
    # Structural problems of the piece first, then the column-wide checks of its table.
    assert where(res) == [
        (2, 4, None, "CSV_ROW_WIDTH", "error"),
        (1, 3, "Address", "ADDRESS_E164", "error"),
    ]
    assert res.attribute_names == {"Attributes.plan"}
    # Keys of the sound records only (record 2 is too short to have any), in source order.
    for keys in (res.users, res.ids):
        assert keys.records.tolist() == [0, 1, 3]
        assert keys.lines.tolist() == [2, 3, 5]
    assert res.users.counts[res.users.which].tolist() == [2, 2, 1]  # u1, u1, u2
    assert res.ids.counts[res.ids.which].tolist() == [2, 1, 2]  # 1, 2, 1
    assert res.users.which[0] == res.users.which[1] != res.users.which[2]
    assert res.ids.which[0] == res.ids.which[2] != res.ids.which[1]
    assert not res.users.push.any()
    assert res.spans is None


def test_a_later_piece_numbers_lines_from_its_own_start(tmp_path):
    src = tmp_path / "p.csv"
    src.write_text(HEADER + "".join(f"{i},SMS,+1206555{i:04d},u{i},\n" for i in range(400)))
    first, *rest = tasks(src, "CSV", 4)
    results = [run_piece(t) for t in [first, *rest]]
    assert sum(r.records for r in results) == 400
    assert results[0].first_line == 2  # the header is line 1 of the first piece
    for r in results[1:]:
        assert r.first_line == 1 and r.last_line == r.records == r.newlines
    ends = [r.piece.start + r.bytes_read for r in results[1:-1]]
    assert ends == [r.piece.start for r in results[2:]]


def test_spans_are_kept_only_when_asked(tmp_path):
    src = tmp_path / "s.csv"
    src.write_text(HEADER + "1,SMS,+12065550100,u1,\n2,SMS,\n")
    (task,) = tasks(src, "CSV", 1)
    res = run_piece(PieceTask(task.piece, task.fmt, task.columns, None, keep_spans=True))
    assert res.spans is not None
    assert res.spans.lines.tolist() == [2, 3]
    assert res.spans.starts.tolist() == [len(HEADER), len(HEADER) + 23]
    assert res.spans.ends.tolist() == [len(HEADER) + 23, src.stat().st_size]


def test_an_ndjson_piece_and_its_result_crosses_a_process_boundary(tmp_path):
    src = tmp_path / "b.json"
    src.write_text(
        '{"ChannelType":"SMS","Address":"+12065550100","Id":"a"}\n{bad\n'
        '{"ChannelType":"GCM","Address":"t","Id":"a","User":{"UserId":"u"}}\n'
    )
    (task,) = tasks(src, "JSON", 1)
    res = pickle.loads(pickle.dumps(run_piece(pickle.loads(pickle.dumps(task)))))
    assert (res.records, res.newlines, res.first_line, res.last_line) == (3, 3, 1, 3)
    assert where(res) == [(1, 2, None, "JSON_SYNTAX", "error")]
    assert res.ids.records.tolist() == [0, 2] and res.ids.counts.tolist() == [2]
    assert res.users.records.tolist() == [2] and res.users.push.tolist() == [True]
    assert np.array_equal(res.ids.lines, [1, 3])
