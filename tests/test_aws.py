"""aws.py: the one client factory (S3 and Pinpoint alike) and the one botocore-error table
both services' messages are worded from."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import botocore.exceptions as bx
import pytest

from validator import aws, launch, s3
from validator.errors import ConfigError, SourceError
from validator.settings import AwsSettings, with_client


def _error(code: str, status: int) -> bx.ClientError:
    response: Any = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {}}
    response["ResponseMetadata"]["HTTPStatusCode"] = status
    return bx.ClientError(response, "GetObject")


@pytest.mark.parametrize("service", ["s3", "pinpoint"])
def test_one_factory_for_every_service(aws_env: Path, service: str) -> None:
    settings = AwsSettings(
        endpoint_url="http://127.0.0.1:9", region="eu-west-1", no_sign_request=True
    )
    client = aws.make_client(service, settings)
    assert client.meta.service_model.service_name == service
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "eu-west-1"
    assert "pinpoint-preflight" in client.meta.config.user_agent_extra
    assert client.meta.config.signature_version is not None  # unsigned


def test_standard_retries_unless_the_user_chose(aws_env: Path, monkeypatch: Any) -> None:
    settings = AwsSettings(region="us-east-1")
    assert s3.make_client(settings).meta.config.retries["mode"] == "standard"
    monkeypatch.setenv("AWS_RETRY_MODE", "adaptive")
    assert s3.make_client(settings).meta.config.retries["mode"] == "adaptive"
    (aws_env / "config").write_text("[profile p]\nretry_mode = legacy\n")
    monkeypatch.delenv("AWS_RETRY_MODE")
    profiled = AwsSettings(region="us-east-1", profile="p")
    assert s3.make_client(profiled).meta.config.retries["mode"] == "legacy"


@pytest.mark.parametrize("code", sorted(aws.CREDENTIALS_REFUSED))
def test_a_refused_credential_reads_the_same_for_s3_and_pinpoint(code: str) -> None:
    from_s3 = s3.translate(_error(code, 403), "b", "k.csv")
    assert isinstance(from_s3, SourceError)
    assert f"({code})" in str(from_s3)
    assert "{service}" not in str(from_s3)
    from_pinpoint = launch.translate_error(_error(code, 403), operation="CreateImportJob")
    assert isinstance(from_pinpoint, ConfigError)  # fix the credentials, not the request
    assert "check the credentials" in str(from_pinpoint)


def test_the_botocore_cause_is_found_inside_a_chain() -> None:
    inner = _error("SlowDown", 503)
    try:
        try:
            raise inner
        except bx.ClientError as exc:
            raise OSError("stream broke") from exc
    except OSError as outer:
        assert aws.botocore_cause(outer) is inner
    assert aws.error_code(inner) == "SlowDown"
    assert aws.http_status(inner) == 503
    assert "SlowDown" in aws.THROTTLED


def test_settings_carry_a_callers_client_in_this_process_only() -> None:
    client = object()
    settings = with_client(AwsSettings(region="eu-west-1"), client)
    assert settings is not None and settings.s3_client is client
    assert settings == AwsSettings(region="eu-west-1")  # no part of equality
    copied = pickle.loads(pickle.dumps(settings))
    assert copied.s3_client is None and copied.region == "eu-west-1"
    assert with_client(None, None) is None
