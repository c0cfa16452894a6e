"""``tabtune load`` (an export into the store) and ``tabtune check`` (what the data supports).

The work is :func:`tabtune.data.load.load_exports` and :func:`tabtune.data.check.check_data`;
this module prints their results.
"""

from __future__ import annotations

import argparse

from rich.table import Table

from tabtune.cli.console import console
from tabtune.cli.exit_codes import EXIT_OK
from tabtune.cli.progress import progress_bar
from tabtune.cli.target_check import target_problems
from tabtune.config import Config
from tabtune.data.check import INACTIVE_DAYS, DataCheck, check_data
from tabtune.data.load import LoadSummary, load_exports

__all__ = ["cmd_check", "cmd_load", "input_notes", "print_load", "print_notes", "skipped_lines"]

_SHOWN = 10


def _names(items: list[str]) -> str:
    return ", ".join(items[:_SHOWN]) + (
        f", ... ({len(items)} in all)" if len(items) > _SHOWN else ""
    )


def cmd_load(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune load FILE... [--dry-run]``: map, validate and append exports to the store."""
    summary = load_exports(args.files, cfg.data, dry_run=args.dry_run, progress=progress_bar)
    print_load(summary, str(cfg.data.store))
    return EXIT_OK


def print_load(summary: LoadSummary, store: str) -> None:
    """Print a load summary: rows per brand and date range, what was skipped and why."""
    con = console()
    table = Table(title=f"rows per brand ({len(summary.brands)} brands)", title_justify="left")
    for name in ("brand", "rows", "new", "first", "last"):
        table.add_column(name, justify="right" if name in ("rows", "new") else "left")
    for row in summary.brands.itertuples(index=False):
        table.add_row(
            str(row.brand_id),
            f"{row.rows:,}",
            f"{row.new_rows:,}",
            f"{row.first:%Y-%m-%d}",
            f"{row.last:%Y-%m-%d}",
        )
    con.print(table)
    print_notes(summary)
    files = len(summary.files)
    head = f"read {summary.rows_read:,} rows from {files} file{'' if files == 1 else 's'}"
    stored = f"{summary.rows_already_stored:,} already stored (same row key, left as they are)"
    if summary.restated and summary.replace_restated:
        verb = "would replace" if summary.dry_run else "replaced"
        count = summary.rows_restated if summary.dry_run else summary.rows_replaced
        stored = (
            f"{summary.rows_already_stored:,} already stored ({verb} {count:,} of them by "
            "their new values, data.restated_rows: replace; the rest left as they are)"
        )
    elif summary.restated:
        _print_restated(summary, store)
    if summary.dry_run:
        new = int(summary.brands["new_rows"].sum()) if len(summary.brands) else 0
        con.print(f"{head}; dry run: {new:,} rows would be written to {store}, {stored}")
    else:
        con.print(f"{head}; {summary.rows_written:,} rows written to {store}, {stored}")


def _print_restated(summary: LoadSummary, store: str) -> None:
    """Warn about rows the store holds with other values: they were not taken."""
    shown = [f"{brand} ({_names(days)})" for brand, days in list(summary.restated.items())[:_SHOWN]]
    more = len(summary.restated) - len(shown)
    console().print(
        f"warning: {summary.rows_restated:,} row(s) of the files are already stored with other "
        f"values, on {_names(shown)}{f' and {more} more brand(s)' if more > 0 else ''}; the "
        "stored values were kept (data.restated_rows: keep, the default: a day exported before "
        "it was complete, or conversions attributed later, are not taken). To take them: set "
        f"data.restated_rows: replace in the config and load the files into {store} again. "
        "If they are another source's rows (another platform or account whose channel has "
        "the same name), replace would overwrite the stored ones: give them a channel of "
        "their own in that source's config (data.constants.channel, e.g. bing_search, in "
        "place of its columns.channel), or load every source with campaign_id mapped into a "
        "new store."
    )


def print_notes(summary: LoadSummary) -> None:
    """Print what preparing exports noted and left out (policies applied, rows skipped).

    ``tabtune load``, ``validate FILE``, ``refresh --input`` and ``predict --input`` print
    these, so that no row or column leaves unsaid.
    """
    con = console()
    for note in summary.notes:
        con.print(f"note: {note}", markup=False)
    if summary.skipped:
        con.print(f"skipped {summary.rows_skipped:,} row(s) (data.invalid_rows: skip):")
    for line in skipped_lines(summary):
        con.print(f"  - {line}", markup=False)


def skipped_lines(summary: LoadSummary) -> list[str]:
    """One line per rule that made ``data.invalid_rows: skip`` leave rows out."""
    return [
        f"{skip.source}: column {skip.column!r} {skip.rule}: {skip.count:,} row(s)"
        for skip in summary.skipped
    ]


def input_notes(summary: LoadSummary) -> list[str]:
    """What preparing an export noted, as the notes of a report (``refresh --input``)."""
    skipped = (
        [
            f"skipped {summary.rows_skipped:,} row(s) (data.invalid_rows: skip): "
            + "; ".join(skipped_lines(summary))
        ]  # fmt: skip
        if summary.skipped
        else []
    )
    return [*summary.notes, *skipped]


def cmd_check(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune check``: which tasks the store supports and what to fix."""
    report = check_data(cfg)
    report.problems.extend(target_problems(cfg, report))
    print_check(report)
    return EXIT_OK


def print_check(report: DataCheck) -> None:
    """Print a :class:`~tabtune.data.check.DataCheck`."""
    con = console()
    con.print(
        f"{report.store}: {report.rows:,} rows, {len(report.rows_per_brand)} brands, "
        f"{report.first:%Y-%m-%d} .. {report.last:%Y-%m-%d}"
    )
    con.print(f"columns: {', '.join(report.columns)}")
    table = Table(title="tasks", title_justify="left")
    for name in ("task", "configured", "runs", "uses", "missing"):
        table.add_column(name)
    for task in report.tasks:
        table.add_row(
            task.task,
            "yes" if task.configured else "no",
            "yes" if task.runs else "no",
            ", ".join(task.uses),
            ", ".join(task.missing) or "-",
        )
    con.print(table)
    con.print(
        f"brands with >= {report.min_rows_to_adapt} stored rows, enough to adapt (the "
        "refresh counts usable rows: with clicks for bid, so some may still be cold starts; "
        "whether a brand model or the global model serves is decided by each refresh's "
        f"contest, see `tabtune report`): {len(report.adapted)}"
        + (f" ({_names(report.adapted)})" if report.adapted else "")
    )
    con.print(
        f"brands too small to adapt, served by the global model's trees "
        f"(< {report.min_rows_to_adapt} stored rows): "
        f"{len(report.global_served)}"
        + (f" ({_names(report.global_served)})" if report.global_served else "")
    )
    inactive = [f"{b} (last {d:%Y-%m-%d})" for b, d in report.inactive.items()]
    con.print(
        f"inactive brands (no rows in the store's last {INACTIVE_DAYS} days): "
        + (_names(inactive) if inactive else "none")
    )
    one = [f"{b} ({c})" for b, c in report.one_channel.items()]
    con.print("one-channel brands: " + (_names(one) if one else "none"))
    if not report.problems:
        con.print("no problems found")
    for problem in report.problems:
        con.print(f"problem: {problem.what}\n  fix: {problem.fix}")
