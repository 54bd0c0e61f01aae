"""The README's rules table lists every rule in schemas/rules.json, with its severity."""

from __future__ import annotations

import doctest
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import validator

ROOT = Path(__file__).parent.parent


def test_every_rule_has_a_row_with_its_severity():
    rules = json.loads((ROOT / "schemas" / "rules.json").read_text())["rules"]
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- rules-table")[1].split("<!-- /rules-table -->")[0]
    rows = dict(re.findall(r"^\| `([A-Z0-9_]+)` \| ([a-z]+)", table, re.MULTILINE))
    assert rows == {r["code"]: r["severity"] for r in rules}


def test_the_readme_starts_with_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.DOTALL)
    assert (
        blocks[0]
        == "pip install . && pinpoint-preflight validate examples/ --format CSV --output summary"
    )
    assert blocks[1] == "pip install -e '.[test]' && pytest"


# --- the README's examples are real output -----------------------------------------------------


def shell_sessions() -> list[tuple[str, list[tuple[str, str]]]]:
    """Each ```text block of the README that shows a shell session: its (command, output) pairs
    in order (a command's continuation lines joined)."""
    readme = (ROOT / "README.md").read_text()
    sessions = []
    for block in re.findall(r"```text\n(.*?)```", readme, re.DOTALL):
        if not block.startswith("$ "):
            continue
        pairs: list[tuple[str, str]] = []
        lines = block.splitlines(keepends=True)
        i = 0
        while i < len(lines):
            command = lines[i][2:].rstrip("\n")
            while command.endswith("\\"):
                i += 1
                command = command[:-1] + lines[i].strip()
            i += 1
            out = []
            while i < len(lines) and not lines[i].startswith("$ "):
                out.append(lines[i])
                i += 1
            pairs.append((command, "".join(out)))
        sessions.append((block.splitlines()[0], pairs))
    return sessions


SESSIONS = shell_sessions()


@pytest.mark.parametrize("session", SESSIONS, ids=[first for first, _ in SESSIONS])
def test_every_shell_session_in_the_readme_prints_what_it_shows(session, tmp_path):
    """Each command of the README's terminal sessions, run in a copy of the repository's
    examples (cd included), prints exactly what the README shows (a pipe: no progress)."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PINPOINT_"))}
    env["AWS_CONFIG_FILE"] = str(tmp_path / "no-aws-config")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cwd = tmp_path
    for command, shown in session[1]:
        if command.startswith("cd "):
            cwd = cwd / command[3:]
            continue
        done = subprocess.run(
            ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.stderr == "", (command, done.stderr)
        assert done.stdout.replace("\r\n", "\n") == shown, command


def test_the_readmes_library_example_is_real_output(monkeypatch):
    """The README's ``>>>`` session, run as a doctest from the repository's root."""
    readme = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.DOTALL) if ">>> " in b]
    assert len(blocks) == 1
    monkeypatch.chdir(ROOT)
    parser = doctest.DocTestParser()
    test = parser.get_doctest(blocks[0], {"validator": validator}, "README", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0 and runner.tries >= 6


def test_the_screenshot_is_of_the_examples_as_they_are(tmp_path):
    """The README's screenshot of the --html page says the command and what the page shows;
    the command gives that today (when the examples change, the screenshot is taken again)."""
    readme = (ROOT / "README.md").read_text()
    alt = re.search(r"!\[The --html page of examples/ in (\d+) pieces: (\d+) records, (\d+) "
                    r"failed, (\d+) warnings\]\(docs/report.png\)", readme)  # fmt: skip
    assert alt is not None
    assert (ROOT / "docs" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    command = "pinpoint-preflight validate examples/ --format CSV --pieces 6 --html report.html"
    assert f"(`{command}`, then" in " ".join(readme.split())
    query = "[TotalPieces, TotalProcessed, TotalFailures, TotalWarnings]"
    exe = shutil.which("pinpoint-preflight")
    args = [exe] if exe else [sys.executable, "-m", "validator"]
    args += [*command.split()[1:-2], "--query", query, "--output", "text"]
    done = subprocess.run(
        args,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.split() == list(alt.groups())
