"""The generator: :func:`simulate` draws daily campaign rows and their outcomes.

It draws the parameters (:func:`~tabtune.data.synth_params.draw_params`), expands every
active combo into one row per day at a drifting bid, evaluates the truth behind each row
(:class:`~tabtune.data.synth_truth.GroundTruth`) and draws the observed counts and amounts
around it. The model and the noise are described in the :mod:`tabtune.data.synth` docstring.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from tabtune.data.synth_levels import (
    AUDIENCES,
    CHANNELS,
    DEVICES,
    KEY_COLUMNS,
    OBSERVATION_COLUMNS,
    VERTICALS,
    day_number,
)
from tabtune.data.synth_params import draw_params
from tabtune.data.synth_truth import GroundTruth
from tabtune.errors import TabTuneInputError

__all__ = ["SynthData", "simulate", "simulate_batches"]

_ORDER_VALUE_SHAPE = 2.0  # gamma shape of one order's value (coefficient of variation 0.71)
_IMPRESSION_SHOCK_SHAPE = 10.0  # gamma shape of the mean-one daily volume shock
_CPC_CONCENTRATION = 20.0  # Beta concentration of one click's price / bid
_SD_BID_STRATEGY = 0.2  # stationary sd of the slow AR(1) bid multiplier
_BID_STRATEGY_AR = 0.97
_SD_BID_DAILY = 0.12


@dataclass
class SynthData:
    """Simulated campaign history and the truth behind it.

    Attributes
    ----------
    observations : pandas.DataFrame
        Contract columns (:data:`OBSERVATION_COLUMNS`), one row per
        ``(brand_id, date, channel, campaign_id, audience, device)``, sorted by that key.
    truth : pandas.DataFrame
        The key columns plus :data:`TRUTH_COLUMNS`, in the same row order.
    params : dict
        JSON-serialisable parameters (seed, window, shared tables, every brand's parameters);
        ``GroundTruth(params)`` evaluates the true model.
    """

    observations: pd.DataFrame
    truth: pd.DataFrame
    params: dict


def simulate(
    n_brands: int = 60, n_days: int = 730, seed: int = 0, start: str = "2024-01-01"
) -> SynthData:
    """Simulate pooled daily campaign history for many brands with a known ground truth.

    Parameters
    ----------
    n_brands : int, default 60
        Number of brands (``"b000"``, ``"b001"``, ...).
    n_days : int, default 730
        Length of the simulated window in days.
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; the same arguments give identical data.
    start : str, default "2024-01-01"
        First date of the window.

    Returns
    -------
    SynthData
        Observations (contract columns), truth (key + :data:`TRUTH_COLUMNS`, same row order)
        and the JSON-serialisable parameters.

    Raises
    ------
    TabTuneInputError
        ``n_brands`` or ``n_days`` is not a positive integer, or ``start`` is not a date.
    """
    n_brands, n_days, sim_start = _checked_window(n_brands, n_days, start)
    rng = np.random.default_rng(seed)
    params = draw_params(rng, n_brands, n_days, sim_start, seed)
    truth_model = GroundTruth(params)
    rows = _daily_rows(truth_model, rng, n_brands, n_days, sim_start)
    contexts = rows.contexts(truth_model, slice(None))
    truth_values = truth_model.evaluate(contexts)
    outcomes = _outcomes(rng, _Expected.of(truth_values), rows.cost_ratio(truth_model), rows.bid)
    observations = contexts.assign(**outcomes)
    truth = pd.concat([contexts[KEY_COLUMNS], truth_values], axis=1)
    return SynthData(observations=observations[OBSERVATION_COLUMNS], truth=truth, params=params)


def simulate_batches(
    n_brands: int = 60,
    n_days: int = 730,
    seed: int = 0,
    start: str = "2024-01-01",
    max_rows: int = 500_000,
) -> tuple[dict, Iterator[SynthData]]:
    """:func:`simulate`, delivered in batches of whole brands with bounded memory.

    The batches concatenated are exactly ``simulate(n_brands, n_days, seed, start)``: the
    same draws in the same order. Only numeric per-row arrays (about 150 bytes a row: codes,
    bids, the expected values the noise is drawn around, the outcomes) are held for all
    rows; the frames (strings, truth columns) exist one batch at a time.

    Parameters
    ----------
    n_brands, n_days, seed, start
        As for :func:`simulate`.
    max_rows : int, default 500,000
        Rows per batch (a brand with more rows is a batch of its own).

    Returns
    -------
    params : dict
        The simulation's parameters (as ``SynthData.params``).
    batches : iterator of SynthData
        Consecutive brands' observations and truth, in the key order of :func:`simulate`.
    """
    n_brands, n_days, sim_start = _checked_window(n_brands, n_days, start)
    rng = np.random.default_rng(seed)
    params = draw_params(rng, n_brands, n_days, sim_start, seed)
    truth_model = GroundTruth(params)
    rows = _daily_rows(truth_model, rng, n_brands, n_days, sim_start)
    bounds = rows.brand_bounds(max_rows)
    parts = [
        _Expected.of(truth_model.evaluate(rows.contexts(truth_model, slice(a, b))))
        for a, b in bounds
    ]
    expected = _Expected.concat(parts)
    del parts
    outcomes = _outcomes(rng, expected, rows.cost_ratio(truth_model), rows.bid)
    del expected

    def batches() -> Iterator[SynthData]:
        for a, b in bounds:
            contexts = rows.contexts(truth_model, slice(a, b))
            truth_values = truth_model.evaluate(contexts)
            observations = contexts.assign(**{k: v[a:b] for k, v in outcomes.items()})
            truth = pd.concat([contexts[KEY_COLUMNS], truth_values], axis=1)
            yield SynthData(observations[OBSERVATION_COLUMNS], truth, params)

    return params, batches()


def _checked_window(n_brands: int, n_days: int, start: str) -> tuple[int, int, int]:
    """``n_brands``, ``n_days`` and the day number of ``start``, checked (see :func:`simulate`)."""
    if int(n_brands) != n_brands or n_brands < 1:
        raise TabTuneInputError(f"n_brands must be a positive integer, got {n_brands!r}")
    if int(n_days) != n_days or n_days < 1:
        raise TabTuneInputError(f"n_days must be a positive integer, got {n_days!r}")
    try:
        sim_start = int(day_number(start)[0])
    except (ValueError, TypeError) as exc:
        raise TabTuneInputError(f"start: not a date: {start!r}") from exc
    return int(n_brands), int(n_days), sim_start


def _bid_multipliers(rng: np.random.Generator, n_series: int, n_days: int) -> np.ndarray:
    """Log-normal bid multipliers: a slow AR(1) bid strategy plus daily noise."""
    innovation_sd = _SD_BID_STRATEGY * math.sqrt(1.0 - _BID_STRATEGY_AR**2)
    shocks = rng.normal(0.0, innovation_sd, size=(n_series, n_days))
    shocks[:, 0] = rng.normal(0.0, _SD_BID_STRATEGY, n_series)
    slow = lfilter([1.0], [1.0, -_BID_STRATEGY_AR], shocks, axis=1)
    daily = rng.normal(0.0, _SD_BID_DAILY, size=(n_series, n_days))
    return np.exp(slow + daily)


@dataclass
class _Rows:
    """Every simulated row as compact codes, sorted by the key (brand first)."""

    b: np.ndarray
    c: np.ndarray
    a: np.ndarray
    v: np.ndarray
    camp: np.ndarray
    day: np.ndarray
    bid: np.ndarray

    def cost_ratio(self, truth_model: GroundTruth) -> np.ndarray:
        """Each row's cost per click over bid."""
        return truth_model.combo_codes().cost_ratio[self.b, self.c]

    def brand_bounds(self, max_rows: int) -> list[tuple[int, int]]:
        """Row ranges of consecutive whole brands, about ``max_rows`` rows each."""
        n = len(self.b)
        ends: Any = np.flatnonzero(np.r_[self.b[1:] != self.b[:-1], True]) + 1 if n else []
        bounds: list[tuple[int, int]] = []
        start = previous = 0
        for end in ends:
            if end - start > max_rows and previous > start:
                bounds.append((start, previous))
                start = previous
            previous = int(end)
        if n > start or not bounds:
            bounds.append((start, n))
        return bounds

    def contexts(self, truth_model: GroundTruth, rows: slice) -> pd.DataFrame:
        """Key columns, ``vertical`` and ``bid`` of the rows at ``rows``."""
        combos = truth_model.combo_codes()

        def strings(levels: Any, codes: np.ndarray) -> pd.Series:
            return pd.Series(np.asarray(levels, dtype=object)[codes], dtype="str")

        b = self.b[rows]
        day = self.day[rows]
        dates = pd.Series(day.astype("datetime64[D]").astype("datetime64[us]"))
        return pd.DataFrame(
            {
                "brand_id": strings(truth_model.brand_ids, b),
                "date": dates,
                "channel": strings(CHANNELS, self.c[rows]),
                "campaign_id": strings(combos.campaign_ids, self.camp[rows]),
                "audience": strings(AUDIENCES, self.a[rows]),
                "device": strings(DEVICES, self.v[rows]),
                "vertical": strings(VERTICALS, combos.brand_vertical[b]),
                "bid": self.bid[rows],
            }
        )


def _daily_rows(
    truth_model: GroundTruth, rng: np.random.Generator, n_brands: int, n_days: int, sim_start: int
) -> _Rows:
    """Every active combo on every observed day, sorted by the key, with its bid."""
    combos = truth_model.combo_codes()
    first = np.maximum(combos.start, sim_start)
    last = np.minimum(combos.end, sim_start + n_days - 1)
    lengths = np.maximum(last - first + 1, 0)
    row_combo = np.repeat(np.arange(len(lengths)), lengths)
    offsets = np.arange(row_combo.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    day = first[row_combo] + offsets
    del offsets
    b = combos.brand[row_combo]
    c = combos.channel[row_combo]
    a = combos.audience[row_combo]
    v = combos.device[row_combo]
    camp = combos.campaign[row_combo]

    multipliers = _bid_multipliers(rng, n_brands * len(CHANNELS), n_days)
    bid = combos.ref_bid[row_combo] * multipliers[b * len(CHANNELS) + c, day - sim_start]
    del row_combo, multipliers

    # Sort by the key, with levels in alphabetical order (as a sort on the strings would).
    def rank(levels: tuple[str, ...]) -> np.ndarray:
        return np.argsort(np.argsort(np.array(levels)))

    order = np.lexsort((rank(DEVICES)[v], rank(AUDIENCES)[a], camp, rank(CHANNELS)[c], day, b))
    return _Rows(
        b=b[order].astype(np.int32),
        c=c[order].astype(np.int8),
        a=a[order].astype(np.int8),
        v=v[order].astype(np.int8),
        camp=camp[order].astype(np.int32),
        day=day[order].astype(np.int32),
        bid=bid[order],
    )


@dataclass
class _Expected:
    """The expected values the noise of each row is drawn around."""

    clicks: np.ndarray
    ctr: np.ndarray
    cvr: np.ndarray
    aov: np.ndarray

    @classmethod
    def of(cls, truth_values: pd.DataFrame) -> _Expected:
        return cls(
            truth_values["true_expected_clicks"].to_numpy(),
            truth_values["true_ctr"].to_numpy(),
            truth_values["true_cvr"].to_numpy(),
            truth_values["true_order_value"].to_numpy(),
        )

    @classmethod
    def concat(cls, parts: list[_Expected]) -> _Expected:
        return cls(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("clicks", "ctr", "cvr", "aov")
            )
        )


def _outcomes(
    rng: np.random.Generator, expected: _Expected, rho: np.ndarray, bid: np.ndarray
) -> dict[str, np.ndarray]:
    """Observed impressions, clicks, conversions, spend and revenue drawn around the truth."""
    n = len(expected.clicks)
    exp_clicks, ctr, cvr, aov = expected.clicks, expected.ctr, expected.cvr, expected.aov
    shock = rng.gamma(_IMPRESSION_SHOCK_SHAPE, 1.0 / _IMPRESSION_SHOCK_SHAPE, n)
    impressions = rng.poisson(shock * exp_clicks / ctr)
    clicks = rng.binomial(impressions, ctr)
    conversions = rng.binomial(clicks, cvr)
    revenue = np.zeros(n)
    has_conv = conversions > 0
    revenue[has_conv] = rng.gamma(
        conversions[has_conv] * _ORDER_VALUE_SHAPE, aov[has_conv] / _ORDER_VALUE_SHAPE
    )
    concentration = np.maximum(clicks, 1) * (_CPC_CONCENTRATION + 1.0) - 1.0
    price_share = np.minimum(rng.beta(rho * concentration, (1.0 - rho) * concentration), 1.0)
    spend = clicks * bid * price_share
    return {
        "impressions": impressions.astype(np.int64),
        "clicks": clicks.astype(np.int64),
        "conversions": conversions.astype(np.int64),
        "spend": spend,
        "revenue": revenue,
    }
