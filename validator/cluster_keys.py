"""The job-wide key rules on a Dask cluster, so that no process holds every key of the job.

The pieces run as tasks (the engine's pack function). On the worker that ran it, each piece's
hashed keys are cut by the top bits of the hash into P partitions (``crossrecord.split_keys``)
and the result is kept there, as a Dask future: the client gathers a summary of it while the
pieces run (piece, bytes, records, for the progress display), and never its keys. Once every
piece is in, one task per worker and partition gathers that partition's runs of the pieces the
worker holds, and one task per partition takes them from every worker, in source order, and
runs the key rules over them (``crossrecord.flag_partition``: a ``KeyRules`` of its own; a key
lives in one partition only, so its ordinals are the job's), returning only the flagged
records. The client merges them (``crossrecord.merge_flagged``) into each result's ``cross``,
which the fold reads instead of keys, as it gathers the results without keys in order, a few
at a time: it holds a window of results and the flagged records, never every key nor every
result. The report is the one a run on one machine gives, line for line.

Tasks: three per piece (the piece, its summary, its result without keys) and P × (W + 1) for
the keys, whatever the number of pieces (W workers, P partitions).

The runs are task results, never scattered data: if a worker dies, Dask recomputes what it held
from the tasks' lineage (the piece is read again). Only ``ClusterExecutor.run_keyed`` calls this;
it imports nothing of Dask itself (it is given the client).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import replace
from itertools import chain
from typing import Any

from validator import crossrecord
from validator.crossrecord import Flagged, PartitionRun
from validator.model import PieceResult

PER_WORKER = 4  # partitions per worker by default: a few, so that each fits in one easily
WINDOW = 8  # tasks' results the fold gathers at a time, once the partitions have flagged


def default_partitions(workers: int) -> int:
    return max(1, PER_WORKER * workers)


Out = tuple[list[PieceResult], list[PieceResult], list[list[PartitionRun]]]


def _run(pack: Any, fn: Callable[[Any], list[PieceResult]], parts: int) -> Out:
    """On a worker: run one task of pieces. Its results' summaries (for the progress display),
    the results without keys (for the fold), and their keys by partition (``[j][i]``:
    partition ``j``'s run of the task's ``i``-th result)."""
    results = fn(pack)
    runs = crossrecord.split_keys(results, parts)
    heads = [replace(r, users=None, ids=None, pack=None) for r in results]
    return [_summary(r) for r in heads], heads, [[run[j] for run in runs] for j in range(parts)]


def _summary(res: PieceResult) -> PieceResult:
    """What a progress display reads of a result (its piece, bytes, records), and no more."""
    return PieceResult(
        res.piece,
        records=res.records,
        newlines=res.newlines,
        bytes_read=res.bytes_read,
        users=None,
        ids=None,
    )


def _summaries(out: Out) -> list[PieceResult]:
    return out[0]


def _heads(out: Out) -> list[PieceResult]:
    return out[1]


def _collect(j: int, packs: list[int], *outs: Out) -> list[tuple[int, list[PartitionRun]]]:
    """On the worker that holds ``outs`` (the tasks ``packs`` ran there): partition ``j``'s runs
    of them, by task number. One such task per worker and partition, not per piece."""
    return [(i, out[2][j]) for i, out in zip(packs, outs, strict=True)]


def _flag(tasks: int, *collected: list[tuple[int, list[PartitionRun]]]) -> list[Flagged]:
    """One partition's key rules over its runs from every task, in source order."""
    by_task = sorted(chain.from_iterable(collected), key=lambda c: c[0])
    assert [i for i, _ in by_task] == list(range(tasks)), "a task's keys are missing"
    return crossrecord.flag_partition(chain.from_iterable(runs for _, runs in by_task))


def _by_holder(client: Any, outs: list[Any]) -> dict[str | None, list[int]]:
    """The tasks' numbers by the worker that holds their output (None: none holds it now, a
    worker lost: Dask recomputes it wherever it likes)."""
    who = client.who_has(outs)
    holders: dict[str | None, list[int]] = {}
    for i, out in enumerate(outs):
        where = sorted(who.get(out.key, ()))
        holders.setdefault(where[0] if where else None, []).append(i)
    return holders


def run(
    client: Any,
    fn: Callable[[Any], list[PieceResult]],
    packs: Sequence[Any],
    parts: int,
    arrived: Callable[[PieceResult], None] | None = None,
) -> Iterator[PieceResult]:
    """Every result of ``fn`` over ``packs``, in order, without keys and with its key rules'
    problems in ``cross``. ``arrived`` is given each piece's summary as it is done (in order);
    the results come once the partitions have flagged, gathered a few at a time (the client
    holds a window of results and the flagged records, never all of them)."""
    n = len(packs)
    outs = client.map(_run, packs, fn=fn, parts=parts, pure=False)
    summaries = client.map(_summaries, outs, pure=False)
    heads: list[Any] = client.map(_heads, outs, pure=False)
    collected: list[Any] = []
    flags: list[Any] = []
    try:
        sizes = []
        for future in summaries:
            done = future.result()
            sizes.append(len(done))
            if arrived is not None:
                for res in done:
                    arrived(res)
        summaries.clear()
        # Each partition's runs gathered where they are, a task per worker (placed there, but
        # free to run elsewhere if that worker is lost: its outputs are then recomputed).
        for where, tasks in _by_holder(client, outs).items():
            mine = [outs[i] for i in tasks]
            collected.append(
                [
                    client.submit(
                        _collect,
                        j,
                        tasks,
                        *mine,
                        workers=None if where is None else [where],
                        allow_other_workers=True,
                        pure=False,
                    )
                    for j in range(parts)
                ]
            )
        outs.clear()  # held by the tasks that read them, then released
        flags = [
            client.submit(_flag, n, *(c[j] for c in collected), pure=False) for j in range(parts)
        ]
        collected.clear()
        cross = crossrecord.merge_flagged(client.gather(flags), sum(sizes))
        flags.clear()
        position = 0
        for at in range(0, n, WINDOW):
            batch = client.gather(heads[at : at + WINDOW])
            heads[at : at + WINDOW] = [None] * len(batch)  # released: the fold takes them
            for results in batch:
                for res in results:
                    res.cross = cross[position]
                    cross[position] = []
                    position += 1
                    yield res
    finally:  # stopped early (an error, Ctrl-C): nothing of this run is left on the cluster
        left = [
            f
            for f in chain(outs, summaries, heads, chain.from_iterable(collected), flags)
            if f is not None
        ]
        if left:  # the client may be closed already (a fold that failed, closed later)
            with suppress(Exception):
                client.cancel(left)
