"""Bid benchmark: learned bid effect and recommended bids on held-out simulated brands.

Brands never seen in pretraining are adapted on their history before a cut date; on every day
after the cut the recommender sets bids for each of their contexts at the brand's own target
ROAS, and the simulator's ground truth scores them against the bids the brand actually placed.
Two feature sets for the bid are compared: ``relative`` (the bid task's default:
``reference_bid`` + ``relative_bid``, tabtune/features.py) and ``absolute`` (the raw bid, as
before). Each is served by the brand's adapted model and by the global model alone.

Metrics (all on the held-out brand-days, true quantities from ``GroundTruth``):

* **bid effect**: the click-weighted mean ratio of value per click at 1.3x over 0.7x the current
  bid, predicted and true, and their difference (the slope bias);
* **vpc error**: click-weighted relative MAE of the predicted value per click at the current bid,
  ``sum w |pred - true| / sum w true`` with ``w`` the true expected clicks;
* **value per spend**: ``sum true expected revenue / sum true expected spend`` of a set of bids;
  **at the same spend**: each brand's current bids scaled by one factor ``k`` (found by bisection
  on the true spend) so that they cost what the recommended bids cost; the gain is the
  recommended bids' true value over that same-spend baseline's, minus one;
* **profit**: ``sum (true expected revenue - true expected spend)``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import machine, md_table, write_raw, write_section
from tabtune.config import BID_TASK, Config, TaskConfig, default_config
from tabtune.tasks.bid import BidRecommender

#: bid features per variant (the bid task's ``numeric``)
VARIANTS: dict[str, list[str]] = {
    "relative": ["reference_bid", "relative_bid"],
    "absolute": ["bid"],
}
LOW, HIGH = 0.7, 1.3


# ---------------------------------------------------------------------------- truth scoring
def true_outcome(truth: Any, contexts: pd.DataFrame, bids: np.ndarray) -> pd.DataFrame:
    """True expected clicks, revenue and spend of each context at ``bids``."""
    ev = truth.evaluate(contexts.assign(bid=np.asarray(bids, dtype=float)))
    return pd.DataFrame(
        {
            "clicks": ev["true_expected_clicks"].to_numpy(),
            "value": ev["true_expected_revenue"].to_numpy(),
            "spend": ev["true_expected_spend"].to_numpy(),
        },
        index=contexts.index,
    )


def same_spend_factor(
    truth: Any, contexts: pd.DataFrame, current: np.ndarray, spend: float, iters: int = 60
) -> float:
    """The factor ``k`` such that the bids ``k * current`` have true expected spend ``spend``.

    Spend rises strictly with a common bid factor (more clicks at a higher cost each), so a
    bisection on ``log k`` in [-4, 4] finds it.
    """
    lo, hi = -4.0, 4.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        s = true_outcome(truth, contexts, current * np.exp(mid))["spend"].sum()
        lo, hi = (mid, hi) if s < spend else (lo, mid)
    return float(np.exp(0.5 * (lo + hi)))


def score_bids(
    truth: Any, contexts: pd.DataFrame, bids: np.ndarray, *, by: str = "brand_id"
) -> dict[str, float]:
    """Score ``bids`` against the contexts' current bids (``contexts["bid"]``) with the truth.

    Returns
    -------
    dict
        ``value``/``spend``/``profit`` of the bids, of the current bids (``cur_*``) and of the
        current bids scaled per ``by`` group to the bids' spend (``same_*``), the value-per-spend
        ratios (``vps``, ``cur_vps``, ``same_vps``), ``gain_same_spend`` (value over the
        same-spend baseline's, minus one) and the spend-weighted mean factor ``k``.
    """
    current = contexts["bid"].to_numpy(dtype=float)
    bids = np.asarray(bids, dtype=float)
    rec = true_outcome(truth, contexts, bids)
    cur = true_outcome(truth, contexts, current)
    same_value, same_spend, ks, weights = 0.0, 0.0, [], []
    value_by_group = 0.0  # summed in the same order as the baseline, so equal bids gain 0
    for _, idx in contexts.groupby(by, observed=True, sort=True).indices.items():
        part = contexts.iloc[idx]
        target = float(rec["spend"].iloc[idx].sum())
        if np.allclose(bids[idx], current[idx], rtol=0, atol=0):
            k = 1.0  # the same bids: the baseline is exact, not a bisection's approximation
        else:
            k = same_spend_factor(truth, part, current[idx], target)
        out = true_outcome(truth, part, current[idx] * k)
        same_value += float(out["value"].sum())
        value_by_group += float(rec["value"].iloc[idx].sum())
        same_spend += float(out["spend"].sum())
        ks.append(k)
        weights.append(target)
    value, spend = float(rec["value"].sum()), float(rec["spend"].sum())
    cur_value, cur_spend = float(cur["value"].sum()), float(cur["spend"].sum())
    return {
        "value": value,
        "spend": spend,
        "profit": value - spend,
        "vps": value / spend,
        "cur_value": cur_value,
        "cur_spend": cur_spend,
        "cur_profit": cur_value - cur_spend,
        "cur_vps": cur_value / cur_spend,
        "same_value": same_value,
        "same_spend": same_spend,
        "same_profit": same_value - same_spend,
        "same_vps": same_value / same_spend,
        "gain_same_spend": value_by_group / same_value - 1.0,
        "k": float(np.average(ks, weights=weights)) if sum(weights) > 0 else 1.0,
    }


def bid_effect(
    rec: BidRecommender, truth: Any, contexts: pd.DataFrame, history: pd.DataFrame
) -> dict[str, Any]:
    """The learned bid effect against the truth, and the error of the predicted value per click.

    Returns
    -------
    dict
        ``pred_change`` / ``true_change``: the click-weighted mean value per click at
        :data:`HIGH` x the current bids over that at :data:`LOW` x, minus one; ``bias`` their
        difference; ``ratio_log_mae``: click-weighted mean absolute error of the per-context
        log ratio; ``vpc_rel_mae``: ``sum w |pred - true| / sum w true`` at the current bids;
        ``curve``: both click-weighted means at 0.7x, 0.8x, ... 1.3x relative to 1x. The weight
        ``w`` is the true expected clicks at the current bid.
    """
    current = contexts["bid"].to_numpy(dtype=float)
    xs = [round(x, 1) for x in np.arange(LOW, HIGH + 1e-9, 0.1)]
    pred = {x: rec.predict_value(contexts, current * x, history=history) for x in xs}
    true = {x: truth.value_per_click(contexts.assign(bid=current * x)) for x in xs}
    w = truth.expected_clicks(contexts)
    mean_p = {x: float(np.average(pred[x], weights=w)) for x in xs}
    mean_t = {x: float(np.average(true[x], weights=w)) for x in xs}
    pred_change = mean_p[HIGH] / mean_p[LOW] - 1.0
    true_change = mean_t[HIGH] / mean_t[LOW] - 1.0
    ok = (pred[LOW] > 0) & (pred[HIGH] > 0)
    err = np.log(pred[HIGH][ok] / pred[LOW][ok]) - np.log(true[HIGH][ok] / true[LOW][ok])
    return {
        "pred_change": pred_change,
        "true_change": true_change,
        "bias": pred_change - true_change,
        "ratio_log_mae": float(np.average(np.abs(err), weights=w[ok])),
        "vpc_rel_mae": float(np.sum(w * np.abs(pred[1.0] - true[1.0])) / np.sum(w * true[1.0])),
        "curve": {
            str(x): {"pred": mean_p[x] / mean_p[1.0], "true": mean_t[x] / mean_t[1.0]} for x in xs
        },
    }


# ---------------------------------------------------------------------------- the run
def bench_config(numeric: list[str], n_estimators: int = 400) -> Config:
    """The default configuration with the bid task's bid features set to ``numeric``."""
    cfg = default_config()
    task = TaskConfig.model_validate({**BID_TASK, "numeric": numeric})
    return cfg.model_copy(
        update={
            "device": "cpu",
            "tasks": {**cfg.tasks, "bid": task},
            "model": cfg.model.model_copy(update={"n_jobs": 1, "n_estimators": n_estimators}),
        }
    )


def split(sim: Any, n_heldout: int, eval_days: int, seed: int) -> dict[str, Any]:
    """Held-out brands (with history before the cut and rows after it), the pool and the cut."""
    obs = sim.observations
    cut = obs["date"].max() - pd.Timedelta(days=eval_days)
    before = obs[obs["date"] <= cut]
    after = obs[obs["date"] > cut]
    counts = before.groupby("brand_id", observed=True).size()
    live = set(after["brand_id"].astype(str))
    cands = sorted(b for b, n in counts.items() if n >= 300 and str(b) in live)
    rng = np.random.default_rng(seed)
    held = sorted(rng.choice(cands, size=min(n_heldout, len(cands)), replace=False).tolist())
    is_held = obs["brand_id"].isin(held)
    return {
        "cut": cut,
        "held": held,
        "pool": obs[~is_held & (obs["date"] <= cut)],
        "history": obs[is_held & (obs["date"] <= cut)],
        "eval": obs[is_held & (obs["date"] > cut)].reset_index(drop=True),
    }


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One simulation: pretrain, adapt and score every variant; returns its setting and rows."""
    from tabtune.data.synth import GroundTruth, simulate

    t0 = time.perf_counter()
    sim = simulate(n_brands=args.brands, n_days=args.days, seed=seed)
    truth = GroundTruth(sim.params)
    parts = split(sim, args.heldout, args.eval_days, seed)
    obs, ev = sim.observations, parts["eval"]
    targets = {b["brand_id"]: float(b["target_roas"]) for b in sim.params["brands"]}
    print(
        f"seed {seed}: simulated {len(obs):,} rows ({args.brands} brands x {args.days} days) in "
        f"{time.perf_counter() - t0:.1f}s; cut {parts['cut'].date()}; pool {len(parts['pool']):,} "
        f"rows; held out {len(parts['held'])} brands ({len(parts['history']):,} history rows, "
        f"{len(ev):,} evaluation contexts)",
        flush=True,
    )
    results: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    for variant in args.variants:
        cfg = bench_config(VARIANTS[variant], args.n_estimators)
        t = time.perf_counter()
        glob = BidRecommender(config=cfg, model_cvr=False, n_jobs=1).fit(parts["pool"])
        timings["pretrain"] = timings.get("pretrain", 0.0) + time.perf_counter() - t
        t = time.perf_counter()
        adapted = BidRecommender(base_model=glob, config=cfg, model_cvr=False, n_jobs=1).fit(
            parts["history"]
        )
        timings["adapt"] = timings.get("adapt", 0.0) + time.perf_counter() - t
        for serving, rec in (("adapted", adapted), ("global", glob)):
            t = time.perf_counter()
            bids = np.empty(len(ev))
            for brand, idx in ev.groupby("brand_id", observed=True).indices.items():
                out = rec.recommend(ev.iloc[idx], target_roas=targets[str(brand)], history=obs)
                bids[idx] = out["bid"].to_numpy()
            row: dict[str, Any] = {"seed": seed, "variant": variant, "serving": serving}
            row.update(bid_effect(rec, truth, ev, obs))
            row.update(score_bids(truth, ev, bids))
            met = cur_met = 0
            for brand, idx in ev.groupby("brand_id", observed=True).indices.items():
                part = ev.iloc[idx]
                for new, at in ((True, bids[idx]), (False, part["bid"].to_numpy())):
                    o = true_outcome(truth, part, at)
                    hit = int(o["value"].sum() / o["spend"].sum() >= targets[str(brand)])
                    met, cur_met = (met + hit, cur_met) if new else (met, cur_met + hit)
            row["brands_meeting_target"] = met
            row["current_meeting_target"] = cur_met
            row["brands"] = len(parts["held"])
            row["mean_change"] = float(np.mean(bids / ev["bid"].to_numpy() - 1.0))
            timings["recommend + score"] = (
                timings.get("recommend + score", 0.0) + time.perf_counter() - t
            )
            results.append(row)
            print(
                f"  {variant:8s} {serving:7s} bid effect 0.7x->1.3x pred "
                f"{100 * row['pred_change']:+.1f}% true {100 * row['true_change']:+.1f}% "
                f"(per-context log-ratio MAE {row['ratio_log_mae']:.3f}); vpc rel MAE "
                f"{row['vpc_rel_mae']:.3f}; value/spend {row['vps']:.3f} vs current "
                f"{row['cur_vps']:.3f} (same spend {row['same_vps']:.3f}, gain "
                f"{100 * row['gain_same_spend']:+.1f}%)",
                flush=True,
            )
    setting = {
        "seed": seed,
        "heldout": parts["held"],
        "eval_contexts": len(ev),
        "history_rows": len(parts["history"]),
        "pool_rows": len(parts["pool"]),
        "target_roas": {b: targets[b] for b in parts["held"]},
    }
    return {"setting": setting, "results": results, "timings_s": timings}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the benchmark over ``args.seeds``; returns the raw figures."""
    t0 = time.perf_counter()
    runs = [run_seed(args, seed) for seed in args.seeds]
    timings: dict[str, float] = {}
    for r in runs:
        for k, v in r["timings_s"].items():
            timings[k] = timings.get(k, 0.0) + v
    return {
        "machine": machine(),
        "setting": {
            "brands": args.brands,
            "days": args.days,
            "seeds": list(args.seeds),
            "heldout_per_seed": args.heldout,
            "eval_days": args.eval_days,
            "n_estimators": args.n_estimators,
            "runs": [r["setting"] for r in runs],
        },
        "results": [row for r in runs for row in r["results"]],
        "timings_s": timings,
        "total_s": time.perf_counter() - t0,
    }


def summarise(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (variant, model): bid-effect figures averaged over seeds, money pooled."""
    frame = pd.DataFrame(results)
    out = []
    for (variant, serving), part in frame.groupby(["variant", "serving"], sort=False):
        sums = part[["value", "spend", "cur_value", "cur_spend", "same_value", "same_spend"]].sum()
        out.append(
            {
                "variant": variant,
                "serving": serving,
                **{
                    k: float(part[k].mean())
                    for k in (
                        "pred_change",
                        "true_change",
                        "bias",
                        "ratio_log_mae",
                        "vpc_rel_mae",
                        "mean_change",
                    )
                },
                "vps": sums["value"] / sums["spend"],
                "cur_vps": sums["cur_value"] / sums["cur_spend"],
                "same_vps": sums["same_value"] / sums["same_spend"],
                "gain_same_spend": sums["value"] / sums["same_value"] - 1.0,
                "profit": sums["value"] - sums["spend"],
                "cur_profit": sums["cur_value"] - sums["cur_spend"],
                "same_profit": sums["same_value"] - sums["same_spend"],
                "met": f"{int(part['brands_meeting_target'].sum())}/{int(part['brands'].sum())}"
                f" (current {int(part['current_meeting_target'].sum())})",
                "gains": [float(g) for g in part["gain_same_spend"]],
                "biases": [float(b) for b in part["bias"]],
            }
        )
    return out


def render(out: dict[str, Any], command: str) -> str:
    """The markdown section."""
    s = out["setting"]
    rows = []
    for r in summarise(out["results"]):
        rows.append(
            [
                r["variant"],
                r["serving"],
                f"{100 * r['pred_change']:+.1f}%",
                f"{100 * r['true_change']:+.1f}%",
                f"{100 * r['bias']:+.1f} pp ({', '.join(f'{100 * b:+.0f}' for b in r['biases'])})",
                f"{r['ratio_log_mae']:.3f}",
                f"{r['vpc_rel_mae']:.3f}",
                f"{r['vps']:.2f} / {r['cur_vps']:.2f} / {r['same_vps']:.2f}",
                f"{100 * r['gain_same_spend']:+.2f}% "
                f"({', '.join(f'{100 * g:+.1f}' for g in r['gains'])})",
                f"{r['profit']:,.0f} / {r['cur_profit']:,.0f} / {r['same_profit']:,.0f}",
                f"{100 * r['mean_change']:+.1f}%",
                r["met"],
            ]
        )
    table = md_table(
        [
            "bid features",
            "model",
            "predicted vpc 0.7x->1.3x",
            "true",
            "bias (per seed)",
            "per-context error",
            "vpc rel. MAE",
            "value/spend: recommended / current / current at same spend",
            "gain at same spend (per seed)",
            "profit: rec. / current / same spend",
            "mean bid change",
            "brands at target",
        ],
        rows,
    )
    times = ", ".join(f"{k} {v:.0f}s" for k, v in out["timings_s"].items())
    n_held = sum(len(r["heldout"]) for r in s["runs"])
    n_ctx = sum(r["eval_contexts"] for r in s["runs"])
    return "\n".join(
        [
            "## Bids: learned bid effect and recommended bids on held-out brands",
            "",
            f"`{command}` — {out['machine']}; {out['total_s']:.0f}s in all ({times}).",
            "",
            f"Simulations: {s['brands']} brands x {s['days']} days, seeds "
            f"{', '.join(map(str, s['seeds']))}. In each, {s['heldout_per_seed']} brands with at "
            "least 300 rows before the cut are held out (never in pretraining); the other "
            "brands' rows up to the cut pretrain the global model "
            f"({s['n_estimators']} trees at most, early stopping), and each held-out brand is "
            f"adapted (`strategy=auto`) on its own history. On each of the {s['eval_days']} days "
            "after the cut the recommender sets the bid of every context the brand ran that day "
            f"({n_ctx:,} contexts of {n_held} brands in all) at the brand's own target ROAS "
            "(guard rails: +-30% per day); reference bids come from the observed bids of "
            "earlier days. Figures are averaged over seeds (bid effect, errors) or pooled "
            "(money).",
            "",
            table,
            "",
            "- *predicted / true vpc 0.7x->1.3x*: the click-weighted mean value per click with "
            "every context at 1.3x its current bid over that at 0.7x, minus one; *bias* is "
            "predicted minus true (percentage points); *per-context error*: click-weighted mean "
            "absolute error of each context's log ratio (the true effect varies by context: "
            "steep for a context far below its habitual bid, flat near it). The `absolute` rows "
            "are the previous model (the raw bid as a feature), `relative` the current one "
            "(`reference_bid` + `relative_bid`).",
            "- *vpc rel. MAE*: `sum w |pred - true| / sum w true` of the value per click at "
            "the current bid, `w` the true expected clicks. The `global` rows serve a brand "
            "the model never saw (no brand context, no adaptation).",
            "- *value/spend*: true expected revenue / true expected spend over all evaluated "
            "contexts. *current at same spend*: each brand's current bids times one factor, "
            "chosen (by bisection on the truth) so that they cost what the recommended bids "
            "cost; *gain at same spend* is the recommended bids' true revenue over that "
            "baseline's, minus one: what the recommender adds beyond moving the spend level. "
            "*profit* = true revenue - true spend (currency units). *brands at target*: "
            "held-out brands whose recommended (current) bids reach their target ROAS in truth "
            "over the evaluated days.",
            "- The rule (`tabtune/tasks/bid.py`) keeps the predicted value per click over the "
            "*bid* at or above the target, a floor on ROAS since a click costs less than the "
            "bid (0.4-0.92 of it in the simulator), while the simulated brands set their bids "
            "from the target on *cost*: *mean bid change* shows which way the rule moves "
            "them.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m benchmarks.bids [--quick]``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--brands", type=int, default=40)
    p.add_argument("--days", type=int, default=540)
    p.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    p.add_argument("--heldout", type=int, default=8)
    p.add_argument("--eval-days", type=int, default=28)
    p.add_argument("--n-estimators", type=int, default=400)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--quick", action="store_true", help="small smoke run (not written to docs)")
    args = p.parse_args(argv)
    if args.quick:
        args.brands, args.days, args.heldout, args.eval_days = 16, 240, 3, 14
        args.seeds = args.seeds[:1]
    out = run(args)
    write_raw("bids" + ("-quick" if args.quick else ""), out)
    if not args.quick:
        write_section("bids", render(out, "python -m benchmarks.bids"))
        print("wrote docs/benchmarks.md")
    else:
        print(render(out, "python -m benchmarks.bids --quick"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
