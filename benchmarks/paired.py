"""Per-brand paired comparisons: ratios, their geometric mean and a bootstrap interval.

A method is compared with a baseline brand by brand: the ratio of their scores on the same
brand (lower score is better, so a ratio below 1 means the method wins on that brand). Ratios
are summarised by their median and their geometric mean (the mean of log ratios, so a brand
twice as bad and a brand twice as good cancel), with a percentile bootstrap interval of the
geometric mean that resamples brands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "RatioSummary",
    "bootstrap_geomean_interval",
    "geometric_mean",
    "paired_ratios",
    "summarise_ratios",
]


def paired_ratios(scores: Sequence[float], baseline: Sequence[float]) -> np.ndarray:
    """Per-brand ratios ``scores / baseline``, for the brands where both are usable.

    Parameters
    ----------
    scores, baseline : sequence of float
        One score per brand, same order (lower is better).

    Returns
    -------
    ndarray
        The ratios of the brands where both scores are finite and the baseline's is positive
        (a brand a baseline scores perfectly, or not at all, has no ratio).
    """
    a = np.asarray(scores, dtype=float)
    b = np.asarray(baseline, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"scores {a.shape} and baseline {b.shape} differ in shape")
    keep = np.isfinite(a) & np.isfinite(b) & (b > 0) & (a >= 0)
    return a[keep] / b[keep]


def geometric_mean(ratios: Sequence[float]) -> float:
    """``exp(mean(log(ratios)))``; NaN for no ratio, 0 when a ratio is 0."""
    r = np.asarray(ratios, dtype=float)
    if r.size == 0:
        return float("nan")
    if np.any(r == 0):
        return 0.0
    return float(np.exp(np.mean(np.log(r))))


def bootstrap_geomean_interval(
    ratios: Sequence[float], *, n_boot: int = 4000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the geometric mean, resampling brands.

    Parameters
    ----------
    ratios : sequence of float
        Positive per-brand ratios.
    n_boot : int, default 4000
        Number of resamples (each draws ``len(ratios)`` brands with replacement).
    level : float, default 0.95
        Coverage of the interval.
    seed : int, default 0
        Seed of ``numpy.random.default_rng`` (the same ratios give the same interval).

    Returns
    -------
    (low, high)
        NaN, NaN for no ratio.
    """
    r = np.asarray(ratios, dtype=float)
    if r.size == 0:
        return float("nan"), float("nan")
    logs = np.log(np.maximum(r, np.finfo(float).tiny))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, r.size, size=(n_boot, r.size))
    means = np.exp(logs[idx].mean(axis=1))
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class RatioSummary:
    """Paired ratios of one method to one baseline over a set of brands."""

    n: int  #: brands with a ratio
    median: float
    geomean: float
    low: float  #: bootstrap interval of the geometric mean
    high: float
    wins: int  #: brands with a ratio below 1

    def as_dict(self) -> dict[str, Any]:
        """The fields, for the raw JSON."""
        return asdict(self)

    def cell(self) -> str:
        """``geomean [low, high] (median m)`` for a markdown table."""
        if self.n == 0:
            return "-"
        return (
            f"{self.geomean:.3f} [{self.low:.3f}, {self.high:.3f}], median {self.median:.3f}, "
            f"wins {self.wins}/{self.n}"
        )


def summarise_ratios(
    scores: Sequence[float], baseline: Sequence[float], *, n_boot: int = 4000, seed: int = 0
) -> RatioSummary:
    """Median, geometric mean and bootstrap interval of the paired ratios."""
    r = paired_ratios(scores, baseline)
    low, high = bootstrap_geomean_interval(r, n_boot=n_boot, seed=seed)
    return RatioSummary(
        n=int(r.size),
        median=float(np.median(r)) if r.size else float("nan"),
        geomean=geometric_mean(r),
        low=low,
        high=high,
        wins=int(np.sum(r < 1.0)),
    )
