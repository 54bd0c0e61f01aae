"""The fold: piece results, in source order, into the report (and ``--failures-out``).

Folding in source order keeps line numbers, the first 100 failures and the job-wide counts
exactly the same whatever the number of pieces or workers. The fold also keeps the report's
per-file rows (``Files``): records, failed records, status, and the empty files found at the end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import orjson

from validator import schema
from validator.crossrecord import JobRules
from validator.details import detail
from validator.model import PieceResult, Problem
from validator.pieces import FilePlan
from validator.report import FIRST, Report
from validator.source import SourceFile

if TYPE_CHECKING:
    from validator.repair import RepairLog


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

    def __init__(
        self,
        report: Report,
        *,
        strict: bool,
        failures_out: IO[bytes] | None,
        repairs: RepairLog | None = None,
    ) -> None:
        rules = schema.load()
        self.repairs = repairs  # --repair: the change log, and Repairs in the report
        self.report = report
        self.strict = strict
        self.out = failures_out
        self.cross = JobRules()
        self.severity = rules.severity
        self.failure_codes: Counter[str] = Counter()
        self.warning_codes: Counter[str] = Counter()
        # Where the fold stands in source order.
        self.file_rows: dict[str, dict[str, Any]] = {}
        self.index = 0
        self.line_base: dict[str, int] = {}
        self.file_failed: dict[str, bool] = {}

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
        """A file's own problems (header, compression...): one failure for the file, however
        many of them, as ``TotalFailures`` counts a file that could not be read as a whole."""
        for p in problems:
            p.severity = self.severity(p.code)
        return bool(problems) and self._emit(source, None, None, problems)

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

    def piece(
        self, res: PieceResult, index: int, line_base: int, file_failed: bool
    ) -> PieceOutcome:
        source = res.piece.file.display
        # a repaired record that fails after all goes out unrepaired, with its own problems
        cross = self.cross.piece(res)
        if res.repairs:  # only then: repair's module is not needed to check
            from validator import repair

            problems = repair.undo_failed(res.problems, cross, res.repairs, self._fails)
        else:
            problems = res.problems + cross
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

    def files(self, files: list[SourceFile]) -> None:
        """The report's row for every listed file, selected or skipped, in listing order."""
        for f in files:
            row = f.row()  # what the listing says: read or skipped and why, duplicates
            self.file_rows[f.display] = row
            self.report.files.append(row)

    def start_file(self, plan: FilePlan) -> None:
        """A file's own problems (found when its pieces were planned), before its pieces."""
        src = plan.file.display
        problems = plan.problems
        if self.repairs is not None and any(p.code == "FILE_BOM" for p in problems):
            self.repairs.bom(src)  # pieces never carry it: repaired, not a warning
            problems = [p for p in problems if p.code != "FILE_BOM"]
        failed = self.file_problems(src, problems)
        self.file_failed[src] = failed
        row = self.file_rows[src]
        if not plan.readable:
            row["Status"] = "FAILED"
            row["Records"] = 0
        self.line_base[src] = 0

    def next_piece(self, res: PieceResult) -> PieceOutcome:
        """Fold the next piece in source order (its file started); count it in its file's row."""
        src = res.piece.file.display
        outcome = self.piece(res, self.index, self.line_base[src], self.file_failed[src])
        if self.repairs is not None:
            self.repairs.piece(
                src, res.repairs, outcome.failed_records, self.line_base[src], self.file_failed[src]
            )
        self.index += 1
        self.line_base[src] += res.newlines
        row = self.file_rows[src]
        row["Records"] = row.get("Records", 0) + res.records
        row["FailedRecords"] = row.get("FailedRecords", 0) + len(outcome.failed_records)
        if outcome.failed_records.size or self.file_failed[src]:
            row["Status"] = "FAILED"
        return outcome

    def empty_files(self, fmt: str) -> None:
        """A read file that gave no record fails: FILE_EMPTY."""
        for row in self.report.files:
            if (
                row["Status"] != "SKIPPED"
                and row.get("Records", 0) == 0
                and row["Status"] != "FAILED"
            ):
                self.file_problems(
                    row["Source"],
                    [
                        Problem(
                            None,
                            None,
                            None,
                            "FILE_EMPTY",
                            "no record" + (" after the header" if fmt == "CSV" else ""),
                        )
                    ],
                )
                row["Status"] = "FAILED"

    def finish(self) -> None:
        r = self.report
        for code, message in self.cross.job():
            self.job_problem(str(r.definition.get("S3Url")), code, message)
        r.failures_by_code = dict(self.failure_codes)
        r.warnings_by_code = dict(self.warning_codes)
        if self.repairs is not None:
            r.extra["Repairs"] = self.repairs.summary()
