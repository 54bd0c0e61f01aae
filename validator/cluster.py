"""Dask distributed as the executor: ``--scheduler ADDRESS`` (or ``DASK_SCHEDULER_ADDRESS``, the
variable Dask itself reads), or ``local`` for a ``LocalCluster`` on this machine.

The engine sees only a :class:`concurrent.futures.Executor`; this module makes one from a
scheduler address and turns what a cluster can go through (an unreachable scheduler, a worker
that died past Dask's retries, a worker that cannot open a local path) into the tool's errors.
Tasks carry the run's endpoint, region and profile name (``AwsSettings``), never credentials:
workers read S3 with their own AWS configuration. Nothing here imports Dask until it is asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from validator.errors import ConfigError, PreflightError, UsageError

if TYPE_CHECKING:
    from validator.source import SourceFile

SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"
CONNECT_TIMEOUT = "10s"
INSTALL_HINT = "--scheduler needs Dask: pip install 'pinpoint-preflight[dask]'"


def scheduler_address(option: str | None) -> str | None:
    """The scheduler to run on: the option, else ``DASK_SCHEDULER_ADDRESS``, else None (local)."""
    address = option if option is not None else os.environ.get(SCHEDULER_ENV)
    if address is None:
        return None
    address = address.strip()
    if not address:
        raise UsageError("scheduler must be an address such as tcp://host:8786, or 'local'")
    return address


def _probe_open(f: SourceFile) -> str | None:
    """Runs on a worker: None when ``f`` opens for reading there, else why not."""
    from validator import transport

    try:
        with transport.for_file(f).open_range(f, 0, settings=None):
            return None
    except Exception as exc:
        cause = exc.__cause__
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        return str(exc) or type(exc).__name__


class ClusterExecutor(Executor):
    """A Dask client's executor whose failures read as the tool's errors.

    ``map`` yields in order, as ``concurrent.futures`` promises; the tasks are not pure (a
    piece read twice is two tasks). ``workers_elsewhere``: its workers may be other machines,
    so this machine's paths are not theirs (``split`` writes a local destination itself).
    """

    workers_elsewhere = True

    def __init__(self, client: Any, address: str, *, partitions: int | None = None) -> None:
        self._client = client
        self._inner = client.get_executor(pure=False)
        self.address = address
        self.partitions = partitions  # of the job-wide keys; None: a few per worker

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` this executor submits to."""
        return self._client

    @property
    def width(self) -> int:
        """How many tasks the cluster runs at once now (its workers' threads)."""
        try:
            return max(sum(self._client.nthreads().values()), 1)
        except Exception:
            return 1

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """As ``concurrent.futures``; a failure reads as the tool's error."""
        inner = self._inner.submit(fn, *args, **kwargs)
        outer: Future[Any] = Future()

        def settle(done: Future[Any]) -> None:
            if done.cancelled():
                outer.cancel()
                outer.set_running_or_notify_cancel()
                return
            exc = done.exception()
            if exc is None:
                outer.set_result(done.result())
            elif isinstance(exc, PreflightError):
                outer.set_exception(exc)
            else:
                outer.set_exception(_translate(exc, self.address))

        inner.add_done_callback(settle)
        return outer

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        results = self._inner.map(fn, *iterables, timeout=timeout)

        def translated() -> Iterator[Any]:
            try:
                yield from results
            except PreflightError:
                raise
            except Exception as exc:
                raise _translate(exc, self.address) from exc

        return translated()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait)

    def run_keyed(
        self,
        fn: Callable[[Any], list[Any]],
        tasks: Iterable[Any],
        arrived: Callable[[Any], None] | None = None,
    ) -> Iterator[Any]:
        """The engine's pieces with the job-wide key rules run here too (``cluster_keys``): the
        hashed keys stay on the workers, partitioned by hash; the client gets each result in
        order without them, with the problems they gave in ``cross``, once every piece is in
        (``arrived`` hears of each piece as it is done)."""
        from validator import cluster_keys

        try:
            parts = self.partitions or cluster_keys.default_partitions(len(self._client.nthreads()))
            yield from cluster_keys.run(self._client, fn, list(tasks), parts, arrived)
        except PreflightError:
            raise
        except Exception as exc:
            raise _translate(exc, self.address) from exc

    def check_sources(self, files: Iterable[SourceFile]) -> None:
        """Before any piece runs: a stream read once (standard input, a pipe) cannot reach a
        worker, and every file that is not the same on every machine (a local path) must open
        on the workers (one line saying so, and to use s3:// sources, if not)."""
        from validator import transport

        files = list(files)
        for f in files:
            if transport.read_once(f):
                raise UsageError(
                    f"{transport.describe(f)} cannot be read by Dask workers (it is read once, "
                    "by this process): give a file or s3:// source"
                )
        self.check_readable([f for f in files if not transport.anywhere(f)])

    def check_readable(self, files: Iterable[SourceFile]) -> None:
        """Fail with one line when a worker cannot open one of these files."""
        files = list({f.display: f for f in files}.values())
        if not files:
            return
        try:
            answers = self._client.gather(self._client.map(_probe_open, files, pure=False))
        except Exception as exc:
            raise _translate(exc, self.address) from exc
        for f, why in zip(files, answers, strict=True):
            if why is not None:
                raise ConfigError(
                    f"a Dask worker of {self.address} cannot open {f.display} ({why}): local "
                    "paths must be readable by every worker; with a remote cluster give s3:// "
                    "sources"
                )


def _translate(exc: BaseException, address: str) -> PreflightError:
    name = type(exc).__name__
    if name == "KilledWorker":
        return ConfigError(
            f"Dask workers of {address} kept dying on a task ({exc}); "
            "see the workers' logs (memory limits?)"
        )
    if name in ("CommClosedError", "CancelledError") or isinstance(exc, OSError | TimeoutError):
        return ConfigError(f"lost the Dask scheduler at {address} mid-run: {exc}")
    return PreflightError(f"a Dask task failed on {address}: {name}: {exc}")


@contextmanager
def dask_executor(
    address: str, *, workers: int | None = None, partitions: int | None = None
) -> Iterator[ClusterExecutor]:
    """An executor on the Dask cluster at ``address`` (``local``: a new ``LocalCluster`` of
    ``workers`` single-threaded processes on 127.0.0.1, closed at the end). The cluster itself
    is never shut down here: only this run's client is closed. ``partitions``: of the job-wide
    keys (``ClusterExecutor.run_keyed``); by default a few per worker."""
    if partitions is not None and (isinstance(partitions, bool) or partitions < 1):
        raise UsageError(f"partitions must be at least 1, not {partitions}")
    try:
        import distributed
    except ImportError as exc:
        raise UsageError(INSTALL_HINT) from exc
    with ExitStack() as stack:
        if address == "local":
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=workers or None,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                )
            )
            address = cluster.scheduler_address
        try:
            client = stack.enter_context(
                distributed.Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
        yield ClusterExecutor(client, address, partitions=partitions)


@contextmanager
def executor_for(scheduler: str | None, workers: int | None = None) -> Iterator[Executor | None]:
    """The executor ``--scheduler`` (or DASK_SCHEDULER_ADDRESS) asks for; None: the default
    (this machine's processes)."""
    address = scheduler_address(scheduler)
    if address is None:
        yield None
        return
    with dask_executor(address, workers=workers) as executor:
        yield executor
