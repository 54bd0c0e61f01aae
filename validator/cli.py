"""The command line: typer parses, the library does the work, this module prints.

Every exception the library raises on purpose is a PreflightError whose ``exit_code`` says how
the process ends; ``main`` is the one place that turns them into exit codes and one-line
messages. No traceback reaches the user unless PINPOINT_PREFLIGHT_DEBUG is set.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from functools import partial
from typing import Annotated, Any

# The command line never multiplies matrices: one BLAS thread, set before numpy loads (OpenBLAS
# starts a thread per core when numpy is imported: ~50 ms of a small validate's start-up).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import typer

from validator import cli_coerce, engine, redact, signals
from validator.cli_options import JobOptions, Query, RunOptions, options_command
from validator.cluster import executor_for
from validator.errors import (
    OptionError,
    PreflightError,
    ServiceError,
    SourceError,
    UsageError,
    from_os_error,
)
from validator.gate import Tolerance
from validator.html import write_html
from validator.progress import Progress
from validator.render import QUERYABLE, RENDERERS, check_output, render
from validator.settings import AwsSettings
from validator.source import format_note, normalize_format

# typer 0.2x carries its own copy of click and no longer depends on click; older typer raises
# click's own exceptions. Catch whichever this typer raises, without importing click.
try:
    from typer._click import exceptions as _click_exceptions
except ImportError:  # pragma: no cover - typer before it vendored click
    from click import exceptions as _click_exceptions  # type: ignore[no-redef]

ClickUsage = _click_exceptions.UsageError
cli_coerce.install()  # plain option values without importing pydantic on every run

EXIT_CODES = """\b
Exit codes:
  0    every record passed, or the failures are within --max-failures/--max-failure-rate
       (create-import-job: the job was created, or would be with --dry-run)
  1    the preflight found failures (JobStatus FAILED); nothing was launched
  130  interrupted (Ctrl-C); partial outputs removed
  143  terminated (SIGTERM); partial outputs removed
  252  bad usage: unknown option, bad option value, malformed request
  253  environment: credentials, profile, region; the local system refusing a path
  254  S3 or Pinpoint answered with an error (S3: stdout has {"Error": {..., "Transient"}})
  255  anything unexpected (a bug: please report it)"""


def _epilog(*examples: str) -> str:
    return "\b\nExamples:\n" + "\n".join(f"  {e}" for e in examples) + "\n\n" + EXIT_CODES


app = typer.Typer(
    name="pinpoint-preflight",
    help="Check Amazon Pinpoint endpoint-import files before create-import-job, split them into "
    "pieces that fit its limits, and launch the import only when they pass.",
    epilog=_epilog(
        "pinpoint-preflight validate exports/ --format CSV --output summary",
        "pinpoint-preflight validate s3://bucket/import/ --format JSON --max-failure-rate 1%",
        "pinpoint-preflight rules",
        "pinpoint-preflight explain ADDRESS_E164",
        "pinpoint-preflight validate help",
    ),
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def version_text() -> str:
    """``pinpoint-preflight/VERSION Python/VERSION SYSTEM/RELEASE``, as ``aws --version``."""
    import platform

    from validator.report import tool_version

    return (
        f"pinpoint-preflight/{tool_version()} Python/{platform.python_version()} "
        f"{platform.system()}/{platform.release()}"
    )


def _show_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            is_eager=True,
            callback=_show_version,
        ),
    ] = False,
) -> None:
    """Check Amazon Pinpoint endpoint-import files before create-import-job, split them into
    pieces that fit its limits, and launch the import only when they pass."""


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


def _print(data: Any, output: str, query: str | None, title: str = "") -> None:
    text = render(data, output, query, title)
    if text:
        sys.stdout.write(redact.text(text))
        sys.stdout.flush()


def default_output(profile: str | None = None) -> tuple[str, str]:
    """The ``--output`` to use when none is given, and where it came from: AWS_DEFAULT_OUTPUT,
    else the profile's ``output`` in the AWS config file, else json (as the AWS CLI)."""
    env = os.environ.get("AWS_DEFAULT_OUTPUT")
    if env:
        return env, "AWS_DEFAULT_OUTPUT"
    import configparser

    name = profile or os.environ.get("AWS_PROFILE") or "default"
    path = os.path.expanduser(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config")
    config = configparser.RawConfigParser()
    try:
        config.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return "json", "default"
    for section in (f"profile {name}", name) if name != "default" else ("default",):
        if config.has_option(section, "output"):
            return config.get(section, "output"), f"the output of profile {name} in {path}"
    return "json", "default"


def _check_output(
    output: str | None,
    query: str | None = None,
    profile: str | None = None,
    format: str | None = None,
) -> str:
    """Check the printing options before any work is done; the renderer's name. Say how an
    alias of --format is read (``--format ndjson`` is JSON), never silently."""
    if format is not None:
        normalize_format(format)
        note = format_note(format)
        if note:
            typer.echo(f"pinpoint-preflight: note: {note}", err=True)
    if output is None:
        value, origin = default_output(profile)
        option = "--output" if origin == "default" else origin
        _chosen["output"] = check_output(value, query, option=option)
    else:
        _chosen["output"] = check_output(output, query)
    return str(_chosen["output"])


_chosen: dict[str, str | None] = {"output": None}  # for the error document (see run)


def _check_html(path: str | None) -> None:
    """``--html``'s folder must exist, and the path must not be a folder, before any work."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"--html: no such folder {folder}")
    if os.path.isdir(path):
        raise UsageError(f"--html: {path} is a folder; give a file name")


def _tolerance(max_failures: int | None, max_failure_rate: str | None) -> Tolerance | None:
    return Tolerance.of(
        max_failures, max_failure_rate, names=("--max-failures", "--max-failure-rate")
    )


def checked(run: RunOptions, format: str | None = None) -> tuple[str, Tolerance | None]:
    """What every command that runs a preflight checks before any work: the printing options
    (the renderer's name) and the gate's tolerance."""
    output = _check_output(run.output, run.query, run.profile, format)
    return output, _tolerance(run.max_failures, run.max_failure_rate)


@contextlib.contextmanager
def running(
    run: RunOptions, settings: AwsSettings
) -> Iterator[tuple[dict[str, Any], Progress | None]]:
    """The executor (local processes or a Dask cluster) and the progress display (on a
    terminal, unless --quiet or --no-progress) while a preflight runs; yields the keyword
    arguments every library call that runs one takes from them and from ``run``, and the
    display."""
    with (
        executor_for(run.scheduler, run.workers) as executor,
        Progress.maybe(False if run.quiet else run.progress) as bar,
    ):
        common = {
            "strict": run.strict,
            "workers": run.workers,
            "settings": settings,
            "failures_out": run.failures_out,
            "progress": bar.update if bar else None,
            "executor": executor,
        }
        yield common, bar


def _run_job(job: JobOptions, title: str, work: Callable[..., Any]) -> None:
    """What validate and split do around their work: check every option before any work is
    done, run ``work(**common)`` (the keyword arguments both library calls take) with the
    executor and the progress display, then print the report and exit 0 or 1."""
    output, tolerance = checked(job, job.format)
    _check_html(job.html)
    if job.pieces is not None and job.piece_size is not None:
        raise UsageError("give --pieces or --piece-size, not both")
    repair_options = _repair_options(job.repair, job.default_country, job.repairs_out, job.strict)
    settings = AwsSettings(job.endpoint_url, job.profile, job.region, job.no_sign_request)
    with running(job, settings) as (common, _):
        result = work(
            pieces=job.pieces,
            piece_size=job.piece_size,
            max_job_size=job.max_job_size,
            repair=repair_options,
            repairs_out=job.repairs_out,
            **common,
        )
    getattr(result, "report", result).tolerance = tolerance
    data = result.to_dict()
    if job.html:
        write_html(data, job.html)
    _print(data, output, job.query, title)
    raise typer.Exit(0 if result.passed else 1)


@app.command(
    epilog=_epilog(
        "pinpoint-preflight validate endpoints.csv",
        "pinpoint-preflight validate exports/ --format CSV --output summary",
        "pinpoint-preflight validate s3://bucket/import/ --format JSON --query Gate",
        "pinpoint-preflight validate big.csv --max-failure-rate 0.5% --output github",
        "pinpoint-preflight validate - --format JSON < endpoints.ndjson",
    )
)
@options_command(
    JobOptions,
    "sources format output query failures_out strict workers progress endpoint_url profile "
    "region no_sign_request pieces piece_size max_job_size max_failures max_failure_rate quiet "
    "html scheduler repair default_country repairs_out",
)
def validate(job: JobOptions) -> None:
    """Check the sources and print the report. Exit 0 when every record passes (or the
    failures are within --max-failures/--max-failure-rate), 1 if not.
    With --repair, the report is the verdict after repair and says what would change; nothing
    is written but --failures-out and --repairs-out."""
    _run_job(job, "Validate", partial(engine.preflight, job.sources, job.format))


@app.command(
    epilog=_epilog(
        "pinpoint-preflight split big.csv --to pieces/",
        "pinpoint-preflight split s3://b/in/ --format CSV --to s3://b/out/ --piece-size 64MiB",
        "pinpoint-preflight split exports/ --format JSON --to out/ --valid-only "
        "--rejects rejects.ndjson",
    )
)
@options_command(
    JobOptions,
    "sources to format pieces piece_size max_job_size valid_only rejects overwrite output query "
    "failures_out strict workers progress endpoint_url profile region no_sign_request "
    "max_failures max_failure_rate quiet html scheduler repair default_country repairs_out",
)
def split(
    job: JobOptions,
    to: Annotated[
        str, typer.Option("--to", help="Folder or s3:// prefix for the pieces.", show_default=False)
    ],
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
) -> None:
    """Check the sources as validate does, and write them out in pieces grouped into job
    folders that each fit one import job, with a manifest. Exit codes as validate; with
    --valid-only, exit 0 when every failed record went to --rejects and the pieces hold only
    records that passed (unless --max-failures/--max-failure-rate is exceeded). With
    --repair, repaired records are written repaired; every other record byte for byte."""
    from validator.write import split as run_split

    work = partial(
        run_split,
        job.sources,
        to,
        job.format,
        valid_only=valid_only,
        rejects=rejects,
        overwrite=overwrite,
    )
    _run_job(job, "Split", work)


@app.command(
    "rules",
    epilog=_epilog(
        "pinpoint-preflight rules",
        "pinpoint-preflight rules --output json --query \"[?Severity=='error'].Code\"",
        "pinpoint-preflight rules --output table",
    ),
)
def rules_command(
    output: Annotated[
        str,
        typer.Option(
            "--output", help=f"One of {', '.join(RENDERERS)}; summary is a line per rule."
        ),
    ] = "summary",
    query: Query = None,
) -> None:
    """List every rule: code, severity, fields, what it checks, the source (from schemas/)."""
    from validator.ruletable import rules, rules_text

    name = check_output(output, query)
    if name == "summary":
        sys.stdout.write(rules_text(rules()))
    else:
        _print(rules(), name, query, "Rules")


@app.command(
    "explain",
    epilog=_epilog(
        "pinpoint-preflight explain ADDRESS_E164",
        "pinpoint-preflight explain locale --output json",
    ),
)
def explain_command(
    code: Annotated[str, typer.Argument(help="A rule code, e.g. ADDRESS_E164 (any case).")],
    output: Annotated[
        str,
        typer.Option("--output", help=f"One of {', '.join(RENDERERS)}; summary is for people."),
    ] = "summary",
    query: Query = None,
) -> None:
    """Explain one rule, with a failing and a passing example value."""
    from validator.ruletable import explain, explain_text

    name = check_output(output, query)
    rule = explain(code)
    if name == "summary":
        sys.stdout.write(explain_text(rule))
    else:
        _print(rule, name, query, "Explain")


def _register_optional_commands() -> None:
    try:
        from validator.cli_launch import create_import_job_command
    except ImportError:  # pragma: no cover - during development only
        return
    app.command(
        "create-import-job",
        context_settings={"ignore_unknown_options": False},
        epilog=_epilog(
            "pinpoint-preflight create-import-job --application-id ID --import-job-request "
            "S3Url=s3://b/p/,Format=CSV,RoleArn=arn:aws:iam::123456789012:role/Import",
            "pinpoint-preflight create-import-job --cli-input-json file://job.json --wait",
            "pinpoint-preflight create-import-job --generate-cli-skeleton yaml-input",
        ),
    )(create_import_job_command)
    from validator.cli_jobs import create_import_jobs_command, get_import_job_command

    app.command(
        "get-import-job",
        epilog=_epilog(
            "pinpoint-preflight get-import-job --application-id ID --job-id JOB",
            "pinpoint-preflight get-import-job --application-id ID --job-id JOB "
            "--query ImportJobResponse.JobStatus --output text",
        ),
    )(get_import_job_command)
    app.command(
        "create-import-jobs",
        epilog=_epilog(
            "pinpoint-preflight split big.csv --to s3://b/jobs/ && pinpoint-preflight "
            "create-import-jobs --application-id ID --manifest s3://b/jobs/ "
            "--import-job-request RoleArn=arn:aws:iam::123456789012:role/Import",
        ),
    )(create_import_jobs_command)


_register_optional_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``pinpoint-preflight`` and ``python -m validator``."""
    code = run(argv, restore_signals=False)  # a signal from now to the exit changes nothing
    if code in (130, 143):
        # Interrupted, and the clean-up is done: end now, without waiting at the interpreter's
        # exit for threads of a worker pool that was stopped mid-task.
        _release_semaphores()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    # The work is over and its outputs are whole: a signal during the interpreter's exit (which
    # resets the handlers to the defaults while it frees modules) would kill it, exit -2/-15.
    signals.hold_to_exit()
    sys.exit(code)


def _release_semaphores() -> None:
    """Before ``os._exit``: what multiprocessing would do at a normal exit for the semaphores of
    a process pool and of the progress display's shared counter (unlink them, and tell the
    resource tracker). Skipped, the tracker would print a warning of "leaked semaphore objects"
    under the interrupted line. Its finalizers of exit priority 0 and up only: none of them
    joins a thread."""
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        with contextlib.suppress(Exception):
            util._run_finalizers(0)


def run(argv: list[str] | None = None, *, restore_signals: bool = True) -> int:
    """Run the command line and return the exit code (tests call this in-process).

    SIGTERM is handled as Ctrl-C is (partial outputs removed), and ends with 143 instead of 130.
    Every line printed goes through :mod:`validator.redact`. ``restore_signals=False`` (the
    process's own entry point) keeps the handlers after the work, until the exit.
    """
    for arg in sys.argv[1:] if argv is None else argv:
        redact.register_url(arg)  # a user:password@ typed into a URL is masked everywhere
    with signals.handle_sigterm(restore_signals):
        try:
            code = _run(argv)
            signals.done()  # a signal from now on finds the work over: it changes nothing
            return code
        except KeyboardInterrupt as exc:  # a second signal during the clean-up of the first
            signals.done()
            return _interrupted(exc)


def _interrupted(exc: BaseException) -> int:
    if isinstance(exc, signals.SigTerm):
        _error("terminated")
        return 143
    _error("interrupted")
    return 130


def _run(argv: list[str] | None) -> int:
    argv = _help_word(list(sys.argv[1:] if argv is None else argv))
    _chosen["output"] = None
    try:
        rv = app(args=argv, prog_name="pinpoint-preflight", standalone_mode=False)
        if rv == 130:  # typer's answer to a KeyboardInterrupt (Ctrl-C, or SIGTERM as one)
            return _interrupted(
                signals.SigTerm() if signals.last_signal == signal.SIGTERM else KeyboardInterrupt()
            )
        return rv if isinstance(rv, int) else 0
    except ClickUsage as exc:
        ctx = getattr(exc, "ctx", None)
        _error(getattr(exc, "format_message", exc.__str__)(), ctx.command_path if ctx else None)
        return UsageError.exit_code
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0))
    except typer.Abort:
        _error("interrupted")
        return 130
    except KeyboardInterrupt as exc:
        return _interrupted(exc)
    except PreflightError as exc:
        message = exc.for_cli() if isinstance(exc, OptionError) else _flag_names(exc)
        if message:
            _error(message + _retry_note(exc))
        _error_document(exc)
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


def _help_word(argv: list[str]) -> list[str]:
    """``help`` as the AWS CLI takes it: ``pinpoint-preflight help`` and
    ``pinpoint-preflight COMMAND help`` (the last word) print the help."""
    if argv == ["help"]:
        return ["--help"]
    if len(argv) == 2 and argv[1] == "help" and not argv[0].startswith("-"):
        return [argv[0], "--help"]
    return argv


_PARAMETERS = re.compile(
    r"^(workers|pieces|rejects)\b|\b(piece_size|max_job_size|valid_only|failures_out|"
    r"max_failures|max_failure_rate|max_concurrent|poll_interval)\b"
)


def _flag_names(exc: PreflightError) -> str:
    """A usage error of the library names its parameter (``workers must be at least 1``); on
    the command line it names the option (``--workers must be at least 1``)."""
    text = str(exc)
    if not isinstance(exc, UsageError):
        return text
    return _PARAMETERS.sub(lambda m: "--" + m.group(0).replace("_", "-"), text)


def _retry_note(exc: PreflightError) -> str:
    """What an S3 or Pinpoint error (exit 254) says a retry would do."""
    if not isinstance(exc, SourceError | ServiceError):
        return ""
    if exc.transient:
        return " (a transient error: retrying may succeed)"
    return " (a permanent error: retrying will not help)"


def _error_document(exc: PreflightError) -> None:
    """For an S3 error, the error as JSON on stdout, for a pipeline to read whether to retry:
    ``{"Error": {"Type", "Code", "Message", "Transient", "ExitCode"}}`` (not with --output
    off). Pinpoint's errors keep stdout empty; their line on stderr says it all the same."""
    if not isinstance(exc, SourceError) or _chosen["output"] == "off":
        return
    doc = {
        "Error": {
            "Type": type(exc).__name__,
            "Code": exc.code,
            "Message": str(exc),
            "Transient": exc.transient,
            "ExitCode": exc.exit_code,
        }
    }
    try:
        chosen = _chosen["output"]
        sys.stdout.write(render(doc, chosen if chosen in QUERYABLE else "json"))
        sys.stdout.flush()
    except (OSError, UsageError):
        pass


def _error(message: str, command: str | None = None) -> None:
    prefix = command or "pinpoint-preflight"
    redact.echo(f"{prefix}: error: {' '.join(message.split())}", err=True)
