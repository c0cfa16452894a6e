"""Contract rows -> (X, y, weight) per task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabtune.config import TaskConfig, default_config, load_config
from tabtune.errors import TabTuneInputError
from tabtune.features import calendar_features, feature_columns, task_data


def _rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "brand_id": ["b1", "b1", "b2", "b2", "b1"],
            "date": pd.to_datetime(
                ["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-06", "2024-01-01"]
            ),
            "channel": ["search", "social", "search", "search", "search"],
            "audience": ["a", "a", "b", "b", "b"],
            "device": ["mobile"] * 5,
            "vertical": ["retail", "retail", "travel", "travel", "retail"],
            "bid": [1.0, 2.0, 1.5, 1.5, 0.5],
            "spend": [10.0, 4.0, 3.0, 0.0, 2.0],
            "clicks": [10, 4, 0, 0, 2],
            "conversions": [1, 0, 0, 0, 1],
            "revenue": [50.0, 0.0, 0.0, 0.0, 30.0],
        }
    )


def test_bid_task_is_a_click_weighted_ratio_in_time_order() -> None:
    data = task_data(_rows(), default_config().task("bid"))
    # rows without clicks carry no information about revenue per click
    assert len(data) == 3
    assert list(data.X.columns) == [
        "brand_id",
        "date",
        *feature_columns(default_config().task("bid")),
    ]
    assert data.X["date"].is_monotonic_increasing
    np.testing.assert_allclose(data.weight, [4, 2, 10])
    np.testing.assert_allclose(data.y, [0.0, 15.0, 5.0])
    assert data.X.loc[2, "day_of_week"] == 2  # 2024-01-03 was a Wednesday


def test_budget_task_aggregates_to_brand_day_channel() -> None:
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[1] / "configs" / "default.yaml")
    data = task_data(_rows(), cfg.task("budget"), require_target=False)
    # b1 01-01 search + social, b1 01-03 search, b2 01-02 search, b2 01-06 search
    assert len(data) == 5
    first = data.rows[(data.rows.brand_id == "b1") & (data.rows.date == "2024-01-01")]
    assert sorted(first.channel) == ["search", "social"]
    search = first[first.channel == "search"].iloc[0]
    assert search.spend == 2.0 and search.revenue == 30.0
    # spend relative to the channel's trailing week(s): no past days here, so no value yet
    assert "relative_spend" in data.X and data.X["relative_spend"].isna().all()
    with pytest.raises(TabTuneInputError, match="no rows with a usable target"):
        task_data(_rows(), cfg.task("budget"))


def test_missing_feature_column_is_named() -> None:
    # issue 14: an optional feature the data lacks is dropped with one notice naming it (which
    # feature, which task, how to add it); a feature the fitted model needs is still an error.
    rows = _rows().drop(columns=["audience"])
    task = default_config().task("bid")
    data = task_data(rows, task)
    assert "audience" not in data.X.columns
    assert len([n for n in data.notices if "'audience'" in n]) == 1
    notice = next(n for n in data.notices if "'audience'" in n)
    assert "'bid'" in notice and "data.columns" in notice and "categorical" in notice
    with pytest.raises(TabTuneInputError, match="audience"):
        task_data(rows, task, features=[*task.categorical, *task.numeric, *task.calendar])


def test_task_without_bids_drops_the_bid_features_and_keeps_the_target() -> None:
    rows = _rows().drop(columns=["bid"])
    task = default_config().task("bid")
    data = task_data(rows, task)
    assert not {"reference_bid", "relative_bid"} & set(data.X.columns)
    assert any("'relative_bid'" in n and "'bid' column" in n for n in data.notices)
    with pytest.raises(TabTuneInputError, match="clicks"):
        task_data(rows.drop(columns=["clicks"]), task)


def test_no_usable_target_rows_is_an_error() -> None:
    rows = _rows().assign(clicks=0)
    with pytest.raises(TabTuneInputError, match="no rows with a usable target"):
        task_data(rows, default_config().task("bid"))


def test_prediction_rows_keep_rows_without_target() -> None:
    rows = _rows().drop(columns=["revenue"])
    data = task_data(rows, default_config().task("bid"), require_target=False)
    assert len(data) == 5
    assert np.isnan(data.y).all()


def test_calendar_features() -> None:
    dates = pd.Series(pd.to_datetime(["2024-12-28", "2024-12-30"]))
    cal = calendar_features(
        dates, ["day_of_week", "is_weekend", "day_of_year", "month", "week_of_year", "year"]
    )
    assert cal["is_weekend"].tolist() == [1, 0]
    assert cal["day_of_year"].tolist() == [363, 365]
    assert cal["week_of_year"].tolist() == [52, 1]


def test_extra_numeric_feature_from_config() -> None:
    task = TaskConfig(
        name="t", target={"numerator": "revenue"}, numeric=["spend", "impressions_share"]
    )
    rows = _rows().assign(impressions_share=np.linspace(0, 1, 5))
    data = task_data(rows, task)
    assert "impressions_share" in data.X.columns


def test_classification_ratio_target_becomes_weighted_binary_rows() -> None:
    task = TaskConfig(
        name="ctr",
        kind="classification",
        target={"numerator": "conversions", "denominator": "clicks"},
        categorical=["channel"],
    )
    data = task_data(_rows(), task)
    # 3 rows have clicks: (10 clicks, 1 conv), (4, 0), (2, 1) -> positives 1, 1; negatives 9, 4, 1
    assert set(data.y) == {0, 1}
    assert data.weight[data.y == 1].sum() == 2
    assert data.weight[data.y == 0].sum() == 14
    assert (data.weight > 0).all()


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_a_text_target_is_refused_by_its_key(kind: str) -> None:
    """``target: {numerator: device}`` ended in an internal error (exit 1, traceback)."""
    task = TaskConfig(name="t", kind=kind, target={"numerator": "device"}, numeric=["bid"])
    for training in (True, False):
        with pytest.raises(TabTuneInputError, match="target.numerator 'device' holds text"):
            task_data(_rows(), task, require_target=training)


def test_aggregate_by_refuses_features_it_cannot_carry() -> None:
    """A categorical feature that varies within an aggregated group kept its first value, and
    a numeric one that is not an amount (the bid) was dropped, then reported missing."""
    base = dict(name="t", target={"numerator": "revenue"}, aggregate_by=["brand_id", "date"])
    kept = task_data(_rows(), TaskConfig(**base, categorical=["vertical"]))
    assert len(kept.X) == 4  # vertical is the brand's: one value per brand and day
    # a brand in two verticals (or a device per group): the value with the most spend, said
    mixed = task_data(_rows(), TaskConfig(**base, categorical=["channel"]))
    by_key = mixed.rows.set_index(["brand_id", "date"])["channel"]
    # b1 on 2024-01-01: social (spend 4) beside search (spend 2): social
    assert by_key[("b1", pd.Timestamp("2024-01-01"))] == "social"
    with pytest.raises(TabTuneInputError, match=r"numeric feature\(s\) \['bid'\] are not amounts"):
        task_data(_rows(), TaskConfig(**base, numeric=["bid"]))


def test_a_misspelt_feature_is_refused_with_the_nearest_name() -> None:
    """``categorical: [channel, chanel]`` pretrained without the misspelt feature, with a
    notice suggesting a mapping the config then refused (config red-team)."""
    task = TaskConfig(name="t", target={"numerator": "revenue"}, categorical=["channel", "chanel"])
    with pytest.raises(
        TabTuneInputError, match=r"feature 'chanel' \(categorical\) is not a column"
    ):
        task_data(_rows(), task)
    with pytest.raises(TabTuneInputError, match=r"did you mean 'channel'\?\); fix:"):
        task_data(_rows(), task)
    # a contract column the export lacks is still dropped with a notice
    optional = TaskConfig(
        name="t", target={"numerator": "revenue"}, categorical=["channel", "campaign_id"]
    )
    assert list(task_data(_rows(), optional).X.columns).count("campaign_id") == 0


def test_classification_plain_target_is_positive_indicator() -> None:
    task = TaskConfig(
        name="conv",
        kind="classification",
        target={"numerator": "conversions"},
        categorical=["channel"],
    )
    data = task_data(_rows(), task)
    assert sorted(data.y.tolist()) == [0, 0, 0, 1, 1]


def test_reference_bid_is_the_contexts_past_bids_only() -> None:
    from tabtune.features import reference_bids

    rows = pd.DataFrame(
        {
            "brand_id": ["b"] * 6 + ["c"],
            "date": pd.to_datetime(
                ["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
                + ["2024-01-05"]
            ),
            "channel": ["search"] * 7,
            "audience": ["a", "a", "a", "a", "a", "a", "a"],
            "device": ["mobile"] * 7,
            "bid": [1.0, 4.0, 4.0, np.nan, 2.0, 9.0, 3.0],
        }
    )
    ref = reference_bids(rows.iloc[::-1].reset_index(drop=True), window=2)[::-1]
    # day 1: nothing before; day 2 (both rows): only day 1; day 3: the two last valid (4, 4);
    # day 4: the NaN bid does not count; another brand's context is separate
    np.testing.assert_allclose(ref, [np.nan, 1.0, 1.0, 4.0, 4.0, np.sqrt(4.0 * 2.0), np.nan])
    data = task_data(
        rows.assign(clicks=1, revenue=1.0, spend=1.0, conversions=0, vertical="x"),
        default_config().task("bid"),
    )
    assert {"reference_bid", "relative_bid"} <= set(data.X.columns)
    first = data.X.iloc[0]
    assert first["reference_bid"] == 1.0 and first["relative_bid"] == 1.0  # its own reference


def test_a_rows_reference_bid_does_not_move_when_rows_are_added() -> None:
    """The sums ran over every context in one cumulative sum, so a row's reference moved by a
    rounding (3e-15) when another context's or a later day's rows were added: a champion's
    rows checksum changed every night (and models were not bit-reproducible)."""
    from tabtune.features import BID_CONTEXT, reference_bids

    rng = np.random.default_rng(7)
    n = 3000
    rows = pd.DataFrame(
        {
            "brand_id": rng.choice(["a", "b"], n),
            "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 200, n), "D"),
            "channel": rng.choice(["search", "social", "video"], n),
            "audience": rng.choice(["x", "y"], n),
            "device": "mobile",
            "bid": rng.lognormal(1.0, 1.0, n) * 1e3,  # large logs: roundings show
        }
    ).sort_values("date", kind="stable", ignore_index=True)
    early = rows[rows["date"] < "2024-06-01"]
    before = reference_bids(early)
    after = reference_bids(rows)[: len(early)]  # later days added
    others = pd.concat([early, early.assign(brand_id="z", bid=early["bid"] * 7)])
    with_other = reference_bids(others.reset_index(drop=True))[: len(early)]
    assert np.array_equal(before, after, equal_nan=True)
    assert np.array_equal(before, with_other, equal_nan=True)
    # oracle: the geometric mean of the context's last 28 valid bids of earlier days
    keys = [c for c in BID_CONTEXT if c in rows.columns]
    brute = np.full(len(early), np.nan)
    for _, grp in early.groupby(keys):
        for i in grp.index[::7]:
            prev = grp[grp["date"] < early.at[i, "date"]].tail(28)
            brute[i] = np.exp(np.log(prev["bid"]).mean()) if len(prev) else np.nan
    picked = ~np.isnan(brute)
    np.testing.assert_allclose(before[picked], brute[picked], rtol=1e-12)


def test_with_bid_features_takes_earlier_bids_from_history():
    from tabtune.features import with_bid_features

    ctx = {
        "brand_id": "b1",
        "channel": "search",
        "campaign_id": "c1",
        "audience": "a",
        "device": "d",
    }
    history = pd.DataFrame(
        [
            {**ctx, "date": pd.Timestamp("2024-01-01") + pd.Timedelta(days=i), "bid": b}
            for i, b in enumerate([1.0, 4.0])
        ]
    )
    tomorrow = pd.DataFrame([{**ctx, "date": pd.Timestamp("2024-01-03"), "bid": 3.0}])
    alone = with_bid_features(tomorrow)
    assert alone["reference_bid"].iloc[0] == 3.0 and alone["relative_bid"].iloc[0] == 1.0
    known = with_bid_features(tomorrow, history=history)
    assert known["reference_bid"].iloc[0] == pytest.approx(2.0)  # geometric mean of 1 and 4
    assert known["relative_bid"].iloc[0] == pytest.approx(1.5)
    assert len(known) == 1 and list(known.columns[: len(tomorrow.columns)]) == list(
        tomorrow.columns
    )


def test_a_missing_derived_feature_names_the_column_it_comes_from() -> None:
    from tabtune.features import align_features

    class Model:
        feature_names_in_ = np.array(["channel", "relative_bid", "trailing_roas_ratio"])

    with pytest.raises(TabTuneInputError) as caught:
        align_features(pd.DataFrame({"channel": ["search"]}), Model())
    message = str(caught.value)
    assert "the column(s) ['bid', 'spend', 'revenue']" in message
    assert "`bid: <your column>`" in message
