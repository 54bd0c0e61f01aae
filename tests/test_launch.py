"""create-import-job: the request as the AWS CLI reads it, the model-driven checks, the
skeletons, and the launch against a loopback Pinpoint (tests/pinpoint_server.py) after a real
preflight that reads S3 from moto.

The exit-code tests run the installed ``pinpoint-preflight`` in a subprocess; the tests that
need a fake sleep call the CLI or the library in-process.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import sysconfig
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.parsers import ResponseParserError
from botocore.utils import ArgumentGenerator
from pinpoint_server import PinpointServer, error, html
from s3_servers import S3Server, closed_port

from validator import cli, launch
from validator.errors import ConfigError, PreflightError, PreflightFailed, ServiceError, UsageError
from validator.settings import AwsSettings

APP = "4f2d3c1b0a9e8d7c6b5a4f3e2d1c0b9a"
ROLE = "arn:aws:iam::123456789012:role/PinpointImport"
MODEL = botocore.session.get_session().get_service_model("pinpoint")
REQUEST_SHAPE = MODEL.shape_for("ImportJobRequest")

GOOD_CSV = (
    "ChannelType,Address,Location.Country,User.UserId\n"
    "EMAIL,alice@example.com,US,u1\n"
    "SMS,+16045550182,CA,u2\n"
    "EMAIL,bob@example.com,US,u3\n"
)
BAD_CSV = (
    "ChannelType,Address,Location.Country,User.UserId\n"
    "EMAIL,alice@example.com,US,u1\n"
    "FAX,+16045550182,CA,u2\n"
)

pytestmark = pytest.mark.launch

# Tests with servers read S3 from moto only: what they test is the launch, not the S3 servers.
moto_only = pytest.mark.parametrize(
    "s3_server", [pytest.param("moto", marks=pytest.mark.s3)], indirect=True
)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def env(s3_env: S3Server) -> S3Server:
    """The moto S3 server's keys in the environment; Pinpoint's server checks the same keys."""
    return s3_env


@pytest.fixture
def pinpoint(env: S3Server) -> Iterator[PinpointServer]:
    with PinpointServer(
        access_key=env.access_key, secret_key=env.secret_key, region=env.region
    ) as server:
        yield server


@pytest.fixture
def urls(env: S3Server) -> dict[str, str]:
    """``good`` and ``bad``: s3:// prefixes holding a passing and a failing CSV."""
    bucket = env.make_bucket("launch")
    client = env.client()
    client.put_object(Bucket=bucket, Key="good/endpoints.csv", Body=GOOD_CSV.encode())
    client.put_object(Bucket=bucket, Key="bad/endpoints.csv", Body=BAD_CSV.encode())
    return {"good": f"s3://{bucket}/good/", "bad": f"s3://{bucket}/bad/"}


def request(url: str, **extra: Any) -> dict[str, Any]:
    return {"S3Url": url, "Format": "CSV", "RoleArn": ROLE, "RegisterEndpoints": True, **extra}


def shorthand(url: str, extra: str = "") -> str:
    return f"S3Url={url},Format=CSV,RoleArn={ROLE},RegisterEndpoints=true{extra}"


def command() -> tuple[list[str], dict[str, str] | None]:
    """How to run ``pinpoint-preflight``, and the environment it needs: the installed entry
    point when it runs the package these tests import, else ``python -m validator`` on that
    package (a source tree next to a stale install), so both run the same code."""
    import validator

    package_root = Path(validator.__file__).resolve().parent.parent
    entry_point = Path(sysconfig.get_path("scripts")) / "pinpoint-preflight"
    if entry_point.exists() and _installed_root() == package_root:
        return [str(entry_point)], None
    return [sys.executable, "-m", "validator"], {**os.environ, "PYTHONPATH": str(package_root)}


def _installed_root() -> Path | None:
    """Where the installed distribution's ``validator`` package lives (editable: the tree)."""
    try:
        dist = importlib.metadata.distribution("pinpoint-preflight")
    except importlib.metadata.PackageNotFoundError:
        return None
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    if direct.get("dir_info", {}).get("editable"):
        return Path(urllib.parse.urlparse(direct["url"]).path).resolve()
    return Path(str(dist.locate_file("validator"))).resolve().parent


def run(
    *args: str,
    s3: S3Server | None = None,
    pinpoint: PinpointServer | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``pinpoint-preflight create-import-job ARGS`` with the test servers' endpoints."""
    argv, environ = command()
    argv += ["create-import-job", *args]
    if s3 is not None:
        argv += ["--s3-endpoint-url", s3.endpoint_url]
    if pinpoint is not None:
        argv += ["--endpoint-url", pinpoint.endpoint_url]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line on stderr; no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# --- the request as the AWS CLI reads it -------------------------------------------------------


def test_shorthand_with_booleans_and_every_member() -> None:
    parsed = launch.parse_import_job_request(
        "S3Url=s3://b/p/,Format=CSV,RoleArn=arn:aws:iam::123456789012:role/R,"
        "RegisterEndpoints=true,DefineSegment=TRUE,SegmentName=x,SegmentId=s1,ExternalId=e"
    )
    assert parsed == {
        "S3Url": "s3://b/p/",
        "Format": "CSV",
        "RoleArn": "arn:aws:iam::123456789012:role/R",
        "RegisterEndpoints": True,
        "DefineSegment": True,
        "SegmentName": "x",
        "SegmentId": "s1",
        "ExternalId": "e",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("S3Url='s3://b/a,b',Format=JSON", {"S3Url": "s3://b/a,b", "Format": "JSON"}),
        ('S3Url="s3://b/say \\"hi\\"",Format=CSV', {"S3Url": 's3://b/say "hi"', "Format": "CSV"}),
        ("S3Url=s3://b/a\\,b , Format = CSV ", {"S3Url": "s3://b/a,b", "Format": "CSV"}),
        (
            "RegisterEndpoints=false,DefineSegment=False",
            {"RegisterEndpoints": False, "DefineSegment": False},
        ),
        ("SegmentName=", {"SegmentName": ""}),
    ],
)
def test_shorthand_quoting_and_spaces(text: str, expected: dict[str, Any]) -> None:
    assert launch.parse_import_job_request(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("S3Url", "expected Key=Value at character 1"),
        ("=CSV", "expected Key=Value at character 1"),
        ("Format=CSV,,", "Format takes one value, not 3"),
        ("S3Url=s3://b/p/,Format", "Format has no value; write Format=VALUE"),
        ("S3Url=x,S3Url=y", "S3Url is given twice"),
        ("RegisterEndpoints=yes", "RegisterEndpoints must be true or false, not 'yes'"),
        ("S3Url=s3://b/a,b,Format=CSV", "S3Url takes one value, not 2"),
        ("S3Url='s3://b/a", "the quote at character 7 is never closed"),
        ("S3Url='s3://b/a'x", "expected ',' after the quoted value"),
        ("S3Url=[a,b]", "lists and nested structures"),
        ("   ", "--import-job-request is empty"),
        ('{"Format": "CSV",}', "invalid JSON"),
        ("[1, 2]", "the JSON must be an object"),
    ],
)
def test_malformed_request_is_a_usage_error(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        launch.parse_import_job_request(text)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_json_and_file_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    as_json = {"S3Url": "s3://b/p/", "Format": "JSON", "RoleArn": ROLE, "DefineSegment": True}
    assert launch.parse_import_job_request(json.dumps(as_json)) == as_json
    (tmp_path / "req.json").write_text(json.dumps(as_json))
    (tmp_path / "req.txt").write_text(f"S3Url=s3://b/p/,Format=CSV,RoleArn={ROLE}\n")
    assert launch.parse_import_job_request(f"file://{tmp_path / 'req.json'}") == as_json
    monkeypatch.chdir(tmp_path)
    assert launch.parse_import_job_request("file://req.txt") == {
        "S3Url": "s3://b/p/",
        "Format": "CSV",
        "RoleArn": ROLE,
    }
    with pytest.raises(UsageError) as caught:
        launch.parse_import_job_request("file://nope.json")
    assert "cannot read file://nope.json: No such file" in str(caught.value)


def test_cli_input_json_and_yaml(tmp_path: Path) -> None:
    params = {"ApplicationId": APP, "ImportJobRequest": request("s3://b/p/")}
    assert launch.load_cli_input(json.dumps(params)) == params
    (tmp_path / "in.yaml").write_text(yaml.safe_dump(params))
    assert launch.load_cli_input(f"file://{tmp_path / 'in.yaml'}", yaml_input=True) == params
    with pytest.raises(UsageError, match="--cli-input-yaml: invalid YAML"):
        launch.load_cli_input("a: [", yaml_input=True)
    with pytest.raises(UsageError, match="--cli-input-json must hold an object"):
        launch.load_cli_input("[]")


# --- the checks from botocore's model ----------------------------------------------------------


def test_a_good_request_passes() -> None:
    launch.check_request(
        {
            "ApplicationId": APP,
            "ImportJobRequest": request(
                "s3://bucket/prefix/", DefineSegment=True, SegmentName="imported"
            ),
        }
    )


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"Format": "XML"}, "ImportJobRequest.Format must be one of CSV, JSON, not 'XML'"),
        ({"Format": "csv"}, "must be one of CSV, JSON, not 'csv'"),
        (
            {"S3Url": "https://bucket.s3.amazonaws.com/p"},
            "S3Url https://bucket.s3.amazonaws.com/p: not an S3 URL",
        ),
        ({"S3Url": "s3:///p"}, "S3Url s3:///p: no bucket name"),
        ({"S3Url": "s3://my bucket/p"}, "is not a valid S3 bucket name"),
        ({"RoleArn": "arn:aws:iam::123:role/x"}, "RoleArn must be an IAM role ARN"),
        ({"RoleArn": "arn:aws:iam::123456789012:user/x"}, "RoleArn must be an IAM role ARN"),
        ({"SegmentName": "x"}, "SegmentName names the segment that DefineSegment creates"),
        ({"SegmentName": "x", "DefineSegment": False}, "give DefineSegment=true with it"),
        ({"Color": "red"}, 'Unknown parameter in ImportJobRequest: "Color"'),
        (
            {"RegisterEndpoints": "true"},
            "Invalid type for parameter ImportJobRequest.RegisterEndpoints",
        ),
        ({"S3Url": 7}, "Invalid type for parameter ImportJobRequest.S3Url"),
    ],
)
def test_bad_request_members(change: dict[str, Any], says: str) -> None:
    with pytest.raises(UsageError) as caught:
        launch.check_request(
            {"ApplicationId": APP, "ImportJobRequest": request("s3://b/p/", **change)}
        )
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_required_members_come_from_the_model() -> None:
    for name in REQUEST_SHAPE.required_members:
        incomplete = request("s3://b/p/")
        del incomplete[name]
        with pytest.raises(UsageError) as caught:
            launch.check_request({"ApplicationId": APP, "ImportJobRequest": incomplete})
        assert f'Missing required parameter in ImportJobRequest: "{name}"' in str(caught.value)
    with pytest.raises(UsageError, match="ApplicationId must not be empty"):
        launch.check_request({"ApplicationId": "", "ImportJobRequest": request("s3://b/p/")})


def test_every_problem_on_one_line() -> None:
    with pytest.raises(UsageError) as caught:
        launch.check_request(
            {
                "ApplicationId": APP,
                "ImportJobRequest": {"Format": "XML", "S3Url": "b/p", "RoleArn": "role"},
            }
        )
    message = str(caught.value)
    assert "Format" in message and "S3Url" in message and "RoleArn" in message
    assert "\n" not in message


def test_translate_error_for_what_is_not_a_service_error(aws_env: Path) -> None:
    gone = launch.translate_error(
        ResponseParserError("Unable to parse response, invalid JSON"),
        operation="CreateImportJob",
        endpoint="http://pinpoint.example",
    )
    assert isinstance(gone, ServiceError) and gone.exit_code == 254
    assert "http://pinpoint.example" in str(gone) and "2026-10-30" in str(gone)
    odd = launch.translate_error(RuntimeError("boom"), operation="CreateImportJob")
    assert type(odd) is PreflightError and odd.exit_code == 255
    with pytest.raises(UsageError, match="--endpoint-url: Invalid endpoint"):
        launch.make_client(AwsSettings(endpoint_url="not a url", region="us-east-1"))
    with pytest.raises(ConfigError, match="give --region or set AWS_REGION"):
        launch.make_client(AwsSettings())
    with pytest.raises(ConfigError, match="could not be found"):
        launch.make_client(AwsSettings(profile="nobody"))


# --- skeletons ---------------------------------------------------------------------------------


def test_input_skeleton_is_botocores() -> None:
    operation = MODEL.operation_model("CreateImportJob")
    expected = ArgumentGenerator().generate_skeleton(operation.input_shape)
    printed = json.loads(launch.skeleton("input"))
    format_values = REQUEST_SHAPE.members["Format"].enum
    assert printed["ImportJobRequest"]["Format"] == format_values[0]
    expected["ImportJobRequest"]["Format"] = format_values[0]  # botocore picks one at random
    assert printed == expected
    assert launch.skeleton("input") == json.dumps(expected, indent=4)


def test_yaml_input_skeleton_has_the_same_members_and_comments() -> None:
    text = launch.skeleton("yaml-input")
    assert yaml.safe_load(text) == json.loads(launch.skeleton("input"))
    lines = {line.split(":")[0].strip(): line for line in text.splitlines()}
    for name in REQUEST_SHAPE.members:
        assert ("[REQUIRED]" in lines[name]) == (name in REQUEST_SHAPE.required_members)
    assert "Valid values are: CSV, JSON." in lines["Format"]
    assert "[REQUIRED]" in lines["ApplicationId"]


def test_output_skeleton_is_what_the_command_prints() -> None:
    # As the AWS CLI prints CreateImportJob's answer: {"ImportJobResponse": {...}}.
    shape = MODEL.shape_for("ImportJobResponse")
    skeleton = launch.output_skeleton()
    assert list(skeleton) == ["ImportJobResponse"]
    assert skeleton["ImportJobResponse"] == ArgumentGenerator(
        use_member_names=True
    ).generate_skeleton(shape)


# --- waiting -----------------------------------------------------------------------------------


class FakeTime:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@moto_only
def test_wait_backs_off_up_to_the_cap(pinpoint: PinpointServer) -> None:
    pinpoint.statuses = ["CREATED"] + ["PROCESSING"] * 7 + ["COMPLETED"]
    client = launch.make_client(AwsSettings(endpoint_url=pinpoint.endpoint_url))
    job = client.create_import_job(ApplicationId=APP, ImportJobRequest=request("s3://b/p/"))
    fake, seen = FakeTime(), []
    final = launch.wait_for_job(
        client,
        ApplicationId=APP,
        JobId=job["ImportJobResponse"]["Id"],
        delay=2,
        max_delay=20,
        sleep=fake.sleep,
        clock=fake.clock,
        on_progress=lambda job, elapsed: seen.append(job["JobStatus"]),
    )
    assert final["ImportJobResponse"]["JobStatus"] == "COMPLETED"
    assert fake.sleeps == [2, 4, 8, 16, 20, 20, 20, 20]
    assert seen == pinpoint.statuses


@moto_only
def test_wait_gives_up_after_the_timeout(pinpoint: PinpointServer) -> None:
    pinpoint.statuses = ["PROCESSING"]
    client = launch.make_client(AwsSettings(endpoint_url=pinpoint.endpoint_url))
    job = client.create_import_job(ApplicationId=APP, ImportJobRequest=request("s3://b/p/"))
    fake = FakeTime()
    with pytest.raises(PreflightError, match="still PROCESSING after 60s") as caught:
        launch.wait_for_job(
            client,
            ApplicationId=APP,
            JobId=job["ImportJobResponse"]["Id"],
            timeout=60,
            delay=10,
            sleep=fake.sleep,
            clock=fake.clock,
        )
    assert caught.value.exit_code == 255
    assert fake.sleeps == [10, 20, 30]


# --- the library against the loopback Pinpoint -------------------------------------------------


@moto_only
def test_library_launches_after_a_passing_preflight(
    pinpoint: PinpointServer, env: S3Server, urls: dict[str, str]
) -> None:
    client = launch.make_client(AwsSettings(endpoint_url=pinpoint.endpoint_url))
    response = launch.create_import_job(
        client,
        ApplicationId=APP,
        ImportJobRequest=request(urls["good"]),
        settings=AwsSettings(endpoint_url=env.endpoint_url),
    )
    job = response["ImportJobResponse"]
    assert job["JobStatus"] == "CREATED" and job["Id"] in pinpoint.jobs
    [sent] = pinpoint.requests
    assert (sent.method, sent.path) == ("POST", f"/v1/apps/{APP}/jobs/import")
    assert sent.json == request(urls["good"])


@moto_only
def test_library_sends_nothing_after_a_failing_preflight(
    pinpoint: PinpointServer, env: S3Server, urls: dict[str, str]
) -> None:
    client = launch.make_client(AwsSettings(endpoint_url=pinpoint.endpoint_url))
    with pytest.raises(PreflightFailed) as caught:
        launch.create_import_job(
            client,
            ApplicationId=APP,
            ImportJobRequest=request(urls["bad"]),
            settings=AwsSettings(endpoint_url=env.endpoint_url),
        )
    report = caught.value.report.to_dict()
    assert report["JobStatus"] == "FAILED" and report["TotalFailures"] == 1
    assert report["ApplicationId"] == APP and report["Definition"]["S3Url"] == urls["bad"]
    assert pinpoint.requests == []


@moto_only
def test_library_rejects_a_bad_request_before_reading_s3(pinpoint: PinpointServer) -> None:
    with pytest.raises(UsageError, match="Format must be one of CSV, JSON"):
        launch.create_import_job(
            None, ApplicationId=APP, ImportJobRequest=request("s3://nowhere/p/", Format="XML")
        )
    assert pinpoint.requests == []


@moto_only
def test_library_dry_run_and_wait(
    pinpoint: PinpointServer, env: S3Server, urls: dict[str, str]
) -> None:
    client = launch.make_client(AwsSettings(endpoint_url=pinpoint.endpoint_url))
    settings = AwsSettings(endpoint_url=env.endpoint_url)
    assert launch.create_import_job(
        client,
        ApplicationId=APP,
        ImportJobRequest=request(urls["good"]),
        dry_run=True,
        settings=settings,
    ) == {"ApplicationId": APP, "ImportJobRequest": request(urls["good"])}
    assert pinpoint.requests == []

    fake = FakeTime()
    done = launch.create_import_job(
        client,
        ApplicationId=APP,
        ImportJobRequest=request(urls["good"]),
        wait=True,
        sleep=fake.sleep,
        clock=fake.clock,
        settings=settings,
    )
    assert done["ImportJobResponse"]["JobStatus"] == "COMPLETED"
    assert [r.method for r in pinpoint.requests] == ["POST", "GET", "GET", "GET"]
    assert fake.sleeps == [2, 4]

    pinpoint.statuses = ["CREATED", "FAILED"]
    with pytest.raises(launch.ImportJobFailed) as caught:
        launch.create_import_job(
            client,
            ApplicationId=APP,
            ImportJobRequest=request(urls["good"]),
            wait=True,
            sleep=fake.sleep,
            clock=fake.clock,
            settings=settings,
        )
    assert caught.value.exit_code == 1
    assert caught.value.response["ImportJobResponse"]["FailedPieces"] == 1


@moto_only
@pytest.mark.parametrize(
    ("answers", "kind", "says"),
    [
        (
            [error("BadRequestException", "Invalid S3Url")],
            ServiceError,
            "BadRequestException (HTTP 400): Invalid S3Url",
        ),
        (
            [error("TooManyRequestsException", "Too many requests")] * 2,
            ServiceError,
            "TooManyRequestsException (HTTP 429): Too many requests",
        ),
        (
            [error("UnrecognizedClientException", "The security token is invalid", 403)],
            ConfigError,
            "UnrecognizedClientException (HTTP 403)",
        ),
    ],
)
def test_translate_error_keeps_code_status_and_message(
    pinpoint: PinpointServer, answers: list[Any], kind: type[Exception], says: str
) -> None:
    client = launch.make_client(AwsSettings(endpoint_url=pinpoint.endpoint_url))
    pinpoint.answer_next(*answers)
    with pytest.raises(kind) as caught:
        launch.wait_for_job(client, ApplicationId=APP, JobId="job")
    assert says in str(caught.value)
    assert "2026-10-30" not in str(caught.value)


# --- the command, end to end -------------------------------------------------------------------


@moto_only
def test_command_launches_and_prints_the_import_job_response(
    pinpoint: PinpointServer, env: S3Server, urls: dict[str, str]
) -> None:
    result = run(
        "--application-id",
        APP,
        "--import-job-request",
        shorthand(urls["good"], ",DefineSegment=true,SegmentName=imported"),
        "--no-progress",
        s3=env,
        pinpoint=pinpoint,
    )
    assert result.returncode == 0, result.stderr
    [sent] = pinpoint.requests
    assert (sent.method, sent.path) == ("POST", f"/v1/apps/{APP}/jobs/import")
    assert sent.json == request(urls["good"], DefineSegment=True, SegmentName="imported")
    assert "/mobiletargeting/aws4_request" in sent.headers["Authorization"]
    printed = json.loads(result.stdout)["ImportJobResponse"]  # as the AWS CLI prints it
    assert printed == pinpoint.jobs[printed["Id"]]
    assert printed["JobStatus"] == "CREATED"


@moto_only
def test_command_sends_nothing_when_the_preflight_fails(
    pinpoint: PinpointServer, env: S3Server, urls: dict[str, str]
) -> None:
    result = run(
        "--application-id",
        APP,
        "--import-job-request",
        shorthand(urls["bad"]),
        "--no-progress",
        s3=env,
        pinpoint=pinpoint,
    )
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["JobStatus"] == "FAILED" and report["ApplicationId"] == APP
    assert report["Definition"]["RoleArn"] == ROLE
    assert "preflight failed" in one_line(result)
    assert pinpoint.requests == []


@moto_only
def test_dry_run_prints_the_request_and_sends_nothing(
    pinpoint: PinpointServer, env: S3Server, urls: dict[str, str]
) -> None:
    result = run(
        "--application-id",
        APP,
        "--import-job-request",
        shorthand(urls["good"]),
        "--dry-run",
        s3=env,
        pinpoint=pinpoint,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "ApplicationId": APP,
        "ImportJobRequest": request(urls["good"]),
    }
    assert "preflight passed: 3 endpoint records" in result.stderr
    assert pinpoint.requests == []
    failed = run(
        "--application-id",
        APP,
        "--import-job-request",
        shorthand(urls["bad"]),
        "--dry-run",
        s3=env,
        pinpoint=pinpoint,
    )
    assert failed.returncode == 1
    assert pinpoint.requests == []


@moto_only
def test_cli_input_files_and_command_line_overrides(
    pinpoint: PinpointServer, env: S3Server, urls: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "in.json").write_text(
        json.dumps({"ApplicationId": "from-file", "ImportJobRequest": request(urls["bad"])})
    )
    result = run(
        "--cli-input-json",
        "file://in.json",
        "--application-id",
        APP,
        "--import-job-request",
        shorthand(urls["good"]),
        "--no-progress",
        s3=env,
        pinpoint=pinpoint,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert pinpoint.requests[-1].path == f"/v1/apps/{APP}/jobs/import"
    assert pinpoint.requests[-1].json == request(urls["good"])

    (tmp_path / "in.yaml").write_text(
        yaml.safe_dump(
            {"ApplicationId": APP, "ImportJobRequest": request(urls["good"], Format="CSV")}
        )
    )
    result = run(
        "--cli-input-yaml",
        f"file://{tmp_path / 'in.yaml'}",
        "--no-progress",
        s3=env,
        pinpoint=pinpoint,
    )
    assert result.returncode == 0, result.stderr
    assert len(pinpoint.requests) == 2


@moto_only
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--import-job-request", "S3Url=s3://b/p/,Format"], "Format has no value"),
        (["--import-job-request", "=CSV"], "expected Key=Value"),
        (["--import-job-request", '{"S3Url": "s3://b/p/",'], "invalid JSON"),
        (["--import-job-request", "file://missing.json"], "cannot read file://missing.json"),
        (
            ["--import-job-request", f"S3Url=s3://b/p/,Format=XML,RoleArn={ROLE}"],
            "Format must be one of CSV, JSON, not 'XML'",
        ),
        (
            ["--import-job-request", "S3Url=s3://b/p/,Format=CSV,RoleArn=arn:aws:iam::1:role/x"],
            "RoleArn must be an IAM role ARN",
        ),
        (
            ["--import-job-request", f"S3Url=s3://b/p/,Format=CSV,RoleArn={ROLE},SegmentName=x"],
            "give DefineSegment=true with it",
        ),
        (
            ["--import-job-request", f"S3Url=s3://b/p/,Format=CSV,RoleArn={ROLE},Colour=red"],
            'Unknown parameter in ImportJobRequest: "Colour"',
        ),
        (["--cli-input-json", "file://missing.json"], "--cli-input-json: cannot read"),
        (["--cli-input-json", "{}", "--cli-input-yaml", "{}"], "not both"),
        (["--generate-cli-skeleton", "xml"], "takes input, yaml-input or output"),
        (["--import-job-request", shorthand("s3://b/p/"), "--output", "csv"], "--output must be"),
    ],
)
def test_usage_errors_exit_252(
    pinpoint: PinpointServer, args: list[str], says: str, tmp_path: Path
) -> None:
    result = run("--application-id", APP, *args, pinpoint=pinpoint, cwd=tmp_path)
    assert result.returncode == 252, result.stderr
    assert says in one_line(result)
    assert result.stdout == ""
    assert pinpoint.requests == []


@moto_only
def test_missing_application_id_exits_252(pinpoint: PinpointServer) -> None:
    result = run("--import-job-request", shorthand("s3://b/p/"), pinpoint=pinpoint)
    assert result.returncode == 252
    assert "--application-id is required" in one_line(result)


GONE = "end of support on 2026-10-30"


@moto_only
@pytest.mark.parametrize(
    ("answers", "says", "end_of_support"),
    [
        (
            [error("BadRequestException", "The S3 location is not valid")],
            "BadRequestException (HTTP 400): The S3 location is not valid",
            False,
        ),
        (
            [error("ForbiddenException", "Access denied")],
            "ForbiddenException (HTTP 403): Access denied",
            True,
        ),
        (
            [error("NotFoundException", "Resource not found")],
            "NotFoundException (HTTP 404): Resource not found",
            True,
        ),
        (
            [error("TooManyRequestsException", "Too many requests")] * 2,
            "TooManyRequestsException (HTTP 429): Too many requests",
            False,
        ),
        (
            [error("InternalServerErrorException", "Internal server error")] * 2,
            "InternalServerErrorException (HTTP 500): Internal server error",
            False,
        ),
        ([html(404, "Not Found")], "no Pinpoint error code (HTTP 404): Not Found", True),
        ([html(403, "Forbidden")], "no Pinpoint error code (HTTP 403): Forbidden", True),
        (
            [error("UnknownOperationException", "Unknown operation", 400)],
            "UnknownOperationException (HTTP 400): Unknown operation",
            True,
        ),
        ([html(200, "Welcome")], "is not an ImportJobResponse", True),
    ],
)
def test_service_errors_exit_254(
    pinpoint: PinpointServer,
    env: S3Server,
    urls: dict[str, str],
    answers: list[Any],
    says: str,
    end_of_support: bool,
) -> None:
    pinpoint.answer_next(*answers)
    result = run(
        "--application-id",
        APP,
        "--import-job-request",
        shorthand(urls["good"]),
        "--no-progress",
        s3=env,
        pinpoint=pinpoint,
    )
    assert result.returncode == 254, result.stderr
    line = one_line(result)
    assert says in line
    assert (GONE in line) == end_of_support
    assert result.stdout == ""
    assert len(pinpoint.requests) == len(answers)  # throttling and 500s: botocore's retries


@moto_only
def test_a_closed_port_exits_254_and_names_end_of_support(
    env: S3Server, urls: dict[str, str]
) -> None:
    port = closed_port()
    result = run(
        "--application-id",
        APP,
        "--import-job-request",
        shorthand(urls["good"]),
        "--no-progress",
        "--endpoint-url",
        f"http://127.0.0.1:{port}",
        s3=env,
    )
    assert result.returncode == 254
    line = one_line(result)
    assert f"127.0.0.1:{port}" in line and GONE in line


@moto_only
def test_aws_endpoint_url_pinpoint_is_honoured(
    pinpoint: PinpointServer, env: S3Server, urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_PINPOINT", pinpoint.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", env.endpoint_url)
    result = run(
        "--application-id",
        APP,
        "--import-job-request",
        shorthand(urls["good"]),
        "--no-progress",
        "--query",
        "ImportJobResponse.[JobStatus, Id]",
        "--output",
        "text",
    )
    assert result.returncode == 0, result.stderr
    [job_id] = pinpoint.jobs
    assert result.stdout.split() == ["CREATED", job_id]
    assert len(pinpoint.requests) == 1


@moto_only
def test_no_credentials_exits_253(
    pinpoint: PinpointServer, env: S3Server, urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = run(
        "--application-id",
        APP,
        "--import-job-request",
        shorthand(urls["good"]),
        "--no-progress",
        s3=env,
        pinpoint=pinpoint,
    )
    assert result.returncode == 253, result.stderr
    assert "credentials" in one_line(result)
    assert pinpoint.requests == []


@moto_only
def test_no_credentials_for_pinpoint_is_a_config_error(
    pinpoint: PinpointServer, env: S3Server, urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    client = launch.make_client(AwsSettings(endpoint_url=pinpoint.endpoint_url))
    with pytest.raises(ConfigError) as caught:  # the preflight reads S3 with its own keys
        launch.create_import_job(
            client,
            ApplicationId=APP,
            ImportJobRequest=request(urls["good"]),
            s3_client=env.client(),
        )
    assert caught.value.exit_code == 253
    assert "Unable to locate credentials" in str(caught.value)
    assert pinpoint.requests == []


@moto_only
def test_profiles(
    pinpoint: PinpointServer,
    env: S3Server,
    urls: dict[str, str],
    aws_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    (aws_env / "credentials").write_text(
        f"[launcher]\naws_access_key_id = {env.access_key}\n"
        f"aws_secret_access_key = {env.secret_key}\n"
    )
    result = run(
        "--application-id",
        APP,
        "--import-job-request",
        shorthand(urls["good"]),
        "--no-progress",
        "--profile",
        "launcher",
        s3=env,
        pinpoint=pinpoint,
    )
    assert result.returncode == 0, result.stderr
    unknown = run(
        "--application-id",
        APP,
        "--import-job-request",
        shorthand(urls["good"]),
        "--no-progress",
        "--profile",
        "nobody",
        s3=env,
        pinpoint=pinpoint,
    )
    assert unknown.returncode == 253
    assert "nobody" in one_line(unknown)


@moto_only
def test_skeletons_from_the_command(pinpoint: PinpointServer) -> None:
    bare = run("--generate-cli-skeleton")
    assert bare.returncode == 0, bare.stderr
    assert json.loads(bare.stdout) == json.loads(launch.skeleton("input"))
    assert run("--generate-cli-skeleton", "input").stdout == bare.stdout
    as_yaml = run("--generate-cli-skeleton", "yaml-input")
    assert yaml.safe_load(as_yaml.stdout) == json.loads(bare.stdout)
    output = run("--generate-cli-skeleton", "output")
    assert json.loads(output.stdout) == launch.output_skeleton()
    assert pinpoint.requests == []


# --- --wait through the command, in-process with a fast sleep ----------------------------------


@moto_only
@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        (["CREATED", "PROCESSING", "COMPLETED"], 0),
        (["CREATED", "PROCESSING", "FAILED"], 1),
    ],
)
def test_wait_exits_on_the_services_verdict(
    pinpoint: PinpointServer,
    env: S3Server,
    urls: dict[str, str],
    statuses: list[str],
    code: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pinpoint.statuses = statuses
    fake = FakeTime()
    monkeypatch.setattr(
        launch,
        "create_import_job",
        functools.partial(launch.create_import_job, sleep=fake.sleep, clock=fake.clock),
    )
    assert (
        cli.run(
            [
                "create-import-job",
                "--application-id",
                APP,
                "--import-job-request",
                shorthand(urls["good"]),
                "--wait",
                "--endpoint-url",
                pinpoint.endpoint_url,
                "--s3-endpoint-url",
                env.endpoint_url,
            ]
        )
        == code
    )
    out, err = capsys.readouterr()
    assert json.loads(out)["ImportJobResponse"]["JobStatus"] == statuses[-1]
    assert re.findall(r"^import job \w+: (\w+)", err, re.M) == statuses
    assert fake.sleeps == [2, 4]
    if code:
        assert "FAILED: 1 of 2 pieces failed" in err.splitlines()[-1]
