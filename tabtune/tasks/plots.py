"""PNG plots of the decisions: spend-response curves with the plan, bid vs predicted value.

matplotlib is optional (``pip install tabtune[plot]``) and imported inside the functions with
the non-interactive Agg backend, so ``import tabtune`` never imports it and the plots work on
a headless server. Each function writes one PNG (atomically) and returns its path.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabtune.atomic import atomic_write_bytes
from tabtune.errors import TabTuneInputError
from tabtune.optional import optional_import

__all__ = ["plot_bid_values", "plot_response_curves"]


def _pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend; a :class:`TabTuneInputError` when missing."""
    try:
        matplotlib = optional_import("matplotlib", extra="plot", purpose="plotting")
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise TabTuneInputError(str(exc)) from None
    matplotlib.use("Agg", force=True)
    return optional_import("matplotlib.pyplot", extra="plot", purpose="plotting")


def _save(fig: Any, path: str | Path) -> Path:

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    out = Path(path)
    atomic_write_bytes(out, buffer.getvalue())
    return out


def _need(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TabTuneInputError(f"{what}: missing column(s) {missing}")


def plot_response_curves(
    curves: pd.DataFrame,
    plan: pd.DataFrame | None,
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """Predicted revenue against spend, one panel per channel, with the plan marked.

    Parameters
    ----------
    curves : DataFrame
        ``channel``, ``spend``, ``predicted_revenue`` (optionally ``lower``, ``upper``), as
        :meth:`tabtune.tasks.budget.BudgetPlanner.response_curves` returns.
    plan : DataFrame or None
        A plan (``channel``, ``spend``, ``predicted_revenue``; ``habitual_spend`` and
        ``habitual_revenue`` are marked too when present).
    path : str or Path
        The PNG to write.
    title : str, optional

    Returns
    -------
    Path
    """
    _need(curves, ["channel", "spend", "predicted_revenue"], "curves")
    plt = _pyplot()
    channels = list(dict.fromkeys(curves["channel"].astype(str)))
    if not channels:
        raise TabTuneInputError("curves: no channel to plot")
    ncols = min(3, len(channels))
    nrows = math.ceil(len(channels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    plan_by = {} if plan is None else {str(r["channel"]): r for _, r in plan.iterrows()}
    for ax, channel in zip(axes.ravel(), channels):
        part = curves[curves["channel"].astype(str) == channel].sort_values("spend")
        ax.plot(part["spend"], part["predicted_revenue"], color="tab:blue", lw=1.8)
        if {"lower", "upper"} <= set(part.columns) and len(part):
            ax.axvspan(
                float(part["lower"].iloc[0]),
                float(part["upper"].iloc[0]),
                color="tab:blue",
                alpha=0.08,
                label="bounds",
            )
        row = plan_by.get(channel)
        if row is not None:
            ax.scatter(
                [row["spend"]],
                [row["predicted_revenue"]],
                color="tab:red",
                zorder=3,
                label="plan",
            )
            if "habitual_spend" in row and np.isfinite(row.get("habitual_revenue", np.nan)):
                ax.scatter(
                    [row["habitual_spend"]],
                    [row["habitual_revenue"]],
                    color="tab:gray",
                    marker="x",
                    zorder=3,
                    label="habitual",
                )
        ax.set_title(channel)
        ax.set_xlabel("daily spend")
        ax.set_ylabel("predicted revenue")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(channels) :]:
        ax.set_visible(False)
    axes.ravel()[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(title or "spend-response curves")
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_bid_values(
    curves: pd.DataFrame,
    recommendations: pd.DataFrame,
    path: str | Path,
    *,
    target_roas: float | None = None,
    max_contexts: int = 6,
    title: str | None = None,
) -> Path:
    """Predicted value per click against the bid for a few contexts, with the chosen bids.

    With ``target_roas`` the break-even line ``value per click = target_roas x bid`` is drawn:
    the recommended bid is the largest bid on or below the curve's crossing of it.

    Parameters
    ----------
    curves : DataFrame
        ``context``, ``bid``, ``predicted_value_per_click``, as
        :meth:`tabtune.tasks.bid.BidRecommender.value_curves` returns.
    recommendations : DataFrame
        The matching :meth:`~tabtune.tasks.bid.BidRecommender.recommend` output (same rows,
        same order): ``current_bid``, ``bid``, ``predicted_value_per_click``.
    path : str or Path
        The PNG to write.
    target_roas : float, optional
    max_contexts : int, default 6
        Plot the first this many contexts.
    title : str, optional

    Returns
    -------
    Path
    """
    _need(curves, ["context", "bid", "predicted_value_per_click"], "curves")
    _need(recommendations, ["current_bid", "bid", "predicted_value_per_click"], "recommendations")
    plt = _pyplot()
    contexts = sorted(curves["context"].unique())[: max(1, int(max_contexts))]
    if not contexts:
        raise TabTuneInputError("curves: no context to plot")
    ncols = min(3, len(contexts))
    nrows = math.ceil(len(contexts) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    for ax, ctx in zip(axes.ravel(), contexts):
        part = curves[curves["context"] == ctx].sort_values("bid")
        ax.plot(part["bid"], part["predicted_value_per_click"], color="tab:blue", lw=1.8)
        if target_roas:
            ax.plot(
                part["bid"],
                target_roas * part["bid"],
                color="tab:gray",
                ls="--",
                lw=1,
                label=f"ROAS {target_roas:g} break-even",
            )
        rec = recommendations.iloc[int(ctx)]
        ax.axvline(float(rec["current_bid"]), color="tab:gray", lw=1, alpha=0.7, label="current")
        ax.scatter(
            [rec["bid"]], [rec["predicted_value_per_click"]], color="tab:red", zorder=3, label="bid"
        )
        label = " / ".join(
            str(rec[c]) for c in ("channel", "audience", "device") if c in recommendations.columns
        )
        ax.set_title(label or f"context {ctx}", fontsize=9)
        ax.set_xlabel("bid (max CPC)")
        ax.set_ylabel("predicted value per click")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(contexts) :]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle(title or "bid vs predicted value per click")
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
