r"""Spend-response curves of the budget task: bid-identified Hill curves and the model's curves.

Bid-identified curves (``budget.response: "hill"``, the default)
----------------------------------------------------------------

Daily spend and revenue move together with demand (season, weekday, volume shocks), so a
curve fitted to (spend, revenue) pairs learns "revenue proportional to spend" and misses the
slope a plan needs. The bid is the lever that moves spend *along* the curve: each channel-day's
bid level (:func:`bid_index`, two-way fixed effects of the rows' log bids) is taken as
exogenous, with ``u = exp(e * bid_index)`` the bid-driven spend relative to the channel's
habitual spend (``e``: the spend elasticity to the bid, per channel, pooled;
:func:`spend_elasticity`). ROAS then follows :math:`\mathrm{hill}(u)/u` up to a slow value
level, so a quasi-Poisson likelihood over a grid of Hill shapes ``(k, r)`` identifies the curve
(:func:`hill_log_likelihood`); the pool's brand posteriors average into a per-channel prior
(empirical Bayes) and each brand's posterior is prior x likelihood (:class:`HillResponse`). On
the plan date the curve is :math:`\rho H \, \mathrm{hill}(s/H)`, posterior-averaged, with the
habitual spend :math:`H` (mean spend over ``u``) and value level :math:`\rho` from the lookback
window (:meth:`HillResponse.curve`).

Model curves (``budget.response: "model"``, and channels without bids)
----------------------------------------------------------------------
:class:`ModelResponse` turns the ``budget`` task's model into per-channel curves on a plan
date: a relative task predicts revenue over the channel's trailing revenue from spend over its
trailing spend (:mod:`tabtune.spend_features`), so the curve is the prediction times the
trailing revenue; :meth:`ModelResponse.calibration` scales each curve to the brand's recent
revenue.

:class:`~tabtune.tasks.budget.BudgetPlanner` uses the Hill curves for every channel with bids in
the lookback window and the model's curves elsewhere; :mod:`tabtune.tasks.allocation` splits the
budget over them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tabtune.config import TaskConfig
from tabtune.errors import TabTuneInputError
from tabtune.features import GROUP_COLUMN, TIME_COLUMN
from tabtune.spend_features import (
    SPEND_FEATURE_COLUMNS,
    WINDOW_DAYS,
    add_spend_features,
    spend_state,
)
from tabtune.tasks.allocation import BatchResponse, Response
from tabtune.tasks.common import ModelSet, design_matrix

__all__ = [
    "BID_REFERENCE_COLUMNS",
    "COMBO_COLUMNS",
    "HILL_K_GRID",
    "HILL_R_GRID",
    "MIN_FIT_DAYS",
    "HillResponse",
    "ModelResponse",
    "bid_index",
    "hill_log_likelihood",
    "relative_task",
    "spend_elasticity",
]

#: Columns that identify a combo (the finest grain bids are set at) when present.
COMBO_COLUMNS: tuple[str, ...] = ("campaign_id", "audience", "device")
BID_REFERENCE_COLUMNS: tuple[str, ...] = ("brand_id", "channel", "combo", "bid_reference")

#: Grid of Hill shapes ``k`` and half-saturation ratios ``r`` (half-saturation spend over the
#: channel's habitual spend) the posterior lives on.
HILL_K_GRID: np.ndarray = np.round(np.arange(0.6, 3.01, 0.1), 2)
HILL_R_GRID: np.ndarray = np.round(np.exp(np.linspace(np.log(0.15), np.log(1.5), 24)), 4)

MIN_FIT_DAYS = 56  # fewest days with spend for a brand-channel's own likelihood
_FE_ITERATIONS = 30
_IRLS_ITERATIONS = 8
_PRIOR_FLOOR = 1e-4  # share of a flat distribution mixed into the pooled prior
_DEFAULT_SPEND_ELASTICITY = 1.35  # d log spend / d log bid when the pool cannot estimate it


def _combo_keys(rows: pd.DataFrame) -> pd.Series:
    cols = [c for c in COMBO_COLUMNS if c in rows.columns]
    if not cols:
        return pd.Series("", index=rows.index, dtype=str)
    keys = rows[cols[0]].astype(str)
    for c in cols[1:]:
        keys = keys + "|" + rows[c].astype(str)
    return keys


def bid_index(
    rows: pd.DataFrame, reference: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Daily log bid level of each brand-channel, from the bids of its combos.

    A log bid is modelled as ``log bid[j, d] = a[j] + l[d]``: a combo's own reference level
    ``a[j]`` plus the channel-day level ``l[d]`` (two-way fixed effects, solved by alternating
    means). ``l`` is the bid lever of the channel-day, free of the mix of combos and of demand:
    the exogenous part of a day's spend. A brand-channel seen for the first time is normalised
    to a mean ``l`` of 0 over its days (its long-run bid level); combos already in
    ``reference`` keep their level, so later rows continue the same scale.

    Parameters
    ----------
    rows : DataFrame
        Campaign rows with ``brand_id``, ``date``, ``channel``, ``bid`` (> 0) and any of
        :data:`COMBO_COLUMNS`.
    reference : DataFrame, optional
        Combo levels from an earlier call (:data:`BID_REFERENCE_COLUMNS`).

    Returns
    -------
    (DataFrame, DataFrame)
        ``brand_id``, ``date``, ``channel``, ``bid_index`` (``l``, one row per channel-day),
        and the updated combo reference (``reference`` plus the new combos).
    """
    empty_ref = pd.DataFrame({c: pd.Series([], dtype=str) for c in BID_REFERENCE_COLUMNS[:3]})
    empty_ref["bid_reference"] = pd.Series([], dtype=float)
    if reference is None:
        reference = empty_ref
    ok = rows["bid"].notna() & (rows["bid"].to_numpy(dtype=float) > 0) if "bid" in rows else None
    if ok is None or not ok.any():
        out = pd.DataFrame(columns=["brand_id", "date", "channel", "bid_index"])
        return out, reference
    rows = rows[ok]
    frame = pd.DataFrame(
        {
            "brand_id": rows["brand_id"].astype(str).to_numpy(),
            "channel": rows["channel"].astype(str).to_numpy(),
            "combo": _combo_keys(rows).to_numpy(),
            "date": pd.to_datetime(rows["date"]).to_numpy(),
            "y": np.log(rows["bid"].to_numpy(dtype=float)),
        }
    )
    combo_keys = ["brand_id", "channel", "combo"]
    combo = frame.groupby(combo_keys, sort=False).ngroup().to_numpy()
    day = frame.groupby(["brand_id", "channel", "date"], sort=False).ngroup().to_numpy()
    series = frame.groupby(["brand_id", "channel"], sort=False).ngroup().to_numpy()
    combos = frame.drop_duplicates(combo_keys)[combo_keys].reset_index(drop=True)
    combos = combos.iloc[np.argsort(combo[frame.drop_duplicates(combo_keys).index])].reset_index(
        drop=True
    )
    known = combos.merge(reference, on=combo_keys, how="left")["bid_reference"].to_numpy()
    is_known = np.isfinite(known)
    level, a = _two_way_levels(frame["y"].to_numpy(), combo, day, series, known)
    days = frame.drop_duplicates(["brand_id", "channel", "date"])
    first = np.argsort(day[days.index])
    days = days.iloc[first]
    out = pd.DataFrame(
        {
            "brand_id": days["brand_id"].to_numpy(),
            "date": days["date"].to_numpy(),
            "channel": days["channel"].to_numpy(),
            "bid_index": level,
        }
    )
    new = combos.assign(bid_reference=a)[~is_known]
    ref = pd.concat([reference, new], ignore_index=True) if len(reference) else new
    return out, ref.reset_index(drop=True)


def _two_way_levels(
    y: np.ndarray, combo: np.ndarray, day: np.ndarray, series: np.ndarray, known: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``y = a[combo] + level[day]`` by alternating means (:func:`bid_index`).

    ``known`` holds the combos' reference levels (NaN for new combos, which are estimated). A
    series (brand-channel) without a known combo is normalised to a mean level of 0 over its
    days, its combos' levels absorbing the shift. Returns ``(level, a)``.
    """
    is_known = np.isfinite(known)
    day_series = np.zeros(day.max() + 1, dtype=int)
    day_series[day] = series
    free = np.bincount(series, weights=is_known[combo].astype(float)) == 0  # no known combo
    n_combo, n_day = np.bincount(combo), np.bincount(day)
    a = np.where(is_known, known, np.bincount(combo, y) / n_combo)
    for _ in range(_FE_ITERATIONS):
        level = np.bincount(day, y - a[combo]) / n_day
        a = np.where(is_known, known, np.bincount(combo, y - level[day]) / n_combo)
    level = np.bincount(day, y - a[combo]) / n_day
    # A new series: normalise to mean 0 over its days (a combo's level absorbs the shift).
    shift = np.bincount(day_series, level) / np.bincount(day_series)
    shift = np.where(free, shift, 0.0)
    level = level - shift[day_series]
    combo_series = np.zeros(len(a), dtype=int)
    combo_series[combo] = series
    a = np.where(is_known, known, a + shift[combo_series])
    return level, a


def _hill(u: np.ndarray, k: np.ndarray, r: np.ndarray) -> np.ndarray:
    uk = np.power(u, k)
    return uk / (uk + np.power(r, k))


def _calendar_design(dates: pd.Series | np.ndarray) -> np.ndarray:
    """Intercept, weekend, linear trend and (with >= 300 days) a yearly harmonic."""
    index = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
    t = index.values.astype("datetime64[D]").astype(np.int64).astype(float)
    cols = [np.ones_like(t), np.asarray(index.day_of_week >= 5, dtype=float)]
    span = t.max() - t.min() if len(t) else 0.0
    if span >= 28:
        cols.append((t - t.mean()) / 365.25)
    if span >= 300:
        year = 2 * np.pi * t / 365.25
        cols += [np.cos(year), np.sin(year)]
    return np.column_stack(cols)


def _usable(days: pd.DataFrame) -> pd.DataFrame:
    ok = (
        (days["spend"].to_numpy(dtype=float) > 0)
        & np.isfinite(days["bid_index"].to_numpy(dtype=float))
        & np.isfinite(days["revenue"].to_numpy(dtype=float))
    )
    return days[ok]


def spend_elasticity(days: pd.DataFrame) -> float:
    """d log spend / d log bid of one brand-channel (least squares with calendar controls).

    Demand (season, weekday, trend) moves spend at a given bid; the bid index is exogenous, so
    its coefficient in ``log spend ~ calendar + bid_index`` is the elasticity (``1 + gamma``
    in the simulator). NaN with fewer than :data:`MIN_FIT_DAYS` usable days.
    """
    days = _usable(days)
    if len(days) < MIN_FIT_DAYS:
        return float("nan")
    x = np.column_stack([_calendar_design(days["date"]), days["bid_index"].to_numpy(dtype=float)])
    beta, *_ = np.linalg.lstsq(x, np.log(days["spend"].to_numpy(dtype=float)), rcond=None)
    return float(beta[-1])


def hill_log_likelihood(days: pd.DataFrame, elasticity: float) -> np.ndarray | None:
    """Log-likelihood of every grid Hill curve for one brand-channel's days.

    With ``u = exp(elasticity * bid_index)`` the bid-driven spend relative to habitual spend,
    ROAS is ``(value level) * hill(u) / u``: a demand shock moves spend and revenue together
    and cancels, so only the bid variation identifies the curve. For each ``(k, r)`` of
    :data:`HILL_K_GRID` x :data:`HILL_R_GRID` a quasi-Poisson regression of revenue on the
    calendar with offset ``log(spend * hill(u) / u)`` (the calendar takes the slow value moves)
    gives a deviance; the log-likelihood is ``-(deviance - min) / (2 phi)`` with ``phi`` the
    Pearson dispersion of the best curve.

    Returns
    -------
    ndarray or None
        Shape ``(len(HILL_K_GRID), len(HILL_R_GRID))``; None with fewer than
        :data:`MIN_FIT_DAYS` usable days or no revenue.
    """
    days = _usable(days)
    revenue = days["revenue"].to_numpy(dtype=float)
    if len(days) < MIN_FIT_DAYS or revenue.sum() <= 0:
        return None
    spend = days["spend"].to_numpy(dtype=float)
    u = np.exp(elasticity * days["bid_index"].to_numpy(dtype=float))
    x = _calendar_design(days["date"])
    y = revenue / revenue.mean()
    k, r = np.meshgrid(HILL_K_GRID, HILL_R_GRID, indexing="ij")
    k, r = k.reshape(-1, 1), r.reshape(-1, 1)
    offset = np.log(spend / revenue.mean())[None, :] + np.log(_hill(u[None, :], k, r) / u)
    beta = np.zeros((len(k), x.shape[1]))
    beta[:, 0] = np.log(y.sum() / np.exp(offset).sum(axis=1))
    ridge = 1e-8 * np.eye(x.shape[1])
    for _ in range(_IRLS_ITERATIONS):
        eta = beta @ x.T + offset
        mu = np.exp(np.clip(eta, -50, 50))
        z = eta - offset + (y - mu) / mu
        xtwx = np.einsum("gn,ni,nj->gij", mu, x, x) + ridge
        xtwz = np.einsum("gn,ni->gi", mu * z, x)
        beta = np.linalg.solve(xtwx, xtwz[..., None])[..., 0]
    mu = np.exp(np.clip(beta @ x.T + offset, -50, 50))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu)
    deviance = 2.0 * terms.sum(axis=1)
    best = int(np.argmin(deviance))
    phi = float(np.sum((y - mu[best]) ** 2 / mu[best]) / max(1, len(y) - x.shape[1] - 2))
    loglik = -(deviance - deviance[best]) / (2.0 * max(phi, 1e-12))
    return loglik.reshape(len(HILL_K_GRID), len(HILL_R_GRID))


def _normalised(weights: np.ndarray) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    return weights / weights.sum()


class HillResponse:
    """Spend-response curves identified by the bid lever, pooled across brands.

    Each brand-channel's revenue is a Hill curve in units of its *habitual* spend (the spend
    at its long-run bid level that day): ``f(s) = rho * H * hill(s / H; k, r)``. The shape
    ``(k, r)`` is learned from how ROAS moves with the bid index (:func:`bid_index`,
    :func:`hill_log_likelihood`), on a grid, as a posterior: the pooled prior of the channel
    (the mean of the pool's brand posteriors, an empirical Bayes prior) times the brand's own
    likelihood. On a plan date, ``H`` (spend over the bid-driven factor) and ``rho`` (revenue
    over the curve's value at the days' spends) come from the days of the window before it;
    the curve is the posterior mean of the grid curves, non-decreasing in spend.

    Parameters
    ----------
    elasticity : dict of str to float
        Channel -> d log spend / d log bid (median over the pool's brand-channels).
    prior : dict of str to ndarray
        Channel -> grid weights (sum 1).
    posterior : dict of (str, str) to ndarray, optional
        ``(brand, channel)`` -> grid weights (sum 1).
    """

    def __init__(
        self,
        elasticity: dict[str, float],
        prior: dict[str, np.ndarray],
        posterior: dict[tuple[str, str], np.ndarray] | None = None,
    ) -> None:
        self.elasticity = dict(elasticity)
        self.prior = {c: _normalised(w) for c, w in prior.items()}
        self.posterior = dict(posterior or {})

    @staticmethod
    def _groups(days: pd.DataFrame):
        return days.groupby([days["brand_id"].astype(str), days["channel"].astype(str)], sort=True)

    @classmethod
    def pretrain(cls, days: pd.DataFrame) -> HillResponse:
        """Pool the brand-channels of ``days``: elasticities, priors and their posteriors.

        Parameters
        ----------
        days : DataFrame
            Daily rows: ``brand_id``, ``date``, ``channel``, ``spend``, ``revenue``,
            ``bid_index``.

        Returns
        -------
        HillResponse
        """
        groups = list(cls._groups(days))
        slopes: dict[str, list[float]] = {}
        for (_, channel), g in groups:
            e = spend_elasticity(g)
            if np.isfinite(e) and e > 0:
                slopes.setdefault(channel, []).append(e)
        pooled = float(np.median(np.concatenate([v for v in slopes.values()]))) if slopes else None
        elasticity = {
            c: float(np.median(slopes.get(c, [pooled or _DEFAULT_SPEND_ELASTICITY])))
            for c in sorted({c for (_, c), _ in groups})
        }
        flat: dict[tuple[str, str], np.ndarray] = {}
        for (brand, channel), g in groups:
            loglik = hill_log_likelihood(g, elasticity[channel])
            if loglik is not None:
                flat[(brand, channel)] = _normalised(np.exp(loglik))
        shape = (len(HILL_K_GRID), len(HILL_R_GRID))
        uniform = np.full(shape, 1.0 / (shape[0] * shape[1]))
        everything = [w for w in flat.values()]
        prior: dict[str, np.ndarray] = {}
        for channel in elasticity:
            members = [w for (_, c), w in flat.items() if c == channel] or everything
            pooled_w = np.mean(members, axis=0) if members else uniform
            prior[channel] = (1 - _PRIOR_FLOOR) * pooled_w + _PRIOR_FLOOR * uniform
        model = cls(elasticity, prior)
        for key, w in flat.items():
            model.posterior[key] = _normalised(w * model.prior[key[1]])
        return model

    def adapt(self, days: pd.DataFrame) -> HillResponse:
        """A copy with the posteriors of the brand-channels in ``days`` (prior x likelihood).

        Parameters
        ----------
        days : DataFrame
            As in :meth:`pretrain`.

        Returns
        -------
        HillResponse
        """
        out = HillResponse(self.elasticity, self.prior, self.posterior)
        for (brand, channel), g in self._groups(days):
            loglik = hill_log_likelihood(g, self.channel_elasticity(channel))
            if loglik is not None:
                out.posterior[(brand, channel)] = _normalised(
                    np.exp(loglik) * self.channel_prior(channel)
                )
        return out

    def channel_elasticity(self, channel: str) -> float:
        """The channel's spend elasticity (the pool's median for an unknown channel)."""
        if channel in self.elasticity:
            return self.elasticity[channel]
        values = list(self.elasticity.values())
        return float(np.median(values)) if values else _DEFAULT_SPEND_ELASTICITY

    def channel_prior(self, channel: str) -> np.ndarray:
        """The channel's pooled prior (mean of all channels' priors for an unknown one)."""
        if channel in self.prior:
            return self.prior[channel]
        shape = (len(HILL_K_GRID), len(HILL_R_GRID))
        if not self.prior:
            return np.full(shape, 1.0 / (shape[0] * shape[1]))
        return _normalised(np.mean(list(self.prior.values()), axis=0))

    def weights(self, brand: str, channel: str) -> np.ndarray:
        """Grid weights of a brand-channel: its posterior, else the channel's prior."""
        return self.posterior.get((str(brand), str(channel)), self.channel_prior(channel))

    def identified(self, brand: str, channel: str) -> bool:
        """Whether the brand-channel's own days moved its curve's shape off the pooled prior:
        False when it has no posterior, or when its bids never moved (a flat likelihood
        leaves the prior), so its curve is the pool's shape scaled to its revenue."""
        posterior = self.posterior.get((str(brand), str(channel)))
        if posterior is None:
            return False
        return not np.allclose(posterior, self.channel_prior(channel), rtol=1e-6, atol=1e-12)

    def curve(
        self, brand: str, channel: str, window: pd.DataFrame
    ) -> Callable[[np.ndarray], np.ndarray] | None:
        """The channel's revenue as a function of spend, on the day after ``window``.

        Parameters
        ----------
        brand, channel : str
        window : DataFrame
            The channel's days before the plan date (``spend``, ``revenue``, ``bid_index``).

        Returns
        -------
        callable or None
            ``spend -> revenue`` (non-decreasing); None when the window has no usable day.
        """
        days = _usable(window)
        if len(days) == 0:
            return None
        spend = days["spend"].to_numpy(dtype=float)
        revenue = days["revenue"].to_numpy(dtype=float)
        u = np.exp(self.channel_elasticity(channel) * days["bid_index"].to_numpy(dtype=float))
        habitual = float(np.mean(spend / u))
        w = self.weights(brand, channel).reshape(-1)
        keep = w > 1e-6 * w.max()
        k, r = np.meshgrid(HILL_K_GRID, HILL_R_GRID, indexing="ij")
        k, r, w = k.reshape(-1)[keep], r.reshape(-1)[keep], _normalised(w[keep])
        shape_value = (spend[:, None] * _hill(u[:, None], k, r) / u[:, None]).sum(axis=0)
        level = np.where(shape_value > 0, revenue.sum() / shape_value, 0.0)
        coef = w * level * habitual

        def response(s: np.ndarray) -> np.ndarray:
            s = np.asarray(s, dtype=float)
            x = np.maximum(s.reshape(-1, 1), 0.0) / habitual
            return (_hill(x, k, r) @ coef).reshape(s.shape)

        return response

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (grid weights rounded to 6 significant digits)."""

        def grid(w: np.ndarray) -> list[list[float]]:
            return [[float(f"{v:.6g}") for v in row] for row in np.asarray(w)]

        return {
            "k_grid": [float(v) for v in HILL_K_GRID],
            "r_grid": [float(v) for v in HILL_R_GRID],
            "elasticity": self.elasticity,
            "prior": {c: grid(w) for c, w in self.prior.items()},
            "posterior": [
                {"brand_id": b, "channel": c, "weights": grid(w)}
                for (b, c), w in sorted(self.posterior.items())
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HillResponse:
        """Inverse of :meth:`to_dict`."""
        if not (
            np.allclose(data["k_grid"], HILL_K_GRID) and np.allclose(data["r_grid"], HILL_R_GRID)
        ):
            raise ValueError("saved Hill response uses a different grid")
        return cls(
            {c: float(v) for c, v in data["elasticity"].items()},
            {c: np.asarray(w, dtype=float) for c, w in data["prior"].items()},
            {
                (p["brand_id"], p["channel"]): np.asarray(p["weights"], dtype=float)
                for p in data["posterior"]
            },
        )


# ------------------------------------------------------------------------ model curves
_CALIBRATION_CLIP = (0.25, 4.0)
_STATE_COLUMNS = ("trailing_spend", "trailing_revenue", "trailing_roas_ratio")


def relative_task(task: TaskConfig) -> bool:
    """Whether ``task`` models spend relative to the channel's trailing state."""
    return any(c in {*task.numeric, task.target.denominator} for c in SPEND_FEATURE_COLUMNS)


class ModelResponse:
    """Spend-response curves from the ``budget`` task's model (``budget.response: "model"``).

    A relative task (:func:`relative_task`) predicts revenue over the channel's trailing
    revenue from spend over its trailing spend (:mod:`tabtune.spend_features`); the curve is the
    prediction times the trailing revenue, non-decreasing in spend. With ``calibrate`` each
    channel's curve can be scaled to reproduce the brand's recent revenue (:meth:`calibration`).

    Parameters
    ----------
    task : TaskConfig
        The spend-response task.
    models : ModelSet
        Its global and per-brand models.
    history : DataFrame
        Daily spend and revenue per brand x date x channel (with ``vertical``).
    calibrate : bool, default True
        Whether :meth:`calibration` scales the curves (ones otherwise).
    """

    def __init__(
        self,
        task: TaskConfig,
        models: ModelSet,
        history: pd.DataFrame,
        *,
        calibrate: bool = True,
    ) -> None:
        self.task = task
        self.models = models
        self.history = history
        self.calibrate = calibrate

    @property
    def relative(self) -> bool:
        """Whether the task models spend relative to the channel's trailing state."""
        return relative_task(self.task)

    def predict_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's revenue (>= 0) for rows with ``brand_id``, ``date``, ``channel``,
        ``vertical``, ``spend`` and, for a relative task, the trailing state columns.

        A relative task predicts revenue over the channel's trailing revenue at the spend over
        its trailing spend; the prediction is multiplied back by the trailing revenue, so it
        stays monotone non-decreasing in spend.
        """
        task = self.task
        frame = frame.reset_index(drop=True)
        if self.relative:
            frame = frame.assign(
                relative_spend=frame["spend"].to_numpy(dtype=float)
                / frame["trailing_spend"].to_numpy(dtype=float)
            )
        raw = self.models.predict(design_matrix(frame, task))
        if task.target.denominator:
            raw = raw * frame[task.target.denominator].to_numpy(dtype=float)
        return np.maximum(raw, 0.0)

    def predict(
        self,
        brand: str,
        vertical: str | None,
        dates: Any,
        channels: Any,
        spend: np.ndarray,
        state: pd.DataFrame | None = None,
    ) -> np.ndarray:
        """The model's revenue (>= 0) for one brand at the given dates, channels and spends.

        ``state`` (channel -> trailing columns on the plan date) is needed by a relative task.
        """
        spend = np.asarray(spend, dtype=float).reshape(-1)
        frame = pd.DataFrame(
            {
                GROUP_COLUMN: brand,
                TIME_COLUMN: dates,
                "channel": channels,
                "vertical": vertical if vertical is not None else "",
                "spend": spend,
            },
            index=np.arange(len(spend)),
        )
        if state is not None:
            frame = frame.join(state, on="channel")
        return self.predict_rows(frame)

    def state(self, brand: str, day: pd.Timestamp, channels: list[str]) -> pd.DataFrame | None:
        """Trailing state of each channel on ``day`` (None for an absolute-spend task).

        Raises
        ------
        TabTuneInputError
            A channel with no spend in the window before ``day``: a relative model cannot
            place its spend.
        """
        if not self.relative:
            return None
        hist = self.history
        state = spend_state(hist[hist[GROUP_COLUMN] == brand], day)
        state = state.droplevel(GROUP_COLUMN) if len(state) else state.reset_index(drop=True)
        state = state.reindex(channels)
        bad = [c for c in channels if not (state.loc[c, "trailing_spend"] > 0)]
        if bad:
            raise TabTuneInputError(
                f"budget: channel(s) {bad} of brand {brand!r} had no spend in the "
                f"{WINDOW_DAYS} days before {day.date()}; the spend-response model predicts "
                "relative to a channel's recent spend, so it cannot plan a channel without it"
            )
        return state[list(_STATE_COLUMNS)]

    def calibration(
        self,
        brand: str,
        day: pd.Timestamp,
        channels: list[str],
        vertical: str | None,
        window: pd.DataFrame,
    ) -> np.ndarray:
        """Per channel: recent observed revenue / the model's prediction for the same days.

        The pooled model gets the *shape* of a channel's response right more easily than its
        level for one brand; scaling each curve so that it reproduces the brand's revenue over
        the lookback window (same days, same spends) removes the level error. 1 where there is
        nothing to compare; clipped to [1/4, 4]. ``window``: the brand's daily channel rows of
        the lookback window before ``day``.
        """
        out = np.ones(len(channels))
        if not self.calibrate:
            return out
        recent = window
        if len(recent) == 0 or "revenue" not in recent.columns:
            return out
        rows = recent[recent["channel"].isin(channels) & recent["revenue"].notna()]
        if len(rows) == 0:
            return out
        if self.relative:
            # Each past day's trailing state, computed like the training features.
            hist = self.history
            full = add_spend_features(
                hist[(hist[GROUP_COLUMN] == brand) & (hist[TIME_COLUMN] < day)]
            )
            rows = rows.merge(
                full[[TIME_COLUMN, "channel", *_STATE_COLUMNS]],
                on=[TIME_COLUMN, "channel"],
                how="left",
            )
        predicted = self.predict_rows(
            rows.assign(**{GROUP_COLUMN: brand, "vertical": vertical or ""})
        )
        keep = np.isfinite(predicted)  # days without a trailing state are not compared
        sums = (
            rows.reset_index(drop=True)
            .assign(_predicted=predicted)[keep]
            .groupby("channel", observed=True)[["revenue", "_predicted"]]
            .sum()
        )
        low, high = _CALIBRATION_CLIP
        for c, channel in enumerate(channels):
            if channel in sums.index:
                observed, model = sums.loc[channel, "revenue"], sums.loc[channel, "_predicted"]
                if model > 0 and observed > 0:
                    out[c] = float(np.clip(observed / model, low, high))
        return out

    def curves(
        self,
        brand: str,
        day: pd.Timestamp,
        channels: list[str],
        vertical: str | None,
        scale: np.ndarray,
        hill: Sequence[Response | None] | None = None,
    ) -> tuple[list[Response], BatchResponse]:
        """Per-channel response curves on ``day`` and a batch evaluator (one prediction).

        Channels with a Hill curve in ``hill`` use it; the others use the model.
        """
        hill = list(hill) if hill is not None else [None] * len(channels)
        modelled = [c for c in range(len(channels)) if hill[c] is None]
        state = self.state(brand, day, [channels[c] for c in modelled]) if modelled else None

        def one(c: int) -> Response:
            curve = hill[c]
            if curve is not None:
                return curve
            return lambda spend: (
                scale[c] * self.predict(brand, vertical, day, channels[c], spend, state)
            )

        def batch(idx: Sequence[int], spends: Sequence[np.ndarray]) -> list[np.ndarray]:
            idx = list(idx)
            flat = [np.asarray(x, dtype=float).reshape(-1) for x in spends]
            out: list[np.ndarray | None] = [None] * len(idx)
            model_pos = []
            for pos, c in enumerate(idx):
                curve = hill[c]
                if curve is not None:
                    out[pos] = curve(flat[pos])
                else:
                    model_pos.append(pos)
            if model_pos:
                names = np.repeat(
                    [channels[idx[p]] for p in model_pos], [flat[p].size for p in model_pos]
                )
                spend = np.concatenate([flat[p] for p in model_pos])
                values = self.predict(brand, vertical, day, names, spend, state)
                parts = np.split(values, np.cumsum([flat[p].size for p in model_pos])[:-1])
                for p, part in zip(model_pos, parts):
                    out[p] = scale[idx[p]] * part
            return [np.asarray(v, dtype=float) for v in out]

        return [one(c) for c in range(len(channels))], batch
