"""The fold (``validator/fold.py``): piece results in source order into the report and
``--failures-out``, lines made absolute, failures capped with true totals, Files rows."""

from __future__ import annotations

import io
import json
from pathlib import Path

from validator.fold import Folder
from validator.model import PieceResult, Problem
from validator.piece import PieceTask, run_piece
from validator.pieces import plan_pieces
from validator.report import Report
from validator.source import list_sources

HEADER = "Id,ChannelType,Address,User.UserId\n"


def fold(path: Path, fmt: str, pieces: int, *, strict: bool = False) -> tuple[Report, list[dict]]:
    """Plan, run every piece here and fold them, as the engine does for files without quotes."""
    listing = list_sources([str(path)], fmt)
    plans = plan_pieces(listing, pieces=pieces)
    report = Report(definition={"S3Url": str(path), "Format": fmt}, strict=strict)
    out = io.BytesIO()
    folder = Folder(report, strict=strict, failures_out=out)
    folder.files(listing.files)
    for plan in plans:
        folder.start_file(plan)
        for piece in plan.pieces:
            folder.next_piece(run_piece(PieceTask(piece, fmt, plan.columns, None)))
    folder.empty_files(fmt)
    folder.finish()
    return report, [json.loads(x) for x in out.getvalue().splitlines()]


def test_lines_are_absolute_and_the_same_however_many_pieces(tmp_path):
    rows = "".join(
        f"{i % 500},SMS,{'555' if i % 9 == 4 else f'+1206555{i:04d}'},u{i % 600}\n"
        for i in range(1200)
    )
    src = tmp_path / "a.csv"
    src.write_text(HEADER + rows)
    one, out_one = fold(src, "CSV", 1)
    five, out_five = fold(src, "CSV", 5)
    assert len(five.pieces) == 5
    assert one.total_processed == five.total_processed == 1200
    for r in (one, five):
        assert r.total_failures == 133  # every ninth from the fifth
        assert r.total_warnings == 1200 - 500  # ids seen before: later rows
    assert five.failures == one.failures and len(one.failures) == 100  # capped, in source order
    assert five.warnings == one.warnings
    assert one.failures[0].startswith(f"{src}:6: Address: ")
    assert one.failures_by_code == five.failures_by_code == {"ADDRESS_E164": 133}
    assert [{**x, "piece": 0} for x in out_five] == out_one
    assert len(out_one) == 133 + 700
    assert {x["piece"] for x in out_five} == {0, 1, 2, 3, 4}
    assert five.pieces[0]["FirstLine"] == 2
    assert five.pieces[-1]["LastLine"] == 1201
    assert five.files == [
        {
            "Source": str(src),
            "Size": src.stat().st_size,
            "Format": "CSV",
            "Status": "FAILED",
            "Records": 1200,
            "FailedRecords": 133,
        }
    ]


def test_a_records_problems_join_into_one_failure_and_warnings_stay_apart(tmp_path):
    src = tmp_path / "d.csv"
    src.write_text(HEADER + "x,SMS,+12065550100,u1\nx,SMS,555,u2\n")
    report, out = fold(src, "CSV", 1)
    assert report.total_failures == 1 and report.total_warnings == 1
    assert report.failures[0].startswith(f"{src}:3: Address: ")
    assert report.warnings == [
        f"{src}:3: Id: this Id was seen 1 time(s) before in the job; "
        "the later definition wins [DUPLICATE_ID]"
    ]
    assert [(x["line"], x["code"], x["severity"]) for x in out] == [
        (3, "ADDRESS_E164", "error"),
        (3, "DUPLICATE_ID", "warning"),
    ]
    strict, _ = fold(src, "CSV", 1, strict=True)
    assert strict.total_failures == 1 and strict.total_warnings == 0
    assert strict.failures[0].endswith("the later definition wins [DUPLICATE_ID]")
    assert "; Id: this Id was seen 1 time(s)" in strict.failures[0]
    assert strict.failures_by_code == {"ADDRESS_E164": 1, "DUPLICATE_ID": 1}


def test_job_problems_and_empty_files(tmp_path):
    src = tmp_path / "e.csv"
    src.write_text(HEADER)
    report, out = fold(src, "CSV", 1)
    assert report.files[0]["Status"] == "FAILED"
    assert report.failures == [f"{src}: no record after the header [FILE_EMPTY]"]
    assert out == [
        {
            "source": str(src),
            "line": None,
            "piece": None,
            "field": None,
            "code": "FILE_EMPTY",
            "severity": "error",
            "message": "no record after the header",
        }
    ]
    folder = Folder(Report(definition={}), strict=False, failures_out=None)
    folder.job_problem("s3://b/k", "JOB_TOO_LARGE", "too big")
    assert folder.report.job_failures == ["s3://b/k: too big [JOB_TOO_LARGE]"]
    assert folder.failure_codes == {"JOB_TOO_LARGE": 1}


def test_a_piece_row_counts_records_failed_and_warned(tmp_path):
    src = tmp_path / "w.csv"
    src.write_text(HEADER + "1,SMS,+12065550100,u1\n")
    listing = list_sources([str(src)], "CSV")
    (plan,) = plan_pieces(listing, pieces=1)
    res = PieceResult(plan.pieces[0], records=3, newlines=4, first_line=2, last_line=4)
    res.problems = [
        Problem(0, 2, "Address", "ADDRESS_E164", "bad", "error"),
        Problem(0, 2, "Id", "DUPLICATE_ID", "again", "warning"),
        Problem(2, 4, "Id", "DUPLICATE_ID", "again", "warning"),
    ]
    folder = Folder(Report(definition={}), strict=False, failures_out=None)
    folder.files(listing.files)
    folder.start_file(plan)
    outcome = folder.next_piece(res)
    assert outcome.failed_records.tolist() == [0]
    assert sorted(outcome.problems_by_record) == [0, 2]
    (row,) = folder.report.pieces
    assert (row["Records"], row["FailedRecords"], row["WarnedRecords"]) == (3, 1, 1)
    assert (row["FirstLine"], row["LastLine"], row["Status"]) == (2, 4, "FAILED")
    assert folder.report.failures == [f"{src}:2: Address: bad [ADDRESS_E164]"]
    assert folder.report.warnings == [
        f"{src}:2: Id: again [DUPLICATE_ID]",
        f"{src}:4: Id: again [DUPLICATE_ID]",
    ]
