"""The command line's options, each defined once, and the commands that share them.

A typer option is an ``Annotated`` alias here (its flag, help, default). :class:`RunOptions`
holds the options of every command that runs a preflight (validate, split, create-import-job);
:class:`JobOptions` adds those of the commands that read SOURCE arguments (validate, split).
:func:`options_command` makes ``command(opts, **own)`` a typer command taking a dataclass's
fields as options beside its own parameters. What the commands then do with them (check them
before any work, the executor, the progress display) is ``validator.cli``'s, in one place.

This module imports nothing of the tool's own but the renderers' names: ``validator.cli_launch``
imports it at its own import, which ``validator.cli`` does while it is itself being imported.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from typing import Annotated, Any, get_type_hints

import typer

from validator.render import RENDERERS

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
Output = Annotated[
    str | None,
    typer.Option(
        "--output",
        help=f"One of {', '.join(RENDERERS)}. Default: AWS_DEFAULT_OUTPUT, else the profile's "
        "output setting, else json.",
        show_default=False,
    ),
]
MaxFailures = Annotated[
    int | None,
    typer.Option(
        "--max-failures",
        metavar="N",
        help="The gate passes (exit 0; create-import-job launches, Pinpoint skipping them) "
        "with at most N failed records. Default: none.",
    ),
]
MaxFailureRate = Annotated[
    str | None,
    typer.Option(
        "--max-failure-rate",
        metavar="R",
        help="The gate passes (create-import-job launches) with at most this share of "
        "failed records: a fraction (0.01) or a percentage (1%). Default: none.",
    ),
]
Html = Annotated[
    str | None,
    typer.Option(
        "--html",
        metavar="PATH",
        help="Also write a self-contained HTML page of the job (verdict, pieces chart, "
        "codes, first failures, files) to PATH.",
    ),
]
Quiet = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="Nothing on stderr but errors (no progress, no notes)."),
]
Query = Annotated[
    str | None,
    typer.Option("--query", help="A JMESPath query on what is printed, applied before --output."),
]
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


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """The options of every command that runs a preflight: how it prints, how it checks, how
    it runs, where AWS is, and the gate's tolerance."""

    output: Output = None
    query: Query = None
    failures_out: FailuresOut = None
    strict: Strict = False
    workers: Workers = None
    progress: ShowProgress = None
    profile: Profile = None
    region: Region = None
    no_sign_request: NoSign = False
    max_failures: MaxFailures = None
    max_failure_rate: MaxFailureRate = None
    quiet: Quiet = False
    scheduler: Scheduler = None


@dataclass(frozen=True, kw_only=True)
class JobOptions(RunOptions):
    """The options validate and split share beyond :class:`RunOptions`: the sources and how
    they are read and cut (S3's endpoint is ``--endpoint-url`` here: create-import-job's is
    Pinpoint's), the page, the repairs."""

    sources: Sources
    format: Format = None
    endpoint_url: EndpointUrl = None
    pieces: Pieces = None
    piece_size: PieceSize = None
    max_job_size: MaxJobSize = "1GB"
    html: Html = None
    repair: RepairFlag = False
    default_country: DefaultCountry = None
    repairs_out: RepairsOut = None


def options_command(
    options: type[RunOptions], order: str
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Make ``command(opts, **own)`` a typer command taking the fields of ``options`` (a
    field's annotation is its typer parameter, its default the option's default) and its own
    parameters, in ``order`` (every name once), so that its --help lists them in that order."""

    def wrap(command: Callable[..., None]) -> Callable[..., None]:
        hints = get_type_hints(options, include_extras=True)
        shared = {
            f.name: inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if f.default is MISSING else f.default,
                annotation=hints[f.name],
            )
            for f in fields(options)
        }
        own = dict(inspect.signature(command, eval_str=True).parameters)
        own.pop(next(iter(own)))  # the options object
        names = order.split()
        assert sorted(names) == sorted([*shared, *own]), names
        params = [
            (own.get(n) or shared[n]).replace(kind=inspect.Parameter.KEYWORD_ONLY) for n in names
        ]

        @functools.wraps(command)
        def run_command(**values: Any) -> None:
            opts = options(**{name: values.pop(name) for name in shared})
            command(opts, **values)

        run_command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        run_command.__annotations__ = {p.name: p.annotation for p in params}
        return run_command

    return wrap
