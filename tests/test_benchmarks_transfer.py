"""The transfer benchmark's table: bucket means, the gap to the best baseline, and why it misses."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is a folder of the repo, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import transfer as bench  # noqa: E402


def _brand(bucket, brand, rows, auto, own, pooled, strategy="continue", seed=1, per_day=1.0):
    return {
        "rows_per_day": per_day,
        "rows_at_old_choice": rows - 27 * per_day,
        "auto, oldest repeated choice": auto * 1.1,
        "seed": seed,
        "bucket": bucket,
        "brand": brand,
        "train_rows": rows,
        "test_rows": 60,
        "global": 1.0,
        "brand-only": own,
        "pooled+id": pooled,
        "tabtune auto": auto,
        "auto, 1 fold": auto,
        "strategy": strategy,
        "adapt_seconds": 0.1,
        "adapt_cpu": 0.1,
        "repeat_seconds": 0.05,
        "repeat_cpu": 0.05,
        "repeat_uncached_cpu": 0.08,
        "cache_exact": True,
        "repeat_matches": True,
        "brand_only_seconds": 0.01,
        "brand_only_cpu": 0.01,
    }


def _out(brands):
    seed = {
        "timings": {
            "pretrain_global": 1.0,
            "pretrain_global_cpu": 2.0,
            "pooled_with_id": 1.0,
            "pooled_with_id_cpu": 2.0,
        },
        "cut": "2025-01-01",
        "pool_rows": 1000,
        "pooled_rows": 1200,
        "objective": "tweedie",
    }
    seeds = sorted({b["seed"] for b in brands})
    return {
        "args": {"brands": 10, "days": 100, "seeds": seeds, "test_days": 30, "per_bucket": 8},
        "seeds": {str(s): seed for s in seeds},
        "brands": brands,
        "objective": "tweedie",
    }


def test_render_reports_the_gap_and_explains_a_miss():
    brands = [
        _brand("~100", "a", 80, auto=0.5, own=0.2, pooled=0.6, strategy="global", per_day=2.0),
        _brand("~100", "b", 200, auto=0.1, own=0.2, pooled=0.6),
        _brand("~1,000", "c", 900, auto=0.1, own=0.3, pooled=0.2),
        _brand("~1,000", "d", 1500, auto=0.2, own=0.3, pooled=0.3),
    ]
    text = bench.render(_out(brands), "test")
    # ~100: auto 0.30 vs brand-only 0.20 -> +50%, caused by brand a (served globally, 80 rows)
    assert "| ~100 | 2 | 140 | 1.000 | **0.200** | 0.600 | 0.300 | +50.0% |" in text
    assert "~100 by +50.0% against brand-only; brand a (80 rows, `auto` chose global)" in text
    assert "1 of its brands have fewer than 100 rows" in text
    # ~1,000: auto 0.15 vs pooled 0.25 -> -40%, no miss line for it
    assert "| ~1,000 | 2 | 1200 | 1.000 | 0.300 | 0.250 | **0.150** | -40.0% |" in text
    assert "~1,000 by" not in text
    # cost: brand a's rows grow 25% in 10 days (80 rows, 2 a day): it chooses every 10 days,
    # the others every 28 (their rows take longer to grow 25%). A brand's average night is
    # (choosing 0.1 + (cycle - 1) repeats of 0.05) / cycle; pooled CPU 2.0 / their sum.
    assert (bench.EVERY, bench.GROW) == (28, 0.25)  # configs/default.yaml
    nights = [(0.1 + 9 * 0.05) / 10] + 3 * [(0.1 + 27 * 0.05) / 28]
    assert "| 1 | 1,200 | 2.0 | 2.0 | 4 brands, 2,680 rows | 0.4 | 0.2 | 0.3 | 23.5 |" in text
    assert "4 of 4 brands identical, byte for byte" in text
    assert f"**{2.0 / sum(nights):.1f}x**" in text
    assert f"costs as much as about {2.0 / (sum(nights) / 4):.0f} brands' average nights" in text
    # the oldest repeated choice, 10% worse here; brand a chooses again before 28 days
    assert "| ~100 | 0.300 | 0.330 | +10.0% | 1 of 2 |" in text


def test_render_pools_seeds_and_explains_a_miss_in_one_of_them():
    brands = [
        _brand("~1,000", "c", 900, auto=0.1, own=0.3, pooled=0.2, seed=1),
        _brand("~1,000", "c", 900, auto=0.25, own=0.3, pooled=0.2, seed=2),
    ]
    text = bench.render(_out(brands), "test")
    # together: auto 0.175 vs pooled 0.2 -> -12.5%; seed 2 alone: 0.25 vs 0.2 -> +25%
    assert "| ~1,000 | 2 | 900 | 1.000 | 0.300 | 0.200 | **0.175** | -12.5% |" in text
    assert "0.250 vs 0.200 pooled+id (+25.0%, 1 brands)" in text
    assert "seed 2, ~1,000 by +25.0% against pooled+id" in text
    assert "Where `auto` misses:" not in text


def test_render_without_misses_has_no_miss_line():
    brands = [_brand("~100", "b", 200, auto=0.1, own=0.2, pooled=0.6)]
    assert "Where `auto` misses" not in bench.render(_out(brands), "test")
