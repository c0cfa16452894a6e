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


def test_a_day_of_spend_far_above_the_channels_usual_is_named(tmp_path) -> None:
    """One display day x100 (a row in cents, or a typo) set the budget plan's total and split
    in silence (decisions red-team): load and check name it; simulated spend raises nothing."""
    from tabtune.config import DataConfig, default_config
    from tabtune.data.check import check_data
    from tabtune.data.load import load_exports
    from tabtune.data.units import SPEND_SPIKE_RATIO, spend_spike_notes

    rows = simulate(n_brands=3, n_days=60, seed=2).observations
    assert spend_spike_notes(rows) == []
    brand, channel = rows["brand_id"].iloc[0], rows["channel"].iloc[0]
    day = sorted(rows["date"].unique())[-3]
    mine = (rows["brand_id"] == brand) & (rows["channel"] == channel) & (rows["date"] == day)
    daily = rows[(rows["brand_id"] == brand) & (rows["channel"] == channel)]
    median = daily.groupby("date")["spend"].sum().median()
    rows.loc[mine, "spend"] *= 1.05 * SPEND_SPIKE_RATIO * median / rows.loc[mine, "spend"].sum()
    (note,) = spend_spike_notes(rows)
    assert note.startswith("1 day(s) of a brand's channel spent 20x its median day or more")
    assert f"{brand} {channel} {pd.Timestamp(day):%Y-%m-%d}" in note
    rows.to_csv(tmp_path / "x.csv", index=False)
    summary = load_exports([tmp_path / "x.csv"], DataConfig(store=tmp_path / "store"))
    assert note in summary.notes
    cfg = default_config()
    cfg.data.store = tmp_path / "store"
    problems = check_data(cfg).problems
    assert any(f"{brand} {channel}" in p.what and "restated_rows" in p.fix for p in problems)
    # a nightly file of one day is compared with the stored days (review: a load saw only
    # its own rows, so one day never had 7 to compare with); stored spikes are not repeated
    night = simulate(n_brands=3, n_days=61, seed=2).observations
    night = night[night["date"] == night["date"].max()].copy()
    night.to_csv(tmp_path / "calm.csv", index=False)
    calm = load_exports([tmp_path / "calm.csv"], DataConfig(store=tmp_path / "store"))
    assert not [n for n in calm.notes if "median day" in n]
    mine = (night["brand_id"] == brand) & (night["channel"] == channel)
    night.loc[mine, "spend"] *= 100
    night["date"] = night["date"] + pd.Timedelta(days=1)
    night.to_csv(tmp_path / "night.csv", index=False)
    summary = load_exports([tmp_path / "night.csv"], DataConfig(store=tmp_path / "store"))
    (note,) = [n for n in summary.notes if "median day" in n]
    assert note.startswith("1 day(s)") and f"{brand} {channel}" in note


def test_a_nights_bids_in_another_unit_are_refused_beside_the_stored_ones(tmp_path) -> None:
    """One night's bids in micros sent every bid of the next day to bids.max_bid with exit 0
    (ops red-team): a load whose bids are 100x (or 1/100) the brand channel's stored ones is
    refused, naming data.scale; ordinary bid changes load."""
    import pytest

    from tabtune.config import DataConfig
    from tabtune.data.load import load_exports
    from tabtune.data.store import CampaignStore
    from tabtune.errors import ContractError

    rows = simulate(n_brands=2, n_days=31, seed=2).observations
    last = rows["date"].max()
    CampaignStore(tmp_path / "store").append(rows[rows["date"] < last])
    night = rows[rows["date"] == last].copy()
    data = DataConfig(store=tmp_path / "store")
    micros = night.assign(bid=night["bid"] * 1e6)
    micros.to_csv(tmp_path / "micros.csv", index=False)
    with pytest.raises(ContractError, match=r"data.scale: \{bid: 1e-06\}"):
        load_exports([tmp_path / "micros.csv"], data)
    assert CampaignStore(tmp_path / "store").read()["date"].max() < last  # nothing written
    # cents (100x) load: a bid raised from a 0.01 floor to 1.00 is real (review); check names
    # bids in another unit than the costs per click
    night.assign(bid=night["bid"] * 100).to_csv(tmp_path / "night.csv", index=False)
    assert load_exports([tmp_path / "night.csv"], data).rows_written == len(night)


def test_a_money_column_mapped_from_a_micros_column_needs_a_scale(tmp_path, monkeypatch, capsys):
    """``spend: cost_micros`` loaded 180,850,000 per row as money, with notes only once the
    rows were stored (exports red-team)."""
    import yaml

    from tabtune.data.store import CampaignStore
    from tests.conftest import assert_refused, run_cli

    monkeypatch.chdir(tmp_path)
    rows = pd.DataFrame(
        {
            "brand_id": "acme",
            "date": ["2026-11-01", "2026-11-02"],
            "channel": "search",
            "clicks": [135, 170],
            "conversions": [7, 8],
            "revenue": [266.51, 312.24],
            "metrics.cost_micros": [180_850_000, 132_090_000],
        }
    )
    rows.to_csv("ads.csv", index=False)
    config = tmp_path / "c.yaml"

    def data(**extra: object) -> list[str]:
        keys = {"store": "store", "columns": {"spend": "metrics.cost_micros"}, **extra}
        config.write_text(yaml.safe_dump({"data": keys}))
        return ["--config", str(config), "load", "ads.csv"]

    assert_refused(
        capsys,
        tmp_path,
        data(),
        "spend (from 'metrics.cost_micros'): the export's column name says micros",
        "fix: data.scale: {spend: 0.000001}",
    )
    code, out = run_cli(capsys, *data(scale={"spend": 0.000001}))
    assert code == 0, out
    assert CampaignStore("store").read()["spend"].tolist() == [180.85, 132.09]
    for name in ("Cost (micros)", "costMicros", "COST_MICROS", "metrics.cost_micros"):
        assert units_error(name) is not None, name
    for name in ("Microsoft spend", "cost_microsoft", "micro_conversion_value", "microsite"):
        assert units_error(name) is None, name  # not micros (review)


def units_error(column: str) -> object:
    from tabtune.config import DataConfig
    from tabtune.data.units import unscaled_micros_error

    return unscaled_micros_error(DataConfig(columns={"spend": column}), "f.csv")
