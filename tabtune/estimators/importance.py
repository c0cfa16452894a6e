"""Gain importance of a fitted estimator's model, split into input columns and brand context.

The model's features are the schema columns (the input columns but ``group_column`` and
``time_column``) followed, with a ``group_column``, by the brand-context features
(``__brand_mean``, ``__brand_level_mean``, ``__brand_log_rows``; see :mod:`tabtune.transfer`).
scikit-learn expects ``feature_importances_`` aligned with ``feature_names_in_`` (what
``SelectFromModel`` and ``permutation_importance`` reports compare against), and the context
features are not input columns: they are reported apart, as ``context_importances_``.

Both are shares of the model's total gain (the loss reduction of every split on a feature,
summed over all trees): LightGBM's ``Booster.feature_importance("gain")``, XGBoost's
``Booster.get_score(importance_type="total_gain")``. Together they sum to 1 (all zeros for a
model without a split). ``group_column`` and ``time_column`` get 0: the group acts through the
context features, the time column only orders the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["gain_shares", "total_gain"]


def total_gain(backend: str, booster: Any, names: Sequence[str]) -> np.ndarray:
    """Total gain of each model feature, in the order of ``names`` (the model's layout).

    Parameters
    ----------
    backend : {"lightgbm", "xgboost"}
    booster : lightgbm.Booster or xgboost.Booster
    names : sequence of str
        The model's feature names, in the booster's feature order.

    Returns
    -------
    numpy.ndarray of float64, shape (len(names),)
    """
    if backend == "lightgbm":
        gains = np.asarray(booster.feature_importance(importance_type="gain"), dtype=np.float64)
        if gains.shape != (len(names),):  # pragma: no cover - the layout is the booster's
            raise RuntimeError(f"booster has {gains.shape[0]} features, layout {len(names)}")
        return gains
    # XGBoost lists only features with a split, under the booster's own names (f0, ... when
    # it has none): map them by position.
    scores = booster.get_score(importance_type="total_gain")
    booster_names = list(booster.feature_names or [f"f{i}" for i in range(len(names))])
    position = {name: i for i, name in enumerate(booster_names)}
    gains = np.zeros(len(names), dtype=np.float64)
    for name, gain in scores.items():
        gains[position[name]] += float(gain)
    return gains


def gain_shares(
    backend: str, booster: Any, names: Sequence[str], inputs: Sequence[str]
) -> tuple[np.ndarray, dict[str, float]]:
    """Shares of the total gain: per input column, and per brand-context feature.

    Parameters
    ----------
    backend : {"lightgbm", "xgboost"}
    booster : lightgbm.Booster or xgboost.Booster
    names : sequence of str
        The model's feature names (schema columns, then context features).
    inputs : sequence of str
        The estimator's input columns (``feature_names_in_``, or ``x0, x1, ...``).

    Returns
    -------
    feature_importances : numpy.ndarray of shape (len(inputs),)
        0 for an input column that is not a model feature (group and time columns).
    context_importances : dict of str to float
        Model features that are not input columns (the brand-context features).
    """
    gains = total_gain(backend, booster, names)
    total = float(gains.sum())
    shares = gains / total if total > 0 else np.zeros_like(gains)
    by_name = dict(zip(names, shares.tolist(), strict=True))
    known = set(inputs)
    features = np.array([by_name.get(name, 0.0) for name in inputs], dtype=np.float64)
    context = {name: share for name, share in by_name.items() if name not in known}
    return features, context
