"""What a night's rows (``refresh --input``, ``refresh(new_rows=...)``) may not hold: days
far before a stored brand's first day. A nightly file adds the night and restates recent days
(a brand onboarded two nights ago gets its lookback window again); a year typed wrong into
the past (2025-11-25 for 2026-11-25) was stored months before the brand's history began,
where nothing takes it out again. Older history is loaded with ``tabtune load``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from tabtune.config import DataConfig
from tabtune.data.clock_times import shifted_midnight_error
from tabtune.data.schema import Violation
from tabtune.data.store import CampaignStore
from tabtune.errors import ContractError, TabTuneInputError
from tabtune.refresh.state import run_started

__all__ = [
    "check_input_has_the_day",
    "DAYS_AFTER_THE_RUN",
    "DAYS_BEFORE_HISTORY",
    "RULE_BEFORE_HISTORY",
    "refuse_clock_times",
    "refuse_rows_after_the_run",
    "refuse_rows_before_history",
]

#: A night's row more than this many days before its brand's first stored day is refused
#: (a restated lookback window reaches a few weeks back, a year typed wrong a year).
DAYS_BEFORE_HISTORY = 60
#: New rows may be dated this many days after the run's last date at most.
DAYS_AFTER_THE_RUN = 7
#: The rule such a row breaks.
RULE_BEFORE_HISTORY = (
    f"must not be dated more than {DAYS_BEFORE_HISTORY} days before the brand's first stored "
    "day (a nightly file)"
)
#: A store file's name: ``part-<first>-<last>-<hash8>.parquet`` (its first and last day).
_FILE_DAYS = re.compile(r"part-(\d{8})-(\d{8})-[0-9a-f]{8}\.parquet")


def _first_day(store: CampaignStore, brand: str) -> pd.Timestamp | None:
    """The brand's first stored day, from its files' names (no file is opened)."""
    days = [m.group(1) for f in store.files(brand) if (m := _FILE_DAYS.fullmatch(f.name))]
    return pd.Timestamp(min(days)) if days else None


def refuse_rows_before_history(store: CampaignStore, rows: pd.DataFrame) -> None:
    """Refuse a night's rows dated more than :data:`DAYS_BEFORE_HISTORY` days before their
    brand's first stored day (brands not stored yet are new: any day). Nothing is written.

    Raises
    ------
    ContractError
        Naming the brand, its rows' days, its first stored day and the fix.
    """
    if not len(rows):
        return
    dates = pd.to_datetime(rows["date"])
    for brand, when in dates.groupby(rows["brand_id"].astype(str), sort=True):
        first = _first_day(store, str(brand))
        if first is None:
            continue
        early = when[when < first - pd.Timedelta(days=DAYS_BEFORE_HISTORY)]
        if not len(early):
            continue
        raise ContractError(
            f"the night's rows: brand {brand!r} has {len(early)} row(s) dated "
            f"{early.min():%Y-%m-%d} .. {early.max():%Y-%m-%d}, more than "
            f"{DAYS_BEFORE_HISTORY} days before its first stored day ({first:%Y-%m-%d}): a "
            "nightly file adds the night and restates recent days (a year typed wrong?); "
            "nothing was written\n"
            "  fix: the file's dates; older history is loaded with `tabtune load FILE`",
            [Violation("date", RULE_BEFORE_HISTORY, len(early))],
        )


def refuse_clock_times(rows: pd.DataFrame, data: DataConfig) -> None:
    """Refuse ``refresh(new_rows=...)`` dates that a file given to ``refresh --input`` would
    have been refused for, before anything is written: timestamps with a time zone (every
    row was appended, then the night failed in pandas), and UTC midnights of a zone east of
    UTC (stored a day early: with ``data.restated_rows: replace`` they overwrote the day
    before; Python red-team)."""
    if "date" not in rows.columns:
        return
    dates = rows["date"]
    if isinstance(dates.dtype, pd.DatetimeTZDtype):
        raise TabTuneInputError(
            f"new_rows: column 'date' holds timestamps in time zone {dates.dt.tz}; give each "
            "row its day in the account's zone, e.g. rows['date'] = rows['date']"
            ".dt.tz_convert('Europe/Paris').dt.tz_localize(None).dt.normalize(); nothing was "
            "written"
        )
    brands = rows["brand_id"] if "brand_id" in rows.columns else None
    error = shifted_midnight_error(dates, "new_rows", "date", data, brands=brands)
    if error is not None:
        raise error


def refuse_rows_after_the_run(rows: pd.DataFrame, last: dt.date) -> None:
    """Refuse new rows dated more than :data:`DAYS_AFTER_THE_RUN` days after the run's last
    date: a year typed wrong on a day file (2025-05-02 for 2024-05-02) was appended with a
    note, and then no command took it out, the bids decided for a day a year ahead and the
    next nights were refused as out of order (refresh red-team). Rows of the next few days
    (a file that runs ahead of the run date) are appended, as before.

    Raises
    ------
    TabTuneInputError
        Naming the rows' dates and brands, the rule and the fix; nothing is written.
    """
    if "date" not in rows.columns or not len(rows):
        return
    dates = pd.to_datetime(rows["date"], errors="coerce")
    late = (dates > pd.Timestamp(last) + pd.Timedelta(days=DAYS_AFTER_THE_RUN)).to_numpy()
    if not late.any():
        return
    brands = sorted({str(b) for b in rows.loc[late, "brand_id"]})
    shown = ", ".join(brands[:5]) + (f" and {len(brands) - 5} more" if len(brands) > 5 else "")
    raise TabTuneInputError(
        f"new rows: {int(late.sum())} row(s) of brand(s) {shown} are dated from "
        f"{dates[late].min():%Y-%m-%d} to {dates[late].max():%Y-%m-%d}, more than "
        f"{DAYS_AFTER_THE_RUN} days after the run date {last}: a date typed wrong (the year?), "
        "or a file of days to come; nothing was written. fix: correct the rows' dates, or run "
        "the refresh of the file's own date"
    )


def check_input_has_the_day(
    store: CampaignStore,
    days: Sequence[dt.date],
    new_rows: pd.DataFrame | None,
    runs_dir: Path,
    task: str,
) -> None:
    """Refuse rows given to a night (or a range of nights) that hold none dated its dates
    when the store holds none either: ``--date`` or the file typed wrong (the 05-02 file run
    as 05-08 promoted models, wrote the 05-09 decisions and refused the real night as out of
    order; refresh red-team). Dates whose run exists resume or report.

    Raises
    ------
    TabTuneInputError
        Naming the rows' dates, the dates and the fixes.
    """
    if new_rows is None or "date" not in new_rows or not len(new_rows) or not store.brands():
        return
    if any(run_started(runs_dir, d, task) for d in days):
        return
    first, last = min(days), max(days)
    given = pd.to_datetime(new_rows["date"], errors="coerce").dt.normalize()
    if given.between(pd.Timestamp(first), pd.Timestamp(last)).any():
        return
    if len(store.read(start=first, end=last, columns=["brand_id"])):
        return  # the days are stored (loaded before): the rows are late ones of other days
    when = str(first) if first == last else f"{first} to {last}"
    raise TabTuneInputError(
        f"the rows given hold none dated {when} (they are dated {given.min():%Y-%m-%d} to "
        f"{given.max():%Y-%m-%d}) and the store holds none either: was the date or the file "
        f"typed wrong? nothing was done. fix: --date {given.max():%Y-%m-%d} if the file is that "
        "day's export; rows of other days alone are loaded with `tabtune load`"
    )
