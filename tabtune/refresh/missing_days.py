"""Rows a night's file left out: brands, and channels of a brand, that ran every day of the week
before the run date and have no row dated it while other rows are. The models learn as they
are; the notes say which decisions re-date an older day, or are not written."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc

from tabtune.data.store import CampaignStore
from tabtune.refresh.brand import STALE_DAYS
from tabtune.refresh.state import run_started

__all__ = ["missing_day_notes"]

logger = logging.getLogger("tabtune.refresh")

#: Shown per note, at most.
_SHOWN = 10


def _recent_rows(
    store: CampaignStore, date: dt.date, brands: Sequence[str] | None
) -> pd.DataFrame | None:
    since = pd.Timestamp(date - dt.timedelta(days=STALE_DAYS - 1))
    try:
        table = store.dataset(brands).to_table(
            columns=["brand_id", "channel", "date"],
            filter=(pc.field("date") >= since) & (pc.field("date") <= pd.Timestamp(date)),
        )
    except Exception:  # noqa: BLE001 - a damaged partition fails in its own job, not here
        return None
    return table.to_pandas()


#: Days of the week before the run date the store must hold for a group with rows on each of
#: them to count as daily.
_MIN_DAYS = 3


def _missing(rows: pd.DataFrame, keys: list[str], date: dt.date) -> pd.Series:
    """The newest day of each group of ``keys`` with rows on each day of the 6 before ``date``
    that the store holds (a night never loaded is no group's gap; at least :data:`_MIN_DAYS`
    of them) and none on ``date``."""
    held = int(rows.loc[rows["date"].dt.date < date, "date"].nunique())
    days = rows.groupby(keys, observed=True)["date"]
    newest, active = days.max(), days.nunique()
    daily = active >= max(held, _MIN_DAYS)
    return newest[(newest.dt.date < date) & daily].sort_index()


def _gap_days_note(
    store: CampaignStore, date: dt.date, task: str, runs_dir: str | Path | None
) -> list[str]:
    """The note for days of the week before ``date`` on which no brand of the store has a row
    while the same weekday a week earlier had rows, and no night of the day ran: a day's file
    never loaded (a skipped night), which the nights after learnt without a word (refresh
    red-team). Weekends a store never holds, and days whose night ran on no rows, are not
    named."""
    since = pd.Timestamp(date - dt.timedelta(days=2 * STALE_DAYS - 1))
    try:  # the distinct dates alone, in Arrow (every brand's rows of two weeks)
        dates = store.dataset(None).to_table(
            columns=["date"],
            filter=(pc.field("date") >= since) & (pc.field("date") <= pd.Timestamp(date)),
        )["date"]
    except Exception:  # noqa: BLE001 - a damaged partition fails in its own job, not here
        return []
    held = {pd.Timestamp(d).date() for d in pc.unique(dates).to_pylist()}
    if not held:
        return []
    gaps = [
        d
        for d in (date - dt.timedelta(days=i) for i in range(STALE_DAYS - 1, 0, -1))
        if d not in held
        and d - dt.timedelta(days=7) in held
        and not (runs_dir is not None and run_started(runs_dir, d, task))
    ]
    if not gaps:
        return []
    shown = ", ".join(f"{d}" for d in gaps)
    return [
        f"the store holds no row dated {shown}, while it holds the same weekday of the week "
        "before, and no night of it ran: a day's file never loaded (a night skipped)? Tonight's "
        "models learn without it; fix: load that day's export (`tabtune load FILE`): the "
        "nights after it learn it"
    ]


def missing_day_notes(
    store: CampaignStore,
    date: dt.date,
    brands: Sequence[str] | None,
    task: str = "bid",
    runs_dir: str | Path | None = None,
) -> list[str]:
    """Notes (also logged) on what tonight's rows lack while other rows of ``date`` are
    stored: daily brands without a row of the day (their decisions re-date their latest day's
    contexts), and daily channels of brands that have the day (no decision is written for
    them). Empty when no row is dated ``date`` (another note says so) or nothing is missing.
    Brands idle for :data:`~tabtune.refresh.brand.STALE_DAYS` or more get their own note.
    ``runs_dir``: where the task's nights are kept (a day whose night ran is no skipped one).
    """
    rows = _recent_rows(store, date, brands)
    if rows is None or not len(rows) or rows["date"].max().date() < date:
        return []
    notes = _gap_days_note(store, date, task, runs_dir)
    behind = _missing(rows, ["brand_id"], date)
    if len(behind):
        shown = ", ".join(f"{b} (newest {d:%Y-%m-%d})" for b, d in behind.head(_SHOWN).items())
        notes.append(
            f"{len(behind)} brand(s) have no rows dated {date} while other brands do (their "
            f"export may be missing from the day's file): {shown}"
            f"{' ...' if len(behind) > _SHOWN else ''}; their decisions for "
            f"{date + dt.timedelta(days=1)} re-date their latest day's contexts"
        )
    present = rows.loc[rows["date"].dt.date == date, "brand_id"].unique()
    channels = _missing(rows[rows["brand_id"].isin(present)], ["brand_id", "channel"], date)
    if len(channels):
        shown = ", ".join(f"{b}: {c}" for b, c in list(channels.index)[:_SHOWN])
        notes.append(
            f"{len(channels)} channel(s) of brands with rows dated {date} have none that day "
            f"(their export may be missing from the day's file): {shown}"
            f"{' ...' if len(channels) > _SHOWN else ''}; "
            + (
                f"no bid is written for them for {date + dt.timedelta(days=1)}"
                if task == "bid"
                else "their recent spend counts the day as none"
            )
        )
    for note in notes:
        logger.warning("%s", note)
    return notes
