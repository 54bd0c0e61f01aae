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
