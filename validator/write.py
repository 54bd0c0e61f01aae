"""Stage 7, write: ``split`` copies every record, byte for byte, into a piece or the rejects.

Pieces are grouped into job folders (``job-0001/``...) that each fit one import job. Nothing is
half-written: a piece is written under a temporary name (on S3, a multipart upload) and only
then given its name; if the run fails or is interrupted, everything it wrote is removed. The
manifest is written last, so its presence means the split is whole.

This is the client's side: it folds the checked pieces in source order, decides for each what
goes where (names, job folders, the byte runs of each part), and hands that plan
(``parts.PartsTask``) to the executor that checked the pieces: a worker copies the piece's
bytes from the source to its parts (``parts.write_parts``). The client writes the rejects, the
reasons and the manifest; on a failure it waits for the parts in flight and removes all of it.
A local destination is written by this process when the pieces ran on a cluster
(``workers_elsewhere``: their paths are not this machine's).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from validator import options, redact, signals, transport
from validator.atomic import atomic_output
from validator.engine import PieceOutcome, run
from validator.errors import Interrupted, PreflightError, Terminated, UsageError
from validator.gate import Tolerance
from validator.model import PieceResult
from validator.parts import PartGroup, PartsDone, PartsTask, write_parts
from validator.pieces import DEFAULT_PIECE_SIZE, FilePlan, parse_size
from validator.repair import RepairOptions
from validator.report import Report, now_iso
from validator.settings import AwsSettings, with_client
from validator.source import SourceFile, list_sources, open_binary

# Parts tasks in flight per task the executor runs at once: enough to keep its workers busy,
# few enough that a failure or Ctrl-C waits only for these before the rollback (a task that
# runs on a cluster cannot be stopped midway: it is waited for, then its parts removed).
IN_FLIGHT_PER_WORKER = 2
DRAIN_TIMEOUT = 120.0  # seconds a rollback waits for the parts in flight
# The manifest sits at the destination's root, outside the job folders, under a name no reader
# selects as endpoint data (neither .csv nor .json/.jsonl/.ndjson): an import or a validate of
# the whole destination reads exactly the records written. Splits before this wrote
# manifest.json; --overwrite still recognises it.
MANIFEST = "manifest.txt"
LEGACY_MANIFESTS = ("manifest.json",)
# Claimed before anything is written (O_EXCL locally, If-None-Match: * on S3), removed when the
# split is whole: of two splits to one destination at once, one wins and the other refuses.
CLAIM = ".pinpoint-preflight-split"
REASONS = ".reasons.jsonl"  # next to the rejects: why each record was rejected


class Destination:
    """Where outputs go: a folder or a prefix of a transport (``validator.transport``, by the
    URL scheme of ``root``). Writes are whole or not at all; :meth:`rollback` takes back
    everything this run wrote there."""

    def __init__(self, root: str, *, settings: AwsSettings | None, s3_client: Any) -> None:
        self.transport = transport.for_output(root)
        self.root = root
        self.settings = with_client(settings, s3_client)
        self.transport.prepare(root, settings=self.settings)
        self.written: list[str] = []
        self.outputs: dict[str, transport.Writer] = {}  # committed: removed on a rollback
        self.open_writers: list[_Writer] = []
        self.made_dirs: list[str] = []
        self.claimed = False
        self.pending: list[str] = []  # what a discard could not take back, described
        # Names a task elsewhere is writing or was writing when it was lost (its worker died):
        # a rollback removes them, and what their writers left pending.
        self.unsure: dict[str, None] = {}

    def path(self, name: str) -> str:
        return str(self.transport.join(self.root, name))

    def exists(self, name: str) -> bool:
        return bool(self.transport.exists(self.path(name), settings=self.settings))

    def is_stream(self, name: str) -> bool:
        return bool(self.transport.is_stream(self.path(name)))

    def claim(self, to: str) -> None:
        """Claim the destination for this run, or refuse (252) if another run holds it."""
        body = orjson.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()})
        self.made_dirs += self.transport.make_folder(
            self.root, settings=self.settings, label=f"--to {to}"
        )
        if not self.transport.claim(self.path(CLAIM), body, settings=self.settings):
            raise UsageError(
                f"{to}: another split is writing there now ({self.path(CLAIM)} exists); wait "
                "for it, or choose another --to (if no split is running, remove that file)"
            )
        self.claimed = True

    def release(self) -> None:
        """Give the claim back (the split is whole, or was removed)."""
        if not self.claimed:
            return
        self.remove(CLAIM)
        self.claimed = False

    def open(self, name: str, what: str = "") -> _Writer:
        return _Writer(self, name, what)

    def remove(self, name: str) -> None:
        out = self.outputs.pop(name, None)
        if out is not None:
            out.remove()
        else:
            self.transport.remove(self.path(name), settings=self.settings)

    def _remove_unsure(self) -> list[str]:
        """Remove what tasks lost midway may have written; what is left, described."""
        left: list[str] = []
        names = list(self.unsure)
        self.unsure.clear()
        for name in names:
            try:
                self.remove(name)
            except Exception:
                try:
                    there = self.exists(name)
                except Exception:
                    there = True
                if there:
                    left.append(self.path(name))
        if names:
            try:
                urls = [self.path(n) for n in names]
                left += self.transport.clear_partial(self.root, urls, settings=self.settings)
            except Exception:
                left += [f"{self.path(n)} (perhaps a pending upload)" for n in names]
        return left

    def read_bytes(self, name: str) -> bytes:
        return bytes(self.transport.read_bytes(self.path(name), settings=self.settings))

    def rollback(self) -> list[str]:
        """Remove everything this run wrote here; what could not be removed, as paths."""
        left: list[str] = []
        with signals.critical():
            for writer in list(self.open_writers):
                writer.discard()
            for name in reversed(self.written):
                try:
                    self.remove(name)
                except Exception:  # reported to the user as left behind
                    left.append(self.path(name))
            self.written.clear()
            left += self._remove_unsure()
            if self.claimed:
                try:
                    self.release()
                except Exception:
                    left.append(self.path(CLAIM))
            left.extend(self.pending)
            for d in reversed(self.made_dirs):
                self.transport.remove_folder(d, settings=self.settings)
            self.made_dirs.clear()
        return left


class _Writer:
    """A file that gets its name only when closed without an error; counts bytes and sha256."""

    def __init__(self, dest: Destination, name: str, what: str = "") -> None:
        self.dest = dest
        self.name = name
        self.sha = hashlib.sha256()
        self.size = 0
        url = dest.path(name)
        # opening a FIFO waits for its reader: only an atomic output opens uninterruptibly
        with contextlib.nullcontext() if dest.is_stream(name) else signals.critical():
            self._out = dest.transport.open_writer(url, what, settings=dest.settings)
            dest.made_dirs += self._out.made
            dest.open_writers.append(self)  # the rollback discards it if need be

    @property
    def streamed(self) -> bool:
        return bool(self._out.streamed)

    def write(self, data: bytes | memoryview) -> None:
        self._out.write(data)
        self.sha.update(data)
        self.size += len(data)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if kind is None:
            with signals.critical():
                self.dest.outputs[self.name] = self._out
                self._out.commit()
                self.dest.written.append(self.name)
                self._closed()
            return
        self.discard()

    def _closed(self) -> None:
        with contextlib.suppress(ValueError):
            self.dest.open_writers.remove(self)

    def discard(self) -> None:
        """Take back what was written so far (an upload aborted, a temporary file removed)."""
        with signals.critical():
            self._closed()
            left = self._out.discard()
            if left:
                self.dest.pending.append(left)


def _runs(
    starts: np.ndarray, ends: np.ndarray, label: np.ndarray, alone: np.ndarray | None = None
) -> list[tuple[int, int, bool]]:
    """Coalesce adjacent byte ranges of records with the same label (never an ``alone`` one:
    a repaired record is a run of its own)."""
    if not len(starts):
        return []
    cut = (starts[1:] != ends[:-1]) | (label[1:] != label[:-1])
    if alone is not None:
        cut |= alone[1:] | alone[:-1]
    breaks = np.flatnonzero(cut) + 1
    lo = np.concatenate(([0], breaks))
    hi = np.concatenate((breaks, [len(starts)]))
    return list(zip(starts[lo].tolist(), ends[hi - 1].tolist(), label[lo].tolist(), strict=True))


@dataclass
class SplitResult:
    """The preflight report and what was written."""

    report: Report
    manifest: dict[str, Any] | None  # None when nothing was written (an empty job)
    written: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # The gate of a split knows what was written (validator.gate).
        if self.manifest is not None:  # None: an empty job, nothing written
            self.report.split = {
                "ValidOnly": self.manifest.get("ValidOnly", False),
                "Totals": self.manifest.get("Totals", {}),
            }

    @property
    def job_status(self) -> str:
        return self.report.job_status

    @property
    def passed(self) -> bool:
        """The gate's verdict: with ``valid_only``, every failed record went to the rejects."""
        return self.report.passed

    def to_dict(self) -> dict[str, Any]:
        out = self.report.to_dict()
        out["Manifest"] = self.manifest
        return out


@dataclass
class _Target:
    """Where one group of a piece's records goes: its part (name, manifest entry, job) and the
    rejects writer of its header."""

    name: str | None = None
    entry: dict[str, Any] | None = None
    job: dict[str, Any] | None = None
    rejects: _Writer | None = None


class _Splitter:
    def __init__(
        self,
        dest: Destination,
        fmt: str,
        max_job_size: int,
        valid_only: bool,
        rejects: Destination | None,
        rejects_name: str | None,
        settings: AwsSettings | None,
        s3_client: Any,
        strict: bool = False,
        file_limit: int | None = None,
    ) -> None:
        self.strict = strict
        self.file_limit = min(file_limit or max_job_size, max_job_size)
        self.out_count = 0
        self.dest = dest
        self.fmt = fmt
        self.max_job = max_job_size
        self.valid_only = valid_only
        self.rejects = rejects
        self.rejects_name = rejects_name
        self.settings = settings
        self.s3_client = s3_client
        self.pieces: list[dict[str, Any]] = []
        self.jobs: list[dict[str, Any]] = []
        self.job_bytes = 0
        self.headers: dict[str, bytes] = {}
        self.reject_writers: dict[bytes, tuple[_Writer, str]] = {}
        self.reasons: _Writer | None = None
        self.rejected = 0
        self.reject_lines: dict[str, int] = {}
        self.rejects_streamed = (
            rejects is not None and rejects_name is not None and rejects.is_stream(rejects_name)
        )
        self.runner: Executor | None = None  # where the parts are written (None: here)
        self.in_flight: deque[tuple[Future[PartsDone], list[_Target]]] = deque()
        self.limit = 1

    def header_bytes(self, f: SourceFile, plan: FilePlan) -> bytes:
        if self.fmt != "CSV":
            return b""
        if f.display not in self.headers:
            start = 3 if any(p.code == "FILE_BOM" for p in plan.problems) else 0
            with open_binary(f, start, settings=self.settings, s3_client=self.s3_client) as s:
                head = s.read(plan.data_start - start)
            self.headers[f.display] = head if head.endswith(b"\n") else head + b"\n"
        return self.headers[f.display]

    def _job_for(self, size: int) -> str:
        if not self.jobs or self.job_bytes + size > self.max_job:
            job = f"job-{len(self.jobs) + 1:04d}"
            self.jobs.append({"Job": job, "Bytes": 0, "Records": 0, "Pieces": []})
            self.job_bytes = 0
            # made here (and taken back by the rollback): its parts may be written elsewhere
            self.dest.made_dirs += self.dest.transport.make_folder(
                self.dest.path(job), settings=self.dest.settings
            )
        self.job_bytes += size
        return str(self.jobs[-1]["Job"])

    def _reject_writer(self, header: bytes) -> tuple[_Writer, str]:
        assert self.rejects is not None and self.rejects_name is not None
        if header not in self.reject_writers:
            n = len(self.reject_writers)
            if n and self.rejects_streamed:
                raise UsageError(
                    f"--rejects {self.rejects_name}: the rejected records come from files with "
                    "different headers, which one stream cannot hold; give --rejects a file name "
                    "(each header then gets its own file)"
                )
            stem, ext = os.path.splitext(self.rejects_name)
            name = self.rejects_name if n == 0 else f"{stem}-{n + 1}{ext}"
            w = self.rejects.open(name, "--rejects")
            w.__enter__()
            if header:
                w.write(header)
            self.reject_writers[header] = (w, name)
            self.reject_lines[name] = 1 if header else 0
        return self.reject_writers[header]

    def piece(self, outcome: PieceOutcome, plan: FilePlan) -> None:
        """Write one checked piece: its records, cut into files of at most the target size."""
        spans = outcome.result.spans
        f = outcome.result.piece.file
        if spans is None or not len(spans.starts):
            return
        header = self.header_bytes(f, plan)
        n = len(spans.starts)
        failed = np.zeros(n, bool)
        if len(outcome.failed_records):
            failed[outcome.failed_records[outcome.failed_records < n]] = True
        if any(p.severity == "error" for p in plan.problems):
            failed[:] = True  # a file that fails as a whole goes to the rejects whole
        to_rejects = failed if self.valid_only else np.zeros(n, bool)
        sizes = spans.ends - spans.starts
        subst = self._substitutions(outcome)
        if subst:
            sizes = sizes.copy()
            for i, data in subst.items():
                sizes[i] = len(data)
        # Cut where the kept bytes would pass the target (a piece re-read whole after a broken
        # quote can be much larger than one piece): every output fits in a job.
        kept = np.cumsum(np.where(to_rejects, 0, sizes + 1))
        limit = max(self.file_limit - len(header), 1)
        groups = []
        lo = 0
        while lo < n:
            base = int(kept[lo - 1]) if lo else 0
            hi = max(int(np.searchsorted(kept, base + limit, side="right")), lo + 1)
            groups.append((lo, min(hi, n)))
            lo = min(hi, n)
        part_groups = []
        targets: list[_Target] = []
        for lo, hi in groups:
            group, target = self._plan_group(
                outcome, plan, header, lo, hi, to_rejects, subst, sizes
            )
            part_groups.append(group)
            targets.append(target)
        task = PartsTask(
            f, int(spans.starts[0]), with_client(self.settings, self.s3_client), tuple(part_groups)
        )
        self._submit(task, targets)

    @staticmethod
    def _substitutions(outcome: PieceOutcome) -> dict[int, bytes]:
        """Repaired records (--repair): span index -> the bytes to write instead."""
        repairs = outcome.result.repairs
        return dict(repairs.subst) if repairs else {}

    def _plan_group(
        self,
        outcome: PieceOutcome,
        plan: FilePlan,
        header: bytes,
        lo: int,
        hi: int,
        to_rejects: np.ndarray,
        subst: dict[int, bytes],
        sizes: np.ndarray,
    ) -> tuple[PartGroup, _Target]:
        """Records ``lo:hi`` of a piece: the part they go to (named now, in source order, with
        its job folder) and its manifest entry, filled in when the part is written."""
        spans = outcome.result.spans
        assert spans is not None
        f = outcome.result.piece.file
        sel = slice(lo, hi)
        rejects_here = to_rejects[sel]
        keep = ~rejects_here
        alone = None
        by_start: dict[int, bytes] = {}
        if subst:
            alone = np.zeros(hi - lo, bool)
            for i, data in subst.items():
                if lo <= i < hi and not to_rejects[i]:
                    alone[i - lo] = True
                    by_start[int(spans.starts[i])] = data
        runs = _runs(spans.starts[sel], spans.ends[sel], rejects_here, alone)
        target = _Target()
        if rejects_here.any():
            target.rejects, rname = self._reject_writer(header)
            self._reasons(outcome, plan, header, rname, lo + np.flatnonzero(rejects_here))
        if not keep.any():
            return PartGroup(runs, None, b"", by_start), target
        body = int(sizes[sel][keep].sum())
        job = self._job_for(body + len(header) + 1)
        self.out_count += 1
        stem = Path(f.key or f.path or "stdin").stem
        ext = ".csv" if self.fmt == "CSV" else ".json"
        name = f"{job}/part-{self.out_count:05d}-{stem}{ext}"
        lines = spans.lines[sel][keep] + outcome.line_base
        records = int(keep.sum())
        target.name = name
        target.entry = {
            "Path": name,
            "Job": job,
            "Source": f.display,
            "FirstLine": int(lines[0]),
            "LastLine": int(lines[-1]),
            "Records": records,
            "Bytes": 0,  # when written
            "Sha256": "",
        }
        target.job = self.jobs[-1]
        self.pieces.append(target.entry)
        target.job["Records"] += records
        target.job["Pieces"].append(name)
        return PartGroup(runs, self.dest.path(name), header, by_start), target

    # --- the parts tasks: where they run, in flight, settled in source order --------------------

    def start(self, executor: Executor | None) -> None:
        """The pieces run on ``executor`` (None: this process): the parts are written there too,
        unless its workers are elsewhere and the destination is this machine's."""
        elsewhere = bool(getattr(executor, "workers_elsewhere", False))
        if executor is None or (elsewhere and not transport.anywhere(self.dest.root)):
            self.runner = None
            return
        self.runner = executor
        width = getattr(executor, "width", None) or getattr(executor, "_max_workers", None) or 1
        self.limit = IN_FLIGHT_PER_WORKER * max(int(width), 1)

    def _submit(self, task: PartsTask, targets: list[_Target]) -> None:
        names = [t.name for t in targets if t.name is not None]
        self.dest.unsure.update(dict.fromkeys(names))  # until the task says what it did
        if self.runner is None:
            self._settle(write_parts(task), targets)
            return
        self.in_flight.append((self.runner.submit(write_parts, task), targets))
        while len(self.in_flight) > self.limit:
            self._settle_oldest()

    def _settle_oldest(self) -> None:
        """Wait for the oldest task in flight; it leaves the queue only once it is done (a
        Ctrl-C during the wait leaves it there, for the rollback to wait for)."""
        future, oldest = self.in_flight[0]
        done = future.result()
        self.in_flight.popleft()
        self._settle(done, oldest)

    def _settle(self, done: PartsDone, targets: list[_Target], *, failing: bool = False) -> None:
        """What a task did, into the manifest and the rejects (in source order); its error
        raised (unless the run is failing already)."""
        for target, part in zip(targets, done.parts, strict=False):
            if target.name is None or part is None:
                continue
            self.dest.unsure.pop(target.name, None)
            self.dest.written.append(target.name)
            if target.entry is not None and target.job is not None:
                target.entry["Bytes"] = part.size
                target.entry["Sha256"] = part.sha256
                target.job["Bytes"] += part.size
        if done.error is not None:
            for target in targets[len(done.parts) :]:  # taken back by the task itself
                if target.name is not None:
                    self.dest.unsure.pop(target.name, None)
            self.dest.pending += done.left
            if failing:
                return
            raise done.error
        if failing:
            return
        for target, rejected in zip(targets, done.rejects, strict=True):
            if target.rejects is not None and rejected:
                target.rejects.write(rejected)

    def finish(self) -> None:
        """Wait for every part, in order; then take back what workers that died left pending
        (Dask reran their tasks elsewhere)."""
        while self.in_flight:
            self._settle_oldest()
        if self.runner is not None:
            urls = [self.dest.path(n) for n in self.dest.written]
            with contextlib.suppress(Exception):  # the split is whole: an orphan upload only
                self.dest.transport.clear_partial(self.dest.root, urls, settings=self.dest.settings)

    def drain(self) -> None:
        """The run is failing: wait for the parts in flight (a task elsewhere cannot be stopped
        midway), so that the rollback sees everything they wrote."""
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while self.in_flight:
            future, targets = self.in_flight.popleft()
            try:
                done = future.result(timeout=max(deadline - time.monotonic(), 0.01))
            except BaseException:  # lost (a worker died), or still running: its names stay unsure
                if not future.done():
                    self.dest.pending += [
                        f"{self.dest.path(t.name)} (perhaps still being written by a worker)"
                        for t in targets
                        if t.name is not None
                    ]
                continue
            self._settle(done, targets, failing=True)

    def _reasons(
        self, outcome: PieceOutcome, plan: FilePlan, header: bytes, rname: str, rows: np.ndarray
    ) -> None:
        spans = outcome.result.spans
        assert spans is not None
        if self.rejects_streamed:
            self.rejected += len(rows)
            return  # a stream has no side file: the reasons are in --failures-out
        if self.reasons is None:
            assert self.rejects is not None and self.rejects_name is not None
            self.reasons = self.rejects.open(self.rejects_name + REASONS, "--rejects")
            self.reasons.__enter__()
        file_codes = sorted({p.code for p in plan.problems if p.severity == "error"})
        for r in rows.tolist():
            group = outcome.problems_by_record.get(r, [])
            codes = sorted(
                {
                    p.code
                    for p in group
                    if p.severity == "error" or (self.strict and p.severity == "warning")
                }
            )
            self.reject_lines[rname] += 1
            self.reasons.write(
                redact.data(
                    orjson.dumps(
                        {
                            "rejects": rname,
                            "rejects_record": self.reject_lines[rname] - (1 if header else 0),
                            "source": outcome.result.piece.file.display,
                            "line": int(spans.lines[r]) + outcome.line_base,
                            "codes": codes or file_codes,
                        }
                    )
                    + b"\n"
                )
            )
        self.rejected += len(rows)

    def close_rejects(self) -> list[dict[str, Any]]:
        out = []
        for w, name in self.reject_writers.values():
            w.__exit__(None, None, None)
            out.append(
                {
                    "Path": name,
                    "Bytes": w.size,
                    "Sha256": w.sha.hexdigest(),
                    "Records": self.reject_lines[name] - (1 if self.fmt == "CSV" else 0),
                }
            )
        if self.reasons is not None:
            self.reasons.__exit__(None, None, None)
        return out

    def abort(self) -> None:
        for w, _ in self.reject_writers.values():
            w.__exit__(RuntimeError, RuntimeError("aborted"), None)
        if self.reasons is not None:
            self.reasons.__exit__(RuntimeError, RuntimeError("aborted"), None)


def split(
    source: str | Sequence[str],
    to: str,
    format: str | None = None,
    *,
    pieces: int | None = None,
    piece_size: int | str | None = None,
    max_job_size: int | str = "1GB",
    valid_only: bool = False,
    rejects: str | None = None,
    overwrite: bool = False,
    strict: bool = False,
    workers: int | None = None,
    s3_client: Any = None,
    settings: AwsSettings | None = None,
    failures_out: str | os.PathLike[str] | None = None,
    progress: Callable[[PieceResult], None] | None = None,
    executor: Executor | None = None,
    max_failures: int | None = None,
    max_failure_rate: float | str | None = None,
    repair: RepairOptions | None = None,
    repairs_out: str | os.PathLike[str] | None = None,
) -> SplitResult:
    """Check the sources like :func:`validator.preflight`, then write them out in pieces.

    Pieces go to ``to`` (a folder or ``s3://`` prefix) in job folders of at most
    ``max_job_size`` each, with the manifest (``manifest.txt``). With ``valid_only``, failed
    records go to the ``rejects`` file instead, and ``<rejects>.reasons.jsonl`` says why.
    ``executor`` runs the pieces as in :func:`validator.preflight` (and is not shut down).
    ``max_failures``/``max_failure_rate``: the gate's tolerance (see :mod:`validator.gate`).
    With ``repair``, repaired records are written repaired (``validator.repair``), the others
    byte for byte.
    """
    tolerance = Tolerance.of(max_failures, max_failure_rate)
    if valid_only and not rejects:
        raise UsageError("valid_only needs a rejects file: failed records must go somewhere")
    if rejects and not valid_only:
        raise UsageError("rejects goes with valid_only")
    checked = options.check(
        pieces=pieces,
        piece_size=piece_size,
        workers=workers,
        max_job_size=max_job_size,
        failures_out=failures_out,
    )
    options.check_output_path(repairs_out, "repairs_out")
    pieces = checked.pieces
    workers = checked.workers
    max_job = parse_size(max_job_size, "max_job_size")
    size = checked.piece_size
    if size is not None and size > max_job:
        raise UsageError(
            f"piece_size ({size:,} bytes) is larger than max_job_size "
            f"({max_job:,}): a piece must fit in a job"
        )
    if size is None and pieces is None:
        size = min(DEFAULT_PIECE_SIZE, max_job // 2)
    sources = [source] if isinstance(source, str | os.PathLike) else list(source)
    sources = [os.fspath(s) for s in sources]
    if "-" in sources:
        raise UsageError("split reads files or S3, not standard input (it reads them twice)")
    rejects_dest = None
    rejects_name = None
    if rejects:
        # a stream (-, /dev/stdout, /dev/fd/N, a FIFO, a device) is written to as named
        kind = transport.for_output(rejects)
        head, rejects_name = kind.split_name(rejects)
        rejects_dest = Destination(head, settings=settings, s3_client=s3_client)
        if not kind.is_stream(rejects):
            if kind.is_folder(rejects):
                raise UsageError(f"--rejects {rejects}: is a folder; give a file name")
            if rejects_dest.exists(rejects_name) and not overwrite:
                raise UsageError(f"--rejects {rejects} exists; use --overwrite to replace it")
    listing = list_sources(sources, format, settings=settings, s3_client=s3_client)
    dest = Destination(to, settings=settings, s3_client=s3_client)
    options.check_not_a_source(failures_out, "failures_out", listing.files)
    options.check_not_a_source(repairs_out, "repairs_out", listing.files)
    # An output file may run a quarter past the piece size (pieces are cut at records), never
    # past a job.
    target = max_job if size is None else min(max_job, size + size // 4)
    splitter = _Splitter(
        dest,
        listing.format,
        max_job,
        valid_only,
        rejects_dest,
        rejects_name,
        settings,
        s3_client,
        strict,
        target,
    )
    shown = listing.sources
    definition = {"S3Url": shown[0] if len(shown) == 1 else shown, "Format": listing.format}
    try:
        dest.claim(to)
        _check_destination(dest, to, overwrite)
        with (
            atomic_output(failures_out) as out,
            atomic_output(repairs_out, "--repairs-out", "repairs_out") as changes,
        ):
            report = run(
                listing,
                definition=definition,
                pieces=pieces,
                piece_size=size,
                strict=strict,
                workers=workers,
                s3_client=s3_client,
                settings=settings,
                failures_out=out,
                max_job_size=None,
                keep_spans=True,
                on_piece=splitter.piece,
                on_executor=splitter.start,
                progress=progress,
                executor=executor,
                repair=repair,
                repairs_out=changes,
            )
            report.tolerance = tolerance
            splitter.finish()
            if report.total_processed == 0:  # JOB_EMPTY: nothing to write, not even a manifest
                splitter.abort()
                dest.rollback()
                if rejects_dest:
                    rejects_dest.rollback()
                return SplitResult(report, None, [])
            reject_files = splitter.close_rejects()
            input_records = report.total_processed
            written_records = sum(p["Records"] for p in splitter.pieces)
            manifest = {
                "Format": listing.format,
                "Destination": to,
                "MaxJobSize": max_job,
                "ValidOnly": valid_only,
                "Jobs": [{**j, "Url": dest.path(j["Job"]) + "/"} for j in splitter.jobs],
                "Pieces": splitter.pieces,
                "Rejects": reject_files,
                "Totals": {
                    "InputRecords": input_records,
                    "PieceRecords": written_records,
                    "RejectedRecords": splitter.rejected,
                    "PieceBytes": sum(p["Bytes"] for p in splitter.pieces),
                    "Jobs": len(splitter.jobs),
                    "Pieces": len(splitter.pieces),
                },
            }
            with dest.open(MANIFEST, "the manifest") as m:
                m.write(redact.data(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"))
        dest.release()
    except BaseException as exc:
        with signals.critical():
            splitter.drain()
            splitter.abort()
            left = dest.rollback()
            if rejects_dest:
                left += rejects_dest.rollback()
        raise _after_rollback(exc, left) from (exc if isinstance(exc, KeyboardInterrupt) else None)
    return SplitResult(report, manifest, list(dest.written))


def _check_destination(dest: Destination, to: str, overwrite: bool) -> None:
    """Refuse to write over an earlier split or into a folder holding other files (unless
    --overwrite); with --overwrite, remove the earlier split first."""
    for name in (MANIFEST, *LEGACY_MANIFESTS):
        if dest.exists(name):
            if not overwrite:
                raise UsageError(
                    f"{dest.path(name)} exists: {to} holds an earlier split; "
                    "use --overwrite to replace it, or another --to"
                )
            _remove_previous(dest, name)
            return
    if not overwrite and dest.transport.holds_other_files(
        dest.root, {CLAIM}, settings=dest.settings
    ):
        raise UsageError(f"{to} is not empty; use --overwrite to write into it anyway")


def _after_rollback(exc: BaseException, left: list[str]) -> BaseException:
    """The error to raise once the partial outputs are removed: one line, saying so."""
    if isinstance(exc, KeyboardInterrupt):
        kind = Terminated if isinstance(exc, signals.SigTerm) else Interrupted
        what = "terminated" if kind is Terminated else "interrupted"
        exc = kind(f"{what}: the partial split was removed")
    if not isinstance(exc, PreflightError):
        return exc
    if left:
        shown = ", ".join(left[:20]) + (f" and {len(left) - 20} more" if len(left) > 20 else "")
        exc.args = (f"{exc}; the clean-up failed too, and these are left: {shown}",)
    elif not isinstance(exc, Interrupted) and exc.exit_code != UsageError.exit_code:
        exc.args = (f"{exc}; the split was not written (what it had written was removed)",)
    return exc


def _remove_previous(dest: Destination, name: str = MANIFEST) -> None:
    """With --overwrite: remove what the earlier split's manifest lists, then the manifest."""
    try:
        old = orjson.loads(dest.read_bytes(name))
    except Exception:  # not a manifest of ours: only the manifest goes
        old = {}
    for p in old.get("Pieces", []):
        dest.remove(p["Path"])
    dest.remove(name)
    for j in old.get("Jobs", []):
        dest.transport.remove_folder(dest.path(j["Job"]), settings=dest.settings, tree=True)
