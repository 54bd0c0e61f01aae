"""The rule table: every rule code with its severity, stage, field, what it checks, the
source that justifies it, and a failing and a passing example (``schemas/rules.json`` and
``schemas/rule-examples.json``). ``validator.rules()`` returns it; ``pinpoint-preflight
rules`` and ``pinpoint-preflight explain CODE`` print it."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from validator.errors import UsageError

__all__ = ["explain", "explain_text", "rules", "rules_text"]


@cache
def _examples() -> dict[str, dict[str, Any]]:
    from validator.schema import schema_dir

    path = schema_dir() / "rule-examples.json"
    examples: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["examples"]
    return examples


def _fields() -> dict[str, list[str]]:
    from validator.schema import load_schema

    schema = load_schema()
    out: dict[str, list[str]] = {}
    for rule in schema.value_rules:
        out.setdefault(rule.code, []).append(rule.field)
    for name, number in schema.number_rules.items():
        out.setdefault(number.code, []).append(name)
        if number.range_code:
            out.setdefault(number.range_code, []).append(name)
    return {code: sorted(set(names)) for code, names in out.items()}


def rules() -> list[dict[str, Any]]:
    """Every rule, in the order of ``schemas/rules.json``: ``Code``, ``Severity``,
    ``SeverityForPush``, ``Stage``, ``Fields``, ``Checks``, ``Source``, ``FailingExample``,
    ``PassingExample``."""
    from validator.schema import load_schema

    fields = _fields()
    examples = _examples()
    out = []
    for rule in load_schema().rules:
        example = examples.get(rule.code, {})
        named = fields.get(rule.code) or ([example["field"]] if "field" in example else [])
        out.append(
            {
                "Code": rule.code,
                "Severity": rule.severity,
                "SeverityForPush": rule.severity_for_push,
                "Stage": rule.stage,
                "Fields": named,
                "Checks": rule.description,
                "Source": rule.source,
                "FailingExample": example.get("fail"),
                "PassingExample": example.get("pass"),
            }
        )
    return out


def explain(code: str) -> dict[str, Any]:
    """One rule of :func:`rules` by its code (any case); UsageError naming near codes."""
    table = {r["Code"]: r for r in rules()}
    found = table.get(code.strip().upper())
    if found is None:
        import difflib

        near = difflib.get_close_matches(code.strip().upper(), table, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(near)}?" if near else ""
        raise UsageError(f"no rule {code!r}{hint} (pinpoint-preflight rules lists every code)")
    return found


def rules_text(table: list[dict[str, Any]]) -> str:
    """One line per rule: code, severity, fields, what it checks, and the source that
    justifies it (so that a grep for a code finds all of it)."""
    width = max(len(r["Code"]) for r in table)
    lines = []
    for r in table:
        fields = ", ".join(r["Fields"]) or r["Stage"]
        lines.append(
            f"{r['Code']:<{width}}  {r['Severity']:<7}  {fields}: {r['Checks']}  <{r['Source']}>"
        )
    return "\n".join(lines) + "\n"


def explain_text(rule: dict[str, Any]) -> str:
    """A rule for a person: what it checks, its severity, fields, examples and source."""
    severity = rule["Severity"] + (
        f" ({rule['SeverityForPush']} for push channels)" if rule["SeverityForPush"] else ""
    )

    def shown(value: str | None) -> str:
        return "(none given)" if value is None else json.dumps(value, ensure_ascii=False)

    lines = [
        f"{rule['Code']}: {rule['Checks']}",
        f"  severity: {severity}",
        f"  stage:    {rule['Stage']}",
    ]
    if rule["Fields"]:
        lines.append(f"  fields:   {', '.join(rule['Fields'])}")
    lines += [
        f"  fails:    {shown(rule['FailingExample'])}",
        f"  passes:   {shown(rule['PassingExample'])}",
        f"  source:   {rule['Source']}",
    ]
    return "\n".join(lines) + "\n"
