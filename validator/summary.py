"""The human summary (``--output summary``): five seconds' reading at a terminal.

The verdict, what was read, the failed records and the records with warnings counted apart
(never one merged number), the gate, the codes of each, and where the first failures and the
first warnings are (``source:line``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["summary", "summary_lines"]

SHOW_FAILURES = 10
SHOW_WARNINGS = 5


def _by_code(counts: dict[str, int]) -> str:
    return ", ".join(
        f"{k} {v:,}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def summary_lines(d: dict[str, Any]) -> list[str]:
    """The summary of a report dict, one string per line."""
    verdict = "PASSED" if d["JobStatus"] == "COMPLETED" else "FAILED"
    files = d.get("Files", [])
    read = [f for f in files if f.get("Status") != "SKIPPED"]
    skipped = [f for f in files if f.get("Status") == "SKIPPED"]
    lines = [
        f"Preflight {verdict}: {d['TotalProcessed']:,} records in {len(read)} file(s)"
        + (f" ({len(skipped)} skipped)" if skipped else "")
        + f", {d['TotalPieces']} piece(s): {d['CompletedPieces']} completed, "
        f"{d['FailedPieces']} failed",
        f"Failed records: {d['TotalFailures']:,}    "
        f"Warnings: {d.get('TotalWarnings', 0):,}"
        + ("    (--strict: warnings count as failures)" if d.get("Strict") else ""),
    ]
    gate = d.get("Gate")
    if gate and (gate.get("MaxFailures") is not None or gate.get("MaxFailureRate") is not None):
        limits = []
        if gate.get("MaxFailures") is not None:
            limits.append(f"max failures {gate['MaxFailures']:,}")
        if gate.get("MaxFailureRate") is not None:
            limits.append(f"max failure rate {gate['MaxFailureRate']:.2%}")
        lines.append(f"Gate {gate['Verdict']} ({', '.join(limits)}): {gate['Reason']}")
    elif gate and gate.get("Verdict") == "PASSED" and verdict == "FAILED":
        lines.append(f"Gate PASSED: {gate['Reason']}")
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
    for f in skipped[:5]:
        lines.append(f"Skipped: {f['Source']}: {f.get('Reason') or 'not read'}")
    if len(skipped) > 5:
        lines.append(f"Skipped: ... and {len(skipped) - 5:,} more (see Files)")
    for line in d.get("JobFailures", []):
        lines.append(f"Job: {line}")
    if d.get("FailuresByCode"):
        lines.append("Failures by code: " + _by_code(d["FailuresByCode"]))
    if d.get("WarningsByCode"):
        lines.append("Warnings by code: " + _by_code(d["WarningsByCode"]))
    for name, items, total, show in (
        ("failures", d.get("Failures", []), d["TotalFailures"], SHOW_FAILURES),
        ("warnings", d.get("Warnings", []), d.get("TotalWarnings", 0), SHOW_WARNINGS),
    ):
        shown = items[:show]
        if not shown:
            continue
        lines.append(f"First {name}:")
        lines.extend(f"  {s}" for s in shown)
        if total > len(shown):
            lines.append(
                f"  ... and {total - len(shown):,} more "
                "(--output json for the first 100, --failures-out for all)"
            )
    return lines


def summary(d: dict[str, Any]) -> str:
    """The summary as the text for stdout."""
    return "\n".join(summary_lines(d)) + "\n"
