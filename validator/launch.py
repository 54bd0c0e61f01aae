"""Stage "launch": ``create-import-job`` after a passing preflight.

The request is read the way the AWS CLI reads it (shorthand, JSON, ``file://``,
``--cli-input-json``/``--cli-input-yaml``) and checked against botocore's own model of
Pinpoint (members, types, enums, required), plus the few rules the model cannot say
(``S3Url`` is an s3 URL, ``RoleArn`` names an IAM role, ``SegmentName`` goes with
``DefineSegment``). Then the preflight runs on ``S3Url``; only when it passes is
``CreateImportJob`` called, and with ``wait`` ``GetImportJob`` is polled until the job ends.

Every error a call can end in is translated in one place, :func:`translate_error`. Amazon
Pinpoint's engagement features, import jobs included, reached end of support on 2026-10-30:
an endpoint that no longer answers, or answers with something that is not Pinpoint, is said
to look like that, and the error keeps the code, HTTP status and message the service gave.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import botocore.exceptions as bce
import botocore.session
import yaml
from botocore.model import OperationModel, Shape, StructureShape
from botocore.parsers import ResponseParserError
from botocore.utils import ArgumentGenerator
from botocore.validate import ParamValidator

from validator import aws, s3
from validator.errors import (
    ConfigError,
    ImportJobFailed,
    PreflightError,
    PreflightFailed,
    ServiceError,
    UsageError,
)

__all__ = ["ImportJobFailed", "create_import_job", "skeleton", "wait_for_job"]
from validator.settings import AwsSettings

__all__ = [
    "END_OF_SUPPORT",
    "ImportJobFailed",
    "check_request",
    "create_import_job",
    "load_cli_input",
    "make_client",
    "output_skeleton",
    "parse_import_job_request",
    "parse_shorthand",
    "read_param_value",
    "skeleton",
    "translate_error",
    "wait_for_job",
]

END_OF_SUPPORT = "2026-10-30"
TERMINAL_STATUSES = ("COMPLETED", "FAILED")

_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
# Errors that mean the credentials themselves are wrong, whoever answers.
_CREDENTIAL_CODES = frozenset(aws.CREDENTIALS_REFUSED)  # the table shared with S3
_CONFIG_ERRORS = aws.CONFIG_ERRORS
_UNREACHABLE_ERRORS = (bce.ConnectionError, bce.HTTPClientError)


# --- the model -------------------------------------------------------------------------------


@cache
def _operation(name: str) -> OperationModel:
    return botocore.session.get_session().get_service_model("pinpoint").operation_model(name)


def _request_shape() -> StructureShape:
    shape = _operation("CreateImportJob").input_shape
    assert isinstance(shape, StructureShape)
    return shape


def _member(shape: Shape | None, name: str) -> StructureShape:
    assert isinstance(shape, StructureShape)
    member = shape.members[name]
    assert isinstance(member, StructureShape)
    return member


def _scalar(shape: Shape, value: Any, where: str) -> Any:
    """A shorthand value (always text) as the member's type, as the AWS CLI converts it."""
    if isinstance(value, list):
        raise UsageError(
            f"{where} takes one value, not {len(value)} separated by commas; quote "
            "the value or write a comma inside it as \\,"
        )
    kind = shape.type_name
    if kind == "boolean":
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise UsageError(f"{where} must be true or false, not {value!r}")
    if kind in ("integer", "long"):
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"{where} must be a whole number, not {value!r}") from None
    if kind in ("float", "double"):
        try:
            return float(value)
        except ValueError:
            raise UsageError(f"{where} must be a number, not {value!r}") from None
    return value


# --- reading the request ---------------------------------------------------------------------


def read_param_value(value: str, option: str) -> str:
    """The value itself, or the text of the file it names with ``file://``, as the AWS CLI."""
    if not value.startswith("file://"):
        return value
    path = os.path.expanduser(value[len("file://") :])
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{option}: cannot read {value}: {reason}") from exc


_SHORTHAND_KEY = re.compile(r"\s*([A-Za-z0-9_.#/:-]+)\s*=\s*")


def _shorthand_value(text: str, pos: int, option: str) -> tuple[str, int]:
    """One value from ``pos``: quoted, or bare up to the next unescaped comma."""
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos < len(text) and text[pos] in "'\"":
        quote, out, opened = text[pos], [], pos
        pos += 1
        while pos < len(text) and text[pos] != quote:
            if text[pos] == "\\" and pos + 1 < len(text) and text[pos + 1] in (quote, "\\"):
                pos += 1
            out.append(text[pos])
            pos += 1
        if pos >= len(text):
            raise UsageError(f"{option}: the quote at character {opened + 1} is never closed")
        pos += 1
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos < len(text) and text[pos] != ",":
            raise UsageError(
                f"{option}: expected ',' after the quoted value, found {text[pos : pos + 20]!r}"
            )
        return "".join(out), pos
    if pos < len(text) and text[pos] in "[{":
        raise UsageError(
            f"{option}: lists and nested structures are not members of this "
            "request; give Key=Value pairs"
        )
    out = []
    while pos < len(text) and text[pos] != ",":
        if text.startswith("\\,", pos):
            pos += 1
        out.append(text[pos])
        pos += 1
    return "".join(out).rstrip(), pos


def parse_shorthand(text: str, option: str = "--import-job-request") -> dict[str, Any]:
    """AWS CLI shorthand for a flat structure: ``Key=Value,Key=Value``.

    Values may be quoted with ``'`` or ``"``; ``\\,`` is a comma inside a bare value. A comma
    not followed by ``Key=`` continues the value as a list, as the AWS CLI reads it.
    """
    out: dict[str, Any] = {}
    pos = 0
    while True:
        match = _SHORTHAND_KEY.match(text, pos)
        if not match:
            found = text[pos : pos + 20] or "the end"
            raise UsageError(
                f"{option}: expected Key=Value at character {pos + 1}, found "
                f"{found!r}; the forms are Key=Value,Key=Value or JSON or file://PATH"
            )
        key, pos = match.group(1), match.end()
        if key in out:
            raise UsageError(f"{option}: {key} is given twice")
        values = []
        while True:
            value, pos = _shorthand_value(text, pos, option)
            values.append(value)
            if pos >= len(text) or _SHORTHAND_KEY.match(text, pos + 1):
                break
            pos += 1
        out[key] = values[0] if len(values) == 1 else values
        if pos >= len(text):
            return out
        pos += 1


def _parse_json(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{option}: invalid JSON: {exc}") from exc


def parse_import_job_request(value: str, option: str = "--import-job-request") -> dict[str, Any]:
    """``--import-job-request`` as the AWS CLI takes it: shorthand, JSON or ``file://PATH``."""
    text = read_param_value(value, option)
    shape = _member(_request_shape(), "ImportJobRequest")
    if text.lstrip().startswith(("{", "[")):
        parsed = _parse_json(text, option)
        if not isinstance(parsed, dict):
            raise UsageError(f"{option}: the JSON must be an object, not {type(parsed).__name__}")
        return parsed
    if not text.strip():
        raise UsageError(f"{option} is empty")
    parsed = parse_shorthand(text.strip(), option)
    for value in parsed.values():  # "S3Url=s3://b/,Format": a key that lost its "=VALUE"
        bare = (
            next((v for v in value[1:] if v in shape.members), None)
            if isinstance(value, list)
            else None
        )
        if bare:
            raise UsageError(f"{option}: {bare} has no value; write {bare}=VALUE")
    return {
        key: _scalar(shape.members[key], value, f"{option} {key}")
        if key in shape.members
        else value
        for key, value in parsed.items()
    }


def load_cli_input(value: str, *, yaml_input: bool = False) -> dict[str, Any]:
    """The parameters of ``--cli-input-json`` / ``--cli-input-yaml`` (a value or ``file://``)."""
    option = "--cli-input-yaml" if yaml_input else "--cli-input-json"
    text = read_param_value(value, option)
    if yaml_input:
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UsageError(f"{option}: invalid YAML: {' '.join(str(exc).split())}") from exc
    else:
        parsed = _parse_json(text, option)
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise UsageError(
            f"{option} must hold an object with ApplicationId and "
            f"ImportJobRequest, not {type(parsed).__name__}"
        )
    return parsed


# --- checking the request --------------------------------------------------------------------


def _enum_problems(shape: Shape, value: Any, where: str) -> list[str]:
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return [
            problem
            for name, member in shape.members.items()
            if name in value
            for problem in _enum_problems(member, value[name], f"{where}.{name}".lstrip("."))
        ]
    enum = getattr(shape, "enum", None)
    if enum and isinstance(value, str) and value not in enum:
        return [f"{where} must be one of {', '.join(enum)}, not {value!r}"]
    return []


def check_request(params: Mapping[str, Any]) -> None:
    """Check CreateImportJob's parameters; raise UsageError naming every problem on one line.

    Members, types, required members and enums come from botocore's model of Pinpoint.
    """
    shape = _request_shape()
    report = ParamValidator().validate(dict(params), shape)
    problems = [line for line in report.generate_report().splitlines() if line.strip()]
    problems += _enum_problems(shape, params, "")
    for name, member in shape.members.items():
        if member.serialization.get("location") == "uri" and params.get(name) == "":
            problems.append(f"{name} must not be empty")
    request = params.get("ImportJobRequest")
    if isinstance(request, dict):
        s3_url, role_arn = request.get("S3Url"), request.get("RoleArn")
        if isinstance(s3_url, str):
            try:
                s3.parse_url(s3_url)
            except UsageError as exc:
                problems.append(f"ImportJobRequest.S3Url {exc}")
        if isinstance(role_arn, str) and not _ROLE_ARN.fullmatch(role_arn):
            problems.append(
                "ImportJobRequest.RoleArn must be an IAM role ARN like "
                f"arn:aws:iam::123456789012:role/NAME, not {role_arn!r}"
            )
        if request.get("SegmentName") is not None and request.get("DefineSegment") is not True:
            problems.append(
                "ImportJobRequest.SegmentName names the segment that DefineSegment "
                "creates: give DefineSegment=true with it, or leave it out"
            )
    if problems:
        raise UsageError("; ".join(problems))


# --- skeletons -------------------------------------------------------------------------------


def _input_skeleton(shape: StructureShape) -> dict[str, Any]:
    """botocore's skeleton, with each enum's first value where botocore picks one at random."""
    skeleton: dict[str, Any] = ArgumentGenerator().generate_skeleton(shape)

    def pin(shape: StructureShape, skeleton: dict[str, Any]) -> None:
        for name, member in shape.members.items():
            if isinstance(member, StructureShape):
                pin(member, skeleton[name])
            elif getattr(member, "enum", None):
                skeleton[name] = member.enum[0]  # type: ignore[attr-defined]

    pin(shape, skeleton)
    return skeleton


def _overview(shape: Shape) -> str:
    """The first sentence of a member's documentation, as the AWS CLI puts it in comments."""
    text = html.unescape(re.sub(r"<[^>]+>", "", shape.documentation or ""))
    first = re.split(r"[.:]+", " ".join(text.split()), maxsplit=1)[0].strip()
    return first + "." if first else ""


def _yaml_lines(shape: StructureShape, value: Mapping[str, Any], indent: str) -> list[str]:
    lines = []
    for name, member in shape.members.items():
        comment = " ".join(
            part
            for part in (
                "[REQUIRED]" if name in shape.required_members else "",
                _overview(member),
                f"Valid values are: {', '.join(getattr(member, 'enum', []))}."
                if getattr(member, "enum", None)
                else "",
            )
            if part
        )
        comment = f"  # {comment}" if comment else ""
        if isinstance(member, StructureShape):
            lines.append(f"{indent}{name}:{comment}")
            lines += _yaml_lines(member, value[name], indent + "  ")
        else:
            scalar = yaml.safe_dump(value[name], default_flow_style=True).strip()
            scalar = scalar.removesuffix("\n...").removesuffix("...").strip()
            lines.append(f"{indent}{name}: {scalar}{comment}")
    return lines


def output_skeleton() -> dict[str, Any]:
    """What the command prints, ``{"ImportJobResponse": ...}`` as the AWS CLI prints it, each
    string holding its member name, as ``--generate-cli-skeleton output`` fills it."""
    shape = _operation("CreateImportJob").output_shape
    assert shape is not None
    skeleton: dict[str, Any] = ArgumentGenerator(use_member_names=True).generate_skeleton(shape)
    return skeleton


def skeleton(kind: str = "input") -> str:
    """``--generate-cli-skeleton`` as the AWS CLI prints it, from botocore's model.

    ``input``: JSON for ``--cli-input-json``; ``yaml-input``: commented YAML for
    ``--cli-input-yaml``; ``output``: JSON of :func:`output_skeleton`.
    """
    if kind == "input":
        return json.dumps(_input_skeleton(_request_shape()), indent=4)
    if kind == "yaml-input":
        shape = _request_shape()
        return "\n".join(_yaml_lines(shape, _input_skeleton(shape), ""))
    if kind == "output":
        return json.dumps(output_skeleton(), indent=4)
    raise UsageError(f"--generate-cli-skeleton takes input, yaml-input or output, not {kind!r}")


# --- calling Pinpoint ------------------------------------------------------------------------


def make_client(settings: AwsSettings | None = None) -> Any:
    """A boto3 Pinpoint client for these settings; ``AWS_ENDPOINT_URL_PINPOINT`` and the
    config files work as boto3 defines them."""
    try:
        return aws.make_client("pinpoint", settings)
    except (bce.BotoCoreError, ValueError) as exc:
        endpoint = settings.endpoint_url if settings is not None else None
        raise translate_error(exc, operation="CreateImportJob", endpoint=endpoint) from exc


def _end_of_support(endpoint: str | None) -> str:
    return (
        f"Amazon Pinpoint's engagement features, import jobs included, reached end of "
        f"support on {END_OF_SUPPORT}: if {endpoint or 'the endpoint'} no longer serves "
        "them, Amazon Connect (outbound campaigns, Customer Profiles) replaces them"
    )


def _one_line(text: object, limit: int = 300) -> str:
    """Text for one line of stderr: tags of an HTML page dropped, whitespace collapsed."""
    plain = html.unescape(re.sub(r"<(script|style).*?</\1>|<[^>]+>", " ", str(text), flags=re.S))
    return " ".join(plain.split())[:limit]


def translate_error(
    exc: Exception, *, operation: str, endpoint: str | None = None
) -> PreflightError:
    """The PreflightError for anything a Pinpoint call raised: one line that names the error
    code, HTTP status and message, and says when the answer looks like end of support."""
    if isinstance(exc, PreflightError):
        return exc
    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        code = str(error.get("Code") or "")
        status = meta.get("HTTPStatusCode")
        message = _one_line(error.get("Message") or "") or "(no message)"
        request_id = meta.get("RequestId")
        named = code if code and not code.isdigit() else "no Pinpoint error code"
        text = f"Pinpoint {operation} failed: {named} (HTTP {status}): {message}" + (
            f" [request {request_id}]" if request_id else ""
        )
        if code in _CREDENTIAL_CODES:
            return ConfigError(
                f"{text}; check the credentials (--profile, AWS_ACCESS_KEY_ID, AWS_SESSION_TOKEN)"
            )
        modeled = {shape.name for shape in _operation(operation).error_shapes}
        if code == "TooManyRequestsException" or status == 429:
            text += f"; still throttled after {meta.get('RetryAttempts', 0) + 1} attempts"
        elif code == "ForbiddenException":
            text += (
                f"; check that the credentials allow mobiletargeting:{operation}. "
                + _end_of_support(endpoint)
            )
        elif code == "NotFoundException":
            text += "; check --application-id. " + _end_of_support(endpoint)
        elif status in (403, 404, 405, 410) or code not in modeled:
            text += ": not an answer Pinpoint gives. " + _end_of_support(endpoint)
        elif isinstance(status, int) and status >= 500:
            text += "; the service had an internal error, try again later"
        return ServiceError(text, code=code or None, status=status, response=exc.response)
    if isinstance(exc, _CONFIG_ERRORS):
        hints: dict[type[Exception], str] = {
            bce.NoCredentialsError: "; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "give --profile, or run aws configure",
            bce.NoRegionError: "; give --region or set AWS_REGION",
        }
        hint = hints.get(type(exc), "")
        return ConfigError(f"{exc}{hint}")
    if isinstance(exc, _UNREACHABLE_ERRORS):
        return ServiceError(
            f"Pinpoint {operation}: no answer: {_one_line(exc)} " + _end_of_support(endpoint),
            code=type(exc).__name__,
        )
    if isinstance(exc, ResponseParserError):
        return ServiceError(
            f"Pinpoint {operation}: the answer is not Pinpoint's: "
            f"{_one_line(exc)}. " + _end_of_support(endpoint),
            code=type(exc).__name__,
        )
    if isinstance(exc, bce.ParamValidationError):
        return UsageError(" ".join(str(exc).split()))
    if isinstance(exc, ValueError) and "endpoint" in str(exc).lower():
        return UsageError(f"--endpoint-url: {exc}")
    return PreflightError(f"Pinpoint {operation}: {type(exc).__name__}: {exc}")


def _call(client: Any, operation: str, **params: Any) -> dict[str, Any]:
    """One Pinpoint call; the answer must carry an ImportJobResponse, as Pinpoint's does."""
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
    try:
        response: dict[str, Any] = getattr(client, botocore.xform_name(operation))(**params)
    except Exception as exc:
        raise translate_error(exc, operation=operation, endpoint=endpoint) from exc
    job = response.get("ImportJobResponse") or {}
    required = _member(_operation(operation).output_shape, "ImportJobResponse").required_members
    missing = [name for name in required if name not in job]
    if missing:
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        raise ServiceError(
            f"Pinpoint {operation}: the answer (HTTP {status}) is not an "
            f"ImportJobResponse, it lacks {', '.join(missing)}. " + _end_of_support(endpoint),
            status=status,
            response=response,
        )
    return response


def wait_for_job(
    client: Any,
    *,
    ApplicationId: str,
    JobId: str,
    timeout: float | None = None,
    delay: float = 2.0,
    max_delay: float = 30.0,
    on_progress: Callable[[dict[str, Any], float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll GetImportJob, the delay doubling up to ``max_delay``, until the job is COMPLETED or
    FAILED; return that GetImportJob response. ``on_progress(job, elapsed)`` sees every poll.

    After ``timeout`` seconds without an end, raise PreflightError (the job goes on).
    """
    start = clock()
    while True:
        response = _call(client, "GetImportJob", ApplicationId=ApplicationId, JobId=JobId)
        job = response["ImportJobResponse"]
        elapsed = clock() - start
        if on_progress is not None:
            on_progress(job, elapsed)
        if job["JobStatus"] in TERMINAL_STATUSES:
            return response
        if timeout is not None and elapsed >= timeout:
            raise PreflightError(
                f"import job {JobId} is still {job['JobStatus']} after {elapsed:.0f}s; it goes "
                f"on: aws pinpoint get-import-job --application-id {ApplicationId} "
                f"--job-id {JobId}"
            )
        sleep(delay if timeout is None else min(delay, max(timeout - elapsed, 0.0)))
        delay = min(max_delay, delay * 2)


def create_import_job(
    client: Any,
    *,
    ApplicationId: str,
    ImportJobRequest: Mapping[str, Any],
    dry_run: bool = False,
    wait: bool = False,
    wait_timeout: float | None = None,
    on_report: Callable[[Any], None] | None = None,
    on_progress: Callable[[dict[str, Any], float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    **preflight_options: Any,
) -> dict[str, Any]:
    """Check the request, run the preflight on ``S3Url``/``Format``, and only when it passes
    call CreateImportJob; return the service's response (``{"ImportJobResponse": ...}``).

    ``preflight_options`` go to :func:`validator.engine.preflight` (``settings`` for the S3
    reads, ``s3_client``, ``strict``, ``workers``, ``pieces``, ``piece_size``, ``progress``,
    ``failures_out``, and the gate's ``max_failures`` and ``max_failure_rate``).
    ``on_report`` sees the preflight's report. A failed preflight raises PreflightFailed.
    ``dry_run`` returns the request that would be sent, and sends nothing. ``wait`` polls the
    job (see :func:`wait_for_job`) and returns its last GetImportJob response, or raises
    ImportJobFailed when Pinpoint says FAILED.
    """
    request = dict(ImportJobRequest)
    params = {"ApplicationId": ApplicationId, "ImportJobRequest": request}
    check_request(params)
    from validator import engine

    report = engine.preflight(
        [request["S3Url"]],
        request["Format"],
        application_id=ApplicationId,
        definition=request,
        **preflight_options,
    )
    if on_report is not None:
        on_report(report)
    if not report.passed:  # within max_failures/max_failure_rate, Pinpoint imports the rest
        raise PreflightFailed(report)
    if dry_run:
        return params
    response = _call(client, "CreateImportJob", **params)
    if not wait:
        return response
    final = wait_for_job(
        client,
        ApplicationId=ApplicationId,
        JobId=response["ImportJobResponse"]["Id"],
        timeout=wait_timeout,
        on_progress=on_progress,
        sleep=sleep,
        clock=clock,
    )
    if final["ImportJobResponse"]["JobStatus"] == "FAILED":
        raise ImportJobFailed(final)
    return final
