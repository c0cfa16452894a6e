"""``tabtune tune``: run the studies of a tuning scope with a progress bar, then summarise."""

from __future__ import annotations

import argparse
import logging

from tabtune.cli.commands import tasks_of
from tabtune.cli.console import console, fmt
from tabtune.cli.exit_codes import EXIT_OK
from tabtune.cli.progress import progress_bar
from tabtune.cli.tables import metric_name, summary_table
from tabtune.config import Config
from tabtune.tuning import TuningResult, parse_storage, tune_scope

__all__ = ["cmd_tune", "quiet_interrupted_trials", "run_tuning_cli", "summary_lines"]


class _NoInterruptedTrials(logging.Filter):
    """Drops a record that carries a Ctrl-C: Optuna logs the trial it stopped, traceback and
    all, before the command says "interrupted" (the trial is failed, and retried next run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and record.exc_info[0] is KeyboardInterrupt)


_NO_INTERRUPTED_TRIALS = _NoInterruptedTrials()


def quiet_interrupted_trials() -> None:
    """Put :class:`_NoInterruptedTrials` on Optuna's handlers and the root's (once each)."""
    optuna_logger = logging.getLogger("optuna")
    for handler in [*optuna_logger.handlers, *logging.getLogger().handlers]:
        if _NO_INTERRUPTED_TRIALS not in handler.filters:
            handler.addFilter(_NO_INTERRUPTED_TRIALS)


def summary_lines(result: TuningResult, loss: str = "loss") -> list[str]:
    """Plain-text summary of a tuning run: trial counts, time and the gain over defaults."""
    gain = "-" if result.gain_pct is None else f"{result.gain_pct:+.2f}%"
    used_by = (
        "every pretraining of the task (tabtune pretrain, the refresh's re-pretraining)"
        if result.study_name.endswith(":global")
        else "the refresh's challengers of the brands it covers"
    )
    return [
        f"study {result.study_name} in {result.storage}: {result.n_trials} trials "
        f"({result.n_complete} complete, {result.n_pruned} pruned, {result.n_failed} failed"
        + (
            f", {result.n_interrupted} of them stopped by Ctrl-C or SIGTERM"
            if result.n_interrupted
            else ""
        )
        + "), "
        f"{result.n_new} added by this run in {result.seconds:.1f}s",
        f"{loss} (mean over time-ordered folds): defaults {fmt(result.default_value)}, "
        f"adopted {fmt(result.best_value)}, gain over defaults {gain}",
        f"the adopted parameters (the defaults unless a trial wins on every "
        f"fold by tuning.min_gain) are used by {used_by}",
    ]


def run_tuning_cli(
    cfg: Config,
    *,
    task: str,
    n_trials: int | None = None,
    timeout: float | None = None,
    scope: str = "global",
    n_jobs: int = 1,
) -> int:
    """Run the studies of ``scope`` (:func:`tabtune.tuning.tune_scope`) and print each summary.

    Parameters
    ----------
    cfg : Config
    task : str
    n_trials, timeout : optional
        Per study; default ``tuning.n_trials`` and ``tuning.timeout``.
    scope : str, default "global"
        ``"global"``, ``"adapt:<bucket>"``, ``"adapt"`` or ``"brand:<brand>"``.
    n_jobs : int, default 1
        Worker processes (needs a journal or PostgreSQL storage when > 1).

    Returns
    -------
    int
        The exit code (0).

    Raises
    ------
    ConfigError, TabTuneInputError
        Bad search space, storage, budget, scope or data (the CLI exits with 2).
    """
    quiet_interrupted_trials()
    storage = parse_storage(cfg.tuning.storage)
    # a folder created for the storage is said once: a mistyped path then shows at once
    new_folder = storage.path is not None and not storage.path.parent.exists()
    results = tune_scope(
        cfg,
        task,
        scope,
        n_trials=n_trials,
        timeout=timeout,
        n_jobs=n_jobs,
        progress=progress_bar,
    )
    con = console()
    loss = metric_name(cfg.task(task))
    for result in results:
        for line in summary_lines(result, loss):
            con.print(line)
        con.print(summary_table(result, loss))
    if new_folder and storage.path is not None and storage.path.parent.is_dir():
        con.print(
            f"note: created the folder {storage.path.parent} for tuning.storage {storage.display}",
            markup=False,
        )
    return EXIT_OK


def cmd_tune(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune tune``."""
    return run_tuning_cli(
        cfg,
        task=tasks_of(args, cfg)[0],
        n_trials=args.trials,
        timeout=args.timeout,
        scope=args.scope,
        n_jobs=args.jobs,
    )
