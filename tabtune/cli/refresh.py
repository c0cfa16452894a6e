"""``tabtune refresh``: the nightly refresh (or a backfill) with a progress bar and a summary
per date."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from rich.console import Console

from tabtune.cli.brands import split_brands
from tabtune.cli.console import console
from tabtune.cli.exit_codes import EXIT_OK, EXIT_PARTIAL
from tabtune.cli.load import input_notes, print_notes
from tabtune.cli.progress import progress_bar
from tabtune.cli.report import print_summary
from tabtune.config import Config
from tabtune.data.load import prepare_exports
from tabtune.errors import TabTuneInputError
from tabtune.pipeline import store_for
from tabtune.refresh import REPORT_NAME, RunReport, refresh_range
from tabtune.refresh.input_checks import refuse_rows_before_history
from tabtune.refresh.run import check_run_date
from tabtune.refresh.state import parse_date
from tabtune.report import run_dir_for

__all__ = ["cmd_refresh", "print_run", "run_refresh_cli"]


def brand_note_lines(report: dict[str, Any], limit: int = 20) -> list[str]:
    """The brands' notes (dropped features, no bids, guard rails, fallbacks), each once with
    the brands it concerns, so that they reach the terminal and not only report.json."""
    by_note: dict[str, list[str]] = {}
    for b in report.get("brands", []):
        for note in b.get("notes") or []:
            by_note.setdefault(str(note), []).append(str(b.get("brand_id")))
    lines = []
    for note, brands in list(by_note.items())[:limit]:
        who = ", ".join(brands[:5]) + (f" and {len(brands) - 5} more" if len(brands) > 5 else "")
        lines.append(f"  {who}: {note}")
    if len(by_note) > limit:
        lines.append(f"  ... and {len(by_note) - limit} more notes (see report.json)")
    return (["  brand notes:"] + lines) if lines else []


def reason_lines(report: dict[str, Any], limit: int = 10) -> list[str]:
    """Why brands failed or were skipped, a line per brand (the summary counts them only)."""
    lines = [
        f"  {b.get('brand_id')} {b.get('status')}: {b.get('reason') or '(no reason recorded)'}"
        for status in ("failed", "skipped")
        for b in report.get("brands", [])
        if b.get("status") == status
    ]
    more = [f"  ... and {len(lines) - limit} more (see report.json)"] if len(lines) > limit else []
    return lines[:limit] + more


def print_run(cfg: Config, report: RunReport, con: Console, since: str | None = None) -> None:
    """One date's summary, the brands' notes and where its report is; a run that finished
    before ``since`` (this command's start, ISO 8601 UTC) is said to be an earlier one."""
    data = report.to_dict()
    if since is not None and report.finished_at and report.finished_at < since:
        con.print(
            f"refresh {report.task} {report.date}: finished already (at {report.finished_at}); "
            "it was not run again, its report follows",
            markup=False,
        )
    print_summary(data, con)
    for line in [*reason_lines(data), *brand_note_lines(data)]:
        con.print(line, markup=False)
    run_dir = run_dir_for(cfg.runs_dir, report.date, report.task)
    con.print(f"  report: {run_dir / REPORT_NAME} (+ report.html)", markup=False)


def _refresh_config(cfg: Config, *, plots: bool, scheduler: str | None) -> Config:
    """``cfg`` with ``--plots`` and ``--scheduler`` applied."""
    if plots:
        cfg = cfg.model_copy(update={"refresh": cfg.refresh.model_copy(update={"plots": True})})
    if scheduler:
        cfg = cfg.model_copy(
            update={
                "refresh": cfg.refresh.model_copy(
                    update={"executor": "dask", "scheduler": scheduler}
                )
            }
        )
    return cfg


def run_refresh_cli(cfg: Config, args: Any) -> int:
    """Check the arguments, run the refresh of each date and print a summary per date.

    Parameters
    ----------
    cfg : Config
    args : argparse.Namespace
        ``task``, ``date`` or ``date_from`` and ``date_to``, ``brands`` (comma-separated),
        ``scheduler``, ``input`` (rows to append first) and ``plots``.

    Returns
    -------
    int
        0, or 3 when some brands failed (the others completed).

    Raises
    ------
    TabTuneInputError
        Both or neither of ``--date`` and ``--from``/``--to``, an unknown task, bad rows.
    """
    task = getattr(args, "task", None) or "bid"
    cfg.task(task)
    date, start, end = (getattr(args, k, None) for k in ("date", "date_from", "date_to"))
    if date and (start or end):
        raise TabTuneInputError("give either --date D or --from D1 --to D2, not both")
    if not date and not (start and end):
        raise TabTuneInputError("refresh needs --date D, or --from D1 --to D2 for a backfill")
    if date:
        # checked under the option's own name (refresh_range checks them as --from / --to)
        check_run_date(store_for(cfg), parse_date(date, "--date"), "--date")
        start = end = date
    brands = split_brands(getattr(args, "brands", None))
    cfg = _refresh_config(
        cfg, plots=getattr(args, "plots", False), scheduler=getattr(args, "scheduler", None)
    )
    new_rows, noted = None, []
    if getattr(args, "input", None):
        # the preparation `tabtune load` applies (transforms, mapping, policies)
        new_rows, summary = prepare_exports([args.input], cfg.data)
        refuse_rows_before_history(store_for(cfg), new_rows)  # before the lock, too
        print_notes(summary)
        noted = input_notes(summary)
    con = console()
    since = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    reports = refresh_range(
        cfg,
        start,
        end,
        brands=brands,
        task=task,
        new_rows=new_rows,
        progress=progress_bar,
        on_report=lambda r: print_run(cfg, r, con, since),
        input_notes=noted,
    )
    return EXIT_PARTIAL if any(r.failed for r in reports) else EXIT_OK


def cmd_refresh(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune refresh``."""
    return run_refresh_cli(cfg, args)
