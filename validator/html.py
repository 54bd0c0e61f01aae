"""``--html PATH``: a picture of the job, as one self-contained page.

No network, no scripts: inline CSS and an inline SVG chart. The page shows the verdict and
the gate, a chart of the pieces in source order (records and failed records per piece), the
failures and warnings by code, the first failures with ``source:line``, field and the
offending value, and every file (read, skipped, and why).
"""

from __future__ import annotations

import os
from html import escape
from typing import Any

__all__ = ["render_html", "write_html"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d2430;
max-width:1100px}
h1{font-size:1.5rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:1.8rem 0 .5rem}
.verdict{display:inline-block;padding:.2rem .7rem;border-radius:4px;color:#fff;font-weight:600}
.PASSED{background:#1a7f37}.FAILED{background:#cf222e}
.muted{color:#57606a}table{border-collapse:collapse;width:100%;margin:.3rem 0}
th,td{border-bottom:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f6f8fa;padding:0 .2rem;
word-break:break-all}.counts span{margin-right:1.5rem}.legend span{margin-right:1rem}
code.k{white-space:nowrap;word-break:normal}.sw{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _chart(pieces: list[dict[str, Any]], width: int = 1000, height: int = 220) -> str:
    """Bars per piece in source order: records (grey), failed records (red) over them."""
    if not pieces:
        return '<p class="muted">No piece was read.</p>'
    top = max(p.get("Records") or 0 for p in pieces) or 1
    left, bottom, plot_h = 56, 28, height - 40
    step = (width - left - 10) / len(pieces)
    bar = max(step * 0.8, 1.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" aria-label="records and failed records per piece">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" '
        'stroke="#8c959f"/>',
        f'<text x="{left - 6}" y="{height - bottom - plot_h + 4}" text-anchor="end" '
        f'font-size="11" fill="#57606a">{top:,}</text>',
        f'<text x="{left - 6}" y="{height - bottom + 4}" text-anchor="end" font-size="11" '
        'fill="#57606a">0</text>',
    ]
    for i, p in enumerate(pieces):
        x = left + i * step + (step - bar) / 2
        records = p.get("Records") or 0
        failed = p.get("FailedRecords") or 0
        h = plot_h * records / top
        fh = plot_h * failed / top
        tip = (
            f"piece {p.get('Index')}: {_e(p.get('Source'))} lines {p.get('FirstLine')}-"
            f"{p.get('LastLine')}: {records:,} records, {failed:,} failed"
        )
        parts.append(
            f'<g><title>{tip}</title><rect x="{x:.1f}" y="{height - bottom - h:.1f}" '
            f'width="{bar:.1f}" height="{h:.1f}" fill="#afb8c1"/>'
            f'<rect x="{x:.1f}" y="{height - bottom - fh:.1f}" width="{bar:.1f}" '
            f'height="{fh:.1f}" fill="#cf222e"/></g>'
        )
    label_every = max(1, len(pieces) // 20)
    for i in range(0, len(pieces), label_every):
        x = left + i * step + step / 2
        parts.append(
            f'<text x="{x:.1f}" y="{height - 10}" text-anchor="middle" font-size="11" '
            f'fill="#57606a">{i}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _codes(title: str, counts: dict[str, int]) -> str:
    if not counts:
        return f"<h2>{title}</h2><p class='muted'>None.</p>"
    rows = "".join(
        f"<tr><td><code class='k'>{_e(code)}</code></td><td class='n'>{n:,}</td></tr>"
        for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return f"<h2>{title}</h2><table><tr><th>code</th><th>records</th></tr>{rows}</table>"


def _problems(title: str, details: list[dict[str, Any]], total: int) -> str:
    if not details:
        return f"<h2>{title}</h2><p class='muted'>None.</p>"
    rows = "".join(
        "<tr>"
        f"<td><code>{_e(p['source'])}{':' + str(p['line']) if p.get('line') else ''}</code></td>"
        f"<td>{_e(p.get('field') or '')}</td><td><code class='k'>{_e(p['code'])}</code></td>"
        f"<td><code>{_e(p.get('value') if p.get('value') is not None else '')}</code></td>"
        f"<td>{_e(p['message'])}</td></tr>"
        for p in details
    )
    shown = len({(p["source"], p.get("line")) for p in details})
    more = (
        f"<p class='muted'>The first {shown:,} of {total:,}; --failures-out writes every one.</p>"
        if total > shown
        else ""
    )
    return (
        f"<h2>{title}</h2><table><tr><th>where</th><th>field</th><th>code</th><th>value</th>"
        f"<th>what is wrong</th></tr>{rows}</table>{more}"
    )


def _files(files: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(f['Source'])}</code></td><td>{_e(f.get('Status'))}</td>"
        f"<td class='n'>{'' if f.get('Size') is None else format(f['Size'], ',')}</td>"
        f"<td class='n'>{format(f['Records'], ',') if 'Records' in f else ''}</td>"
        f"<td class='n'>{format(f['FailedRecords'], ',') if 'FailedRecords' in f else ''}</td>"
        f"<td>{_e(f.get('Reason') or '')}</td></tr>"
        for f in files
    )
    return (
        "<h2>Files</h2><table><tr><th>file</th><th>status</th><th>bytes</th><th>records</th>"
        f"<th>failed</th><th>why skipped</th></tr>{rows}</table>"
    )


def render_html(d: dict[str, Any]) -> str:
    """The page for a report dict (``Report.to_dict()`` or ``SplitResult.to_dict()``)."""
    verdict = "PASSED" if d["JobStatus"] == "COMPLETED" else "FAILED"
    gate = d.get("Gate") or {}
    source = d.get("Definition", {}).get("S3Url")
    sources = ", ".join(source) if isinstance(source, list) else str(source)
    gate_line = (
        f"<p>Gate <span class='verdict {_e(gate.get('Verdict'))}'>{_e(gate.get('Verdict'))}"
        f"</span> {_e(gate.get('Reason'))}</p>"
        if gate
        else ""
    )
    job = "".join(f"<li>{_e(line)}</li>" for line in d.get("JobFailures", []))
    body = [
        f"<h1>Preflight <span class='verdict {verdict}'>{verdict}</span></h1>",
        f"<p class='muted'>{_e(sources)} · {_e(d.get('Definition', {}).get('Format'))} · "
        f"{_e(d.get('CreationDate'))} · pinpoint-preflight {_e(d.get('ToolVersion'))}</p>",
        gate_line,
        "<p class='counts'>"
        f"<span><b>{d['TotalProcessed']:,}</b> records</span>"
        f"<span><b>{d['TotalFailures']:,}</b> failed records</span>"
        f"<span><b>{d.get('TotalWarnings', 0):,}</b> warnings</span>"
        f"<span><b>{d['TotalPieces']:,}</b> pieces ({d['FailedPieces']:,} failed)</span></p>",
        f"<h2>Job-level failures</h2><ul>{job}</ul>" if job else "",
        "<h2>Pieces</h2><p class='legend'><span><i class='sw' style='background:#afb8c1'></i>"
        "records</span><span><i class='sw' style='background:#cf222e'></i>failed records"
        "</span><span class='muted'>in source order</span></p>",
        _chart(d.get("Pieces", [])),
        _codes("Failures by code", d.get("FailuresByCode", {})),
        _codes("Warnings by code", d.get("WarningsByCode", {})),
        _problems("First failures", d.get("FailureDetails", []), d["TotalFailures"]),
        _problems("First warnings", d.get("WarningDetails", []), d.get("TotalWarnings", 0)),
        _files(d.get("Files", [])),
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>Preflight {verdict}: {_e(sources)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def write_html(d: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write the page to ``path`` whole, or not at all (a temporary file, then a rename)."""
    from validator.errors import UsageError

    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise UsageError(f"--html: no such folder {folder}")
    if os.path.isdir(target):
        raise UsageError(f"--html: {target} is a folder; give a file name")
    tmp = f"{target}.partial-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(render_html(d))
        os.replace(tmp, target)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        from validator.errors import ConfigError

        raise ConfigError(f"--html: cannot write {target}: {exc.strerror or exc}") from exc
