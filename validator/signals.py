"""Signals: SIGTERM is handled like Ctrl-C, a few short steps are never cut in half, and worker
processes die with the command.

- :func:`handle_sigterm` makes SIGTERM raise :class:`SigTerm` (a ``KeyboardInterrupt``), so every
  clean-up that runs on Ctrl-C runs on SIGTERM too; the CLI then exits 143 instead of 130.
- :func:`critical` holds SIGINT and SIGTERM back while a file is given its name or removed, so
  that an output is never renamed without being recorded for removal.
- :func:`worker_init` runs first in every worker process: the worker ignores SIGINT and SIGTERM
  (a terminal's Ctrl-C reaches the whole process group; the parent decides and stops the
  workers), asks Linux to kill it when its parent dies (``PR_SET_PDEATHSIG``), and exits at once
  if the parent is already gone. :func:`stop_pool` kills a pool's workers when the run fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Executor
from typing import Any

PR_SET_PDEATHSIG = 1
_HELD = {signal.SIGINT, signal.SIGTERM}


class SigTerm(KeyboardInterrupt):
    """SIGTERM arrived: handled as Ctrl-C is (exit 143)."""


# The last of SIGINT/SIGTERM received while :func:`handle_sigterm` was in force (typer turns a
# KeyboardInterrupt into a bare exit code 130; this says which signal it was).
last_signal: int | None = None
# False once the command's work has ended: a signal then only ends a process already ending.
accepting = True


def _on_sigterm(signum: int, frame: Any) -> None:
    global last_signal
    last_signal = signal.SIGTERM
    if accepting:
        raise SigTerm


def _on_sigint(signum: int, frame: Any) -> None:
    global last_signal
    last_signal = signal.SIGINT
    if accepting:
        raise KeyboardInterrupt


def done() -> None:
    """The work is over (outputs whole or removed): later signals are not raised."""
    global accepting
    accepting = False


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def handle_sigterm(restore: bool = True) -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`SigTerm` in the main thread. Without
    ``restore`` the handlers stay when it ends: a process about to exit (the command) keeps them,
    so that a signal after :func:`done` changes nothing (the default handlers would kill it,
    exit -15, or raise a KeyboardInterrupt that Python's exit turns into death by SIGINT)."""
    if not _main_thread():
        yield
        return
    global last_signal, accepting
    last_signal = None
    accepting = True
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    previous_int = None
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        previous_int = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        if restore:
            signal.signal(signal.SIGTERM, previous)
            if previous_int is not None:
                signal.signal(signal.SIGINT, previous_int)


@contextlib.contextmanager
def critical() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for a short step; they are delivered when it ends."""
    if not _main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def hold_to_exit() -> None:
    """Hold SIGINT and SIGTERM back from now to the exit (the work is over: they would change
    nothing but the exit code). SIGKILL and SIGQUIT still end a process stuck in its exit."""
    if _main_thread() and hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)


def worker_init(parent: int, method: str = "fork", then: tuple[Any, Any] | None = None) -> None:
    """The initializer of every worker process (see the module docstring). ``parent`` is the
    command's pid, ``method`` the pool's start method; ``then``, a function and its arguments
    to call last (the progress display's shared counter)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The command may have died before the request above took effect: then it never fires.
    if not _command_alive(parent, method):
        os._exit(1)
    if then is not None:
        function, args = then
        function(*args)


def _command_alive(parent: int, method: str) -> bool:
    """Whether the command that started this worker is still alive, asked after
    ``PR_SET_PDEATHSIG``. Not ``os.kill(parent, 0)``: a command killed outright stays a zombie
    until its own parent reaps it, and a zombie answers that it exists (the worker then outlived
    it, asleep on its queue). The kernel re-parents a dead process's children at once, so a
    worker the command itself forked or spawned compares its parent; under the forkserver the
    parent is the server, and the command holds the write end of the worker's sentinel pipe."""
    if method != "forkserver":
        return os.getppid() == parent
    import multiprocessing

    command = multiprocessing.parent_process()
    return command is None or command.is_alive()


def pool_options(method: str = "fork", then: tuple[Any, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``ProcessPoolExecutor`` (whose context starts processes by
    ``method``): workers that die with this process (and then call ``then``, if given)."""
    return {"initializer": worker_init, "initargs": (os.getpid(), method, then)}


def stop_pool(executor: Executor) -> None:
    """Stop a pool at once: queued work cancelled, worker processes killed and reaped."""
    procs: list[Any] = []
    manager: threading.Thread | None = None
    process = sys.modules.get("concurrent.futures.process")  # imported with a process pool only
    if process is not None and isinstance(executor, process.ProcessPoolExecutor):
        inner: Any = executor  # its private parts, as CPython 3.9-3.13 name them
        procs = list((inner._processes or {}).values())
        manager = inner._executor_manager_thread
        queue = inner._call_queue
        if queue is not None:
            # Its feeder thread may be blocked writing to a pipe no worker reads any more:
            # never wait for it (the pool's clean-up would, and so would the exit).
            queue.cancel_join_thread()
    with critical():
        executor.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            with contextlib.suppress(Exception):
                p.kill()
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(5)
        if manager is not None:
            # The pool's own thread ends once it has seen its workers gone, unless a worker was
            # killed in the middle of sending a result: then it waits forever for the rest of
            # it. Do not let the interpreter's exit wait for it too (it would hang).
            manager.join(1)
            if manager.is_alive():
                _detach(manager)
        if process is not None and isinstance(executor, process.ProcessPoolExecutor):
            # Whatever the pool's thread did not settle is settled here: a caller waiting on
            # a future of a killed worker (split's rollback waits for its parts) never hangs.
            lost = process.BrokenProcessPool("the pool was stopped")
            for item in list((getattr(executor, "_pending_work_items", None) or {}).values()):
                if not item.future.done():
                    with contextlib.suppress(Exception):
                        item.future.set_exception(lost)


def _detach(thread: threading.Thread) -> None:
    """Leave a stuck thread of a stopped pool out of the joins at interpreter exit."""
    with contextlib.suppress(Exception):
        from concurrent.futures import process

        process._threads_wakeups.pop(thread, None)
    with contextlib.suppress(Exception):
        threading._shutdown_locks.discard(thread._tstate_lock)  # type: ignore[attr-defined]


@contextlib.contextmanager
def pool(executor: Executor) -> Iterator[Executor]:
    """Use ``executor``; wait for it when the block ends well, kill its workers if not."""
    try:
        yield executor
    except BaseException:
        stop_pool(executor)
        raise
    executor.shutdown(wait=True)
