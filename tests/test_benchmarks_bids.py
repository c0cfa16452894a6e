"""The bid benchmark's core: truth scoring is exact for the current bids, and a tiny run works."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is a folder of the repo, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import bids as bench  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    from tabtune.data.synth import GroundTruth, simulate

    sim = simulate(n_brands=12, n_days=200, seed=3)
    parts = bench.split(sim, n_heldout=2, eval_days=10, seed=3)
    return sim, GroundTruth(sim.params), parts


def test_current_bids_score_exactly_the_baseline(tiny) -> None:
    _, truth, parts = tiny
    ev = parts["eval"]
    res = bench.score_bids(truth, ev, ev["bid"].to_numpy())
    assert res["k"] == 1.0 and res["gain_same_spend"] == 0.0
    assert res["value"] == res["cur_value"] == pytest.approx(res["same_value"], rel=1e-12)
    assert res["spend"] == res["cur_spend"] == pytest.approx(res["same_spend"], rel=1e-12)
    assert res["vps"] == res["cur_vps"] == pytest.approx(res["same_vps"], rel=1e-12)
    assert res["profit"] == pytest.approx(res["value"] - res["spend"])


def test_same_spend_baseline_matches_the_spend(tiny) -> None:
    _, truth, parts = tiny
    ev = parts["eval"]
    # one common factor is exactly the kind of policy the baseline scales to: no gain
    res = bench.score_bids(truth, ev, ev["bid"].to_numpy() * 1.2)
    assert res["k"] == pytest.approx(1.2, rel=1e-6)
    assert res["same_spend"] == pytest.approx(res["spend"], rel=1e-9)
    assert res["gain_same_spend"] == pytest.approx(0.0, abs=1e-6)
    assert res["vps"] < res["cur_vps"]  # a higher bid buys dearer clicks in the simulator


def test_tiny_run_scores_both_variants(tiny) -> None:
    args = argparse.Namespace(
        brands=12, days=200, seeds=[3], heldout=2, eval_days=10, n_estimators=60,
        variants=list(bench.VARIANTS),
    )  # fmt: skip
    out = bench.run(args)
    rows = {(r["variant"], r["serving"]): r for r in out["results"]}
    assert set(rows) == {(v, s) for v in bench.VARIANTS for s in ("adapted", "global")}
    for r in rows.values():
        assert np.isfinite([r["pred_change"], r["true_change"], r["vpc_rel_mae"], r["vps"]]).all()
        assert r["bias"] == pytest.approx(r["pred_change"] - r["true_change"])
        assert r["curve"]["1.0"] == {"pred": 1.0, "true": 1.0}
    mine = rows[("relative", "adapted")]
    # the recommended bids buy at least as much true value per unit spend as the current bids
    assert mine["vps"] >= mine["cur_vps"]
    assert mine["gain_same_spend"] >= -0.01
    text = bench.render(out, "python -m benchmarks.bids --quick")
    assert "| relative | adapted |" in text
