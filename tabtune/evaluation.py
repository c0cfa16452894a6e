"""One way to score a model: the training objective's own loss, on a time-ordered split.

Choosing a strategy (``tabtune.transfer``), tuning (``tabtune.tuning``) and promoting a
challenger (``tabtune.refresh``) all score with what this module provides:

* the loss: :func:`row_losses` is the objective's own per-row loss (Tweedie or Poisson
  deviance, squared error, log loss); :func:`holdout_score` its weighted mean;
  :func:`score_objective` says which loss a task is scored with and :func:`loss_name` names it
  for people;
* the split: :func:`holdout_split` is the one time-split primitive. It cuts time-ordered rows
  into older training rows and the newest ``fraction`` of rows, never separating the rows of
  one timestamp (one day of several channels). :func:`time_window` applies it to the dates of
  a brand's rows (the refresh's promotion window), :func:`fold_splits` rolls it back for the
  strategy choice's folds, and :func:`rolling_origin_folds` cuts tuning's date-based folds;
* the score: :func:`score` predicts a model on the rows of a window and returns the weighted
  loss.

Nothing here fits a model or knows a backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tabtune.errors import TabTuneInputError
from tabtune.features import align_features

__all__ = [
    "TWEEDIE_POWER",
    "Fold",
    "fold_splits",
    "holdout_score",
    "holdout_split",
    "loss_name",
    "model_losses",
    "predictions",
    "rolling_origin_folds",
    "row_losses",
    "score",
    "score_many",
    "score_objective",
    "task_predictions",
    "time_window",
]

#: Variance power of the Tweedie loss (LightGBM's and XGBoost's default).
TWEEDIE_POWER = 1.5

_CLASSIFICATION_LOSSES = ("binary", "multiclass")
_DEVIANCES = ("tweedie", "poisson")


# ----------------------------------------------------------------------------------- losses


def score_objective(objective: str | None, kind: str = "regression") -> str:
    """The loss a model trained with ``objective`` is scored with.

    ``binary``/``multiclass`` (log loss) for classification; the objective's deviance for
    ``tweedie``/``poisson``; absolute error for ``absolute_error``; squared error for every
    other regression objective.
    """
    if kind == "classification" or objective in _CLASSIFICATION_LOSSES:
        return "multiclass" if objective == "multiclass" else "binary"
    return objective if objective in (*_DEVIANCES, "absolute_error") else "squared_error"


def loss_name(objective: str | None) -> str:
    """What :func:`holdout_score` computes for ``objective``, for messages and reports."""
    if objective in _CLASSIFICATION_LOSSES:
        return "log loss"
    if objective in _DEVIANCES:
        return f"{objective} deviance"
    return "absolute error" if objective == "absolute_error" else "squared error"


def row_losses(objective: str, y: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Per-row loss matching the training objective.

    Log loss for ``binary``/``multiclass`` (``prediction`` is P(class 1), or the class
    probability matrix); the unit deviance for ``tweedie`` (variance power
    :data:`TWEEDIE_POWER`) and ``poisson``; absolute error for ``absolute_error``; squared
    error otherwise. Scoring with the loss
    the model trains on keeps the heavy right tail of money targets from dominating a choice.
    """
    y = np.asarray(y, dtype=float)
    prediction = np.asarray(prediction, dtype=float)
    if objective in _CLASSIFICATION_LOSSES:
        eps = 1e-15
        if prediction.ndim == 1:
            p = np.clip(prediction, eps, 1 - eps)
            return -(y * np.log(p) + (1 - y) * np.log1p(-p))
        p = np.clip(prediction[np.arange(len(y)), y.astype(np.intp)], eps, 1.0)
        return -np.log(p)
    if objective in _DEVIANCES:
        mu = np.maximum(prediction, 1e-12)
        if objective == "poisson":
            with np.errstate(divide="ignore", invalid="ignore"):
                term = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
            return 2.0 * (term - (y - mu))
        p = TWEEDIE_POWER
        return 2.0 * (
            np.power(y, 2 - p) / ((1 - p) * (2 - p))
            - y * np.power(mu, 1 - p) / (1 - p)
            + np.power(mu, 2 - p) / (2 - p)
        )
    if objective == "absolute_error":
        return np.abs(y - prediction)
    return (y - prediction) ** 2


def holdout_score(
    objective: str, y: np.ndarray, prediction: np.ndarray, weight: np.ndarray | None
) -> float:
    """Weighted mean of :func:`row_losses` (the objective's own loss) over holdout rows."""
    return float(np.average(row_losses(objective, y, prediction), weights=weight))


def predictions(model: Any, X: Any, objective: str) -> np.ndarray:
    """What :func:`row_losses` scores for ``model`` on ``X``.

    Classifiers give class probabilities (P(class 1) for ``binary``); regressors their
    prediction.
    """
    X = align_features(X, model)
    if objective in _CLASSIFICATION_LOSSES and hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(X))
        return proba[:, -1] if objective == "binary" and proba.ndim == 2 else proba
    return np.asarray(model.predict(X), dtype=float)


def task_predictions(model: Any, X: Any, kind: str) -> np.ndarray:
    """What a model of a task of ``kind`` serves for ``X``: P(class 1) for classification,
    the prediction for regression (``predict``, the refresh's decisions and the benchmarks
    alike; a classifier's ``predict`` would give its 0/1 labels)."""
    return predictions(model, X, score_objective(None, kind))


def model_losses(model: Any, X: Any, y: Any, objective: str) -> np.ndarray:
    """Per-row losses of a fitted model on ``(X, y)``.

    For classifiers ``y`` holds class labels; they are mapped onto the model's ``classes_``
    (a binary model's log loss is taken on P(second class)).
    """
    target = np.asarray(y)
    if objective in _CLASSIFICATION_LOSSES:
        classes = list(model.classes_)
        target = np.searchsorted(classes, target).astype(float)
        objective = "binary" if len(classes) == 2 else "multiclass"
    return row_losses(objective, np.asarray(target, dtype=float), predictions(model, X, objective))


def score(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    window: np.ndarray | None,
    objective: str,
    weight: Any = None,
) -> float | None:
    """A model's weighted loss (the objective's own) on the rows of a window.

    Parameters
    ----------
    model : fitted estimator
    X, y : rows and target
    window : ndarray of bool or None
        Rows to score (:func:`time_window`); None scores every row.
    objective : str
        The loss (:func:`score_objective`).
    weight : array-like, optional
        Row weights.

    Returns
    -------
    float or None
        None when the window holds no row with positive weight.
    """
    return score_many({"model": model}, X, y, window, objective, weight)["model"]


def score_many(
    models: Mapping[str, Any],
    X: pd.DataFrame,
    y: Any,
    window: np.ndarray | None,
    objective: str,
    weight: Any = None,
) -> dict[str, float | None]:
    """:func:`score` for several models on the same rows; one object is predicted once.

    A ``None`` model is not scored (its score is None).
    """
    rows = slice(None) if window is None else np.asarray(window, dtype=bool)
    X_w = X.loc[rows] if isinstance(X, pd.DataFrame) else np.asarray(X)[rows]
    y_w = np.asarray(y)[rows]
    w = None if weight is None else np.asarray(weight, dtype=float)[rows]
    usable = len(y_w) > 0 and (w is None or float(np.sum(w)) > 0)
    scores: dict[str, float | None] = {}
    seen: dict[int, float | None] = {}
    for name, model in models.items():
        if model is None or not usable:
            scores[name] = None
            continue
        if id(model) not in seen:
            losses = model_losses(model, X_w, y_w, objective)
            seen[id(model)] = float(np.average(losses, weights=w))
        scores[name] = seen[id(model)]
    return scores


# ----------------------------------------------------------------------------------- splits


def holdout_split(
    n_rows: int, validation_fraction: float, sorted_times: np.ndarray | None = None
) -> int | None:
    """Number of training rows before the holdout (the newest rows), or None if too few.

    The one time-split primitive. The holdout is the newest
    ``round(validation_fraction * n_rows)`` rows (at least one); a split needs at least two
    training rows. With ``sorted_times`` (the rows' time keys in time order) the cut moves
    back to the first row of its timestamp, so that rows sharing a timestamp (one day of
    several brands or channels) are never on both sides; if that leaves fewer than two
    training rows it moves forward past the timestamp instead.
    """
    n_valid = max(1, int(round(validation_fraction * n_rows)))
    n_train = n_rows - n_valid
    if sorted_times is not None and 0 < n_train < n_rows:
        boundary = sorted_times[n_train]
        start = int(np.searchsorted(sorted_times, boundary, side="left"))
        n_train = start if start >= 2 else int(np.searchsorted(sorted_times, boundary, "right"))
        if n_train >= n_rows:
            return None
    return n_train if n_train >= 2 else None


def time_window(dates: Any, fraction: float) -> np.ndarray:
    """The newest ``fraction`` of rows, in whole days: the refresh's evaluation window.

    :func:`holdout_split` on the rows' days. When the rows cannot be split (fewer than two
    training rows would remain before the newest day) the window is every row: there is then
    no day a model could be scored on out of time.

    Parameters
    ----------
    dates : array-like of dates
        One per row, in any order.
    fraction : float
        Share of rows in the window.

    Returns
    -------
    ndarray of bool
        True for rows in the window.
    """
    days = pd.to_datetime(pd.Series(np.asarray(dates))).dt.normalize().to_numpy()
    n = len(days)
    if n == 0:
        return np.zeros(0, dtype=bool)
    ordered = np.sort(days)
    n_train = holdout_split(n, fraction, ordered)
    if n_train is None:
        return np.ones(n, dtype=bool)
    return days >= ordered[n_train]


def fold_splits(
    n_rows: int,
    validation_fraction: float,
    n_folds: int,
    sorted_times: np.ndarray | None = None,
) -> list[tuple[int, int]]:
    """Rolling-origin folds over time-ordered rows, newest first.

    Each fold is ``(n_train, n_end)``: it learns from rows ``[0, n_train)`` and is scored on
    ``[n_train, n_end)``. The newest fold is :func:`holdout_split`; each older one ends where
    the next one's training rows end and holds about as many rows (never splitting a
    timestamp). Folds that would leave fewer than two training rows are dropped; an empty
    list means the rows are too few for any holdout.
    """
    first = holdout_split(n_rows, validation_fraction, sorted_times)
    if first is None:
        return []
    folds = [(first, n_rows)]
    n_valid = n_rows - first
    while len(folds) < n_folds:
        end = folds[-1][0]
        if end - n_valid < 2:
            break
        n_train = holdout_split(
            end, n_valid / end, None if sorted_times is None else sorted_times[:end]
        )
        if n_train is None or n_train >= end:
            break
        folds.append((n_train, end))
    return folds


@dataclass(frozen=True)
class Fold:
    """One rolling-origin fold of tuning.

    Attributes
    ----------
    index : int
        0 for the earliest cut (the smallest training set, so the cheapest fold comes first).
    train, valid : ndarray of int
        Row positions: dates before ``cut``, and dates in ``[cut, end)``.
    cut, end : Timestamp
        The first validation date and the first date after the validation window.
    """

    index: int
    train: np.ndarray
    valid: np.ndarray
    cut: pd.Timestamp
    end: pd.Timestamp


def rolling_origin_folds(
    dates: Any,
    n_folds: int,
    *,
    horizon: int | None = None,
    holdout_fraction: float = 0.2,
) -> list[Fold]:
    """Time-ordered cross-validation folds with an expanding training window (tuning).

    The newest ``n_folds * horizon`` distinct dates are cut into ``n_folds`` consecutive
    validation windows; fold *k* trains on every row dated before its window. Rows need not
    be sorted; rows sharing a date are always on the same side of a cut.

    Parameters
    ----------
    dates : array-like
        The date of each row.
    n_folds : int
        Number of folds (>= 1).
    horizon : int, optional
        Distinct dates per validation window; default ``holdout_fraction`` of the distinct
        dates shared among the folds (at least 1).
    holdout_fraction : float, default 0.2
        Used only when ``horizon`` is None.

    Returns
    -------
    list of Fold
        Ordered by cut date.

    Raises
    ------
    TabTuneInputError
        When there are too few distinct dates to leave a training date before the first cut.
    """
    if n_folds < 1:
        raise TabTuneInputError(f"n_folds must be >= 1, got {n_folds}")
    values = pd.to_datetime(pd.Series(np.asarray(dates))).dt.normalize().to_numpy()
    unique = np.unique(values)
    n_dates = len(unique)
    if horizon is None:
        horizon = max(1, int(n_dates * holdout_fraction) // n_folds)
    if horizon < 1:
        raise TabTuneInputError(f"horizon must be >= 1 date, got {horizon}")
    first = n_dates - n_folds * horizon
    if first < 1:
        raise TabTuneInputError(
            f"{n_dates} distinct date(s) are too few for {n_folds} fold(s) of {horizon} date(s) "
            "each with training data before the first; use fewer folds (tuning.n_folds) or "
            "more history"
        )
    folds = []
    for k in range(n_folds):
        cut = unique[first + k * horizon]
        stop = first + (k + 1) * horizon
        end = unique[stop] if stop < n_dates else unique[-1] + np.timedelta64(1, "D")
        train = np.flatnonzero(values < cut)
        valid = np.flatnonzero((values >= cut) & (values < end))
        folds.append(Fold(k, train, valid, pd.Timestamp(cut), pd.Timestamp(end)))
    return folds
