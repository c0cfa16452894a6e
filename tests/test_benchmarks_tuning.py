"""The tuning benchmark's core runs end to end on a tiny simulation (tiny models and budgets)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks/ is a folder of the repo, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import tuning as bench  # noqa: E402
from tabtune.config import BID_TASK, Config  # noqa: E402


def test_tuning_benchmark_runs_on_tiny_data(monkeypatch: pytest.MonkeyPatch) -> None:
    # ranges that hold brands of a 10-brand, 150-day simulation
    monkeypatch.setattr(
        bench, "BUCKETS", {"~100": ("small", 30, 300), "~1,000": ("medium", 1000, 5000)}
    )
    cfg = Config.model_validate(
        {
            "device": "cpu",
            "tasks": {"bid": BID_TASK},
            "model": {
                "n_estimators": 20,
                "learning_rate": 0.2,
                "num_leaves": 7,
                "min_child_samples": 20,
                "early_stopping_rounds": 5,
            },
            "adaptation": {"adapt_n_estimators": 10},
            "tuning": {
                "n_folds": 2,
                "search_space": {
                    "n_estimators": {"low": 5, "high": 30},
                    "num_leaves": {"low": 4, "high": 15},
                    "adapt_n_estimators": {"low": 5, "high": 20},
                },
            },
        }
    )
    parser_args = [
        "--brands=10",
        "--days=150",
        "--test-days=30",
        "--per-bucket=1",
        "--budget=30",
        "--global-trials=2",
        "--adapt-trials=2",
        "--adapt-brands=2",
    ]
    args = bench.parse_args(parser_args)
    out = bench.run(args, cfg)

    assert out["studies"]["global"]["n_complete"] >= 1
    assert out["brands"], "no held-out brand was scored"
    held = {b for bs in out["heldout"].values() for b in bs}
    assert held.isdisjoint(r["brand"] for r in out["seen"])
    for row in out["brands"]:
        for arm in bench.ARMS:
            assert row[arm] >= 0
    text = bench.render(out, "python -m benchmarks.tuning")
    assert text.startswith("## Tuning")
    assert "| bucket |" in text and "bid:global" in text
