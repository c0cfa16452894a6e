"""``make demo`` / ``tabtune demo``: the whole path on simulated data, end to end.

Simulate (unless the store already has data) -> pretrain the global bid model -> adapt it to
every brand -> print a per-brand table and where everything was written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from tabtune.config import Config


def run_demo(
    cfg: Config, *, n_brands: int | None = None, n_days: int | None = None, seed: int | None = None
) -> int:
    """Run the demo; returns the CLI exit code."""
    from rich.console import Console

    from tabtune.cli import _brand_table, finetune_brands
    from tabtune.data.store import CampaignStore, atomic_write_bytes
    from tabtune.data.synth import simulate, write_synth
    from tabtune.pipeline import pretrain

    con = Console(highlight=False)
    t_start = time.perf_counter()
    store = CampaignStore(cfg.data.store)
    if store.exists():
        con.print(
            f"[1/3] using the existing store {cfg.data.store} ({len(store.brands())} brands); "
            "`make clean` to start over"
        )
    else:
        n_brands = n_brands or cfg.synth.n_brands
        n_days = n_days or cfg.synth.n_days
        seed = cfg.synth.seed if seed is None else seed
        t0 = time.perf_counter()
        data = simulate(n_brands=n_brands, n_days=n_days, seed=seed, start=cfg.synth.start)
        store.append(data.observations)
        write_synth(data, cfg.data.truth_dir)
        con.print(
            f"[1/3] simulated {len(data.observations):,} rows for {n_brands} brands x {n_days} days "
            f"-> {cfg.data.store} ({time.perf_counter() - t0:.1f}s)"
        )
    task = "bid" if "bid" in cfg.tasks else sorted(cfg.tasks)[0]
    with Console(stderr=True).status(f"pretraining the global {task} model..."):
        res = pretrain(cfg, task)
    con.print(
        f"[2/3] pretrained {res.model_id} on {res.rows:,} rows of {res.brands} brands "
        f"({cfg.backend}, {res.seconds:.1f}s)"
    )
    brands = store.brands()
    results = finetune_brands(cfg, task, brands)
    con.print(f"[3/3] adapted {len(results)} brands")
    con.print(
        _brand_table(sorted(results, key=lambda r: r.rows), f"{task}: global vs adapted, per brand")
    )
    con.print(
        "err = weighted MSE on each brand's newest "
        f"{cfg.adaptation.validation_fraction:.0%} of rows (the holdout that chose the strategy); "
        f"brands under {cfg.adaptation.min_rows_to_adapt} rows are served by the global model"
    )

    strategies: dict[str, int] = {}
    for r in results:
        strategies[r.strategy] = strategies.get(r.strategy, 0) + 1
    improved = [
        r
        for r in results
        if r.strategy != "global" and r.global_score and r.adapted_score is not None
    ]
    gains = sorted(100 * (r.global_score - r.adapted_score) / r.global_score for r in improved)
    con.print("strategies: " + ", ".join(f"{k} {v}" for k, v in sorted(strategies.items())))
    if gains:
        con.print(
            f"adapted brands: median holdout error {gains[len(gains) // 2]:.1f}% below the global model"
        )
    summary_path = Path(cfg.runs_dir) / "demo" / "summary.json"
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(
        summary_path,
        json.dumps(
            {"global": res.__dict__, "brands": [r.to_dict() for r in results]},
            indent=2,
            default=str,
        ).encode(),
    )
    con.print(
        f"outputs: store {cfg.data.store}, ground truth {cfg.data.truth_dir}, models {cfg.models_dir}/ "
        f"(`tabtune models list`), summary {summary_path}"
    )
    con.print(f"done in {time.perf_counter() - t_start:.0f}s")
    return 0
