"""Drawing a simulation's parameters: the shared tables and every brand's deviations.

:func:`draw_params` is the first half of :func:`tabtune.data.synth.simulate`: it turns the
generator into the JSON-serialisable ``params`` that
:class:`~tabtune.data.synth_truth.GroundTruth` evaluates. What each parameter means is in
the :mod:`tabtune.data.synth` docstring. The draws happen in a fixed order: changing it
changes every simulated frame.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tabtune.data.synth_levels import (
    AUDIENCES,
    CHANNELS,
    DEVICES,
    N_PAIRS,
    PARAMS_VERSION,
    VERTICALS,
    iso_day,
)

__all__ = ["draw_params"]


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


def draw_params(
    rng: np.random.Generator, n_brands: int, n_days: int, sim_start: int, seed: int
) -> dict:
    """Draw a simulation's parameters (the ``params`` of :class:`~tabtune.data.synth.SynthData`).

    Parameters
    ----------
    rng : numpy.random.Generator
        The simulation's generator; it is advanced by the draws.
    n_brands, n_days : int
        Number of brands and length of the window in days.
    sim_start : int
        Day number (days since 1970-01-01) of the first day of the window.
    seed : int
        Recorded in the parameters.

    Returns
    -------
    dict
        JSON-serialisable: version, seed, window, shared tables and every brand's parameters.
    """
    shared = _draw_shared(rng)
    verticals = rng.permutation(np.resize(np.arange(len(VERTICALS)), n_brands))
    kinds = _archetypes(rng, n_brands)
    brands = [
        _draw_brand(rng, i, VERTICALS[verticals[i]], kinds[i], sim_start, n_days, shared)
        for i in range(n_brands)
    ]
    return {
        "version": PARAMS_VERSION,
        "seed": int(seed),
        "start": iso_day(sim_start),
        "n_days": n_days,
        "n_brands": n_brands,
        "shared": shared,
        "brands": brands,
    }


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


def _history_window(
    rng: np.random.Generator, kind: str, sim_start: int, n_days: int
) -> tuple[int, int, int]:
    """First and last observed day and the brand's origin (day numbers) for its archetype."""
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
    return first, last, origin_brand


def _combo_count(rng: np.random.Generator, kind: str) -> int:
    """How many (campaign, audience, device) combos a brand of this archetype runs."""
    if kind == "new":
        return int(rng.integers(1, 3))
    if kind == "young":
        return int(rng.integers(2, 7))
    if kind == "big":
        return int(rng.integers(26, 41))
    return int(np.clip(round(rng.lognormal(np.log(6.0), 0.7)), 1, 24))


def _draw_effects(rng: np.random.Generator, vertical: str, shared: dict) -> dict[str, Any]:
    """A brand's deviations from the shared tables (numpy values, in draw order)."""
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
    return {
        "pref": pref,
        "chan_effect": chan_effect,
        "aud_effect": aud_effect,
        "dev_effect": dev_effect,
        "cvr_level": cvr_level,
        "aov_level": aov_level,
        "ctr_level": ctr_level,
        "peak": peak,
        "amp": amp,
        "vol_amp": vol_amp,
        "weekend": weekend,
        "weekend_vol": weekend_vol,
        "trend": trend,
        "growth": growth,
        "target_roas": target_roas,
        "rho": rho,
        "hill_k": hill_k,
        "hill_ratio": hill_ratio,
    }


def _draw_campaigns(
    rng: np.random.Generator, brand_id: str, pref: np.ndarray, n_combos: int
) -> tuple[list[dict], list[tuple[int, int, int, int]]]:
    """Campaigns, each with a channel and a random subset of the 12 (audience, device) pairs.

    Returns the campaigns and one ``(campaign, channel, audience, device)`` code per combo.
    """
    pair_weight = np.outer(_AUDIENCE_WEIGHT, _DEVICE_WEIGHT).ravel()
    campaigns: list[dict] = []
    combo_rows: list[tuple[int, int, int, int]] = []  # campaign, channel, audience, device
    while len(combo_rows) < n_combos:
        ch = int(rng.choice(len(CHANNELS), p=pref))
        size = int(min(1 + rng.poisson(2.0), N_PAIRS, n_combos - len(combo_rows)))
        pairs = rng.choice(N_PAIRS, size=size, replace=False, p=pair_weight)
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
    return campaigns, combo_rows


def _log_vpc0(
    shared: dict, vertical: str, fx: dict[str, Any], ch: int, ai: int, di: int, campaign: dict
) -> float:
    """Static log value per click of a combo at its reference bid (module docstring)."""
    return (
        np.log(shared["cvr_channel"][CHANNELS[ch]])
        + np.log(shared["cvr_audience"][AUDIENCES[ai]])
        + np.log(shared["cvr_device"][DEVICES[di]])
        + np.log(shared["cvr_vertical"][vertical])
        + fx["cvr_level"]
        + np.log(shared["aov_vertical"][vertical])
        + np.log(shared["aov_channel"][CHANNELS[ch]])
        + np.log(shared["aov_audience"][AUDIENCES[ai]])
        + np.log(shared["aov_device"][DEVICES[di]])
        + fx["aov_level"]
        + shared["vertical_channel"][vertical][CHANNELS[ch]]
        + fx["chan_effect"][ch]
        + fx["aud_effect"][ai]
        + fx["dev_effect"][di]
        + campaign["effect"]
    )


def _draw_combos(
    rng: np.random.Generator,
    kind: str,
    window: tuple[int, int, int],
    campaigns: list[dict],
    combo_rows: list[tuple[int, int, int, int]],
    fx: dict[str, Any],
    vertical: str,
    shared: dict,
) -> tuple[list[dict], float, np.ndarray]:
    """Each combo's reference bid, base spend and active dates; the budget and base spends."""
    first, last, origin_brand = window
    n_combos = len(combo_rows)
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
        log_vpc0 = _log_vpc0(shared, vertical, fx, ch, ai, di, campaigns[ci])
        ref_bid = math.exp(log_vpc0 + bid_noise[j]) / (fx["rho"][ch] * fx["target_roas"])
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
                "start": iso_day(start),
                "end": None if end is None else iso_day(end),
                "ref_bid": float(ref_bid),
                "base_spend": float(base_spend[j]),
            }
        )
    return combos, budget, base_spend


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
    window = _history_window(rng, kind, sim_start, n_days)
    first, last, _ = window
    n_combos = _combo_count(rng, kind)
    fx = _draw_effects(rng, vertical, shared)
    campaigns, combo_rows = _draw_campaigns(rng, brand_id, fx["pref"], n_combos)
    combos, budget, base_spend = _draw_combos(
        rng, kind, window, campaigns, combo_rows, fx, vertical, shared
    )

    typical = {}
    for ch in CHANNELS:
        in_channel = [c["base_spend"] for c in combos if c["channel"] == ch]
        typical[ch] = float(np.mean(in_channel)) if in_channel else float(0.5 * base_spend.mean())

    def by_level(values: np.ndarray, levels: tuple[str, ...]) -> dict[str, float]:
        return {lv: float(values[i]) for i, lv in enumerate(levels)}

    return {
        "brand_id": brand_id,
        "vertical": vertical,
        "history": kind,
        "first_day": iso_day(first),
        "last_day": iso_day(last),
        "origin": iso_day(first),
        "cvr_level": float(fx["cvr_level"]),
        "aov_level": float(fx["aov_level"]),
        "ctr_level": float(fx["ctr_level"]),
        "channel_effect": by_level(fx["chan_effect"], CHANNELS),
        "audience_effect": by_level(fx["aud_effect"], AUDIENCES),
        "device_effect": by_level(fx["dev_effect"], DEVICES),
        "season_peak_day": float(fx["peak"]),
        "season_amplitude": float(fx["amp"]),
        "volume_amplitude": float(fx["vol_amp"]),
        "weekend": float(fx["weekend"]),
        "weekend_volume": float(fx["weekend_vol"]),
        "trend": float(fx["trend"]),
        "growth": float(fx["growth"]),
        "target_roas": float(fx["target_roas"]),
        "daily_budget": float(budget),
        "channel_preference": by_level(fx["pref"], CHANNELS),
        "cost_ratio": by_level(fx["rho"], CHANNELS),
        "hill_k": by_level(fx["hill_k"], CHANNELS),
        "hill_ratio": by_level(fx["hill_ratio"], CHANNELS),
        "typical_spend": typical,
        "campaigns": campaigns,
        "combos": combos,
    }
