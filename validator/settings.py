"""How to reach AWS: the options every command takes, kept picklable so worker processes can
build their own clients from them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AwsSettings:
    """Endpoint, profile, region and signing, as the AWS CLI options of the same names.

    ``None`` means "as boto3 would decide": environment variables, config files, defaults.
    ``s3_client`` is a caller's own boto3 S3 client (``preflight(..., s3_client=)``), used in
    this process only: it is no part of equality and is never pickled (a worker builds its
    own client from the rest).
    """

    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    no_sign_request: bool = False
    s3_client: Any = field(default=None, compare=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "s3_client": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"s3_client": None, **state})


def with_client(settings: AwsSettings | None, s3_client: Any) -> AwsSettings | None:
    """``settings`` carrying the caller's own S3 client (``s3_client=`` of the public API)."""
    if s3_client is None:
        return settings
    return dataclasses.replace(settings or AwsSettings(), s3_client=s3_client)
