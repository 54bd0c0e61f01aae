"""AWS, for every service the tool calls (S3 for sources and outputs, Pinpoint for the import
job): one client factory from the run's :class:`~validator.settings.AwsSettings`, and one table
of what botocore's errors mean. Each caller words its own messages from the table
(``validator.s3.translate``, ``validator.launch.translate_error``).
"""

from __future__ import annotations

import os
from typing import Any

try:
    import boto3
    import botocore.exceptions as bx
    from botocore import UNSIGNED
    from botocore.config import Config
except ImportError as _missing:  # pragma: no cover - both are dependencies of the package
    raise ImportError(f"AWS needs boto3: pip install boto3 ({_missing})") from _missing

from validator import redact
from validator.settings import AwsSettings

__all__ = [
    "CONFIG_ERRORS",
    "CREDENTIALS_REFUSED",
    "THROTTLED",
    "botocore_cause",
    "error_code",
    "http_status",
    "make_client",
]

USER_AGENT = "pinpoint-preflight"

# --- the table -------------------------------------------------------------------------------

# The user's AWS configuration is at fault (253): credentials, profile, region, config files.
CONFIG_ERRORS: tuple[type[Exception], ...] = (
    bx.NoCredentialsError,
    bx.PartialCredentialsError,
    bx.CredentialRetrievalError,
    bx.ProfileNotFound,
    bx.ConfigNotFound,
    bx.ConfigParseError,
    bx.NoRegionError,
    bx.InvalidRegionError,
    bx.UnknownEndpointError,
    bx.TokenRetrievalError,
    bx.SSOError,
    bx.UnknownCredentialError,
    bx.InvalidConfigError,
    bx.InvalidRetryConfigurationError,
    bx.MetadataRetrievalError,
)
# Error codes that mean the credentials themselves are wrong, whichever service answers; what
# each one says, ``{service}`` standing for the service's name.
CREDENTIALS_REFUSED = {
    "InvalidAccessKeyId": "{service} does not know the access key in use",
    "InvalidClientTokenId": "{service} does not know the access key in use",
    "UnrecognizedClientException": "{service} does not know the credentials in use",
    "SignatureDoesNotMatch": "{service} refused the request signature: the secret key does "
    "not match the access key",
    "InvalidSignatureException": "{service} refused the request signature: the secret key "
    "does not match the access key",
    "ExpiredToken": "the session token in use has expired",
    "ExpiredTokenException": "the session token in use has expired",
    "TokenRefreshRequired": "the session token in use has expired",
    "InvalidToken": "the session token in use is not valid",
    "InvalidSecurity": "{service} refused the security credentials in use",
}
# Error codes of a service asking for fewer requests (a retry later may succeed).
THROTTLED = (
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestThrottled",
    "ServiceUnavailable",
    "503",
)


def error_code(exc: bx.ClientError) -> str:
    """The service's error code in a ``ClientError`` (``""`` when it gave none)."""
    return str(exc.response.get("Error", {}).get("Code", "") or "")


def http_status(exc: bx.ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def botocore_cause(exc: BaseException) -> BaseException:
    """The botocore error inside ``exc``: itself, smart-open's ``backend_error``, or a cause."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (bx.BotoCoreError, bx.ClientError)):
            return current
        backend = getattr(current, "backend_error", None)  # smart_open.s3._get's wrapping
        if isinstance(backend, BaseException):
            return backend
        current = current.__cause__ or current.__context__
    return exc


# --- the client factory ----------------------------------------------------------------------


def make_client(
    service: str,
    settings: AwsSettings | None = None,
    *,
    standard_retries: bool = False,
    **config: Any,
) -> Any:
    """A boto3 client for ``service`` as the AWS CLI would build it from these settings:
    profile, region and endpoint fall back to the environment and config files as in boto3
    (``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL_<SERVICE>``, ...); the credentials it
    finds are registered with :mod:`validator.redact`, never printed.

    ``standard_retries``: botocore's ``standard`` retry mode unless the user configured
    another (``AWS_RETRY_MODE``, ``retry_mode``). ``config``: more ``botocore.config.Config``
    options. botocore's errors come out as they are: the caller translates them.
    """
    settings = settings or AwsSettings()
    redact.register_url(settings.endpoint_url)
    session = boto3.session.Session(profile_name=settings.profile)
    redact.register_session(session)
    options: dict[str, Any] = {"user_agent_extra": USER_AGENT, **config}
    if standard_retries:
        options["retries"] = {**options.get("retries", {}), "mode": _retry_mode(session)}
    if settings.no_sign_request:
        options["signature_version"] = UNSIGNED
    return session.client(  # type: ignore[call-overload]
        service,
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        config=Config(**options),
    )


def _retry_mode(session: boto3.session.Session) -> str:
    """The user's retry mode (variable, then profile), else ``standard``; botocore's own
    default is ``legacy``, which cannot be told apart from a choice once it has resolved."""
    configured = os.environ.get("AWS_RETRY_MODE")
    if not configured:
        configured = session._session.get_scoped_config().get("retry_mode")  # the profile's
    return str(configured or "standard")
