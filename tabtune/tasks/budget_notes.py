"""What a budget plan should say about the channels it plans: one that stopped spending days
before the plan date is planned from its earlier days, as if it still ran (its recent spend
counts the idle days as none, and its response curve comes from the days it spent). The
``budget`` command and the refresh's budget nights both note it."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

__all__ = ["PAUSED_DAYS", "paused_channel_notes"]

#: A planned channel whose last day with spend is this many days or more before the plan's
#: day is noted as paused.
PAUSED_DAYS = 7


def paused_channel_notes(
    rows: pd.DataFrame, brand: str, day: pd.Timestamp, channels: Iterable[str]
) -> list[str]:
    """A note naming the planned ``channels`` of ``brand`` whose last spend in ``rows`` is
    :data:`PAUSED_DAYS` days or more before ``day`` (the day planned for).

    Parameters
    ----------
    rows : DataFrame
        The brand's campaign rows (``date``, ``channel``, ``spend``).
    brand : str
    day : Timestamp
        The day the plan is for.
    channels : iterable of str
        The channels the plan holds.
    """
    if not {"date", "channel", "spend"} <= set(rows.columns) or not len(rows):
        return []
    spent = rows[pd.to_numeric(rows["spend"], errors="coerce") > 0]
    last = pd.to_datetime(spent["date"]).groupby(spent["channel"].astype(str)).max()
    day = pd.Timestamp(day).normalize()
    idle = {
        c: last[c]
        for c in sorted(set(map(str, channels)))
        if c in last.index and (day - last[c]).days >= PAUSED_DAYS
    }
    if not idle:
        return []
    shown = ", ".join(f"{c} (last spend {d:%Y-%m-%d})" for c, d in idle.items())
    return [
        f"{brand}: {shown}: planned from its earlier days as if it still ran, its recent spend "
        f"counting the {PAUSED_DAYS}+ idle days as none; if it is paused on purpose, plan the "
        "other channels (from Python: BudgetPlanner.plan(..., bounds={channel: (lower, upper)}) "
        "chooses the channels)"
    ]
