"""Run the command line in this process (validator.cli.run), with stdout and stderr captured:
the tests of output forms need no new interpreter per call."""

from __future__ import annotations

import contextlib
import io
import subprocess


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``pinpoint-preflight ARGS`` in-process; the same fields as subprocess.run gives."""
    from validator import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.run(list(args))
    return subprocess.CompletedProcess(
        ["pinpoint-preflight", *args], code, out.getvalue(), err.getvalue()
    )
