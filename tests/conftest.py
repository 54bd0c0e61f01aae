"""Shared fixtures. Each part keeps to its own section; server code lives in its own module."""

from __future__ import annotations

import os
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
