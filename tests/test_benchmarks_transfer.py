"""The transfer benchmark's table: bucket means, the gap to the best baseline, and why it misses."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is a folder of the repo, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import transfer as bench  # noqa: E402


def _brand(bucket, brand, rows, auto, own, pooled, strategy="continue"):
    return {
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
        "repeat_matches": True,
        "brand_only_seconds": 0.01,
        "brand_only_cpu": 0.01,
    }


def _out(brands):
    return {
        "args": {"brands": 10, "days": 100, "seed": 1, "test_days": 30},
        "timings": {
            "pretrain_global": 1.0,
            "pretrain_global_cpu": 2.0,
            "pooled_with_id": 1.0,
            "pooled_with_id_cpu": 2.0,
        },
        "brands": brands,
        "cut": "2025-01-01",
        "pool_rows": 1000,
        "pooled_rows": 1200,
        "objective": "tweedie",
    }


def test_render_reports_the_gap_and_explains_a_miss():
    brands = [
        _brand("~100", "a", 80, auto=0.5, own=0.2, pooled=0.6, strategy="global"),
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
    # cost: pooled CPU 2.0 / an average night (4 choosing fits 0.4 s + 6 x 4 repeats 0.2 s) / 7
    assert f"**{2.0 / ((0.4 + 6 * 0.2) / 7):.1f}x**" in text
    assert "5.0x a night on which every brand chooses again, 10.0x a repeating night" in text


def test_render_without_misses_has_no_miss_line():
    brands = [_brand("~100", "b", 200, auto=0.1, own=0.2, pooled=0.6)]
    assert "Where `auto` misses" not in bench.render(_out(brands), "test")
