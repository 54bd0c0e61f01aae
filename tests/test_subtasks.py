"""Tasks smaller than pieces (validator.subtasks): a piece run as parts on two workers gives the
report and --failures-out of the piece read by one reader, whatever the part size; the plan's
pieces and the report's Pieces rows stay as they were."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from csv_tokens import HEADER, TOKENS

import validator
import validator.engine as engine
import validator.subtasks as subtasks
from validator.piece import PieceTask
from validator.pieces import plan_pieces
from validator.source import list_sources

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("generate", ROOT / "benchmarks" / "generate.py")
assert _spec is not None and _spec.loader is not None
generate = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate)


def _run(path: Path, tmp: Path, fmt: str, **kw) -> tuple[dict, bytes]:
    out = tmp / "failures.ndjson"
    report = validator.preflight(str(path), format=fmt, failures_out=out, **kw).to_dict()
    for key in ("Id", "CreationDate", "CompletionDate"):
        report.pop(key)
    return report, out.read_bytes()


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    """20,000 rows of each format with 5 % rule defects and 1 % structural ones (broken
    quotes, invalid JSON lines), and duplicate ids and users (the generator's)."""
    tmp = tmp_path_factory.mktemp("gen")
    out = {}
    for fmt in ("csv", "json"):
        path = tmp / f"gen.{fmt}"
        generate.generate(path, 20_000, fmt, defect_rate=0.05, seed=3, structural_rate=0.01)
        out[fmt] = path
    return out


def _repeated_keys(path: Path) -> None:
    """Rows whose Id repeats and whose user holds more endpoints than Pinpoint allows, spread
    over the file (so over the parts)."""
    rows = [f"dup{i % 7},SMS,+1206555{i:04d},u{i % 3}\n".encode() for i in range(3000)]
    path.write_bytes(b"Id,ChannelType,Address,User.UserId\n" + b"".join(rows))


@pytest.mark.parametrize("part_size", [3_000, 40_000, 300_000])
def test_parts_on_two_workers_give_the_report_of_one_reader_csv(
    tmp_path, monkeypatch, generated, part_size
):
    base = _run(generated["csv"], tmp_path, "CSV", pieces=1, workers=1)
    monkeypatch.setattr(engine, "IN_PROCESS_BELOW", 0)
    monkeypatch.setattr(subtasks, "PART_SIZE", part_size)
    for kw in ({"pieces": 1}, {"pieces": 3}, {"piece_size": 700_000}):
        got = _run(generated["csv"], tmp_path, "CSV", workers=2, **kw)
        want = (
            base
            if kw == {"pieces": 1}
            else _run(generated["csv"], tmp_path, "CSV", workers=1, **kw)
        )
        assert got == want, kw


@pytest.mark.parametrize("part_size", [2_000, 50_000])
def test_parts_on_two_workers_give_the_report_of_one_reader_json(
    tmp_path, monkeypatch, generated, part_size
):
    base = _run(generated["json"], tmp_path, "JSON", pieces=2, workers=1)
    monkeypatch.setattr(engine, "IN_PROCESS_BELOW", 0)
    monkeypatch.setattr(subtasks, "PART_SIZE", part_size)
    assert _run(generated["json"], tmp_path, "JSON", pieces=2, workers=2) == base


@pytest.mark.parametrize("part_size", [40, 300, 5_000])
def test_parts_cut_through_every_structural_defect(tmp_path, monkeypatch, part_size):
    """Broken quotes, quoted line breaks and the rest at part boundaries: parts settle their
    boundaries as pieces do, so each part reads the records a single reader reads."""
    body = b"".join(TOKENS[i * 7 % len(TOKENS)] for i in range(4000))
    src = tmp_path / "in.csv"
    src.write_bytes(HEADER + body)
    base = _run(src, tmp_path, "CSV", pieces=1, workers=1)
    monkeypatch.setattr(engine, "IN_PROCESS_BELOW", 0)
    monkeypatch.setattr(subtasks, "PART_SIZE", part_size)
    assert _run(src, tmp_path, "CSV", pieces=1, workers=2) == base
    assert _run(src, tmp_path, "CSV", pieces=2, workers=2) == _run(
        src, tmp_path, "CSV", pieces=2, workers=1
    )


def test_keys_across_parts_count_as_in_one_piece(tmp_path, monkeypatch):
    src = tmp_path / "keys.csv"
    _repeated_keys(src)
    base = _run(src, tmp_path, "CSV", pieces=1, workers=1)
    assert base[0]["WarningsByCode"]["DUPLICATE_ID"] == 3000 - 7
    assert base[0]["FailuresByCode"]["USER_ENDPOINTS"] == 3000 - 3 * 15
    monkeypatch.setattr(engine, "IN_PROCESS_BELOW", 0)
    monkeypatch.setattr(subtasks, "PART_SIZE", 8_000)
    assert _run(src, tmp_path, "CSV", pieces=1, workers=2) == base


def test_pieces_are_cut_into_parts_at_their_record_starts_only_with_workers(tmp_path, monkeypatch):
    src = tmp_path / "keys.csv"
    _repeated_keys(src)
    listing = list_sources([str(src)], "CSV")
    (plan,) = plan_pieces(listing, pieces=2)
    tasks = [PieceTask(p, "CSV", plan.columns, None) for p in plan.pieces]
    assert subtasks.split(tasks, 1, part_size=8_000) == (tasks, [1, 1])
    run, counts = subtasks.split(tasks, 2, part_size=8_000)
    assert counts == [5, 5]
    data = src.read_bytes()
    starts = [t.piece.start for t in run]
    assert starts[0] == 0 and all(data[s - 1 : s] == b"\n" for s in starts[1:])
    assert [t.piece.end for t in run][:-1] == starts[1:] and run[-1].piece.end == -1
    assert {t.piece.index for t in run[:5]} == {0} and {t.piece.index for t in run[5:]} == {1}
    assert run[5].piece.start == plan.pieces[1].start
    report = json.loads(
        json.dumps(validator.preflight(str(src), format="CSV", pieces=2, workers=2).to_dict())
    )
    assert report["TotalPieces"] == 2 and len(report["Pieces"]) == 2
