"""--html PATH: one self-contained page (no network, no scripts) with the verdict, a chart of
the pieces, the codes, the first failures with source:line and value, and the files; rendered
in headless Chromium where it is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from ci_required import skip_unless_ci

ROOT = Path(__file__).parent.parent
EXE = shutil.which("pinpoint-preflight")
CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [EXE, *args] if EXE else [sys.executable, "-m", "validator", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


class Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.tags: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.skip += tag in ("style", "title", "head")

    def handle_endtag(self, tag: str) -> None:
        self.skip -= tag in ("style", "title", "head")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.parts).split())


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("html")
    examples = folder / "examples"
    (examples / "clean").mkdir(parents=True)
    for name in ("endpoints.csv", "endpoints.ndjson", "clean/aws-docs-example.csv"):
        shutil.copy(ROOT / "examples" / name, examples / name)
    out = folder / "report.html"
    r = cli("validate", str(examples), "--format", "CSV", "--pieces", "4",
            "--output", "off", "--html", str(out))  # fmt: skip
    assert r.returncode == 1, r.stderr
    return out


def test_the_page_is_self_contained(page):
    html = page.read_text()
    assert not re.search(r"<script|<link|<img|<iframe|\bsrc=|\bhref=|@import|url\(", html, re.I)
    assert re.findall(r"https?://[^\"' <]+", html) == ["http://www.w3.org/2000/svg"]


def test_the_page_shows_the_job(page):
    parsed = Text()
    parsed.feed(page.read_text())
    text = parsed.text
    examples = str(page.parent / "examples")
    assert text.startswith(f"Preflight FAILED {examples} · CSV · ")
    assert "Gate FAILED 4 record(s) failed and no tolerance was given" in text
    assert "15 records 4 failed records 2 warnings" in text
    assert "ADDRESS_E164 1" in text and "LOCALE 1" in text
    assert f"{examples}/endpoints.csv:4 Address ADDRESS_E164 +1 (206) 555-0100" in text
    assert f"{examples}/endpoints.ndjson SKIPPED" in text and "not CSV: a JSON file" in text
    assert parsed.tags.count("svg") == 1
    # Two bars (records, failed) per piece, in source order.
    pieces = re.findall(r"<title>piece (\d+):", page.read_text())
    assert pieces == [str(i) for i in range(len(pieces))] and len(pieces) >= 4


def test_a_bad_html_path_is_a_usage_error_before_any_work(tmp_path):
    r = cli("validate", str(ROOT / "examples"), "--format", "CSV",
            "--html", str(tmp_path / "no" / "such" / "r.html"))  # fmt: skip
    assert (r.returncode, r.stdout) == (252, "")
    assert "--html: no such folder" in r.stderr


def test_chromium_renders_the_page_with_its_text(page, tmp_path):
    if CHROMIUM is None:
        skip_unless_ci("Chromium is not installed (CI installs it)")
    dom = subprocess.run(
        [CHROMIUM, *HEADLESS, "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert dom.returncode == 0, dom.stderr
    parsed = Text()
    parsed.feed(dom.stdout)
    assert "Preflight FAILED" in parsed.text
    assert "First failures" in parsed.text and "ADDRESS_E164" in parsed.text
    assert "<svg" in dom.stdout
    shot = tmp_path / "shot.png"
    done = subprocess.run(
        [CHROMIUM, *HEADLESS, "--window-size=1200,900", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
