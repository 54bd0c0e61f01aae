"""Stage 7, write: ``split`` copies every record, byte for byte, into a piece or the rejects.

Pieces are grouped into job folders (``job-0001/``...) that each fit one import job. Nothing is
half-written: a piece is written under a temporary name (on S3, a multipart upload) and only
then given its name; if the run fails or is interrupted, everything it wrote is removed. The
manifest is written last, so its presence means the split is whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from validator import options
from validator.engine import PieceOutcome, _atomic_output, run
from validator.errors import Interrupted, UsageError
from validator.model import PieceResult
from validator.pieces import DEFAULT_PIECE_SIZE, FilePlan, parse_size
from validator.repair import RepairOptions
from validator.report import Report
from validator.settings import AwsSettings
from validator.source import SourceFile, list_sources, open_binary

COPY_CHUNK = 1 << 20
MANIFEST = "manifest.json"


class Destination:
    """Where outputs go: a local folder, or an S3 prefix. Writes are whole or not at all."""

    def __init__(self, root: str, *, settings: AwsSettings | None, s3_client: Any) -> None:
        self.root = root.rstrip("/") if root.startswith("s3://") else root
        self.is_s3 = root.startswith("s3://")
        self.settings = settings
        self.s3_client = s3_client
        self.written: list[str] = []
        if self.is_s3:
            from validator import s3

            self.client = s3_client or s3.make_client(settings)
            self.bucket, prefix = s3.parse_url(self.root + "/")
            self.prefix = prefix

    def path(self, name: str) -> str:
        return f"{self.root}/{name}" if self.is_s3 else os.path.join(self.root, name)

    def exists(self, name: str) -> bool:
        if self.is_s3:
            from validator import s3

            try:
                self.client.head_object(Bucket=self.bucket, Key=self.prefix + name)
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code")
                if code in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise s3.translate(exc, self.bucket, self.prefix + name) from exc
            return True
        return os.path.exists(self.path(name))

    def open(self, name: str) -> _Writer:
        return _Writer(self, name)

    def remove(self, name: str) -> None:
        if self.is_s3:
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(name))

    def rollback(self) -> None:
        for name in reversed(self.written):
            with contextlib.suppress(Exception):  # best effort while already failing
                self.remove(name)
        if not self.is_s3:
            for name in sorted(
                {os.path.dirname(n) for n in self.written if os.path.dirname(n)}, reverse=True
            ):
                with contextlib.suppress(OSError):
                    os.rmdir(self.path(name))
        self.written.clear()


class _Writer:
    """A file that gets its name only when closed without an error; counts bytes and sha256."""

    def __init__(self, dest: Destination, name: str) -> None:
        self.dest = dest
        self.name = name
        self.sha = hashlib.sha256()
        self.size = 0
        self._fh: IO[bytes]
        if dest.is_s3:
            from smart_open import open as s_open

            self._fh = s_open(
                f"s3://{dest.bucket}/{dest.prefix}{name}",
                "wb",
                compression="disable",
                transport_params={"client": dest.client},
            )
        else:
            final = dest.path(name)
            os.makedirs(os.path.dirname(final) or ".", exist_ok=True)
            self._tmp = f"{final}.partial-{os.getpid()}"
            self._fh = open(self._tmp, "wb")  # noqa: SIM115

    def write(self, data: bytes | memoryview) -> None:
        self._fh.write(data)
        self.sha.update(data)
        self.size += len(data)

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> None:
        if kind is None:
            self._fh.close()
            if not self.dest.is_s3:
                os.replace(self._tmp, self.dest.path(self.name))
            self.dest.written.append(self.name)
            return
        if self.dest.is_s3:
            # smart_open aborts the multipart upload when closed after an error.
            with contextlib.suppress(Exception):
                self._fh.__exit__(kind, exc, tb)
        else:
            self._fh.close()
            os.unlink(self._tmp)


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


def _copy(
    stream: IO[bytes],
    pos: int,
    runs: list[tuple[int, int, bool]],
    outs: dict[bool, _Writer],
    subst: dict[int, bytes] | None = None,
) -> int:
    """Copy byte ranges (ascending) from ``stream``, which is at ``pos``, to ``outs[label]``;
    a run that starts at a key of ``subst`` (a repaired record) is written as its value."""
    for start, end, label in runs:
        if subst and start in subst:
            skip = end - pos  # past the original bytes
            while skip > 0:
                got = stream.read(min(skip, COPY_CHUNK))
                if not got:
                    raise UsageError("the source changed while it was being split")
                skip -= len(got)
            data = subst[start]
            outs[label].write(data)
            if not data.endswith(b"\n"):
                outs[label].write(b"\n")
            pos = end
            continue
        skip = start - pos
        while skip > 0:
            got = stream.read(min(skip, COPY_CHUNK))
            if not got:
                raise UsageError("the source changed while it was being split")
            skip -= len(got)
        out = outs[label]
        todo = end - start
        chunk = b""
        while todo:
            chunk = stream.read(min(todo, COPY_CHUNK))
            if not chunk:
                raise UsageError("the source changed while it was being split")
            out.write(chunk)
            todo -= len(chunk)
        pos = end
        if chunk and not chunk.endswith(b"\n"):
            out.write(b"\n")  # the file's last record had no newline: the next one needs one
    return pos


@dataclass
class SplitResult:
    """The preflight report and what was written."""

    report: Report
    manifest: dict[str, Any] | None  # None when nothing was written (an empty job)
    written: list[str] = field(default_factory=list)

    @property
    def job_status(self) -> str:
        return self.report.job_status

    def to_dict(self) -> dict[str, Any]:
        out = self.report.to_dict()
        out["Manifest"] = self.manifest
        return out


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
            self.jobs.append(
                {"Job": f"job-{len(self.jobs) + 1:04d}", "Bytes": 0, "Records": 0, "Pieces": []}
            )
            self.job_bytes = 0
        self.job_bytes += size
        return str(self.jobs[-1]["Job"])

    def _reject_writer(self, header: bytes) -> tuple[_Writer, str]:
        assert self.rejects is not None and self.rejects_name is not None
        if header not in self.reject_writers:
            n = len(self.reject_writers)
            stem, ext = os.path.splitext(self.rejects_name)
            name = self.rejects_name if n == 0 else f"{stem}-{n + 1}{ext}"
            w = self.rejects.open(name)
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
        start = int(spans.starts[0])
        with open_binary(f, start, settings=self.settings, s3_client=self.s3_client) as stream:
            pos = start
            for lo, hi in groups:
                pos = self._write_group(
                    stream, pos, outcome, plan, header, lo, hi, to_rejects, subst, sizes
                )

    @staticmethod
    def _substitutions(outcome: PieceOutcome) -> dict[int, bytes]:
        """Repaired records (--repair): span index -> the bytes to write instead."""
        repairs = outcome.result.repairs
        return dict(repairs.subst) if repairs else {}

    def _write_group(
        self,
        stream: IO[bytes],
        pos: int,
        outcome: PieceOutcome,
        plan: FilePlan,
        header: bytes,
        lo: int,
        hi: int,
        to_rejects: np.ndarray,
        subst: dict[int, bytes],
        sizes: np.ndarray,
    ) -> int:
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
        outs: dict[bool, _Writer] = {}
        rname = ""
        if rejects_here.any():
            outs[True], rname = self._reject_writer(header)
        if keep.any():
            body = int(sizes[sel][keep].sum())
            job = self._job_for(body + len(header) + 1)
            self.out_count += 1
            stem = Path(f.key or f.path or "stdin").stem
            ext = ".csv" if self.fmt == "CSV" else ".json"
            name = f"{job}/part-{self.out_count:05d}-{stem}{ext}"
            with self.dest.open(name) as out:
                if header:
                    out.write(header)
                outs[False] = out
                pos = _copy(stream, pos, runs, outs, by_start)
            lines = spans.lines[sel][keep] + outcome.line_base
            records = int(keep.sum())
            self.pieces.append(
                {
                    "Path": name,
                    "Job": job,
                    "Source": f.display,
                    "FirstLine": int(lines[0]),
                    "LastLine": int(lines[-1]),
                    "Records": records,
                    "Bytes": out.size,
                    "Sha256": out.sha.hexdigest(),
                }
            )
            self.jobs[-1]["Bytes"] += out.size
            self.jobs[-1]["Records"] += records
            self.jobs[-1]["Pieces"].append(name)
        else:
            pos = _copy(stream, pos, runs, outs, by_start)
        if rejects_here.any():
            self._reasons(outcome, plan, header, rname, lo + np.flatnonzero(rejects_here))
        return pos

    def _reasons(
        self, outcome: PieceOutcome, plan: FilePlan, header: bytes, rname: str, rows: np.ndarray
    ) -> None:
        spans = outcome.result.spans
        assert spans is not None
        if self.reasons is None:
            assert self.rejects is not None and self.rejects_name is not None
            self.reasons = self.rejects.open(self.rejects_name + ".reasons.jsonl")
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
    repair: RepairOptions | None = None,
    repairs_out: str | os.PathLike[str] | None = None,
) -> SplitResult:
    """Check the sources like :func:`validator.preflight`, then write them out in pieces.

    Pieces go to ``to`` (a folder or ``s3://`` prefix) in job folders of at most
    ``max_job_size`` each, with ``manifest.json``. With ``valid_only``, failed records go to
    the ``rejects`` file instead, and ``<rejects>.reasons.jsonl`` says why.
    ``executor`` runs the pieces as in :func:`validator.preflight` (and is not shut down).
    With ``repair``, repaired records are written repaired (``validator.repair``), the others
    byte for byte.
    """
    if valid_only and not rejects:
        raise UsageError("--valid-only needs --rejects FILE: failed records must go somewhere")
    if rejects and not valid_only:
        raise UsageError("--rejects goes with --valid-only")
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
            f"--piece-size ({size:,} bytes) is larger than --max-job-size "
            f"({max_job:,}): a piece must fit in a job"
        )
    if size is None and pieces is None:
        size = min(DEFAULT_PIECE_SIZE, max_job // 2)
    sources = [source] if isinstance(source, str | os.PathLike) else list(source)
    sources = [os.fspath(s) for s in sources]
    if "-" in sources:
        raise UsageError("split reads files or S3, not standard input (it reads them twice)")
    dest = Destination(to, settings=settings, s3_client=s3_client)
    if dest.exists(MANIFEST):
        if not overwrite:
            raise UsageError(
                f"{dest.path(MANIFEST)} exists: {to} holds an earlier split; "
                "use --overwrite to replace it, or another --to"
            )
        _remove_previous(dest)
    elif not dest.is_s3 and os.path.isdir(to) and os.listdir(to) and not overwrite:
        raise UsageError(f"{to} is not empty; use --overwrite to write into it anyway")
    rejects_dest = None
    rejects_name = None
    if rejects:
        if rejects.startswith("s3://"):
            head, _, tail = rejects.rstrip("/").rpartition("/")
            rejects_dest = Destination(head, settings=settings, s3_client=s3_client)
        else:
            rejects_dest = Destination(
                os.path.dirname(os.path.abspath(rejects)), settings=settings, s3_client=s3_client
            )
            tail = os.path.basename(rejects)
        rejects_name = tail
        if rejects_dest.exists(rejects_name) and not overwrite:
            raise UsageError(f"{rejects} exists; use --overwrite to replace it")
    listing = list_sources(sources, format, settings=settings, s3_client=s3_client)
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
        with (
            _atomic_output(failures_out) as out,
            _atomic_output(repairs_out, "repairs_out") as changes,
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
                progress=progress,
                executor=executor,
                repair=repair,
                repairs_out=changes,
            )
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
        with dest.open(MANIFEST) as m:
            m.write(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    except KeyboardInterrupt as exc:
        splitter.abort()
        dest.rollback()
        if rejects_dest:
            rejects_dest.rollback()
        raise Interrupted("interrupted: the partial split was removed") from exc
    except BaseException:
        splitter.abort()
        dest.rollback()
        if rejects_dest:
            rejects_dest.rollback()
        raise
    return SplitResult(report, manifest, list(dest.written))


def _remove_previous(dest: Destination) -> None:
    """With --overwrite: remove what the earlier split's manifest lists, then the manifest."""
    try:
        if dest.is_s3:
            body = dest.client.get_object(Bucket=dest.bucket, Key=dest.prefix + MANIFEST)["Body"]
            old = orjson.loads(body.read())
        else:
            old = orjson.loads(Path(dest.path(MANIFEST)).read_bytes())
    except Exception:
        return
    for p in old.get("Pieces", []):
        dest.remove(p["Path"])
    dest.remove(MANIFEST)
    if not dest.is_s3:
        for j in old.get("Jobs", []):
            shutil.rmtree(dest.path(j["Job"]), ignore_errors=True)
