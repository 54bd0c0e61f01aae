"""Problems as objects, for the report's ``FailureDetails`` and ``WarningDetails``.

The report's ``Failures`` are the contract's strings; a pipeline that wants the parts reads
these instead: ``source``, ``line``, ``piece``, ``field``, ``code``, ``severity``,
``message``, ``value`` (the offending value as written, cut to ``VALUE_LIMIT`` characters)
and ``suggestion`` (what the rule's "did you mean" proposes, when it proposes something).

Only the first records with problems of each piece carry their value: a worker takes from its
table the values of at most ``FIRST`` records with an error and ``FIRST`` with a warning, so a
file full of failures costs no more than one with a hundred. Folding in source order keeps the
first hundred of the job, and those are always among the pieces' first hundred.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

__all__ = ["VALUE_LIMIT", "ProblemDetail", "ValueBudget", "detail", "suggestion_in"]

VALUE_LIMIT = 200  # characters of an offending value kept in the report
_SUGGESTION = re.compile(r"did you mean '((?:[^'\\]|\\.)*)'\?")


@dataclass(frozen=True, slots=True)
class ProblemDetail:
    """One problem of one record (or file, when ``line`` is None) as the report shows it."""

    source: str
    line: int | None
    piece: int | None
    field: str | None
    code: str
    severity: str
    message: str
    value: str | None = None
    suggestion: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "line": self.line,
            "piece": self.piece,
            "field": self.field,
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "value": self.value,
            "suggestion": self.suggestion,
        }


def suggestion_in(message: str) -> str | None:
    """The value a message's ``did you mean '...'?`` proposes, or None."""
    found = _SUGGESTION.search(message)
    if found is None:
        return None
    return found.group(1).replace("\\'", "'")


def cut(value: Any) -> str | None:
    """A value as the report shows it: text as written, anything else as JSON; at most
    ``VALUE_LIMIT`` characters (the last one an ellipsis when cut)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"


def detail(source: str, line: int | None, piece: int | None, problem: Any) -> dict[str, Any]:
    """The report's object for one :class:`validator.model.Problem`."""
    return ProblemDetail(
        source,
        line,
        piece,
        problem.field,
        problem.code,
        problem.severity,
        problem.message,
        getattr(problem, "value", None),
        suggestion_in(problem.message),
    ).to_dict()


class ValueBudget:
    """Which rows of a piece's batches get their offending values read (see the module)."""

    def __init__(self, first: int) -> None:
        self.first = first
        self.errors = 0
        self.warnings = 0

    @property
    def spent(self) -> bool:
        return self.errors >= self.first and self.warnings >= self.first

    def _take(self, rows: list[np.ndarray], used: int) -> tuple[np.ndarray, int]:
        if used >= self.first or not rows:
            return np.empty(0, np.int64), used
        distinct = np.unique(np.concatenate(rows))[: self.first - used]
        return distinct, used + len(distinct)

    def rows(self, findings: list[Any], severity: Any) -> np.ndarray:
        """The table rows, ascending, whose values the next problems should carry: the first
        rows with an error and the first with a warning that the budget still allows."""
        if self.spent or not findings:
            return np.empty(0, np.int64)
        errors = [f.rows for f in findings if severity(f.code) == "error"]
        others = [f.rows for f in findings if severity(f.code) != "error"]
        take_e, self.errors = self._take(errors, self.errors)
        take_w, self.warnings = self._take(others, self.warnings)
        return np.union1d(take_e, take_w)

    @staticmethod
    def values(table: pa.Table, finding: Any, keep: np.ndarray) -> list[str | None]:
        """One entry per row of ``finding``: its cut value when the row is in ``keep``."""
        out: list[str | None] = [None] * len(finding.rows)
        if not len(keep) or finding.field not in table.column_names:
            return out
        where = np.flatnonzero(np.isin(finding.rows, keep))
        if not len(where):
            return out
        taken = table.column(finding.field).take(pa.array(finding.rows[where])).to_pylist()
        for i, v in zip(where.tolist(), taken, strict=True):
            out[i] = cut(v)
        return out
