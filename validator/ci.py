"""Outputs a CI system reads: GitHub Actions annotations and JUnit XML.

Both come from the report's ``FailureDetails`` and ``WarningDetails`` (the first 100 failed
records' problems, as objects), so they name file, line, field and code exactly as the report.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import groupby
from typing import Any

__all__ = ["JUNIT_CAP", "github_annotations", "junit_xml"]

JUNIT_CAP = 100  # failures per test case


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _annotation(kind: str, p: dict[str, Any]) -> str:
    props = [f"file={_prop(str(p['source']))}"]
    if p.get("line") is not None:
        props.append(f"line={p['line']}")
    props.append(f"title={_prop(p['code'])}")
    text = f"{p['field']}: {p['message']}" if p.get("field") else p["message"]
    return f"::{kind} {','.join(props)}::{_data(text)}"


def github_annotations(d: dict[str, Any]) -> str:
    """One workflow command per problem (``::error`` for failures, ``::warning`` for
    warnings), then a ``::notice`` with the verdict and what was left out."""
    from validator.summary import summary_lines

    lines = [_annotation("error", p) for p in d.get("FailureDetails", [])]
    lines += [_annotation("warning", p) for p in d.get("WarningDetails", [])]
    head = summary_lines(d)[:2]
    shown_f = len({(p["source"], p["line"]) for p in d.get("FailureDetails", [])})
    more = d["TotalFailures"] - len(d.get("Failures", []))
    note = "; ".join(" ".join(line.split()) for line in head)
    if more > 0:
        note += f" (annotations for the first {shown_f}; --failures-out has every problem)"
    lines.append(f"::notice title=pinpoint-preflight::{_data(note)}")
    return "\n".join(lines) + "\n"


def _record_text(problems: list[dict[str, Any]]) -> str:
    return "; ".join(
        (f"{p['field']}: " if p.get("field") else "") + f"{p['message']} [{p['code']}]"
        for p in problems
    )


def junit_xml(d: dict[str, Any], cap: int = JUNIT_CAP) -> str:
    """JUnit XML: a ``testsuite`` of the run with one ``testcase`` per file (skipped files as
    skipped), one ``failure`` per failed record up to ``cap``, and a ``job`` case when a
    job-level rule failed."""
    details = [p for p in d.get("FailureDetails", []) if p.get("line") is not None]
    by_file: dict[str, list[list[dict[str, Any]]]] = {}
    for (source, _line), group in groupby(details, key=lambda p: (p["source"], p["line"])):
        by_file.setdefault(source, []).append(list(group))
    file_level: dict[str, list[dict[str, Any]]] = {}
    for p in d.get("FailureDetails", []):
        if p.get("line") is None:
            file_level.setdefault(p["source"], []).append(p)
    files = d.get("Files", [])
    cases = []
    for f in files:
        case = ET.Element("testcase", name=f["Source"], classname="pinpoint-preflight")
        if f.get("Status") == "SKIPPED":
            ET.SubElement(case, "skipped", message=f.get("Reason") or "skipped")
        for p in file_level.get(f["Source"], []):
            fail = ET.SubElement(case, "failure", message=_record_text([p]), type=p["code"])
            fail.text = f"{f['Source']}: {_record_text([p])}"
        records = by_file.get(f["Source"], [])
        for rec in records[:cap]:
            line = rec[0]["line"]
            fail = ET.SubElement(case, "failure", message=_record_text(rec), type=rec[0]["code"])
            fail.text = f"{f['Source']}:{line}: {_record_text(rec)}"
        failed = int(f.get("FailedRecords") or 0)
        if failed > min(len(records), cap):
            fail = ET.SubElement(
                case,
                "failure",
                message=f"{failed - min(len(records), cap):,} more failed records",
                type="MORE",
            )
            fail.text = "the report keeps the first 100; --failures-out has every problem"
        cases.append(case)
    job = [p for p in d.get("FailureDetails", []) if p.get("line") is None]
    job = [p for p in job if p["source"] not in {f["Source"] for f in files}]
    if job:
        case = ET.Element("testcase", name="job", classname="pinpoint-preflight")
        for p in job:
            fail = ET.SubElement(case, "failure", message=_record_text([p]), type=p["code"])
            fail.text = f"{p['source']}: {_record_text([p])}"
        cases.append(case)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    skipped = sum(1 for c in cases if c.find("skipped") is not None)
    suite = ET.Element(
        "testsuite",
        name="pinpoint-preflight",
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        timestamp=str(d.get("CreationDate") or ""),
    )
    props = ET.SubElement(suite, "properties")
    for name in ("JobStatus", "TotalProcessed", "TotalFailures", "TotalWarnings"):
        ET.SubElement(props, "property", name=name, value=str(d.get(name)))
    suite.extend(cases)
    root = ET.Element("testsuites", name="pinpoint-preflight", tests=str(len(cases)))
    root.set("failures", str(failures))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
