"""``make demo``: the end-to-end path, ending with bids and budget plans for three brands."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tabtune.cli.demo import run_demo
from tabtune.config import load_config


def test_demo_writes_bids_and_budget_plans(small_config: Path, capsys) -> None:
    cfg = load_config(small_config)
    assert run_demo(cfg, n_brands=5, n_days=120, seed=4) == 0
    out = capsys.readouterr().out
    for step in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"):
        assert step in out
    summary = json.loads((Path(cfg.runs_dir) / "demo" / "summary.json").read_text())
    decisions = summary["decisions"]
    assert 1 <= len(decisions["brands"]) <= 3
    day = decisions["date"]
    # filed under the day decided for: the day after the simulated data
    last = pd.read_parquet(cfg.data.store)["date"].max()
    assert day == str((pd.Timestamp(last) + pd.Timedelta(days=1)).date())
    bids = pd.read_parquet(Path(cfg.outputs_dir) / day / "bids")
    assert set(bids["brand_id"].astype(str)) == set(decisions["brands"])
    assert (bids["bid"] > 0).all() and bids["reason"].notna().all()
    assert "biggest bid moves per brand" in out
    if decisions["budgets"] is not None:
        plans = pd.read_parquet(decisions["budgets"])
        assert set(plans["brand_id"].astype(str)) <= set(decisions["brands"])
        assert (plans["spend"] >= 0).all()
