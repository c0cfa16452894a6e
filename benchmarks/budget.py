"""Budget benchmark: how much of the achievable uplift do budget plans capture?

Data: the simulator (``tabtune.data.synth.simulate``), whose channels have a true Hill
spend-response curve per brand-channel-day (``GroundTruth.channel_revenue``). A cut date
(``--test-days`` before the last day) splits the time line. Held-out brands (at least
``--min-history`` days before the cut, never in pretraining) are planned on ``--dates``
decision dates one week apart from the cut on.

Each plan splits a daily total across the brand's channels within the default bounds: the
channel's *recent spend* (mean over the 28 days before the date) +-30%. Scenarios: total = the
recent spend (``base``) and 1.2 x it (``+20%``). The *habitual split* is the recent split scaled
to the total. Every plan is scored with the true curves on its date:

    uplift share = (true revenue of the plan - true revenue of the habitual split)
                   / (true revenue of the true optimum - true revenue of the habitual split)

where the true optimum is the same DP on the true curves (same bounds and total, a finer grid,
refined off the grid like every plan). So the habitual split scores 0 and the optimum 1;
negative means the plan loses revenue.

Methods (all allocate with the same DP):

* ``tabtune`` -- ``BudgetPlanner`` pretrained on the other brands (history before the cut),
  adapted per held-out brand on its history before the cut, both built by
  :func:`tabtune.tasks.budget.budget_planner`, the construction ``tabtune budget`` and the
  refresh plan through (default ``budget.response: hill``:
  bid-identified Hill curves);
* ``tabtune-model`` -- the same planner with ``budget.response: model`` (the budget task's
  learned model of revenue relative to the channel's trailing means);
* ``tabtune-absolute`` -- the same with the previous budget task (absolute spend and the
  calendar as features), for reference (pretraining it is counted in the runtime too);
* ``hill-fit`` -- a Hill curve ``vmax s^k / (s^k + h^k)`` per channel per brand fitted with
  ``scipy.optimize.curve_fit`` to the brand's own channel-day (spend, revenue) history before
  the cut, the way marketing-mix tools do;
* ``shape-oracle`` -- the true Hill shape and true half-saturation spend on the date, with only
  the scale estimated (so that it reproduces the channel's observed revenue over the 28 days
  before the date): what any method that must estimate a level from noisy data can hope for;
* ``proportional`` -- revenue proportional to spend at the channel's recent ROAS (moves the
  money to the best recent ROAS until the bounds stop it).

Run: ``python -m benchmarks.budget`` (``--quick`` for a smoke run written to
``docs/benchmarks/budget-quick.json`` only).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import machine, md_table, write_raw, write_section
from tabtune.config import TaskConfig, default_config
from tabtune.data.synth import CHANNELS, GroundTruth, simulate
from tabtune.tasks.budget import BUDGET_TASK, BudgetPlanner, allocate_budget, budget_planner

Curve = Callable[[np.ndarray], np.ndarray]
SCENARIOS = {"base": 1.0, "+20%": 1.2}
ORACLE_GRID = 201


# ---------------------------------------------------------------------------- the metric
@dataclass
class Decision:
    """One planning problem: a brand's channels on a date with bounds and a total."""

    brand: str
    date: pd.Timestamp
    channels: list[str]
    lower: np.ndarray
    upper: np.ndarray
    total: float
    habitual: np.ndarray


def true_revenue(truth: GroundTruth, d: Decision, spend: Sequence[float]) -> float:
    """True expected revenue of a split on the decision's date."""
    return float(
        sum(truth.channel_revenue(d.brand, c, d.date, float(s)) for c, s in zip(d.channels, spend))
    )


def true_optimum(truth: GroundTruth, d: Decision, grid_points: int = ORACLE_GRID) -> np.ndarray:
    """The DP allocation on the true curves (same bounds and total)."""
    curves = [
        (lambda s, c=c: truth.channel_revenue(d.brand, c, d.date, np.asarray(s, dtype=float)))
        for c in d.channels
    ]
    return allocate_budget(curves, d.lower, d.upper, d.total, grid_points=grid_points)


def uplift_share(
    truth: GroundTruth, d: Decision, spend: Sequence[float], optimum: np.ndarray
) -> tuple[float, float]:
    """(share of the achievable uplift captured, achievable uplift in % of habitual revenue)."""
    base = true_revenue(truth, d, d.habitual)
    achievable = true_revenue(truth, d, optimum) - base
    captured = true_revenue(truth, d, spend) - base
    share = captured / achievable if achievable > 0 else float("nan")
    return share, 100.0 * achievable / base if base > 0 else float("nan")


# ---------------------------------------------------------------------------- baselines
def _hill(s: np.ndarray, vmax: float, half: float, k: float) -> np.ndarray:
    s = np.maximum(np.asarray(s, dtype=float), 0.0)
    return vmax * s**k / (s**k + half**k)


def fit_hill(spend: np.ndarray, revenue: np.ndarray) -> Curve:
    """A Hill curve fitted by least squares (``scipy.optimize.curve_fit``); proportional
    response at the mean ROAS when the fit fails."""
    from scipy.optimize import curve_fit

    spend, revenue = np.asarray(spend, dtype=float), np.asarray(revenue, dtype=float)
    roas = revenue.sum() / spend.sum() if spend.sum() > 0 else 0.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p, _ = curve_fit(
                _hill,
                spend,
                revenue,
                p0=[2.0 * revenue.mean(), spend.mean(), 1.0],
                bounds=([0.0, 1e-9, 0.3], [np.inf, np.inf, 5.0]),
                maxfev=5000,
            )
    except (RuntimeError, ValueError):
        return lambda s: roas * np.asarray(s, dtype=float)
    return lambda s: _hill(s, *p)


def proportional(roas: float) -> Curve:
    """Revenue proportional to spend at ``roas``."""
    return lambda s: roas * np.asarray(s, dtype=float)


def shape_oracle(truth: GroundTruth, d: Decision, window: pd.DataFrame, channel: str) -> Curve:
    """True shape and half-saturation on the date; the scale fitted to the window's revenue."""
    b = int(truth.brand_ids.get_loc(d.brand))
    ci = CHANNELS.index(channel)
    k, r = float(truth._hill_k[b, ci]), float(truth._hill_ratio[b, ci])

    def habitual(day: pd.Timestamp) -> float:
        return truth._channel_day(b, ci, int(pd.Timestamp(day).value // 86_400_000_000_000))[0]

    rows = window[window["channel"] == channel]
    h_rows = np.array([habitual(t) for t in rows["date"]])
    ok = h_rows > 0
    u = rows["spend"].to_numpy()[ok] / h_rows[ok]
    shape_sum = float(np.sum(u**k / (u**k + r**k)))
    scale = float(rows["revenue"].to_numpy()[ok].sum()) / shape_sum if shape_sum > 0 else 0.0
    h_day = habitual(d.date)
    if h_day <= 0:
        return lambda s: np.zeros_like(np.asarray(s, dtype=float))
    return lambda s: scale * _hill(np.asarray(s, dtype=float) / h_day, 1.0, r, k)


# ---------------------------------------------------------------------------- the benchmark
def daily(observations: pd.DataFrame) -> pd.DataFrame:
    """Observations summed to brand x date x channel."""
    return (
        observations.groupby(["brand_id", "date", "channel"], observed=True)[["spend", "revenue"]]
        .sum()
        .reset_index()
        .assign(
            channel=lambda f: f["channel"].astype(str), brand_id=lambda f: f["brand_id"].astype(str)
        )
    )


def decisions_for(
    planner: BudgetPlanner, brand: str, dates: Sequence[pd.Timestamp], scale: float
) -> list[Decision]:
    """The planner's default problems (recent spend +-30%) at ``scale`` x the recent total."""
    out = []
    share = planner.config.budget.relative_bounds if planner.config else 0.3
    for day in dates:
        recent = planner.recent_spend(brand, day)
        if len(recent) < 2:
            continue
        r = recent.to_numpy(dtype=float)
        total = scale * float(r.sum())
        out.append(
            Decision(
                brand,
                pd.Timestamp(day),
                list(recent.index),
                r * (1.0 - share),
                r * (1.0 + share),
                total,
                total * r / r.sum(),
            )
        )
    return out


def summary(shares: Sequence[float]) -> dict[str, float]:
    """Median, mean, share of plans >= 0.9 and worst of the uplift shares (NaN dropped)."""
    a = np.asarray([s for s in shares if np.isfinite(s)], dtype=float)
    if a.size == 0:
        return {
            "n": 0,
            "median": float("nan"),
            "mean": float("nan"),
            "ge_0.9": float("nan"),
            "worst": float("nan"),
        }
    return {
        "n": int(a.size),
        "median": float(np.median(a)),
        "mean": float(np.mean(a)),
        "ge_0.9": float(np.mean(a >= 0.9)),
        "worst": float(np.min(a)),
    }


#: The budget task before relative spend features (absolute spend and the calendar), for reference.
ABSOLUTE_TASK: dict[str, Any] = {
    **BUDGET_TASK,
    "target": {"numerator": "revenue"},
    "numeric": ["spend"],
    "calendar": ["day_of_week", "day_of_year", "month", "is_weekend"],
    "monotone": {"spend": 1},
}


def planner_config(quick: bool, task: dict[str, Any] | None = None, response: str = "hill"):
    cfg = default_config()
    cfg = cfg.model_copy(update={"budget": cfg.budget.model_copy(update={"response": response})})
    if task is not None:
        cfg = cfg.model_copy(
            update={"tasks": {**cfg.tasks, "budget": TaskConfig.model_validate(task)}}
        )
    return cfg.model_copy(
        update={
            "model": cfg.model.model_copy(
                update={
                    "n_estimators": 200 if quick else 400,
                    "learning_rate": 0.05,
                    "num_leaves": 15,
                    "min_child_samples": 100,
                }
            ),
            "adaptation": cfg.adaptation.model_copy(update={"n_jobs": 1}),
        }
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    timing: dict[str, float] = {}
    sim = simulate(n_brands=args.brands, n_days=args.days, seed=args.seed)
    truth = GroundTruth(sim.params)
    obs = sim.observations
    last = pd.Timestamp(obs["date"].max())
    cut = last - pd.Timedelta(days=args.test_days - 1)
    before = obs[obs["date"] < cut]
    days = before.groupby("brand_id", observed=True)["date"].nunique()
    channels = before.groupby("brand_id", observed=True)["channel"].nunique()
    cands = sorted(days[(days >= args.min_history) & (channels >= 2)].index.astype(str))
    rng = np.random.default_rng(args.seed)
    held = sorted(rng.choice(cands, size=min(args.heldout, len(cands)), replace=False).tolist())
    dates = [cut + pd.Timedelta(days=7 * i) for i in range(args.dates)]
    timing["simulate_s"] = time.perf_counter() - t0

    cfg = planner_config(args.quick)
    t = time.perf_counter()
    pool = before[~before["brand_id"].astype(str).isin(held)]
    # the planner construction `tabtune budget` and the refresh use (tabtune.tasks.budget)
    glob = budget_planner(cfg, pool, n_jobs=1)
    cfg_model = planner_config(args.quick, response="model")
    cfg_abs = planner_config(args.quick, ABSOLUTE_TASK, response="model")
    glob_abs = BudgetPlanner(config=cfg_abs, n_jobs=1).fit(pool)
    timing["pretrain_s"] = time.perf_counter() - t
    per_day = daily(obs)

    rows: list[dict[str, Any]] = []
    t_adapt = t_plan = t_base = 0.0
    for brand in held:
        hist = before[before["brand_id"].astype(str) == brand]
        t = time.perf_counter()
        planner = budget_planner(cfg, hist, base=glob, n_jobs=1)
        brand_rows = obs[obs["brand_id"].astype(str) == brand]
        planner.observe(brand_rows[brand_rows["date"] < dates[-1]])
        t_adapt += time.perf_counter() - t
        learned = budget_planner(cfg_model, hist, base=glob, n_jobs=1)
        learned.observe(brand_rows[brand_rows["date"] < dates[-1]])
        absolute = BudgetPlanner(base_model=glob_abs, config=cfg_abs, n_jobs=1).fit(hist)
        absolute.observe(brand_rows[brand_rows["date"] < dates[-1]])
        own = per_day[(per_day["brand_id"] == brand) & (per_day["date"] < cut)]
        t = time.perf_counter()
        hill = {
            c: fit_hill(g["spend"].to_numpy(), g["revenue"].to_numpy())
            for c, g in own.groupby("channel")
        }
        t_base += time.perf_counter() - t
        for scenario, scale in SCENARIOS.items():
            for d in decisions_for(planner, brand, dates, scale):
                optimum = true_optimum(truth, d)
                t = time.perf_counter()
                plan = planner.plan(d.total, d.date, brand=brand)
                t_plan += time.perf_counter() - t
                window = per_day[
                    (per_day["brand_id"] == brand)
                    & (per_day["date"] < d.date)
                    & (per_day["date"] >= d.date - pd.Timedelta(days=28))
                ]
                recent_roas = (
                    window.groupby("channel")["revenue"].sum()
                    / window.groupby("channel")["spend"].sum()
                )
                curves = {
                    "hill-fit": [hill.get(c, lambda s: 0 * np.asarray(s)) for c in d.channels],
                    "shape-oracle": [shape_oracle(truth, d, window, c) for c in d.channels],
                    "proportional": [
                        proportional(float(recent_roas.get(c, 0.0))) for c in d.channels
                    ],
                }
                spends = {
                    "tabtune": plan["spend"].to_numpy(),
                    "tabtune-model": learned.plan(d.total, d.date, brand=brand)["spend"].to_numpy(),
                    "tabtune-absolute": absolute.plan(d.total, d.date, brand=brand)[
                        "spend"
                    ].to_numpy(),
                    "habitual": d.habitual,
                }
                for name, cs in curves.items():
                    spends[name] = allocate_budget(
                        cs,
                        d.lower,
                        d.upper,
                        d.total,
                        grid_points=cfg.budget.grid_points,
                        reference=d.habitual,
                    )
                for name, spend in spends.items():
                    assert abs(float(np.sum(spend)) - d.total) <= 1e-6 * max(1.0, d.total)
                    assert np.all(spend >= d.lower - 1e-9) and np.all(spend <= d.upper + 1e-9)
                    share, stakes = uplift_share(truth, d, spend, optimum)
                    rows.append(
                        {
                            "brand": brand,
                            "date": str(d.date.date()),
                            "scenario": scenario,
                            "method": name,
                            "share": share,
                            "achievable_pct": stakes,
                        }
                    )
    timing["adapt_s"] = t_adapt
    timing["plan_s"] = t_plan
    timing["hill_fit_s"] = t_base
    timing["total_s"] = time.perf_counter() - t0
    frame = pd.DataFrame(rows)
    results = {
        scenario: {
            m: summary(g["share"]) for m, g in frame[frame.scenario == scenario].groupby("method")
        }
        for scenario in SCENARIOS
    }
    stakes = frame[frame.method == "habitual"].groupby("scenario")["achievable_pct"].median()
    return {
        "args": vars(args),
        "machine": machine(),
        "heldout": held,
        "cut": str(cut.date()),
        "dates": [str(x.date()) for x in dates],
        "results": results,
        "achievable_pct_median": stakes.to_dict(),
        "timing": timing,
        "plans": rows,
    }


METHODS = [
    "tabtune",
    "tabtune-model",
    "tabtune-absolute",
    "hill-fit",
    "proportional",
    "shape-oracle",
    "habitual",
]


def render(out: dict[str, Any]) -> str:
    a = out["args"]
    lines = [
        "## Budget plans: share of the achievable uplift captured",
        "",
        f"Simulator, {a['brands']} brands x {a['days']} days (seed {a['seed']}); "
        f"{len(out['heldout'])} held-out brands with >= {a['min_history']} days of history "
        f"before the cut ({out['cut']}), never in pretraining; plans on {a['dates']} dates a week "
        "apart from the cut, default bounds (recent 28-day spend per channel +-30%), total = the "
        "recent spend (`base`) or 1.2 x it (`+20%`). Uplift share = (true revenue of the plan - "
        "true revenue of the habitual split) / (true revenue of the true optimum - true revenue "
        "of the habitual split), with the simulator's true curves; the habitual split (the recent "
        "split scaled to the total) scores 0, the true optimum 1. Every plan sums to its total "
        "and respects every bound (checked). Machine: " + out["machine"] + ".",
        "",
    ]
    for scenario, res in out["results"].items():
        stakes = out["achievable_pct_median"].get(scenario, float("nan"))
        lines += [
            f"**{scenario}** (median achievable uplift: {stakes:.2f}% of the habitual split's "
            "revenue)",
            "",
            md_table(
                ["method", "plans", "median share", "mean share", "share >= 0.9", "worst"],
                [
                    [
                        m,
                        res[m]["n"],
                        f"{res[m]['median']:.2f}",
                        f"{res[m]['mean']:.2f}",
                        f"{100 * res[m]['ge_0.9']:.0f}%",
                        f"{res[m]['worst']:.2f}",
                    ]
                    for m in METHODS
                    if m in res
                ],
            ),
            "",
        ]
    tm = out["timing"]
    lines += [
        f"Runtime: {tm['total_s']:.0f}s in all; pretraining {tm['pretrain_s']:.1f}s, adaptation "
        f"{tm['adapt_s']:.1f}s, tabtune planning {tm['plan_s']:.1f}s "
        f"({1000 * tm['plan_s'] / max(1, len([p for p in out['plans'] if p['method'] == 'tabtune'])):.0f} ms a plan), "
        f"Hill fits {tm['hill_fit_s']:.1f}s.",
        "",
        "`tabtune` uses Hill curves identified by the bid lever (`budget.response: hill`); "
        "`tabtune-model` the budget task's learned model (`budget.response: model`). "
        "`shape-oracle` knows each channel's true Hill shape and true half-saturation spend on "
        "the date and estimates only the scale from the 28 days before it; `tabtune-absolute` is "
        "the previous budget task (absolute spend and the calendar as features); `proportional` "
        "assumes revenue proportional to spend at the recent ROAS. Reproduce: "
        "`python -m benchmarks.budget`.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--brands", type=int, default=100)
    p.add_argument("--days", type=int, default=730)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--heldout", type=int, default=16)
    p.add_argument("--min-history", type=int, default=365)
    p.add_argument("--test-days", type=int, default=60)
    p.add_argument("--dates", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="smoke run; JSON to budget-quick.json")
    args = p.parse_args(argv)
    if args.quick:
        args.brands, args.days, args.heldout, args.dates = 40, 500, 4, 2
    out = run(args)
    for scenario, res in out["results"].items():
        for m in METHODS:
            if m in res:
                r = res[m]
                print(
                    f"{scenario:5s} {m:13s} n={r['n']:3d} median={r['median']:+.2f} "
                    f"mean={r['mean']:+.2f} ge0.9={r['ge_0.9']:.2f} worst={r['worst']:+.2f}"
                )
    print(f"total {out['timing']['total_s']:.0f}s")
    if args.quick:
        write_raw("budget-quick", out)
    else:
        write_raw("budget", out)
        write_section("budget", render(out))


if __name__ == "__main__":
    main()
