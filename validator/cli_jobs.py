"""``get-import-job`` and ``create-import-jobs`` (every job folder of a split's manifest, at
most 2 import jobs at once): typer commands, thin over validator.launch_split."""

from __future__ import annotations

import sys
from typing import Any

import typer

from validator.cli_options import Output, Profile, Query, Quiet, Region
from validator.errors import UsageError
from validator.settings import AwsSettings

# Pinpoint's quota of concurrent import jobs per account (launch_split holds the same number; it
# is not imported here so that no command pays for botocore but the ones that call Pinpoint).
MAX_CONCURRENT_IMPORT_JOBS = 2


def _show(data: Any, output: str | None, query: str | None, profile: str | None, title: str) -> str:
    from validator.cli import _check_output, _print

    name = _check_output(output, query, profile)
    _print(data, name, query, title)
    return name


def get_import_job_command(
    application_id: str = typer.Option(
        ..., "--application-id", help="The Pinpoint project (application) ID.", show_default=False
    ),
    job_id: str = typer.Option(..., "--job-id", help="The import job's ID.", show_default=False),
    output: Output = None,
    query: Query = None,
    endpoint_url: str | None = typer.Option(
        None, "--endpoint-url", help="The Pinpoint endpoint (AWS_ENDPOINT_URL_PINPOINT works)."
    ),
    profile: Profile = None,
    region: Region = None,
) -> None:
    """Print an import job's status, as aws pinpoint get-import-job does."""
    from validator import launch, launch_split  # botocore: for these commands only
    from validator.cli import _check_output

    _check_output(output, query, profile)
    client = launch.make_client(
        AwsSettings(endpoint_url=endpoint_url, profile=profile, region=region)
    )
    answer = launch_split.get_import_job(client, ApplicationId=application_id, JobId=job_id)
    _show(answer, output, query, profile, "GetImportJob")


def create_import_jobs_command(
    application_id: str = typer.Option(
        ..., "--application-id", help="The Pinpoint project (application) ID.", show_default=False
    ),
    manifest: str = typer.Option(
        ...,
        "--manifest",
        help="A split's destination (s3://bucket/prefix/) or its manifest.txt.",
        show_default=False,
    ),
    import_job_request: str = typer.Option(
        ...,
        "--import-job-request",
        help="What every job shares: RoleArn=ARN[,RegisterEndpoints=true][,DefineSegment=..."
        "], as shorthand, JSON or file://PATH; S3Url and Format come from the manifest.",
        show_default=False,
    ),
    max_concurrent: int = typer.Option(
        MAX_CONCURRENT_IMPORT_JOBS,
        "--max-concurrent",
        help="Import jobs running at once (Pinpoint's quota is 2 per account).",
    ),
    poll_interval: float = typer.Option(
        5.0, "--poll-interval", metavar="SECONDS", help="Seconds between GetImportJob polls."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the requests; send nothing."),
    output: Output = None,
    query: Query = None,
    endpoint_url: str | None = typer.Option(
        None, "--endpoint-url", help="The Pinpoint endpoint (AWS_ENDPOINT_URL_PINPOINT works)."
    ),
    s3_endpoint_url: str | None = typer.Option(
        None, "--s3-endpoint-url", help="The S3 endpoint to read the manifest from."
    ),
    profile: Profile = None,
    region: Region = None,
    quiet: Quiet = False,
) -> None:
    """Create an import job for every job folder of a split, in order, at most 2 at once,
    waiting as it goes. Exit 0 when every job COMPLETED, 1 when one FAILED."""
    from validator import launch, launch_split  # botocore: for these commands only
    from validator.cli import _check_output

    _check_output(output, query, profile)
    if max_concurrent < 1:
        raise UsageError("--max-concurrent must be at least 1")
    if poll_interval < 0:
        raise UsageError("--poll-interval must be 0 or more")
    template = launch.parse_import_job_request(import_job_request)
    found = launch_split.read_manifest(
        manifest,
        settings=AwsSettings(endpoint_url=s3_endpoint_url, profile=profile, region=region),
    )
    client = (
        None
        if dry_run
        else launch.make_client(
            AwsSettings(endpoint_url=endpoint_url, profile=profile, region=region)
        )
    )

    def progress(job: dict[str, Any], elapsed: float) -> None:
        if not quiet:
            typer.echo(
                f"import job {job['Id']} ({job.get('Definition', {}).get('S3Url')}): "
                f"{job['JobStatus']} [{elapsed:.0f}s]",
                err=True,
            )

    result = launch_split.launch_manifest(
        client,
        ApplicationId=application_id,
        manifest=found,
        ImportJobRequest=template,
        max_concurrent=max_concurrent,
        poll_interval=poll_interval,
        dry_run=dry_run,
        on_progress=progress,
    )
    _show(result, output, query, profile, "CreateImportJobs")
    failed = launch_split.failed_jobs(result)
    if failed:
        raise typer.Exit(1)
    sys.stdout.flush()
