"""Amounts in another unit (tabtune/data/units.py): spend in micros, revenue or spend scaled
against the other; simulated money raises nothing."""

from __future__ import annotations

import pandas as pd

from tabtune.data.synth import simulate
from tabtune.data.units import MAX_COST_PER_CLICK, REVENUE_SPEND_RATIO, money_unit_notes


def _rows(spend: float, clicks: int, revenue: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"brand_id": ["acme", "acme", "globex"], "spend": [spend, spend, 10.0],
         "clicks": [clicks, clicks, 20], "revenue": [revenue, revenue, 40.0]}
    )  # fmt: skip


def test_spend_in_micros_is_named() -> None:
    """A 0.33 click exported as 329,213 micros loaded as money: bids of 50 (red-team)."""
    note, ratio = money_unit_notes(_rows(spend=329_213.48 * 12, clicks=12, revenue=40.0))
    assert "revenue / spend" in ratio  # the revenue then looks tiny too
    assert note.startswith("1 brand(s) pay more than 100,000 per click") and "acme" in note
    assert "globex" not in note and "data.scale: {spend: 0.000001}" in note


def test_revenue_and_spend_far_apart_are_named() -> None:
    (note,) = money_unit_notes(_rows(spend=10.0, clicks=20, revenue=40.0 * 1e6))
    assert "revenue / spend 10,000x or more away from 1" in note and "acme" in note


def test_money_of_every_simulated_brand_passes() -> None:
    rows = simulate(n_brands=30, n_days=60, seed=4).observations
    assert money_unit_notes(rows) == []
    cpc = (rows["spend"] / rows["clicks"].where(rows["clicks"] > 0)).max()
    assert cpc < MAX_COST_PER_CLICK and REVENUE_SPEND_RATIO > 1  # the margin the rule keeps


def test_several_currencies_in_a_column_not_stored_are_named() -> None:
    from tabtune.data.units import currency_notes

    frame = pd.DataFrame(
        {"brand_id": ["a", "b", "a"], "Currency code": ["EUR", "USD", "EUR"], "Other": list("xyz")}
    )
    (note,) = currency_notes(frame, ["Currency code", "Other"], "g.csv")
    assert note.startswith("g.csv: column 'Currency code': the brands' amounts are in 2")
    mixed = frame.assign(**{"Currency code": ["EUR", "USD", "USD"]})  # brand a: two
    (note,) = currency_notes(mixed, ["Currency code"], "g.csv")
    assert "brand(s) a hold amounts in several currencies (EUR, USD)" in note
    assert currency_notes(frame.head(1), ["Currency code"], "g.csv") == []  # one currency
    amounts = pd.DataFrame({"brand_id": ["a"] * 3, "Cost (converted currency)": [1.1, 2.2, 3.3]})
    assert currency_notes(amounts, ["Cost (converted currency)"], "g.csv") == []  # no codes
