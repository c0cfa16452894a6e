"""Scores in the loss each objective trains with."""

from __future__ import annotations

import numpy as np
import pytest

from tabtune.evaluation import holdout_score, loss_name, score_objective


def test_absolute_error_is_scored_with_absolute_error() -> None:
    """A task trained with ``absolute_error`` was scored (strategy choice, promotion, tuning,
    reports) with squared error (tasks red-team)."""
    y = np.array([1.0, 4.0, 10.0])
    pred = np.array([2.0, 4.0, 4.0])
    w = np.array([1.0, 2.0, 1.0])
    loss = score_objective("absolute_error")
    assert loss == "absolute_error" and loss_name(loss) == "absolute error"
    assert holdout_score(loss, y, pred, w) == pytest.approx((1 * 1 + 2 * 0 + 1 * 6) / 4)
    assert score_objective("squared_error") == "squared_error"
    assert holdout_score("squared_error", y, pred, w) == pytest.approx((1 + 0 + 36) / 4)
