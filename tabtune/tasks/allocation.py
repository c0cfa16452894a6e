r"""Exact allocation of a daily budget across channels on a spend grid.

The problem, for response curves :math:`f_c` (a channel's predicted revenue at spend *s*), a
total *T* and bounds :math:`l_c \le s_c \le u_c`:

.. math::

    \max_{s_1..s_K} \sum_c f_c(s_c) \quad\text{s.t.}\quad \sum_c s_c = T,\;
    l_c \le s_c \le u_c .

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
   :math:`\delta` is halved when none does, down to :math:`\delta / 64` (or a 64th of the
   smallest channel's range over 0.01% of the total: a small channel beside large ones). The
   DP finds the best region globally (S-shaped curves included); the refinement only ever
   raises the predicted revenue and removes the grid's rounding, which matters because the
   achievable gains are small: with :math:`\delta` about 1% of the channels' mean spend, the
   optimum of smooth curves sits between grid points, and rounding to them cost 0.01-0.11 of
   the median share of the achievable uplift on the budget benchmark (three seeds, two
   totals).

Ties are broken toward a reference split (``reference``; the planner passes the recent split),
so money does not move for no predicted gain on flat stretches of a tree model's curve.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tabtune.errors import TabTuneInputError

__all__ = [
    "as_amount",
    "REFINE_HALVINGS",
    "REFINE_MAX_ROUNDS",
    "BatchResponse",
    "BoundsLike",
    "Response",
    "SpendGrid",
    "allocate_budget",
    "channel_bounds",
    "habitual_split",
]

#: One channel's response curve: an array of spends -> an array of predicted revenue.
Response = Callable[[np.ndarray], np.ndarray]
#: Evaluate several channels at once: (channel indices, spends per channel) -> values per channel.
BatchResponse = Callable[[Sequence[int], Sequence[np.ndarray]], list[np.ndarray]]

#: Channel bounds: ``{channel: (lower, upper)}``.
BoundsLike = Mapping[str, Sequence[float]]

#: Off-grid refinement of a plan (:meth:`SpendGrid.allocate`): transfers start at the grid step
#: and halve down to ``step / 2**REFINE_HALVINGS``; at most ``REFINE_MAX_ROUNDS`` evaluations.
REFINE_HALVINGS = 6
REFINE_MAX_ROUNDS = 200


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

    def evaluate(
        self, channels: Sequence[int] | np.ndarray, spends: Sequence[np.ndarray]
    ) -> list[np.ndarray]:
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
        step and stops below ``min(step, smallest range over 1e-4 * total) / 2**REFINE_HALVINGS`` or
        after ``REFINE_MAX_ROUNDS`` rounds. The predicted value never falls, and the plan keeps its total and bounds.
        """
        k = self.n_channels
        if k < 2 or self.step <= 0:
            return
        d = float(self.step)
        # a channel whose whole range is a fraction of the step (a small one beside large
        # ones) only moves by smaller transfers: down to a 64th of its range too
        ranges = self.capacity[self.capacity > 1e-4 * max(total, 1e-12)]  # not a trickle
        smallest = min(d, float(ranges.min()) if len(ranges) else d) / 2**REFINE_HALVINGS
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


def habitual_split(
    recent: np.ndarray, lower: np.ndarray, upper: np.ndarray, total: float, *, clip: bool = True
) -> np.ndarray:
    """The recent split scaled to ``total`` (optionally clipped into the bounds).

    The plan's reference (ties are broken toward it) and the split its uplift is measured
    against; NaN per channel (0 when clipped) when there is no recent spend.
    """
    share = recent.sum()
    if share <= 0:
        out = np.full(len(recent), np.nan if not clip else 0.0)
        return np.clip(out, lower, upper) if clip else out
    out = total * recent / share
    return np.clip(out, lower, upper) if clip else out


def channel_bounds(
    recent: pd.Series, bounds: BoundsLike | None, relative: float
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The channels of a plan and their spend bounds.

    Parameters
    ----------
    recent : Series
        Channel -> recent daily spend (the channels with recent spend).
    bounds : mapping or None
        ``{channel: (lower, upper)}`` absolute bounds, which also choose the channels; ``None``:
        every channel of ``recent`` within ``recent * (1 -+ relative)``.
    relative : float
        Share of the recent spend the default bounds allow either way
        (``budget.relative_bounds``).

    Returns
    -------
    (list of str, ndarray, ndarray)
        Channels, lower bounds, upper bounds.

    Raises
    ------
    TabTuneInputError
        No recent spend and no bounds, or bounds that are not ``0 <= lower <= upper`` pairs.
    """
    if bounds is None:
        if len(recent) == 0:
            raise TabTuneInputError(
                "no channel spent anything in the recent window (budget.lookback_days), so "
                "there is no spend to derive each channel's bounds from, nor a response to "
                "plan from: a plan starts from recent spend. Load the brand's recent rows, or "
                "plan without it"
            )
        channels = list(recent.index)
        values = recent.to_numpy(dtype=float)
        return channels, values * max(0.0, 1.0 - relative), values * (1.0 + relative)
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


def as_amount(value: Any, name: str, positive: bool = False) -> float:
    """``value`` as a finite real number (not a flag or text), > 0 when ``positive``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TabTuneInputError(f"{name} must be a number, got {value!r}")
    amount = float(value)
    if not math.isfinite(amount):
        raise TabTuneInputError(f"{name} must be a finite number, got {value!r}")
    if positive and amount <= 0:
        raise TabTuneInputError(f"{name} must be > 0, got {value!r}")
    return amount


def as_count(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as a whole number in ``[low, high]`` (not a flag, text or NaN)."""
    whole = isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer()
    if isinstance(value, bool) or not whole:
        raise TabTuneInputError(f"{name} must be a whole number, got {value!r}")
    count = int(value)
    if not low <= count <= high:
        raise TabTuneInputError(f"{name} must be between {low} and {high}, got {value!r}")
    return count
