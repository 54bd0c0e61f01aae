"""A real Dask cluster on 127.0.0.1 for the tests: one ``dask scheduler`` and ``dask worker``
processes (each under its nanny, as a deployment runs them), started from this venv's ``dask``
command and stopped at the end. Workers get the environment they are started with (the S3 test
servers' credentials), as real workers have their own AWS configuration."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from s3_servers import HOST, free_ports

STARTUP_TIMEOUT = 60.0


def dask_command() -> list[str]:
    """This venv's ``dask`` command (``python -m distributed.cli...`` if the script is absent)."""
    script = Path(sys.executable).parent / "dask"
    if script.exists():
        return [str(script)]
    found = shutil.which("dask")
    if found:
        return [found]
    raise RuntimeError("the dask command was not found: pip install '.[test]'")


@dataclass
class DaskCluster:
    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log_dir: Path | None = None

    def worker_pids(self) -> list[int]:
        """The pids of the worker processes themselves (the nannies' children)."""
        import psutil

        pids = []
        for nanny in self.workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                pids += [c.pid for c in psutil.Process(nanny.pid).children(recursive=True)]
        return pids

    def logs(self) -> str:
        if self.log_dir is None:
            return ""
        return "\n".join(
            f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-20:])
            for p in sorted(self.log_dir.glob("*.log"))
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@contextlib.contextmanager
def dask_cluster(
    log_dir: Path, *, workers: int = 2, env: Mapping[str, str] | None = None
) -> Iterator[DaskCluster]:
    """A scheduler and ``workers`` single-threaded worker processes on 127.0.0.1."""
    from distributed import Client

    dask = dask_command()
    port = free_ports(1)[0]
    address = f"tcp://{HOST}:{port}"
    environ = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    log_dir.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(log_dir / f"{name}.log", "wb")  # noqa: SIM115 - kept by the process
        proc = subprocess.Popen(
            [*dask, *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environ,
            cwd=log_dir,
            start_new_session=True,  # its own group: stopped whole, never by the tests' signals
        )
        procs.append(proc)
        return proc

    scheduler = start(
        "scheduler", ["scheduler", "--host", HOST, "--port", str(port), "--no-dashboard"]
    )
    cluster = DaskCluster(address, scheduler, log_dir=log_dir)
    try:
        for i in range(workers):
            cluster.workers.append(
                start(
                    f"worker-{i}",
                    [
                        "worker",
                        address,
                        "--host",
                        HOST,
                        "--nthreads",
                        "1",
                        "--no-dashboard",
                        "--name",
                        f"w{i}",
                        "--memory-limit",
                        "0",
                    ],
                )
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            try:
                with Client(address, timeout="5s", set_as_default=False) as client:
                    client.wait_for_workers(workers, timeout=max(deadline - time.monotonic(), 1))
                break
            except Exception as exc:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    raise RuntimeError(
                        f"the Dask cluster at {address} did not start: {exc!r}\n{cluster.logs()}"
                    ) from exc
                time.sleep(0.5)
        yield cluster
    finally:
        for proc in reversed(procs):
            _stop(proc)
