"""Executors that run one function over many independent jobs: in-process, process pool, Dask.

All three have one interface, :meth:`Executor.run`: give it a top-level function and a mapping
``key -> args``; it yields one :class:`Outcome` per key *as jobs complete* (so the caller can
checkpoint after each), with either the function's return value or the exception it raised.
An exception in one job never stops the others.

For the process pool and Dask, the function must be importable at module level and its
arguments picklable (plain values: dicts, strings, dates, small dataclasses). Models and data
are never passed between processes; each job reads what it needs from disk.

Dask is optional (``pip install tabtune[dask]``) and imported only when a
:class:`DaskExecutor` is created, so ``import tabtune.parallel`` stays light.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Literal

from tabtune.errors import TabTuneInputError
from tabtune.optional import install_hint, optional_import

__all__ = [
    "DASK_HINT",
    "DaskExecutor",
    "Executor",
    "InlineExecutor",
    "Outcome",
    "PARENT_POLL_SECONDS",
    "ProcessExecutor",
    "NO_WORKER",
    "WORKER_DIED",
    "WorkerDiedError",
    "WorkerStartError",
    "make_executor",
    "require_spawnable_main",
    "start_parent_watchdog",
]

logger = logging.getLogger(__name__)

DASK_HINT = install_hint("dask.distributed", extra="dask", purpose="the Dask executor")

ExecutorKind = Literal["inline", "process", "dask"]


@dataclass(frozen=True)
class Outcome:
    """The result of one job.

    Attributes
    ----------
    key : str
        The job's key, as given to :meth:`Executor.run`.
    value : Any
        What the function returned (``None`` when it raised).
    error : BaseException or None
        The exception the job raised, or that killed its worker; ``None`` on success.
    """

    key: str
    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """Whether the job returned normally."""
        return self.error is None


#: Why a job whose worker process died failed (:class:`ProcessExecutor`).
WORKER_DIED = (
    "its worker process died while running it (killed: out of memory, or a crash in a "
    "native library); the other jobs ran. Rerun it alone to see why (executor: inline)"
)


class WorkerDiedError(RuntimeError):
    """A job's worker process died while it ran (see :class:`ProcessExecutor`)."""


class Executor:
    """Runs independent jobs; subclasses decide where.

    Use as a context manager (or call :meth:`close`) so worker processes and clusters are
    released.
    """

    #: Short name shown in logs and reports.
    name: str = "executor"

    def run(self, fn: Callable[..., Any], jobs: Mapping[str, tuple[Any, ...]]) -> Iterator[Outcome]:
        """Run ``fn(*args)`` for every ``key -> args`` in ``jobs``.

        Parameters
        ----------
        fn : callable
            A module-level function (so it can be sent to other processes).
        jobs : mapping of str to tuple
            Job key -> positional arguments. Keys are reported back unchanged.

        Yields
        ------
        Outcome
            One per job, in completion order (submission order for the inline executor).
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release workers; the executor cannot be used afterwards."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class InlineExecutor(Executor):
    """Runs jobs one after another in the calling process (the default; easiest to debug)."""

    name = "inline"

    def run(self, fn: Callable[..., Any], jobs: Mapping[str, tuple[Any, ...]]) -> Iterator[Outcome]:
        """See :meth:`Executor.run`."""
        for key, args in jobs.items():
            try:
                value = fn(*args)
            except Exception as exc:  # noqa: BLE001 - isolated per job, reported to the caller
                yield Outcome(key, error=exc)
            else:
                yield Outcome(key, value=value)


#: Seconds between a worker's checks that the process that started it is still alive.
PARENT_POLL_SECONDS = 0.5


def _parent_alive(parent_pid: int, direct: bool) -> bool:
    if direct and os.getppid() != parent_pid:  # re-parented: the parent died
        return False
    try:
        os.kill(parent_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - alive, owned by another user
        return True
    return True


def _watch_parent(parent_pid: int, interval: float, direct: bool) -> None:
    while _parent_alive(parent_pid, direct):
        time.sleep(interval)
    os._exit(1)  # the parent died (even SIGKILLed): no orphaned worker keeps running


def start_parent_watchdog(
    parent_pid: int, interval: float = PARENT_POLL_SECONDS, *, direct: bool = True
) -> None:
    """Exit this worker process as soon as ``parent_pid`` dies (checked every ``interval`` s).

    A daemon thread polls the parent; when the parent is gone (killed with SIGKILL, out of
    memory) the worker exits at once instead of running its job to the end as an orphan.
    Polling works on every platform and does not depend on which thread started the worker
    (Linux's ``PR_SET_PDEATHSIG`` fires when that *thread* ends).

    Parameters
    ----------
    parent_pid : int
        The process whose death ends this one.
    interval : float
        Seconds between checks.
    direct : bool, default True
        ``parent_pid`` started this process itself, so being re-parented also means it died
        (which catches the parent's pid being reused); False for an ancestor further up.
    """
    if not _parent_alive(parent_pid, direct):
        os._exit(1)
    threading.Thread(
        target=_watch_parent,
        args=(parent_pid, interval, direct),
        name="tabtune-parent-watchdog",
        daemon=True,
    ).start()


def _init_worker(threads: int, parent_pid: int, started: Any = None) -> None:
    # Runs first in each worker, before numpy/LightGBM/XGBoost load their thread pools, so
    # n_workers x threads does not oversubscribe the machine; then watches the parent.
    # ``started`` counts the workers that got this far (past re-importing the main script).
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    start_parent_watchdog(parent_pid)
    if started is not None:
        with started.get_lock():
            started.value += 1


class WorkerStartError(TabTuneInputError):
    """No worker process of a :class:`ProcessExecutor` could start (see :data:`NO_WORKER`)."""


#: Why a pool whose workers all died before running anything stopped the jobs.
NO_WORKER = (
    "no worker process could start: each one imports this program's main script again "
    "(the 'spawn' start method), and it died there, before running a job (its error is printed "
    "above). A script that starts the run at its top level runs it again in every worker; "
    "fix: put the call under `if __name__ == '__main__':`, or use executor='inline'"
)


def require_spawnable_main(executor: str) -> None:
    """Refuse worker processes started by ``spawn`` when this process's main script cannot be
    read again: each worker re-imports the main module from its file, and a script read from
    standard input (``python - < night.py``, a heredoc in a cron line) has none, so every
    worker died at start-up and every brand failed as "out of memory, or a crash".

    Raises
    ------
    TabTuneInputError
        Naming the script, the executor and the fixes.
    """
    main = sys.modules.get("__main__")
    if getattr(getattr(main, "__spec__", None), "name", None) is not None:
        return  # `python -m`, a zip app: workers import it by name (multiprocessing.spawn)
    path = getattr(main, "__file__", None)
    if path is None or os.path.exists(path):  # an interactive session or notebook: fine
        return
    raise TabTuneInputError(
        f"executor {executor!r} starts worker processes that import this program's main script "
        f"again, and it was not read from a file ({path}); nothing was done. Fix: save the "
        "script to a file and run that (keep the refresh under `if __name__ == "
        "'__main__':`), or use executor='inline'"
    )


class ProcessExecutor(Executor):
    """Runs jobs in a pool of worker processes on this machine.

    Workers are started with the ``spawn`` method: forking a process whose OpenMP runtime is
    already running (LightGBM and XGBoost use it) can deadlock the child. Each worker watches
    this process (:func:`start_parent_watchdog`) and exits when it dies, so a killed refresh
    leaves no orphaned workers.

    Parameters
    ----------
    n_workers : int, default 2
        Number of worker processes.
    threads_per_worker : int or None
        Sets ``OMP_NUM_THREADS`` (and the BLAS equivalents) in each worker unless already set;
        default: the machine's CPUs divided by ``n_workers`` (at least 1).
    """

    name = "process"

    def __init__(self, n_workers: int = 2, threads_per_worker: int | None = None) -> None:
        if int(n_workers) < 1:
            raise TabTuneInputError(f"n_workers must be >= 1, got {n_workers!r}")
        require_spawnable_main(self.name)
        self.n_workers = int(n_workers)
        cpus = os.cpu_count() or 1
        self.threads_per_worker = threads_per_worker or max(1, cpus // self.n_workers)
        self._pool: ProcessPoolExecutor | None = None
        self._context = multiprocessing.get_context("spawn")
        #: Workers of this executor's pools that started (:func:`_init_worker`).
        self._started = self._context.Value("i", 0)

    def __repr__(self) -> str:
        return f"ProcessExecutor(n_workers={self.n_workers})"

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.n_workers,
                mp_context=self._context,
                initializer=_init_worker,
                initargs=(self.threads_per_worker, os.getpid(), self._started),
            )
        return self._pool

    def run(self, fn: Callable[..., Any], jobs: Mapping[str, tuple[Any, ...]]) -> Iterator[Outcome]:
        """See :meth:`Executor.run`.

        A worker that dies (killed, out of memory, a crash in a native library) breaks the
        pool, and every job not finished then fails with it. Those jobs run again: the first
        ``n_workers + 1`` of them (the ones the pool may have been running) one at a time in a
        fresh pool, so the job that kills its worker is the only one reported, with
        :class:`WorkerDiedError`; the others in parallel again. One brand that crashes its
        worker failed every brand queued behind it, night after night.
        """
        remaining = list(jobs)
        while remaining:
            unfinished: list[str] = []
            yield from self._run_batch(fn, jobs, remaining, unfinished)
            if not unfinished:
                return
            self.close()  # a dead worker leaves the pool unusable
            suspects = unfinished[: self.n_workers + 1]
            for key in suspects:
                yield self._run_alone(fn, key, jobs[key])
            remaining = unfinished[len(suspects) :]

    def _run_batch(
        self,
        fn: Callable[..., Any],
        jobs: Mapping[str, tuple[Any, ...]],
        keys: list[str],
        unfinished: list[str],
    ) -> Iterator[Outcome]:
        """Run ``keys`` in the pool; those a broken pool failed go to ``unfinished`` (in
        submission order) instead of being reported."""
        pool = self._ensure_pool()
        pending: dict[Future[Any], str] = {pool.submit(fn, *jobs[key]): key for key in keys}
        broken: set[str] = set()
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    key = pending.pop(future)
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):
                        broken.add(key)
                    elif error is None:
                        yield Outcome(key, value=future.result())
                    else:
                        yield Outcome(key, error=error)
        finally:
            for future in pending:
                future.cancel()
        unfinished.extend(key for key in keys if key in broken)

    def _run_alone(self, fn: Callable[..., Any], key: str, args: tuple[Any, ...]) -> Outcome:
        """One job alone in the pool: a broken pool then means this job killed its worker."""
        future = self._ensure_pool().submit(fn, *args)
        error = future.exception()
        if isinstance(error, BrokenProcessPool):
            self.close()
            if self._started.value == 0:  # not one worker got past its start: no job's fault
                raise WorkerStartError(NO_WORKER)
            return Outcome(key, error=WorkerDiedError(WORKER_DIED))
        return Outcome(key, value=None if error is not None else future.result(), error=error)

    def close(self) -> None:
        """Shut the pool down (waiting for running jobs)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _distributed() -> Any:
    """``dask.distributed``, imported now (raises with :data:`DASK_HINT` when missing)."""
    module = optional_import("dask.distributed", extra="dask", purpose="the Dask executor")
    from tabtune.distributed.cluster import quiet_dask_unless_verbose

    quiet_dask_unless_verbose()
    return module


class DaskExecutor(Executor):
    """Runs jobs on a Dask cluster (``dask.distributed``).

    Parameters
    ----------
    scheduler : str or None
        ``None`` or ``"local"`` starts a :class:`~dask.distributed.LocalCluster` of
        ``n_workers`` single-threaded worker processes on this machine (closed again by
        :meth:`close`); ``"tcp://host:port"`` (or any address ``Client`` accepts) connects to
        a running scheduler. Remote workers must see the same file system paths (the store,
        the models and the outputs) and have tabtune installed.
    n_workers : int, default 2
        Workers of a local cluster (ignored for a remote scheduler).

    Raises
    ------
    ImportError
        ``dask.distributed`` is not installed (the message says how to install it).
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, n_workers: int = 2) -> None:
        distributed = _distributed()
        Client, LocalCluster = distributed.Client, distributed.LocalCluster
        self.scheduler = scheduler or "local"
        self._cluster = None
        if self.scheduler == "local":
            require_spawnable_main("dask")
            self._cluster = LocalCluster(
                n_workers=int(n_workers),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            self._client = Client(self._cluster)
            # Local workers exit with this process, even when it is SIGKILLed.
            self._client.register_worker_callbacks(
                functools.partial(start_parent_watchdog, os.getpid(), direct=False)
            )
        else:
            from tabtune.distributed.cluster import connect_client

            self._client = connect_client(self.scheduler)

    def __repr__(self) -> str:
        return f"DaskExecutor(scheduler={self.scheduler!r})"

    def run(self, fn: Callable[..., Any], jobs: Mapping[str, tuple[Any, ...]]) -> Iterator[Outcome]:
        """See :meth:`Executor.run`."""
        as_completed = _distributed().as_completed

        if not jobs:
            return
        futures = {self._client.submit(fn, *args, pure=False): key for key, args in jobs.items()}
        try:
            for future in as_completed(list(futures)):
                key = futures[future]
                try:
                    value = future.result()
                except Exception as exc:  # noqa: BLE001 - isolated per job
                    yield Outcome(key, error=exc)
                else:
                    yield Outcome(key, value=value)
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        """Close the client, and the local cluster when this executor started it."""
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def make_executor(
    kind: ExecutorKind | str = "inline", *, n_workers: int = 2, scheduler: str | None = None
) -> Executor:
    """Create the executor a config asks for.

    Parameters
    ----------
    kind : {"inline", "process", "dask"}
        Which executor. A ``scheduler`` implies ``"dask"``.
    n_workers : int, default 2
        Worker processes (process pool, local Dask cluster).
    scheduler : str or None
        Dask scheduler: ``"local"`` or an address such as ``"tcp://host:8786"``.

    Returns
    -------
    Executor

    Raises
    ------
    TabTuneInputError
        Unknown ``kind``.
    ImportError
        ``"dask"`` without ``dask.distributed`` installed.
    """
    if scheduler:
        kind = "dask"
    if kind == "inline":
        return InlineExecutor()
    if kind == "process":
        return ProcessExecutor(n_workers=n_workers)
    if kind == "dask":
        return DaskExecutor(scheduler=scheduler, n_workers=n_workers)
    raise TabTuneInputError(f"unknown executor {kind!r}; use 'inline', 'process' or 'dask'")
