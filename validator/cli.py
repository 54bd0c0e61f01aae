"""The command line: typer parses, the library does the work, this module prints.

Every exception the library raises on purpose is a PreflightError whose ``exit_code`` says how
the process ends; ``main`` is the one place that turns them into exit codes and one-line
messages. No traceback reaches the user unless PINPOINT_PREFLIGHT_DEBUG is set.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from validator import engine
from validator.cluster import executor_for
from validator.errors import OptionError, PreflightError, UsageError, from_os_error
from validator.progress import Progress
from validator.report import compile_query, render
from validator.settings import AwsSettings
from validator.source import format_note, normalize_format

# typer 0.2x carries its own copy of click and no longer depends on click; older typer raises
# click's own exceptions. Catch whichever this typer raises, without importing click.
try:
    from typer._click import exceptions as _click_exceptions
except ImportError:  # pragma: no cover - typer before it vendored click
    from click import exceptions as _click_exceptions  # type: ignore[no-redef]

ClickUsage = _click_exceptions.UsageError

app = typer.Typer(
    name="pinpoint-preflight",
    help="Check Amazon Pinpoint endpoint-import files before create-import-job, split them into "
    "pieces that fit its limits, and launch the import only when they pass.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

Sources = Annotated[
    list[str],
    typer.Argument(
        help="Files, folders (read recursively), - for standard input, or s3://bucket/prefix.",
        show_default=False,
    ),
]
Format = Annotated[
    str | None,
    typer.Option(
        "--format", help="CSV or JSON (newline-delimited). Default: from the file extensions."
    ),
]
Output = Annotated[str, typer.Option("--output", help="json, yaml, text or table.")]
Query = Annotated[str | None, typer.Option("--query", help="A JMESPath query on the report.")]
FailuresOut = Annotated[
    str | None,
    typer.Option(
        "--failures-out", help="Write every problem, one JSON object per line, to this file."
    ),
]
Strict = Annotated[bool, typer.Option("--strict", help="Warnings count as failures.")]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers", help="Pieces checked at once, in separate processes. Default: the cores."
    ),
]
ShowProgress = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress", help="A progress line on stderr. Default: on a terminal."
    ),
]
EndpointUrl = Annotated[
    str | None,
    typer.Option("--endpoint-url", help="The S3 endpoint to read from (e.g. a local S3 server)."),
]
Profile = Annotated[str | None, typer.Option("--profile", help="The AWS profile to use.")]
Region = Annotated[str | None, typer.Option("--region", help="The AWS region.")]
NoSign = Annotated[
    bool, typer.Option("--no-sign-request", help="Read public S3 data without credentials.")
]
Pieces = Annotated[
    int | None, typer.Option("--pieces", help="Cut the job into about this many pieces.")
]
PieceSize = Annotated[
    str | None,
    typer.Option(
        "--piece-size", help="Cut files into pieces of about this size (e.g. 64MiB). Default 64MiB."
    ),
]
Scheduler = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Check the pieces on a Dask cluster: its scheduler (tcp://host:8786), or 'local' "
        "for a LocalCluster on this machine. Default: $DASK_SCHEDULER_ADDRESS, else local "
        "processes. Needs pip install 'pinpoint-preflight[dask]'.",
        show_default=False,
    ),
]
MaxJobSize = Annotated[
    str, typer.Option("--max-job-size", help="The most one import job may hold (Pinpoint: 1 GB).")
]
RepairFlag = Annotated[
    bool,
    typer.Option(
        "--repair",
        help="Fix what has exactly one right answer (schemas/repairs.json), then check again.",
    ),
]
DefaultCountry = Annotated[
    str | None,
    typer.Option(
        "--default-country",
        help="With --repair: the country (ISO alpha-2, e.g. US) of phone numbers written "
        "without a country code.",
    ),
]
RepairsOut = Annotated[
    str | None,
    typer.Option(
        "--repairs-out", help="With --repair: write every change, one JSON object per line."
    ),
]


def _repair_options(
    repair: bool, default_country: str | None, repairs_out: str | None, strict: bool
) -> Any:
    """The checked repair options, or None without --repair."""
    if not repair:
        for name, value in (("--default-country", default_country), ("--repairs-out", repairs_out)):
            if value is not None:
                raise UsageError(f"{name} goes with --repair")
        return None
    from validator.repair import RepairOptions

    return RepairOptions.build(default_country, strict=strict)


def _print(data: Any, output: str, query: str | None) -> None:
    typer.echo(render(data, output, query))


def _check_output(output: str, query: str | None = None, format: str | None = None) -> None:
    """Check the printing options before any work is done; say how an alias of --format is
    read (``--format ndjson`` is JSON), never silently."""
    if output not in ("json", "yaml", "text", "table"):
        raise UsageError(f"--output must be json, yaml, text or table, not {output!r}")
    compile_query(query)
    normalize_format(format)
    note = format_note(format)
    if note:
        typer.echo(f"pinpoint-preflight: note: {note}", err=True)


@app.command()
def validate(
    sources: Sources,
    format: Format = None,
    output: Output = "json",
    query: Query = None,
    failures_out: FailuresOut = None,
    strict: Strict = False,
    workers: Workers = None,
    progress: ShowProgress = None,
    endpoint_url: EndpointUrl = None,
    profile: Profile = None,
    region: Region = None,
    no_sign_request: NoSign = False,
    pieces: Pieces = None,
    piece_size: PieceSize = None,
    max_job_size: MaxJobSize = "1GB",
    scheduler: Scheduler = None,
    repair: RepairFlag = False,
    default_country: DefaultCountry = None,
    repairs_out: RepairsOut = None,
) -> None:
    """Check the sources and print the report. Exit 0 when every record passes, 1 if not.
    With --repair, the report is the verdict after repair and says what would change; nothing
    is written but --failures-out and --repairs-out."""
    _check_output(output, query, format)
    if pieces is not None and piece_size is not None:
        raise UsageError("give --pieces or --piece-size, not both")
    repair_options = _repair_options(repair, default_country, repairs_out, strict)
    settings = AwsSettings(endpoint_url, profile, region, no_sign_request)
    with executor_for(scheduler, workers) as executor, Progress.maybe(progress) as bar:
        report = engine.preflight(
            sources,
            format,
            pieces=pieces,
            piece_size=piece_size,
            strict=strict,
            workers=workers,
            settings=settings,
            failures_out=failures_out,
            max_job_size=max_job_size,
            progress=bar.update if bar else None,
            executor=executor,
            repair=repair_options,
            repairs_out=repairs_out,
        )
    _print(report.to_dict(), output, query)
    raise typer.Exit(0 if report.job_status == "COMPLETED" else 1)


@app.command()
def split(
    sources: Sources,
    to: Annotated[
        str, typer.Option("--to", help="Folder or s3:// prefix for the pieces.", show_default=False)
    ],
    format: Format = None,
    pieces: Pieces = None,
    piece_size: PieceSize = None,
    max_job_size: MaxJobSize = "1GB",
    valid_only: Annotated[
        bool,
        typer.Option(
            "--valid-only", help="Pieces hold only records that passed; the rest go to --rejects."
        ),
    ] = False,
    rejects: Annotated[
        str | None,
        typer.Option(
            "--rejects", help="File (or s3:// URL) for the failed records, with --valid-only."
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier split at --to.")
    ] = False,
    output: Output = "json",
    query: Query = None,
    failures_out: FailuresOut = None,
    strict: Strict = False,
    workers: Workers = None,
    progress: ShowProgress = None,
    endpoint_url: EndpointUrl = None,
    profile: Profile = None,
    region: Region = None,
    no_sign_request: NoSign = False,
    scheduler: Scheduler = None,
    repair: RepairFlag = False,
    default_country: DefaultCountry = None,
    repairs_out: RepairsOut = None,
) -> None:
    """Check the sources as validate does, and write them out in pieces grouped into job
    folders that each fit one import job, with a manifest. Exit codes as validate. With
    --repair, repaired records are written repaired; every other record byte for byte."""
    _check_output(output, query, format)
    if pieces is not None and piece_size is not None:
        raise UsageError("give --pieces or --piece-size, not both")
    repair_options = _repair_options(repair, default_country, repairs_out, strict)
    from validator.write import split as run_split

    settings = AwsSettings(endpoint_url, profile, region, no_sign_request)
    with executor_for(scheduler, workers) as executor, Progress.maybe(progress) as bar:
        result = run_split(
            sources,
            to,
            format,
            pieces=pieces,
            piece_size=piece_size,
            max_job_size=max_job_size,
            valid_only=valid_only,
            rejects=rejects,
            overwrite=overwrite,
            strict=strict,
            workers=workers,
            settings=settings,
            failures_out=failures_out,
            progress=bar.update if bar else None,
            executor=executor,
            repair=repair_options,
            repairs_out=repairs_out,
        )
    _print(result.to_dict(), output, query)
    raise typer.Exit(0 if result.job_status == "COMPLETED" else 1)


def _register_optional_commands() -> None:
    try:
        from validator.cli_launch import create_import_job_command
    except ImportError:  # pragma: no cover - during development only
        return
    app.command("create-import-job", context_settings={"ignore_unknown_options": False})(
        create_import_job_command
    )


_register_optional_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``pinpoint-preflight`` and ``python -m validator``."""
    code = run(argv)
    sys.exit(code)


def run(argv: list[str] | None = None) -> int:
    """Run the command line and return the exit code (tests call this in-process)."""
    try:
        rv = app(args=argv, prog_name="pinpoint-preflight", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except ClickUsage as exc:
        ctx = getattr(exc, "ctx", None)
        _error(getattr(exc, "format_message", exc.__str__)(), ctx.command_path if ctx else None)
        return UsageError.exit_code
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0))
    except (typer.Abort, KeyboardInterrupt):
        _error("interrupted")
        return 130
    except PreflightError as exc:
        message = exc.for_cli() if isinstance(exc, OptionError) else str(exc)
        if message:
            _error(message)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except OSError as exc:  # the local system refused a path the library did not name
        mapped = from_os_error(exc)
        _error(str(mapped))
        return mapped.exit_code
    except Exception as exc:
        if os.environ.get("PINPOINT_PREFLIGHT_DEBUG"):
            raise
        _error(
            f"unexpected error: {type(exc).__name__}: {exc} (set PINPOINT_PREFLIGHT_DEBUG=1 "
            "for a traceback, and please report it)"
        )
        return 255


def _error(message: str, command: str | None = None) -> None:
    prefix = command or "pinpoint-preflight"
    typer.echo(f"{prefix}: error: {message}", err=True)
