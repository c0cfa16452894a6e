"""What a brand's rows of the run date say that its operator should know: a day whose clicks
did not convert where the days before did (a tracking outage, or conversions attributed
later), and channels the brand had never used. Notes only: the rows are stored and learnt as
they are.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from tabtune.features import TIME_COLUMN

__all__ = ["EXPECTED_CONVERSIONS", "LOOKBACK_DAYS", "day_notes"]

#: Days before the run date whose conversion rate says what the day should have converted.
LOOKBACK_DAYS = 14
#: Conversions a day's clicks should have brought, at least, for none to be worth a note
#: (a Poisson count of mean 5 is zero less than 1% of the time).
EXPECTED_CONVERSIONS = 5.0


def _outage_note(today: pd.DataFrame, before: pd.DataFrame, date: dt.date) -> list[str]:
    clicks = float(today["clicks"].sum())
    if clicks <= 0 or float(today["conversions"].sum()) > 0 or float(today["revenue"].sum()) > 0:
        return []
    if float(before["clicks"].sum()) <= 0:
        return []
    # each channel's own rate: a channel that never tracks conversions expects none
    by = "channel" if "channel" in today.columns else None
    past = before.groupby(by, observed=True)[["clicks", "conversions"]].sum() if by else None
    now = today.groupby(by, observed=True)["clicks"].sum() if by else None
    if past is None or now is None:
        rate = float(before["conversions"].sum()) / float(before["clicks"].sum())
        expected = clicks * rate
    else:
        rates = (past["conversions"] / past["clicks"].where(past["clicks"] > 0)).fillna(0.0)
        expected = float((now * rates.reindex(now.index).fillna(0.0)).sum())
        rate = expected / clicks
    if expected < EXPECTED_CONVERSIONS:
        return []
    return [
        f"no conversion and no revenue on {date} from {clicks:,.0f} clicks, where the "
        f"{LOOKBACK_DAYS} days before converted {rate:.1%} of such clicks (about "
        f"{expected:.0f} expected): a tracking outage, or conversions attributed later? The "
        "day is learnt as stored; when its numbers come, load them with "
        "data.restated_rows: replace"
    ]


def _new_channel_note(today: pd.DataFrame, before: pd.DataFrame, date: dt.date) -> list[str]:
    if "channel" not in today.columns:
        return []
    # the distinct values first: a brand's whole history, one Python string per row, was
    # most of a quiet night's notes
    seen = {str(c) for c in before["channel"].unique()}
    new = sorted({str(c) for c in today["channel"].unique()} - seen)
    if not new or not len(before):
        return []
    shown = ", ".join(repr(c) for c in new)
    return [
        f"first rows of channel(s) {shown} on {date}: the brand's history holds none, so the "
        "models know them from other brands at most; their bids rest on the other features"
    ]


def day_notes(rows: pd.DataFrame, date: dt.date) -> list[str]:
    """Notes on the brand's rows dated ``date`` against its rows of the days before.

    Parameters
    ----------
    rows : DataFrame
        The brand's campaign rows up to ``date`` (the store's columns).
    date : date
        The run date.
    """
    if not len(rows) or not {"clicks", "conversions", "revenue"} <= set(rows.columns):
        return []
    days = pd.to_datetime(rows[TIME_COLUMN]).dt.normalize()
    day = pd.Timestamp(date)
    today = rows[(days == day).to_numpy()]
    if not len(today):
        return []
    recent = ((days < day) & (days >= day - pd.Timedelta(days=LOOKBACK_DAYS))).to_numpy()
    before = rows[(days < day).to_numpy()]
    return _outage_note(today, rows[recent], date) + _new_channel_note(today, before, date)
