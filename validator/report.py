"""Stage 6, the report: Pinpoint's ImportJobResponse members, plus what a preflight knows more.

``Report.to_dict()`` is the JSON report of the contract; ``render`` prints any dict as
json, yaml, text or table, after a JMESPath ``--query`` as the AWS CLI applies it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from validator.errors import UsageError

FIRST = 100  # Pinpoint keeps the first 100 failures; so does the report


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Report:
    """The verdict of one preflight run. ``to_dict()`` gives the contract's JSON report."""

    definition: dict[str, Any]
    application_id: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    creation_date: str = field(default_factory=now_iso)
    completion_date: str | None = None
    total_processed: int = 0
    total_failures: int = 0
    failures: list[str] = field(default_factory=list)
    job_failures: list[str] = field(default_factory=list)
    total_warnings: int = 0
    warnings: list[str] = field(default_factory=list)
    failures_by_code: dict[str, int] = field(default_factory=dict)
    warnings_by_code: dict[str, int] = field(default_factory=dict)
    pieces: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    strict: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_pieces(self) -> int:
        return len(self.pieces)

    @property
    def failed_pieces(self) -> int:
        return sum(1 for p in self.pieces if p["Status"] == "FAILED")

    @property
    def completed_pieces(self) -> int:
        return self.total_pieces - self.failed_pieces

    @property
    def job_status(self) -> str:
        """``COMPLETED`` when no record, file or job-level rule failed, else ``FAILED``."""
        return (
            "FAILED"
            if self.total_failures or self.job_failures or self.failed_pieces
            else "COMPLETED"
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ApplicationId": self.application_id,
            "Id": self.id,
            "Type": "IMPORT",
            "JobStatus": self.job_status,
            "CreationDate": self.creation_date,
            "CompletionDate": self.completion_date,
            "Definition": self.definition,
            "TotalPieces": self.total_pieces,
            "CompletedPieces": self.completed_pieces,
            "FailedPieces": self.failed_pieces,
            "TotalProcessed": self.total_processed,
            "TotalFailures": self.total_failures,
            "Failures": self.failures,
            "JobFailures": self.job_failures,
            "TotalWarnings": self.total_warnings,
            "Warnings": self.warnings,
            "FailuresByCode": dict(sorted(self.failures_by_code.items())),
            "WarningsByCode": dict(sorted(self.warnings_by_code.items())),
            "Strict": self.strict,
            "Pieces": self.pieces,
            "Files": self.files,
        }
        out.update(self.extra)
        return out


def compile_query(query: str | None) -> Any:
    """The compiled JMESPath expression, or None; a bad one is a usage error, said in one line."""
    if not query:
        return None
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return jmespath.compile(query)
    except JMESPathError as exc:
        first = str(exc).splitlines()[0].rstrip(":")
        raise UsageError(f"--query {query!r} is not a JMESPath expression: {first}") from exc


def apply_query(data: Any, query: str | None) -> Any:
    compiled = compile_query(query)
    return data if compiled is None else compiled.search(data)


def _scalar(v: Any) -> str:
    if v is None:
        return "None"
    if isinstance(v, bool):
        return "True" if v else "False"
    return str(v)


def _text(data: Any, out: list[str]) -> None:
    """The AWS CLI's text output: tab-separated scalars, one line per object or list item."""
    if isinstance(data, dict):
        scalars = [_scalar(v) for v in data.values() if not isinstance(v, dict | list)]
        if scalars:
            out.append("\t".join(scalars))
        for v in data.values():
            if isinstance(v, dict | list):
                _text(v, out)
    elif isinstance(data, list):
        if data and all(not isinstance(v, dict | list) for v in data):
            out.append("\t".join(_scalar(v) for v in data))
        else:
            for v in data:
                _text(v, out)
    else:
        out.append(_scalar(data))


def _is_report(data: Any) -> bool:
    return isinstance(data, dict) and "JobStatus" in data and "TotalProcessed" in data


def summary_lines(d: dict[str, Any]) -> list[str]:
    """Five seconds' reading: the verdict, the counts, the worst codes, the first failures."""
    verdict = "PASSED" if d["JobStatus"] == "COMPLETED" else "FAILED"
    read = [f for f in d.get("Files", []) if f.get("Status") != "SKIPPED"]
    skipped = len(d.get("Files", [])) - len(read)
    lines = [
        f"Preflight {verdict}: {d['TotalProcessed']:,} records in {len(read)} file(s)"
        + (f" ({skipped} skipped)" if skipped else "")
        + f", {d['TotalPieces']} piece(s): {d['CompletedPieces']} completed, "
        f"{d['FailedPieces']} failed",
        f"Failures: {d['TotalFailures']:,}    Warnings: {d['TotalWarnings']:,}",
    ]
    manifest = d.get("Manifest")
    if manifest:
        t = manifest["Totals"]
        wrote = (
            f"Wrote {t['PieceRecords']:,} records in {t['Pieces']} piece(s), "
            f"{t['Jobs']} job folder(s), to {manifest['Destination']}"
        )
        if manifest.get("Rejects"):
            wrote += f"; {t['RejectedRecords']:,} to " + ", ".join(
                r["Path"] for r in manifest["Rejects"]
            )
        lines.append(wrote)
    repairs = d.get("Repairs")
    if repairs:
        lines.append(
            f"Repaired {repairs['RepairedRecords']:,} record(s), {repairs['Changes']:,} change(s)"
            + (
                ": " + ", ".join(f"{k} {v:,}" for k, v in repairs["RecordsByRepair"].items())
                if repairs["RecordsByRepair"]
                else ""
            )
        )
    for line in d.get("JobFailures", []):
        lines.append(f"Job: {line}")
    if d.get("FailuresByCode"):
        lines.append(
            "By code: "
            + ", ".join(
                f"{k} {v:,}"
                for k, v in sorted(d["FailuresByCode"].items(), key=lambda kv: (-kv[1], kv[0]))
            )
        )
    if d.get("WarningsByCode"):
        lines.append(
            "Warnings by code: "
            + ", ".join(
                f"{k} {v:,}"
                for k, v in sorted(d["WarningsByCode"].items(), key=lambda kv: (-kv[1], kv[0]))
            )
        )
    shown = d.get("Failures", [])[:10]
    if shown:
        lines.append("First failures:")
        lines.extend(f"  {s}" for s in shown)
        if d["TotalFailures"] > len(shown):
            lines.append(
                f"  ... and {d['TotalFailures'] - len(shown):,} more "
                "(--output json for the first 100, --failures-out for all)"
            )
    return lines


def _table(data: Any) -> str:
    if _is_report(data):
        d = data
        rows = [
            ("JobStatus", d["JobStatus"]),
            ("TotalProcessed", f"{d['TotalProcessed']:,}"),
            ("TotalFailures", f"{d['TotalFailures']:,}"),
            ("TotalWarnings", f"{d['TotalWarnings']:,}"),
            ("TotalPieces", d["TotalPieces"]),
            ("CompletedPieces", d["CompletedPieces"]),
            ("FailedPieces", d["FailedPieces"]),
        ]
        w = max(len(k) for k, _ in rows)
        out = [
            "Preflight " + ("PASSED" if d["JobStatus"] == "COMPLETED" else "FAILED"),
            "+" + "-" * (w + 2) + "+" + "-" * 16 + "+",
        ]
        out += [f"| {k:<{w}} | {v!s:>14} |" for k, v in rows]
        out.append(out[1])
        codes = {**d.get("FailuresByCode", {}), **d.get("WarningsByCode", {})}
        if codes:
            cw = max(len(c) for c in codes)
            out.append(f"| {'code':<{cw}} | {'count':>9} |")
            out += [
                f"| {c:<{cw}} | {n:>9,} |" for c, n in sorted(codes.items(), key=lambda kv: -kv[1])
            ]
        out += ["", *summary_lines(d)[2:]]
        return "\n".join(out)
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


def render(data: Any, output: str = "json", query: str | None = None) -> str:
    """Format ``data`` for stdout as ``--output`` asks, after ``--query``."""
    data = apply_query(data, query)
    if output == "json":
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    if output == "yaml":
        import yaml

        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip("\n")
    if output == "text":
        if _is_report(data) and not query:
            return "\n".join(summary_lines(data))
        lines: list[str] = []
        _text(data, lines)
        return "\n".join(lines)
    if output == "table":
        return _table(data)
    raise UsageError(f"--output must be json, yaml, text or table, not {output!r}")
