"""The CSV hot path: what it frees, and that its shortcuts give the same verdicts as the full
path (report and --failures-out, line for line), whatever the piece size and worker count."""

from __future__ import annotations

import gc
import io
import types

import pyarrow as pa

from validator import check, read_csv
from validator.read_csv import Columns

HEADER = "Id,ChannelType,Address,User.UserId,Attributes.a,Attributes.a,Metrics.m"
ROW = "id{0},SMS,+1206555{0:04d},u{1},x,y,{0}.5\n"


def _body(rows: int) -> bytes:
    return "".join(ROW.format(i, i // 3) for i in range(rows)).encode()


def _ours(obj: object) -> bool:
    """Whether a piece of garbage is the hot path's: one of its functions, frames or columns.
    Other threads of a long test session (S3 servers, pools) make cyclic garbage of their own."""
    if isinstance(obj, (pa.Array, pa.ChunkedArray, pa.Table, pa.RecordBatch)):
        return True
    if isinstance(obj, types.FunctionType):
        return (obj.__module__ or "").startswith("validator")
    if isinstance(obj, types.FrameType):
        return "/validator/" in obj.f_code.co_filename
    return False


def test_checking_a_batch_leaves_no_reference_cycle() -> None:
    """The columns of a batch are freed when it is done with, not at the next cyclic collection
    (a recursive closure in the column flattening kept 100-150 MiB a piece alive)."""
    cols = Columns.from_header(HEADER.split(","))
    data = _body(2000)
    batches = [b for b, _ in read_csv.read_piece(io.BytesIO(data), -1, cols, offset=0, line=1)]
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for batch in batches:
            check.check_batch(batch.table, "CSV")
        gc.collect()
        assert [type(obj).__name__ for obj in gc.garbage if _ours(obj)] == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()


def _failures(path: str, **kw: object) -> list[tuple[int | None, str]]:
    import json
    import tempfile

    from validator import engine

    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/f.ndjson"
        engine.preflight(path, format="CSV", failures_out=out, **kw)  # type: ignore[arg-type]
        with open(out) as f:
            return [(d["line"], d["code"]) for d in map(json.loads, f)]


def test_tabs_are_found_on_their_own_lines_by_every_path(tmp_path, monkeypatch) -> None:
    """The fast path finds a tab's line from the newlines (no byte ranges of records): the same
    lines as the exact path, with every block size, piece size and part size."""
    from validator import blocks, engine, subtasks

    rows = [ROW.format(i, i // 3) for i in range(3000)]
    tabbed = {5, 6, 977, 2000, 2999}
    for i in tabbed:
        rows[i] = rows[i].replace(",x,", ",x\ty,")
    rows[1500] = rows[1500].replace(",x,", ',"q\nr",')  # one block of them takes the exact path
    src = tmp_path / "tabs.csv"
    src.write_text(HEADER + "\n" + "".join(rows))
    want = [(i + 2 if i < 1500 else i + 3, "CSV_TAB_IN_VALUE") for i in sorted(tabbed)]
    want.insert(3, (1502, "CSV_NEWLINE_IN_VALUE"))
    assert _failures(str(src), workers=1) == want
    monkeypatch.setattr(engine, "IN_PROCESS_BELOW", 0)
    monkeypatch.setattr(subtasks, "PART_SIZE", 20_000)
    for block in (4096, 50_000):
        monkeypatch.setattr(blocks, "BLOCK_SIZE", block)
        for kw in ({"workers": 1}, {"workers": 2}, {"piece_size": 100_000, "workers": 2}):
            assert _failures(str(src), **kw) == want, (block, kw)


def test_byte_ranges_of_records_only_when_spans_are_kept() -> None:
    cols = Columns.from_header(HEADER.split(","))
    data = _body(500)
    plain = [b for b, _ in read_csv.read_piece(io.BytesIO(data), -1, cols, offset=0, line=1)]
    assert all(len(b.starts) == len(b.ends) == 0 for b in plain)
    kept = list(read_csv.read_piece(io.BytesIO(data), -1, cols, offset=0, line=1, keep_spans=True))
    ends = [i + 1 for i, c in enumerate(data) if c == 10]
    assert [int(x) for b, _ in kept for x in b.ends] == ends
    assert [int(x) for b, _ in kept for x in b.starts] == [0, *ends[:-1]]
    (_, reader), *_ = kept
    lines, starts, stops = reader.spans[0]
    assert lines.tolist() == list(range(2, 502))
    assert starts.tolist() == [0, *ends[:-1]] and stops.tolist() == ends
