"""A second simulator, structurally different from ``tabtune.data.synth``, for the benchmarks.

It exists so that the transfer benchmark is not only measured on the data the library was
developed against. Its value per click is a *product* of factors (multiplicative brand
effects), with interactions the library's simulator does not have, and its bids are set
mostly independently of value:

* value per click of brand *b*, channel *c*, audience *a*, device *v*, day *d*, relative bid
  *x* (the day's bid over the combo's usual bid)::

      vpc = L_b * V[vertical_b, c] * D[v] * S(d)          (shared vertical x channel, device,
                                                            season)
            * C[b, c, weekday(d)]                           (brand x channel x weekday)
            * A[b, a]                                       (brand x audience)
            * T_b(d)                                        (trend with a break at day k_b:
                                                            a level jump and a new slope)
            * x ** eta_b                                    (bid response)

  with ``eta_b`` around -0.15 for most brands (a higher bid buys lower-value marginal
  clicks), and around +0.35 for the ``odd`` brands (about one in eight) whose response to the
  bid differs from the pool's;
* bids: each combo's usual bid is ``exp(0.25 * log(value at launch) + noise(sd 0.6))`` times a
  brand-wide budget factor (weakly related to value, not proportional to it), and the day's bid
  moves around it by bid tests (a log-normal step on a few days) and a slow drift;
* clicks: Poisson with mean ``volume * x ** gamma_c`` (brand size, weekday, season);
  conversions: Poisson(clicks * cvr); revenue: a Gamma sum of order values with the right
  mean, plus rare mean-neutral spikes (a large order); the observed revenue per click is noisy
  and zero on many rows.

Brand sizes (rows before the last ``test_days``) are spread log-uniformly so that every
bucket of the transfer benchmark (about 100, 1,000 and 10,000 rows before the cut) holds
brands; small brands start late.

:func:`generate` returns contract rows (``brand_id, date, channel, campaign_id, audience,
device, vertical, bid, impressions, spend, clicks, conversions, revenue``) and, in the same
order, the true value per click of every row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Generated", "generate"]

CHANNELS = ("search", "social", "display", "video", "shopping")
AUDIENCES = ("new", "returning", "lookalike", "retarget", "broad", "loyal")
DEVICES = ("mobile", "desktop", "tablet")
VERTICALS = ("fashion", "travel", "finance", "home", "games", "food")
#: Share of brands whose value responds to the bid the other way round.
ODD_SHARE = 0.125


@dataclass
class Generated:
    """Contract rows and the true value per click of each row (same order)."""

    rows: pd.DataFrame
    true_value_per_click: np.ndarray
    odd_brands: list[str]  #: brands whose bid response differs from the pool's


def _brand_frame(
    rng: np.random.Generator,
    b: int,
    n_days: int,
    start: pd.Timestamp,
    shared: dict[str, np.ndarray],
    target_rows: float,
    test_days: int,
) -> tuple[pd.DataFrame, np.ndarray, bool]:
    """One brand's rows (one per active combo and day with at least one click)."""
    n_combos = int(np.clip(round(target_rows**0.35), 1, 40))
    train_days = int(np.clip(target_rows / n_combos, 15, n_days - test_days))
    first = n_days - test_days - train_days
    vertical = int(rng.integers(len(VERTICALS)))
    odd = bool(rng.random() < ODD_SHARE)
    level = np.exp(rng.normal(0.0, 0.6))
    chan_week = np.exp(rng.normal(0.0, 0.25, size=(len(CHANNELS), 7)))
    chan_week *= np.exp(rng.normal(0.0, 0.3, size=(len(CHANNELS), 1)))
    aud = np.exp(rng.normal(0.0, 0.4, size=len(AUDIENCES)))
    eta = rng.normal(0.35, 0.1) if odd else rng.normal(-0.15, 0.05)
    brk = int(rng.integers(int(0.4 * n_days), int(0.95 * n_days)))
    jump, slope0, slope1 = rng.normal(0.0, 0.25), rng.normal(0.0, 0.15), rng.normal(0.0, 0.4)
    budget = np.exp(rng.normal(0.0, 0.4))
    cvr_b = np.exp(rng.normal(np.log(0.04), 0.3))

    combo_c = rng.integers(len(CHANNELS), size=n_combos)
    combo_a = rng.integers(len(AUDIENCES), size=n_combos)
    combo_v = rng.integers(len(DEVICES), size=n_combos)
    # each combo runs on a contiguous part of the brand's window
    # each combo runs from a day in the first half of the brand's window to the end
    c_start = first + (rng.uniform(0.0, 0.5, size=n_combos) * train_days).astype(int)
    span = n_days - c_start
    j = np.concatenate([np.full(s, k) for k, s in enumerate(span)])
    d = np.concatenate([np.arange(c_start[k], n_days) for k in range(n_combos)])
    dates = start + pd.to_timedelta(d, unit="D")
    weekday = np.asarray(dates.day_of_week)
    yrs = d / 365.25
    c, a, v = combo_c[j], combo_a[j], combo_v[j]

    season = np.exp(0.2 * np.cos(2 * np.pi * (yrs - shared["peak"][vertical])))
    trend = np.where(
        d < brk,
        slope0 * (d - brk) / 365.25,
        jump + slope1 * (d - brk) / 365.25,
    )
    base_value = (
        level * shared["vert_chan"][vertical, c] * shared["device"][v] * season * np.exp(trend)
    )
    value0 = level * shared["vert_chan"][vertical, c] * shared["device"][v] * aud[a]
    # bids: weakly related to value, a budget factor, bid tests and a slow drift
    usual = np.exp(0.25 * np.log(value0) + rng.normal(0.0, 0.6, size=n_combos)[j]) * budget
    tests = np.where(rng.random(len(d)) < 0.15, rng.normal(0.0, 0.35, size=len(d)), 0.0)
    drift = 0.1 * np.sin(2 * np.pi * d / rng.uniform(60, 200) + rng.uniform(0, 6.3))
    x = np.exp(tests + drift)
    bid = usual * x
    vpc = base_value * chan_week[c, weekday] * aud[a] * x**eta

    gamma = shared["gamma"][c]
    size = target_rows / max(len(d), 1)  # larger brands also buy more clicks per row
    volume = 3.0 * size**0.3 * np.exp(0.15 * (weekday < 5)) * season * x**gamma
    clicks = rng.poisson(volume)
    cvr = np.clip(cvr_b * shared["cvr_aud"][a], 1e-4, 0.5)
    conversions = rng.poisson(clicks * cvr)
    aov = vpc / cvr
    k = 1.5
    revenue = np.where(conversions > 0, rng.gamma(np.maximum(conversions, 1) * k, aov / k), 0.0)
    spike_p, spike_m = 0.01, 6.0
    spikes = np.where(rng.random(len(d)) < spike_p, spike_m, 1.0) / (1 + spike_p * (spike_m - 1))
    revenue = revenue * spikes
    rho = rng.uniform(0.5, 0.9, size=len(CHANNELS))[c]
    spend = clicks * bid * rho
    impressions = np.ceil(clicks / np.clip(shared["ctr"][c], 1e-3, 1)).astype(np.int64)
    brand = f"g{b:03d}"
    frame = pd.DataFrame(
        {
            "brand_id": brand,
            "date": dates,
            "channel": np.asarray(CHANNELS)[c],
            "campaign_id": [f"{brand}-{q:02d}" for q in j],
            "audience": np.asarray(AUDIENCES)[a],
            "device": np.asarray(DEVICES)[v],
            "vertical": VERTICALS[vertical],
            "bid": bid,
            "impressions": impressions,
            "spend": spend,
            "clicks": clicks.astype(np.int64),
            "conversions": conversions.astype(np.int64),
            "revenue": revenue,
        }
    )
    keep = clicks > 0
    return frame.loc[keep], vpc[keep], odd


def generate(
    n_brands: int = 120,
    n_days: int = 540,
    seed: int = 0,
    start: str = "2024-01-01",
    test_days: int = 60,
) -> Generated:
    """Simulate ``n_brands`` brands over ``n_days`` days (see the module docstring).

    Parameters
    ----------
    n_brands : int, default 120
    n_days : int, default 540
    seed : int, default 0
        Seed of ``numpy.random.default_rng``: the same arguments give identical rows.
    start : str, default "2024-01-01"
    test_days : int, default 60
        Every brand is active in the last ``test_days`` days, and its target size counts its
        rows before them.

    Returns
    -------
    Generated
    """
    rng = np.random.default_rng(seed)
    shared = {
        "vert_chan": np.exp(rng.normal(np.log(2.0), 0.5, size=(len(VERTICALS), len(CHANNELS)))),
        "device": np.exp(rng.normal(0.0, 0.2, size=len(DEVICES))),
        "peak": rng.uniform(0, 1, size=len(VERTICALS)),
        "gamma": rng.uniform(0.2, 0.5, size=len(CHANNELS)),
        "cvr_aud": np.exp(rng.normal(0.0, 0.3, size=len(AUDIENCES))),
        "ctr": np.exp(rng.normal(np.log(0.02), 0.4, size=len(CHANNELS))),
    }
    sizes = np.exp(rng.uniform(np.log(50), np.log(25_000), size=n_brands))
    frames, truth, odd = [], [], []
    t0 = pd.Timestamp(start)
    for b in range(n_brands):
        frame, vpc, is_odd = _brand_frame(rng, b, n_days, t0, shared, float(sizes[b]), test_days)
        frames.append(frame)
        truth.append(vpc)
        if is_odd:
            odd.append(f"g{b:03d}")
    rows = pd.concat(frames, ignore_index=True).assign(_value=np.concatenate(truth))
    key = ["brand_id", "date", "channel", "campaign_id", "audience", "device"]
    rows = rows.sort_values(key, kind="stable").reset_index(drop=True)
    value = rows.pop("_value").to_numpy()
    return Generated(rows=rows, true_value_per_click=value, odd_brands=odd)
