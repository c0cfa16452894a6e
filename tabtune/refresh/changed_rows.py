"""Rows a refresh's append changed, and the runs they make stale.

A refresh with ``--input`` writes rows into the store: rows new to it, and under
``data.restated_rows: replace`` new values over stored ones. A run of a date that already
learnt from the store up to that day did not see them: a finished run (of any task) whose
date is on or after a changed row's day is named with the way to redo it
(:func:`stale_runs_note`); an unfinished run being resumed does again the brands it had
already decided from the rows as they were (:func:`brands_to_redo`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from tabtune.errors import TabTuneInputError
from tabtune.refresh.state import REPORT_NAME, STATE_NAME
from tabtune.report import run_dir_for

__all__ = [
    "brands_to_redo",
    "changed_keys",
    "check_run_order",
    "finished_runs",
    "input_without_the_day_note",
    "stale_runs_note",
    "unfinished_runs_note",
]

logger = logging.getLogger("tabtune.refresh")

_DATE_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def changed_keys(new: pd.DataFrame, replaced: pd.DataFrame | None = None) -> pd.DataFrame:
    """Brand and day of each row the append writes: new to the store, or replaced.

    Parameters
    ----------
    new : DataFrame
        The rows the store did not hold (``brand_id``, ``date``).
    replaced : DataFrame, optional
        Rows whose stored values ``data.restated_rows: replace`` overwrites.
    """
    parts = [new] if replaced is None or not len(replaced) else [new, replaced]
    keys = pd.concat([p[["brand_id", "date"]] for p in parts], ignore_index=True)
    keys["date"] = pd.to_datetime(keys["date"]).dt.normalize()
    keys["brand_id"] = keys["brand_id"].astype(str)
    return keys.drop_duplicates(ignore_index=True)


def finished_runs(runs_dir: str | Path) -> list[tuple[dt.date, str, Path]]:
    """Every finished run under ``runs_dir`` (its report written), as (date, task, folder):
    ``runs/<date>/`` is the bid task's, ``runs/<date>/<task>/`` another task's."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    found = []
    for day_dir in sorted(root.iterdir()):
        if not (day_dir.is_dir() and _DATE_DIR.match(day_dir.name)):
            continue
        try:
            day = dt.date.fromisoformat(day_dir.name)
        except ValueError:
            continue
        if (day_dir / REPORT_NAME).is_file():
            found.append((day, "bid", day_dir))
        for task_dir in sorted(p for p in day_dir.iterdir() if p.is_dir()):
            if (task_dir / REPORT_NAME).is_file():
                found.append((day, task_dir.name, task_dir))
    return found


def stale_runs_note(
    runs_dir: str | Path, changed: pd.DataFrame, session: Sequence[dt.date] = ()
) -> list[str]:
    """The warning (also logged) that finished runs did not learn rows just written: each
    run dated on or after a changed row's day, with the rows it missed. The session's own
    dates are left out (they run now, or say so themselves). Empty when no finished run is
    concerned (the nightly case: the day's rows, then its run).
    """
    if not len(changed):
        return []
    first = changed["date"].min().date()
    stale = [
        (day, task, folder)
        for day, task, folder in finished_runs(runs_dir)
        if day >= first and day not in set(session)
    ]
    if not stale:
        return []
    shown = []
    for day, task, folder in stale[:5]:
        missed = int((changed["date"] <= pd.Timestamp(day)).sum())
        shown.append(f"{day} ({task}, {folder}: {missed} brand day(s) it did not learn)")
    more = f", and {len(stale) - 5} more" if len(stale) > 5 else ""
    message = (
        f"{len(stale)} finished run(s) learnt from the store before rows dated from {first} "
        f"were written (new, or replaced under data.restated_rows: replace): "
        f"{'; '.join(shown)}{more}. Their models and decisions do not use those rows; the "
        "nights from now on learn them (a brand champion at its next refit, within "
        "refresh.refit_every_days)"
    )
    logger.warning("%s", message)
    return [message]


def brands_to_redo(
    recorded: Sequence[str], changed: pd.DataFrame, date: dt.date, selected: Sequence[str]
) -> list[str]:
    """Brands of this attempt (``selected``) that an earlier attempt of the run already decided
    and whose rows up to ``date`` changed since: decided without those rows, they are done
    again."""
    if not len(changed) or not recorded:
        return []
    upto = changed.loc[changed["date"] <= pd.Timestamp(date), "brand_id"]
    return sorted(set(recorded) & set(upto) & set(selected))


def check_run_order(runs_dir: str | Path, task: str, days: list[dt.date]) -> None:
    """Refuse to start a run of ``task`` for a date before one of its finished runs.

    Brand champions of a later run learnt days after the date: a run of the date would decide
    from them, and take their rows for history that vanished. A finished run of the date
    returns its report; an unfinished one resumes unless a later run has finished since.

    Raises
    ------
    TabTuneInputError
        Naming the date, the later finished run and the next date to run.
    """
    done = sorted(day for day, kind, _ in finished_runs(runs_dir) if kind == task)
    if not done:
        return
    for day in days:
        later = [d for d in done if d > day]
        run_dir = run_dir_for(runs_dir, day.isoformat(), task)
        if not later or (run_dir / REPORT_NAME).is_file():
            continue  # a finished run returns its report
        if (run_dir / STATE_NAME).exists():
            raise TabTuneInputError(
                f"date={day}: its {task} refresh was interrupted, and the one of {later[-1]} has "
                f"finished since: its brand models may have learnt days after {day}, so resuming "
                f"{day} would decide from later days (a brand would even look as if it lost "
                f"history); nothing was done. The night of {later[-1]} refreshed every brand "
                f"since; to clear this, move {run_dir.absolute()} out of the runs folder"
            )
        raise TabTuneInputError(
            f"date={day}: the {task} refresh of {later[-1]} has finished, and its brand models "
            f"may have learnt days after {day}: a run of {day} would decide from those later "
            "days (and take their rows for lost history); nothing was done. Run dates in "
            f"order: the next one is {later[-1] + dt.timedelta(days=1)}; if the run of "
            f"{later[-1]} was a mistaken date, move its folder "
            f"{run_dir_for(runs_dir, later[-1].isoformat(), task).absolute()} out of the runs "
            f"folder; if the night of {day} was skipped, load its rows (`tabtune load FILE`): the "
            "next night learns them"
        )


def input_without_the_day_note(
    new_rows: pd.DataFrame | None, changed: pd.DataFrame | None, date: dt.date
) -> list[str]:
    """The note (also logged) when the rows given to a night hold none dated its date (an
    older file, another day's): what they hold and what they wrote. Empty otherwise."""
    if new_rows is None or changed is None or "date" not in new_rows or not len(new_rows):
        return []
    dates = pd.to_datetime(new_rows["date"], errors="coerce")
    if (dates.dt.normalize() == pd.Timestamp(date)).any():
        return []
    message = (
        f"the rows given hold {len(new_rows)} row(s) dated {dates.min():%Y-%m-%d} to "
        f"{dates.max():%Y-%m-%d}; {len(changed)} brand day(s) of them were new to the store (or "
        f"replaced); none is dated {date}: was the file the day's export?"
    )
    logger.warning("%s", message)
    return [message]


def unfinished_runs_note(runs_dir: str | Path, task: str, day: dt.date) -> list[str]:
    """The note (also logged) that runs of ``task`` before ``day`` were interrupted and never
    finished: tonight refreshes every brand from the newest rows, so they are superseded (and
    can no longer resume), but their decisions may be partial. Empty when there is none."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    open_runs = []
    for day_dir in sorted(root.iterdir()):
        if not _DATE_DIR.match(day_dir.name) or day_dir.name >= day.isoformat():
            continue
        run_dir = run_dir_for(runs_dir, day_dir.name, task)
        if (run_dir / STATE_NAME).exists() and not (run_dir / REPORT_NAME).is_file():
            open_runs.append(run_dir)
    if not open_runs:
        return []
    message = (
        f"the {task} refresh of {', '.join(str(r.absolute()) for r in open_runs[:3])} was "
        f"interrupted and never finished: tonight's run refreshes every brand from the rows up "
        f"to {day}, so it will not resume; its decisions may be partial (to clear this note, "
        "move the folder out of the runs folder)"
    )
    logger.warning("%s", message)
    return [message]
