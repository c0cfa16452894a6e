r"""Daily budget plans: split a total across channels to maximise predicted revenue.

A brand's daily revenue in channel *c* as a function of that channel's spend *s* is predicted by
the ``budget`` task's model, pretrained on the pool of brands and adapted per brand like every
tabtune model. The task works *relative to the channel's own recent past*
(:mod:`tabtune.tasks.spend_features`): with :math:`\bar s_c, \bar r_c` the channel's mean
daily spend and revenue over the 28 days before the date, the model predicts
:math:`\mathrm{revenue} / \bar r_c` from :math:`s / \bar s_c` (monotone non-decreasing), the
channel's recent ROAS over its 182-day ROAS, channel, vertical and the day of the week, so the
response curve is :math:`f_c(s) = \bar r_c \, m(s / \bar s_c, \ldots)`, non-decreasing in
*s*. (A task with absolute ``spend`` as a feature still works: the curve is then the model's
prediction itself.)

The plan for a day is

.. math::

    \max_{s_1..s_K} \sum_c f_c(s_c) \quad\text{s.t.}\quad \sum_c s_c = T,\;
    l_c \le s_c \le u_c .

Bounds default to the channel's *recent spend* :math:`r_c` (mean daily spend over the
``budget.lookback_days`` days before the plan date) :math:`\pm` ``budget.relative_bounds``:
:math:`l_c = r_c (1 - \rho)`, :math:`u_c = r_c (1 + \rho)`; only channels with recent spend take
part. Absolute bounds ``{"search": (100, 400), ...}`` name the channels explicitly.

Optimiser
---------
Response curves can be S-shaped (a channel returns little until it reaches a threshold, then
saturates: the simulator draws Hill curves with shape up to 2.5), and a tree model's curve is a
step function. Greedy marginal allocation (give the next euro to the channel with the best
marginal return) is optimal only for concave curves: on S-shaped ones it spreads money
thinly and never crosses any threshold. tabtune therefore solves the problem exactly on a grid
with dynamic programming over channels (:func:`allocate_budget`):

1. the spend above the lower bounds, :math:`R = T - \sum_c l_c`, is cut into units of size
   :math:`\delta = \sum_c (u_c - l_c) / (K \cdot (g - 1))` (``g`` = ``budget.grid_points``, so
   a channel has about ``g`` grid points across its range);
2. with :math:`v_c(n) = f_c(l_c + n\delta)` for :math:`n = 0..m_c`,
   :math:`m_c = \lfloor (u_c - l_c)/\delta \rfloor`, the table
   :math:`B_k(j) = \max_{n \le \min(m_k, j)} B_{k-1}(j - n) + v_k(n)` gives the best value of
   :math:`j` units over the first :math:`k` channels in :math:`O(K \cdot U \cdot \max m_c)`
   with :math:`U = \sum_c m_c`;
   backtracking gives the allocation of :math:`G = \lfloor R/\delta \rfloor` units;
3. what the grid cannot express, :math:`R - G\delta` (less than :math:`(K+1)\delta`), goes to
   the channels with room left, best predicted gain first, so the plan sums *exactly* to
   :math:`T` and stays inside every bound;
4. the grid plan is then refined off the grid (``refine=True``, default): the best transfer of
   :math:`\delta` from one channel to another (largest predicted gain of the receiver minus
   loss of the giver, both staying inside their bounds) is made while it gains, and
   :math:`\delta` is halved when none does, down to :math:`\delta / 64`. The DP finds the
   best region globally (S-shaped curves included); the refinement only ever raises the
   predicted revenue and removes the grid's rounding, which matters because the achievable
   gains are small: with :math:`\delta` about 1% of the channels' mean spend, the optimum of
   smooth curves sits between grid points, and rounding to them cost 0.01-0.11 of the median
   share of the achievable uplift on the budget benchmark (three seeds, two totals).

Ties (flat stretches of a tree model's curve) are broken toward the recent split, so money does
not move for no predicted gain.

Reported per channel: the spend, the predicted revenue :math:`f_c(s_c)`, the marginal ROAS
:math:`(f_c(s_c + h) - f_c(s_c - h)) / 2h` with :math:`h` = 10% of the spend (a tree model is
piecewise constant, so a wide step), the recent spend, the bounds, and the *habitual* split: the
recent split scaled to the total, :math:`\tilde s_c = T r_c / \sum r`, with its predicted
revenue. The plan's predicted uplift is :math:`\sum_c f_c(s_c) - \sum_c f_c(\tilde s_c)`
(``DataFrame.attrs["predicted_uplift"]``).

:meth:`BudgetPlanner.min_spend_for_revenue` inverts the plan: the smallest total whose plan
reaches a revenue target (the DP table gives the best value of every grid total at once; a
bisection refines between two grid totals).

Calibration
-----------
A pooled model gets a brand's channel *levels* wrong more easily than the curve's shape. With
``calibrate=True`` (default) each channel's curve is multiplied by
:math:`k_c = \sum_{d} \mathrm{revenue}_{c,d} / \sum_{d} \hat f_c(s_{c,d}; d)` over the
lookback window (observed revenue over the model's prediction for the same days and spends,
clipped to [1/4, 4]), so that the curve reproduces the brand's recent revenue; ``calibration``
in the plan reports :math:`k_c`.

Bid-identified curves (``budget.response: "hill"``, the default)
----------------------------------------------------------------
Daily spend and revenue move together with demand (season, weekday, volume shocks), so a
curve fitted to (spend, revenue) pairs learns "revenue proportional to spend" and misses the
slope a plan needs. The bid is the lever that moves spend *along* the curve: the planner takes
each channel-day's bid level (:func:`~tabtune.tasks.spend_features.bid_index`, two-way fixed
effects of the rows' log bids) as exogenous, with ``u = exp(e * bid_index)`` the bid-driven
spend relative to the channel's habitual spend (``e``: the spend elasticity to the bid, per
channel, pooled). ROAS then follows :math:`\mathrm{hill}(u)/u` up to a slow value level, so a
quasi-Poisson likelihood over a grid of Hill shapes ``(k, r)`` identifies the curve; the pool's
brand posteriors average into a per-channel prior (empirical Bayes) and each brand's posterior
is prior x likelihood (:class:`~tabtune.tasks.spend_features.HillResponse`). On the plan date
the curve is :math:`\rho H \, \mathrm{hill}(s/H)`, posterior-averaged, with the habitual spend
:math:`H` (mean spend over ``u``) and value level :math:`\rho` from the lookback window; the
model's curve (with calibration) is used for a channel without bids in the window, and for all
channels with ``budget.response: "model"``.

Limits (measured on the simulator)
----------------------------------
The optimiser is exact on its grid and refined off it; the plan is only as good as the curves'
*slopes*, and the stakes are small: the simulated brands bid for a target ROAS, so channels
start with similar ROAS and the true optimum within +-30% bounds gains well under 1% of
revenue (median). On 16 held-out brands with a year of history (``python -m benchmarks.budget``,
docs/benchmarks.md) the bid-identified curves capture a median 0.93 of the achievable uplift at
the recent total and 0.97 with a total 20% higher (seed 11: 0.95 and 0.99; seed 5: 0.93 and
0.97); the learned relative model gets 0.46 and 0.25, knowing each channel's true curve shape
1.00 and 1.00. Single plans can still lose many times the small achievable gain. Keep the
bounds narrow.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabtune.config import Config, TaskConfig, default_config
from tabtune.errors import TabTuneInputError
from tabtune.features import GROUP_COLUMN, TIME_COLUMN
from tabtune.tasks.bid import (
    ModelSet,
    as_timestamp,
    config_with_backend,
    design_matrix,
    prepare_rows,
    resolve_task,
)
from tabtune.tasks.spend_features import (
    LONG_WINDOW_DAYS,
    SPEND_FEATURE_COLUMNS,
    HillResponse,
    add_spend_features,
    bid_index,
    spend_state,
)

__all__ = [
    "BUDGET_TASK",
    "BudgetPlanner",
    "SpendGrid",
    "allocate_budget",
]

logger = logging.getLogger("tabtune")

FORMAT_VERSION = 1
PLANNER_FILE = "planner.json"
SPEND_FILE = "recent_spend.parquet"
BID_REFERENCE_FILE = "bid_reference.parquet"

#: The budget task used when the configuration does not define one (configs/tasks/budget.yaml).
BUDGET_TASK: dict[str, Any] = {
    "name": "budget",
    "kind": "regression",
    "description": "daily revenue of a channel given its spend (spend-response curve)",
    "target": {"numerator": "revenue", "denominator": "trailing_revenue"},
    "aggregate_by": ["brand_id", "date", "channel"],
    "categorical": ["channel", "vertical"],
    "numeric": ["relative_spend", "trailing_roas_ratio"],
    "calendar": ["day_of_week", "is_weekend"],
    "monotone": {"relative_spend": 1},
}

Response = Callable[[np.ndarray], np.ndarray]
#: Evaluate several channels at once: (channel indices, spends per channel) -> values per channel.
BatchResponse = Callable[[Sequence[int], Sequence[np.ndarray]], list[np.ndarray]]
BoundsLike = Mapping[str, Sequence[float]]

#: Off-grid refinement of a plan (:meth:`SpendGrid.allocate`): transfers start at the grid step
#: and halve down to ``step / 2**REFINE_HALVINGS``; at most ``REFINE_MAX_ROUNDS`` evaluations.
REFINE_HALVINGS = 6
REFINE_MAX_ROUNDS = 200
_MARGINAL_STEP = 0.1  # marginal ROAS: central difference over +-10% of the spend
_CALIBRATION_CLIP = (0.25, 4.0)
_STATE_COLUMNS = ("trailing_spend", "trailing_revenue", "trailing_roas_ratio")
_STATE_WINDOW = 28


# ---------------------------------------------------------------------------- the optimiser
class SpendGrid:
    """Exact dynamic-programming allocation of spend across channels on a fixed grid.

    The grid depends only on the bounds, so plans for different totals share the response
    values evaluated once (see the module docstring for the recursion).

    Parameters
    ----------
    response : sequence of callables
        One per channel: an array of spends -> an array of predicted revenue.
    lower, upper : array-like of float
        Bounds per channel, ``0 <= lower <= upper``.
    grid_points : int, default 61
        About this many grid points per channel range.
    reference : array-like of float, optional
        Spends to break ties toward (the habitual split); no tie-breaking when omitted.
    evaluate : callable, optional
        Evaluates several channels in one call (one model prediction instead of one per
        channel); must agree with ``response``.
    refine : bool, default True
        Refine the grid plan off the grid by pairwise transfers (step 4 of the module
        docstring); ``False`` returns the grid plan.

    Raises
    ------
    TabTuneInputError
        Bounds with a negative, non-finite or crossed pair.
    """

    def __init__(
        self,
        response: Sequence[Response],
        lower: Sequence[float] | np.ndarray,
        upper: Sequence[float] | np.ndarray,
        *,
        grid_points: int = 61,
        reference: Sequence[float] | np.ndarray | None = None,
        evaluate: BatchResponse | None = None,
        refine: bool = True,
    ) -> None:
        self.response = list(response)
        self._batch = evaluate
        self.refine = bool(refine)
        self.lower = np.asarray(lower, dtype=float)
        self.upper = np.asarray(upper, dtype=float)
        k = len(self.response)
        if self.lower.shape != (k,) or self.upper.shape != (k,):
            raise TabTuneInputError(
                f"bounds: need one (lower, upper) pair per channel ({k}), "
                f"got {self.lower.shape[0]} lower and {self.upper.shape[0]} upper"
            )
        if k == 0:
            raise TabTuneInputError("budget: no channel to allocate to")
        if not (np.all(np.isfinite(self.lower)) and np.all(np.isfinite(self.upper))):
            raise TabTuneInputError("bounds: every bound must be a finite number")
        if np.any(self.lower < 0) or np.any(self.upper < self.lower):
            bad = int(np.flatnonzero((self.lower < 0) | (self.upper < self.lower))[0])
            raise TabTuneInputError(
                f"bounds: channel {bad} has lower {self.lower[bad]:g} and upper "
                f"{self.upper[bad]:g}; need 0 <= lower <= upper"
            )
        if grid_points < 2:
            raise TabTuneInputError(f"grid_points must be >= 2, got {grid_points}")
        self.capacity = self.upper - self.lower
        total_capacity = float(self.capacity.sum())
        self.units = k * (grid_points - 1)
        self.step = total_capacity / self.units if total_capacity > 0 else 1.0
        # A hair of tolerance so that a capacity that is an exact multiple of the step in
        # exact arithmetic is not one unit short after rounding.
        self.max_units = np.floor(self.capacity / self.step + 1e-9).astype(np.int64)
        self.values = self.evaluate(
            range(k),
            [self.lower[c] + self.step * np.arange(self.max_units[c] + 1) for c in range(k)],
        )
        for c, v in enumerate(self.values):
            if v.shape != (self.max_units[c] + 1,) or not np.all(np.isfinite(v)):
                raise TabTuneInputError(
                    f"response of channel {c} must return one finite value per spend"
                )
        scored = self.values
        if reference is not None:
            ref = np.clip(np.asarray(reference, dtype=float), self.lower, self.upper)
            scale = 1.0 + max(float(np.max(np.abs(v))) for v in self.values)
            eps = 1e-9 * scale / max(total_capacity, 1e-12)
            scored = [
                v - eps * np.abs(self.lower[c] + self.step * np.arange(v.size) - ref[c])
                for c, v in enumerate(self.values)
            ]
        self._best, self._choice = _dp_tables(scored, int(self.max_units.sum()))

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.response)

    def evaluate(self, channels: Sequence[int], spends: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Response values of the given channels at the given spends (one array each)."""
        channels = list(channels)
        if self._batch is not None:
            out = self._batch(channels, spends)
        else:
            out = [self.response[c](np.asarray(x, dtype=float)) for c, x in zip(channels, spends)]
        return [np.asarray(v, dtype=float).reshape(-1) for v in out]

    def value_of_units(self) -> np.ndarray:
        """Best total value of ``j`` grid units above the lower bounds, for every ``j``."""
        return self._best[-1].copy()

    def units_allocation(self, units: int) -> np.ndarray:
        """Grid units per channel of the best allocation of exactly ``units`` units."""
        units = int(units)
        out = np.zeros(self.n_channels, dtype=np.int64)
        for c in range(self.n_channels - 1, -1, -1):
            n = int(self._choice[c][units])
            out[c] = n
            units -= n
        return out

    def allocate(self, total: float) -> np.ndarray:
        """The best spends summing exactly to ``total`` within the bounds.

        Parameters
        ----------
        total : float

        Returns
        -------
        numpy.ndarray
            Spend per channel.

        Raises
        ------
        TabTuneInputError
            ``total`` is below the sum of the lower bounds or above the sum of the upper ones.
        """
        lo, hi = float(self.lower.sum()), float(self.upper.sum())
        tol = 1e-9 * max(1.0, hi)
        if not math.isfinite(total) or total < lo - tol or total > hi + tol:
            raise TabTuneInputError(
                f"total {total:,.2f} is outside what the bounds allow: the lower bounds sum to "
                f"{lo:,.2f} and the upper bounds to {hi:,.2f}"
                + (" (lower bounds: " + _fmt_list(self.lower) + ")" if total < lo else "")
                + (" (upper bounds: " + _fmt_list(self.upper) + ")" if total > hi else "")
            )
        total = min(max(total, lo), hi)
        rest = total - lo
        grid_units = min(int(np.floor(rest / self.step + 1e-9)), int(self.max_units.sum()))
        spend = self.lower + self.step * self.units_allocation(grid_units)
        spend = np.minimum(spend, self.upper)
        self._distribute_leftover(spend, total)
        if self.refine:
            self._refine(spend, total)
        return spend

    def _refine(self, spend: np.ndarray, total: float) -> None:
        """Pairwise transfers off the grid while they gain (in place; step 4 of the docs).

        Each round evaluates every channel at ``spend - d``, ``spend`` and ``spend + d`` (one
        batch call) and moves ``d`` from the channel that loses least to the one that gains
        most, when the net gain is positive; otherwise ``d`` is halved. Starts at the grid
        step and stops below ``step / 2**REFINE_HALVINGS`` or after ``REFINE_MAX_ROUNDS``
        rounds. The predicted value never falls, and the plan keeps its total and bounds.
        """
        k = self.n_channels
        if k < 2 or self.step <= 0:
            return
        d = float(self.step)
        smallest = d / 2**REFINE_HALVINGS
        for _ in range(REFINE_MAX_ROUNDS):
            if d < smallest:
                break
            room_up, room_down = self.upper - spend, spend - self.lower
            values = self.evaluate(
                range(k),
                [
                    np.array(
                        [spend[c] - min(d, room_down[c]), spend[c], spend[c] + min(d, room_up[c])]
                    )
                    for c in range(k)
                ],
            )
            gain = np.array(
                [v[2] - v[1] if room_up[c] >= d else -np.inf for c, v in enumerate(values)]
            )
            loss = np.array(
                [v[1] - v[0] if room_down[c] >= d else np.inf for c, v in enumerate(values)]
            )
            net = gain[None, :] - loss[:, None]  # row: the channel giving d, column: receiving
            np.fill_diagonal(net, -np.inf)
            giver, taker = np.unravel_index(int(np.argmax(net)), net.shape)
            noise = 1e-12 * (1.0 + max(abs(float(v[1])) for v in values))
            if net[giver, taker] > noise:
                spend[giver] = max(spend[giver] - d, self.lower[giver])
                spend[taker] = min(spend[taker] + d, self.upper[taker])
            else:
                d /= 2.0
        # Float dust of the transfers: put it where it fits.
        left = total - float(spend.sum())
        if left != 0.0:
            room = (self.upper - spend) if left > 0 else (spend - self.lower)
            c = int(np.argmax(room))
            spend[c] += left if left > 0 else -min(-left, room[c])

    def _distribute_leftover(self, spend: np.ndarray, total: float) -> None:
        """Give ``total - sum(spend)`` to channels with room, best predicted gain first."""
        for _ in range(2 * self.n_channels + 2):
            left = total - float(spend.sum())
            if abs(left) <= 1e-12 * max(1.0, total):
                break
            if left < 0:  # only float dust can overshoot: take it from the fullest channel
                room = spend - self.lower
                c = int(np.argmax(room))
                spend[c] -= min(-left, room[c])
                continue
            room = self.upper - spend
            candidates = np.flatnonzero(room > 1e-12 * max(1.0, total))
            if candidates.size == 0:
                break
            amounts = np.minimum(left, room[candidates])
            values = self.evaluate(
                candidates,
                [np.array([spend[c], spend[c] + a]) for c, a in zip(candidates, amounts)],
            )
            gains = [(v[1] - v[0]) / a for v, a in zip(values, amounts)]
            c = int(candidates[int(np.argmax(gains))])
            spend[c] = min(spend[c] + min(left, room[c]), self.upper[c])
        # Float dust: put it where it fits.
        left = total - float(spend.sum())
        if left != 0.0:
            room = (self.upper - spend) if left > 0 else (spend - self.lower)
            c = int(np.argmax(room))
            spend[c] += left if left > 0 else -min(-left, room[c])

    def value(self, spend: np.ndarray) -> np.ndarray:
        """Predicted value of each channel at the given spends."""
        values = self.evaluate(range(self.n_channels), [np.array([s]) for s in spend])
        return np.array([float(v[0]) for v in values])


def _dp_tables(values: Sequence[np.ndarray], max_units: int) -> tuple[list, list]:
    """DP over channels: best value of ``j`` units over the first ``k`` channels and the choice.

    Returns ``best`` (one array of length ``max_units + 1`` per channel, ``-inf`` where ``j``
    units cannot be placed) and ``choice`` (units given to channel ``k`` in that optimum).
    """
    best_prev = np.full(max_units + 1, -np.inf)
    best_prev[0] = 0.0
    bests, choices = [], []
    for v in values:
        best = np.full(max_units + 1, -np.inf)
        choice = np.zeros(max_units + 1, dtype=np.int64)
        for n in range(min(v.size, max_units + 1)):
            candidate = best_prev[: max_units + 1 - n] + v[n]
            better = candidate > best[n:]
            best[n:][better] = candidate[better]
            choice[n:][better] = n
        bests.append(best)
        choices.append(choice)
        best_prev = best
    return bests, choices


def allocate_budget(
    response: Sequence[Response],
    lower: Sequence[float] | np.ndarray,
    upper: Sequence[float] | np.ndarray,
    total: float,
    *,
    grid_points: int = 61,
    reference: Sequence[float] | np.ndarray | None = None,
    refine: bool = True,
) -> np.ndarray:
    """Split ``total`` across channels to maximise the summed response, exactly.

    Dynamic programming on a spend grid (module docstring); optimal on the grid for any
    response curves, S-shaped ones included, where greedy marginal allocation is not.

    Parameters
    ----------
    response : sequence of callables
        One per channel: array of spends -> array of predicted revenue.
    lower, upper : array-like of float
        Spend bounds per channel.
    total : float
        The amount to allocate.
    grid_points : int, default 61
        About this many grid points per channel range.
    reference : array-like of float, optional
        Spends ties are broken toward.
    refine : bool, default True
        Refine the grid optimum off the grid by pairwise transfers while they gain.

    Returns
    -------
    numpy.ndarray
        Spend per channel; sums to ``total`` and respects every bound.

    Raises
    ------
    TabTuneInputError
        ``total`` outside ``[sum(lower), sum(upper)]`` (the message gives both sums), or bad
        bounds.

    Examples
    --------
    >>> import numpy as np
    >>> s_curve = lambda s: 100 / (1 + np.exp(-(s - 60) / 4))
    >>> allocate_budget([s_curve, s_curve], [0, 0], [100, 100], 100).round()
    array([100.,   0.])
    """
    grid = SpendGrid(
        response, lower, upper, grid_points=grid_points, reference=reference, refine=refine
    )
    return grid.allocate(float(total))


def _fmt_list(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:,.2f}" for v in values) + "]"


# ---------------------------------------------------------------------------- the planner
@dataclass
class _Problem:
    brand: str
    date: pd.Timestamp
    channels: list[str]
    lower: np.ndarray
    upper: np.ndarray
    recent: np.ndarray
    vertical: str | None
    model_id: str
    source: str
    grid: SpendGrid
    calibration: np.ndarray


class BudgetPlanner:
    """Plan a brand's daily budget across channels from a learned spend-response model.

    Parameters
    ----------
    base_model : BudgetPlanner, str, Path or estimator, optional
        ``None``: :meth:`fit` pretrains the spend-response model on the pooled history.
        Otherwise a pretrained planner, a directory written by :meth:`save`, or a fitted
        ``TabTuneRegressor`` of the ``budget`` task; :meth:`fit` then adapts it to each brand in
        the history (brands below ``adaptation.min_rows_to_adapt`` rows keep the base model).
    config : Config, optional
        Sections ``budget`` (bounds, lookback, grid), ``model`` and ``adaptation``, and the
        ``budget`` task (built-in default when the config has none). Default: built-in config.
    backend : {"lightgbm", "xgboost"}, optional
        Overrides the config's backend for pretraining.
    n_jobs : int, optional
        Threads per model fit (the estimators' ``n_jobs``); ``None``: the backend's default.
    calibrate : bool, default True
        Scale each channel's predicted curve so that it reproduces the brand's observed revenue
        over the lookback window (module docstring, "Calibration").

    Attributes
    ----------
    models_ : ModelSet
        The global model and the per-brand models.
    spend_history_ : DataFrame
        Daily spend and revenue per brand x date x channel (with ``vertical``) seen by
        :meth:`fit` and :meth:`observe`.

    Examples
    --------
    >>> planner = BudgetPlanner().fit(history)  # doctest: +SKIP
    >>> planner.plan(1000.0, "2025-06-01", brand="b003")  # doctest: +SKIP
    """

    def __init__(
        self,
        base_model: Any = None,
        config: Config | None = None,
        backend: str | None = None,
        n_jobs: int | None = None,
        calibrate: bool = True,
    ) -> None:
        self.base_model = base_model
        self.config = config
        self.backend = backend
        self.n_jobs = n_jobs
        self.calibrate = calibrate

    # -- construction -----------------------------------------------------------
    def _config(self) -> Config:
        return config_with_backend(self.config, self.backend)

    @property
    def task(self) -> TaskConfig:
        """The spend-response task definition."""
        return resolve_task(self._config(), "budget", BUDGET_TASK)

    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        *,
        config: Config | None = None,
        history: pd.DataFrame | None = None,
        model_id: str = "",
        source: str = "global",
    ) -> BudgetPlanner:
        """A planner around an already fitted estimator (e.g. a registry champion).

        Parameters
        ----------
        estimator : TabTuneRegressor
            A fitted model of the ``budget`` task.
        config : Config, optional
        history : DataFrame, optional
            Contract rows the recent spend is taken from (:meth:`observe`).
        model_id : str
            Registry id reported in plans.
        source : {"global", "brand"}
            Whether the estimator is a brand's own model or the global one.
        """
        planner = cls(config=config)
        planner.models_ = ModelSet(
            planner.task, estimator, global_id=model_id, global_source=source
        )
        planner.spend_history_ = _empty_spend_history()
        planner.bid_reference_ = None
        planner.response_ = None
        if history is not None:
            planner.observe(history)
        return planner

    def fit(self, history: pd.DataFrame) -> BudgetPlanner:
        """Pretrain (no base model) or adapt per brand (with one) the spend-response model.

        Parameters
        ----------
        history : DataFrame
            Campaign rows (the data contract); rows are summed to brand x date x channel.

        Returns
        -------
        BudgetPlanner
            ``self``.

        Raises
        ------
        TabTuneInputError
            Rows that break the contract, or no usable rows.
        """
        cfg = self._config()
        rows = prepare_rows(history)
        task = self.task
        if self.base_model is None:
            self.models_ = ModelSet.pretrain(cfg, task, rows, n_jobs=self.n_jobs)
        else:
            base = ModelSet.from_base(self.base_model, task, PLANNER_FILE, "models")
            self.models_ = base.adapt(cfg, rows, n_jobs=self.n_jobs)
        self.spend_history_ = _empty_spend_history()
        self.bid_reference_ = None
        self.observe(rows)
        self.response_ = None
        if cfg.budget.response == "hill":
            days = self.spend_history_
            if self.base_model is None:
                self.response_ = HillResponse.pretrain(days)
            else:
                base_response = _base_response(self.base_model)
                if base_response is not None:
                    self.response_ = base_response.adapt(days)
        return self

    def observe(self, history: pd.DataFrame) -> BudgetPlanner:
        """Add campaign rows to the spend history recent spend is computed from (no refit).

        Parameters
        ----------
        history : DataFrame
            Campaign rows; rows already present (same brand, date, channel) are replaced.

        Returns
        -------
        BudgetPlanner
            ``self``.
        """
        rows = prepare_rows(history)
        daily = _daily_spend(rows)
        index, self.bid_reference_ = bid_index(rows, getattr(self, "bid_reference_", None))
        daily = daily.merge(
            index.astype({GROUP_COLUMN: str, "channel": str}).assign(
                **{TIME_COLUMN: lambda f: pd.to_datetime(f[TIME_COLUMN])}
            ),
            on=[GROUP_COLUMN, TIME_COLUMN, "channel"],
            how="left",
        )
        old = getattr(self, "spend_history_", _empty_spend_history())
        both = pd.concat([old, daily], ignore_index=True) if len(old) else daily
        self.spend_history_ = (
            both.drop_duplicates([GROUP_COLUMN, TIME_COLUMN, "channel"], keep="last")
            .sort_values([GROUP_COLUMN, TIME_COLUMN, "channel"])
            .reset_index(drop=True)
        )
        return self

    # -- inputs ------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise TabTuneInputError("this BudgetPlanner is not fitted; call fit(history) first")

    def _brand(self, brand: str | None) -> str:
        brands = (
            sorted(self.spend_history_[GROUP_COLUMN].unique()) if len(self.spend_history_) else []
        )
        if brand is None:
            if len(brands) == 1:
                return str(brands[0])
            raise TabTuneInputError(
                f"plan: pass brand=...; the history holds {len(brands)} brands"
                + (
                    f" ({', '.join(map(str, brands[:8]))}{' ...' if len(brands) > 8 else ''})"
                    if brands
                    else ""
                )
            )
        return str(brand)

    def recent_spend(self, brand: str, date: Any) -> pd.Series:
        """Mean daily spend per channel over the ``lookback_days`` before ``date``.

        Days the brand has data count; a channel without spend on one of them counts 0.

        Parameters
        ----------
        brand : str
        date : date-like

        Returns
        -------
        Series
            Channel -> mean daily spend (channels with positive spend only), sorted by channel.
        """
        self._check_fitted()
        recent = self._recent_window(brand, as_timestamp(date, "date"))
        if len(recent) == 0:
            return pd.Series(dtype=float, name="recent_spend")
        n_days = recent[TIME_COLUMN].nunique()
        out = recent.groupby("channel", sort=True, observed=True)["spend"].sum() / n_days
        out = out[out > 0].astype(float)
        out.index = out.index.astype(str)
        out.name = "recent_spend"
        return out

    def _recent_window(self, brand: str, day: pd.Timestamp) -> pd.DataFrame:
        """The brand's daily channel rows in the ``lookback_days`` before its last day < day."""
        hist = self.spend_history_
        hist = hist[(hist[GROUP_COLUMN] == brand) & (hist[TIME_COLUMN] < day)]
        if len(hist) == 0:
            return hist
        lookback = self._config().budget.lookback_days
        start = hist[TIME_COLUMN].max() - pd.Timedelta(days=lookback - 1)
        return hist[hist[TIME_COLUMN] >= start]

    def _calibration(
        self, brand: str, day: pd.Timestamp, channels: list[str], vertical: str | None
    ) -> np.ndarray:
        """Per channel: recent observed revenue / the model's prediction for the same days.

        The pooled model gets the *shape* of a channel's response right more easily than its
        level for one brand; scaling each curve so that it reproduces the brand's revenue over
        the lookback window (same days, same spends) removes the level error. 1 where there is
        nothing to compare; clipped to [1/4, 4].
        """
        out = np.ones(len(channels))
        if not self.calibrate:
            return out
        recent = self._recent_window(brand, day)
        if len(recent) == 0 or "revenue" not in recent.columns:
            return out
        rows = recent[recent["channel"].isin(channels) & recent["revenue"].notna()]
        if len(rows) == 0:
            return out
        if self._relative:
            # Each past day's trailing state, computed like the training features.
            hist = self.spend_history_
            full = add_spend_features(
                hist[(hist[GROUP_COLUMN] == brand) & (hist[TIME_COLUMN] < day)]
            )
            rows = rows.merge(
                full[[TIME_COLUMN, "channel", *_STATE_COLUMNS]],
                on=[TIME_COLUMN, "channel"],
                how="left",
            )
        predicted = self._predict_rows(
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

    def _vertical(self, brand: str) -> str | None:
        hist = self.spend_history_
        hist = hist[hist[GROUP_COLUMN] == brand]
        if "vertical" not in hist.columns or len(hist) == 0:
            return None
        return str(hist["vertical"].iloc[-1])

    def _bounds(
        self, recent: pd.Series, bounds: BoundsLike | None
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        if bounds is None:
            if len(recent) == 0:
                raise TabTuneInputError(
                    "no recent spend to derive default bounds from; pass bounds="
                    "{channel: (lower, upper), ...}"
                )
            share = self._config().budget.relative_bounds
            channels = list(recent.index)
            values = recent.to_numpy(dtype=float)
            return channels, values * max(0.0, 1.0 - share), values * (1.0 + share)
        if not isinstance(bounds, Mapping) or len(bounds) == 0:
            raise TabTuneInputError(
                "bounds must be a non-empty mapping {channel: (lower, upper)}, e.g. "
                '{"search": (100, 400)}'
            )
        channels, lows, highs = [], [], []
        for channel, pair in bounds.items():
            try:
                low, high = (float(x) for x in pair)
            except (TypeError, ValueError):
                raise TabTuneInputError(
                    f"bounds[{channel!r}] must be a (lower, upper) pair of numbers, got {pair!r}"
                ) from None
            if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high < low:
                raise TabTuneInputError(
                    f"bounds[{channel!r}] = ({low:g}, {high:g}): need 0 <= lower <= upper"
                )
            channels.append(str(channel))
            lows.append(low)
            highs.append(high)
        return channels, np.array(lows), np.array(highs)

    @property
    def _relative(self) -> bool:
        """Whether the task models spend relative to the channel's trailing state."""
        task = self.task
        return any(c in {*task.numeric, task.target.denominator} for c in SPEND_FEATURE_COLUMNS)

    def _predict_rows(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's revenue (>= 0) for rows with ``brand_id``, ``date``, ``channel``,
        ``vertical``, ``spend`` and, for a relative task, the trailing state columns.

        A relative task predicts revenue over the channel's trailing revenue at the spend over
        its trailing spend; the prediction is multiplied back by the trailing revenue, so it
        stays monotone non-decreasing in spend.
        """
        task = self.task
        frame = frame.reset_index(drop=True)
        if self._relative:
            frame = frame.assign(
                relative_spend=frame["spend"].to_numpy(dtype=float)
                / frame["trailing_spend"].to_numpy(dtype=float)
            )
        raw = self.models_.predict(design_matrix(frame, task))
        if task.target.denominator:
            raw = raw * frame[task.target.denominator].to_numpy(dtype=float)
        return np.maximum(raw, 0.0)

    def _predict(
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
        return self._predict_rows(frame)

    def _state(self, brand: str, day: pd.Timestamp, channels: list[str]) -> pd.DataFrame | None:
        """Trailing state of each channel on ``day`` (None for an absolute-spend task).

        Raises
        ------
        TabTuneInputError
            A channel with no spend in the window before ``day``: a relative model cannot
            place its spend.
        """
        if not self._relative:
            return None
        hist = self.spend_history_
        state = spend_state(hist[hist[GROUP_COLUMN] == brand], day)
        state = state.droplevel(GROUP_COLUMN) if len(state) else state.reset_index(drop=True)
        state = state.reindex(channels)
        bad = [c for c in channels if not (state.loc[c, "trailing_spend"] > 0)]
        if bad:
            raise TabTuneInputError(
                f"budget: channel(s) {bad} of brand {brand!r} had no spend in the "
                f"{_STATE_WINDOW} days before {day.date()}; the spend-response model predicts "
                "relative to a channel's recent spend, so it cannot plan a channel without it"
            )
        return state[list(_STATE_COLUMNS)]

    def _hill_curves(self, brand: str, day: pd.Timestamp, channels: list[str]) -> list:
        """Per channel the bid-identified Hill curve on ``day`` (None where there is none)."""
        response = getattr(self, "response_", None)
        if response is None or self._config().budget.response != "hill":
            return [None] * len(channels)
        window = self._recent_window(brand, day)
        if "bid_index" not in window.columns:
            return [None] * len(channels)
        return [response.curve(brand, c, window[window["channel"] == c]) for c in channels]

    def _curves(
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
        state = self._state(brand, day, [channels[c] for c in modelled]) if modelled else None

        def one(c: int) -> Response:
            curve = hill[c]
            if curve is not None:
                return curve
            return lambda spend: (
                scale[c] * self._predict(brand, vertical, day, channels[c], spend, state)
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
                values = self._predict(brand, vertical, day, names, spend, state)
                parts = np.split(values, np.cumsum([flat[p].size for p in model_pos])[:-1])
                for p, part in zip(model_pos, parts):
                    out[p] = scale[idx[p]] * part
            return [np.asarray(v, dtype=float) for v in out]

        return [one(c) for c in range(len(channels))], batch

    def _problem(self, date: Any, bounds: BoundsLike | None, brand: str | None) -> _Problem:
        self._check_fitted()
        brand = self._brand(brand)
        day = as_timestamp(date, "date")
        recent = self.recent_spend(brand, day)
        channels, lower, upper = self._bounds(recent, bounds)
        vertical = self._vertical(brand)
        recent_arr = np.array([float(recent.get(c, 0.0)) for c in channels])
        hill = self._hill_curves(brand, day, channels)
        scale = np.ones(len(channels))
        modelled = [c for c in range(len(channels)) if hill[c] is None]
        if modelled:
            names = [channels[c] for c in modelled]
            scale[modelled] = self._calibration(brand, day, names, vertical)
        curves, batch = self._curves(brand, day, channels, vertical, scale, hill)
        grid = SpendGrid(
            curves,
            lower,
            upper,
            grid_points=self._config().budget.grid_points,
            reference=_habitual(recent_arr, lower, upper, float(recent_arr.sum())),
            evaluate=batch,
        )
        model_id, source = self.models_.model_id(brand), self.models_.source(brand)
        return _Problem(
            brand, day, channels, lower, upper, recent_arr, vertical, model_id, source, grid, scale
        )

    # -- decisions ---------------------------------------------------------------
    def plan(
        self,
        total: float | None,
        date: Any,
        bounds: BoundsLike | None = None,
        brand: str | None = None,
    ) -> pd.DataFrame:
        """The revenue-maximising split of a daily total across channels.

        Parameters
        ----------
        total : float or None
            Daily amount to allocate; ``None`` uses the recent daily spend (sum over channels).
        date : date-like
            The day planned for (calendar features, and the recent-spend window before it).
        bounds : mapping, optional
            ``{channel: (lower, upper)}`` absolute daily bounds, which also choose the
            channels. Default: recent spend +-``budget.relative_bounds`` for each channel with
            recent spend.
        brand : str, optional
            Needed when the history holds more than one brand.

        Returns
        -------
        DataFrame
            One row per channel: ``brand_id``, ``date``, ``channel``, ``spend``,
            ``predicted_revenue``, ``marginal_roas``, ``recent_spend``, ``lower``, ``upper``,
            ``habitual_spend``, ``habitual_revenue``, ``uplift``, ``model_id``. ``attrs`` holds
            ``total``, ``predicted_revenue``, ``habitual_revenue``, ``predicted_uplift`` and
            ``uplift_pct``.

        Raises
        ------
        TabTuneInputError
            ``total`` below the sum of the lower bounds or above the sum of the upper bounds
            (the message gives the numbers), bad bounds, or an unknown brand without bounds.
        """
        problem = self._problem(date, bounds, brand)
        if total is None:
            total = float(problem.recent.sum())
        return self._plan_frame(problem, problem.grid.allocate(float(total)), float(total))

    def min_spend_for_revenue(
        self,
        target_revenue: float,
        date: Any,
        bounds: BoundsLike | None = None,
        brand: str | None = None,
    ) -> pd.DataFrame:
        """The cheapest plan whose predicted revenue reaches ``target_revenue``.

        Parameters
        ----------
        target_revenue : float
        date : date-like
        bounds : mapping, optional
            As in :meth:`plan`.
        brand : str, optional

        Returns
        -------
        DataFrame
            The plan (as :meth:`plan` returns it) at the minimal total, which is
            ``attrs["total"]``.

        Raises
        ------
        TabTuneInputError
            When even the sum of the upper bounds cannot reach the target (the message gives
            the best predicted revenue within the bounds).
        """
        if not math.isfinite(float(target_revenue)):
            raise TabTuneInputError(f"target_revenue must be a number, got {target_revenue!r}")
        problem = self._problem(date, bounds, brand)
        grid = problem.grid
        lo, hi = float(problem.lower.sum()), float(problem.upper.sum())

        def revenue(total: float) -> tuple[float, np.ndarray]:
            spend = grid.allocate(total)
            return float(grid.value(spend).sum()), spend

        best_hi, spend_hi = revenue(hi)
        if best_hi < target_revenue:
            raise TabTuneInputError(
                f"revenue target {target_revenue:,.2f} is out of reach for brand "
                f"{problem.brand!r} on {problem.date.date()}: the best plan within the bounds "
                f"predicts {best_hi:,.2f} at a total of {hi:,.2f}"
            )
        best_lo, spend_lo = revenue(lo)
        if best_lo >= target_revenue:
            return self._plan_frame(problem, spend_lo, lo)
        # Grid totals first (one DP table gives them all), then bisection between two.
        values = grid.value_of_units()
        reach = np.flatnonzero(values >= target_revenue)
        upper_total, spend_up = hi, spend_hi
        if reach.size:
            t = min(hi, lo + grid.step * int(reach[0]))
            v, s = revenue(t)
            if v >= target_revenue:
                upper_total, spend_up = t, s
        lower_total = max(lo, upper_total - grid.step) if upper_total > lo else lo
        if revenue(lower_total)[0] >= target_revenue:
            lower_total = lo
        # Tree models' curves are step functions: the minimal total sits on a step, which the
        # bisection pins down to a billionth of a grid step.
        tolerance = max(1e-9 * grid.step, 1e-12 * max(1.0, upper_total))
        for _ in range(60):
            if upper_total - lower_total <= tolerance:
                break
            mid = 0.5 * (lower_total + upper_total)
            v, s = revenue(mid)
            if v >= target_revenue:
                upper_total, spend_up = mid, s
            else:
                lower_total = mid
        return self._plan_frame(problem, spend_up, upper_total)

    def response_curves(
        self,
        date: Any,
        bounds: BoundsLike | None = None,
        brand: str | None = None,
        points: int = 50,
        span: float = 2.0,
    ) -> pd.DataFrame:
        """Predicted revenue against spend per channel, for plots.

        Parameters
        ----------
        date : date-like
        bounds : mapping, optional
            As in :meth:`plan` (chooses the channels).
        brand : str, optional
        points : int, default 50
            Points per channel.
        span : float, default 2.0
            Curves run from 0 to ``span`` times the larger of the upper bound and the recent
            spend.

        Returns
        -------
        DataFrame
            ``channel``, ``spend``, ``predicted_revenue``, ``lower``, ``upper``.
        """
        problem = self._problem(date, bounds, brand)
        frames = []
        for c, channel in enumerate(problem.channels):
            top = span * max(problem.upper[c], problem.recent[c], 1e-9)
            spend = np.linspace(0.0, top, points)
            frames.append(
                pd.DataFrame(
                    {
                        "channel": channel,
                        "spend": spend,
                        "predicted_revenue": problem.grid.response[c](spend),
                        "lower": problem.lower[c],
                        "upper": problem.upper[c],
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def _plan_frame(self, problem: _Problem, spend: np.ndarray, total: float) -> pd.DataFrame:
        grid = problem.grid
        k = len(spend)
        habitual = _habitual(problem.recent, problem.lower, problem.upper, total, clip=False)
        step = np.maximum(_MARGINAL_STEP * spend, 1e-6 * max(1.0, total))
        below, above = np.maximum(spend - step, 0.0), spend + step
        # One prediction for everything: plan, habitual split and the marginal-ROAS points.
        points = [
            np.array(
                [spend[c], below[c], above[c], habitual[c] if np.isfinite(habitual[c]) else 0.0]
            )
            for c in range(k)
        ]
        values = grid.evaluate(range(k), points)
        revenue = np.array([v[0] for v in values])
        marginal = np.array([(v[2] - v[1]) for v in values]) / (above - below)
        if np.all(np.isfinite(habitual)):
            habitual_revenue = np.array([v[3] for v in values])
        else:
            habitual_revenue = np.full(k, np.nan)
        out = pd.DataFrame(
            {
                GROUP_COLUMN: problem.brand,
                TIME_COLUMN: problem.date,
                "channel": problem.channels,
                "spend": spend,
                "predicted_revenue": revenue,
                "marginal_roas": marginal,
                "recent_spend": problem.recent,
                "lower": problem.lower,
                "upper": problem.upper,
                "habitual_spend": habitual,
                "habitual_revenue": habitual_revenue,
                "uplift": revenue - habitual_revenue,
                "calibration": problem.calibration,
                "model_id": problem.model_id,
            }
        )
        total_revenue = float(revenue.sum())
        habitual_total = float(np.sum(habitual_revenue))
        out.attrs.update(
            {
                "total": float(total),
                "predicted_revenue": total_revenue,
                "habitual_revenue": habitual_total,
                "predicted_uplift": total_revenue - habitual_total,
                "uplift_pct": (
                    100.0 * (total_revenue - habitual_total) / habitual_total
                    if habitual_total > 0
                    else float("nan")
                ),
                "model_source": problem.source,
            }
        )
        return out

    # -- persistence ---------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the planner to a directory: models in their native format plus JSON.

        Parameters
        ----------
        path : str or Path
            Directory (created; its planner files are replaced).

        Returns
        -------
        Path
        """
        self._check_fitted()
        from tabtune.data.store import atomic_write_bytes, atomic_write_parquet

        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        self.models_.save(root / "models")
        cfg = self._config()
        keep = cfg.budget.lookback_days
        if self._relative:  # calibration needs each lookback day's trailing state
            keep += LONG_WINDOW_DAYS
        hist = self.spend_history_
        if len(hist):
            last = hist.groupby(GROUP_COLUMN)[TIME_COLUMN].transform("max")
            hist = hist[hist[TIME_COLUMN] > last - pd.Timedelta(days=keep)]
        atomic_write_parquet(hist.reset_index(drop=True), root / SPEND_FILE)
        reference = getattr(self, "bid_reference_", None)
        if reference is not None and len(reference):
            atomic_write_parquet(reference.reset_index(drop=True), root / BID_REFERENCE_FILE)
        elif (root / BID_REFERENCE_FILE).exists():
            (root / BID_REFERENCE_FILE).unlink()
        response = getattr(self, "response_", None)
        meta = {
            "format_version": FORMAT_VERSION,
            "kind": "budget_planner",
            "task": self.task.model_dump(mode="json"),
            "budget": cfg.budget.model_dump(mode="json"),
            "calibrate": self.calibrate,
            "hill_response": response.to_dict() if response is not None else None,
        }
        atomic_write_bytes(root / PLANNER_FILE, json.dumps(meta, indent=2).encode("utf-8"))
        return root

    @classmethod
    def load(cls, path: str | Path, config: Config | None = None) -> BudgetPlanner:
        """Read a planner written by :meth:`save`.

        Parameters
        ----------
        path : str or Path
        config : Config, optional
            Overrides the saved ``budget`` settings (the saved ones are used otherwise).

        Returns
        -------
        BudgetPlanner
        """
        root = Path(path)
        meta = _read_meta(root / PLANNER_FILE, "budget_planner")
        if config is None:
            cfg = default_config()
            cfg = cfg.model_copy(
                update={
                    "budget": type(cfg.budget).model_validate(meta["budget"]),
                    "tasks": {**cfg.tasks, "budget": TaskConfig.model_validate(meta["task"])},
                }
            )
        else:
            cfg = config
        planner = cls(config=cfg, calibrate=bool(meta.get("calibrate", True)))
        planner.models_ = ModelSet.load(root / "models", planner.task)
        hist = pd.read_parquet(root / SPEND_FILE)
        hist[TIME_COLUMN] = pd.to_datetime(hist[TIME_COLUMN])
        if "bid_index" not in hist.columns:
            hist["bid_index"] = np.nan
        planner.spend_history_ = hist
        reference = root / BID_REFERENCE_FILE
        planner.bid_reference_ = pd.read_parquet(reference) if reference.is_file() else None
        saved = meta.get("hill_response")
        planner.response_ = HillResponse.from_dict(saved) if saved else None
        return planner


def _base_response(base: Any) -> HillResponse | None:
    """The Hill response of a base planner (object or saved directory), else None."""
    response = getattr(base, "response_", None)
    if isinstance(response, HillResponse):
        return response
    if isinstance(base, str | Path) and (Path(base) / PLANNER_FILE).is_file():
        saved = _read_meta(Path(base) / PLANNER_FILE, "budget_planner").get("hill_response")
        return HillResponse.from_dict(saved) if saved else None
    return None


def _read_meta(path: Path, kind: str) -> dict[str, Any]:
    if not path.is_file():
        raise TabTuneInputError(f"{path}: not found (not a saved {kind.replace('_', ' ')})")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("kind") != kind or meta.get("format_version") != FORMAT_VERSION:
        raise TabTuneInputError(
            f"{path}: not a {kind} of format {FORMAT_VERSION} "
            f"(kind {meta.get('kind')!r}, format {meta.get('format_version')!r})"
        )
    return meta


def _habitual(
    recent: np.ndarray, lower: np.ndarray, upper: np.ndarray, total: float, *, clip: bool = True
) -> np.ndarray:
    """The recent split scaled to ``total`` (optionally clipped into the bounds)."""
    share = recent.sum()
    if share <= 0:
        out = np.full(len(recent), np.nan if not clip else 0.0)
        return np.clip(out, lower, upper) if clip else out
    out = total * recent / share
    return np.clip(out, lower, upper) if clip else out


def _empty_spend_history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            GROUP_COLUMN: pd.Series([], dtype="str"),
            TIME_COLUMN: pd.Series([], dtype="datetime64[us]"),
            "channel": pd.Series([], dtype="str"),
            "spend": pd.Series([], dtype=float),
            "revenue": pd.Series([], dtype=float),
            "vertical": pd.Series([], dtype="str"),
            "bid_index": pd.Series([], dtype=float),
        }
    )


def _daily_spend(rows: pd.DataFrame) -> pd.DataFrame:
    keys = [GROUP_COLUMN, TIME_COLUMN, "channel"]
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
    out[GROUP_COLUMN] = out[GROUP_COLUMN].astype(str)
    out["channel"] = out["channel"].astype(str)
    out["vertical"] = out["vertical"].astype(str)
    out[TIME_COLUMN] = pd.to_datetime(out[TIME_COLUMN])
    return out[[GROUP_COLUMN, TIME_COLUMN, "channel", "spend", "revenue", "vertical"]]
