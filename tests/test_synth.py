"""Tests of the simulator: determinism, the contract, history spread, and that the truth is true."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from tabtune.data.synth import (
    AUDIENCES,
    CHANNELS,
    DEVICES,
    KEY_COLUMNS,
    OBSERVATION_COLUMNS,
    TRUTH_COLUMNS,
    VERTICALS,
    GroundTruth,
    SynthData,
    load_truth,
    simulate,
    write_synth,
)
from tabtune.errors import TabTuneInputError


@pytest.fixture(scope="module")
def small() -> SynthData:
    return simulate(n_brands=12, n_days=200, seed=5)


@pytest.fixture(scope="module")
def default() -> SynthData:
    return simulate()


def _check_invariants(obs: pd.DataFrame) -> None:
    assert list(obs.columns) == OBSERVATION_COLUMNS
    assert len(obs) > 0
    assert not obs.isna().any().any()
    for col in ("brand_id", "channel", "campaign_id", "audience", "device", "vertical"):
        assert obs[col].dtype == "str", col
    assert obs["date"].dtype == "datetime64[us]"
    assert (obs["date"] == obs["date"].dt.normalize()).all()
    for col in ("impressions", "clicks", "conversions"):
        assert obs[col].dtype == np.int64, col
        assert (obs[col] >= 0).all(), col
    for col in ("spend", "revenue", "bid"):
        assert obs[col].dtype == np.float64, col
        assert np.isfinite(obs[col]).all(), col
    assert (obs["bid"] > 0).all()
    assert (obs["spend"] >= 0).all() and (obs["revenue"] >= 0).all()
    assert (obs["clicks"] <= obs["impressions"]).all()
    assert (obs["conversions"] <= obs["clicks"]).all()
    assert (obs["spend"] <= obs["clicks"] * obs["bid"]).all()
    assert (obs.loc[obs["clicks"] == 0, "spend"] == 0).all()
    assert (obs.loc[obs["conversions"] == 0, "revenue"] == 0).all()
    assert not obs.duplicated(KEY_COLUMNS).any()
    assert set(obs["channel"]) <= set(CHANNELS)
    assert set(obs["audience"]) <= set(AUDIENCES)
    assert set(obs["device"]) <= set(DEVICES)
    assert set(obs["vertical"]) <= set(VERTICALS)
    assert obs.groupby("brand_id")["vertical"].nunique().max() == 1
    # Campaign ids belong to their brand and to one channel.
    assert (obs["campaign_id"].str.slice(0, 4) == obs["brand_id"]).all()
    assert obs.groupby("campaign_id")["channel"].nunique().max() == 1
    # Rows are sorted by the key.
    resorted = obs.sort_values(KEY_COLUMNS, kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(resorted, obs)


# ------------------------------------------------------------------------------ determinism


def test_same_seed_gives_identical_data(small: SynthData) -> None:
    again = simulate(n_brands=12, n_days=200, seed=5)
    pd.testing.assert_frame_equal(again.observations, small.observations, check_exact=True)
    pd.testing.assert_frame_equal(again.truth, small.truth, check_exact=True)
    assert again.params == small.params


def test_other_seed_differs(small: SynthData) -> None:
    other = simulate(n_brands=12, n_days=200, seed=6)
    assert other.params != small.params
    assert not other.observations.equals(small.observations)
    assert not other.truth["true_value_per_click"].equals(small.truth["true_value_per_click"])


def test_params_are_json(small: SynthData) -> None:
    assert json.loads(json.dumps(small.params, allow_nan=False)) == small.params
    assert small.params["seed"] == 5
    assert [b["brand_id"] for b in small.params["brands"]] == [f"b{i:03d}" for i in range(12)]


# ------------------------------------------------------------------------------ contract


def test_contract_invariants(small: SynthData) -> None:
    _check_invariants(small.observations)
    assert list(small.truth.columns) == KEY_COLUMNS + TRUTH_COLUMNS
    pd.testing.assert_frame_equal(small.truth[KEY_COLUMNS], small.observations[KEY_COLUMNS])


def test_contract_schema_validation(small: SynthData, default: SynthData) -> None:
    try:
        schema = importlib.import_module("tabtune.data.schema")
    except ImportError:  # pragma: no cover - the schema module is written in parallel
        pytest.skip("tabtune.data.schema is not there yet")
    validate = getattr(schema, "validate_campaigns", None)
    if validate is None:  # pragma: no cover
        pytest.skip("tabtune.data.schema.validate_campaigns is not there yet")
    for data in (small, default):
        normalised = validate(data.observations)
        # Already normalised: validation changes nothing but the column order.
        pd.testing.assert_frame_equal(normalised[OBSERVATION_COLUMNS], data.observations)


@pytest.mark.parametrize(("n_brands", "n_days"), [(1, 1), (3, 5), (6, 90)])
def test_tiny_simulations_hold_the_contract(n_brands: int, n_days: int) -> None:
    data = simulate(n_brands=n_brands, n_days=n_days, seed=1)
    _check_invariants(data.observations)
    assert data.observations["brand_id"].nunique() == n_brands
    assert data.observations["date"].nunique() <= n_days


@pytest.mark.parametrize(
    "kwargs", [{"n_brands": 0}, {"n_days": 0}, {"n_brands": 2.5}, {"start": "not a date"}]
)
def test_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(TabTuneInputError):
        simulate(**kwargs)


# ------------------------------------------------------------------------------ history spread


def test_history_length_spread_at_defaults(default: SynthData) -> None:
    obs = default.observations
    rows = obs.groupby("brand_id").size()
    assert len(rows) == 60
    assert 150_000 <= len(obs) <= 400_000
    assert (rows < 100).sum() >= 2
    assert (rows > 10_000).sum() >= 2
    assert ((rows >= 1_000) & (rows <= 10_000)).sum() >= 25
    # Brands start on different dates; some only in the last weeks.
    first = obs.groupby("brand_id")["date"].min()
    last_day = obs["date"].max()
    assert (first == obs["date"].min()).sum() >= 20
    assert ((last_day - first).dt.days < 60).sum() >= 2
    # 1 to ~40 active combos per brand-day.
    active = obs.groupby(["brand_id", "date"]).size()
    assert active.min() >= 1 and 25 <= active.max() <= 40
    assert set(obs["vertical"]) == set(VERTICALS)
    assert set(obs["channel"]) == set(CHANNELS)


# ------------------------------------------------------------------------------ the truth is true


def test_ground_truth_reproduces_truth_frame(small: SynthData) -> None:
    gt = GroundTruth(small.params)
    obs, truth = small.observations, small.truth
    values = gt.evaluate(obs)
    pd.testing.assert_frame_equal(values, truth[TRUTH_COLUMNS], check_exact=True)
    np.testing.assert_array_equal(gt.value_per_click(obs), truth["true_value_per_click"])
    np.testing.assert_array_equal(gt.conversion_rate(obs), truth["true_cvr"])
    np.testing.assert_array_equal(gt.expected_clicks(obs), truth["true_expected_clicks"])
    np.testing.assert_array_equal(gt.expected_cpc(obs), truth["true_cpc"])
    # Rows in another order and with another index give the same values row for row.
    shuffled = obs.sample(frac=1.0, random_state=0)
    np.testing.assert_array_equal(
        gt.value_per_click(shuffled), truth["true_value_per_click"].to_numpy()[shuffled.index]
    )


def test_truth_columns_are_consistent(small: SynthData) -> None:
    t = small.truth
    obs = small.observations
    assert (t[TRUTH_COLUMNS] > 0).all().all()
    assert (t["true_cvr"] <= 0.9).all() and (t["true_ctr"] <= 0.5).all()
    assert (t["true_cpc"] <= obs["bid"]).all()
    np.testing.assert_allclose(t["true_value_per_click"], t["true_cvr"] * t["true_order_value"])
    np.testing.assert_allclose(
        t["true_expected_revenue"], t["true_expected_clicks"] * t["true_value_per_click"]
    )
    np.testing.assert_allclose(t["true_expected_spend"], t["true_expected_clicks"] * t["true_cpc"])
    np.testing.assert_allclose(
        t["true_expected_impressions"] * t["true_ctr"], t["true_expected_clicks"]
    )


def _z(observed: float, expected: float, variance: float) -> float:
    return abs(observed - expected) / math.sqrt(variance)


def test_observed_totals_match_expectations(small: SynthData) -> None:
    obs, t = small.observations, small.truth
    shock = 1 / 10  # squared coefficient of variation of the gamma day shock on volume
    for channel in CHANNELS:
        sel = (obs["channel"] == channel).to_numpy()
        if not sel.any():
            continue
        o, tr = obs[sel], t[sel]
        m = tr["true_expected_clicks"]
        var_clicks = m + shock * m**2  # clicks are gamma-mixed Poisson
        assert _z(o["clicks"].sum(), m.sum(), var_clicks.sum()) < 5, channel
        # Given the clicks, conversions are binomial: a sharp check of the conversion rate.
        expected_conv = (o["clicks"] * tr["true_cvr"]).sum()
        var_conv = (o["clicks"] * tr["true_cvr"] * (1 - tr["true_cvr"])).sum()
        assert _z(o["conversions"].sum(), expected_conv, var_conv) < 5, channel
        var_spend = (tr["true_cpc"] ** 2 * var_clicks).sum()
        assert _z(o["spend"].sum(), tr["true_expected_spend"].sum(), var_spend) < 5, channel
        var_revenue = (tr["true_value_per_click"] ** 2 * var_clicks).sum() + (
            1.5 * m * tr["true_cvr"] * tr["true_order_value"] ** 2
        ).sum()
        assert _z(o["revenue"].sum(), tr["true_expected_revenue"].sum(), var_revenue) < 5, channel


def test_revenue_per_click_matches_value_per_click_in_context_groups(small: SynthData) -> None:
    obs, t = small.observations, small.truth
    frame = obs.assign(expected=obs["clicks"] * t["true_value_per_click"], cvr=t["true_cvr"])
    groups = frame.groupby(["brand_id", "channel", "audience"])
    summary = groups.agg(
        clicks=("clicks", "sum"),
        conversions=("conversions", "sum"),
        revenue=("revenue", "sum"),
        expected=("expected", "sum"),
    )
    big = summary[summary["conversions"] >= 500]
    assert len(big) >= 10
    observed_vpc = big["revenue"] / big["clicks"]
    true_vpc = big["expected"] / big["clicks"]
    # Relative sd of a sum of n orders (gamma shape 2) plus binomial conversion noise.
    rel_sd = np.sqrt(1.5 / big["conversions"])
    assert (np.abs(observed_vpc / true_vpc - 1) < 5 * rel_sd + 0.01).all()
    assert np.median(np.abs(observed_vpc / true_vpc - 1)) < 0.05


def test_channel_revenue_matches_rows_and_is_monotone(small: SynthData) -> None:
    gt = GroundTruth(small.params)
    frame = pd.concat([small.observations, small.truth[TRUTH_COLUMNS]], axis=1)
    channel_days = frame.groupby(["brand_id", "channel", "date"])[
        ["true_expected_spend", "true_expected_revenue", "spend", "revenue"]
    ].sum()
    sample = channel_days.sample(40, random_state=1)
    for (brand, channel, date), row in sample.iterrows():
        # The rows of a channel-day sum exactly to the Hill curve at their expected spend.
        np.testing.assert_allclose(
            gt.channel_revenue(brand, channel, date, row["true_expected_spend"]),
            row["true_expected_revenue"],
            rtol=1e-9,
        )
        split = gt.habitual_split(brand, date)
        assert channel in split and split[channel] > 0
    # In aggregate the observed channel-day revenue follows the curve at the realised spend.
    predicted = sum(
        float(gt.channel_revenue(b, c, d, row["spend"]))
        for (b, c, d), row in channel_days.sample(300, random_state=2).iterrows()
    )
    observed = channel_days.sample(300, random_state=2)["revenue"].sum()
    assert abs(observed / predicted - 1) < 0.1

    grid = np.concatenate([[0.0], np.geomspace(1.0, 1e6, 200)])
    for brand in small.params["brands"]:
        for date in ("2024-03-01", "2024-07-15", "2026-01-01"):
            for channel in gt.habitual_split(brand["brand_id"], date):
                curve = gt.channel_revenue(brand["brand_id"], channel, date, grid)
                assert curve.shape == grid.shape
                assert curve[0] == 0.0
                assert np.all(np.diff(curve) >= 0)
                assert curve[-1] > 0
    scalar = gt.channel_revenue("b000", "search", "2024-03-01", 100.0)
    assert scalar.shape == ()
    assert gt.channel_revenue("b000", "search", "2024-03-01", np.array([1.0, 2.0])).shape == (2,)


def test_ground_truth_at_unseen_contexts(small: SynthData) -> None:
    gt = GroundTruth(small.params)
    rows = small.observations.iloc[::97].reset_index(drop=True)
    values = gt.evaluate(rows)
    higher = gt.evaluate(rows.assign(bid=rows["bid"] * 1.25))
    much_higher = gt.evaluate(rows.assign(bid=rows["bid"] * 1.5625))
    # A higher bid: more clicks with diminishing returns, higher cpc, never above the bid.
    gain_1 = higher["true_expected_clicks"] / values["true_expected_clicks"]
    gain_2 = much_higher["true_expected_clicks"] / higher["true_expected_clicks"]
    assert (gain_1 > 1).all() and (gain_1 < 1.25).all()
    np.testing.assert_allclose(gain_1, gain_2)  # constant elasticity below 1
    assert (higher["true_cpc"] > values["true_cpc"]).all()
    assert (higher["true_cpc"] <= rows["bid"] * 1.25).all()
    assert (higher["true_value_per_click"] != values["true_value_per_click"]).all()
    # The bid effect on value per click is modest.
    ratio = higher["true_value_per_click"] / values["true_value_per_click"]
    assert ratio.between(0.6, 1.6).all()
    # An unknown campaign, a new date and no bid column still evaluate.
    novel = rows.assign(campaign_id="b000-c99", date=pd.Timestamp("2027-02-01")).drop(columns="bid")
    novel_values = gt.evaluate(novel)
    assert np.isfinite(novel_values.to_numpy()).all() and (novel_values > 0).all().all()
    with pytest.raises(TabTuneInputError, match="brand_id"):
        gt.evaluate(rows.assign(brand_id="zzz"))
    with pytest.raises(TabTuneInputError, match="channel"):
        gt.evaluate(rows.assign(channel="radio"))
    with pytest.raises(TabTuneInputError, match="bid"):
        gt.evaluate(rows.assign(bid=0.0))


def test_shared_structure_is_visible(small: SynthData) -> None:
    t = pd.concat([small.observations, small.truth[TRUTH_COLUMNS]], axis=1)
    cvr = t.groupby("audience")["true_cvr"].median()
    assert cvr["retargeting"] > cvr["prospecting"] and cvr["loyal"] > cvr["lookalike"]
    by_channel = t.groupby("channel")["true_cvr"].median()
    assert by_channel["search"] > by_channel["display"]
    # Weekends differ from weekdays, and value per click moves through the year.
    brand = t[t["brand_id"] == t["brand_id"].value_counts().index[0]]
    weekend = brand["date"].dt.day_of_week >= 5
    assert brand.loc[weekend, "true_value_per_click"].mean() != pytest.approx(
        brand.loc[~weekend, "true_value_per_click"].mean(), rel=0.01
    )


def test_brand_specific_effects_need_the_brand_s_own_data() -> None:
    """A model of the other brands is clearly worse on a brand than one that also saw it."""
    data = simulate(n_brands=20, n_days=730, seed=1)
    obs, truth = data.observations, data.truth
    categorical = ["channel", "audience", "device", "vertical"]
    levels = {c: sorted(obs[c].unique()) for c in categorical}

    def features(rows: pd.DataFrame) -> pd.DataFrame:
        x = pd.DataFrame({c: pd.Categorical(rows[c], categories=levels[c]) for c in categorical})
        x["bid"] = rows["bid"].to_numpy()
        x["day_of_year"] = rows["date"].dt.day_of_year.to_numpy()
        x["weekday"] = rows["date"].dt.day_of_week.to_numpy()
        return x

    target = (obs["revenue"] / np.maximum(obs["clicks"], 1)).to_numpy()
    weight = obs["clicks"].to_numpy(dtype=float)
    params = {
        "objective": "regression",
        "learning_rate": 0.1,
        "num_leaves": 15,
        "min_data_in_leaf": 20,
        "num_threads": 2,
        "seed": 0,
        "deterministic": True,
        "verbose": -1,
    }

    def train(mask: np.ndarray, init: lgb.Booster | None = None) -> lgb.Booster:
        dataset = lgb.Dataset(features(obs[mask]), target[mask], weight=weight[mask])
        return lgb.train(params, dataset, num_boost_round=100, init_model=init)

    ratios = []
    for brand in obs["brand_id"].value_counts().index[:4]:
        own = (obs["brand_id"] == brand).to_numpy()
        cut = obs.loc[own, "date"].quantile(0.6)
        early = own & (obs["date"] <= cut).to_numpy()
        late = own & (obs["date"] > cut).to_numpy()
        true_vpc = truth.loc[late, "true_value_per_click"].to_numpy()

        def error(model: lgb.Booster, late: np.ndarray = late, true_vpc: np.ndarray = true_vpc):
            predicted = model.predict(features(obs[late]))
            return np.average(np.abs(predicted - true_vpc), weights=weight[late])

        others = train(~own)
        fine_tuned = train(early, init=others)  # continued boosting on the brand's early rows
        ratios.append(error(others) / error(fine_tuned))
    assert min(ratios) > 1.2, ratios
    assert np.median(ratios) > 1.5, ratios


# ------------------------------------------------------------------------------ files


def test_write_and_load_round_trip(small: SynthData, tmp_path: Path) -> None:
    out = tmp_path / "data" / "truth"
    paths = write_synth(small, out)
    assert paths == {"truth": out / "truth.parquet", "params": out / "params.json"}
    assert sorted(p.name for p in out.iterdir()) == ["params.json", "truth.parquet"]
    truth, gt = load_truth(out)
    pd.testing.assert_frame_equal(truth, small.truth, check_exact=True)
    assert gt.params == small.params
    pd.testing.assert_frame_equal(
        gt.evaluate(small.observations), small.truth[TRUTH_COLUMNS], check_exact=True
    )
    assert gt.habitual_split("b001", "2024-05-01") == GroundTruth(small.params).habitual_split(
        "b001", "2024-05-01"
    )
    # Writing again replaces the files in place.
    write_synth(small, str(out))
    assert sorted(p.name for p in out.iterdir()) == ["params.json", "truth.parquet"]


def test_load_truth_missing_files(tmp_path: Path) -> None:
    with pytest.raises(TabTuneInputError, match="not found"):
        load_truth(tmp_path)
