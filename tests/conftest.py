"""Shared fixtures. Each part keeps to its own section; server code lives in its own module."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3_servers import S3Server, moto_server, seaweedfs_server

# --- AWS and S3 (servers in s3_servers.py) ------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _no_instance_metadata() -> Iterator[None]:
    """boto3 looking for credentials must never reach 169.254.169.254: no test leaves 127.0.0.1."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        for name in (
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        ):
            mp.delenv(name, raising=False)
        yield


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An AWS environment with nothing in it: no credentials, no profile, no region, empty
    config files. Returns the folder holding ``config`` and ``credentials``, to write into."""
    for name in list(os.environ):
        if name.startswith("AWS_") and name != "AWS_EC2_METADATA_DISABLED":
            monkeypatch.delenv(name)
    folder = tmp_path / "aws"
    folder.mkdir()
    (folder / "config").write_text("")
    (folder / "credentials").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(folder / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(folder / "credentials"))
    return folder


@pytest.fixture(scope="session", params=["moto", "seaweedfs"])
def s3_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[S3Server]:
    """A real S3 API server on 127.0.0.1 (moto, then SeaweedFS), started once per session."""
    if request.param == "moto":
        with moto_server() as server:
            yield server
    else:
        with seaweedfs_server(tmp_path_factory.mktemp("seaweedfs")) as server:
            yield server


@pytest.fixture
def s3_env(s3_server: S3Server, aws_env: Path, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """``s3_server``, with the server's credentials and region in the standard variables (its
    endpoint is for the test to give: ``--endpoint-url`` or ``AWS_ENDPOINT_URL_S3``)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # failing requests fail fast
    return s3_server


# --- every report the suite produces, checked against schemas/report.schema.json -------------
# report_hook/sitecustomize.py logs each report built in a process the tests start (and, through
# the same wrapper, in this one); at the end of the run each is validated against the schema.

_REPORT_LOG = tempfile.mkdtemp(prefix="pinpoint-preflight-reports-")
os.environ["PINPOINT_PREFLIGHT_REPORT_LOG"] = _REPORT_LOG
_HOOK = str(Path(__file__).parent / "report_hook")
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_HOOK, os.environ.get("PYTHONPATH")) if p)
sys.path.insert(0, _HOOK)
import sitecustomize as _report_hook  # noqa: E402 - the folder is on sys.path only now

import validator.report  # noqa: E402
import validator.write  # noqa: E402

_report_hook.wrap(validator.report.Report)
_report_hook.wrap(validator.write.SplitResult)
sys.path.remove(_HOOK)

REPORT_SCHEMA = Path(__file__).parent.parent / "schemas" / "report.schema.json"


def logged_reports() -> list[dict[str, object]]:
    """Every report logged so far in this run, by any process."""
    out = []
    for name in sorted(os.listdir(_REPORT_LOG)):
        with open(os.path.join(_REPORT_LOG, name), encoding="utf-8") as fh:
            out += [json.loads(line) for line in fh if line.strip()]
    return out


def report_schema_errors(reports: list[dict[str, object]]) -> list[str]:
    import jsonschema

    validator_ = jsonschema.Draft202012Validator(json.loads(REPORT_SCHEMA.read_text()))
    errors = []
    for report in reports:
        for error in validator_.iter_errors(report):
            where = "/".join(str(p) for p in error.absolute_path) or "(top)"
            errors.append(f"report {report.get('Id')}: {where}: {error.message[:300]}")
    return errors


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reports = logged_reports()
    errors = report_schema_errors(reports)
    shutil.rmtree(_REPORT_LOG, ignore_errors=True)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"report schema: {len(reports)} reports checked against {REPORT_SCHEMA.name}, "
            f"{len(errors)} problems"
        )
        for line in errors[:20]:
            reporter.write_line(f"  {line}", red=True)
    if errors:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
