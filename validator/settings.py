"""How to reach AWS: the options every command takes, kept picklable so worker processes can
build their own clients from them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AwsSettings:
    """Endpoint, profile, region and signing, as the AWS CLI options of the same names.

    ``None`` means "as boto3 would decide": environment variables, config files, defaults.
    """

    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    no_sign_request: bool = False
