"""The budget benchmark's metric on a tiny simulation: optimum scores 1, habitual split 0."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.budget import Decision, fit_hill, summary, true_optimum, uplift_share
from tabtune.data.synth import GroundTruth, simulate


@pytest.fixture(scope="module")
def decision():
    sim = simulate(n_brands=3, n_days=120, seed=5)
    truth = GroundTruth(sim.params)
    obs = sim.observations
    brand = str(obs.groupby("brand_id", observed=True)["channel"].nunique().idxmax())
    day = pd.Timestamp(obs["date"].max()) + pd.Timedelta(days=1)
    split = truth.habitual_split(brand, day)
    channels = sorted(split)
    recent = np.array([split[c] for c in channels]) * np.linspace(0.8, 1.25, len(channels))
    total = float(recent.sum())
    d = Decision(brand, day, channels, 0.7 * recent, 1.3 * recent, total, recent)
    return truth, d, obs


def test_uplift_share_is_one_at_the_optimum_and_zero_at_the_habitual_split(decision) -> None:
    truth, d, _ = decision
    optimum = true_optimum(truth, d)
    assert optimum.sum() == pytest.approx(d.total)
    share, stakes = uplift_share(truth, d, optimum, optimum)
    assert share == pytest.approx(1.0)
    assert stakes > 0
    assert uplift_share(truth, d, d.habitual, optimum)[0] == pytest.approx(0.0)
    # a finer oracle grid never does worse than the benchmark's one
    assert uplift_share(truth, d, true_optimum(truth, d, 401), optimum)[0] >= 1.0 - 1e-3


def test_a_plan_halfway_to_the_optimum_captures_part_of_it(decision) -> None:
    truth, d, _ = decision
    optimum = true_optimum(truth, d)
    share = uplift_share(truth, d, 0.5 * (optimum + d.habitual), optimum)[0]
    assert 0.4 < share < 1.0  # concave around the habitual split: more than half


def test_hill_fit_recovers_a_clean_curve_and_summary_counts() -> None:
    spend = np.linspace(10, 200, 60)
    curve = fit_hill(spend, 500 * spend**1.5 / (spend**1.5 + 80**1.5))
    np.testing.assert_allclose(
        curve(np.array([50.0, 150.0])),
        500 * np.array([50, 150]) ** 1.5 / (np.array([50, 150]) ** 1.5 + 80**1.5),
        rtol=1e-3,
    )
    s = summary([1.0, 0.5, float("nan"), 0.95])
    assert (
        s["n"] == 3 and s["median"] == pytest.approx(0.95) and s["ge_0.9"] == pytest.approx(2 / 3)
    )
