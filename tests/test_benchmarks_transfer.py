"""The transfer benchmark: paired-ratio statistics against brute-force oracles, the tables, and
the ``--quick`` path end to end."""

from __future__ import annotations

import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is a folder of the repo, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import common, fair  # noqa: E402
from benchmarks import transfer as bench  # noqa: E402
from benchmarks.paired import (  # noqa: E402
    bootstrap_geomean_interval,
    geometric_mean,
    paired_ratios,
    summarise_ratios,
)


def test_paired_ratios_match_a_loop_and_drop_unusable_brands():
    auto = [0.2, 0.3, np.nan, 0.5, 0.1]
    base = [0.4, 0.3, 0.2, 0.0, 0.05]
    expected = [a / b for a, b in zip(auto, base, strict=True) if math.isfinite(a) and b > 0]
    assert paired_ratios(auto, base).tolist() == pytest.approx(expected)


def test_geometric_mean_is_the_nth_root_of_the_product():
    r = [0.5, 2.0, 1.5, 0.8]
    assert geometric_mean(r) == pytest.approx(math.prod(r) ** (1 / len(r)))
    assert geometric_mean([0.5, 2.0]) == pytest.approx(1.0)
    assert math.isnan(geometric_mean([]))


def test_bootstrap_interval_matches_a_brute_force_loop_with_the_same_draws():
    r = np.array([0.7, 1.2, 0.9, 1.6, 0.8])
    n_boot = 500
    rng = np.random.default_rng(3)
    idx = rng.integers(0, len(r), size=(n_boot, len(r)))
    means = [math.prod(r[i] for i in row) ** (1 / len(r)) for row in idx]
    lo, hi = np.quantile(means, [0.025, 0.975])
    assert bootstrap_geomean_interval(r, n_boot=n_boot, seed=3) == pytest.approx((lo, hi))


def test_bootstrap_interval_approaches_the_exact_bootstrap_distribution():
    # every one of the n**n resamples is equally likely: the exact percentile interval
    r = np.array([0.6, 1.0, 1.5, 0.9])
    n = len(r)
    exact = sorted(
        math.prod(r[i] for i in combo) ** (1 / n) for combo in itertools.product(range(n), repeat=n)
    )
    lo, hi = np.quantile(exact, [0.025, 0.975])
    got = bootstrap_geomean_interval(r, n_boot=40_000, seed=0)
    assert got[0] == pytest.approx(lo, abs=0.02)
    assert got[1] == pytest.approx(hi, abs=0.02)


def test_summary_counts_wins_and_takes_the_median():
    s = summarise_ratios([0.1, 0.4, 0.3], [0.2, 0.2, 0.3], n_boot=200)
    assert (s.n, s.wins) == (3, 1)
    assert s.median == pytest.approx(1.0)
    assert s.geomean == pytest.approx((0.5 * 2.0 * 1.0) ** (1 / 3))
    assert s.low <= s.geomean <= s.high


def _row(bucket, brand, rows, auto, own, pooled, glob=1.0, strategy="continue", seed=1):
    return {
        "seed": seed,
        "bucket": bucket,
        "brand": brand,
        "train_rows": rows,
        "global": glob,
        "brand-only": own,
        "pooled+id": pooled,
        fair.AUTO: auto,
        "strategy": strategy,
    }


def test_render_dataset_names_the_best_baseline_and_the_losing_brands():
    res = pd.DataFrame(
        [
            _row("~100", "a", 80, auto=0.4, own=0.8, pooled=0.2, strategy="global"),
            _row("~100", "b", 200, auto=0.2, own=0.8, pooled=0.4),
            _row("~100", "c", 150, auto=0.3, own=0.8, pooled=0.3),
            _row("~1,000", "d", 900, auto=0.1, own=0.3, pooled=0.2),
        ]
    )
    text, raw = fair.render_dataset(res, list(bench.BUCKETS), min_brands=2, n_boot=200)
    # ~100 against pooled+id: ratios 2.0, 0.5, 1.0 -> geometric mean 1.0: not a miss
    assert raw["~100"]["best_baseline"] == "pooled+id"
    assert raw["~100"]["geomean_vs_best"] == pytest.approx(1.0)
    assert not raw["~100"]["miss"]
    assert raw["~100"]["losing_brands"] == ["a (seed 1, 80 rows, `auto` chose global): 2.00x"]
    assert raw["~1,000"]["best_baseline"] == "pooled+id" and not raw["~1,000"]["miss"]
    assert "Fewer than 2 brands in: ~1,000 (1)." in text
    assert raw["~100"]["strategies"] == {"global": 1, "continue": 2}
    res.loc[0, fair.AUTO] = 0.8  # a: ratio 4.0 -> geometric mean (4 * 0.5 * 1) ** (1/3) > 1
    text, raw = fair.render_dataset(res, list(bench.BUCKETS), min_brands=1, n_boot=200)
    assert raw["~100"]["miss"]
    assert "- ~100: `auto` / pooled+id = 1.260 (geometric mean); 1 of 3 brands lose" in text


def test_quick_run_end_to_end(tmp_path, monkeypatch):
    """The ``--quick`` path, made smaller still (fewer rounds, rows and brands)."""
    monkeypatch.setattr(common, "RAW_DIR", tmp_path)
    monkeypatch.setattr(common, "DOC", tmp_path / "benchmarks.md")
    monkeypatch.setitem(bench.PARAMS, "n_estimators", 30)
    monkeypatch.setitem(bench.PARAMS, "early_stopping_rounds", 10)
    bench.main(
        [
            "--quick",
            "--brands",
            "16",
            "--days",
            "200",
            "--g2-brands",
            "12",
            "--g2-days",
            "150",
            "--ipinyou-pool-rows",
            "1000",
            "--ipinyou-test-rows",
            "1000",
            "--no-gpboost",
        ]
    )
    assert not (tmp_path / "benchmarks.md").exists()  # --quick writes no section
    out = json.loads((tmp_path / "transfer-quick.json").read_text())
    assert out["brands"] and out["generator2"]["brands"]
    assert "simulator" in out["summary"] and "generator2" in out["summary"]
    for row in out["brands"]:
        assert {"global", "brand-only", "pooled+id", fair.AUTO, "strategy"} <= set(row)
        assert "repeat_cpu" in row  # the refresh-cost extras ran
    rounds = out["seeds"]["11"]["rounds"]
    assert 1 <= rounds["global"] <= 30 and 1 <= rounds["pooled+id"] <= 30
    if out.get("ipinyou"):  # the shared data exist in this workspace
        assert out["summary"]["iPinYou"]["1,000 auctions"]["brands"] == 1
