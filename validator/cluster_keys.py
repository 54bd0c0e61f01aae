"""The job-wide key rules on a Dask cluster, so that no process holds every key of the job.

The pieces run as tasks (the engine's pack function). On the worker that ran it, each piece's
hashed keys are cut by the top bits of the hash into P partitions (``crossrecord.split_keys``);
the result without its keys goes to the client (counts, problems, lines: what the fold needs)
and the P runs stay on the workers, as Dask futures the client never gathers. Once every piece
is in, one task per partition takes its run from every piece in source order and runs the key
rules over them (``crossrecord.flag_partition``: a ``KeyRules`` of its own; a key lives in one
partition only, so its ordinals are the job's), returning only the flagged records. The client
merges them into each result's ``cross`` (``crossrecord.merge_flagged``), which the fold reads
instead of keys: the report is the one a run on one machine gives, line for line.

The runs are task results, never scattered data: if a worker dies, Dask recomputes what it held
from the tasks' lineage (the piece is read again). Only ``ClusterExecutor.run_keyed`` calls this;
it imports nothing of Dask itself (it is given the client).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import chain
from typing import Any

from validator import crossrecord
from validator.model import PieceResult

PER_WORKER = 4  # partitions per worker by default: a few, so that each fits in one easily


def default_partitions(workers: int) -> int:
    return max(1, PER_WORKER * workers)


def _run(pack: Any, fn: Callable[[Any], list[PieceResult]], parts: int) -> tuple[list, list]:
    """On a worker: run one task of pieces; its results without keys, and their keys by
    partition (``[j][i]``: partition ``j``'s run of the task's ``i``-th result)."""
    results = fn(pack)
    runs = [crossrecord.split_keys(r, parts) for r in results]
    heads = [replace(r, users=None, ids=None) for r in results]
    return heads, [[run[j] for run in runs] for j in range(parts)]


def _heads(out: tuple[list, list]) -> list[PieceResult]:
    return out[0]


def _runs(out: tuple[list, list], j: int) -> list[crossrecord.PartitionRun]:
    return out[1][j]


def _flag(*runs: list[crossrecord.PartitionRun]) -> list[crossrecord.Flagged]:
    """On a worker: one partition's key rules over its runs from every task, in source order."""
    return crossrecord.flag_partition(chain.from_iterable(runs))


def run(
    client: Any,
    fn: Callable[[Any], list[PieceResult]],
    packs: Sequence[Any],
    parts: int,
    arrived: Callable[[PieceResult], None] | None = None,
) -> list[PieceResult]:
    """Every result of ``fn`` over ``packs``, in order, without keys and with its key rules'
    problems in ``cross``. ``arrived`` is called with each result as it comes in (in order),
    before the partitions run."""
    n = len(packs)
    outs = client.map(_run, packs, fn=fn, parts=parts, pure=False)
    heads = client.map(_heads, outs, pure=False)
    runs = [client.map(_runs, outs, [j] * n, pure=False) for j in range(parts)]
    del outs  # held by the tasks that read them, then released: the runs stay
    pending: list[Any] = [*heads, *chain.from_iterable(runs)]
    try:
        results: list[PieceResult] = []
        for future in heads:
            for res in future.result():
                if arrived is not None:
                    arrived(res)
                results.append(res)
        flags = [client.submit(_flag, *runs[j], pure=False) for j in range(parts)]
        pending += flags
        runs.clear()
        flagged = client.gather(flags)
    finally:
        client.cancel(pending)  # done or not, nothing of this run is kept on the cluster
    for res, cross in zip(results, crossrecord.merge_flagged(flagged, len(results)), strict=True):
        res.cross = cross
    return results
