"""One brand's budget planning problem, the plan table it reports and the min-spend search.

:class:`~tabtune.tasks.budget.BudgetPlanner` builds a :class:`PlanProblem` (channels, bounds,
curves on a :class:`~tabtune.tasks.allocation.SpendGrid`) and solves it; :func:`plan_frame`
turns an allocation into the plan (habitual split, uplift, marginal ROAS), and
:func:`min_total` finds the smallest total whose best plan reaches a revenue target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabtune.features import GROUP_COLUMN, TIME_COLUMN
from tabtune.tasks.allocation import SpendGrid, habitual_split

__all__ = [
    "MARGINAL_STEP",
    "PlanProblem",
    "best_revenue",
    "min_total",
    "plan_frame",
    "relative_change",
]

MARGINAL_STEP = 0.1  # marginal ROAS: central difference over +-10% of the spend


@dataclass
class PlanProblem:
    """One brand's planning problem on one day: channels, bounds and response curves."""

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
    responses: list[str]


def plan_frame(problem: PlanProblem, spend: np.ndarray, total: float) -> pd.DataFrame:
    """The plan table of ``problem`` for the channel spends ``spend`` summing to ``total``.

    Parameters
    ----------
    problem : PlanProblem
        The brand's day, channels, bounds and response curves.
    spend : numpy.ndarray
        Spend per channel (the allocation).
    total : float
        The total planned.

    Returns
    -------
    DataFrame
        One row per channel (see :meth:`tabtune.tasks.budget.BudgetPlanner.plan`), with the
        totals in ``attrs``.
    """
    grid = problem.grid
    k = len(spend)
    habitual = habitual_split(problem.recent, problem.lower, problem.upper, total, clip=False)
    step = np.maximum(MARGINAL_STEP * spend, 1e-6 * max(1.0, total))
    below, above = np.maximum(spend - step, 0.0), spend + step
    # One prediction for everything: plan, habitual split and the marginal-ROAS points.
    points = [
        np.array([spend[c], below[c], above[c], habitual[c] if np.isfinite(habitual[c]) else 0.0])
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
            "change": relative_change(spend, habitual),
            "response": problem.responses,
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
            "responses": dict(zip(problem.channels, problem.responses, strict=True)),
        }
    )
    return out


def relative_change(spend: np.ndarray, habitual: np.ndarray) -> np.ndarray:
    """``spend / habitual - 1`` per channel (NaN where the habitual spend is not > 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(habitual) & (habitual > 0), spend / habitual - 1.0, np.nan)


def best_revenue(grid: SpendGrid, total: float) -> tuple[float, np.ndarray]:
    """The best plan's predicted revenue at ``total`` and its spends.

    Parameters
    ----------
    grid : SpendGrid
        The brand's curves on the spend grid.
    total : float
        The total to allocate.

    Returns
    -------
    revenue : float
    spend : numpy.ndarray
    """
    spend = grid.allocate(total)
    return float(grid.value(spend).sum()), spend


def min_total(
    grid: SpendGrid, target: float, lo: float, hi: float, spend_hi: np.ndarray
) -> tuple[float, np.ndarray]:
    """The smallest total in ``(lo, hi]`` whose best plan reaches ``target``, and that plan.

    ``hi`` (whose plan ``spend_hi`` is) reaches the target and ``lo`` does not. Grid totals
    first (one DP table gives them all), then bisection between two.

    Parameters
    ----------
    grid : SpendGrid
        The brand's curves on the spend grid.
    target : float
        The revenue to reach.
    lo, hi : float
        Totals that do not / do reach the target.
    spend_hi : numpy.ndarray
        The best plan at ``hi``.

    Returns
    -------
    total : float
    spend : numpy.ndarray
    """
    values = grid.value_of_units()
    reach = np.flatnonzero(values >= target)
    upper_total, spend_up = hi, spend_hi
    if reach.size:
        t = min(hi, lo + grid.step * int(reach[0]))
        v, s = best_revenue(grid, t)
        if v >= target:
            upper_total, spend_up = t, s
    lower_total = max(lo, upper_total - grid.step) if upper_total > lo else lo
    if best_revenue(grid, lower_total)[0] >= target:
        lower_total = lo
    # Tree models' curves are step functions: the minimal total sits on a step, which the
    # bisection pins down to a billionth of a grid step.
    tolerance = max(1e-9 * grid.step, 1e-12 * max(1.0, upper_total))
    for _ in range(60):
        if upper_total - lower_total <= tolerance:
            break
        mid = 0.5 * (lower_total + upper_total)
        v, s = best_revenue(grid, mid)
        if v >= target:
            upper_total, spend_up = mid, s
        else:
            lower_total = mid
    return upper_total, spend_up
