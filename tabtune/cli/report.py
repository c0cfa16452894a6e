"""``tabtune report``: a refresh run's one-screen summary, and where its reports are."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from rich.console import Console

from tabtune.cli.console import console
from tabtune.cli.exit_codes import EXIT_OK, EXIT_PARTIAL
from tabtune.config import Config
from tabtune.errors import TabTuneInputError
from tabtune.registry.layout import check_name
from tabtune.report import (
    DEFAULT_TASK,
    finished_run_dates,
    load_run,
    state_lines,
    summary_lines,
)
from tabtune.tasks.common import as_timestamp

__all__ = ["cmd_report", "print_summary", "run_report_cli"]


def print_summary(report: Mapping[str, Any], con: Console | None = None) -> None:
    """Print a run's :func:`~tabtune.report.summary_lines`: the first bold, failures red."""
    con = con or console()
    for i, line in enumerate(summary_lines(report)):
        style = "bold" if i == 0 else ("red" if "FAILED" in line else None)
        con.print(line, style=style, markup=False)


def run_report_cli(cfg: Config, args: Any) -> int:
    """Print a run's summary (``args.date``, default the latest) and where its reports are.

    The run's ``report.html`` is rewritten when it is missing; an unfinished run says what it
    has recorded and how to resume it.

    Returns
    -------
    int
        0; 3 (``EXIT_PARTIAL``) when the run did not finish or some of its brands failed, so
        that a monitor reading the exit code alerts as for the refresh itself.

    Raises
    ------
    TabTuneInputError
        No run for that date (or no runs at all), a task that is not a plain name, or a
        damaged ``report.json`` / ``state.json`` (the message names the file and the fix).
    """
    task = getattr(args, "task", None) or DEFAULT_TASK
    try:  # a name, never a path: the run folder stays inside runs_dir
        check_name(task, "task")
    except TabTuneInputError as exc:
        raise TabTuneInputError(
            f"--task: {exc} (a task is a plain name, never a path); use one of the configured "
            f"tasks: {', '.join(sorted(cfg.tasks))}"
        ) from None
    date = getattr(args, "date", None)
    if date is not None:  # "yesterday" was looked up as a run date ("no refresh run")
        date = as_timestamp(date, "--date").date().isoformat()
    run = load_run(cfg.runs_dir, task, date)
    con = console()
    if run.report is None:
        day = str((run.state or {}).get("date"))
        later = [d for d in finished_run_dates(cfg.runs_dir, task) if d > day]
        for line in state_lines(run.state or {}, run.state_path, max(later, default=None)):
            con.print(line, markup=False)
        return EXIT_PARTIAL
    print_summary(run.report, con)
    con.print(f"report: {run.report_path}\n        {run.html_path}", markup=False)
    failed = any(b.get("status") == "failed" for b in run.report.get("brands") or [])
    return EXIT_PARTIAL if failed else EXIT_OK


def cmd_report(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune report [--date D]``."""
    return run_report_cli(cfg, args)
