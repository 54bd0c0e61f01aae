"""The README's rules table lists every rule in schemas/rules.json, with its severity."""

from __future__ import annotations

import json
import re
from pathlib import Path

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
