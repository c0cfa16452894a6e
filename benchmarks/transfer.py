"""Transfer benchmark: does adapting a global model per brand beat fairly trained baselines?

Three data sets, each compared with :mod:`benchmarks.fair` (every method trained on all rows
before the cut the way ``auto`` is: early stopping on the newest ``validation_fraction`` of its
rows, then a refit on all of them with the round count found; tabtune's default boosting
parameters for every method, no tuning for any; the same loss for every method where the library
allows it):

1. the library's simulator (``tabtune.data.synth.simulate``), bid task (revenue per click,
   weighted by clicks), scored against the simulator's *true* value per click, on several
   simulations (``--seeds``); with the nightly refresh's cost measured on it;
2. :mod:`benchmarks.generator2`, a structurally different simulator (multiplicative brand
   effects and interactions, bids not proportional to value), same task and scoring
   (``--g2-seeds``);
3. real iPinYou market prices (:mod:`benchmarks.ipinyou`), skipped with a message when
   ``../shared/data/ipinyou`` is absent.

In each simulation, up to ``--per-bucket`` held-out brands per bucket (by their rows before
the cut: about 100, 1,000 and 10,000) are left out of pretraining; one time cut T
(``--test-days`` before the last day) splits every brand. ``auto`` is compared with each
baseline by per-brand paired ratios (median, geometric mean, bootstrap 95% interval,
:mod:`benchmarks.paired`).

Run: ``python -m benchmarks.transfer`` (``make bench``); ``--quick`` for a small smoke run that
writes nothing to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import (
    RAW_DIR,
    best_of,
    machine,
    md_table,
    regression_frame,
    simulated_bid_task,
    write_raw,
    write_section,
)
from benchmarks.fair import AUTO, Task, Unit, boosting_params, render_dataset, run_task
from tabtune import TabTuneRegressor
from tabtune.config import default_config
from tabtune.estimators import repeat_params

#: The boosting parameters of every method: tabtune's defaults (tabtune/params.py).
PARAMS: dict[str, Any] = boosting_params()
BUCKETS = {"~100": (60, 300), "~1,000": (600, 2500), "~10,000": (5000, 10**9)}
_ADAPTATION = default_config().adaptation
#: The refresh chooses a brand's strategy again after EVERY days, or once its rows grew by GROW.
EVERY = _ADAPTATION.reselect_every_days or 1
GROW = _ADAPTATION.reselect_when_rows_grow if _ADAPTATION.reselect_when_rows_grow else np.inf
#: tabtune's default min_rows_to_adapt (brands with fewer rows are served by the global model).
MIN_ROWS_TO_ADAPT = 100
#: Held-out brands a bucket should have over all simulations of a data set.
MIN_BRANDS = 24


def _pick_heldout(
    counts: pd.Series, per_bucket: int, rng: np.random.Generator
) -> dict[str, list[str]]:
    picked: dict[str, list[str]] = {}
    for name, (lo, hi) in BUCKETS.items():
        cands = sorted(counts[(counts >= lo) & (counts < hi)].index)
        if len(cands) > per_bucket:
            cands = sorted(rng.choice(cands, size=per_bucket, replace=False))
        picked[name] = list(cands)
    return picked


def bid_task_split(
    X: pd.DataFrame,
    y: np.ndarray,
    w: np.ndarray,
    truth: np.ndarray,
    before: np.ndarray,
    objective: str,
    per_bucket: int,
    seed: int,
) -> Task:
    """The bid task's rows split for :func:`benchmarks.fair.run_task`: held-out brands by
    bucket, the pool without them, and every brand's rows before / from the cut."""
    counts = X.loc[before, "brand_id"].value_counts()
    heldout = _pick_heldout(counts, per_bucket, np.random.default_rng(seed))
    held = {b for bs in heldout.values() for b in bs}
    is_held = X["brand_id"].isin(held).to_numpy()
    brand_ids = X["brand_id"].to_numpy()
    units = []
    for bucket, brands in heldout.items():
        for brand in brands:
            b = brand_ids == brand
            units.append(Unit(bucket, str(brand), b & before, b & ~before))
    return Task(
        X=X,
        y=y,
        weight=w,
        truth=truth,
        pool=before & ~is_held,
        pooled=before,
        units=units,
        objective=objective,
        time_column="date",
        categorical=["channel", "audience", "device", "vertical"],
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The three data sets, then the overhead measurements."""
    out: dict[str, Any] = {"args": vars(args), "seeds": {}, "brands": [], "params": PARAMS}
    for seed in args.seeds:
        one = run_seed(args, seed)
        out["brands"] += [dict(row, seed=seed) for row in one.pop("brands")]
        out["seeds"][str(seed)] = one
        out["objective"] = one["objective"]
    if args.g2_seeds:
        g2: dict[str, Any] = {"seeds": {}, "brands": []}
        for seed in args.g2_seeds:
            one = run_generator2(args, seed)
            g2["brands"] += [dict(row, seed=seed) for row in one.pop("brands")]
            g2["seeds"][str(seed)] = one
        out["generator2"] = g2
    if not args.no_ipinyou:
        from benchmarks.ipinyou import run_ipinyou

        quick = args.quick
        out["ipinyou"] = run_ipinyou(
            PARAMS,
            objective=out.get("objective") or "tweedie",
            gpboost=not args.no_gpboost,
            advertisers=args.ipinyou_advertisers,
            sizes=(1_000,) if quick else (1_000, 10_000),
            pool_rows=args.ipinyou_pool_rows,
            test_rows=args.ipinyou_test_rows,
        )
    if not args.no_overhead:
        out["overhead"] = overhead(args)
    return out


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One simulation of the library's simulator: every method, plus the refresh's costs."""
    t0 = time.perf_counter()
    sim = simulated_bid_task(args.brands, args.days, seed, args.test_days)
    objective = args.objective or sim.objective or "squared_error"
    task = bid_task_split(
        sim.X, sim.y, sim.weight, sim.truth, sim.before, objective, args.per_bucket, seed
    )
    print(
        f"seed {seed}: simulated {len(sim.X):,} rows for {args.brands} brands in "
        f"{time.perf_counter() - t0:.1f}s; cut {sim.cut.date()}; pool {task.pool.sum():,} rows; "
        f"{len(task.units)} held-out brands",
        flush=True,
    )
    extras = None if args.no_extras else _refresh_extras(sim.X, sim.y, sim.weight, sim.cut)
    one = run_task(task, PARAMS, gpboost=not args.no_gpboost, on_brand=extras, label=f"sim {seed} ")
    return {
        "timings": one["timings"],
        "rounds": one["rounds"],
        "notes": one["notes"],
        "brands": one["brands"],
        "cut": str(sim.cut.date()),
        "pool_rows": int(task.pool.sum()),
        "pooled_rows": int(task.pooled.sum()),
        "objective": objective,
    }


def run_generator2(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One simulation of :mod:`benchmarks.generator2`: every method, no cost measurements."""
    from benchmarks.generator2 import generate
    from tabtune.features import task_data

    task_cfg = default_config().task("bid")
    gen = generate(args.g2_brands, args.g2_days, seed=seed, test_days=args.test_days)
    obs = gen.rows.assign(true_value_per_click=gen.true_value_per_click)
    data = task_data(obs, task_cfg)
    dates = pd.to_datetime(data.X["date"])
    cut = dates.max() - pd.Timedelta(days=args.test_days - 1)
    objective = args.objective or task_cfg.objective or "squared_error"
    task = bid_task_split(
        data.X,
        data.y,
        data.weight,
        data.rows["true_value_per_click"].to_numpy(),
        (dates < cut).to_numpy(),
        objective,
        args.per_bucket,
        seed,
    )
    for unit in task.units:
        unit.info["odd_bid_response"] = unit.brand in gen.odd_brands
    print(
        f"generator2 seed {seed}: {len(data.X):,} rows for {args.g2_brands} brands; cut "
        f"{cut.date()}; {len(task.units)} held-out brands",
        flush=True,
    )
    one = run_task(task, PARAMS, gpboost=not args.no_gpboost, label=f"g2 {seed} ")
    return {
        "timings": one["timings"],
        "rounds": one["rounds"],
        "notes": one["notes"],
        "brands": one["brands"],
        "cut": str(cut.date()),
        "odd_brands": gen.odd_brands,
    }


def _refresh_extras(X: pd.DataFrame, y: np.ndarray, w: np.ndarray, cut: pd.Timestamp):
    """``on_brand`` for the simulator: the refresh's repeating night (with and without the
    leaf cache), the choice on one fold, and the oldest choice a refresh still repeats."""
    dates = pd.to_datetime(X["date"])

    def extras(row: dict[str, Any], unit: Unit, est: TabTuneRegressor, glob, score) -> None:
        tr, te = unit.train, unit.test
        repeat = repeat_params(est.strategy_, est.n_new_trees_)
        night_before = tr & (dates < cut - pd.Timedelta(days=1)).to_numpy()
        with tempfile.TemporaryDirectory() as cache:
            TabTuneRegressor(base_model=glob, n_jobs=1, leaf_cache=cache, **repeat).fit(
                X[night_before], y[night_before], sample_weight=w[night_before]
            )
            t, c = time.perf_counter(), time.process_time()
            again = TabTuneRegressor(base_model=glob, n_jobs=1, leaf_cache=cache, **repeat)
            again.fit(X[tr], y[tr], sample_weight=w[tr])
            row["repeat_seconds"] = time.perf_counter() - t
            row["repeat_cpu"] = time.process_time() - c
        row["repeat_matches"] = bool(np.allclose(again.predict(X[te]), est.predict(X[te])))
        c = time.process_time()
        uncached = TabTuneRegressor(base_model=glob, n_jobs=1, **repeat)
        uncached.fit(X[tr], y[tr], sample_weight=w[tr])
        row["repeat_uncached_cpu"] = time.process_time() - c
        row["cache_exact"] = uncached.model_sha256_ == again.model_sha256_
        one = TabTuneRegressor(base_model=glob, n_jobs=1, selection_folds=1)
        one.fit(X[tr], y[tr], sample_weight=w[tr])
        row["auto, 1 fold"] = score(one.predict(X[te]))
        recent = tr & (dates >= cut - pd.Timedelta(days=EVERY)).to_numpy()
        row["rows_per_day"] = float(recent.sum()) / EVERY
        old = tr & (dates < cut - pd.Timedelta(days=EVERY - 1)).to_numpy()
        row["rows_at_old_choice"] = int(old.sum())
        row["auto, oldest repeated choice"] = row[AUTO]  # the refresh chooses again
        if old.sum() > 0 and row["train_rows"] < (1 + GROW) * old.sum():
            chosen = TabTuneRegressor(base_model=glob, n_jobs=1)
            chosen.fit(X[old], y[old], sample_weight=w[old])
            stale = TabTuneRegressor(
                base_model=glob, n_jobs=1, **repeat_params(chosen.strategy_, chosen.n_new_trees_)
            )
            stale.fit(X[tr], y[tr], sample_weight=w[tr])
            row["auto, oldest repeated choice"] = score(stale.predict(X[te]))

    return extras


def _cycle_days(row: pd.Series) -> float:
    """Days between two choices of a brand in a refresh: ``EVERY``, or fewer when its rows
    grow by ``GROW`` sooner at the pace of its last ``EVERY`` days."""
    if row["rows_per_day"] <= 0 or not np.isfinite(GROW):
        return float(EVERY)
    return float(min(EVERY, max(1, int(np.ceil(GROW * row["train_rows"] / row["rows_per_day"])))))


def _methods(row: dict[str, Any]) -> list[str]:
    return [m for m in ("global", "brand-only", "pooled+id", "gpboost", "tabtune auto") if m in row]


def overhead(args: argparse.Namespace) -> dict[str, float]:
    """tabtune fit/predict vs the raw library on the same data and parameters."""
    import lightgbm as lgb

    n = args.overhead_rows
    X, y = regression_frame(n)
    rounds = 100
    est_params = dict(
        n_estimators=rounds,
        learning_rate=0.1,
        num_leaves=31,
        min_child_samples=20,
        reg_lambda=0.0,
        early_stopping_rounds=None,
        random_state=0,
    )
    lgb_params = {
        "objective": "regression",
        "learning_rate": 0.1,
        "num_leaves": 31,
        "verbose": -1,
        "seed": 0,
        "deterministic": True,
        "min_data_in_leaf": 20,
        "lambda_l2": 0.0,
    }
    out: dict[str, float] = {"rows": n, "rounds": rounds}
    out["fit_raw"] = best_of(
        lambda: lgb.train(lgb_params, lgb.Dataset(X, y), num_boost_round=rounds), 2
    )
    out["fit_tabtune"] = best_of(lambda: TabTuneRegressor(**est_params).fit(X, y), 2)
    booster = lgb.train(lgb_params, lgb.Dataset(X, y), num_boost_round=rounds)
    est = TabTuneRegressor(**est_params).fit(X, y)
    out["predict_raw"] = best_of(lambda: booster.predict(X), 3)
    out["predict_tabtune"] = best_of(lambda: est.predict(X), 3)
    m = 5000
    Xb, yb = X.iloc[:m], y.iloc[:m] + 1.0
    out["adapt_raw"] = best_of(
        lambda: lgb.train(lgb_params, lgb.Dataset(Xb, yb), num_boost_round=50, init_model=booster),
        3,
    )
    out["adapt_tabtune"] = best_of(
        lambda: TabTuneRegressor(
            base_model=est,
            strategy="continue",
            adapt_n_estimators=50,
            early_stopping_rounds=None,
            learning_rate=0.1,
            num_leaves=31,
            min_child_samples=20,
            reg_lambda=0.0,
            validation_fraction=0.2,
        ).fit(Xb, yb),
        3,
    )
    for k in ("fit", "predict", "adapt"):
        out[f"{k}_ratio"] = out[f"{k}_tabtune"] / out[f"{k}_raw"]
    print(
        "overhead: "
        + ", ".join(f"{k} {out[k + '_ratio']:.2f}x" for k in ("fit", "predict", "adapt")),
        flush=True,
    )
    return out


def _cost_lines(out: dict[str, Any], res: pd.DataFrame) -> list[str]:
    """The refresh's cost on the simulator (needs the ``on_brand`` extras).

    Long because it is one sub-section's text and tables, assembled in reading order.
    """
    seeds = sorted(out["seeds"], key=int)
    res = res.copy()
    res["cycle_days"] = res.apply(_cycle_days, axis=1)
    res["night_cpu"] = (res["adapt_cpu"] + (res["cycle_days"] - 1) * res["repeat_cpu"]) / res[
        "cycle_days"
    ]
    cost_rows, nights, pooled_cpus = [], [], []
    # The pooled refit learns every brand of the store: it is set against a night of all of
    # them, not of the held-out brands (issue 16: "24 adapted brands against a retrain of 120").
    store_brands = int(out["args"]["brands"])
    for seed in seeds:
        part = res[res["seed"] == int(seed)]
        t = out["seeds"][seed]["timings"]
        night = part["night_cpu"].sum()
        nights.append(night / len(part))
        pooled_cpus.append(t["pooled_with_id_refit_cpu"])
        cost_rows.append(
            [
                seed,
                f"{out['seeds'][seed]['pooled_rows']:,}",
                f"{t['pooled_with_id_refit_cpu']:.1f}",
                f"{t['pooled_with_id_cpu']:.1f}",
                f"{t.get('pretrain_global_cpu', float('nan')):.1f}",
                f"{len(part)} brands, {int(part['train_rows'].sum()):,} rows",
                f"{part['adapt_cpu'].sum():.1f}",
                f"{part['repeat_cpu'].sum():.1f}",
                f"{part['repeat_uncached_cpu'].sum():.1f}",
                f"{part['cycle_days'].mean():.1f}",
                f"{night:.1f}",
                f"{night / len(part) * store_brands:.1f}",
                f"**{t['pooled_with_id_refit_cpu'] / max(night / len(part) * store_brands, 1e-9):.2f}x**",
            ]
        )
    folds_rows, stale_rows = [], []
    for bucket in BUCKETS:
        part = res[res["bucket"] == bucket]
        if part.empty:
            continue
        one, three = part["auto, 1 fold"].mean(), part[AUTO].mean()
        folds_rows.append(
            [bucket, f"{one:.3f}", f"{three:.3f}", f"{100 * (three - one) / one:+.1f}%"]
        )
        stale = part["auto, oldest repeated choice"].mean()
        stale_rows.append(
            [
                bucket,
                f"{three:.3f}",
                f"{stale:.3f}",
                f"{100 * (stale - three) / three:+.1f}%",
                f"{int((part['cycle_days'] < EVERY).sum())} of {len(part)}",
            ]
        )
    per_brand_night = float(np.mean(nights))
    break_even = float(np.mean(pooled_cpus)) / max(per_brand_night, 1e-9)
    return [
        "`auto` scores every candidate strategy on 3 rolling-origin folds of the brand's rows "
        "(`selection_folds`, default 3). The same with the choice made on one holdout (the "
        "newest 20% of rows, `selection_folds=1`), mean scores:",
        "",
        md_table(["bucket", "auto, 1 fold", "auto, 3 folds", "change"], folds_rows),
        "",
        "#### Cost",
        "",
        "CPU seconds (all threads). The pooled model's retrain is its refit on all rows with "
        "the round count known (one fit; with the early-stopping fit that found it: the next "
        "column). Each brand adaptation runs on one thread (`n_jobs=1`). A nightly refresh "
        f"lets `auto` choose again after {EVERY} days (`adaptation.reselect_every_days`), or "
        f"sooner once the brand's rows grew by {GROW:.0%} (`adaptation.reselect_when_rows_grow`);"
        " the other nights repeat the champion's strategy and new-tree count in one fit "
        f"(same predictions as the choosing fit: {int(res['repeat_matches'].sum())} of "
        f"{len(res)} brands), starting from the base model's leaf indices kept by the night "
        f"before (`leaf_cache`; the same model as without it: {int(res['cache_exact'].sum())} "
        f"of {len(res)} brands, byte for byte). A brand's average night is (1 choosing + cycle "
        "- 1 repeating nights) / cycle; the seed's average night sums its held-out brands; "
        f"the store's night is {store_brands} brands (every brand of the store, the brands the "
        "pooled refit learns) at the held-out brands' mean. The held-out brands are drawn by "
        "size bucket, not as the store's brands are: `python -m benchmarks.refresh` measures a "
        "night of every brand of a store directly (section Refresh: brands per minute).",
        "",
        md_table(
            [
                "seed",
                "pooled+id rows",
                "retrain pooled+id (refit)",
                "pooled+id with early stopping",
                "pretrain global",
                "adapted (held-out brands)",
                "choosing night",
                "repeating night",
                "repeating, no leaf cache",
                "mean cycle (days)",
                "average night (held-out brands)",
                f"night of the store's {store_brands} brands",
                "pooled refit / the store's night",
            ],
            cost_rows,
        ),
        "",
        f"An average night costs {per_brand_night:.2f} CPU s per brand (median brand "
        f"{int(res['train_rows'].median()):,} rows): the pooled refit costs as much as about "
        f"{break_even:.0f} brands' average nights. Median single brand: `auto` choosing "
        f"{res['adapt_cpu'].median():.2f} CPU s, repeating {res['repeat_cpu'].median():.2f}, "
        f"a brand-only model (early stopping + refit) {res['brand_only_cpu'].median():.2f}.",
        "",
        f"Is an old choice as good as a fresh one? Each brand's choice made {EVERY - 1} days "
        "before the cut, repeated at the cut on all rows, unless its rows grew by "
        f"{GROW:.0%} or more since (then the refresh chooses again: the fresh score):",
        "",
        md_table(
            [
                "bucket",
                "auto, fresh choice",
                "auto, oldest repeated choice",
                "change",
                f"brands choosing again before {EVERY} days",
            ],
            stale_rows,
        ),
    ]


def _overhead_lines(o: dict[str, Any]) -> list[str]:
    rows = [
        [f"fit {o['rows']:,} rows", f"{o['fit_raw']:.2f}", f"{o['fit_tabtune']:.2f}"],
        [f"predict {o['rows']:,} rows", f"{o['predict_raw']:.2f}", f"{o['predict_tabtune']:.2f}"],
        [
            "adapt one brand (5,000 rows, 50 rounds)",
            f"{o['adapt_raw']:.3f}",
            f"{o['adapt_tabtune']:.3f}",
        ],
    ]
    for row, k in zip(rows, ("fit", "predict", "adapt"), strict=True):
        row.append(f"{o[k + '_ratio']:.2f}")
    return [
        "### Overhead against raw LightGBM",
        "",
        f"Same data ({o['rows']:,} rows, 8 numeric + 1 categorical feature), same parameters, "
        f"{o['rounds']} rounds, no early stopping; best of 2-3 runs.",
        "",
        md_table(["operation", "raw LightGBM (s)", "tabtune (s)", "ratio"], rows),
    ]


def _verdicts(summaries: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for name, summary in summaries.items():
        for bucket, s in summary.items():
            rows.append(
                [
                    name,
                    bucket,
                    str(s["brands"]),
                    s["best_baseline"],
                    f"{s['geomean_vs_best']:.3f}",
                    "**misses**" if s["miss"] else "yes",
                ]
            )
    return rows


#: The runs the pooled section combines: the main run and the fresh simulations.
POOLED_RUNS = ("transfer", "transfer-fresh")


def render_pooled(raws: dict[str, dict[str, Any]]) -> str:
    """The simulated brands of several runs (their raw JSON by section name) compared as one
    set: about twice the brands per bucket, so a narrower interval than either run's."""
    data = {
        "simulator": [(r["brands"], r["seeds"]) for r in raws.values()],
        "generator2": [
            (r["generator2"]["brands"], r["generator2"]["seeds"])
            for r in raws.values()
            if r.get("generator2")
        ],
    }
    summaries: dict[str, dict[str, Any]] = {}
    texts, described = [], []
    for name, parts in data.items():
        if not parts:
            continue
        res = pd.concat([pd.DataFrame(brands) for brands, _ in parts], ignore_index=True)
        text, summaries[name] = render_dataset(res, list(BUCKETS), min_brands=MIN_BRANDS)
        seeds = sorted({seed for _, by_seed in parts for seed in by_seed}, key=int)
        described.append(f"{name} seeds {', '.join(seeds)}")
        texts += ["", f"### {name}, {len(seeds)} simulations", "", text]
    lines = [
        "## Transfer: the main run and the fresh simulations pooled",
        "",
        "The held-out brands of the sections "
        + " and ".join(f"`{n}`" for n in raws)
        + f" as one set ({'; '.join(described)}), compared the same way: about twice the "
        "brands per bucket, so a narrower interval than either run's. Written by "
        "`python -m benchmarks.transfer --section transfer-fresh` from both runs' raw JSON.",
        "",
        md_table(
            ["data", "bucket", "brands", "best baseline", "auto / best (geo. mean)", "<= 1.00"],
            _verdicts(summaries),
        ),
        *texts,
    ]
    return "\n".join(lines)


def render(out: dict[str, Any], command: str) -> str:
    """The section of docs/benchmarks.md (and ``out["summary"]`` for the raw JSON).

    Long because it is the section's text, assembled in reading order.
    """
    res = pd.DataFrame(out["brands"])
    seeds = sorted(out["seeds"], key=int)
    p = out.get("params", PARAMS)
    notes = sorted({n for s in out["seeds"].values() for n in s.get("notes", [])})
    summaries: dict[str, dict[str, Any]] = {}
    sim_text, summaries["simulator"] = render_dataset(res, list(BUCKETS), min_brands=MIN_BRANDS)
    section = (out.get("args") or {}).get("section", "transfer")
    title = "## Transfer: `auto` against fairly trained baselines"
    fresh = []
    if section != "transfer":
        title += f" (`{section}`: other simulations)"
        fresh = [
            "The same benchmark on simulations whose seeds (simulator "
            + ", ".join(seeds)
            + "; generator2 "
            + ", ".join(sorted((out.get("generator2") or {}).get("seeds", {}), key=int))
            + ") were never used to choose a method or a constant of tabtune: a check that "
            "the figures of the main run are not fitted to its brands.",
            "",
        ]
    lines = [
        title,
        "",
        f"Command: `{command}`. Machine: {machine()}.",
        "",
        *fresh,
        "Every method is trained on all of its rows before the cut the way `auto` trains its "
        "choice: early stopping on the newest 20% of those rows, then a refit on all of them "
        "with the round count found. The global model (pool without the held-out brands; "
        "`auto` adapts it), the brand-only model and the pooled model with `brand_id` as a "
        "categorical (pool plus the held-out brands' rows before the cut) alike. Same "
        "boosting parameters for all, tabtune's defaults (`tabtune/params.py`: "
        + ", ".join(f"{k} {p[k]}" for k in ("learning_rate", "num_leaves", "min_child_samples"))
        + f", reg_lambda {p['reg_lambda']}, at most {p['n_estimators']} rounds, early stopping "
        f"after {p['early_stopping_rounds']}), no tuning for any method, and the same "
        f"`{out.get('objective')}` loss"
        + (" (" + " ".join(notes) + ")" if notes else "")
        + ". Score: a brand's weighted MAE on its rows from the cut on, divided by the "
        "weighted mean of the truth (lower is better).",
        "",
        "Does `auto` match or beat the best baseline (geometric mean of per-brand ratios "
        "`auto` / baseline <= 1.00)?",
        "",
    ]
    g2_text = ip_text = None
    if out.get("generator2"):
        g2_res = pd.DataFrame(out["generator2"]["brands"])
        g2_text, summaries["generator2"] = render_dataset(
            g2_res, list(BUCKETS), min_brands=MIN_BRANDS
        )
    ip = out.get("ipinyou")
    if ip:
        ip_text, summaries["iPinYou"] = render_dataset(
            pd.DataFrame(ip["brands"]), ip["buckets"], min_brands=len(ip["advertisers"])
        )
    out["summary"] = summaries
    lines += [
        md_table(
            ["data", "bucket", "brands", "best baseline", "auto / best (geo. mean)", "<= 1.00"],
            _verdicts(summaries),
        ),
        "",
        "### 1. The library's simulator",
        "",
        f"`tabtune.data.synth.simulate`, {out['args']['brands']} brands x "
        f"{out['args']['days']} days, {len(seeds)} simulations (seeds {', '.join(seeds)}), "
        f"up to {out['args']['per_bucket']} held-out brands per bucket each; bid task "
        "(revenue per click, click-weighted) scored against the simulator's true value per "
        f"click on the last {out['args']['test_days']} days (cuts "
        + ", ".join(out["seeds"][s]["cut"] for s in seeds)
        + "). Its bids follow value (`reference_bid` is close to an oracle feature here).",
        "",
        sim_text,
    ]
    if "repeat_cpu" in res:
        lines += ["", *_cost_lines(out, res)]
    lines += ["", "### 2. A second, structurally different simulator", ""]
    if g2_text is not None:
        g2 = out["generator2"]
        g2_seeds = sorted(g2["seeds"], key=int)
        lines += [
            f"`benchmarks/generator2.py`, {out['args']['g2_brands']} brands x "
            f"{out['args']['g2_days']} days, {len(g2_seeds)} simulations (seeds "
            f"{', '.join(g2_seeds)}): multiplicative brand effects, brand x channel x weekday "
            "and brand x audience interactions, a trend break per brand, about one brand in "
            "eight whose value responds to the bid the other way round, bids only weakly "
            "related to value, Gamma order values with rare spikes. Same task, split and "
            "scoring as above.",
            "",
            g2_text,
        ]
    else:
        lines.append("Not run (`--g2-seeds` empty).")
    lines += ["", "### 3. Real data: iPinYou market prices", ""]
    if ip_text is not None:
        lines += [
            "Five real advertisers' RTB auctions (`../shared/data/ipinyou`, not in this "
            "repository). For each advertiser: the global model pooled on the other four"
            + (f" ({ip['pool_rows']:,} auctions each)" if ip.get("pool_rows") else "")
            + "; its first 1,000 or 10,000 auctions are every method's training rows; every "
            "later auction is scored"
            + (f" ({ip['test_rows']:,} sampled)" if ip.get("test_rows") else "")
            + ". Target: the market price; features: `pctr`, the episode and the auction's "
            "position in it. No truth exists: the score is the MAE against the observed "
            "prices divided by their mean. One brand per advertiser: the bootstrap interval "
            "over five brands is rough.",
            "",
            ip_text,
        ]
    else:
        lines.append(
            "Skipped: `../shared/data/ipinyou` was not found (or `--no-ipinyou`); see "
            "`benchmarks/ipinyou.py`."
        )
    if "overhead" in out:
        lines += ["", *_overhead_lines(out["overhead"])]
    return "\n".join(lines)


def _raw_run(name: str, current: str, out: dict[str, Any]) -> dict[str, Any] | None:
    """A run's raw figures: this run's ``out``, or the JSON an earlier run wrote (None)."""
    if name == current:
        return out
    path = RAW_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--brands", type=int, default=120)
    p.add_argument("--days", type=int, default=730)
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[11, 12, 13], help="one simulation per seed"
    )
    p.add_argument("--test-days", type=int, default=60)
    p.add_argument("--per-bucket", type=int, default=10)
    p.add_argument("--g2-brands", type=int, default=120)
    p.add_argument("--g2-days", type=int, default=540)
    p.add_argument(
        "--g2-seeds", type=int, nargs="*", default=[21, 22, 23], help="generator2 simulations"
    )
    p.add_argument("--no-ipinyou", action="store_true", help="skip the real-data benchmark")
    p.add_argument("--ipinyou-advertisers", nargs="+", default=None)
    p.add_argument("--ipinyou-pool-rows", type=int, default=None)
    p.add_argument("--ipinyou-test-rows", type=int, default=None)
    p.add_argument("--overhead-rows", type=int, default=1_000_000)
    p.add_argument("--no-overhead", action="store_true")
    p.add_argument("--no-extras", action="store_true", help="skip the refresh-cost measurements")
    p.add_argument("--no-gpboost", action="store_true")
    p.add_argument(
        "--objective",
        default=None,
        help="boosting objective for every method (default: the bid task's)",
    )
    p.add_argument("--quick", action="store_true", help="small smoke run (not written to docs)")
    p.add_argument(
        "--section",
        default="transfer",
        help="section of docs/benchmarks.md (and docs/benchmarks/<section>.json) to write",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.brands, args.days, args.per_bucket = min(args.brands, 30), min(args.days, 365), 1
        args.g2_brands, args.g2_days = min(args.g2_brands, 30), min(args.g2_days, 300)
        args.seeds, args.g2_seeds = args.seeds[:1], args.g2_seeds[:1]
        args.no_overhead = True
        args.ipinyou_advertisers = args.ipinyou_advertisers or ["2259"]
        args.ipinyou_pool_rows = args.ipinyou_pool_rows or 3_000
        args.ipinyou_test_rows = args.ipinyou_test_rows or 3_000
    out = run(args)
    text = render(out, "python -m benchmarks.transfer" + (" --quick" if args.quick else ""))
    write_raw(args.section + ("-quick" if args.quick else ""), out)
    if not args.quick:
        command = "python -m benchmarks.transfer" + (
            ""
            if args.section == "transfer"
            else " " + " ".join(sys.argv[1:] if argv is None else argv)
        )
        write_section(args.section, render(out, f"make bench  # {command}"))
        if args.section in POOLED_RUNS:
            raws = {name: _raw_run(name, args.section, out) for name in POOLED_RUNS}
            found = {name: raw for name, raw in raws.items() if raw is not None}
            if len(found) == len(POOLED_RUNS):
                write_section("transfer-pooled", render_pooled(found))
        print("wrote docs/benchmarks.md")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
