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

Modules
-------
This module is the public face of the simulator and writes its files; the work is done in
units of one job, whose names it re-exports:

* :mod:`tabtune.data.synth_levels`: category levels, column lists, date and level coding;
* :mod:`tabtune.data.synth_truth`: :class:`GroundTruth`, the true model from ``params``;
* :mod:`tabtune.data.synth_params`: drawing ``params`` (shared tables, brands, combos);
* :mod:`tabtune.data.synth_simulate`: :func:`simulate` and :class:`SynthData`, the daily rows
  and their noisy outcomes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tabtune.atomic import atomic_open, atomic_write_bytes
from tabtune.data.synth_levels import (
    AUDIENCES,
    CHANNELS,
    DEVICES,
    KEY_COLUMNS,
    OBSERVATION_COLUMNS,
    PARAMS_VERSION,
    TRUTH_COLUMNS,
    VERTICALS,
)
from tabtune.data.synth_simulate import SynthData, simulate, simulate_batches
from tabtune.data.synth_truth import GroundTruth
from tabtune.errors import TabTuneInputError

__all__ = [
    "AUDIENCES",
    "CHANNELS",
    "DEVICES",
    "KEY_COLUMNS",
    "OBSERVATION_COLUMNS",
    "PARAMS_VERSION",
    "TRUTH_COLUMNS",
    "VERTICALS",
    "GroundTruth",
    "SynthData",
    "load_truth",
    "simulate",
    "simulate_batches",
    "write_synth",
    "write_synth_batches",
]


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


def write_synth_batches(
    params: dict,
    batches: Iterable[SynthData],
    out_dir: str | Path,
    each: Callable[[SynthData], None] | None = None,
) -> dict[str, Path]:
    """:func:`write_synth` for a simulation delivered in batches (:func:`simulate_batches`).

    The truth file is written batch by batch (one Parquet row group each) and reads back as
    the whole simulation's truth frame; ``each`` is called with every batch before its truth
    is written (e.g. to append its observations to the store). Files are replaced atomically
    as in :func:`write_synth`, only once every batch is done.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"truth": out / "truth.parquet", "params": out / "params.json"}
    with atomic_open(paths["truth"], mode=0o600) as handle:
        writer: pq.ParquetWriter | None = None
        try:
            for batch in batches:
                if each is not None:
                    each(batch)
                table = pa.Table.from_pandas(batch.truth, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(handle, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
    text = json.dumps(params, indent=1, allow_nan=False).encode("utf-8")
    atomic_write_bytes(paths["params"], text, mode=0o600)
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
