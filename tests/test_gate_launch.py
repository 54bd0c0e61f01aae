"""create-import-job launches within the gate's tolerance (loopback Pinpoint, moto S3)."""

from __future__ import annotations

import json
import subprocess

import pytest
from pinpoint_server import PinpointServer
from s3_servers import S3Server
from test_launch import APP, ROLE, command, env, pinpoint, run, shorthand, urls  # noqa: F401 - fixtures

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


def _split_to_s3(server: S3Server, tmp_path, jobs: int) -> str:
    """A split to S3 of a clean CSV into ``jobs`` job folders; its s3:// destination."""
    import validator
    from validator.settings import AwsSettings

    rows = ["ChannelType,Address"] + [f"EMAIL,user{i:04d}@example.com" for i in range(300)]
    (tmp_path / "in.csv").write_text("\n".join(rows) + "\n")
    size = (tmp_path / "in.csv").stat().st_size
    bucket = server.make_bucket("jobs")
    dest = f"s3://{bucket}/split/"
    result = validator.split(
        str(tmp_path / "in.csv"),
        to=dest,
        format="CSV",
        max_job_size=size // jobs + 100,
        piece_size=size // jobs,
        settings=AwsSettings(endpoint_url=server.endpoint_url),
    )
    assert result.manifest["Totals"]["Jobs"] == jobs
    return dest


def _max_running(server: PinpointServer) -> int:
    """The most import jobs that were created and not yet seen ended, from the server's log
    (a job ends on its third GetImportJob: CREATED, PROCESSING, COMPLETED)."""
    polls: dict[str, int] = {}
    created = done = most = 0
    for r in server.requests:
        if r.method == "POST":
            created += 1
            most = max(most, created - done)
        elif r.method == "GET":
            job = r.path.rsplit("/", 1)[1]
            polls[job] = polls.get(job, 0) + 1
            done += polls[job] == 3
    return most


@moto_only
def test_create_import_jobs_launches_every_job_folder_at_most_2_at_once(
    pinpoint: PinpointServer,  # noqa: F811
    env: S3Server,  # noqa: F811
    tmp_path,
) -> None:
    dest = _split_to_s3(env, tmp_path, jobs=5)
    args = (
        "--application-id", APP, "--manifest", dest,
        "--import-job-request", f"RoleArn={ROLE},RegisterEndpoints=true",
        "--s3-endpoint-url", env.endpoint_url, "--endpoint-url", pinpoint.endpoint_url,
    )  # fmt: skip
    dry = run_jobs(*args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    requests = json.loads(dry.stdout)["ImportJobRequests"]
    assert [r["S3Url"] for r in requests] == [f"{dest}job-{i:04d}/" for i in range(1, 6)]
    assert all(r["Format"] == "CSV" and r["RegisterEndpoints"] is True for r in requests)
    assert pinpoint.requests == []

    done = run_jobs(*args, "--poll-interval", "0.01")
    assert done.returncode == 0, done.stderr
    jobs = json.loads(done.stdout)["ImportJobs"]
    assert [j["JobStatus"] for j in jobs] == ["COMPLETED"] * 5
    assert [j["Definition"]["S3Url"] for j in jobs] == [r["S3Url"] for r in requests]
    assert sum(r.method == "POST" for r in pinpoint.requests) == 5
    assert _max_running(pinpoint) == 2

    job_id = jobs[0]["Id"]
    got = run_jobs_command(
        "get-import-job", "--application-id", APP, "--job-id", job_id,
        "--endpoint-url", pinpoint.endpoint_url, "--query", "ImportJobResponse.JobStatus",
        "--output", "text",
    )  # fmt: skip
    assert (got.returncode, got.stdout) == (0, "COMPLETED\n")


@moto_only
def test_create_import_jobs_exits_1_when_a_job_fails(env: S3Server, tmp_path) -> None:  # noqa: F811
    dest = _split_to_s3(env, tmp_path, jobs=2)
    with PinpointServer(
        access_key=env.access_key,
        secret_key=env.secret_key,
        region=env.region,
        statuses=["CREATED", "FAILED"],
    ) as server:
        done = run_jobs(
            "--application-id", APP, "--manifest", dest, "--poll-interval", "0",
            "--import-job-request", "RoleArn=arn:aws:iam::123456789012:role/Import",
            "--s3-endpoint-url", env.endpoint_url, "--endpoint-url", server.endpoint_url,
            "--quiet",
        )  # fmt: skip
    assert done.returncode == 1 and done.stderr == ""
    assert [j["JobStatus"] for j in json.loads(done.stdout)["ImportJobs"]] == ["FAILED"] * 2


def test_create_import_jobs_refuses_a_local_split(tmp_path) -> None:
    import validator

    (tmp_path / "in.csv").write_text("ChannelType,Address\nEMAIL,a@example.com\n")
    validator.split(str(tmp_path / "in.csv"), to=str(tmp_path / "out"), format="CSV")
    done = run_jobs(
        "--application-id", APP, "--manifest", str(tmp_path / "out"), "--dry-run",
        "--import-job-request", "RoleArn=arn:aws:iam::123456789012:role/Import",
    )  # fmt: skip
    assert done.returncode == 252
    assert "Pinpoint imports from s3:// only" in done.stderr


def run_jobs_command(*args: str) -> subprocess.CompletedProcess[str]:
    argv, environ = command()
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, timeout=120, env=environ,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def run_jobs(*args: str) -> subprocess.CompletedProcess[str]:
    return run_jobs_command("create-import-jobs", *args)
