"""Parallel tuning workers: trials of one study run in separate processes.

:func:`run_parallel_workers` starts the workers with the ``spawn`` method (no fork after
OpenMP has started threads); each child imports :func:`worker_main` by its module path, loads
the study from the shared storage (journal or PostgreSQL/MySQL, never SQLite) and runs its
share of the trials. Data handed over by the parent travels through a temporary Parquet file.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from tabtune.config import Config
from tabtune.errors import TabTuneInputError
from tabtune.features import TaskData
from tabtune.progress import ProgressFactory, ProgressUpdate, track
from tabtune.tuning.objective import Objective, load_tuning_data
from tabtune.tuning.spaces import resolve_search_space, space_with_defaults
from tabtune.tuning.storage import StorageSpec, check_parallel, open_storage, parse_storage
from tabtune.tuning.study import (
    StudySpec,
    count_finished,
    default_pruner,
    make_sampler,
    new_run_id,
    quiet_optuna,
    stop_when_defaults_fail,
    study_status,
)

__all__ = ["WorkerArgs", "run_parallel_workers", "worker_main"]

Process = multiprocessing.process.BaseProcess


@dataclass
class WorkerArgs:
    """What a worker process needs; plain data, sent to the child by multiprocessing."""

    storage: str
    study_name: str
    n_trials: int
    timeout: float | None
    config: dict[str, Any]
    data_path: str | None
    seed: int
    threads: int
    pruner: optuna.pruners.BasePruner | None = None
    run_id: str | None = None


def _write_data(data: TaskData, path: Path) -> None:
    frame = data.X.copy()
    frame["__y__"] = np.asarray(data.y)
    if data.weight is not None:
        frame["__weight__"] = np.asarray(data.weight)
    frame.to_parquet(path, index=False)


def _read_data(path: str | Path) -> TaskData:
    frame = pd.read_parquet(path)
    y = frame.pop("__y__").to_numpy()
    weight = frame.pop("__weight__").to_numpy() if "__weight__" in frame else None
    return TaskData(X=frame, y=y, weight=weight, rows=frame)


def worker_main(args: WorkerArgs) -> None:
    """Body of a worker process: run ``args.n_trials`` trials of an existing study."""
    # Set before the boosting library loads its OpenMP runtime in this fresh process.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = Config.model_validate(args.config)
    storage = parse_storage(args.storage)
    study = optuna.load_study(
        study_name=args.study_name,
        storage=open_storage(storage),
        sampler=make_sampler(args.seed),
        pruner=args.pruner or default_pruner(),
    )
    spec = StudySpec.from_study(study)
    task = cfg.task(spec.task)
    data = (
        _read_data(args.data_path)
        if args.data_path
        else load_tuning_data(cfg, task, spec.data_end, None)
    )
    space, _ = space_with_defaults(
        resolve_search_space(cfg, "global" if spec.scope == "global" else "adapt"),
        spec.defaults,
        args.study_name,
    )
    study.optimize(
        Objective(cfg, spec, data, space, args.run_id),
        n_trials=args.n_trials,
        timeout=args.timeout,
        catch=(Exception,),
        callbacks=[stop_when_defaults_fail],
    )


def _stop_workers(procs: Sequence[Process]) -> None:
    """Terminate workers still running; their trials are reaped by the next run."""
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=10)


def _worker_args(whole: WorkerArgs, n_workers: int) -> list[WorkerArgs]:
    """One worker's arguments per non-empty share of ``whole.n_trials``, each seeded apart
    from ``whole.seed`` and given its share of the CPUs."""
    n_trials = whole.n_trials
    shares = [n_trials // n_workers + (i < n_trials % n_workers) for i in range(n_workers)]
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    return [
        replace(whole, n_trials=share, seed=whole.seed + 7919 * (i + 1), threads=threads)
        for i, share in enumerate(s for s in shares if s > 0)
    ]


def _start_workers(jobs: Sequence[WorkerArgs], procs: list[Process]) -> None:
    """Start one spawned process per job, appending each to ``procs`` as soon as it runs."""
    ctx = multiprocessing.get_context("spawn")  # no fork after OpenMP has started threads
    for i, args in enumerate(jobs):
        proc = ctx.Process(target=worker_main, args=(args,), name=f"tabtune-tune-{i}")
        proc.start()
        procs.append(proc)


def _wait_for_workers(
    procs: Sequence[Process],
    study: optuna.Study,
    run_id: str,
    update: ProgressUpdate,
    report: bool,
) -> None:
    """Wait until every worker exits, reporting the trials of the run ``run_id`` finished."""
    while any(p.is_alive() for p in procs):
        if report:
            update(completed=count_finished(study, run_id), status=study_status(study))
        multiprocessing.connection.wait([p.sentinel for p in procs], timeout=0.5)
    for p in procs:
        p.join()
    if report:
        update(completed=count_finished(study, run_id), status=study_status(study))


def _study_and_config(
    store: StorageSpec, study_name: str, cfg: Config | None
) -> tuple[optuna.Study, dict[str, Any]]:
    """The existing study, and the configuration its workers run: ``cfg``, else the one
    recorded in the study when it was created."""
    with quiet_optuna():
        study = optuna.load_study(study_name=study_name, storage=open_storage(store))
    spec = StudySpec.from_study(study)  # refuses a study tabtune did not create
    return study, cfg.model_dump(mode="json") if cfg is not None else spec.config


def run_parallel_workers(
    storage: str,
    study_name: str,
    n_workers: int,
    n_trials: int,
    *,
    cfg: Config | None = None,
    timeout: float | None = None,
    data: TaskData | None = None,
    progress: ProgressFactory | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    run_id: str | None = None,
) -> int:
    """Run trials of an existing study in ``n_workers`` separate processes.

    The study must exist (``tune_*`` creates it, records its spec and queues the defaults
    before starting workers). ``n_trials`` is the total, split as evenly as possible, so the
    study grows by exactly ``n_trials`` unless the timeout ends it first. Each worker gets
    ``cpu_count // n_workers`` OpenMP threads.

    Parameters
    ----------
    storage : str
        A journal or PostgreSQL/MySQL URL (SQLite is refused).
    study_name : str
    n_workers, n_trials : int
    cfg : Config, optional
        Default: the configuration recorded in the study when it was created.
    timeout : float, optional
        Seconds per worker, checked between trials.
    data : TaskData, optional
        Handed to the workers through a temporary Parquet file; default each worker reads
        the configured store.
    progress : ProgressFactory, optional
        Reports the trials finished so far (:mod:`tabtune.progress`); default silent.
    pruner : optuna.pruners.BasePruner, optional
        Default :func:`~tabtune.tuning.study.default_pruner`.
    run_id : str, optional
        Recorded on the trials the workers score (default a fresh one): only these count.

    Returns
    -------
    int
        Trials the workers finished.

    Raises
    ------
    ConfigError
        For SQLite or a bad URL.
    RuntimeError
        When a worker process exits with an error.
    """
    store = parse_storage(storage)
    check_parallel(store, max(n_workers, 2))
    if n_workers < 1 or n_trials < 1:
        raise TabTuneInputError(
            f"need n_workers >= 1 and n_trials >= 1, got {n_workers}, {n_trials}"
        )
    study, config = _study_and_config(store, study_name, cfg)
    run_id = run_id or new_run_id()
    seed0 = int(config.get("tuning", {}).get("seed", 0)) + len(study.trials)
    with contextlib.ExitStack() as stack:
        data_path = None
        if data is not None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="tabtune-tune-"))
            data_path = str(Path(folder) / "data.parquet")
            _write_data(data, Path(data_path))
        whole = WorkerArgs(
            storage, study_name, n_trials, timeout, config, data_path, seed0, 1, pruner, run_id
        )
        jobs = _worker_args(whole, n_workers)
        procs: list[Process] = []
        stack.callback(_stop_workers, procs)  # on error or Ctrl-C in the parent
        _start_workers(jobs, procs)
        update = stack.enter_context(track(progress, study_name, n_trials))
        _wait_for_workers(procs, study, run_id, update, report=progress is not None)
    failed = [(p.name, p.exitcode) for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"tuning worker(s) failed: {failed} (see their errors above)")
    return count_finished(study, run_id)
