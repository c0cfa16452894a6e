"""Transfer benchmark: does adapting a global model per brand beat the alternatives?

Data: the simulator (``tabtune.data.synth.simulate``), bid task (revenue per click, weighted by
clicks). One time cut T (``--test-days`` before the last day) splits everything: models learn
from rows before T and are scored on the brand's rows from T on, against the simulator's
*true* value per click (click-weighted MAE, relative to the brand's mean true value).

Held-out brands are never in pretraining. They are grouped by their rows before T into buckets
around 100, 1,000 and 10,000 rows, up to ``--per-bucket`` (8) per bucket. The whole benchmark
runs on several simulations (``--seeds``, default 11 12 13) and pools their brands: with 5
brands of one simulation per bucket, one brand moved a bucket's mean by 30%. Methods, all with
the same boosting parameters:

* ``global``   — the pretrained global model, as is (the brand is unknown to it);
* ``brand-only`` — a model trained on the brand's own rows only;
* ``pooled+id`` — one model on the pool plus every held-out brand's training rows, with
  ``brand_id`` as a categorical feature (the model a team would retrain nightly instead);
* ``gpboost``  — GPBoost: shared trees + a brand random effect, same pooled training rows
  (optional: skipped when gpboost is not installed);
* ``tabtune auto`` — ``TabTuneRegressor(base_model=global).fit(brand rows)``.

Run: ``python -m benchmarks.transfer`` (``make bench``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import (
    best_of,
    machine,
    md_table,
    regression_frame,
    simulated_bid_task,
    weighted_mae,
    write_raw,
    write_section,
)
from tabtune import TabTuneRegressor
from tabtune.config import default_config
from tabtune.estimators import repeat_params
from tabtune.optional import optional_import

PARAMS: dict[str, Any] = dict(
    n_estimators=600,
    learning_rate=0.05,
    num_leaves=63,
    min_child_samples=40,
    reg_lambda=1.0,
    early_stopping_rounds=50,
    random_state=0,
)
BUCKETS = {"~100": (60, 300), "~1,000": (600, 2500), "~10,000": (5000, 10**9)}
_ADAPTATION = default_config().adaptation
#: The refresh chooses a brand's strategy again after EVERY days, or once its rows grew by GROW.
EVERY = _ADAPTATION.reselect_every_days or 1
GROW = _ADAPTATION.reselect_when_rows_grow if _ADAPTATION.reselect_when_rows_grow else np.inf
#: tabtune's default min_rows_to_adapt (brands with fewer rows are served by the global model).
MIN_ROWS_TO_ADAPT = 100


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


def _X(data, cols: list[str]) -> pd.DataFrame:
    return data.X[cols]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every seed of ``args.seeds`` (one simulation each), then the overhead measurements."""
    out: dict[str, Any] = {"args": vars(args), "seeds": {}, "brands": []}
    for seed in args.seeds:
        one = run_seed(args, seed)
        out["brands"] += [dict(row, seed=seed) for row in one.pop("brands")]
        out["seeds"][str(seed)] = one
        out["objective"] = one["objective"]
    if not args.no_overhead:
        out["overhead"] = overhead(args)
    return out


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One simulation: pretrain, baselines and ``auto`` for its held-out brands."""
    t0 = time.perf_counter()
    sim = simulated_bid_task(args.brands, args.days, seed, args.test_days)
    PARAMS["objective"] = args.objective or sim.objective or "squared_error"
    X, y, w, truth, before, cut = sim.X, sim.y, sim.weight, sim.truth, sim.before, sim.cut
    dates = pd.to_datetime(X["date"])
    train_counts = X.loc[before, "brand_id"].value_counts()
    rng = np.random.default_rng(seed)
    heldout = _pick_heldout(train_counts, args.per_bucket, rng)
    held = {b for bs in heldout.values() for b in bs}
    is_held = X["brand_id"].isin(held).to_numpy()
    pool = before & ~is_held
    print(
        f"seed {seed}: simulated {len(X):,} rows with clicks for {args.brands} brands in "
        f"{time.perf_counter() - t0:.1f}s; cut {cut.date()}; pool {pool.sum():,} rows; held out "
        + ", ".join(f"{k}: {len(v)}" for k, v in heldout.items()),
        flush=True,
    )

    timings: dict[str, float] = {}
    t, c = time.perf_counter(), time.process_time()
    glob = TabTuneRegressor(group_column="brand_id", time_column="date", **PARAMS)
    glob.fit(X[pool], y[pool], sample_weight=w[pool])
    timings["pretrain_global"] = time.perf_counter() - t
    timings["pretrain_global_cpu"] = time.process_time() - c
    print(
        f"pretrained global on {pool.sum():,} rows in {timings['pretrain_global']:.1f}s", flush=True
    )

    # one pooled model with brand_id as a categorical feature (includes held-out training rows)
    pooled_rows = before
    feat = [c for c in X.columns if c not in ("brand_id", "date")]
    X_id = X[["date", "brand_id", *feat]]
    t, c = time.perf_counter(), time.process_time()
    pooled = TabTuneRegressor(time_column="date", **PARAMS)
    pooled.fit(X_id[pooled_rows], y[pooled_rows], sample_weight=w[pooled_rows])
    timings["pooled_with_id"] = time.perf_counter() - t
    timings["pooled_with_id_cpu"] = time.process_time() - c
    print(
        f"pooled+id on {pooled_rows.sum():,} rows in {timings['pooled_with_id']:.1f}s", flush=True
    )

    gpb_model = None
    if not args.no_gpboost:
        gpb_model = _fit_gpboost(X, y, w, pooled_rows, feat, timings)

    results = []
    for bucket, brands in heldout.items():
        for brand in brands:
            b = (X["brand_id"] == brand).to_numpy()
            tr, te = b & before, b & ~before
            if te.sum() == 0:
                continue
            row: dict[str, Any] = {
                "bucket": bucket,
                "brand": brand,
                "train_rows": int(tr.sum()),
                "test_rows": int(te.sum()),
            }
            scale = float(np.average(truth[te], weights=w[te]))

            def score(pred: np.ndarray) -> float:
                return weighted_mae(pred, truth[te], w[te]) / scale  # noqa: B023

            row["global"] = score(glob.predict(X[te]))
            t, c = time.perf_counter(), time.process_time()
            own = TabTuneRegressor(time_column="date", n_jobs=1, **PARAMS).fit(
                X[tr], y[tr], sample_weight=w[tr]
            )
            row["brand_only_seconds"] = time.perf_counter() - t
            row["brand_only_cpu"] = time.process_time() - c
            row["brand-only"] = score(own.predict(X[te]))
            row["pooled+id"] = score(pooled.predict(X_id[te]))
            if gpb_model is not None:
                row["gpboost"] = score(_predict_gpboost(gpb_model, X, te, feat))
            t, c = time.perf_counter(), time.process_time()
            est = TabTuneRegressor(base_model=glob, n_jobs=1).fit(X[tr], y[tr], sample_weight=w[tr])
            row["adapt_seconds"] = time.perf_counter() - t
            row["adapt_cpu"] = time.process_time() - c
            row["tabtune auto"] = score(est.predict(X[te]))
            row["strategy"] = est.strategy_
            # The other nights of a cycle: the refresh repeats this choice in one fit, with the
            # base's leaf indices of the brand's rows kept from the night before (leaf_cache).
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
            # The choice on one holdout (selection_folds=1), as before rolling folds.
            one = TabTuneRegressor(base_model=glob, n_jobs=1, selection_folds=1)
            row["auto, 1 fold"] = score(one.fit(X[tr], y[tr], sample_weight=w[tr]).predict(X[te]))
            # The refresh's policy: how fast the brand's rows grow, and the oldest choice a
            # refresh still repeats (made EVERY - 1 days before the cut) repeated at the cut.
            recent = tr & (dates >= cut - pd.Timedelta(days=EVERY)).to_numpy()
            row["rows_per_day"] = float(recent.sum()) / EVERY
            old = tr & (dates < cut - pd.Timedelta(days=EVERY - 1)).to_numpy()
            row["rows_at_old_choice"] = int(old.sum())
            row["auto, oldest repeated choice"] = row["tabtune auto"]  # the refresh chooses again
            if old.sum() > 0 and row["train_rows"] < (1 + GROW) * old.sum():
                chosen = TabTuneRegressor(base_model=glob, n_jobs=1)
                chosen.fit(X[old], y[old], sample_weight=w[old])
                stale = TabTuneRegressor(
                    base_model=glob,
                    n_jobs=1,
                    **repeat_params(chosen.strategy_, chosen.n_new_trees_),
                )
                stale.fit(X[tr], y[tr], sample_weight=w[tr])
                row["auto, oldest repeated choice"] = score(stale.predict(X[te]))
            results.append(row)
            print(
                f"  {seed} {bucket:>8} {brand}: rows {row['train_rows']:>6}, strategy {row['strategy']:<15} "
                + " ".join(f"{m} {row[m]:.3f}" for m in _methods(row)),
                flush=True,
            )
    return {
        "timings": timings,
        "brands": results,
        "cut": str(cut.date()),
        "pool_rows": int(pool.sum()),
        "pooled_rows": int(pooled_rows.sum()),
        "objective": PARAMS["objective"],
    }


def _fit_gpboost(X, y, w, rows, feat, timings):
    try:
        gpb = optional_import("gpboost", extra="bench", purpose="the GPBoost baseline")
    except ImportError as exc:
        print(f"{exc}: skipping", flush=True)
        return None
    cats = ["channel", "audience", "device", "vertical"]
    Xn = X.loc[rows, feat].copy()
    codes = {c: {v: i for i, v in enumerate(sorted(X[c].unique()))} for c in cats}
    for c in cats:
        Xn[c] = Xn[c].map(codes[c]).astype(float)
    t = time.perf_counter()
    gp_model = gpb.GPModel(
        group_data=X.loc[rows, "brand_id"].to_numpy(), likelihood="gaussian", weights=w[rows]
    )
    dtrain = gpb.Dataset(Xn, y[rows], categorical_feature=[feat.index(c) for c in cats])
    params = {
        "learning_rate": PARAMS["learning_rate"],
        "num_leaves": PARAMS["num_leaves"],
        "min_data_in_leaf": PARAMS["min_child_samples"],
        "lambda_l2": PARAMS["reg_lambda"],
        "verbose": -1,
    }
    booster = gpb.train(params=params, train_set=dtrain, gp_model=gp_model, num_boost_round=300)
    timings["gpboost"] = time.perf_counter() - t
    print(f"gpboost on {rows.sum():,} rows in {timings['gpboost']:.1f}s", flush=True)
    return booster, codes, cats


def _predict_gpboost(model, X, rows, feat) -> np.ndarray:
    booster, codes, cats = model
    Xn = X.loc[rows, feat].copy()
    for c in cats:
        Xn[c] = Xn[c].map(codes[c]).astype(float)
    pred = booster.predict(
        data=Xn, group_data_pred=X.loc[rows, "brand_id"].to_numpy(), pred_latent=True
    )
    return np.asarray(pred["fixed_effect"]) + np.asarray(pred["random_effect_mean"])


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


def _miss(part: pd.DataFrame, means: dict[str, float], best_base: float, bucket: str) -> str:
    """Why a bucket misses: its gap, the brand that costs the most, brands served globally."""
    best = min((m for m in means if m != "tabtune auto"), key=means.__getitem__)
    gap = part["tabtune auto"] - part[best]
    worst = part.loc[gap.idxmax()]
    rest = part.drop(index=gap.idxmax())
    text = (
        f"{bucket} by {100 * (means['tabtune auto'] - best_base) / best_base:+.1f}% against "
        f"{best}; brand {worst['brand']} ({int(worst['train_rows']):,} rows, `auto` chose "
        f"{worst['strategy']}) scores {worst['tabtune auto']:.3f} against {worst[best]:.3f}"
        + (
            f" (the other {len(rest)} brands: `auto` {rest['tabtune auto'].mean():.3f}, "
            f"{best} {rest[best].mean():.3f})"
            if len(rest)
            else ""
        )
    )
    served = part[part["train_rows"] < MIN_ROWS_TO_ADAPT]
    if len(served):
        text += (
            f"; {len(served)} of its brands have fewer than {MIN_ROWS_TO_ADAPT} rows and are "
            "served by the global model by design ("
            + ", ".join(
                f"{r['brand']} {r['tabtune auto']:.3f} vs {r[best]:.3f}"
                for _, r in served.iterrows()
            )
            + ")"
        )
    return text + "."


def _bucket_means(res: pd.DataFrame, methods: list[str]) -> list[tuple[str, pd.DataFrame, dict]]:
    """(bucket, its rows, method means) for the buckets present in ``res``."""
    out = []
    for bucket in BUCKETS:
        part = res[res["bucket"] == bucket]
        if not part.empty:
            out.append((bucket, part, {m: part[m].mean() for m in methods}))
    return out


def _best_baseline(means: dict[str, float]) -> float:
    return min(v for k, v in means.items() if k != "tabtune auto")


def _gap(means: dict[str, float]) -> float:
    """``auto`` against the best baseline, in percent (negative: auto is better)."""
    best = _best_baseline(means)
    return 100 * (means["tabtune auto"] - best) / best


def render(out: dict[str, Any], command: str) -> str:
    res = pd.DataFrame(out["brands"])
    seeds = sorted(out["seeds"], key=int)
    methods = [
        m for m in ("global", "brand-only", "pooled+id", "gpboost", "tabtune auto") if m in res
    ]
    rows = []
    misses = []
    for bucket, part, means in _bucket_means(res, methods):
        if means["tabtune auto"] > _best_baseline(means):
            misses.append(_miss(part, means, _best_baseline(means), bucket))
        rows.append(
            [bucket, len(part), int(part["train_rows"].median())]
            + [
                f"**{means[m]:.3f}**" if means[m] == min(means.values()) else f"{means[m]:.3f}"
                for m in methods
            ]
            + [f"{_gap(means):+.1f}%"]
        )
    table = md_table(
        ["bucket", "brands", "median train rows", *methods, "auto vs best baseline"], rows
    )
    if misses:
        table += "\n\nWhere `auto` misses: " + " ".join(misses)
    seed_rows, seed_misses = [], []
    for bucket in BUCKETS:
        cells = []
        for seed in seeds:
            part = res[(res["bucket"] == bucket) & (res["seed"] == int(seed))]
            if part.empty:
                cells.append("-")
                continue
            means = {m: part[m].mean() for m in methods}
            best = min((m for m in means if m != "tabtune auto"), key=means.__getitem__)
            cells.append(
                f"{means['tabtune auto']:.3f} vs {means[best]:.3f} {best} "
                f"({_gap(means):+.1f}%, {len(part)} brands)"
            )
            if means["tabtune auto"] > means[best]:
                seed_misses.append(
                    f"seed {seed}, " + _miss(part, means, _best_baseline(means), bucket)
                )
        seed_rows.append([bucket, *cells])
    folds_rows = []
    if "auto, 1 fold" in res:
        for bucket, part, _ in _bucket_means(res, methods):
            one, three = part["auto, 1 fold"].mean(), part["tabtune auto"].mean()
            folds_rows.append(
                [bucket, f"{one:.3f}", f"{three:.3f}", f"{100 * (three - one) / one:+.1f}%"]
            )
    strat = res.groupby("bucket")["strategy"].agg(
        lambda s: ", ".join(f"{k} {v}" for k, v in s.value_counts().items())
    )
    res["cycle_days"] = res.apply(_cycle_days, axis=1)
    res["night_cpu"] = (res["adapt_cpu"] + (res["cycle_days"] - 1) * res["repeat_cpu"]) / res[
        "cycle_days"
    ]
    cost_rows = []
    nights, pooled_cpus = [], []
    for seed in seeds:
        part = res[res["seed"] == int(seed)]
        t = out["seeds"][seed]["timings"]
        choose, repeat = part["adapt_cpu"].sum(), part["repeat_cpu"].sum()
        uncached = part["repeat_uncached_cpu"].sum() if "repeat_uncached_cpu" in part else np.nan
        night = part["night_cpu"].sum()
        nights.append(night / len(part))
        pooled_cpus.append(t["pooled_with_id_cpu"])
        cost_rows.append(
            [
                seed,
                f"{out['seeds'][seed]['pooled_rows']:,}",
                f"{t['pooled_with_id_cpu']:.1f}",
                f"{t['pretrain_global_cpu']:.1f}",
                f"{len(part)} brands, {int(part['train_rows'].sum()):,} rows",
                f"{choose:.1f}",
                f"{repeat:.1f}",
                f"{uncached:.1f}",
                f"{part['cycle_days'].mean():.1f}",
                f"{night:.1f}",
                f"**{t['pooled_with_id_cpu'] / max(night, 1e-9):.1f}x**",
            ]
        )
    stale_rows = []
    if "auto, oldest repeated choice" in res:
        for bucket, part, _ in _bucket_means(res, methods):
            fresh, stale = part["tabtune auto"].mean(), part["auto, oldest repeated choice"].mean()
            stale_rows.append(
                [
                    bucket,
                    f"{fresh:.3f}",
                    f"{stale:.3f}",
                    f"{100 * (stale - fresh) / fresh:+.1f}%",
                    f"{int((part['cycle_days'] < EVERY).sum())} of {len(part)}",
                ]
            )
    per_brand_night = float(np.mean(nights))
    break_even = float(np.mean(pooled_cpus)) / max(per_brand_night, 1e-9)
    first = seeds[0]
    lines = [
        "## Transfer: global vs adapted vs baselines",
        "",
        f"Command: `{command}`. Machine: {machine()}.",
        "",
        f"Data: the simulator, {out['args']['brands']} brands x {out['args']['days']} days, "
        f"{len(seeds)} simulations (seeds {', '.join(seeds)}); bid task (revenue per click, "
        "click-weighted), every method with the same boosting parameters and the "
        f"`{out['objective']}` loss. In each simulation, up to {out['args']['per_bucket']} brands "
        "per bucket (buckets by the brand's training rows) are held out of pretraining, and one "
        "time cut splits every brand: models learn from rows before it and are scored on the "
        f"held-out brands' rows from the cut on ({out['args']['test_days']} days; cuts "
        + ", ".join(f"{out['seeds'][seed]['cut']}" for seed in seeds)
        + "). Score: click-weighted MAE of predicted value per click against the simulator's "
        "true value per click, divided by the brand's mean true value (lower is better), "
        "averaged over the brands of a bucket, all simulations together.",
        "",
        table,
        "",
        "Per simulation (`auto` vs the best baseline in that simulation):",
        "",
        md_table(["bucket", *(f"seed {seed}" for seed in seeds)], seed_rows),
        "",
    ]
    if seed_misses:
        lines += ["Where `auto` misses in one simulation: " + " ".join(seed_misses), ""]
    lines += [
        "Strategies chosen by `auto`: " + "; ".join(f"{b}: {s}" for b, s in strat.items()) + ".",
        "",
        "`auto` scores every candidate strategy on 3 rolling-origin folds of the brand's rows "
        "(`selection_folds`, default 3), boosted candidates at round counts cross-fitted between "
        "folds. The same benchmark with the choice made on one holdout (the newest 20% of rows, "
        "`selection_folds=1`):",
        "",
        md_table(["bucket", "auto, 1 fold", "auto, 3 folds", "change"], folds_rows),
        "",
        "### Cost",
        "",
        "CPU seconds (all threads). Pretraining and the pooled model use LightGBM's threads "
        "(both cores); each brand adaptation runs on one thread (`n_jobs=1`), so a nightly run "
        "adapts two brands at a time on this machine. A nightly refresh lets `auto` choose a "
        f"brand's strategy again after {EVERY} days (`adaptation.reselect_every_days`), or "
        f"sooner once the brand's rows grew by {GROW:.0%} since the choice "
        "(`adaptation.reselect_when_rows_grow`); the other nights the challenger repeats the "
        "champion's strategy and new-tree count on the new rows in one fit (same predictions "
        "as the choosing fit here: "
        f"{int(res['repeat_matches'].sum())} of {len(res)} brands identical). A brand's cycle "
        f"is {EVERY} days, or the days its rows take to grow by {GROW:.0%} at the pace of its "
        f"last {EVERY} days if fewer; its average night is (1 choosing + cycle - 1 repeating "
        "nights) / cycle, and the seed's average night the sum over its brands. A repeating "
        "night starts from the base model's leaf indices of the brand's rows kept by the night "
        "before (`leaf_cache`, the refresh's `cache_dir`; here: a repeat on the rows before "
        "the cut's last day), so it predicts the base only for the new day's rows and rows "
        "whose brand context crossed a split; the same model as without the cache ("
        + (
            f"{int(res['cache_exact'].sum())} of {len(res)} brands identical, byte for byte"
            if "cache_exact" in res
            else "not checked in this run"
        )
        + "). The choosing night is measured without the cache.",
        "",
        md_table(
            [
                "seed",
                "pooled+id rows",
                "retrain pooled+id",
                "pretrain global",
                "adapted (held-out brands)",
                "choosing night",
                "repeating night",
                "repeating, no leaf cache",
                "mean cycle (days)",
                "average night",
                "pooled / average night",
            ],
            cost_rows,
        ),
        "",
        "Is an old choice as good as a fresh one? Each brand's choice made "
        f"{EVERY - 1} days before the cut (the oldest a refresh repeats), on the rows it had "
        "then, repeated at the cut on all rows — unless the brand's rows grew by "
        f"{GROW:.0%} or more since, when the refresh chooses again (then the fresh score):",
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
        "",
        "The ratio is the issue's measure: retraining the pooled model against adapting the "
        "benchmark's held-out brands. It depends on how many brands are adapted: an average "
        f"night costs {per_brand_night:.2f} CPU s per brand (median brand "
        f"{int(res['train_rows'].median()):,} rows), so retraining the pooled model costs as "
        f"much as about {break_even:.0f} brands' average nights. Median single brand: `auto` "
        f"choosing {res['adapt_cpu'].median():.2f} CPU s, repeating "
        f"{res['repeat_cpu'].median():.2f}, a brand-only model from scratch "
        f"{res['brand_only_cpu'].median():.2f}."
        + (
            f" GPBoost (pooled, brand random effect) took {out['seeds'][first]['timings']['gpboost']:.1f} "
            f"wall s on seed {first}."
            if "gpboost" in out["seeds"][first]["timings"]
            else ""
        ),
    ]
    if "overhead" in out:
        o = out["overhead"]
        lines += [
            "",
            "### Overhead against raw LightGBM",
            "",
            f"Same data ({o['rows']:,} rows, 8 numeric + 1 categorical feature), same parameters, "
            f"{o['rounds']} rounds, no early stopping; best of 2-3 runs.",
            "",
            md_table(
                ["operation", "raw LightGBM (s)", "tabtune (s)", "ratio"],
                [
                    [
                        f"fit {o['rows']:,} rows",
                        f"{o['fit_raw']:.2f}",
                        f"{o['fit_tabtune']:.2f}",
                        f"{o['fit_ratio']:.2f}",
                    ],
                    [
                        f"predict {o['rows']:,} rows",
                        f"{o['predict_raw']:.2f}",
                        f"{o['predict_tabtune']:.2f}",
                        f"{o['predict_ratio']:.2f}",
                    ],
                    [
                        "adapt one brand (5,000 rows, 50 rounds)",
                        f"{o['adapt_raw']:.3f}",
                        f"{o['adapt_tabtune']:.3f}",
                        f"{o['adapt_ratio']:.2f}",
                    ],
                ],
            ),
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--brands", type=int, default=120)
    p.add_argument("--days", type=int, default=730)
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[11, 12, 13], help="one simulation per seed"
    )
    p.add_argument("--test-days", type=int, default=60)
    p.add_argument("--per-bucket", type=int, default=8)
    p.add_argument("--overhead-rows", type=int, default=1_000_000)
    p.add_argument("--no-overhead", action="store_true")
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
        args.brands, args.days, args.per_bucket, args.overhead_rows = 40, 365, 2, 100_000
        args.seeds = args.seeds[:1]
    out = run(args)
    write_raw(args.section + ("-quick" if args.quick else ""), out)
    if not args.quick:
        command = "python -m benchmarks.transfer" + (
            ""
            if args.section == "transfer"
            else " " + " ".join(sys.argv[1:] if argv is None else argv)
        )
        write_section(args.section, render(out, f"make bench  # {command}"))
        print("wrote docs/benchmarks.md")
    else:
        print(render(out, "python -m benchmarks.transfer --quick"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
