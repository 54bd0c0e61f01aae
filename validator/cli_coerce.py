"""Plain option values without pydantic: a start-up cost, not a behaviour.

typer 0.2x coerces every option value through a pydantic ``TypeAdapter`` that it builds the
first time the option is parsed, even when the option was not given. For the options of this
CLI (text, whole numbers, decimal numbers, flags, lists of text) that means importing pydantic and
building about fifteen adapters on every run: about 0.1 s of a 5-record ``validate``.

``install()`` puts a cheaper coercion in front of typer's for exactly the values whose result is
not in doubt: no value at all, text given as text, a flag given as a flag, and numbers in their
plain ASCII spelling (``12``, ``-3``, ``0.5``). Everything else (a number with underscores, a
value out of a declared range, a choice, a path, a file, or a value that is not a number at
all) goes to typer's own coercion, so its error messages and its edge cases stay exactly as
they were. Without the typer internals this relies on, ``install()`` does nothing.
"""

from __future__ import annotations

import re
from typing import Any, get_args, get_origin

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def install() -> None:
    """Route plain option values around pydantic (once; a no-op on other typer versions)."""
    try:
        import typer.core as core
        from typer._coercion import RuntimeParam
    except ImportError:  # pragma: no cover - typer before 0.2x has no pydantic coercion
        return
    found = getattr(core, "build_runtime_param", None)
    if found is None or getattr(found, "_preflight_plain", False):
        return
    original: Any = found

    class PlainRuntimeParam(RuntimeParam):
        """str, int, float, bool or list[str], without constraints; the rest falls back."""

        def __init__(self, descriptor: Any, kind: Any) -> None:
            super().__init__(descriptor.parameter_info, descriptor.annotation)
            object.__setattr__(self, "_descriptor", descriptor)
            object.__setattr__(self, "_kind", kind)
            object.__setattr__(self, "_full", None)

        def _fallback(self) -> Any:
            full = self._full  # type: ignore[attr-defined]
            if full is None:
                full = original(self._descriptor)  # type: ignore[attr-defined]
                object.__setattr__(self, "_full", full)
            return full

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            kind = self._kind  # type: ignore[attr-defined]
            if (kind is str and isinstance(value, str)) or (
                kind is bool and isinstance(value, bool)
            ):
                return value
            if (
                kind is list
                and isinstance(value, list | tuple)
                and all(isinstance(v, str) for v in value)
            ):
                return list(value)
            if isinstance(value, str):
                text = value.strip()
                if kind is int and _INT.fullmatch(text):
                    return int(text)
                if kind is float and _FLOAT.fullmatch(text):
                    return float(text)
            return self._fallback()._coerce_value(value, param=param, ctx=ctx)

    def build_runtime_param(descriptor: Any) -> Any:
        kind = _plain_kind(descriptor)
        if kind is None:
            return original(descriptor)
        return PlainRuntimeParam(descriptor, kind)

    build_runtime_param._preflight_plain = True  # type: ignore[attr-defined]
    core.build_runtime_param = build_runtime_param


def _plain_kind(descriptor: Any) -> Any:
    """str, int, float, bool or list (of str) when the option has only its type; else None."""
    try:
        from typer._param_types import routes_to_path
    except ImportError:  # pragma: no cover - another typer layout: keep typer's coercion
        return None
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None:
        return None
    for name in ("parser", "click_type", "min", "max", "formats"):
        if getattr(info, name, None) is not None:
            return None
    if getattr(info, "clamp", False) or routes_to_path(descriptor.annotation, info):
        return None
    annotation = descriptor.annotation
    if annotation in (str, int, float, bool):
        return annotation
    if get_origin(annotation) is list and get_args(annotation) == (str,):
        return list
    return None
