"""The orchestration: list → plan pieces → run every piece (the executor seam) → fold → report.

The executor is a seam: any ``concurrent.futures.Executor`` (a thread or process pool, later a
cluster's client) maps the picklable worker function (``piece.run_piece``) over picklable
``PieceTask``s and yields the results in order; with none, the pieces run in this process.
The fold (``fold.Folder``) takes them in source order, so the report is the same whatever ran them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from itertools import chain
from typing import IO, TYPE_CHECKING, Any

from validator import options, signals, subtasks, transport
from validator.atomic import atomic_output
from validator.errors import UsageError
from validator.fold import Folder, PieceOutcome
from validator.gate import Tolerance
from validator.model import PieceResult
from validator.pack import inspected_when_read, pack_tasks, run_pack
from validator.piece import PieceTask, run_piece
from validator.pieces import FilePlan, parse_size, plan_pieces
from validator.report import Report, now_iso
from validator.settings import AwsSettings, with_client
from validator.source import Listing, job_empty_message, list_sources

if TYPE_CHECKING:
    from validator.repair import RepairOptions

IN_PROCESS_BELOW = 16 << 20  # smaller jobs are not worth starting processes for

__all__ = ["IN_PROCESS_BELOW", "PieceOutcome", "PieceTask", "preflight", "run", "run_piece"]


def make_executor(
    workers: int, *, threads: bool, shared: Callable[[Any], Any] | None = None
) -> Executor | None:
    """The seam: None runs in this process; otherwise a pool that maps in order.

    Workers are forked when this process has no other thread (nothing to deadlock on, and the
    caller's ``__main__`` is not imported again, so a script without a main guard works). With
    other threads running, a fork could copy a held lock: the forkserver starts them instead.
    ``shared(context)``, for a process pool, gives what each worker's initializer calls next
    (the progress display's shared counter: ``progress.Meter.shared``).
    """
    if workers <= 1:
        return None
    if threads:
        return ThreadPoolExecutor(workers)
    import multiprocessing  # processes only when there are workers: not on every start-up
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        method = "fork"
    elif "forkserver" in methods:
        method = "forkserver"
    else:
        method = "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["validator.engine"])
    then = shared(ctx) if shared is not None else None
    return ProcessPoolExecutor(workers, mp_context=ctx, **signals.pool_options(method, then))


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _workers_for(listing: Listing, tasks: list[PieceTask], workers: int | None) -> int:
    """How many workers are worth starting for these pieces (1: run them in this process)."""
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise UsageError("workers must be at least 1")
    selected_bytes = sum(f.size for f in listing.selected if f.size > 0)
    remote = any(transport.is_remote(f) for f in listing.selected)
    if (
        len(tasks) <= 1
        or (selected_bytes < IN_PROCESS_BELOW and not remote)
        or any(transport.read_once(f) for f in listing.selected)
    ):
        workers = 1  # S3 objects are worth reading side by side however small: latency
    return min(workers, max(len(tasks), 1))


def run(
    listing: Listing,
    *,
    definition: dict[str, Any],
    application_id: str | None = None,
    pieces: int | None = None,
    piece_size: int | str | None = None,
    strict: bool = False,
    workers: int | None = None,
    s3_client: Any = None,
    settings: AwsSettings | None = None,
    failures_out: IO[bytes] | None = None,
    max_job_size: int | None = None,
    keep_spans: bool = False,
    progress: Callable[[PieceResult], None] | None = None,
    on_piece: Callable[[PieceOutcome, FilePlan], None] | None = None,
    executor: Executor | None = None,
    repair: RepairOptions | None = None,
    repairs_out: IO[bytes] | None = None,
    on_executor: Callable[[Executor | None], None] | None = None,
) -> Report:
    """Check every selected file of ``listing``; fold the results into a Report. With
    ``repair``, failing records are repaired where they can be (``validator.repair``) and
    checked again; ``repairs_out`` gets every change.

    ``executor``, when given, runs the pieces (and is not shut down here); when None, one is
    chosen from ``workers`` and the size of the job, and shut down at the end.
    ``on_piece(outcome, plan)`` hears each piece as it is folded, in source order;
    ``on_executor(executor)``, before the first, what runs the pieces (None: this process), for
    work of its own there (``split`` writes the pieces' parts on it).
    """
    size = parse_size(piece_size) if piece_size is not None else None
    report = Report(definition=definition, application_id=application_id, strict=strict)
    folder = _folder(listing, report, definition, failures_out, max_job_size, repair, repairs_out)
    # The caller's own S3 client rides on the settings (this process only: a process pool's
    # workers build their own from the rest), so nothing below takes it apart.
    settings = with_client(settings, s3_client)
    plans = plan_pieces(
        listing,
        pieces=pieces,
        piece_size=size,
        settings=settings,
        # A small S3 object is read whole by a pack: its head comes from that one GET, not
        # from a GET of its own here (two round trips a file otherwise).
        inspect_later=None
        if pieces is not None or keep_spans or repair is not None
        else partial(inspected_when_read, piece_size=size),
    )
    tasks = [
        PieceTask(p, listing.format, plan.columns, settings, keep_spans, repair, plan.inspect_later)
        for plan in plans
        for p in plan.pieces
    ]
    # A progress display (validator.progress) learns the totals before the first piece, gives
    # the read loop a tick, and starts drawing once the workers are started.
    display: Any = getattr(progress, "__self__", progress)
    if callable(getattr(display, "start", None)):
        display.start(listing, [t.piece for t in tasks])

    with ExitStack() as stack:
        results, fold_progress = _results(
            stack, listing, tasks, executor, workers, settings, display, progress, on_executor
        )
        if callable(getattr(display, "begin", None)):
            display.begin()
        _fold(folder, listing, plans, results, fold_progress, on_piece)
    folder.empty_files(listing.format)
    if report.total_processed == 0:  # never a pass on nothing
        folder.job_problem(
            ", ".join(listing.sources) or str(definition.get("S3Url")),
            "JOB_EMPTY",
            job_empty_message(listing, report.files, settings=settings),
        )
    folder.finish()
    report.completion_date = now_iso()
    return report


def _folder(
    listing: Listing,
    report: Report,
    definition: dict[str, Any],
    failures_out: IO[bytes] | None,
    max_job_size: int | None,
    repair: RepairOptions | None,
    repairs_out: IO[bytes] | None,
) -> Folder:
    """The fold, with the job's own problems known before any piece (the listing's, size)."""
    repair_log = None
    if repair is not None:
        from validator.repair import RepairLog  # only with --repair

        repair_log = RepairLog(repair, repairs_out)
    folder = Folder(report, strict=report.strict, failures_out=failures_out, repairs=repair_log)
    for source, code, message in listing.warnings:
        folder.job_problem(source, code, message)
    selected_bytes = sum(f.size for f in listing.selected if f.size > 0)
    if max_job_size is not None and selected_bytes > max_job_size:
        folder.job_problem(
            str(definition.get("S3Url")),
            "JOB_TOO_LARGE",
            f"the selected files hold {selected_bytes:,} bytes; one import job "
            f"takes at most {max_job_size:,} (split it: pinpoint-preflight split)",
        )
    return folder


def _results(
    stack: ExitStack,
    listing: Listing,
    tasks: list[PieceTask],
    executor: Executor | None,
    workers: int | None,
    settings: AwsSettings | None,
    display: Any,
    progress: Callable[[PieceResult], None] | None,
    on_executor: Callable[[Executor | None], None] | None,
) -> tuple[Iterator[PieceResult], Callable[[PieceResult], None] | None]:
    """The executor seam: every task run (on ``executor``, or on one chosen here and closed by
    ``stack``), its results one per piece in source order; and what the fold should tell the
    progress display of each (None when the executor tells it itself)."""
    own_client = settings is not None and settings.s3_client is not None
    ticker = getattr(display, "ticker", None)
    tick = None
    # Large pieces as parts, so that every worker stays busy to the end (validator.subtasks);
    # not on an executor that runs the key rules itself (its results come a piece each).
    run_keyed = getattr(executor, "run_keyed", None)
    if run_keyed is not None:
        run_tasks, part_counts = list(tasks), [1] * len(tasks)
    else:
        run_tasks, part_counts = subtasks.split(
            tasks, default_workers() if workers is None else workers
        )
    if executor is None:
        n = _workers_for(listing, run_tasks, workers)
        packs = pack_tasks(run_tasks, n)  # many small files: several to a task
        n = 1 if len(packs) <= 1 else min(n, len(packs))
        processes = n > 1 and not own_client
        tick = ticker(processes) if callable(ticker) else None
        shared = display.meter.shared if processes and tick is not None else None
        executor = make_executor(n, threads=own_client, shared=shared)
        if executor is not None:
            stack.enter_context(signals.pool(executor))  # workers killed if the run fails
    elif workers is not None and workers < 1:
        raise UsageError("workers must be at least 1")
    else:
        packs = pack_tasks(run_tasks, workers or default_workers())
    # An executor may refuse sources its workers cannot read (a cluster and a local path).
    check_sources = getattr(executor, "check_sources", None)
    if check_sources is not None:
        check_sources(listing.selected)
    if on_executor is not None:
        on_executor(executor)
    run_packed = partial(run_pack, tick=tick)
    if run_keyed is not None:
        # The executor runs the job-wide key rules itself (a cluster: the keys stay on its
        # workers, partitioned by hash). Its results come once every piece is in, without
        # keys, each with the problems its keys gave (``cross``); progress hears of each
        # piece as it is done (a summary of it), not as it is folded.
        keyed = run_keyed(run_packed, packs, progress)
        stack.callback(getattr(keyed, "close", lambda: None))
        return keyed, None
    with signals.critical():  # a signal while a worker is forked is not lost
        mapped = executor.map(run_packed, packs) if executor is not None else map(run_packed, packs)
    # A run that fails midway stops the map now (a cluster's client cancels what is left while
    # it is still connected), not when the garbage collector gets to it.
    stack.callback(getattr(mapped, "close", lambda: None))
    return subtasks.regroup(chain.from_iterable(mapped), tasks, part_counts), progress


def _fold(
    folder: Folder,
    listing: Listing,
    plans: list[FilePlan],
    results: Iterator[PieceResult],
    progress: Callable[[PieceResult], None] | None,
    on_piece: Callable[[PieceOutcome, FilePlan], None] | None,
) -> None:
    """Every result into the fold, in source order, each file started as its first piece
    comes (or, with no piece, after the last)."""
    folder.files(listing.files)
    plan_iter = iter(plans)
    current: FilePlan | None = None
    for res in results:
        src = res.piece.file.display
        while current is None or current.file.display != src:
            current = next(plan_iter)
            if res.plan is not None and current.file.display == src:
                current = res.plan  # its head was read by the worker that read it
            folder.start_file(current)
            if not current.pieces and current.file.display != src:
                current = None
        if not current.pieces:
            continue  # the worker found nothing to read (compressed, empty): problems only
        # CSV pieces need no settling here: pieces.plan_pieces puts every boundary where a
        # single reader starts a record (pieces.settle_csv_boundary).
        outcome = folder.next_piece(res)
        if progress is not None:
            progress(res)
        if on_piece is not None:
            on_piece(outcome, current)
    for plan in plan_iter:
        folder.start_file(plan)


def preflight(
    source: str | Sequence[str],
    format: str | None = None,
    *,
    pieces: int | None = None,
    piece_size: int | str | None = None,
    strict: bool = False,
    workers: int | None = None,
    s3_client: Any = None,
    settings: AwsSettings | None = None,
    failures_out: str | os.PathLike[str] | None = None,
    max_job_size: int | str | None = "1GB",
    application_id: str | None = None,
    definition: dict[str, Any] | None = None,
    progress: Callable[[PieceResult], None] | None = None,
    executor: Executor | None = None,
    max_failures: int | None = None,
    max_failure_rate: float | str | None = None,
    repair: RepairOptions | None = None,
    repairs_out: str | os.PathLike[str] | None = None,
) -> Report:
    """Check endpoint-import data the way Pinpoint's import would, and report like it.

    ``source`` is a path, a folder, ``-`` or an ``s3://`` URL (or a list of them); ``format`` is
    ``"CSV"`` or ``"JSON"`` (from the extensions when omitted). Returns a :class:`Report`;
    raises :class:`validator.errors.PreflightError` subclasses for usage, configuration and
    AWS problems.

    ``executor``: any :class:`concurrent.futures.Executor` to run the pieces on (the caller's:
    it is not shut down here); by default one is chosen from ``workers`` and the job's size.
    A process pool needs picklable arguments: give ``settings``, not ``s3_client``.

    ``max_failures`` and ``max_failure_rate`` (a fraction, or ``"5%"``) set the tolerance of
    the report's gate (``report.passed``; see :mod:`validator.gate`).
    ``repair`` (``validator.repair.RepairOptions``): the report is the verdict after repair, and
    its ``Repairs`` says what would change; ``repairs_out`` gets one JSON line per change.
    """
    tolerance = Tolerance.of(max_failures, max_failure_rate)
    checked = options.check(
        pieces=pieces,
        piece_size=piece_size,
        workers=workers,
        max_job_size=max_job_size,
        failures_out=failures_out,
    )
    options.check_output_path(repairs_out, "repairs_out")
    sources = [source] if isinstance(source, str | os.PathLike) else list(source)
    sources = [os.fspath(s) for s in sources]
    listing = list_sources(sources, format, settings=settings, s3_client=s3_client)
    options.check_not_a_source(failures_out, "failures_out", listing.files)
    options.check_not_a_source(repairs_out, "repairs_out", listing.files)
    definition = dict(definition or {})
    shown = listing.sources
    definition.setdefault("S3Url", shown[0] if len(shown) == 1 else shown)
    definition.setdefault("Format", listing.format)
    limit = checked.max_job_size
    with (
        atomic_output(failures_out) as out,
        atomic_output(repairs_out, "--repairs-out", "repairs_out") as changes,
    ):
        report = run(
            listing,
            definition=definition,
            application_id=application_id,
            pieces=checked.pieces,
            piece_size=checked.piece_size,
            strict=strict,
            workers=checked.workers,
            s3_client=s3_client,
            settings=settings,
            failures_out=out,
            max_job_size=limit,
            progress=progress,
            executor=executor,
            repair=repair,
            repairs_out=changes,
        )
    report.tolerance = tolerance
    return report
