"""Spend features relative to a channel's own recent past, for the budget task.

A channel's daily spend moves with demand (season, growth, campaign launches) as much as with
the advertiser's bids. In absolute units, a pooled model therefore learns that revenue is
roughly proportional to spend, across brands and seasons, and says little about the *slope*
around a brand's current spend, which is what a budget plan needs. Expressed relative to the
channel's trailing mean, spend and revenue lose the level and the slow demand moves, and what
is left is mostly the day-to-day variation the bids cause:

* ``trailing_spend``, ``trailing_revenue``: mean daily spend and revenue of the brand-channel
  over the ``window`` days *before* the row's date (rows of days the channel had no row do
  not count; at least ``min_days`` rows, NaN otherwise); only past days are used, so a
  feature never sees the day it describes;
* ``relative_spend`` = spend / ``trailing_spend`` (the model's spend input; the budget task
  makes revenue monotone non-decreasing in it);
* ``trailing_roas_ratio``: the channel's ROAS over ``window`` days over its ROAS over
  ``long_window`` days, both before the date: above 1 when the channel currently sits lower
  on its response curve than usual (e.g. after bids were cut), below 1 when higher;
* the budget task's target is ``revenue / trailing_revenue`` (weighted by
  ``trailing_revenue``), so a prediction times the channel's trailing revenue is a revenue.

:func:`add_spend_features` computes them for history rows (training and evaluation);
:func:`spend_state` computes the same trailing quantities at a plan date from the rows before
it, so the plan-time inputs are defined exactly like the training ones.

This module sits at the level of :mod:`tabtune.features` (which adds these columns to a task's
rows) and imports nothing from tabtune; the budget task's bid-identified response curves live in
:mod:`tabtune.tasks.response`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "LONG_WINDOW_DAYS",
    "MIN_DAYS",
    "SPEND_FEATURE_COLUMNS",
    "WINDOW_DAYS",
    "add_spend_features",
    "daily_spend",
    "empty_daily_spend",
    "spend_state",
]

#: Columns :func:`add_spend_features` adds.
SPEND_FEATURE_COLUMNS: tuple[str, ...] = (
    "trailing_spend",
    "trailing_revenue",
    "relative_spend",
    "trailing_roas_ratio",
)

WINDOW_DAYS = 28
LONG_WINDOW_DAYS = 182
MIN_DAYS = 7

_KEYS = ("brand_id", "channel")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def add_spend_features(
    daily: pd.DataFrame,
    *,
    window: int = WINDOW_DAYS,
    long_window: int = LONG_WINDOW_DAYS,
    min_days: int = MIN_DAYS,
) -> pd.DataFrame:
    """Add the trailing spend features to rows at brand x date x channel grain.

    Parameters
    ----------
    daily : DataFrame
        One row per ``brand_id``, ``date``, ``channel`` with ``spend`` and (optionally)
        ``revenue``; other columns are kept.
    window : int, default 28
        Days of the trailing window (before the row's date).
    long_window : int, default 182
        Days of the long window of ``trailing_roas_ratio``.
    min_days : int, default 7
        Fewest rows in the window for the trailing means (NaN with fewer).

    Returns
    -------
    DataFrame
        ``daily`` (same row order and index) plus :data:`SPEND_FEATURE_COLUMNS`.
    """
    out = daily.copy()
    if len(out) == 0:
        for col in SPEND_FEATURE_COLUMNS:
            out[col] = pd.Series(dtype=float)
        return out
    has_revenue = "revenue" in out.columns
    frame = pd.DataFrame(
        {
            "brand_id": out["brand_id"].astype(str).to_numpy(),
            "channel": out["channel"].astype(str).to_numpy(),
            "date": pd.to_datetime(out["date"]).to_numpy(),
            "spend": out["spend"].to_numpy(dtype=float),
            "revenue": (
                out["revenue"].to_numpy(dtype=float) if has_revenue else np.full(len(out), np.nan)
            ),
            "_pos": np.arange(len(out)),
        }
    )
    frame = frame.sort_values([*_KEYS, "date"], kind="stable")
    values = frame[["spend", "revenue"]]
    grouped = values.set_index(frame["date"]).groupby(
        [frame[k].to_numpy() for k in _KEYS], sort=False
    )

    def rolled(days: int, how: str, min_periods: int) -> pd.DataFrame:
        roll = grouped.rolling(f"{days}D", closed="left", min_periods=min_periods)
        res = roll.mean() if how == "mean" else roll.sum()
        # groupby().rolling() returns the groups in order of first appearance, which is the
        # sorted order of `frame`, so positions line up with it.
        return res.reset_index(drop=True)

    short = rolled(window, "mean", min_days)
    long = rolled(long_window, "sum", min_days)
    t_spend = short["spend"].to_numpy()
    t_revenue = short["revenue"].to_numpy()
    feats = np.column_stack(
        [
            t_spend,
            t_revenue,
            _ratio(frame["spend"].to_numpy(), t_spend),
            _ratio(
                _ratio(t_revenue, t_spend),
                _ratio(long["revenue"].to_numpy(), long["spend"].to_numpy()),
            ),
        ]
    )
    back = np.empty_like(feats)
    back[frame["_pos"].to_numpy()] = feats
    for i, col in enumerate(SPEND_FEATURE_COLUMNS):
        out[col] = back[:, i]
    return out


def spend_state(
    daily: pd.DataFrame,
    day: pd.Timestamp,
    *,
    window: int = WINDOW_DAYS,
    long_window: int = LONG_WINDOW_DAYS,
) -> pd.DataFrame:
    """The trailing quantities of each brand-channel on ``day``, from the rows before it.

    Defined like :func:`add_spend_features` (same windows, past days only) but with no
    minimum number of days: a plan uses whatever recent history the channel has.

    Parameters
    ----------
    daily : DataFrame
        Rows at brand x date x channel grain with ``spend`` and ``revenue``.
    day : Timestamp
        The plan date.
    window, long_window : int
        As in :func:`add_spend_features`.

    Returns
    -------
    DataFrame
        Indexed by ``(brand_id, channel)``: ``trailing_spend``, ``trailing_revenue`` and
        ``trailing_roas_ratio``.
    """
    day = pd.Timestamp(day).normalize()
    dates = pd.to_datetime(daily["date"])
    before = daily[(dates < day) & (dates >= day - pd.Timedelta(days=long_window))]
    recent = before[pd.to_datetime(before["date"]) >= day - pd.Timedelta(days=window)]
    keys = list(_KEYS)
    short = recent.groupby(keys, observed=True)[["spend", "revenue"]].mean()
    long = before.groupby(keys, observed=True)[["spend", "revenue"]].sum().reindex(short.index)
    state = pd.DataFrame(index=short.index)
    state["trailing_spend"] = short["spend"].to_numpy(dtype=float)
    state["trailing_revenue"] = short["revenue"].to_numpy(dtype=float)
    state["trailing_roas_ratio"] = _ratio(
        _ratio(state["trailing_revenue"].to_numpy(), state["trailing_spend"].to_numpy()),
        _ratio(long["revenue"].to_numpy(), long["spend"].to_numpy()),
    )
    return state


def empty_daily_spend() -> pd.DataFrame:
    """An empty frame of :func:`daily_spend`'s columns (plus ``bid_index``), typed."""
    return pd.DataFrame(
        {
            "brand_id": pd.Series([], dtype="str"),
            "date": pd.Series([], dtype="datetime64[us]"),
            "channel": pd.Series([], dtype="str"),
            "spend": pd.Series([], dtype=float),
            "revenue": pd.Series([], dtype=float),
            "vertical": pd.Series([], dtype="str"),
            "bid_index": pd.Series([], dtype=float),
        }
    )


def daily_spend(rows: pd.DataFrame) -> pd.DataFrame:
    """Campaign rows summed to one row per brand x date x channel.

    Parameters
    ----------
    rows : DataFrame
        Campaign rows with ``brand_id``, ``date``, ``channel``, ``spend`` and, optionally,
        ``revenue`` (summed; NaN without it) and ``vertical`` (the last; ``""`` without it).

    Returns
    -------
    DataFrame
        ``brand_id``, ``date``, ``channel``, ``spend``, ``revenue``, ``vertical``, sorted.
    """
    keys = ["brand_id", "date", "channel"]
    agg: dict[str, str] = {"spend": "sum"}
    if "revenue" in rows.columns:
        agg["revenue"] = "sum"
    if "vertical" in rows.columns:
        agg["vertical"] = "last"
    out = rows.groupby(keys, sort=True, observed=True).agg(agg).reset_index()
    if "vertical" not in out.columns:
        out["vertical"] = ""
    if "revenue" not in out.columns:
        out["revenue"] = np.nan
    out["brand_id"] = out["brand_id"].astype(str)
    out["channel"] = out["channel"].astype(str)
    out["vertical"] = out["vertical"].astype(str)
    out["date"] = pd.to_datetime(out["date"])
    return out[["brand_id", "date", "channel", "spend", "revenue", "vertical"]]
