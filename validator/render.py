"""Printing what a command answers: a registry of renderers, one per ``--output`` name.

The CLI takes its ``--output`` choices from :data:`RENDERERS`. Each renderer turns the data
(after ``--query``) into the whole text for stdout, final newline included:

- ``json``, ``text``, ``table``: exactly as the AWS CLI prints a response (``json``: 4-space
  indent, non-ASCII kept; ``text``: tab-separated values; ``table``: the boxed table with the
  operation name as its title). ``text`` and ``table`` are ports of ``awscli/text.py`` and
  ``awscli/table.py`` (AWS CLI v1, Apache-2.0); a test compares them byte for byte with the
  AWS CLI's own renderers on the same data.
- ``yaml``, ``yaml-stream``: as the AWS CLI v2 prints them (the stream form as a list of
  one document, as v2 prints a response that is not paginated).
- ``summary``: the human summary (verdict, counts of failures and of warnings, never merged,
  where the first failures and the first warnings are).
- ``github``: GitHub Actions workflow commands (``::error file=...,line=...::``), one per
  problem in the report's details, then the summary as a notice.
- ``junit``: JUnit XML, one test case per file, one failure per failed record up to a cap.
- ``off``: nothing (the exit code says it all).
"""

from __future__ import annotations

import json
import struct
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from validator.errors import UsageError

__all__ = [
    "DEFAULT_OUTPUT",
    "QUERYABLE",
    "RENDERERS",
    "Renderer",
    "check_output",
    "render",
]

DEFAULT_OUTPUT = "json"


@dataclass(frozen=True)
class Renderer:
    name: str
    help: str
    render: Callable[[Any, str], str]  # (data after --query, title) -> text for stdout
    queryable: bool = True  # whether --query may go with it


def _json(data: Any, title: str) -> str:
    if data == {}:  # the AWS CLI prints nothing for an empty answer
        return ""
    return json.dumps(data, indent=4, ensure_ascii=False) + "\n"


def _yaml(data: Any, title: str) -> str:
    import yaml

    if data == {}:
        return ""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)


def _yaml_stream(data: Any, title: str) -> str:
    import yaml

    return yaml.safe_dump([data], sort_keys=False, allow_unicode=True, default_flow_style=False)


# --- text: a port of awscli/text.py --------------------------------------------------------------


def _text(data: Any, title: str) -> str:
    out: list[str] = []
    _format_text(data, out)
    return "".join(out)


def _format_text(
    item: Any, out: list[str], identifier: str | None = None, scalar_keys: list[str] | None = None
) -> None:
    if isinstance(item, dict):
        _format_dict(scalar_keys, item, identifier, out)
    elif isinstance(item, list):
        _format_list(item, identifier, out)
    else:
        out.append(f"{item}\n")


def _format_list(item: list[Any], identifier: str | None, out: list[str]) -> None:
    if not item:
        return
    if any(isinstance(el, dict) for el in item):
        keys = sorted({k for el in item for k, v in el.items() if not isinstance(v, dict | list)})
        for element in item:
            _format_text(element, out, identifier, keys)
    elif any(isinstance(el, list) for el in item):
        scalars = [el for el in item if not isinstance(el, list | dict)]
        others = [el for el in item if isinstance(el, list | dict)]
        if scalars:
            _format_scalar_list(scalars, identifier, out)
        for other in others:
            _format_text(other, out, identifier)
    else:
        _format_scalar_list(item, identifier, out)


def _format_scalar_list(elements: list[Any], identifier: str | None, out: list[str]) -> None:
    if identifier is not None:
        out.extend(f"{identifier.upper()}\t{el}\n" for el in elements)
    else:
        out.append("\t".join(str(el) for el in elements) + "\n")


def _format_dict(
    scalar_keys: list[str] | None, item: Any, identifier: str | None, out: list[str]
) -> None:
    scalars: list[str] = []
    others: list[tuple[str, Any]] = []
    if not isinstance(item, dict):
        return
    if scalar_keys is None:
        for key, value in sorted(item.items()):
            if isinstance(value, dict | list):
                others.append((key, value))
            else:
                scalars.append(str(value))
    else:
        scalars = [str(item.get(key, "")) for key in scalar_keys]
        others = [(k, item[k]) for k in sorted(set(item) - set(scalar_keys))]
    if scalars:
        if identifier is not None:
            scalars.insert(0, identifier.upper())
        out.append("\t".join(scalars) + "\n")
    for name, value in others:
        _format_text(value, out, name)


# --- table: a port of awscli/table.py and awscli/formatter.py's TableFormatter -----------------


def _width(text: Any) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WFA" else 1 for c in str(text))


def terminal_width(stream: IO[str] | None = None, default: int = 80) -> int:
    """The width of the terminal ``stream`` (stdout) writes to, as the AWS CLI finds it."""
    try:
        from fcntl import ioctl
        from termios import TIOCGWINSZ

        packed = ioctl(stream or sys.stdout, TIOCGWINSZ, b"\000" * 8)
        return int(struct.unpack("hhhh", packed)[1])
    except Exception:
        return default


def _center(text: str, length: int, left: str = "|", right: str = "|") -> str:
    size = _width(text)
    start = (length // 2) - (size // 2) - 1
    so_far = _width(left) + start + size
    return left + " " * start + text + " " * (length - _width(right) - so_far) + right


def _align_left(text: str, length: int, left: str = "|", right: str = "|") -> str:
    size = _width(text)
    padding = 2 if length - (size + 2 + _width(left) + _width(right)) >= 0 else 0
    so_far = len(left) + padding + size
    return left + " " * padding + text + " " * (length - so_far - len(right)) + right


class _Section:
    def __init__(self) -> None:
        self.title = ""
        self.headers: list[str] = []
        self.rows: list[list[str]] = []
        self.indent_level = 0
        self._cols: int | None = None
        self._widths: list[int] = []

    def widths(self, padding: int = 0, max_width: int | None = None) -> list[int]:
        unscaled = [w + padding for w in self._widths]
        if max_width is None or not unscaled:
            return unscaled
        scale = max_width / float(sum(unscaled))
        scaled = [round(scale * w) for w in unscaled]
        off_by = sum(scaled) - max_width
        while off_by != 0:
            order: Any = range(len(scaled))
            if off_by < 0:
                order = reversed(order)
            for i in order:
                if off_by > 0:
                    scaled[i] -= 1
                    off_by -= 1
                else:
                    scaled[i] += 1
                    off_by += 1
                if off_by == 0:
                    break
        return scaled

    def total_width(self, padding: int = 0, border: bool = False, outer: int = 0) -> int:
        total = sum(w + padding for w in self.widths())
        if border:
            total += 2
        total += 2 * outer
        return max(_width(self.title) + 2 + 2 * outer, total)

    def add_header(self, headers: list[str]) -> None:
        self._update(headers)
        if self._cols is None:
            self._cols = len(headers)
        self.headers = headers

    def add_row(self, row: list[Any]) -> None:
        if self._cols is None:
            self._cols = len(row)
        if len(row) != self._cols:
            raise ValueError(f"Row should have {self._cols} elements, instead it has {len(row)}")
        cells = [str(r) for r in row]
        self.rows.append(cells)
        self._update(cells)

    def _update(self, row: list[str]) -> None:
        if not self._widths:
            self._widths = [_width(el) for el in row]
        else:
            for i, el in enumerate(row):
                self._widths[i] = max(_width(el), self._widths[i])


class _Table:
    def __init__(self, width: int) -> None:
        self.sections: list[_Section] = []
        self.current: _Section | None = None
        self.terminal = width

    def new_section(self, title: str, indent_level: int = 0) -> None:
        self.current = _Section()
        self.sections.append(self.current)
        self.current.title = title
        self.current.indent_level = indent_level

    def add_row_header(self, headers: list[str]) -> None:
        assert self.current is not None
        self.current.add_header(headers)

    def add_row(self, row: list[Any]) -> None:
        assert self.current is not None
        self.current.add_row(row)

    def _max_width(self) -> int:
        return max(s.total_width(4, True, s.indent_level) for s in self.sections)

    def render(self) -> str:
        max_width = self._max_width()
        if max_width > self.terminal:
            for i, section in enumerate(self.sections):
                if len(section.rows) == 1 and section.headers:
                    vertical = _Section()
                    vertical.title = section.title
                    vertical.indent_level = section.indent_level
                    for header, element in zip(section.headers, section.rows[0], strict=False):
                        vertical.add_row([header, element])
                    self.sections[i] = vertical
            max_width = self._max_width()
        out = ["-" * max_width + "\n"]
        for section in self.sections:
            self._section(section, max_width, out)
        return "".join(out)

    def _section(self, section: _Section, max_width: int, out: list[str]) -> None:
        indent = "|" * section.indent_level
        lines: list[str] = []
        width = max_width - section.indent_level * 2
        if section.title:
            lines.append(_center(section.title, width))
            if not section.headers and not section.rows:
                lines.append("+%s+" % ("-" * (width - 2)))
        if section.headers:
            widths = section.widths(4, width)
            lines.append(_line_break(widths))
            lines.append(
                "".join(
                    _center(h, w, "|" if i == 0 else "")
                    for i, (w, h) in enumerate(zip(widths, section.headers, strict=False))
                )
            )
        if section.rows:
            widths = section.widths(4, width)
            if widths:
                lines.append(_line_break(widths))
                for row in section.rows:
                    lines.append(
                        "".join(
                            _align_left(el, w, "|" if i == 0 else "")
                            for i, (w, el) in enumerate(zip(widths, row, strict=False))
                        )
                    )
                lines.append(_line_break(widths))
        out.extend(f"{indent}{line}{indent}\n" for line in lines)


def _line_break(widths: list[int]) -> str:
    parts = [
        ("+%s+" % ("-" * (w - 2))) if i == 0 else ("%s+" % ("-" * (w - 1)))
        for i, w in enumerate(widths)
    ]
    return "".join(parts)


def _scalar(value: Any) -> bool:
    return not isinstance(value, list | dict)


def _scalar_keys(current: dict[str, Any]) -> tuple[list[str], list[str]]:
    headers = sorted(k for k in current if _scalar(current[k]))
    more = sorted(k for k in current if not _scalar(current[k]))
    return headers, more


def _build(table: _Table, title: str | None, current: Any, indent: int = 0) -> bool:
    if not current:
        return False
    if title is not None:
        table.new_section(title, indent)
    if isinstance(current, list):
        if isinstance(current[0], dict):
            _from_list(table, current, indent, title)
        else:
            for item in current:
                if _scalar(item):
                    table.add_row([item])
                elif all(_scalar(el) for el in item):
                    table.add_row(list(item))
                else:
                    _build(table, None, item)
    if isinstance(current, dict):
        headers, more = _scalar_keys(current)
        if len(headers) == 1:
            table.add_row([headers[0], current[headers[0]]])
        elif headers:
            table.add_row_header(headers)
            table.add_row([current[k] for k in headers])
        for name in more:
            _build(table, name, current[name], indent + 1)
    return True


def _from_list(table: _Table, current: list[Any], indent: int, title: str | None) -> None:
    headers_set: set[str] = set()
    more_set: set[str] = set()
    for item in current:
        h, m = _scalar_keys(item)
        headers_set.update(h)
        more_set.update(m)
    headers, more = sorted(headers_set), sorted(more_set)
    table.add_row_header(headers)
    first = True
    for element in current:
        if not first and more:
            table.new_section(title or "", indent)
            table.add_row_header(headers)
        first = False
        table.add_row([element.get(h, "") for h in headers])
        for name in more:
            if name in element:
                _build(table, name, element[name], indent + 1)


def table(data: Any, title: str, width: int | None = None) -> str:
    """The AWS CLI's table of ``data`` under ``title`` (``width``: the terminal's)."""
    t = _Table(terminal_width() if width is None else width)
    return t.render() if _build(t, title, data) else ""


def _table(data: Any, title: str) -> str:
    return table(data, title)


# --- the human summary and the CI forms ----------------------------------------------------------


def _summary(data: Any, title: str) -> str:
    from validator.summary import summary

    return summary(data) if _is_report(data) else _text(data, title)


def _github(data: Any, title: str) -> str:
    from validator.ci import github_annotations

    return github_annotations(data)


def _junit(data: Any, title: str) -> str:
    from validator.ci import junit_xml

    return junit_xml(data)


def _is_report(data: Any) -> bool:
    return isinstance(data, dict) and "JobStatus" in data and "TotalProcessed" in data


RENDERERS: dict[str, Renderer] = {
    r.name: r
    for r in (
        Renderer("json", "the report as JSON, as the AWS CLI prints it", _json),
        Renderer("yaml", "the report as YAML", _yaml),
        Renderer(
            "yaml-stream", "the report as a YAML stream (a list of one document)", _yaml_stream
        ),
        Renderer("text", "tab-separated values, as the AWS CLI's text output", _text),
        Renderer("table", "boxed tables with titles, as the AWS CLI's table output", _table),
        Renderer(
            "summary",
            "a human summary: verdict, counts, first failures and warnings",
            _summary,
            False,
        ),
        Renderer(
            "github", "GitHub Actions annotations (::error file=...,line=...::)", _github, False
        ),
        Renderer(
            "junit", "JUnit XML: a test case per file, a failure per failed record", _junit, False
        ),
        Renderer("off", "nothing on stdout: the exit code says it", lambda data, title: ""),
    )
}
QUERYABLE = tuple(name for name, r in RENDERERS.items() if r.queryable)


def check_output(output: str, query: str | None = None, *, option: str = "--output") -> str:
    """The renderer's name for ``output`` (any case), checked with ``query`` before work."""
    from validator.report import compile_query

    name = output.strip().lower()
    if name not in RENDERERS:
        raise UsageError(f"{option} must be one of {', '.join(RENDERERS)}, not {output!r}")
    if query and not RENDERERS[name].queryable:
        raise UsageError(
            f"{option} {name} shows the whole report; --query goes with {', '.join(QUERYABLE)}"
        )
    compile_query(query)
    return name


def render(
    data: Any, output: str = DEFAULT_OUTPUT, query: str | None = None, title: str = ""
) -> str:
    """The text for stdout: ``data`` after the JMESPath ``query``, as ``output`` renders it."""
    from validator.report import apply_query

    name = check_output(output, query)
    return RENDERERS[name].render(apply_query(data, query), title)
