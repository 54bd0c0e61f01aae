"""create-import-job launches within the gate's tolerance (loopback Pinpoint, moto S3)."""

from __future__ import annotations

import json

import pytest
from pinpoint_server import PinpointServer
from s3_servers import S3Server
from test_launch import APP, env, pinpoint, run, shorthand, urls  # noqa: F401 - fixtures

pytestmark = [pytest.mark.launch, pytest.mark.s3]
moto_only = pytest.mark.parametrize("s3_server", ["moto"], indirect=True)


@moto_only
def test_create_import_job_launches_within_the_tolerance(
    pinpoint: PinpointServer,  # noqa: F811
    env: S3Server,  # noqa: F811
    urls: dict[str, str],  # noqa: F811
) -> None:
    # urls["bad"] holds 2 records, one of them with ChannelType FAX.
    base = ("--application-id", APP, "--import-job-request", shorthand(urls["bad"]))
    refused = run(*base, "--max-failures", "0", s3=env, pinpoint=pinpoint)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["Gate"]["Verdict"] == "FAILED"
    assert pinpoint.requests == []

    launched = run(*base, "--max-failure-rate", "50%", s3=env, pinpoint=pinpoint)
    assert launched.returncode == 0, launched.stderr
    assert [r.method for r in pinpoint.requests] == ["POST"]
    assert json.loads(launched.stdout)["ImportJobResponse"]["JobStatus"] == "CREATED"
    assert "preflight within tolerance: 1 of 2 endpoint records failed" in launched.stderr

    quiet = run(*base, "--max-failures", "1", "--quiet", s3=env, pinpoint=pinpoint)
    assert quiet.returncode == 0 and quiet.stderr == ""
    bad = run(*base, "--max-failure-rate", "2", s3=env, pinpoint=pinpoint)
    assert bad.returncode == 252 and "--max-failure-rate" in bad.stderr
