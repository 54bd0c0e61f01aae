"""Repair: fix what has exactly one right answer, log every change, check the record again.

A stage between check and fold, on the rare rows only. The repairs are data
(``schemas/repairs.json``: a stable repair code, the rule code it fixes, the field, the
transformation, a cited reason), compiled here as ``schema.py`` compiles the rules.

- ``repair_batch`` (in the worker, after ``check.check_batch``): the rows that broke a
  repairable code come from the check's findings (column-wide); only those rows are repaired,
  in Python, and checked again as a small table. A record whose repaired form passes is
  repaired; any other keeps its original findings and its bytes. A repair can make another
  rule apply (``sms`` -> ``SMS`` makes the address an SMS address), so a few rounds run.
- ``finish_piece`` (in the worker, when the run writes pieces): the bytes of each repaired
  record, its unrepaired cells byte for byte (CSV: a repaired value is quoted only where it
  needs it; JSON: the line re-encoded with its key order kept).
- ``RepairLog`` (in the fold, in source order): drops the repairs of records that fail after
  all (a cross-record rule), counts repaired records by repair code, keeps the first 100
  changes for the report and writes every change to ``--repairs-out``.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import IO, Any

import numpy as np
import orjson
import pyarrow as pa

from validator import check
from validator.check import Finding
from validator.errors import UsageError
from validator.model import Problem
from validator.schema import Schema, SchemaFileError, ValueRule, _read_json, load_schema, schema_dir

__all__ = [
    "Change",
    "PieceRepairs",
    "Repair",
    "RepairLog",
    "RepairOptions",
    "Repairs",
    "finish_piece",
    "load_repairs",
    "repair_batch",
    "repair_value",
    "undo_failed",
]

FIRST = 100  # changes listed in the report
ROUNDS = 3  # repair, check again, repair what the repair revealed...

Transform = Callable[["str", "RepairOptions"], "str | None"]


# -- options --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepairOptions:
    """What a run's repairs may assume: the region of national phone numbers, and --strict
    (a repaired record must then pass without warnings too)."""

    default_country: str | None = None
    strict: bool = False

    @classmethod
    def build(cls, default_country: str | None, *, strict: bool = False) -> RepairOptions:
        """Checked options: ``default_country`` must be a region libphonenumber knows."""
        if default_country is None:
            return cls(None, strict)
        import phonenumbers

        code = default_country.strip().upper()
        if code not in phonenumbers.SUPPORTED_REGIONS:
            raise UsageError(
                f"--default-country {default_country!r} is not an ISO 3166-1 alpha-2 region "
                "with phone numbers (e.g. US, GB, DE)"
            )
        return cls(code, strict)


# -- the table ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Repair:
    """One row of repairs.json, its transformation compiled."""

    code: str
    fixes: str
    field: str | None  # a dotted field, or a map pattern (``Metrics.*``); None: the file
    transform: str
    reason: str
    source: str
    apply: Transform = dc_field(compare=False, repr=False)

    def covers(self, name: str) -> bool:
        if self.field is None:
            return False
        if self.field.endswith(".*"):
            return name.startswith(self.field[:-1]) and len(name) > len(self.field) - 1
        return name == self.field


class Repairs:
    """The compiled repair table: which repairs run, in order, for a rule code on a field."""

    def __init__(self, rows: list[Repair]) -> None:
        self.rows = tuple(rows)
        self.codes = frozenset(r.fixes for r in rows if r.field is not None)
        self._for: dict[tuple[str, str], tuple[Repair, ...]] = {}

    def for_finding(self, code: str, name: str) -> tuple[Repair, ...]:
        key = (code, name)
        if key not in self._for:
            self._for[key] = tuple(r for r in self.rows if r.fixes == code and r.covers(name))
        return self._for[key]

    def by_code(self, code: str) -> Repair:
        return next(r for r in self.rows if r.code == code)


@cache
def load_repairs() -> Repairs:
    """repairs.json, compiled (once per process)."""
    schema = load_schema()
    data = _read_json(schema_dir(), "repairs.json")
    rows = []
    for row in data.get("repairs", []):
        try:
            code, fixes, name = row["repair"], row["fixes"], row["field"]
            transform = row["transform"]
            reason, source = row["reason"], row["source"]
        except (KeyError, TypeError) as exc:
            raise SchemaFileError(f"repairs.json: a row without {exc}: {row!r}") from exc
        try:
            schema.rule(fixes)
        except KeyError as exc:
            raise SchemaFileError(f"repairs.json: {code} fixes an unknown rule {fixes}") from exc
        apply = _compile(schema, fixes, name, transform)
        label = transform if isinstance(transform, str) else "map " + transform["map"]
        rows.append(Repair(code, fixes, name, label, reason, source, apply))
    return Repairs(rows)


def _compile(schema: Schema, fixes: str, name: str | None, transform: Any) -> Transform:
    if isinstance(transform, dict) and "map" in transform:
        file_name, _, pointer = str(transform["map"]).partition("#/")
        target: Any = _read_json(schema_dir(), file_name)
        for part in pointer.split("/"):
            target = target[part]
        table = {str(k).upper(): str(v) for k, v in target.items()}
        return lambda value, _: table.get(value.upper())
    simple: dict[str, Transform] = {
        "trim": _trim,
        "e164": _e164,
        "locale": _locale,
        "iso8601_utc": _iso8601_utc,
        "strip_bom": lambda value, _: value.removeprefix("\ufeff") or None,
    }
    if transform in simple:
        return simple[transform]
    if transform in ("enum_case", "value_case"):
        rule = _value_rule(schema, fixes, name)
        pool = rule.enum if transform == "enum_case" else rule.values
        if pool is None:
            raise SchemaFileError(f"repairs.json: {fixes} on {name} has no value list")
        folded: dict[str, str | None] = {}
        for v in pool:
            if v is not None:
                folded[v.lower()] = None if v.lower() in folded else v  # ambiguous: None
        return lambda value, _: folded.get(value.lower())
    raise SchemaFileError(f"repairs.json: unknown transform {transform!r}")


def _value_rule(schema: Schema, code: str, name: str | None) -> ValueRule:
    for rule in schema.value_rules:
        if rule.code == code and rule.field == name:
            return rule
    raise SchemaFileError(f"repairs.json: no value rule {code} on {name}")


# -- transformations ------------------------------------------------------------------------------


def _trim(value: str, _: RepairOptions) -> str | None:
    return value.strip() or None


def _e164(value: str, options: RepairOptions) -> str | None:
    from validator.phone import to_e164

    return to_e164(value, options.default_country)


_LOCALE = re.compile(r"([A-Za-z]{2})[-_]([A-Za-z]{2})")


def _locale(value: str, _: RepairOptions) -> str | None:
    m = _LOCALE.fullmatch(value)
    return f"{m[1].lower()}_{m[2].upper()}" if m else None


_ISO_LIKE = re.compile(
    r"(\d{4})-?(\d{2})-?(\d{2})[Tt ](\d{2}):?(\d{2})(?::?(\d{2})(?:[.,](\d{1,9}))?)?"
    r" ?([Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)"
)


def _iso8601_utc(value: str, _: RepairOptions) -> str | None:
    """A date-time that states its zone, as ``YYYY-MM-DDThh:mm:ss[.f]Z``; None without one."""
    m = _ISO_LIKE.fullmatch(value)
    fraction = ""
    try:
        if m:
            year, month, day, hour, minute = (int(m[i]) for i in range(1, 6))
            second = int(m[6] or 0)
            fraction = "." + m[7] if m[7] else ""
            zone = m[8].upper()
            offset = timedelta(0)
            if zone[0] in "+-":
                digits = zone[1:].replace(":", "")
                hours, minutes = int(digits[:2]), int(digits[2:] or 0)
                if hours > 23 or minutes > 59:
                    return None
                offset = timedelta(hours=hours, minutes=minutes) * (1 if zone[0] == "+" else -1)
            when = datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
        else:
            if not re.search(r"[+-]\d{4}|GMT|UTC|UT\b", value):
                return None  # RFC 2822 without a zone (or not one at all)
            when = email.utils.parsedate_to_datetime(value)
            if when.tzinfo is None:
                return None
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    utc = when.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def repair_value(
    code: str, name: str, value: str, options: RepairOptions
) -> list[tuple[str, str, str]]:
    """The changes the table makes to one value that broke ``code`` on field ``name``:
    (repair code, before, after), in order; empty when none applies."""
    out = []
    for repair in load_repairs().for_finding(code, name):
        after = repair.apply(value, options)
        if after is not None and after != value:
            out.append((repair.code, value, after))
            value = after
    return out


# -- one batch ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Change:
    """One value changed in one record (``line`` relative to the piece until the fold)."""

    record: int
    line: int
    field: str | None
    repair: str
    before: str
    after: str


@dataclass
class PieceRepairs:
    """A piece's repaired records: their changes, byte ranges and (when writing) new bytes."""

    changes: dict[int, list[Change]] = dc_field(default_factory=dict)
    spans: dict[int, tuple[int, int]] = dc_field(default_factory=dict)
    subst: dict[int, bytes] = dc_field(default_factory=dict)
    # the findings each repaired record had before repair: (line, field, code, message)
    original: dict[int, list[tuple[int, str, str, str]]] = dc_field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def forget(self, record: int) -> list[Problem]:
        """Undo a record's repair: it goes out as it came in, with the problems it had."""
        self.changes.pop(record, None)
        self.spans.pop(record, None)
        self.subst.pop(record, None)
        schema = load_schema()
        return [
            Problem(record, line, name, code, message, schema.severity(code))
            for line, name, code, message in self.original.pop(record, [])
        ]


def undo_failed(
    problems: list[Problem],
    cross: list[Problem],
    repairs: PieceRepairs | None,
    fails: Callable[[Problem], bool],
) -> list[Problem]:
    """A piece's problems for the fold, after its cross-record ones (``cross``): a repaired
    record that fails after all is not repaired; it keeps its original problems (and the
    cross-record ones), as its bytes stay the original ones."""
    if not repairs:
        return problems + cross
    failed = set(repairs.changes) & {
        p.record for p in [*problems, *cross] if p.record is not None and fails(p)
    }
    if not failed:
        return problems + cross
    kept = [p for p in problems if p.record not in failed]
    for record in sorted(failed):
        kept += repairs.forget(record)
    return kept + cross


def _flat(table: pa.Table, schema: Schema) -> dict[str, pa.ChunkedArray]:
    """A table's columns by dotted name, the schema's objects and maps flattened."""
    nested = set(schema.containers) | set(schema.maps)
    out: dict[str, pa.ChunkedArray] = {}
    # A stack, not a recursive closure (a reference cycle that would keep the columns alive).
    todo = list(zip(table.column_names, table.columns, strict=True))[::-1]
    while todo:
        name, col = todo.pop()
        if name in nested and pa.types.is_struct(col.type):
            children = zip(col.type, col.flatten(), strict=True)
            todo.extend((f"{name}.{f.name}", child) for f, child in list(children)[::-1])
        else:
            out[name] = col
    return out


def _fails(schema: Schema, code: str, strict: bool) -> bool:
    severity = schema.severity(code)
    return severity == "error" or (strict and severity == "warning")


def repair_batch(
    table: pa.Table,
    findings: list[Finding],
    fmt: str,
    options: RepairOptions,
    records: np.ndarray,
    lines: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    into: PieceRepairs,
) -> list[Finding]:
    """Repair the rows of ``table`` that broke a repairable code; return the findings as they
    stand after repair (a repaired record's are those of its repaired form), and add the
    repaired records to ``into``. Rows that break no repairable code are not looked at."""
    repairs = load_repairs()
    schema = load_schema()
    targets = [
        f for f in findings if f.code in repairs.codes and repairs.for_finding(f.code, f.field)
    ]
    if not targets:
        return findings
    rows = np.unique(np.concatenate([f.rows for f in targets]))
    flat = _flat(table.take(pa.array(rows)), schema)
    index = {int(r): i for i, r in enumerate(rows.tolist())}
    values: dict[str, list[Any]] = {}
    changes: dict[int, list[Change]] = {}
    memo: dict[tuple[str, str, str], list[tuple[str, str, str]]] = {}  # a file repeats itself
    pending = [(f.code, f.field, [index[int(r)] for r in f.rows.tolist()]) for f in targets]
    current: list[Finding] = []
    for _ in range(ROUNDS):
        changed = False
        for code, name, positions in pending:
            col = flat.get(name)
            if col is None:
                continue
            if name not in values:
                values[name] = col.to_pylist()
            column = values[name]
            for i in positions:
                value = column[i]
                if not isinstance(value, str):
                    continue
                key = (code, name, value)
                steps = memo.get(key)
                if steps is None:
                    steps = memo[key] = repair_value(code, name, value, options)
                if not steps:
                    continue
                column[i] = steps[-1][2]
                changed = True
                changes.setdefault(i, []).extend(
                    Change(0, 0, name, c, before, after) for c, before, after in steps
                )
        if not changed:
            break
        candidates = np.array(sorted(changes), np.int64)
        sub = {
            name: pa.chunked_array([pa.array([values[name][i] for i in candidates], col.type)])
            if name in values
            else col.take(pa.array(candidates))
            for name, col in flat.items()
        }
        current = check.check_batch(pa.table(sub), fmt)
        current = [
            Finding(f.code, f.field, candidates[f.rows], f.messages) for f in current
        ]  # rows: positions among ``rows``
        pending = [
            (f.code, f.field, f.rows.tolist())
            for f in current
            if f.code in repairs.codes and repairs.for_finding(f.code, f.field)
        ]
        if not pending:
            break
    if not changes:
        return findings
    failing: set[int] = set()
    for f in current:
        if _fails(schema, f.code, options.strict):
            failing.update(f.rows.tolist())
    repaired = np.array([i for i in sorted(changes) if i not in failing], np.int64)
    if repaired.size == 0:
        return findings
    repaired_rows = rows[repaired]
    where = {int(r): int(records[r]) for r in repaired_rows.tolist()}
    for f in findings:
        for r, message in zip(f.rows.tolist(), f.messages, strict=True):
            if r in where:
                into.original.setdefault(where[r], []).append(
                    (int(lines[r]), f.field, f.code, message)
                )
    for i, r in zip(repaired.tolist(), repaired_rows.tolist(), strict=True):
        record = int(records[r])
        into.changes[record] = [
            Change(record, int(lines[r]), c.field, c.repair, c.before, c.after) for c in changes[i]
        ]
        into.spans[record] = (int(starts[r]), int(ends[r]))
    out = [_without(f, repaired_rows) for f in findings]
    keep = set(repaired.tolist())
    for f in current:
        pick = np.array([j for j, i in enumerate(f.rows.tolist()) if i in keep], np.int64)
        if pick.size:
            out.append(Finding(f.code, f.field, rows[f.rows[pick]], [f.messages[j] for j in pick]))
    return [f for f in out if f.rows.size]


def _without(f: Finding, rows: np.ndarray) -> Finding:
    keep = ~np.isin(f.rows, rows)
    if keep.all():
        return f
    return Finding(
        f.code, f.field, f.rows[keep], [m for m, k in zip(f.messages, keep, strict=True) if k]
    )


# -- the repaired bytes ---------------------------------------------------------------------------


def _csv_cells(line: bytes) -> list[bytes]:
    """A CSV record's cells as written (quotes kept), without its line terminator."""
    if b'"' not in line:
        return line.split(b",")
    cells, start, quoted = [], 0, False
    for i, byte in enumerate(line):
        if byte == 0x22:
            quoted = not quoted
        elif byte == 0x2C and not quoted:
            cells.append(line[start:i])
            start = i + 1
    cells.append(line[start:])
    return cells


def _csv_cell(value: str) -> bytes:
    data = value.encode("utf-8")
    if any(c in value for c in ',"\r\n'):
        return b'"' + data.replace(b'"', b'""') + b'"'
    return data


def _terminator(raw: bytes) -> tuple[bytes, bytes]:
    for end in (b"\r\n", b"\n"):
        if raw.endswith(end):
            return raw[: -len(end)], end
    return raw, b""


def rewrite(raw: bytes, fmt: str, changes: list[Change], positions: dict[str, int]) -> bytes:
    """A record's bytes with its changes made; ``positions``: CSV header name -> column."""
    body, end = _terminator(raw)
    final = {}
    for c in changes:
        if c.field is not None:
            final[c.field] = c.after
    if fmt == "CSV":
        cells = _csv_cells(body)
        for name, value in final.items():
            cells[positions[name]] = _csv_cell(value)
        return b",".join(cells) + end
    # the standard library's json: it keeps any integer, and dict order is key order
    obj = json.loads(body.removeprefix(b"\xef\xbb\xbf").decode("utf-8"))
    for name, value in final.items():
        node = obj
        parts = name.split(".")
        # a map member's name may hold dots: walk the fixed path, the rest is the key
        found = load_schema().map_for(name)
        if found is not None:
            parts = [*found[0].prefix.split("."), found[1]]
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + end


def finish_piece(
    result: Any,
    repairs: PieceRepairs,
    fmt: str,
    positions: dict[str, int] | None,
    open_at: Callable[[int], Any] | None,
) -> None:
    """Attach a piece's repairs to its ``result``. When the run writes (``open_at`` given),
    read each repaired record's bytes (one forward pass from the first) and put its repaired
    bytes in ``repairs.subst``; a record that cannot be rewritten is not repaired after all.
    ``positions``: a CSV field's column in the header; ``open_at(offset)`` opens the source."""
    if not repairs.changes:
        return
    result.repairs = repairs
    if open_at is None:
        return
    undone = []
    order = sorted(repairs.spans.items(), key=lambda kv: kv[1][0])
    first = order[0][1][0]
    with open_at(first) as stream:
        pos = first
        for record, (start, end) in order:
            while pos < start:
                got = stream.read(min(start - pos, 1 << 20))
                if not got:
                    raise UsageError("the source changed while it was being repaired")
                pos += len(got)
            raw = b""
            while len(raw) < end - start:
                got = stream.read(end - start - len(raw))
                if not got:
                    raise UsageError("the source changed while it was being repaired")
                raw += got
            pos = end
            try:
                data = rewrite(raw, fmt, repairs.changes[record], positions or {})
            except (ValueError, KeyError, IndexError, TypeError, UnicodeError):
                undone.append(record)
                continue
            repairs.subst[record] = data
    for record in undone:
        result.problems = [p for p in result.problems if p.record != record]
        result.problems += repairs.forget(record)


# -- the fold -------------------------------------------------------------------------------------


class RepairLog:
    """Repairs in source order: counts by repair code, the first changes, ``--repairs-out``."""

    def __init__(self, options: RepairOptions, out: IO[bytes] | None = None) -> None:
        self.options = options
        self.out = out
        self.records = 0
        self.changes = 0
        self.by_repair: Counter[str] = Counter()
        self.first: list[dict[str, Any]] = []

    def _log(self, entry: dict[str, Any]) -> None:
        self.changes += 1
        if len(self.first) < FIRST:
            self.first.append(entry)
        if self.out is not None:
            self.out.write(orjson.dumps(entry) + b"\n")

    def bom(self, source: str) -> None:
        """A file's byte order mark, removed (pieces never carry it)."""
        self.by_repair["BOM_REMOVED"] += 1
        self._log(
            {
                "source": source,
                "line": 1,
                "field": None,
                "repair": "BOM_REMOVED",
                "before": "\ufeff",
                "after": "",
            }
        )

    def piece(
        self,
        source: str,
        repairs: PieceRepairs | None,
        failed: np.ndarray,
        line_base: int,
        file_failed: bool,
    ) -> None:
        """Log a folded piece's repairs; those of records that failed after all (a
        cross-record rule, a file that fails whole) are dropped, so nothing writes them."""
        if not repairs:
            return
        assert repairs is not None
        drop = set(failed.tolist()) if not file_failed else set(repairs.changes)
        for record in drop & set(repairs.changes):
            del repairs.changes[record]
            repairs.spans.pop(record, None)
            repairs.subst.pop(record, None)
        for record in sorted(repairs.changes):
            group = repairs.changes[record]
            self.records += 1
            self.by_repair.update({c.repair for c in group})
            for c in group:
                self._log(
                    {
                        "source": source,
                        "line": c.line + line_base,
                        "field": c.field,
                        "repair": c.repair,
                        "before": c.before,
                        "after": c.after,
                    }
                )

    def summary(self) -> dict[str, Any]:
        return {
            "DefaultCountry": self.options.default_country,
            "RepairedRecords": self.records,
            "Changes": self.changes,
            "RecordsByRepair": dict(sorted(self.by_repair.items())),
            "FirstChanges": self.first,
        }
