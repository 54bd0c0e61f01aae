"""What the package imports, it declares: a plain `pip install .` must be enough to run it."""

from __future__ import annotations

import ast
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _top_level_imports() -> set[str]:
    names = set()
    for path in (ROOT / "validator").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - {"validator", "__future__"}


def _declared(extra: str | None = None) -> set[str]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["optional-dependencies"][extra] if extra else project["dependencies"]
    names = set()
    for dep in deps:
        name = dep.split(";")[0]
        for sep in "<>=![ ~":
            name = name.split(sep)[0]
        names.add(name.strip().lower().replace("_", "-"))
    return names


def test_every_third_party_import_is_a_declared_dependency():
    dists = packages_distributions()
    missing = {}
    for module in sorted(_top_level_imports()):
        if module in sys.stdlib_module_names:
            continue
        owners = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        # Modules imported only inside an ImportError fallback (click for old typer) are fine.
        if module == "click":
            continue
        # distributed is the [dask] extra: cluster.py imports it only when --scheduler asks, and
        # its absence is a usage line there (test_cluster covers that no Dask import happens).
        if module == "distributed":
            continue
        if not owners & _declared():
            missing[module] = sorted(owners)
    assert missing == {}
    assert "dask" in _declared("dask")


def test_the_version_the_reports_carry_is_the_installed_packages():
    from importlib.metadata import version

    import validator
    from validator.report import tool_version

    assert tool_version() == validator.__version__ == version("pinpoint-preflight")
