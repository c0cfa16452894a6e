"""Amounts in another unit than money, or than each other (micros, cents): what ``load`` notes
and ``tabtune check`` reports, before models learn from them and bids follow."""

from __future__ import annotations

import pandas as pd

__all__ = [
    "MAX_COST_PER_CLICK",
    "REVENUE_SPEND_RATIO",
    "currency_notes",
    "money_unit_notes",
]

#: A median cost per click above this is no currency's (a $0.10 click is 100,000 micros).
MAX_COST_PER_CLICK = 100_000.0
#: A median revenue / spend outside [1 / this, this] has one of the two in another unit.
REVENUE_SPEND_RATIO = 10_000.0


def money_unit_notes(rows: pd.DataFrame) -> list[str]:
    """Brands whose amounts look like another unit than each other or than money: a median
    cost per click above :data:`MAX_COST_PER_CLICK` (spend in micros), or a median revenue /
    spend beyond :data:`REVENUE_SPEND_RATIO` either way (one of the two in micros). The
    models would learn from them as they are, and bids would follow.

    Parameters
    ----------
    rows : DataFrame
        Campaign rows (``brand_id``, ``spend``, ``clicks``, ``revenue``).
    """
    if not {"brand_id", "spend", "clicks", "revenue"} <= set(rows.columns) or not len(rows):
        return []
    notes = []
    paid = rows[(rows["clicks"] > 0).to_numpy() & (rows["spend"] > 0).to_numpy()]
    cpc = (paid["spend"] / paid["clicks"]).groupby(paid["brand_id"], observed=True).median()
    odd = cpc[cpc > MAX_COST_PER_CLICK]
    if len(odd):
        shown = ", ".join(f"{b} ({v:,.0f})" for b, v in list(odd.items())[:5])
        notes.append(
            f"{len(odd)} brand(s) pay more than {MAX_COST_PER_CLICK:,.0f} per click (median "
            f"spend / clicks: {shown}): spend in micros? Bids would follow it; scale it when "
            "loading (data.scale: {spend: 0.000001}) into a new store"
        )
    both = rows[(rows["spend"] > 0).to_numpy() & (rows["revenue"] > 0).to_numpy()]
    roas = (both["revenue"] / both["spend"]).groupby(both["brand_id"], observed=True).median()
    odd = roas[(roas > REVENUE_SPEND_RATIO) | (roas < 1.0 / REVENUE_SPEND_RATIO)]
    if len(odd):
        shown = ", ".join(f"{b} ({v:.3g})" for b, v in list(odd.items())[:5])
        notes.append(
            f"{len(odd)} brand(s) have revenue / spend {REVENUE_SPEND_RATIO:,.0f}x or more "
            f"away from 1 (median: {shown}): revenue or spend in another unit (micros, cents)? "
            "Scale the column when loading (data.scale) into a new store"
        )
    return notes


def currency_notes(frame: pd.DataFrame, columns: list[str], source: str) -> list[str]:
    """A note when a column among ``columns`` (those not stored) names currencies and holds
    several (``Currency code``: EUR and USD): the amounts are stored as one unit, pooled in one
    global model beside absolute bid limits."""
    notes = []
    for column in columns:
        if "currency" not in str(column).lower() or isinstance(frame[column], pd.DataFrame):
            continue
        codes = sorted({str(v).strip() for v in frame[column].dropna()} - {""})
        if len(codes) > 1:
            shown = ", ".join(codes[:5]) + (" ..." if len(codes) > 5 else "")
            notes.append(
                f"{source}: column {column!r} holds {len(codes)} currencies ({shown}): their "
                "amounts are stored as one unit, pooled in one model beside absolute bid "
                "limits; convert them to one currency before loading, or load each currency "
                "into a store of its own (data.store)"
            )
    return notes
