"""``make demo`` / ``tabtune demo``: the whole path on simulated data, end to end.

Simulate (unless the store already has data) -> pretrain the global bid model -> adapt it to
every brand -> print a per-brand table -> recommend tomorrow's bids and plan tomorrow's budget
for three brands (small, medium, large) with :class:`~tabtune.tasks.bid.BidRecommender` and
:class:`~tabtune.tasks.budget.BudgetPlanner`, as ``tabtune bids`` / ``tabtune budget`` do,
writing Parquet under ``outputs/<date>/`` (the day decided for) -> say where everything is.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from tabtune.cli.commands import finetune_brands
from tabtune.cli.console import console, err_console
from tabtune.cli.decisions import decision_date, run_bids, run_budget
from tabtune.cli.exit_codes import EXIT_OK
from tabtune.cli.guards import synth_sizes
from tabtune.cli.tables import brand_table, console_table
from tabtune.config import Config
from tabtune.data.store import CampaignStore, atomic_write_bytes
from tabtune.data.synth import simulate, write_synth
from tabtune.errors import TabTuneInputError
from tabtune.pipeline import BrandResult, pretrain, store_for
from tabtune.transfer import loss_name

__all__ = ["cmd_demo", "demo_decisions", "pick_brands", "run_demo"]


def run_demo(
    cfg: Config, *, n_brands: int | None = None, n_days: int | None = None, seed: int | None = None
) -> int:
    """Run the demo; returns the CLI exit code."""
    con = console()
    t_start = time.perf_counter()
    if overlap := cfg.folder_overlap(truth=True):  # the truth it writes, beside the store
        raise TabTuneInputError(f"{overlap}; set data.truth_dir; nothing was written")
    store = CampaignStore(cfg.data.store)
    _simulate_or_reuse(cfg, con, store, n_brands=n_brands, n_days=n_days, seed=seed)
    task = "bid" if "bid" in cfg.tasks else sorted(cfg.tasks)[0]
    with err_console().status(f"pretraining the global {task} model..."):
        res = pretrain(cfg, task)
    con.print(
        f"[2/5] pretrained {res.model_id} on {res.rows:,} rows of {res.brands} brands "
        f"({cfg.backend}, {res.seconds:.1f}s)"
    )
    brands = store.brands()
    results, refused = finetune_brands(cfg, task, brands)
    con.print(
        f"[3/5] adapted {len(results)} brands"
        + (f" ({len(refused)} refused: {', '.join(refused)})" if refused else "")
    )
    con.print(
        brand_table(sorted(results, key=lambda r: r.rows), f"{task}: global vs adapted, per brand")
    )
    _print_adaptation(cfg, con, task, results)
    picked = pick_brands(results)
    decisions: dict[str, Any] = {}
    if picked and task == "bid":
        decisions = demo_decisions(cfg, con, picked)
    summary_path = Path(cfg.runs_dir) / "demo" / "summary.json"
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(
        summary_path,
        json.dumps(
            {
                "global": res.__dict__,
                "brands": [r.to_dict() for r in results],
                "decisions": decisions,
            },
            indent=2,
            default=str,
        ).encode(),
    )
    con.print(
        f"outputs: store {cfg.data.store}, ground truth {cfg.data.truth_dir}, models {cfg.models_dir}/ "
        f"(`tabtune models list`), summary {summary_path}"
    )
    con.print(f"done in {time.perf_counter() - t_start:.0f}s")
    return EXIT_OK


def _simulate_or_reuse(
    cfg: Config,
    con: Console,
    store: CampaignStore,
    *,
    n_brands: int | None,
    n_days: int | None,
    seed: int | None,
) -> None:
    """Step 1: simulate into the store unless it already has data."""
    if store.exists():
        con.print(
            f"[1/5] using the existing store {cfg.data.store} ({len(store.brands())} brands); "
            "`make clean` to start over"
        )
    else:
        sizes = synth_sizes(cfg.synth, n_brands, n_days)  # the config's rules, exit 2
        n_brands, n_days = sizes.n_brands, sizes.n_days
        seed = cfg.synth.seed if seed is None else seed
        t0 = time.perf_counter()
        data = simulate(n_brands=n_brands, n_days=n_days, seed=seed, start=cfg.synth.start)
        store.append(data.observations)
        write_synth(data, cfg.data.truth_dir)
        con.print(
            f"[1/5] simulated {len(data.observations):,} rows for {n_brands} brands x {n_days} days "
            f"-> {cfg.data.store} ({time.perf_counter() - t0:.1f}s)"
        )


def _print_adaptation(cfg: Config, con: Console, task: str, results: list[BrandResult]) -> None:
    """What the per-brand errors mean, the strategies chosen and the median gain."""
    task_cfg = cfg.task(task)
    loss = loss_name(task_cfg.objective or "squared_error")
    if task_cfg.kind == "classification":
        loss = "log loss"
    con.print(
        f"err = weighted {loss} over the holdout rows of the "
        f"{cfg.adaptation.selection_folds} rolling folds that chose the strategy (the newest "
        f"{cfg.adaptation.validation_fraction:.0%} of rows, and as many just before, per fold); "
        f"brands under {cfg.adaptation.min_rows_to_adapt} rows are served by the global model's "
        "trees (with their level offset, and segment offsets where their folds show them)"
    )

    strategies: dict[str, int] = {}
    for r in results:
        strategies[r.strategy] = strategies.get(r.strategy, 0) + 1
    adapted = [
        (r.global_score, r.adapted_score)
        for r in results
        if r.strategy != "global" and r.rows >= cfg.adaptation.min_rows_to_adapt
    ]
    gains = sorted(100 * (g - a) / g for g, a in adapted if g and a is not None)
    con.print("strategies: " + ", ".join(f"{k} {v}" for k, v in sorted(strategies.items())))
    if gains:
        con.print(
            f"adapted brands: median holdout error {gains[len(gains) // 2]:.1f}% below the global model"
        )


def pick_brands(results: list[BrandResult], n: int = 3) -> list[str]:
    """``n`` adapted brands spread over the size range (smallest, middle, largest quartile)."""
    adapted = sorted((r for r in results if r.strategy != "global"), key=lambda r: r.rows)
    if not adapted:
        adapted = sorted(results, key=lambda r: r.rows)
    if len(adapted) <= n:
        return [r.brand_id for r in adapted]
    idx = sorted({round(q * (len(adapted) - 1)) for q in (0.25, 0.5, 0.9)})
    return [adapted[i].brand_id for i in idx][:n]


def demo_decisions(cfg: Config, con: Console, brands: list[str]) -> dict[str, Any]:
    """Bids and a budget plan for ``brands`` on the day after the data; returns what was written."""
    day = decision_date(store_for(cfg), None)
    out = Path(cfg.outputs_dir) / str(day.date())
    names = ",".join(brands)
    t0 = time.perf_counter()
    con.print(f"[4/5] bids for {day.date()}, brands {names} (`tabtune bids --brands {names}`)")
    run_bids(cfg, brands=names, plots=True)
    bids = pd.read_parquet(out / "bids")
    bids["brand_id"] = bids["brand_id"].astype(str)
    rows = []
    for brand, part in bids.groupby("brand_id", sort=False):
        for _, r in part.reindex(part["change"].abs().sort_values(ascending=False).index)[
            :3
        ].iterrows():
            rows.append(
                (
                    brand,
                    f"{r['channel']}/{r.get('audience', '-')}/{r.get('device', '-')}",
                    f"{r['current_bid']:.2f} -> {r['bid']:.2f} ({100 * r['change']:+.0f}%)",
                    f"{r['predicted_value_per_click']:.2f}",
                    r["reason"],
                )
            )
    con.print(
        console_table(
            "biggest bid moves per brand",
            ["brand", "context", "bid", "pred. value/click", "reason"],
            rows,
        )
    )
    con.print(f"({time.perf_counter() - t0:.1f}s)")
    t0 = time.perf_counter()
    con.print(f"[5/5] budget plans for {day.date()} (`tabtune budget --brands {names}`)")
    budgets: str | None = str(out / "budgets")
    try:
        run_budget(cfg, brands=names)
    except TabTuneInputError as exc:
        con.print(f"no budget plan: {exc}")
        budgets = None
    con.print(f"({time.perf_counter() - t0:.1f}s)")
    return {
        "date": str(day.date()),
        "brands": brands,
        "bids": str(out / "bids"),
        "budgets": budgets,
    }


def cmd_demo(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune demo``."""
    return run_demo(cfg, n_brands=args.brands, n_days=args.days, seed=args.seed)
