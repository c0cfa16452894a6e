"""Issue 14: one decision path for budgets, and bids on exports without a bid column."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import benchmarks.budget
import tabtune.cli.decisions
import tabtune.tasks.budget
from tabtune.cli import EXIT_OK, main
from tabtune.config import load_config
from tabtune.data.store import CampaignStore
from tabtune.tasks.budget import BudgetPlanner, budget_planner


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.slow
def test_cli_budget_is_the_python_plan_and_the_benchmark_path(
    small_config: Path, capsys, monkeypatch
) -> None:
    assert _run(capsys, "--config", str(small_config), "synth")[0] == EXIT_OK
    calls: list[dict] = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return budget_planner(*args, **kwargs)

    monkeypatch.setattr(tabtune.cli.decisions, "budget_planner", spy)
    cfg = load_config(small_config)
    store = CampaignStore(cfg.data.store)
    brand = sorted(store.brands())[0]
    code, out = _run(capsys, "--config", str(small_config), "budget", "--brands", brand)
    assert code == EXIT_OK, out
    assert calls, "tabtune budget does not build its planner with budget_planner"
    assert "per channel" in out and "response" in out
    day = pd.Timestamp(store.date_range()[1]) + pd.Timedelta(days=1)
    cli_plan = pd.read_parquet(Path(cfg.outputs_dir) / str(day.date()) / "budgets")
    python_plan = BudgetPlanner(config=cfg).fit(store.read()).plan(None, day, brand=brand)
    assert list(cli_plan["channel"]) == list(python_plan["channel"])
    assert list(cli_plan["response"]) == list(python_plan["response"])
    # the default (Hill curves) serves the CLI too; 'hill-pooled' where the brand's own days
    # did not shape the curve (too few days here, or bids that never moved)
    assert python_plan["response"].isin(["hill", "hill-pooled"]).all()
    np.testing.assert_allclose(cli_plan["spend"], python_plan["spend"], rtol=1e-6)
    np.testing.assert_allclose(
        cli_plan["change"], python_plan["spend"] / python_plan["habitual_spend"] - 1, rtol=1e-6
    )
    # the benchmark's `tabtune` figure is measured through the same construction
    assert benchmarks.budget.budget_planner is tabtune.tasks.budget.budget_planner
    assert "budget_planner(cfg, hist, base=glob" in inspect.getsource(benchmarks.budget.run)


@pytest.mark.slow
def test_bids_without_a_bid_column_use_the_observed_cpc(small_config: Path, capsys) -> None:
    from tabtune.data.synth import simulate

    obs = simulate(n_brands=4, n_days=60, seed=2).observations.drop(columns=["bid"])
    # one context of a brand's latest day without a click: no observed cost per click, no bid
    # (it was left out without a word: new-user red-team)
    last = obs["date"] == obs["date"].max()
    first = sorted(obs["brand_id"].unique())[0]
    row = obs.index[last & (obs["brand_id"] == first)][0]
    obs.loc[row, ["clicks", "conversions", "revenue"]] = 0
    cfg = load_config(small_config)
    CampaignStore(cfg.data.store).append(obs)
    code, out = _run(capsys, "--config", str(small_config), "bids")
    assert code == EXIT_OK, out
    flat = " ".join(out.split())
    assert "observed cost per click" in flat and "observed_cpc" in flat
    assert "feature 'relative_bid' dropped" in flat  # the notice reaches the terminal
    assert f"{first}: 1 of its " in flat and "lack a click and spend (no bid column)" in flat
    day = pd.Timestamp(obs["date"].max()) + pd.Timedelta(days=1)
    bids = pd.read_parquet(Path(cfg.outputs_dir) / str(day.date()) / "bids")
    assert len(bids) and (bids["reference"] == "observed_cpc").all()
    assert (bids["bid"] > 0).all()
