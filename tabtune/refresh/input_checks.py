"""What a night's rows (``refresh --input``, ``refresh(new_rows=...)``) may not hold: days
before a stored brand's first day. A nightly file adds the night (and restates recent days);
a year typed wrong into the past (2025-11-25 for 2026-11-25) was stored months before the
brand's history began, where nothing takes it out again. Older history is loaded with
``tabtune load``."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from tabtune.data.schema import Violation
from tabtune.data.store import CampaignStore
from tabtune.errors import ContractError, TabTuneInputError

__all__ = [
    "INPUT_LAG_DAYS",
    "RULE_BEFORE_HISTORY",
    "refuse_date_past_input",
    "refuse_rows_before_history",
]

#: ``refresh --date D --input FILE`` whose file's newest day is more than this many days
#: before D is refused (a date typed wrong).
INPUT_LAG_DAYS = 7

#: The rule a night's row dated before its brand's first stored day breaks.
RULE_BEFORE_HISTORY = "must not be dated before the brand's first stored day (a nightly file)"


def refuse_rows_before_history(store: CampaignStore, rows: pd.DataFrame) -> None:
    """Refuse a night's rows dated before their brand's first stored day (brands not stored
    yet are new: any day). Nothing is written.

    Raises
    ------
    ContractError
        Naming the brand, its rows' days, its first stored day and the fix.
    """
    known = set(store.brands())
    for brand, part in rows.groupby(rows["brand_id"].astype(str), sort=True):
        if brand not in known:
            continue
        first = pd.Timestamp(store.date_range(brand)[0])
        early = pd.to_datetime(part["date"])
        early = early[early < first]
        if not len(early):
            continue
        raise ContractError(
            f"the night's rows: brand {brand!r} has {len(early)} row(s) dated "
            f"{early.min():%Y-%m-%d} .. {early.max():%Y-%m-%d}, before its first stored day "
            f"({first:%Y-%m-%d}): a nightly file adds the night and restates recent days (a "
            "year typed wrong?); nothing was written\n"
            "  fix: the file's dates; older history is loaded with `tabtune load FILE`",
            [Violation("date", RULE_BEFORE_HISTORY, len(early))],
        )


def refuse_date_past_input(rows: pd.DataFrame, date: dt.date, option: str = "--date") -> None:
    """Refuse a night's date more than :data:`INPUT_LAG_DAYS` after the newest day of its
    input file: a date typed wrong (``--date 2026-12-06`` for the file of 11-26) ran a night
    that decided for a day no row reached, after which every correct night was refused as
    out of order.

    Raises
    ------
    TabTuneInputError
        Naming the date, the file's newest day and the fix.
    """
    if not len(rows):
        return
    newest = pd.Timestamp(pd.to_datetime(rows["date"]).max()).date()
    if (date - newest).days <= INPUT_LAG_DAYS:
        return
    raise TabTuneInputError(
        f"{option} {date}: the input's newest day is {newest}, {(date - newest).days} days "
        f"before it (more than {INPUT_LAG_DAYS}): a date typed wrong? nothing was written\n"
        f"  fix: {option} {newest} (the file's night), or the night's own file"
    )
