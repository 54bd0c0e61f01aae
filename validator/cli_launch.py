"""``pinpoint-preflight create-import-job``: the typer command, thin over validator.launch.

It takes what ``aws pinpoint create-import-job`` takes, runs the preflight on ``S3Url``, and
only when it passes calls CreateImportJob. The main CLI registers it with
``app.command("create-import-job")(create_import_job_command)`` and maps the PreflightError
this raises to its exit code.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import Any

import typer

from validator import redact
from validator.cluster import executor_for
from validator.errors import ImportJobFailed, PreflightFailed, UsageError
from validator.progress import Progress
from validator.render import RENDERERS
from validator.report import render
from validator.settings import AwsSettings

SKELETONS = ("input", "yaml-input", "output")
TITLE = "CreateImportJob"  # the table output's title, as the AWS CLI names the operation


def _as_cli(response: Any) -> dict[str, Any]:
    """The service's answer as ``aws pinpoint create-import-job`` prints it: the
    ImportJobResponse under its own name, without boto3's ResponseMetadata."""
    return {"ImportJobResponse": response["ImportJobResponse"]}


def _progress_line(job: dict[str, Any], elapsed: float) -> None:
    pieces = (
        f", pieces {job.get('CompletedPieces', 0)}/{job['TotalPieces']} done "
        f"({job.get('FailedPieces', 0)} failed)"
        if job.get("TotalPieces")
        else ""
    )
    counts = (
        f", {job['TotalProcessed']} endpoints processed, {job.get('TotalFailures', 0)} failed"
        if job.get("TotalProcessed") is not None
        else ""
    )
    redact.echo(
        f"import job {job['Id']}: {job['JobStatus']}{pieces}{counts} [{elapsed:.0f}s]", err=True
    )


def _report_line(report: Any) -> None:
    data = report.to_dict()
    if data["TotalFailures"]:
        redact.echo(
            f"preflight within tolerance: {data['TotalFailures']} of {data['TotalProcessed']} "
            f"endpoint records failed ({data['Gate']['Reason']}); Pinpoint will reject them",
            err=True,
        )
        return
    redact.echo(
        f"preflight passed: {data['TotalProcessed']} endpoint records in "
        f"{data['TotalPieces']} pieces, {data.get('TotalWarnings', 0)} warnings",
        err=True,
    )


def _request(
    application_id: str | None,
    import_job_request: str | None,
    cli_input_json: str | None,
    cli_input_yaml: str | None,
) -> dict[str, Any]:
    """CreateImportJob's parameters: the cli-input file, then the command line over it."""
    from validator import launch  # botocore and yaml: imported by this command only

    if cli_input_json is not None and cli_input_yaml is not None:
        raise UsageError("give --cli-input-json or --cli-input-yaml, not both")
    params: dict[str, Any] = {}
    if cli_input_json is not None:
        params = launch.load_cli_input(cli_input_json)
    elif cli_input_yaml is not None:
        params = launch.load_cli_input(cli_input_yaml, yaml_input=True)
    if application_id is not None:
        params["ApplicationId"] = application_id
    if import_job_request is not None:
        params["ImportJobRequest"] = launch.parse_import_job_request(import_job_request)
    for name, option in (
        ("ApplicationId", "--application-id"),
        ("ImportJobRequest", "--import-job-request"),
    ):
        if name not in params:
            raise UsageError(
                f"{option} is required (or {name} in --cli-input-json or --cli-input-yaml)"
            )
    return params


def create_import_job_command(
    skeleton_kind: str | None = typer.Argument(
        None,
        metavar="[input|yaml-input|output]",
        show_default=False,
        help="With --generate-cli-skeleton: which skeleton (default input).",
    ),
    application_id: str | None = typer.Option(
        None, "--application-id", help="The Pinpoint project (application) ID."
    ),
    import_job_request: str | None = typer.Option(
        None,
        "--import-job-request",
        help="S3Url=s3://bucket/prefix/,Format=CSV|JSON,RoleArn=ARN[,RegisterEndpoints=true]"
        "[,DefineSegment=true,SegmentName=NAME], or JSON, or file://PATH.",
    ),
    cli_input_json: str | None = typer.Option(
        None,
        "--cli-input-json",
        help="All parameters as JSON (or file://PATH); command-line values override it.",
    ),
    cli_input_yaml: str | None = typer.Option(
        None,
        "--cli-input-yaml",
        help="All parameters as YAML (or file://PATH); command-line values override it.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Run the preflight and print the request; send nothing."
    ),
    wait: bool = typer.Option(
        False, "--wait", help="Poll the job until COMPLETED (exit 0) or FAILED (exit 1)."
    ),
    wait_timeout: float | None = typer.Option(
        None,
        "--wait-timeout",
        metavar="SECONDS",
        help="With --wait: give up after this long (exit 255); the job goes on.",
    ),
    generate_cli_skeleton: bool = typer.Option(
        False,
        "--generate-cli-skeleton",
        help="Print a skeleton (input, yaml-input or output) and send nothing.",
    ),
    s3_endpoint_url: str | None = typer.Option(
        None, "--s3-endpoint-url", help="The S3 endpoint the preflight reads S3Url from."
    ),
    output: str | None = typer.Option(
        None,
        "--output",
        help=f"One of {', '.join(RENDERERS)}. Default: AWS_DEFAULT_OUTPUT, else the "
        "profile's output setting, else json.",
        show_default=False,
    ),
    query: str | None = typer.Option(None, "--query", help="A JMESPath query on the output."),
    failures_out: str | None = typer.Option(
        None, "--failures-out", metavar="PATH", help="Write every problem found, as JSON lines."
    ),
    strict: bool = typer.Option(False, "--strict", help="Warnings count as failures."),
    workers: int | None = typer.Option(None, "--workers", help="Pieces checked at once."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress on stderr (default: on a terminal)."
    ),
    endpoint_url: str | None = typer.Option(
        None, "--endpoint-url", help="The Pinpoint endpoint (AWS_ENDPOINT_URL_PINPOINT works)."
    ),
    profile: str | None = typer.Option(None, "--profile", help="The AWS profile."),
    region: str | None = typer.Option(None, "--region", help="The AWS region."),
    no_sign_request: bool = typer.Option(
        False, "--no-sign-request", help="Read S3Url without signing (a public bucket)."
    ),
    max_failures: int | None = typer.Option(
        None,
        "--max-failures",
        metavar="N",
        help="Launch when at most N records fail the preflight (Pinpoint skips them).",
    ),
    max_failure_rate: str | None = typer.Option(
        None,
        "--max-failure-rate",
        metavar="R",
        help="Launch when at most this share of records fails: 0.01 or 1%.",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Nothing on stderr but errors (no progress, no notes)."
    ),
    scheduler: str | None = typer.Option(
        None,
        "--scheduler",
        help="Run the preflight on a Dask cluster (tcp://host:8786, or local); "
        "default: $DASK_SCHEDULER_ADDRESS, else local processes.",
    ),
) -> None:
    """Check the import files at S3Url, then create the Pinpoint import job if they pass."""
    from validator import launch  # botocore and yaml: imported by this command only

    if skeleton_kind is not None and not generate_cli_skeleton:
        raise UsageError(f"unexpected argument {skeleton_kind!r}")
    from validator.cli import _check_output, _tolerance

    output = _check_output(output, query, profile)
    if generate_cli_skeleton:
        if skeleton_kind == "output":
            _echo(render(launch.output_skeleton(), output, query, TITLE))
        else:
            redact.echo(launch.skeleton(skeleton_kind or "input"))
        return
    tolerance = _tolerance(max_failures, max_failure_rate)
    params = _request(application_id, import_job_request, cli_input_json, cli_input_yaml)
    launch.check_request(params)  # before the client: a bad request is 252 whatever the profile
    client = (
        None
        if dry_run
        else launch.make_client(
            AwsSettings(endpoint_url=endpoint_url, profile=profile, region=region)
        )
    )
    quiet = quiet or progress is False
    wanted = False if quiet else progress
    bar = Progress() if (sys.stderr.isatty() if wanted is None else wanted) else None

    stack = ExitStack()

    def preflight_done(report: Any) -> None:
        nonlocal bar
        if bar is not None:  # end the preflight's progress line before the launch's lines
            bar.close()
            bar = None
        if not quiet and report.passed:
            _report_line(report)

    try:
        executor = stack.enter_context(executor_for(scheduler, workers))
        result = launch.create_import_job(
            client,
            ApplicationId=params["ApplicationId"],
            ImportJobRequest=params["ImportJobRequest"],
            dry_run=dry_run,
            wait=wait,
            wait_timeout=wait_timeout,
            on_report=preflight_done,
            on_progress=None if quiet else _progress_line,
            settings=AwsSettings(
                endpoint_url=s3_endpoint_url,
                profile=profile,
                region=region,
                no_sign_request=no_sign_request,
            ),
            strict=strict,
            workers=workers,
            failures_out=failures_out,
            progress=bar.update if bar else None,
            max_failures=tolerance.max_failures if tolerance else None,
            max_failure_rate=tolerance.max_failure_rate if tolerance else None,
            executor=executor,
        )
    except PreflightFailed as exc:
        _echo(render(exc.report.to_dict(), output, query, TITLE))
        raise
    except ImportJobFailed as exc:
        _echo(render(_as_cli(exc.response), output, query, TITLE))
        raise
    finally:
        stack.close()
        if bar is not None:
            bar.close()
    _echo(render(result if dry_run else _as_cli(result), output, query, TITLE))


def _echo(text: str) -> None:
    if text:
        redact.echo(text)
