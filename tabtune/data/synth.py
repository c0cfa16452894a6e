"""Simulated pooled advertising history with a known ground truth.

:func:`simulate` draws daily campaign rows for many brands (the observation columns of the
campaign data contract) together with the true expected values behind every row. The true
model is a deterministic function of ``params`` (a JSON-serialisable dict) and a row's
context, so :class:`GroundTruth` can evaluate it anywhere, including at bids, dates and
combinations the simulation never produced. Everything is drawn from
``numpy.random.default_rng(seed)``: the same arguments give identical frames.

Structure
---------
Each brand *b* has a vertical, an observed history window (older brands span the whole
window, some start late, a few only in the last weeks), and 1-40 *combos*
``j = (campaign_id, audience, device)``; a campaign belongs to one channel. A combo is active
on a contiguous date range; every active combo gives one row per day, and the rows are sorted
by the key ``(brand_id, date, channel, campaign_id, audience, device)``. With the defaults
(60 brands x 730 days; seeds 0-3) there are 230k-310k rows: 4 brands under 100 rows (25-100),
8-14 with 100-1,000, 34-43 with 1,000-10,000 and 5-10 above 10,000 (up to ~24,000).

Notation for one row (brand *b*, channel *c*, audience *a*, device *v*, combo *j*,
date *d*, ``bid``): ``t`` is the date in days since 1970-01-01, ``y = t / 365.25``,
``we`` is 1 on Saturday and Sunday, and ``yrs = (t - origin_b) / 365.25`` counts years since
the brand's first observed day.

*Shared across brands* (``params["shared"]``): the conversion rate, order value and
click-through rate tables by channel, audience, device and vertical; a vertical x channel
interaction on value; the vertical's seasonal peak, amplitude and weekend effects; the bid
elasticity of clicks ``gamma_c`` per channel and the channel's typical cost/bid ratio
and Hill shape.

*Brand-specific deviations* (``params["brands"][i]``): a value level, log-normal channel
(sd 0.4), audience (sd 0.35) and device (sd 0.15) multipliers, its own seasonal peak and
amplitude, weekend effect, yearly trend, volume seasonality and growth, target ROAS (which
sets its bids), cost/bid ratio and Hill curve per channel; per campaign a small multiplier.

Formulas
--------
Seasonality, weekend and trend of value (log scale)::

    dyn_b(d) = amp_b * cos(2 pi (y - peak_b / 365.25)) + weekend_b * we + trend_b * yrs

Static log value per click of a combo at its reference bid::

    lcvr = log cvr_c + log cvr_a + log cvr_v + log cvr_vertical + cvr_level_b
    laov = log aov_vertical + log aov_c + log aov_a + log aov_v + aov_level_b
    dev  = vc_vertical,c + chan_b,c + aud_b,a + dev_b,v + campaign_j
    log vpc0 = lcvr + laov + dev

Click volume (log scale)::

    log vol_b(d) = vol_amp_b * cos(2 pi (y - peak_b / 365.25)) + weekend_vol_b * we
                   + growth_b * yrs

Each combo has a reference bid ``ref_bid_j = exp(log vpc0_j) / (rho_b,c * target_roas_b)``
times a log-normal bid noise, and a base daily spend ``spend0_j`` at that bid (the brand's
daily budget split over its combos). With the relative bid ``x = bid / ref_bid_j``:

* cost per click: ``cpc = rho_b,c * bid`` (``rho`` in [0.4, 0.92], so cpc <= bid);
* expected clicks: ``clicks = spend0_j / (rho_b,c * ref_bid_j) * vol_b(d) * x ** gamma_c``
  (more clicks with diminishing returns, ``gamma_c`` in [0.3, 0.4]);
* channel Hill curve in units of the habitual spend, ``hill(u) = u**k / (u**k + r**k)``
  with ``k = hill_k_b,c`` in [0.8, 2.5] and ``r = hill_ratio_b,c`` (half-saturation spend
  over habitual spend);
* bid effect on value: ``phi(x) = hill(x ** (1 + gamma_c)) / (hill(1) * x ** gamma_c)``;
* value per click: ``vpc = exp(log vpc0 + dyn_b(d)) * phi(x)``;
* conversion rate: ``cvr = min(exp(lcvr + 0.5 * (dev + dyn_b(d))) * sqrt(phi(x)), 0.9)``:
  half of the deviations, seasonality and bid effect act on the conversion rate, the rest on
  the order value ``aov = vpc / cvr``;
* click-through rate: ``ctr = min(ctr_c * ctr_a * ctr_v * exp(ctr_level_b) *
  x ** (0.4 gamma_c), 0.5)`` (better placed impressions); impressions = clicks / ctr;
* expected revenue = clicks * vpc; expected spend = clicks * cpc.

Spend response. On date *d* the habitual spend of channel *c* is the expected spend of its
active combos at their reference bids, ``H_b,c(d) = vol_b(d) * sum_j spend0_j``, and the
habitual revenue is ``R_b,c(d) = sum_j clicks_j * vpc_j`` at ``x = 1``. The channel's
expected revenue of a day's spend *s* is the Hill curve::

    channel_revenue(s) = R_b,c(d) * hill(s / H_b,c(d)) / hill(1)
                       = vmax * s**k / (s**k + h**k),  h = r * H_b,c(d),
                         vmax = R_b,c(d) / hill(1).

The simulator sets all bids of a channel-day to ``ref_bid_j * m_b,c,d`` with one common
log-normal bid multiplier ``m`` (a slow AR(1) bid strategy plus daily noise), so the
channel-day expected spend is ``H * m ** (1 + gamma_c)`` and the summed expected revenue of
its rows equals ``channel_revenue`` at that spend exactly. For dates outside a brand's
observed window the active combos of its first or last observed day are used; a channel with
no active combo has habitual spend and revenue 0.

Because the bid is the spend lever of a row, the Hill curve shows up as the bid effect
``phi`` on value per click. Habitual spend sits past the half-saturation point
(``r`` in [0.25, 0.9]), so around the reference bid the effect is modest and mostly positive
(top positions convert a bit better: +1% median, 1-99% range -5%..+22% for a 25% higher
bid), while ROAS falls with the bid; far below the reference bid value per click falls
steeply (an S-shaped channel needs a minimum presence).

Noise. ``impressions ~ Poisson(G * clicks / ctr)`` with a mean-one gamma day shock ``G``
(shape 10); ``clicks ~ Binomial(impressions, ctr)``; ``conversions ~ Binomial(clicks, cvr)``;
``revenue`` is the sum of ``conversions`` gamma order values (shape 2, mean ``aov``);
``spend = clicks * bid * B`` with ``B ~ Beta`` of mean ``rho`` that concentrates as clicks
grow (the realised average cost per click). So small rows are noisy, and every expectation
above is exact: ``E[clicks] = true_expected_clicks``, ``E[revenue] = true_expected_revenue``,
``E[spend] = true_expected_spend``.

Combos the parameters do not know (a new campaign, audience or device) are evaluated with the
brand's effects, campaign deviation 0, the noise-free reference bid and the brand-channel's
mean base spend.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from tabtune.atomic import atomic_open, atomic_write_bytes
from tabtune.errors import TabTuneInputError

__all__ = [
    "AUDIENCES",
    "CHANNELS",
    "DEVICES",
    "KEY_COLUMNS",
    "OBSERVATION_COLUMNS",
    "TRUTH_COLUMNS",
    "VERTICALS",
    "GroundTruth",
    "SynthData",
    "load_truth",
    "simulate",
    "write_synth",
]

CHANNELS: tuple[str, ...] = ("search", "social", "display", "video", "shopping")
AUDIENCES: tuple[str, ...] = ("prospecting", "retargeting", "lookalike", "loyal")
DEVICES: tuple[str, ...] = ("mobile", "desktop", "tablet")
VERTICALS: tuple[str, ...] = ("retail", "travel", "finance", "gaming", "auto", "health")

KEY_COLUMNS: list[str] = ["brand_id", "date", "channel", "campaign_id", "audience", "device"]
OBSERVATION_COLUMNS: list[str] = [
    *KEY_COLUMNS,
    "vertical",
    "bid",
    "impressions",
    "clicks",
    "conversions",
    "spend",
    "revenue",
]
TRUTH_COLUMNS: list[str] = [
    "true_value_per_click",
    "true_cvr",
    "true_order_value",
    "true_ctr",
    "true_expected_impressions",
    "true_expected_clicks",
    "true_cpc",
    "true_expected_spend",
    "true_expected_revenue",
]

PARAMS_VERSION = 1
_DAYS_PER_YEAR = 365.25
_MAX_CVR = 0.9
_MAX_CTR = 0.5
_ORDER_VALUE_SHAPE = 2.0  # gamma shape of one order's value (coefficient of variation 0.71)
_IMPRESSION_SHOCK_SHAPE = 10.0  # gamma shape of the mean-one daily volume shock
_CPC_CONCENTRATION = 20.0  # Beta concentration of one click's price / bid
_CTR_BID_SHARE = 0.4  # share of the click elasticity that comes from a better placement
_N_PAIRS = len(AUDIENCES) * len(DEVICES)


def _table(levels: tuple[str, ...], *values: float) -> dict[str, float]:
    return dict(zip(levels, map(float, values), strict=True))


# Shared (global) tables, in the order of CHANNELS, AUDIENCES, DEVICES or VERTICALS.
# Multipliers are relative; conversion rate, order value and click-through rate have base levels.
_SHARED_TABLES: dict[str, dict[str, float]] = {
    "cvr_channel": _table(CHANNELS, 0.05, 0.015, 0.008, 0.006, 0.04),
    "cvr_audience": _table(AUDIENCES, 0.7, 2.2, 1.0, 2.8),
    "cvr_device": _table(DEVICES, 0.8, 1.3, 1.0),
    "cvr_vertical": _table(VERTICALS, 1.0, 0.6, 0.5, 1.6, 0.35, 0.8),
    "aov_vertical": _table(VERTICALS, 70, 350, 220, 20, 450, 90),
    "aov_channel": _table(CHANNELS, 1.0, 0.85, 0.9, 0.95, 0.9),
    "aov_audience": _table(AUDIENCES, 0.9, 1.05, 0.95, 1.25),
    "aov_device": _table(DEVICES, 0.85, 1.15, 1.0),
    "ctr_channel": _table(CHANNELS, 0.04, 0.009, 0.003, 0.007, 0.02),
    "ctr_audience": _table(AUDIENCES, 0.8, 1.5, 1.0, 1.7),
    "ctr_device": _table(DEVICES, 1.1, 1.0, 0.9),
    "click_elasticity": _table(CHANNELS, 0.4, 0.3, 0.35, 0.3, 0.4),
    "cost_ratio": _table(CHANNELS, 0.72, 0.65, 0.55, 0.6, 0.7),
    "hill_k": _table(CHANNELS, 1.0, 1.3, 1.8, 2.0, 1.1),
    "hill_ratio": _table(CHANNELS, 0.45, 0.55, 0.5, 0.5, 0.5),
    "season_peak_day": _table(VERTICALS, 330, 170, 25, 355, 140, 10),
    "season_amplitude": _table(VERTICALS, 0.35, 0.3, 0.15, 0.3, 0.15, 0.25),
    "weekend_value": _table(VERTICALS, 0.05, 0.08, -0.15, 0.12, -0.05, -0.05),
    "weekend_volume": _table(VERTICALS, 0.1, 0.05, -0.25, 0.2, -0.1, -0.05),
}
_CHANNEL_PREFERENCE: dict[str, list[float]] = {  # order of CHANNELS
    "retail": [0.3, 0.2, 0.1, 0.1, 0.3],
    "travel": [0.4, 0.2, 0.15, 0.1, 0.15],
    "finance": [0.5, 0.15, 0.2, 0.1, 0.05],
    "gaming": [0.15, 0.35, 0.15, 0.3, 0.05],
    "auto": [0.35, 0.2, 0.2, 0.2, 0.05],
    "health": [0.4, 0.25, 0.15, 0.1, 0.1],
}
_AUDIENCE_WEIGHT = np.array([0.4, 0.25, 0.2, 0.15])
_DEVICE_WEIGHT = np.array([0.5, 0.35, 0.15])
_VERTICAL_CHANNEL_SD = 0.2

# Brand-specific deviation sizes (log scale unless noted).
_SD_LEVEL = 0.22  # each of the cvr and order-value levels
_SD_CHANNEL = 0.4
_SD_AUDIENCE = 0.35
_SD_DEVICE = 0.15
_SD_CAMPAIGN = 0.15
_SD_CTR = 0.2
_SD_PEAK_DAYS = 50.0
_SD_BID_NOISE = 0.25
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


# --------------------------------------------------------------------------------------------
# Ground truth
# --------------------------------------------------------------------------------------------


def _day_number(values: Any) -> np.ndarray:
    """Days since 1970-01-01 (int64) of dates, timestamps or date strings."""
    stamps = pd.to_datetime(pd.Series(values) if np.ndim(values) else pd.Series([values]))
    if stamps.isna().any():
        raise TabTuneInputError("column 'date': missing or unparseable dates")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    return stamps.to_numpy().astype("datetime64[D]").astype(np.int64)


def _codes(values: Any, levels: tuple[str, ...], column: str) -> np.ndarray:
    codes = pd.Index(levels).get_indexer(pd.Series(values).astype("str"))
    if (codes < 0).any():
        bad = sorted(set(pd.Series(values)[codes < 0].astype("str")))[:5]
        raise TabTuneInputError(
            f"column {column!r}: unknown value(s) {bad}; expected one of {list(levels)}"
        )
    return codes


class GroundTruth:
    """The true model of a simulation, evaluated from its parameters alone.

    Parameters
    ----------
    params : dict
        ``SynthData.params`` (or its JSON round trip).

    Notes
    -----
    ``contexts`` frames need ``brand_id``, ``date``, ``channel``, ``campaign_id``,
    ``audience`` and ``device``; ``bid`` is used when present (otherwise every row is at its
    combo's reference bid). ``vertical`` is ignored: a brand's vertical comes from ``params``.
    The formulas are in the module docstring.
    """

    def __init__(self, params: dict) -> None:
        if params.get("version") != PARAMS_VERSION:
            raise TabTuneInputError(
                f"params: version {params.get('version')!r} is not {PARAMS_VERSION}"
            )
        self.params = params
        shared = params["shared"]
        brands = params["brands"]
        self.brand_ids = pd.Index([b["brand_id"] for b in brands])
        nb = len(brands)

        def table(name: str, levels: tuple[str, ...]) -> np.ndarray:
            return np.array([float(shared[name][lv]) for lv in levels])

        self._cvr_c = np.log(table("cvr_channel", CHANNELS))
        self._cvr_a = np.log(table("cvr_audience", AUDIENCES))
        self._cvr_v = np.log(table("cvr_device", DEVICES))
        self._cvr_vert = np.log(table("cvr_vertical", VERTICALS))
        self._aov_vert = np.log(table("aov_vertical", VERTICALS))
        self._aov_c = np.log(table("aov_channel", CHANNELS))
        self._aov_a = np.log(table("aov_audience", AUDIENCES))
        self._aov_v = np.log(table("aov_device", DEVICES))
        self._ctr_c = np.log(table("ctr_channel", CHANNELS))
        self._ctr_a = np.log(table("ctr_audience", AUDIENCES))
        self._ctr_v = np.log(table("ctr_device", DEVICES))
        self._gamma = table("click_elasticity", CHANNELS)
        self._vc = np.array(
            [[float(shared["vertical_channel"][vt][ch]) for ch in CHANNELS] for vt in VERTICALS]
        )

        def per_brand(key: str) -> np.ndarray:
            return np.array([float(b[key]) for b in brands])

        def per_brand_level(key: str, levels: tuple[str, ...]) -> np.ndarray:
            return np.array([[float(b[key][lv]) for lv in levels] for b in brands]).reshape(
                nb, len(levels)
            )

        self._vertical = np.array([VERTICALS.index(b["vertical"]) for b in brands], dtype=int)
        self._cvr_level = per_brand("cvr_level")
        self._aov_level = per_brand("aov_level")
        self._ctr_level = per_brand("ctr_level")
        self._peak = per_brand("season_peak_day")
        self._amp = per_brand("season_amplitude")
        self._vol_amp = per_brand("volume_amplitude")
        self._weekend = per_brand("weekend")
        self._weekend_vol = per_brand("weekend_volume")
        self._trend = per_brand("trend")
        self._growth = per_brand("growth")
        self._origin = np.array([_day_number(b["origin"])[0] for b in brands], dtype=np.int64)
        self._troas = per_brand("target_roas")
        self._chan = per_brand_level("channel_effect", CHANNELS)
        self._aud = per_brand_level("audience_effect", AUDIENCES)
        self._dev = per_brand_level("device_effect", DEVICES)
        self._rho = per_brand_level("cost_ratio", CHANNELS)
        self._hill_k = per_brand_level("hill_k", CHANNELS)
        self._hill_ratio = per_brand_level("hill_ratio", CHANNELS)
        self._typical_spend = per_brand_level("typical_spend", CHANNELS)

        camp_ids: list[str] = []
        camp_brand: list[int] = []
        camp_channel: list[int] = []
        camp_effect: list[float] = []
        for i, b in enumerate(brands):
            for camp in b["campaigns"]:
                camp_ids.append(camp["campaign_id"])
                camp_brand.append(i)
                camp_channel.append(CHANNELS.index(camp["channel"]))
                camp_effect.append(float(camp["effect"]))
        self._camp_index = pd.Index(camp_ids)
        self._camp_brand = np.array(camp_brand, dtype=int)
        self._camp_channel = np.array(camp_channel, dtype=int)
        self._camp_effect = np.array(camp_effect, dtype=float)

        rows = [(i, combo) for i, b in enumerate(brands) for combo in b["combos"]]
        n_combos = len(rows)
        self._combo_brand = np.array([i for i, _ in rows], dtype=int)
        self._combo_camp = self._camp_index.get_indexer([c["campaign_id"] for _, c in rows])
        self._combo_aud = np.array([AUDIENCES.index(c["audience"]) for _, c in rows], dtype=int)
        self._combo_dev = np.array([DEVICES.index(c["device"]) for _, c in rows], dtype=int)
        self._combo_channel = self._camp_channel[self._combo_camp] if n_combos else np.zeros(0, int)
        self._combo_ref_bid = np.array([float(c["ref_bid"]) for _, c in rows])
        self._combo_spend = np.array([float(c["base_spend"]) for _, c in rows])
        self._combo_start = np.array([_day_number(c["start"])[0] for _, c in rows], np.int64)
        big = np.iinfo(np.int64).max
        self._combo_end = np.array(
            [big if c["end"] is None else _day_number(c["end"])[0] for _, c in rows], np.int64
        )
        # Dense lookup: campaign index * 12 + audience * 3 + device -> combo index (or -1).
        self._combo_lookup = np.full(len(camp_ids) * _N_PAIRS, -1, dtype=np.int64)
        self._combo_lookup[
            self._combo_camp * _N_PAIRS + self._combo_aud * len(DEVICES) + self._combo_dev
        ] = np.arange(n_combos)
        self._first_obs = np.array([_day_number(b["first_day"])[0] for b in brands], np.int64)
        self._last_obs = np.array([_day_number(b["last_day"])[0] for b in brands], np.int64)
        self._channel_day_cache: dict[tuple[int, int, int], tuple[float, float]] = {}

    # ---------------------------------------------------------------- evaluation core
    def _brand_codes(self, values: Any) -> np.ndarray:
        codes = self.brand_ids.get_indexer(pd.Series(values).astype("str"))
        if (codes < 0).any():
            bad = sorted(set(pd.Series(values)[codes < 0].astype("str")))[:5]
            raise TabTuneInputError(f"column 'brand_id': unknown brand(s) {bad}")
        return codes

    def _dynamic(self, b: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log value and log volume multipliers of brand ``b`` on day number ``t``."""
        cycle = np.cos(2.0 * np.pi * (t / _DAYS_PER_YEAR - self._peak[b] / _DAYS_PER_YEAR))
        weekend = ((t + 3) % 7 >= 5).astype(float)  # 1970-01-01 was a Thursday
        years = (t - self._origin[b]) / _DAYS_PER_YEAR
        value = self._amp[b] * cycle + self._weekend[b] * weekend + self._trend[b] * years
        volume = self._vol_amp[b] * cycle + self._weekend_vol[b] * weekend + self._growth[b] * years
        return value, volume

    def _evaluate_codes(
        self,
        b: np.ndarray,
        c: np.ndarray,
        a: np.ndarray,
        v: np.ndarray,
        t: np.ndarray,
        camp: np.ndarray,
        combo: np.ndarray,
        bid: np.ndarray | None,
    ) -> dict[str, np.ndarray]:
        """All truth quantities for coded rows (``camp``/``combo`` are -1 when unknown)."""
        vert = self._vertical[b]
        known_camp = camp >= 0
        camp_eff = np.where(known_camp, self._camp_effect[np.maximum(camp, 0)], 0.0)
        lcvr = self._cvr_c[c] + self._cvr_a[a] + self._cvr_v[v] + self._cvr_vert[vert]
        lcvr = lcvr + self._cvr_level[b]
        laov = self._aov_vert[vert] + self._aov_c[c] + self._aov_a[a] + self._aov_v[v]
        laov = laov + self._aov_level[b]
        dev = self._vc[vert, c] + self._chan[b, c] + self._aud[b, a] + self._dev[b, v]
        dev = dev + camp_eff
        log_vpc0 = lcvr + laov + dev
        dyn_value, dyn_volume = self._dynamic(b, t)

        rho = self._rho[b, c]
        gamma = self._gamma[c]
        known = combo >= 0
        k = np.maximum(combo, 0)
        default_bid = np.exp(log_vpc0) / (rho * self._troas[b])
        ref_bid = np.where(known, self._combo_ref_bid[k], default_bid)
        spend0 = np.where(known, self._combo_spend[k], self._typical_spend[b, c])
        if bid is None:
            bid = ref_bid
        x = bid / ref_bid

        hk = self._hill_k[b, c]
        hr = self._hill_ratio[b, c]
        log_u = (1.0 + gamma) * np.log(x)
        hill_u = 1.0 / (1.0 + np.exp(hk * (np.log(hr) - log_u)))  # u^k / (u^k + r^k)
        hill_1 = 1.0 / (1.0 + hr**hk)
        log_phi = np.log(hill_u) - np.log(hill_1) - gamma * np.log(x)

        vpc = np.exp(log_vpc0 + dyn_value + log_phi)
        cvr = np.minimum(np.exp(lcvr + 0.5 * (dev + dyn_value) + 0.5 * log_phi), _MAX_CVR)
        ctr = np.minimum(
            np.exp(
                self._ctr_c[c]
                + self._ctr_a[a]
                + self._ctr_v[v]
                + self._ctr_level[b]
                + _CTR_BID_SHARE * gamma * np.log(x)
            ),
            _MAX_CTR,
        )
        cpc = rho * bid
        clicks = spend0 / (rho * ref_bid) * np.exp(dyn_volume + gamma * np.log(x))
        return {
            "true_value_per_click": vpc,
            "true_cvr": cvr,
            "true_order_value": vpc / cvr,
            "true_ctr": ctr,
            "true_expected_impressions": clicks / ctr,
            "true_expected_clicks": clicks,
            "true_cpc": cpc,
            "true_expected_spend": clicks * cpc,
            "true_expected_revenue": clicks * vpc,
            "ref_bid": ref_bid,
        }

    def evaluate(self, contexts: pd.DataFrame) -> pd.DataFrame:
        """Every truth column (:data:`TRUTH_COLUMNS`) for each context row.

        Parameters
        ----------
        contexts : pandas.DataFrame
            Rows with ``brand_id``, ``date``, ``channel``, ``campaign_id``, ``audience``,
            ``device`` and optionally ``bid`` (max CPC, > 0).

        Returns
        -------
        pandas.DataFrame
            :data:`TRUTH_COLUMNS`, one row per context row, with the index of ``contexts``.

        Raises
        ------
        TabTuneInputError
            A required column is missing, a value is unknown, or a bid is not > 0.
        """
        required = ["brand_id", "date", "channel", "campaign_id", "audience", "device"]
        missing = [col for col in required if col not in contexts.columns]
        if missing:
            raise TabTuneInputError(f"contexts: missing column(s) {missing}")
        b = self._brand_codes(contexts["brand_id"].to_numpy())
        c = _codes(contexts["channel"].to_numpy(), CHANNELS, "channel")
        a = _codes(contexts["audience"].to_numpy(), AUDIENCES, "audience")
        v = _codes(contexts["device"].to_numpy(), DEVICES, "device")
        t = _day_number(contexts["date"].to_numpy())
        camp = self._camp_index.get_indexer(pd.Series(contexts["campaign_id"]).astype("str"))
        # A campaign id of another brand or channel is treated as an unknown campaign.
        ok = camp >= 0
        ok[ok] = (self._camp_brand[camp[ok]] == b[ok]) & (self._camp_channel[camp[ok]] == c[ok])
        camp = np.where(ok, camp, -1)
        combo = np.full(len(b), -1, dtype=np.int64)
        combo[ok] = self._combo_lookup[camp[ok] * _N_PAIRS + a[ok] * len(DEVICES) + v[ok]]
        bid = None
        if "bid" in contexts.columns:
            bid = contexts["bid"].to_numpy(dtype=float)
            if not np.all(bid > 0):  # also catches NaN
                raise TabTuneInputError("column 'bid': every bid must be a number > 0")
        out = self._evaluate_codes(b, c, a, v, t, camp, combo, bid)
        out.pop("ref_bid")
        return pd.DataFrame(out, index=contexts.index)[TRUTH_COLUMNS]

    # ---------------------------------------------------------------- public views
    def value_per_click(self, contexts: pd.DataFrame) -> np.ndarray:
        """Expected revenue per click at each context's bid.

        Parameters
        ----------
        contexts : pandas.DataFrame
            See :meth:`evaluate`.

        Returns
        -------
        numpy.ndarray
        """
        return self.evaluate(contexts)["true_value_per_click"].to_numpy()

    def conversion_rate(self, contexts: pd.DataFrame) -> np.ndarray:
        """Expected conversions per click at each context's bid.

        Parameters
        ----------
        contexts : pandas.DataFrame
            See :meth:`evaluate`.

        Returns
        -------
        numpy.ndarray
        """
        return self.evaluate(contexts)["true_cvr"].to_numpy()

    def expected_clicks(self, contexts: pd.DataFrame) -> np.ndarray:
        """Expected daily clicks at each context's bid.

        Parameters
        ----------
        contexts : pandas.DataFrame
            See :meth:`evaluate`.

        Returns
        -------
        numpy.ndarray
        """
        return self.evaluate(contexts)["true_expected_clicks"].to_numpy()

    def expected_cpc(self, contexts: pd.DataFrame) -> np.ndarray:
        """Expected cost per click at each context's bid (never above the bid).

        Parameters
        ----------
        contexts : pandas.DataFrame
            See :meth:`evaluate`.

        Returns
        -------
        numpy.ndarray
        """
        return self.evaluate(contexts)["true_cpc"].to_numpy()

    def _channel_day(self, brand: int, channel: int, t: int) -> tuple[float, float]:
        """Habitual spend and habitual revenue of one brand-channel on day number ``t``."""
        key = (brand, channel, t)
        if key not in self._channel_day_cache:
            self._channel_day_cache[key] = self._compute_channel_day(brand, channel, t)
        return self._channel_day_cache[key]

    def _compute_channel_day(self, brand: int, channel: int, t: int) -> tuple[float, float]:
        t_active = int(np.clip(t, self._first_obs[brand], self._last_obs[brand]))
        sel = np.flatnonzero(
            (self._combo_brand == brand)
            & (self._combo_channel == channel)
            & (self._combo_start <= t_active)
            & (self._combo_end >= t_active)
        )
        if sel.size == 0:
            return 0.0, 0.0
        n = sel.size
        out = self._evaluate_codes(
            np.full(n, brand),
            np.full(n, channel),
            self._combo_aud[sel],
            self._combo_dev[sel],
            np.full(n, t, dtype=np.int64),
            self._combo_camp[sel],
            sel,
            None,
        )
        return float(out["true_expected_spend"].sum()), float(out["true_expected_revenue"].sum())

    def habitual_split(self, brand_id: str, date: Any) -> dict[str, float]:
        """The brand's usual daily spend per channel on a date (at its reference bids).

        Parameters
        ----------
        brand_id : str
        date : date-like

        Returns
        -------
        dict of str to float
            Channel -> habitual spend, for the channels with an active combo on that date
            (outside the observed window: on the brand's first or last observed day).
        """
        b = int(self._brand_codes([brand_id])[0])
        t = int(_day_number(date)[0])
        split = {}
        for ci, ch in enumerate(CHANNELS):
            spend, _ = self._channel_day(b, ci, t)
            if spend > 0:
                split[ch] = spend
        return split

    def channel_revenue(
        self, brand_id: str, channel: str, date: Any, spend: float | np.ndarray
    ) -> np.ndarray:
        """Expected revenue of a day's spend in one channel (the Hill spend-response curve).

        Parameters
        ----------
        brand_id : str
        channel : str
        date : date-like
        spend : float or numpy.ndarray
            Daily spend(s) of the channel, >= 0.

        Returns
        -------
        numpy.ndarray
            Expected revenue, same shape as ``spend`` (0-d for a scalar). All zeros when the
            brand has no active combo in the channel.
        """
        b = int(self._brand_codes([brand_id])[0])
        ci = int(_codes([channel], CHANNELS, "channel")[0])
        t = int(_day_number(date)[0])
        s = np.asarray(spend, dtype=float)
        if np.any(~(s >= 0)):
            raise TabTuneInputError("spend: every spend must be a number >= 0")
        habitual, revenue = self._channel_day(b, ci, t)
        if habitual <= 0:
            return np.zeros_like(s)
        k = self._hill_k[b, ci]
        r = self._hill_ratio[b, ci]
        u = s / habitual
        hill_u = u**k / (u**k + r**k)
        return revenue * hill_u * (1.0 + r**k)


# --------------------------------------------------------------------------------------------
# Simulation
# --------------------------------------------------------------------------------------------


def _iso(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def _draw_shared(rng: np.random.Generator) -> dict:
    shared: dict[str, Any] = {name: dict(tab) for name, tab in _SHARED_TABLES.items()}
    inter = rng.normal(0.0, _VERTICAL_CHANNEL_SD, size=(len(VERTICALS), len(CHANNELS)))
    shared["vertical_channel"] = {
        vt: {ch: float(inter[i, j]) for j, ch in enumerate(CHANNELS)}
        for i, vt in enumerate(VERTICALS)
    }
    shared["channel_preference"] = {vt: list(p) for vt, p in _CHANNEL_PREFERENCE.items()}
    return shared


def _archetypes(rng: np.random.Generator, n_brands: int) -> list[str]:
    """History archetype per brand: new (weeks), young (months), mid, old, big (many combos)."""
    counts = [
        ("new", max(1, round(0.07 * n_brands))),
        ("big", max(1, round(0.08 * n_brands))),
        ("young", round(0.1 * n_brands)),
        ("mid", round(0.3 * n_brands)),
    ]
    kinds = [kind for kind, n in counts for _ in range(n)][:n_brands]
    kinds += ["old"] * (n_brands - len(kinds))
    return [kinds[i] for i in rng.permutation(n_brands)]


def _draw_brand(
    rng: np.random.Generator,
    index: int,
    vertical: str,
    kind: str,
    sim_start: int,
    n_days: int,
    shared: dict,
) -> dict:
    """One brand's parameters: effects, Hill curves, campaigns and combos."""
    brand_id = f"b{index:03d}"
    last = sim_start + n_days - 1
    if kind in ("old", "big"):
        first = sim_start
        origin_brand = sim_start - int(rng.integers(30, 1100))
    elif kind == "mid":
        first = sim_start + int(rng.uniform(0.1, 0.75) * n_days)
        origin_brand = first
    elif kind == "young":
        first = last - int(rng.integers(60, 151))
        origin_brand = first
    else:  # new
        first = last - int(rng.integers(20, 51)) + 1
        origin_brand = first
    first = int(np.clip(first, sim_start, last))
    origin_brand = min(origin_brand, first)

    if kind == "new":
        n_combos = int(rng.integers(1, 3))
    elif kind == "young":
        n_combos = int(rng.integers(2, 7))
    elif kind == "big":
        n_combos = int(rng.integers(26, 41))
    else:
        n_combos = int(np.clip(round(rng.lognormal(np.log(6.0), 0.7)), 1, 24))

    vi = VERTICALS.index(vertical)
    pref = rng.dirichlet(3.0 * np.array(shared["channel_preference"][vertical]) + 0.05)
    chan_effect = rng.normal(0.0, _SD_CHANNEL, len(CHANNELS))
    aud_effect = rng.normal(0.0, _SD_AUDIENCE, len(AUDIENCES))
    dev_effect = rng.normal(0.0, _SD_DEVICE, len(DEVICES))
    cvr_level, aov_level = rng.normal(0.0, _SD_LEVEL, 2)
    ctr_level = rng.normal(0.0, _SD_CTR)
    peak = (float(shared["season_peak_day"][vertical]) + rng.normal(0.0, _SD_PEAK_DAYS)) % 365.25
    amp = float(shared["season_amplitude"][vertical]) * rng.lognormal(0.0, 0.5)
    vol_amp = amp * rng.uniform(0.3, 0.9)
    weekend = float(shared["weekend_value"][vertical]) + rng.normal(0.0, 0.12)
    weekend_vol = float(shared["weekend_volume"][vertical]) + rng.normal(0.0, 0.1)
    trend = rng.normal(0.03, 0.2)
    growth = rng.normal(0.05, 0.15)
    target_roas = rng.lognormal(np.log(3.5), 0.35)
    rho = np.clip(
        np.array([shared["cost_ratio"][ch] for ch in CHANNELS]) + rng.normal(0, 0.05, 5), 0.4, 0.92
    )
    hill_k = np.clip(
        np.array([shared["hill_k"][ch] for ch in CHANNELS]) * rng.lognormal(0, 0.2, 5), 0.8, 2.5
    )
    hill_ratio = np.clip(
        np.array([shared["hill_ratio"][ch] for ch in CHANNELS]) * rng.lognormal(0, 0.25, 5),
        0.25,
        0.9,
    )

    # Campaigns: each takes a channel and a random subset of the 12 (audience, device) pairs.
    pair_weight = np.outer(_AUDIENCE_WEIGHT, _DEVICE_WEIGHT).ravel()
    campaigns: list[dict] = []
    combo_rows: list[tuple[int, int, int, int]] = []  # campaign, channel, audience, device
    while len(combo_rows) < n_combos:
        ch = int(rng.choice(len(CHANNELS), p=pref))
        size = int(min(1 + rng.poisson(2.0), _N_PAIRS, n_combos - len(combo_rows)))
        pairs = rng.choice(_N_PAIRS, size=size, replace=False, p=pair_weight)
        ci = len(campaigns)
        campaigns.append(
            {
                "campaign_id": f"{brand_id}-c{ci:02d}",
                "channel": CHANNELS[ch],
                "effect": float(rng.normal(0.0, _SD_CAMPAIGN)),
            }
        )
        for p in pairs:
            combo_rows.append((ci, ch, int(p) // len(DEVICES), int(p) % len(DEVICES)))

    budget = n_combos * rng.lognormal(np.log(150.0), 0.8)
    weights = rng.lognormal(0.0, 0.8, n_combos)
    base_spend = budget * weights / weights.sum()
    bid_noise = rng.normal(0.0, _SD_BID_NOISE, n_combos)
    launch_late = rng.random(n_combos) < (0.35 if kind in ("old", "big", "mid") else 0.15)
    launch_frac = rng.uniform(0.0, 0.6, n_combos)
    ends = rng.random(n_combos) < (0.2 if kind in ("old", "big", "mid") else 0.0)
    end_frac = rng.uniform(0.3, 0.95, n_combos)
    span = last - first + 1

    combos: list[dict] = []
    for j, (ci, ch, ai, di) in enumerate(combo_rows):
        log_vpc0 = (
            np.log(shared["cvr_channel"][CHANNELS[ch]])
            + np.log(shared["cvr_audience"][AUDIENCES[ai]])
            + np.log(shared["cvr_device"][DEVICES[di]])
            + np.log(shared["cvr_vertical"][vertical])
            + cvr_level
            + np.log(shared["aov_vertical"][vertical])
            + np.log(shared["aov_channel"][CHANNELS[ch]])
            + np.log(shared["aov_audience"][AUDIENCES[ai]])
            + np.log(shared["aov_device"][DEVICES[di]])
            + aov_level
            + shared["vertical_channel"][vertical][CHANNELS[ch]]
            + chan_effect[ch]
            + aud_effect[ai]
            + dev_effect[di]
            + campaigns[ci]["effect"]
        )
        ref_bid = math.exp(log_vpc0 + bid_noise[j]) / (rho[ch] * target_roas)
        if j > 0 and launch_late[j]:
            start = first + int(launch_frac[j] * span)
        else:
            start = origin_brand if kind in ("old", "big") else first
        end = None
        if j > 0 and ends[j]:
            begin = max(start, first)
            end = begin + int(end_frac[j] * (last - begin))
        combos.append(
            {
                "campaign_id": campaigns[ci]["campaign_id"],
                "channel": CHANNELS[ch],
                "audience": AUDIENCES[ai],
                "device": DEVICES[di],
                "start": _iso(start),
                "end": None if end is None else _iso(end),
                "ref_bid": float(ref_bid),
                "base_spend": float(base_spend[j]),
            }
        )

    typical = {}
    for ch in CHANNELS:
        in_channel = [c["base_spend"] for c in combos if c["channel"] == ch]
        typical[ch] = float(np.mean(in_channel)) if in_channel else float(0.5 * base_spend.mean())

    return {
        "brand_id": brand_id,
        "vertical": vertical,
        "history": kind,
        "first_day": _iso(first),
        "last_day": _iso(last),
        "origin": _iso(first),
        "cvr_level": float(cvr_level),
        "aov_level": float(aov_level),
        "ctr_level": float(ctr_level),
        "channel_effect": {ch: float(chan_effect[i]) for i, ch in enumerate(CHANNELS)},
        "audience_effect": {au: float(aud_effect[i]) for i, au in enumerate(AUDIENCES)},
        "device_effect": {dv: float(dev_effect[i]) for i, dv in enumerate(DEVICES)},
        "season_peak_day": float(peak),
        "season_amplitude": float(amp),
        "volume_amplitude": float(vol_amp),
        "weekend": float(weekend),
        "weekend_volume": float(weekend_vol),
        "trend": float(trend),
        "growth": float(growth),
        "target_roas": float(target_roas),
        "daily_budget": float(budget),
        "channel_preference": {ch: float(pref[i]) for i, ch in enumerate(CHANNELS)},
        "cost_ratio": {ch: float(rho[i]) for i, ch in enumerate(CHANNELS)},
        "hill_k": {ch: float(hill_k[i]) for i, ch in enumerate(CHANNELS)},
        "hill_ratio": {ch: float(hill_ratio[i]) for i, ch in enumerate(CHANNELS)},
        "typical_spend": typical,
        "campaigns": campaigns,
        "combos": combos,
        "vertical_index": vi,
    }


def _bid_multipliers(rng: np.random.Generator, n_series: int, n_days: int) -> np.ndarray:
    """Log-normal bid multipliers: a slow AR(1) bid strategy plus daily noise."""
    innovation_sd = _SD_BID_STRATEGY * math.sqrt(1.0 - _BID_STRATEGY_AR**2)
    shocks = rng.normal(0.0, innovation_sd, size=(n_series, n_days))
    shocks[:, 0] = rng.normal(0.0, _SD_BID_STRATEGY, n_series)
    slow = lfilter([1.0], [1.0, -_BID_STRATEGY_AR], shocks, axis=1)
    daily = rng.normal(0.0, _SD_BID_DAILY, size=(n_series, n_days))
    return np.exp(slow + daily)


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
    if int(n_brands) != n_brands or n_brands < 1:
        raise TabTuneInputError(f"n_brands must be a positive integer, got {n_brands!r}")
    if int(n_days) != n_days or n_days < 1:
        raise TabTuneInputError(f"n_days must be a positive integer, got {n_days!r}")
    n_brands, n_days = int(n_brands), int(n_days)
    try:
        sim_start = int(_day_number(start)[0])
    except (ValueError, TypeError) as exc:
        raise TabTuneInputError(f"start: not a date: {start!r}") from exc

    rng = np.random.default_rng(seed)
    shared = _draw_shared(rng)
    verticals = rng.permutation(np.resize(np.arange(len(VERTICALS)), n_brands))
    kinds = _archetypes(rng, n_brands)
    brands = [
        _draw_brand(rng, i, VERTICALS[verticals[i]], kinds[i], sim_start, n_days, shared)
        for i in range(n_brands)
    ]
    for brand in brands:
        brand.pop("vertical_index")
    params = {
        "version": PARAMS_VERSION,
        "seed": int(seed),
        "start": _iso(sim_start),
        "n_days": n_days,
        "n_brands": n_brands,
        "shared": shared,
        "brands": brands,
    }
    truth_model = GroundTruth(params)

    # Rows: every active combo on every observed day.
    tm = truth_model
    first = np.maximum(tm._combo_start, sim_start)
    last = np.minimum(tm._combo_end, sim_start + n_days - 1)
    lengths = np.maximum(last - first + 1, 0)
    row_combo = np.repeat(np.arange(len(lengths)), lengths)
    offsets = np.arange(row_combo.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    day = first[row_combo] + offsets
    b = tm._combo_brand[row_combo]
    c = tm._combo_channel[row_combo]
    a = tm._combo_aud[row_combo]
    v = tm._combo_dev[row_combo]
    camp = tm._combo_camp[row_combo]

    multipliers = _bid_multipliers(rng, n_brands * len(CHANNELS), n_days)
    bid = tm._combo_ref_bid[row_combo] * multipliers[b * len(CHANNELS) + c, day - sim_start]

    # Sort by the key, with levels in alphabetical order (as a sort on the strings would).
    def rank(levels: tuple[str, ...]) -> np.ndarray:
        return np.argsort(np.argsort(np.array(levels)))

    order = np.lexsort((rank(DEVICES)[v], rank(AUDIENCES)[a], camp, rank(CHANNELS)[c], day, b))
    b, c, a, v, camp, day, bid, row_combo = (
        arr[order] for arr in (b, c, a, v, camp, day, bid, row_combo)
    )

    def strings(levels: Any, codes: np.ndarray) -> pd.Series:
        return pd.Series(np.asarray(levels, dtype=object)[codes], dtype="str")

    dates = pd.Series(day.astype("datetime64[D]").astype("datetime64[us]"))
    contexts = pd.DataFrame(
        {
            "brand_id": strings(tm.brand_ids, b),
            "date": dates,
            "channel": strings(CHANNELS, c),
            "campaign_id": strings(tm._camp_index, camp),
            "audience": strings(AUDIENCES, a),
            "device": strings(DEVICES, v),
            "vertical": strings(VERTICALS, tm._vertical[b]),
            "bid": bid,
        }
    )
    truth_values = truth_model.evaluate(contexts)

    # Outcomes.
    n = len(contexts)
    exp_clicks = truth_values["true_expected_clicks"].to_numpy()
    ctr = truth_values["true_ctr"].to_numpy()
    cvr = truth_values["true_cvr"].to_numpy()
    aov = truth_values["true_order_value"].to_numpy()
    rho = tm._rho[b, c]
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

    observations = contexts.assign(
        impressions=impressions.astype(np.int64),
        clicks=clicks.astype(np.int64),
        conversions=conversions.astype(np.int64),
        spend=spend,
        revenue=revenue,
    )[OBSERVATION_COLUMNS]
    truth = pd.concat([contexts[KEY_COLUMNS], truth_values], axis=1)
    return SynthData(observations=observations, truth=truth, params=params)


# --------------------------------------------------------------------------------------------
# I/O
# --------------------------------------------------------------------------------------------


def write_synth(data: SynthData, out_dir: str | Path) -> dict[str, Path]:
    """Write the truth frame and the parameters of a simulation.

    Parameters
    ----------
    data : SynthData
    out_dir : str or pathlib.Path
        Directory (created if needed), e.g. ``data/truth``.

    Returns
    -------
    dict of str to pathlib.Path
        ``{"truth": out_dir/truth.parquet, "params": out_dir/params.json}``.

    Notes
    -----
    Each file is written to a temporary name in ``out_dir`` and renamed into place
    (:mod:`tabtune.atomic`), so a crash never leaves a half-written file. Both are created
    readable by their owner only (``0o600``). The observations are not written here (the
    store holds them).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"truth": out / "truth.parquet", "params": out / "params.json"}
    with atomic_open(paths["truth"], mode=0o600) as handle:
        data.truth.to_parquet(handle, index=False)
    params = json.dumps(data.params, indent=1, allow_nan=False).encode("utf-8")
    atomic_write_bytes(paths["params"], params, mode=0o600)
    return paths


def load_truth(out_dir: str | Path) -> tuple[pd.DataFrame, GroundTruth]:
    """Read what :func:`write_synth` wrote.

    Parameters
    ----------
    out_dir : str or pathlib.Path

    Returns
    -------
    truth : pandas.DataFrame
    ground_truth : GroundTruth

    Raises
    ------
    TabTuneInputError
        A file is missing.
    """
    out = Path(out_dir)
    truth_path, params_path = out / "truth.parquet", out / "params.json"
    for path in (truth_path, params_path):
        if not path.is_file():
            raise TabTuneInputError(f"{path}: not found (run write_synth / `tabtune synth`)")
    with open(params_path, encoding="utf-8") as fh:
        params = json.load(fh)
    return pd.read_parquet(truth_path), GroundTruth(params)
