"""Tests CI must run: where a test cannot run here (awscli not installable from the package
index, Chromium absent) it skips, but under ``.ci/run`` (PINPOINT_PREFLIGHT_CI=1) it fails, so
that CI never passes without it."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("PINPOINT_PREFLIGHT_CI") == "1"


def skip_unless_ci(reason: str) -> None:
    """Skip the test for ``reason``, or (in CI) fail it."""
    if IN_CI:
        pytest.fail(f"{reason} (PINPOINT_PREFLIGHT_CI=1: CI must run this test)")
    pytest.skip(reason)
