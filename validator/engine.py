"""Stages 4–5: run every piece (in worker processes), then fold the results in source order.

The executor is a small seam: anything that maps a picklable function over picklable tasks
and yields the results in order (the built-in ``map``, a process pool, later a cluster).
Folding in source order keeps line numbers, the first 100 failures and the cross-record counts
exactly the same whatever the number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from validator import check, read_csv, read_json, schema
from validator.crossrecord import KeyCounts, hash_strings
from validator.details import ValueBudget, detail
from validator.errors import UsageError
from validator.gate import Tolerance
from validator.model import Piece, PieceKeys, PieceResult, Problem, RecordSpans
from validator.pieces import FilePlan, parse_size, plan_pieces
from validator.read_csv import Columns
from validator.report import FIRST, Report, now_iso
from validator.settings import AwsSettings
from validator.source import Listing, list_sources, open_binary

IN_PROCESS_BELOW = 16 << 20  # smaller jobs are not worth starting processes for


@dataclass(frozen=True)
class PieceTask:
    """Everything a worker needs to read and check one piece."""

    piece: Piece
    fmt: str
    columns: Columns | None
    settings: AwsSettings | None
    keep_spans: bool = False


def _custom_names(table: pa.Table) -> set[str]:
    """Custom attribute and metric names that hold a value in some row of the table."""
    names = set()
    for name in table.column_names:
        if name.startswith(("Attributes.", "User.UserAttributes.", "Metrics.")):
            col = table.column(name)
            if pa.types.is_list(col.type):
                present = any(len(c.values) - c.values.null_count > 0 for c in col.chunks)
            else:
                present = col.null_count < len(col)
            if present:
                names.add(name)
    return names


def _keys(
    table: pa.Table, column: str, records: np.ndarray, lines: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    col = table.column(column)
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string(), safe=False)
    present = np.asarray(pc.fill_null(pc.greater(pc.binary_length(col), 0), False))
    rows = np.flatnonzero(present)
    return hash_strings(col)[rows], records[rows], lines[rows], rows


def run_piece(task: PieceTask, s3_client: Any = None) -> PieceResult:
    """Read and check one piece. Runs in a worker process; returns only plain data."""
    rules = schema.load()
    piece = task.piece
    result = PieceResult(piece)
    first_piece = piece.start == 0
    read_from = piece.header_end if first_piece else piece.start
    line0 = 1 if first_piece and task.fmt == "CSV" else 0
    length = -1 if piece.end < 0 else piece.end - read_from
    push = pa.array(sorted(rules.push_channel_types))
    user_keys, user_records, user_lines, user_push = [], [], [], []
    id_keys, id_records, id_lines = [], [], []
    lines_seen: list[int] = []
    budget = ValueBudget(FIRST)
    with ExitStack() as stack:
        stream: IO[bytes] = stack.enter_context(
            open_binary(piece.file, read_from, settings=task.settings, s3_client=s3_client)
        )
        if task.fmt == "CSV":
            assert task.columns is not None
            batches: Iterator[tuple[Any, Any]] = read_csv.read_piece(
                stream,
                length,
                task.columns,
                offset=read_from,
                line=line0,
                keep_spans=task.keep_spans,
            )
        else:
            batches = read_json.read_piece(
                stream, length, offset=read_from, line=line0, keep_spans=task.keep_spans
            )
        reader = None
        for batch, reader in batches:  # noqa: B007 - the last reader has the counts
            for p in batch.problems:
                p.severity = rules.severity(p.code)
            result.problems.extend(batch.problems)
            table = batch.table
            findings = check.check_batch(table, task.fmt)
            keep = budget.rows(findings, rules.severity)  # rows whose values the report shows
            for finding in findings:
                severity = rules.severity(finding.code)
                recs = batch.records[finding.rows]
                lns = batch.lines[finding.rows]
                values = budget.values(table, finding, keep)
                result.problems.extend(
                    Problem(int(r), int(ln), finding.field, finding.code, m, severity, v)
                    for r, ln, m, v in zip(
                        recs.tolist(), lns.tolist(), finding.messages, values, strict=True
                    )
                )
            if "User.UserId" in table.column_names:
                k, r, ln, rows = _keys(table, "User.UserId", batch.records, batch.lines)
                user_keys.append(k)
                user_records.append(r)
                user_lines.append(ln)
                if "ChannelType" in table.column_names:
                    is_push = pc.fill_null(pc.is_in(table.column("ChannelType"), push), False)
                    user_push.append(np.asarray(is_push)[rows])
                else:
                    user_push.append(np.zeros(len(rows), bool))
            if "Id" in table.column_names:
                k, r, ln, _ = _keys(table, "Id", batch.records, batch.lines)
                id_keys.append(k)
                id_records.append(r)
                id_lines.append(ln)
            result.attribute_names |= _custom_names(table)
            if len(batch.lines):
                lines_seen += [int(batch.lines[0]), int(batch.lines[-1])]
            lines_seen += [p.line for p in batch.problems if p.line is not None]
        if reader is not None:
            result.records = reader.record
            result.newlines = reader.line
            result.quote_trouble = reader.quote_trouble
            result.quotes = reader.quotes
            result.bytes_read = reader.offset - read_from
            if task.keep_spans and reader.spans:
                lines, starts, ends = (np.concatenate(x) for x in zip(*reader.spans, strict=True))
                result.spans = RecordSpans(lines, starts, ends)
        else:
            result.newlines = line0
    if lines_seen:
        result.first_line, result.last_line = min(lines_seen), max(lines_seen)

    result.users = PieceKeys.build(user_keys, user_records, user_lines, user_push)
    result.ids = PieceKeys.build(id_keys, id_records, id_lines)
    return result


def _problem_text(p: Problem) -> str:
    return f"{p.field}: {p.message} [{p.code}]" if p.field else f"{p.message} [{p.code}]"


@dataclass
class PieceOutcome:
    """A piece after folding: absolute lines, and which of its records failed."""

    result: PieceResult
    index: int
    line_base: int
    failed_records: np.ndarray
    problems_by_record: dict[int, list[Problem]] = field(default_factory=dict)


class Folder:
    """Folds piece results in source order into the report (and ``--failures-out``)."""

    def __init__(self, report: Report, *, strict: bool, failures_out: IO[bytes] | None) -> None:
        rules = schema.load()
        self.report = report
        self.strict = strict
        self.out = failures_out
        self.users = KeyCounts()
        self.ids = KeyCounts()
        self.attribute_names: set[str] = set()
        self.per_user = rules.limit("endpoints_per_user")
        self.severity = rules.severity
        self.failure_codes: Counter[str] = Counter()
        self.warning_codes: Counter[str] = Counter()

    def _fails(self, p: Problem) -> bool:
        return p.severity == "error" or (self.strict and p.severity == "warning")

    def _emit(self, source: str, line: int | None, piece: int | None, group: list[Problem]) -> bool:
        """Count one record's (or file's) problems; True when it failed."""
        errors = [p for p in group if self._fails(p)]
        warnings = [p for p in group if not self._fails(p)]
        where = f"{source}:{line}: " if line is not None else f"{source}: "
        r = self.report
        if errors:
            r.total_failures += 1
            r.file_failures += line is None
            if len(r.failures) < FIRST:
                r.failures.append(where + "; ".join(_problem_text(p) for p in errors))
                r.failure_details += [detail(source, line, piece, p) for p in errors]
            self.failure_codes.update(p.code for p in errors)
        if warnings:
            r.total_warnings += 1
            if len(r.warnings) < FIRST:
                r.warnings.append(where + "; ".join(_problem_text(p) for p in warnings))
                r.warning_details += [detail(source, line, piece, p) for p in warnings]
            self.warning_codes.update(p.code for p in warnings)
        if self.out is not None:
            for p in group:
                self.out.write(
                    orjson.dumps(
                        {
                            "source": source,
                            "line": line,
                            "piece": piece,
                            "field": p.field,
                            "code": p.code,
                            "severity": p.severity,
                            "message": p.message,
                        }
                    )
                    + b"\n"
                )
        return bool(errors)

    def file_problems(self, source: str, problems: list[Problem]) -> bool:
        failed = False
        for p in problems:
            p.severity = self.severity(p.code)
            failed |= self._emit(source, None, None, [p])
        return failed

    def job_problem(self, source: str, code: str, message: str) -> None:
        severity = self.severity(code)
        p = Problem(None, None, None, code, message, severity)
        if self._fails(p):
            self.report.job_failures.append(f"{source}: {message} [{code}]")
            self.report.failure_details.append(detail(source, None, None, p))
            self.failure_codes[code] += 1
        else:
            self.report.total_warnings += 1
            if len(self.report.warnings) < FIRST:
                self.report.warnings.append(f"{source}: {message} [{code}]")
                self.report.warning_details.append(detail(source, None, None, p))
            self.warning_codes[code] += 1
        if self.out is not None:
            self.out.write(
                orjson.dumps(
                    {
                        "source": source,
                        "line": None,
                        "piece": None,
                        "field": None,
                        "code": code,
                        "severity": severity,
                        "message": message,
                    }
                )
                + b"\n"
            )

    @staticmethod
    def _over(counts: KeyCounts, keys: PieceKeys, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Keyed records whose ordinal in the job passes ``limit``, and those ordinals."""
        before = counts.fold(keys.distinct, keys.counts)
        flagged = before + keys.counts > limit
        if not flagged.any():
            return np.empty(0, np.int64), np.empty(0, np.int64)
        rows = np.flatnonzero(flagged[keys.which])
        k = keys.which[rows]
        # Rank of each row among the rows of its key, in source order.
        order = np.argsort(k, kind="stable")
        ks = k[order]
        start = np.concatenate(([True], ks[1:] != ks[:-1]))
        idx = np.arange(len(ks))
        rank = np.empty(len(ks), np.int64)
        rank[order] = idx - np.maximum.accumulate(np.where(start, idx, 0))
        ordinal = before[k] + rank + 1
        keep = ordinal > limit
        return rows[keep], ordinal[keep]

    def _cross(self, res: PieceResult) -> list[Problem]:
        out = []
        users = res.users
        rows, ordinal = self._over(self.users, users, self.per_user)
        for i, n in zip(rows.tolist(), ordinal.tolist(), strict=True):
            push = bool(users.push[i])
            out.append(
                Problem(
                    int(users.records[i]),
                    int(users.lines[i]),
                    "User.UserId",
                    "USER_ENDPOINTS",
                    f"endpoint number {n} for this user id; "
                    f"Pinpoint allows {self.per_user} per user"
                    + (
                        " and deactivates the oldest push endpoint"
                        if push
                        else " and rejects this one"
                    ),
                    self.severity("USER_ENDPOINTS", push=push),
                )
            )
        ids = res.ids
        rows, ordinal = self._over(self.ids, ids, 1)
        for i, n in zip(rows.tolist(), ordinal.tolist(), strict=True):
            out.append(
                Problem(
                    int(ids.records[i]),
                    int(ids.lines[i]),
                    "Id",
                    "DUPLICATE_ID",
                    f"this Id was seen {n - 1} time(s) before in the job; "
                    "the later definition wins",
                    self.severity("DUPLICATE_ID"),
                )
            )
        self.attribute_names |= res.attribute_names
        return out

    def piece(
        self, res: PieceResult, index: int, line_base: int, file_failed: bool
    ) -> PieceOutcome:
        source = res.piece.file.display
        problems = res.problems + self._cross(res)
        problems.sort(key=lambda p: p.record if p.record is not None else -1)
        by_record: dict[int, list[Problem]] = {}
        for p in problems:
            by_record.setdefault(p.record if p.record is not None else -1, []).append(p)
        failed = []
        warned = 0
        for record, group in by_record.items():
            line = group[0].line + line_base if group[0].line is not None else None
            if self._emit(source, line, index, group):
                failed.append(record)
            else:
                warned += 1
        self.report.total_processed += res.records
        first = None if res.first_line is None else res.first_line + line_base
        last = None if res.last_line is None else res.last_line + line_base
        self.report.pieces.append(
            {
                "Index": index,
                "Source": source,
                "FirstLine": first,
                "LastLine": last,
                "ByteRange": [
                    res.piece.start if res.piece.start else res.piece.header_end,
                    res.piece.start + res.bytes_read
                    if res.piece.start
                    else res.piece.header_end + res.bytes_read,
                ],
                "Records": res.records,
                "FailedRecords": len(failed),
                "WarnedRecords": warned,
                "Status": "FAILED" if failed or file_failed else "COMPLETED",
            }
        )
        return PieceOutcome(res, index, line_base, np.array(sorted(failed), np.int64), by_record)

    def finish(self) -> None:
        r = self.report
        limit = schema.load().limit("custom_attributes_per_job")
        if len(self.attribute_names) > limit:
            names = sorted(self.attribute_names)
            self.job_problem(
                str(r.definition.get("S3Url")),
                "ATTRIBUTES_TOO_MANY",
                f"{len(names)} distinct custom attribute names across the job "
                f"(Attributes, Metrics and User.UserAttributes); Pinpoint allows "
                f"{limit}",
            )
        r.failures_by_code = dict(self.failure_codes)
        r.warnings_by_code = dict(self.warning_codes)


def make_executor(workers: int, *, threads: bool) -> Executor | None:
    """The seam: None runs in this process; otherwise a pool that maps in order.

    Workers are forked when this process has no other thread (nothing to deadlock on, and the
    caller's ``__main__`` is not imported again, so a script without a main guard works). With
    other threads running, a fork could copy a held lock: the forkserver starts them instead.
    """
    if workers <= 1:
        return None
    if threads:
        return ThreadPoolExecutor(workers)
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["validator.engine"])
        return ProcessPoolExecutor(workers, mp_context=ctx)
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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
) -> Report:
    """Check every selected file of ``listing``; fold the results into a Report."""
    size = parse_size(piece_size) if piece_size is not None else None
    report = Report(definition=definition, application_id=application_id, strict=strict)
    folder = Folder(report, strict=strict, failures_out=failures_out)
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
    plans = plan_pieces(
        listing, pieces=pieces, piece_size=size, settings=settings, s3_client=s3_client
    )
    # A progress display (validator.progress) learns the totals before the first piece.
    starter = getattr(getattr(progress, "__self__", progress), "start", None)
    if callable(starter):
        starter(listing)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise UsageError("workers must be at least 1")
    all_pieces = [p for plan in plans for p in plan.pieces]
    from_s3 = any(f.kind == "s3" for f in listing.selected)
    if (
        len(all_pieces) <= 1
        or (selected_bytes < IN_PROCESS_BELOW and not from_s3)
        or any(f.kind == "stdin" for f in listing.selected)
    ):
        workers = 1  # S3 objects are worth reading side by side however small: latency
    workers = min(workers, max(len(all_pieces), 1))
    plan_of = {id(p): plan for plan in plans for p in plan.pieces}
    tasks = [
        PieceTask(p, listing.format, plan_of[id(p)].columns, settings, keep_spans)
        for p in all_pieces
    ]
    run_one = partial(run_piece, s3_client=s3_client)
    executor = make_executor(workers, threads=s3_client is not None)
    with ExitStack() as stack:
        if executor is not None:
            stack.enter_context(executor)
            results: Iterator[PieceResult] = executor.map(run_one, tasks)
        else:
            results = map(run_one, tasks)
        file_rows = {}
        plan_by_file = {plan.file.display: plan for plan in plans}
        for f in listing.files:
            row: dict[str, Any] = {
                "Source": f.display,
                "Size": f.size if f.size >= 0 else None,
                "Format": f.format,
                "Status": "READ" if f.selected else "SKIPPED",
            }
            if not f.selected:
                row["Reason"] = f.skip_reason
            file_rows[f.display] = row
            report.files.append(row)
        index = 0
        line_base: dict[str, int] = {}
        file_failed: dict[str, bool] = {}
        skip_rest_of: set[str] = set()
        parity: dict[str, int] = {}
        held: dict[str, list[PieceResult]] = {}

        def rerun(first: Piece, end: int, plan: FilePlan) -> PieceResult:
            merged = Piece(
                first.index, first.file, first.start, end, first.header, first.header_end
            )
            return run_one(PieceTask(merged, listing.format, plan.columns, settings, keep_spans))

        plan_iter = iter(plans)
        current: FilePlan | None = None

        def start_file(plan: FilePlan) -> None:
            src = plan.file.display
            failed = folder.file_problems(src, plan.problems)
            file_failed[src] = failed
            row = file_rows[src]
            if not plan.readable:
                row["Status"] = "FAILED"
                row["Records"] = 0
            line_base[src] = 0

        for res in results:
            src = res.piece.file.display
            while current is None or current.file.display != src:
                current = next(plan_iter)
                start_file(current)
                if not current.pieces:
                    current = None
            if src in skip_rest_of:
                continue
            if listing.format == "CSV":
                last = res.piece is current.pieces[-1]
                # A piece ends at the newline after its target: a record end only after an even
                # number of quotes since the data began. If odd, hold it and merge it with the
                # next pieces until the count is even again (a quoted line break across the
                # end), then read that range as one piece. The held pieces' own results are
                # dropped: a piece that starts inside a quoted value sees broken quotes.
                parity[src] = (parity.get(src, 0) + res.quotes) & 1
                if src in held or (parity[src] and not last):
                    held.setdefault(src, []).append(res)
                    if parity[src] and not last:
                        continue
                    first = held.pop(src)[0].piece
                    res = rerun(first, res.piece.end, current)
                if res.quote_trouble and not last:
                    # A broken quote: the reader resynchronised on the next line, so quote
                    # parity no longer says where records end. Read the rest of the file in one
                    # piece, as a single reader would, and drop the rest of this file's results.
                    skip_rest_of.add(src)
                    res = rerun(res.piece, -1, current)
            outcome = folder.piece(res, index, line_base[src], file_failed[src])
            index += 1
            line_base[src] += res.newlines
            row = file_rows[src]
            row["Records"] = row.get("Records", 0) + res.records
            row["FailedRecords"] = row.get("FailedRecords", 0) + len(outcome.failed_records)
            if outcome.failed_records.size or file_failed[src]:
                row["Status"] = "FAILED"
            if progress is not None:
                progress(res)
            if on_piece is not None:
                on_piece(outcome, current)
        for plan in plan_iter:
            start_file(plan)
    for row in report.files:
        if row["Status"] != "SKIPPED" and row.get("Records", 0) == 0 and row["Status"] != "FAILED":
            plan = plan_by_file[row["Source"]]
            folder.file_problems(
                row["Source"],
                [
                    Problem(
                        None,
                        None,
                        None,
                        "FILE_EMPTY",
                        "no record" + (" after the header" if listing.format == "CSV" else ""),
                    )
                ],
            )
            row["Status"] = "FAILED"
    folder.finish()
    report.completion_date = now_iso()
    return report


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
    max_failures: int | None = None,
    max_failure_rate: float | str | None = None,
) -> Report:
    """Check endpoint-import data the way Pinpoint's import would, and report like it.

    ``source`` is a path, a folder, ``-`` or an ``s3://`` URL (or a list of them); ``format`` is
    ``"CSV"`` or ``"JSON"`` (from the extensions when omitted). Returns a :class:`Report`;
    raises :class:`validator.errors.PreflightError` subclasses for usage, configuration and
    AWS problems. ``max_failures`` and ``max_failure_rate`` (a fraction, or ``"5%"``) set the
    tolerance of the report's gate (``report.passed``; see :mod:`validator.gate`).
    """
    tolerance = Tolerance.of(max_failures, max_failure_rate)
    sources = [source] if isinstance(source, str | os.PathLike) else list(source)
    sources = [os.fspath(s) for s in sources]
    listing = list_sources(sources, format, settings=settings, s3_client=s3_client)
    definition = dict(definition or {})
    definition.setdefault("S3Url", sources[0] if len(sources) == 1 else sources)
    definition.setdefault("Format", listing.format)
    limit = parse_size(max_job_size, "max_job_size") if max_job_size is not None else None
    with _atomic_output(failures_out) as out:
        report = run(
            listing,
            definition=definition,
            application_id=application_id,
            pieces=pieces,
            piece_size=piece_size,
            strict=strict,
            workers=workers,
            s3_client=s3_client,
            settings=settings,
            failures_out=out,
            max_job_size=limit,
            progress=progress,
        )
    report.tolerance = tolerance
    return report


class _atomic_output:
    """A file that appears whole at ``path`` when the block ends well, and not at all if not."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.fh: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes] | None:
        if self.path is None:
            return None
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise UsageError(f"failures_out: no such folder {directory}")
        self.tmp = f"{self.path}.partial-{os.getpid()}"
        self.fh = open(self.tmp, "wb")
        return self.fh

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if self.fh is None:
            return
        self.fh.close()
        if kind is None:
            os.replace(self.tmp, self.path)  # type: ignore[arg-type]
        else:
            os.unlink(self.tmp)
