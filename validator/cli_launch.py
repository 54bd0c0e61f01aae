"""``pinpoint-preflight create-import-job``: the typer command, thin over validator.launch.

It takes what ``aws pinpoint create-import-job`` takes, runs the preflight on ``S3Url``, and
only when it passes calls CreateImportJob. The main CLI registers it with
``app.command("create-import-job")(create_import_job_command)`` and maps the PreflightError
this raises to its exit code.
"""

from __future__ import annotations

from typing import Any

import typer

from validator import redact
from validator.cli_options import RunOptions, options_command
from validator.errors import ImportJobFailed, PreflightFailed, UsageError
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


@options_command(
    RunOptions,
    "skeleton_kind application_id import_job_request cli_input_json cli_input_yaml dry_run wait "
    "wait_timeout generate_cli_skeleton s3_endpoint_url output query failures_out strict "
    "workers progress endpoint_url profile region no_sign_request max_failures "
    "max_failure_rate quiet scheduler",
)
def create_import_job_command(
    run: RunOptions,
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
    endpoint_url: str | None = typer.Option(
        None, "--endpoint-url", help="The Pinpoint endpoint (AWS_ENDPOINT_URL_PINPOINT works)."
    ),
) -> None:
    """Check the import files at S3Url, then create the Pinpoint import job if they pass."""
    from validator import launch  # botocore and yaml: imported by this command only
    from validator.cli import checked, running

    if skeleton_kind is not None and not generate_cli_skeleton:
        raise UsageError(f"unexpected argument {skeleton_kind!r}")
    output, tolerance = checked(run)
    if generate_cli_skeleton:
        if skeleton_kind == "output":
            _echo(render(launch.output_skeleton(), output, run.query, TITLE))
        else:
            redact.echo(launch.skeleton(skeleton_kind or "input"))
        return
    params = _request(application_id, import_job_request, cli_input_json, cli_input_yaml)
    launch.check_request(params)  # before the client: a bad request is 252 whatever the profile
    client = (
        None
        if dry_run
        else launch.make_client(
            AwsSettings(endpoint_url=endpoint_url, profile=run.profile, region=run.region)
        )
    )
    quiet = run.quiet or run.progress is False  # the launch's lines are progress too
    s3 = AwsSettings(s3_endpoint_url, run.profile, run.region, run.no_sign_request)
    with running(run, s3) as (common, bar):

        def preflight_done(report: Any) -> None:
            if bar is not None:  # end the preflight's progress lines before the launch's
                bar.close()
            if not quiet and report.passed:
                _report_line(report)

        try:
            result = launch.create_import_job(
                client,
                ApplicationId=params["ApplicationId"],
                ImportJobRequest=params["ImportJobRequest"],
                dry_run=dry_run,
                wait=wait,
                wait_timeout=wait_timeout,
                on_report=preflight_done,
                on_progress=None if quiet else _progress_line,
                max_failures=tolerance.max_failures if tolerance else None,
                max_failure_rate=tolerance.max_failure_rate if tolerance else None,
                **common,
            )
        except PreflightFailed as exc:
            _echo(render(exc.report.to_dict(), output, run.query, TITLE))
            raise
        except ImportJobFailed as exc:
            _echo(render(_as_cli(exc.response), output, run.query, TITLE))
            raise
    _echo(render(result if dry_run else _as_cli(result), output, run.query, TITLE))


def _echo(text: str) -> None:
    if text:
        redact.echo(text)
