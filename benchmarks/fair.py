"""The fair transfer comparison, for any data set: fit every method the same way, score brands.

Every model is trained the way ``auto`` trains its choice: early stopping on the newest
``validation_fraction`` of its rows in time order, then a refit on ALL its rows with the round
count found (:func:`fit_fair`). Every method uses tabtune's default boosting parameters
(``tabtune/params.py``, no tuning for any method) and the same loss (the data set's objective,
Tweedie for non-negative values); GPBoost, which offers no Tweedie loss, is trained with a
Gaussian likelihood, and the tables say so.

Methods (:data:`METHODS`):

* ``global``     - the global model on the pool (held-out brands never in it), as is: tabtune's
  own pretraining (early stopping, then grown again on all pool rows with the rounds found);
* ``brand-only`` - a model on the brand's own training rows only;
* ``pooled+id``  - one model on the pool plus the held-out brands' training rows with
  ``brand_id`` as a categorical feature (the model a team would retrain nightly instead);
* ``gpboost``    - shared trees plus a brand random effect on the same rows as ``pooled+id``
  (optional: skipped when gpboost is not installed);
* ``tabtune auto`` - ``TabTuneRegressor(base_model=global).fit(brand rows)``.

A brand's score is the weighted MAE of its predictions on its test rows against ``truth``
(a simulator's true value, or the observed target on real data), divided by the weighted mean
of ``truth`` (lower is better). :func:`render_dataset` compares ``auto`` with every baseline by
per-brand paired ratios (:mod:`benchmarks.paired`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.common import md_table, weighted_mae
from benchmarks.paired import summarise_ratios
from tabtune import TabTuneRegressor
from tabtune.optional import optional_import
from tabtune.params import default

__all__ = [
    "AUTO",
    "BASELINES",
    "METHODS",
    "Task",
    "Unit",
    "boosting_params",
    "fit_fair",
    "render_dataset",
    "run_task",
]

AUTO = "tabtune auto"
BASELINES = ("global", "brand-only", "pooled+id", "gpboost")
METHODS = (*BASELINES, AUTO)
#: The boosting parameters every method shares: tabtune's defaults.
PARAM_NAMES = (
    "n_estimators",
    "learning_rate",
    "num_leaves",
    "min_child_samples",
    "reg_lambda",
    "early_stopping_rounds",
    "random_state",
)


def boosting_params(**overrides: Any) -> dict[str, Any]:
    """tabtune's default boosting parameters (``tabtune/params.py``), with ``overrides``."""
    return {**{name: default(name) for name in PARAM_NAMES}, **overrides}


@dataclass
class Unit:
    """One held-out brand: its bucket, and its training and test rows (boolean masks)."""

    bucket: str
    brand: str
    train: np.ndarray
    test: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)  #: extra fields for its result row


@dataclass
class Task:
    """A data set split for the comparison.

    ``X`` holds the features plus ``brand_id`` and ``time_column``; ``pool`` the rows the
    global model learns (no held-out brand), ``pooled`` the rows ``pooled+id`` and GPBoost learn
    (the pool plus the held-out brands' training rows).
    """

    X: pd.DataFrame
    y: np.ndarray
    weight: np.ndarray | None
    truth: np.ndarray
    pool: np.ndarray
    pooled: np.ndarray
    units: list[Unit]
    objective: str
    time_column: str = "date"
    categorical: list[str] = field(default_factory=list)


def fit_fair(
    factory: Callable[..., TabTuneRegressor],
    X: pd.DataFrame,
    y: np.ndarray,
    w: np.ndarray | None,
) -> tuple[TabTuneRegressor, int, float]:
    """Early stopping on the newest rows, then a refit on all rows with the rounds found.

    Parameters
    ----------
    factory : callable
        ``factory(**overrides)`` returns an unfitted estimator (with early stopping unless
        overridden).
    X, y, w
        The rows.

    Returns
    -------
    (model, rounds, cpu_seconds_of_the_refit)
    """
    # the early-stopping fit only finds the rounds: grown again on all rows it would be the
    # refit below, fitted twice (it doubled the "with early stopping" CPU figures)
    inner = factory(regrow_on_all_rows=False).fit(X, y, sample_weight=w)
    rounds = max(1, int(inner.best_iteration_))
    c = time.process_time()
    model = factory(n_estimators=rounds, early_stopping_rounds=None).fit(X, y, sample_weight=w)
    return model, rounds, time.process_time() - c


def _relative_mae(pred: np.ndarray, truth: np.ndarray, w: np.ndarray | None) -> float:
    weight = np.ones_like(truth) if w is None else w
    return weighted_mae(pred, truth, weight) / float(np.average(truth, weights=weight))


def run_task(
    task: Task,
    params: dict[str, Any],
    *,
    gpboost: bool = True,
    global_model: TabTuneRegressor | None = None,
    on_brand: Callable[..., None] | None = None,
    label: str = "",
) -> dict[str, Any]:
    """Fit every method on ``task`` and score its held-out brands.

    ``on_brand(row, unit, auto, global, score)`` may add fields to a brand's row (the
    simulator's cost measurements; ``score(pred)`` scores predictions of the unit's test rows). ``global_model`` reuses a global model fitted on the same pool.
    Returns ``{"brands": rows, "timings": ..., "rounds": ..., "notes": ..., "global": model}``.
    Long because every method's fit and score for a brand sit side by side, to be compared.
    """
    X, y, w, tc = task.X, task.y, task.weight, task.time_column
    ws = (lambda m: None) if w is None else (lambda m: w[m])
    common = dict(params, objective=task.objective)
    timings: dict[str, float] = {}
    rounds: dict[str, int] = {}
    notes: list[str] = []
    c = time.process_time()
    if global_model is None:
        # tabtune's own pretraining, as the CLI and the refresh run it: early stopping, then
        # grown again on every pool row with the rounds found (regrow_on_all_rows), the same
        # rule fit_fair applies to the baselines.
        global_model = TabTuneRegressor(group_column="brand_id", time_column=tc, **common).fit(
            X[task.pool], y[task.pool], sample_weight=ws(task.pool)
        )
        rounds["global"] = int(global_model.best_iteration_)
        timings["pretrain_global_cpu"] = time.process_time() - c
    glob = global_model
    feat = [col for col in X.columns if col not in ("brand_id", tc)]
    X_id = X[[tc, "brand_id", *feat]]
    c = time.process_time()
    pooled, rounds["pooled+id"], timings["pooled_with_id_refit_cpu"] = fit_fair(
        lambda **kw: TabTuneRegressor(time_column=tc, **{**common, **kw}),
        X_id[task.pooled],
        y[task.pooled],
        ws(task.pooled),
    )
    timings["pooled_with_id_cpu"] = time.process_time() - c
    print(
        f"{label}global ({rounds.get('global', '-')} rounds) and pooled+id "
        f"({rounds['pooled+id']} rounds, {task.pooled.sum():,} rows) fitted",
        flush=True,
    )
    gpb_model = None
    if gpboost:
        gpb_model = fit_gpboost(task, feat, common, timings, notes)
    results = []
    for unit in task.units:
        tr, te = unit.train, unit.test
        if te.sum() == 0 or tr.sum() == 0:
            continue
        row: dict[str, Any] = {
            "bucket": unit.bucket,
            "brand": unit.brand,
            "train_rows": int(tr.sum()),
            "test_rows": int(te.sum()),
            **unit.info,
        }
        truth, wt = task.truth[te], ws(te)

        def score(pred: np.ndarray) -> float:
            return _relative_mae(pred, truth, wt)  # noqa: B023 - used within the iteration

        row["global"] = score(glob.predict(X[te]))
        c = time.process_time()
        own, row["brand_only_rounds"], _ = fit_fair(
            lambda **kw: TabTuneRegressor(time_column=tc, n_jobs=1, **{**common, **kw}),
            X[tr],
            y[tr],
            ws(tr),
        )
        row["brand_only_cpu"] = time.process_time() - c
        row["brand-only"] = score(own.predict(X[te]))
        row["pooled+id"] = score(pooled.predict(X_id[te]))
        if gpb_model is not None:
            row["gpboost"] = score(predict_gpboost(gpb_model, X, te, feat))
        c = time.process_time()
        auto = TabTuneRegressor(base_model=glob, n_jobs=1).fit(X[tr], y[tr], sample_weight=ws(tr))
        row["adapt_cpu"] = time.process_time() - c
        row[AUTO] = score(auto.predict(X[te]))
        row["strategy"] = auto.strategy_
        if on_brand is not None:
            on_brand(row, unit, auto, glob, score)
        results.append(row)
        print(
            f"  {label}{unit.bucket:>8} {unit.brand}: rows {row['train_rows']:>6}, "
            f"strategy {row['strategy']:<15} "
            + " ".join(f"{m} {row[m]:.3f}" for m in METHODS if m in row),
            flush=True,
        )
    return {"brands": results, "timings": timings, "rounds": rounds, "notes": notes, "global": glob}


def fit_gpboost(
    task: Task, feat: list[str], common: dict[str, Any], timings: dict[str, float], notes: list
) -> Any:
    """GPBoost (shared trees + a brand random effect) on ``task.pooled``, trained like the
    others (early stopping on the newest rows, refit on all); None when unavailable."""
    try:
        gpb = optional_import("gpboost", extra="bench", purpose="the GPBoost baseline")
    except ImportError as exc:
        print(f"{exc}: skipping", flush=True)
        notes.append("GPBoost is not installed here: no gpboost column.")
        return None
    notes.append(
        "GPBoost has no Tweedie loss: it is trained with a Gaussian likelihood (the other "
        f"methods: `{task.objective}`)."
    )
    try:
        return _gpboost_two_step(gpb, task, feat, common, timings)
    except Exception as exc:  # noqa: BLE001 - an optional baseline must not sink the run
        print(f"gpboost failed ({exc!r}): skipping", flush=True)
        notes.append(f"GPBoost failed ({type(exc).__name__}: {exc}): no gpboost column.")
        return None


def _gpboost_matrix(X: pd.DataFrame, rows: np.ndarray, feat: list[str], codes: dict) -> Any:
    Xn = X.loc[rows, feat].copy()
    for col, mapping in codes.items():
        Xn[col] = Xn[col].map(mapping).astype(float)
    return Xn.astype(float)


def _gpboost_two_step(
    gpb: Any, task: Task, feat: list[str], common: dict[str, Any], timings: dict[str, float]
) -> Any:
    X, y, w, rows = task.X, task.y, task.weight, task.pooled
    cats = [c for c in task.categorical if c in feat]
    codes = {c: {v: i for i, v in enumerate(sorted(X[c].astype(str).unique()))} for c in cats}
    X = X.assign(**{c: X[c].astype(str) for c in cats})
    params = {
        "learning_rate": common["learning_rate"],
        "num_leaves": common["num_leaves"],
        "min_data_in_leaf": common["min_child_samples"],
        "lambda_l2": common["reg_lambda"],
        "verbose": -1,
    }
    idx = np.flatnonzero(rows)
    order = idx[np.argsort(X[task.time_column].to_numpy()[idx], kind="stable")]
    n_train = int(round(len(order) * (1 - default("validation_fraction"))))
    t = time.perf_counter()

    def train(fit_rows: np.ndarray, valid_rows: np.ndarray | None, n_rounds: int) -> Any:
        fit_mask = np.zeros(len(X), dtype=bool)
        fit_mask[fit_rows] = True
        groups = X.loc[fit_mask, "brand_id"].to_numpy()
        gp_model = gpb.GPModel(
            group_data=groups, likelihood="gaussian", weights=None if w is None else w[fit_mask]
        )
        dtrain = gpb.Dataset(
            _gpboost_matrix(X, fit_mask, feat, codes),
            y[fit_mask],
            categorical_feature=[feat.index(c) for c in cats],
        )
        kwargs: dict[str, Any] = {}
        if valid_rows is not None:
            vmask = np.zeros(len(X), dtype=bool)
            vmask[valid_rows] = True
            gp_model.set_prediction_data(group_data_pred=X.loc[vmask, "brand_id"].to_numpy())
            dvalid = gpb.Dataset(_gpboost_matrix(X, vmask, feat, codes), y[vmask], reference=dtrain)
            kwargs = dict(
                valid_sets=[dvalid],
                early_stopping_rounds=common["early_stopping_rounds"],
                use_gp_model_for_validation=True,
            )
        booster = gpb.train(
            params=params,
            train_set=dtrain,
            gp_model=gp_model,
            num_boost_round=n_rounds,
            **kwargs,
        )
        return booster

    inner = train(order[:n_train], order[n_train:], common["n_estimators"])
    best = int(getattr(inner, "best_iteration", 0) or 0)
    n_rounds = best if best > 0 else common["n_estimators"]
    booster = train(order, None, n_rounds)
    timings["gpboost"] = time.perf_counter() - t
    print(f"gpboost ({n_rounds} rounds) in {timings['gpboost']:.1f}s", flush=True)
    return booster, codes, cats


def predict_gpboost(model: Any, X: pd.DataFrame, rows: np.ndarray, feat: list[str]) -> np.ndarray:
    """GPBoost's prediction (trees + the brand's random effect) for ``rows``."""
    booster, codes, cats = model
    Xs = X.assign(**{c: X[c].astype(str) for c in cats})
    pred = booster.predict(
        data=_gpboost_matrix(Xs, rows, feat, codes),
        group_data_pred=X.loc[rows, "brand_id"].to_numpy(),
        pred_latent=True,
    )
    return np.asarray(pred["fixed_effect"]) + np.asarray(pred["random_effect_mean"])


# ------------------------------------------------------------------------------------------
# tables
# ------------------------------------------------------------------------------------------


def _brand_label(r: pd.Series) -> str:
    seed = f"seed {r['seed']}, " if "seed" in r and pd.notna(r["seed"]) else ""
    return f"{r['brand']} ({seed}{int(r['train_rows']):,} rows, `auto` chose {r['strategy']})"


def summarise_dataset(
    res: pd.DataFrame, buckets: list[str], *, n_boot: int = 4000
) -> dict[str, dict[str, Any]]:
    """Per bucket: brands, mean scores, paired-ratio summaries of ``auto`` to every baseline,
    the best baseline (the one ``auto`` is furthest behind, by geometric mean), the verdict,
    the brands that lose to it, and the strategies ``auto`` chose."""
    out: dict[str, dict[str, Any]] = {}
    for bucket in buckets:
        part = res[res["bucket"] == bucket]
        if part.empty:
            continue
        bases = [m for m in BASELINES if m in part and part[m].notna().any()]
        ratios = {m: summarise_ratios(part[AUTO], part[m], n_boot=n_boot) for m in bases}
        best = max(bases, key=lambda m: ratios[m].geomean)
        lose = part.assign(ratio=part[AUTO] / part[best])
        lose = lose[lose["ratio"] > 1.0].sort_values("ratio", ascending=False)
        out[bucket] = {
            "brands": len(part),
            "median_train_rows": int(part["train_rows"].median()),
            "means": {m: float(part[m].mean()) for m in METHODS if m in part},
            "ratios": {m: s.as_dict() for m, s in ratios.items()},
            "best_baseline": best,
            "geomean_vs_best": ratios[best].geomean,
            "miss": bool(ratios[best].geomean > 1.0),
            "losing_brands": [f"{_brand_label(r)}: {r['ratio']:.2f}x" for _, r in lose.iterrows()],
            "strategies": {str(k): int(v) for k, v in part["strategy"].value_counts().items()},
            "summaries": ratios,
        }
    return out


def render_dataset(
    res: pd.DataFrame, buckets: list[str], *, min_brands: int = 24, n_boot: int = 4000
) -> tuple[str, dict[str, Any]]:
    """The markdown of one data set's comparison and its summary for the raw JSON."""
    summary = summarise_dataset(res, buckets, n_boot=n_boot)
    methods = [m for m in METHODS if m in res and res[m].notna().any()]
    score_rows, ratio_rows, misses, small = [], [], [], []
    for bucket, s in summary.items():
        best_mean = min(s["means"].values())
        score_rows.append(
            [bucket, s["brands"], f"{s['median_train_rows']:,}"]
            + [
                f"**{s['means'][m]:.3f}**" if s["means"][m] == best_mean else f"{s['means'][m]:.3f}"
                for m in methods
            ]
        )
        verdict = "**misses**" if s["miss"] else "wins or ties"
        ratio_rows.append(
            [bucket, s["brands"]]
            + [s["summaries"][m].cell() for m in BASELINES if m in methods]
            + [f"{s['best_baseline']}: {s['geomean_vs_best']:.3f} ({verdict})"]
        )
        if s["miss"]:
            misses.append(
                f"- {bucket}: `auto` / {s['best_baseline']} = {s['geomean_vs_best']:.3f} "
                f"(geometric mean); {len(s['losing_brands'])} of {s['brands']} brands lose to it: "
                + "; ".join(s["losing_brands"])
                + "."
            )
        if s["brands"] < min_brands:
            small.append(f"{bucket} ({s['brands']})")
    lines = [
        "Mean relative score per bucket (lower is better):",
        "",
        md_table(["bucket", "brands", "median train rows", *methods], score_rows),
        "",
        "`auto` / baseline, per-brand paired ratios: geometric mean [bootstrap 95% interval "
        "over brands], median, brands where `auto` scores better (below 1.00: `auto` wins). "
        "The last column is the baseline `auto` is furthest behind:",
        "",
        md_table(
            ["bucket", "brands", *(f"vs {m}" for m in BASELINES if m in methods), "best baseline"],
            ratio_rows,
        ),
        "",
        "Strategies chosen by `auto`: "
        + "; ".join(
            f"{b}: " + ", ".join(f"{k} {v}" for k, v in s["strategies"].items())
            for b, s in summary.items()
        )
        + ".",
    ]
    if misses:
        lines += ["", "Where `auto` misses (geometric mean above 1.00), the brands that lose:", ""]
        lines += misses
    if small:
        lines += ["", f"Fewer than {min_brands} brands in: {', '.join(small)}."]
    raw = {b: {k: v for k, v in s.items() if k != "summaries"} for b, s in summary.items()}
    return "\n".join(lines), raw
