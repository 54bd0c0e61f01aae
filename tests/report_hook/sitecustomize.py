"""Loaded by every Python process the tests start (conftest puts this folder on PYTHONPATH).

When PINPOINT_PREFLIGHT_REPORT_LOG names a folder, every report a process builds
(``Report.to_dict`` and ``SplitResult.to_dict``) is appended to a file there, one JSON object
per line, for conftest to validate against schemas/report.schema.json at the end of the run.
Nothing is imported until the process imports ``validator.report`` itself.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

_LOG = os.environ.get("PINPOINT_PREFLIGHT_REPORT_LOG")
_WRAPPED = {"validator.report": "Report", "validator.write": "SplitResult"}


def wrap(cls: type) -> None:
    """Log what ``cls.to_dict`` returns (once per class)."""
    if getattr(cls.to_dict, "_logged", False):
        return
    inner = cls.to_dict

    def to_dict(self):  # type: ignore[no-untyped-def]
        out = inner(self)
        log = os.environ.get("PINPOINT_PREFLIGHT_REPORT_LOG")
        if log and os.path.isdir(log):
            import json

            try:
                line = json.dumps(out, default=str)
            except (TypeError, ValueError):
                line = json.dumps({"unserialisable": repr(out)[:200]})
            with open(os.path.join(log, f"{os.getpid()}.jsonl"), "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        return out

    to_dict._logged = True  # type: ignore[attr-defined]
    cls.to_dict = to_dict  # type: ignore[method-assign]


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
        if name not in _WRAPPED:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_wrap(module):  # type: ignore[no-untyped-def]
            exec_module(module)
            wrap(getattr(module, _WRAPPED[name]))

        loader.exec_module = exec_and_wrap  # type: ignore[method-assign]
        return spec


if _LOG:
    sys.meta_path.insert(0, _Finder())
