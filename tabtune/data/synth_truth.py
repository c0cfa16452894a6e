"""The true model of a simulation: :class:`GroundTruth`, evaluated from its parameters alone.

The formulas are in the :mod:`tabtune.data.synth` docstring; the parameters are drawn by
:mod:`tabtune.data.synth_params`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tabtune.data.synth_levels import (
    AUDIENCES,
    CHANNELS,
    DEVICES,
    N_PAIRS,
    PARAMS_VERSION,
    TRUTH_COLUMNS,
    VERTICALS,
    day_number,
    level_codes,
)
from tabtune.errors import TabTuneInputError

__all__ = ["ComboCodes", "GroundTruth"]

_DAYS_PER_YEAR = 365.25
_MAX_CVR = 0.9
_MAX_CTR = 0.5
_CTR_BID_SHARE = 0.4  # share of the click elasticity that comes from a better placement


@dataclass(frozen=True)
class ComboCodes:
    """A parameter set's combos as code arrays, one entry per combo (``params`` order).

    Attributes
    ----------
    brand, channel, audience, device, campaign : numpy.ndarray
        Positions in the brands, :data:`CHANNELS`, :data:`AUDIENCES`, :data:`DEVICES` and
        ``campaign_ids``.
    ref_bid : numpy.ndarray
        The combo's reference bid.
    start, end : numpy.ndarray
        First and last active day numbers (``end`` is the int64 maximum when open).
    campaign_ids : pandas.Index
        Every campaign id, in code order.
    brand_vertical : numpy.ndarray
        Position in :data:`VERTICALS` of each brand's vertical.
    cost_ratio : numpy.ndarray
        Cost per click over bid, brand x channel.
    """

    brand: np.ndarray
    channel: np.ndarray
    audience: np.ndarray
    device: np.ndarray
    campaign: np.ndarray
    ref_bid: np.ndarray
    start: np.ndarray
    end: np.ndarray
    campaign_ids: pd.Index
    brand_vertical: np.ndarray
    cost_ratio: np.ndarray


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
    The formulas are in the :mod:`tabtune.data.synth` docstring.
    """

    def __init__(self, params: dict) -> None:
        if params.get("version") != PARAMS_VERSION:
            raise TabTuneInputError(
                f"params: version {params.get('version')!r} is not {PARAMS_VERSION}"
            )
        self.params = params
        brands = params["brands"]
        self.brand_ids = pd.Index([b["brand_id"] for b in brands])
        self._init_shared(params["shared"])
        self._init_brands(brands)
        self._init_campaigns(brands)
        self._init_combos(brands)
        self._first_obs = np.array([day_number(b["first_day"])[0] for b in brands], np.int64)
        self._last_obs = np.array([day_number(b["last_day"])[0] for b in brands], np.int64)
        self._channel_day_cache: dict[tuple[int, int, int], tuple[float, float]] = {}

    def _init_shared(self, shared: dict) -> None:
        """Log tables shared by every brand (``params["shared"]``)."""

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

    def _init_brands(self, brands: list[dict]) -> None:
        """Per-brand effects, one row per brand (``params["brands"]``)."""
        nb = len(brands)

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
        self._origin = np.array([day_number(b["origin"])[0] for b in brands], dtype=np.int64)
        self._troas = per_brand("target_roas")
        self._chan = per_brand_level("channel_effect", CHANNELS)
        self._aud = per_brand_level("audience_effect", AUDIENCES)
        self._dev = per_brand_level("device_effect", DEVICES)
        self._rho = per_brand_level("cost_ratio", CHANNELS)
        self._hill_k = per_brand_level("hill_k", CHANNELS)
        self._hill_ratio = per_brand_level("hill_ratio", CHANNELS)
        self._typical_spend = per_brand_level("typical_spend", CHANNELS)

    def _init_campaigns(self, brands: list[dict]) -> None:
        """Every brand's campaigns: id, brand, channel and effect."""
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

    def _init_combos(self, brands: list[dict]) -> None:
        """Every brand's combos, coded, and the dense lookup from a coded row to its combo."""
        rows = [(i, combo) for i, b in enumerate(brands) for combo in b["combos"]]
        n_combos = len(rows)
        self._combo_brand = np.array([i for i, _ in rows], dtype=int)
        self._combo_camp = self._camp_index.get_indexer([c["campaign_id"] for _, c in rows])
        self._combo_aud = np.array([AUDIENCES.index(c["audience"]) for _, c in rows], dtype=int)
        self._combo_dev = np.array([DEVICES.index(c["device"]) for _, c in rows], dtype=int)
        self._combo_channel = self._camp_channel[self._combo_camp] if n_combos else np.zeros(0, int)
        self._combo_ref_bid = np.array([float(c["ref_bid"]) for _, c in rows])
        self._combo_spend = np.array([float(c["base_spend"]) for _, c in rows])
        self._combo_start = np.array([day_number(c["start"])[0] for _, c in rows], np.int64)
        big = np.iinfo(np.int64).max
        self._combo_end = np.array(
            [big if c["end"] is None else day_number(c["end"])[0] for _, c in rows], np.int64
        )
        # Dense lookup: campaign index * 12 + audience * 3 + device -> combo index (or -1).
        self._combo_lookup = np.full(len(self._camp_index) * N_PAIRS, -1, dtype=np.int64)
        self._combo_lookup[
            self._combo_camp * N_PAIRS + self._combo_aud * len(DEVICES) + self._combo_dev
        ] = np.arange(n_combos)

    def combo_codes(self) -> ComboCodes:
        """The coded combos, for the simulator to expand into daily rows (arrays not copied)."""
        return ComboCodes(
            brand=self._combo_brand,
            channel=self._combo_channel,
            audience=self._combo_aud,
            device=self._combo_dev,
            campaign=self._combo_camp,
            ref_bid=self._combo_ref_bid,
            start=self._combo_start,
            end=self._combo_end,
            campaign_ids=self._camp_index,
            brand_vertical=self._vertical,
            cost_ratio=self._rho,
        )

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
        c = level_codes(contexts["channel"].to_numpy(), CHANNELS, "channel")
        a = level_codes(contexts["audience"].to_numpy(), AUDIENCES, "audience")
        v = level_codes(contexts["device"].to_numpy(), DEVICES, "device")
        t = day_number(contexts["date"].to_numpy())
        camp = self._camp_index.get_indexer(pd.Series(contexts["campaign_id"]).astype("str"))
        # A campaign id of another brand or channel is treated as an unknown campaign.
        ok = camp >= 0
        ok[ok] = (self._camp_brand[camp[ok]] == b[ok]) & (self._camp_channel[camp[ok]] == c[ok])
        camp = np.where(ok, camp, -1)
        combo = np.full(len(b), -1, dtype=np.int64)
        combo[ok] = self._combo_lookup[camp[ok] * N_PAIRS + a[ok] * len(DEVICES) + v[ok]]
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
        t = int(day_number(date)[0])
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
        ci = int(level_codes([channel], CHANNELS, "channel")[0])
        t = int(day_number(date)[0])
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
