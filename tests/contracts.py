"""Domain contract checks, written once and run for every backend x device.

Test modules parametrise thin ``test_*`` wrappers with :data:`BACKEND_DEVICES` and call the
``check_*`` functions here (the pattern of ``xgboost/testing/continuation.py``). ``cuda`` is
added for a backend only when :func:`tabtune.boosting.cuda_available` says it can train there.

The data are generated here (small, seeded): brands differ by multiplicative level effects,
channels by their own multipliers, and the response is concave in spend.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabtune import TabTuneRegressor
from tabtune.boosting import cuda_available

BACKENDS = ("lightgbm", "xgboost")


def _devices(backend: str) -> list[str]:
    return ["cpu"] + (["cuda"] if cuda_available(backend) else [])


#: ``(backend, device)`` pairs for ``pytest.mark.parametrize("backend,device", ...)``.
BACKEND_DEVICES = [pytest.param(b, d, id=f"{b}-{d}") for b in BACKENDS for d in _devices(b)]

CHANNELS = ("search", "social", "display", "video")
CHANNEL_EFFECT = {"search": 1.0, "social": 0.6, "display": 0.35, "video": 0.5, "tv": 0.8}

#: Small, fast model settings shared by the contract checks.
SMALL = {
    "n_estimators": 80,
    "learning_rate": 0.15,
    "num_leaves": 15,
    "min_child_samples": 10,
    "early_stopping_rounds": 10,
    "adapt_n_estimators": 40,
    # One thread: tests share few cores, and OpenMP spin-waiting collapses when oversubscribed.
    "n_jobs": 1,
}


def make_brands(
    brands: list[str],
    n_days: int = 60,
    seed: int = 0,
    channels: tuple[str, ...] = CHANNELS,
    levels: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Daily rows (one per brand x channel x day) with multiplicative brand levels.

    ``y = level[brand] * effect[channel] * 4 * sqrt(spend) + noise``; unless given, each
    brand's level is drawn (lognormal, sd 0.6) from a stable hash of its name, so a brand
    keeps its level across calls.
    """
    rng = np.random.default_rng(seed)
    levels = dict(levels or {})
    for b in brands:
        if b not in levels:
            levels[b] = float(np.exp(np.random.default_rng(zlib.crc32(b.encode())).normal(0, 0.6)))
    dates = pd.date_range("2024-01-01", periods=n_days)
    grid = pd.MultiIndex.from_product([brands, dates, channels], names=["brand_id", "date", "ch"])
    frame = grid.to_frame(index=False)
    n = len(frame)
    spend = rng.gamma(2.0, 40.0, n)
    effect = frame["ch"].map(CHANNEL_EFFECT).to_numpy()
    level = frame["brand_id"].map(levels).to_numpy()
    y = level * effect * 4.0 * np.sqrt(spend) + rng.normal(0.0, 1.0, n)
    X = pd.DataFrame(
        {
            "brand_id": frame["brand_id"].astype("str"),
            "date": frame["date"],
            "channel": frame["ch"].astype("str"),
            "spend": spend,
            "weekday": frame["date"].dt.day_of_week.astype(float),
        }
    )
    return X, y


@functools.cache
def pooled(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """The pooled pretraining data: 12 brands x 60 days x 4 channels."""
    return make_brands([f"b{i:02d}" for i in range(12)], seed=seed)


@functools.cache
def pretrained(backend: str, device: str) -> TabTuneRegressor:
    """A global model with brand context, fitted once per backend x device (never mutated)."""
    X, y = pooled()
    return TabTuneRegressor(
        backend=backend, device=device, group_column="brand_id", time_column="date", **SMALL
    ).fit(X, y)


def new_brand(
    name: str = "newco",
    n_days: int = 60,
    channels: tuple[str, ...] = CHANNELS,
    seed: int = 7,
    level: float | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of a brand the global model never saw."""
    levels = None if level is None else {name: level}
    return make_brands([name], n_days=n_days, seed=seed, channels=channels, levels=levels)


def adapted(base: TabTuneRegressor, X, y, **params) -> TabTuneRegressor:
    """Adapt ``base`` with the small settings (overridable)."""
    settings = {**SMALL, "min_rows_to_adapt": 0, **params}
    return TabTuneRegressor(base_model=base, **settings).fit(X, y)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((np.asarray(a) - np.asarray(b)) ** 2))


# ----------------------------------------------------------------------------------------------
# the checks
# ----------------------------------------------------------------------------------------------


def check_zero_extra_rounds_reproduce_base(backend: str, device: str) -> None:
    """``continue`` with 0 new rounds is the base model, bit for bit."""
    base = pretrained(backend, device)
    X, y = pooled()
    seen = (X["brand_id"] == "b03").to_numpy()
    est = adapted(base, X[seen], y[seen], strategy="continue", adapt_n_estimators=0)
    assert est.n_new_trees_ == 0
    assert est.best_iteration_ == base.best_iteration_
    assert est.model_sha256_ == base.model_sha256_
    # A brand the base saw: its context recomputed from the same rows is the same context.
    np.testing.assert_array_equal(est.predict(X[seen]), base.predict(X[seen]))
    np.testing.assert_array_equal(est.predict(X[~seen]), base.predict(X[~seen]))
    # A new brand: zero new rounds = the base trees with the brand's context, which is the
    # global strategy before its level offset (the global strategy's only extra).
    Xn, yn = new_brand()
    zero = adapted(base, Xn, yn, strategy="continue", adapt_n_estimators=0)
    glob = adapted(base, Xn, yn, strategy="global")
    model, groups = glob._model, Xn["brand_id"]
    offset = dict(model.context.offsets)["newco"]
    assert offset != 0.0
    on = glob.device_  # the same device: CUDA and CPU sums differ in the last bits
    np.testing.assert_array_equal(
        zero.predict(Xn), model.predict(model.encode(Xn, groups), device=on)
    )
    np.testing.assert_allclose(glob.predict(Xn), zero.predict(Xn) + offset, rtol=1e-12)


def check_seeded_fit_deterministic(backend: str, device: str) -> None:
    """Same data, same seed: identical model bytes and predictions (pretraining and auto)."""
    X, y = pooled()
    params = {"backend": backend, "device": device, "group_column": "brand_id", **SMALL}
    params["time_column"] = "date"
    params["subsample"] = 0.8  # exercise the seeded randomness too
    one = TabTuneRegressor(**params).fit(X, y)
    two = TabTuneRegressor(**params).fit(X, y)
    assert one.model_sha256_ == two.model_sha256_
    np.testing.assert_array_equal(one.predict(X), two.predict(X))
    Xn, yn = new_brand()
    a = adapted(one, Xn, yn)
    b = adapted(two, Xn, yn)
    assert a.strategy_ == b.strategy_
    assert a.holdout_scores_ == b.holdout_scores_
    assert a.model_sha256_ == b.model_sha256_
    np.testing.assert_array_equal(a.predict(Xn), b.predict(Xn))


def check_adaptation_keeps_schema(backend: str, device: str) -> None:
    """Adapting (to a brand lacking channels) never changes the feature schema."""
    base = pretrained(backend, device)
    Xn, yn = new_brand(channels=("search", "social"))
    for strategy in ("auto", "refit", "continue", "refit+continue", "scratch"):
        est = adapted(base, Xn, yn, strategy=strategy)
        assert est._model.schema == base._model.schema, strategy
        assert est._model.layout == base._model.layout, strategy
        assert list(est.feature_names_in_) == list(base.feature_names_in_)
        assert est.n_features_in_ == base.n_features_in_
        assert est.group_column_ == base.group_column_ == "brand_id"
        assert est.to_dict()["feature_schema"] == base.to_dict()["feature_schema"]


def check_unseen_categories(backend: str, device: str) -> None:
    """A channel the model never saw predicts like a missing channel, without error."""
    base = pretrained(backend, device)
    X, _ = pooled()
    rows = X.iloc[:50].copy()
    unseen = rows.copy()
    unseen["channel"] = "tiktok"
    missing = rows.copy()
    missing["channel"] = None
    p_unseen = base.predict(unseen)
    assert np.isfinite(p_unseen).all()
    np.testing.assert_array_equal(p_unseen, base.predict(missing))
    Xn, yn = new_brand()
    est = adapted(base, Xn, yn, strategy="continue")
    unseen_new = Xn.iloc[:20].copy()
    unseen_new["channel"] = "tiktok"
    assert np.isfinite(est.predict(unseen_new)).all()


def check_save_load_bit_for_bit(backend: str, device: str, tmp_path: Path) -> None:
    """save/load round-trips predictions exactly; only native files + JSON; no pickle."""
    base = pretrained(backend, device)
    Xn, yn = new_brand()
    est = adapted(base, Xn, yn, strategy="refit+continue")
    X, _ = pooled()
    probe = pd.concat([X.iloc[::37], Xn.iloc[::11]], ignore_index=True)
    model_file = "model.txt" if backend == "lightgbm" else "model.ubj"
    for name, model in (("global", base), ("brand", est)):
        path = model.save(tmp_path / name)
        assert sorted(p.name for p in path.iterdir()) == sorted([model_file, "manifest.json"])
        manifest = json.loads((path / "manifest.json").read_text())
        assert manifest["model_sha256"] == model.model_sha256_
        loaded = TabTuneRegressor.load(path)
        np.testing.assert_array_equal(loaded.predict(probe), model.predict(probe))
        assert loaded.strategy_ == model.strategy_
        assert loaded.holdout_scores_ == model.holdout_scores_
        assert loaded.base_model_id_ == model.base_model_id_
    assert est.base_model_id_ == base.model_sha256_
    # Loading in a fresh interpreter where unpickling is impossible.
    probe.to_csv(tmp_path / "probe.csv", index=False)
    np.save(tmp_path / "expected.npy", est.predict(probe))
    script = textwrap.dedent(
        f"""
        import pickle, sys
        def _refuse(*args, **kwargs):
            raise RuntimeError("pickle used")
        pickle.loads = pickle.load = pickle.Unpickler = _refuse
        import numpy as np, pandas as pd
        from tabtune import TabTuneRegressor
        probe = pd.read_csv({str(tmp_path / "probe.csv")!r}, parse_dates=["date"])
        probe["brand_id"] = probe["brand_id"].astype("str")
        est = TabTuneRegressor.load({str(tmp_path / "brand")!r})
        expected = np.load({str(tmp_path / "expected.npy")!r}, allow_pickle=False)
        np.testing.assert_array_equal(est.predict(probe), expected)
        print("ok")
        """
    )
    path = [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def check_base_never_mutated(backend: str, device: str) -> None:
    """Adapting to a brand missing categories leaves the base bit-identical for all brands."""
    base = pretrained(backend, device)
    X, _ = pooled()
    before = base.predict(X)
    params_before = base.get_params()
    sha_before = base.model_sha256_
    context_before = json.dumps(base.to_dict()["brand_context"])
    Xn, yn = new_brand(channels=("display",))
    for strategy in ("auto", "refit", "continue", "refit+continue", "scratch"):
        adapted(base, Xn, yn, strategy=strategy)
        np.testing.assert_array_equal(base.predict(X), before, err_msg=strategy)
    seen = (X["brand_id"] == "b05") & (X["channel"] == "search")
    adapted(base, X[seen], pooled()[1][seen.to_numpy()], strategy="refit+continue")
    np.testing.assert_array_equal(base.predict(X), before)
    assert base.get_params() == params_before
    assert base.model_sha256_ == sha_before
    from tabtune.boosting.base import sha256_hex

    assert sha256_hex(base._model.backend.to_bytes(base.booster_)) == sha_before
    assert json.dumps(base.to_dict()["brand_context"]) == context_before


def check_min_rows_to_adapt(backend: str, device: str) -> None:
    """Below ``min_rows_to_adapt`` rows the brand gets the global strategy (no new trees)."""
    base = pretrained(backend, device)
    Xn, yn = new_brand(n_days=10)  # 40 rows
    est = adapted(base, Xn, yn, min_rows_to_adapt=100, strategy="auto")
    assert est.strategy_ == "global"
    assert "min_rows_to_adapt=100" in est.strategy_reason_
    assert est.n_new_trees_ == 0
    forced = adapted(base, Xn, yn, min_rows_to_adapt=100, strategy="continue")
    assert forced.strategy_ == "global"
    np.testing.assert_array_equal(est.predict(Xn), forced.predict(Xn))
    enough = adapted(base, Xn, yn, min_rows_to_adapt=40, strategy="continue")
    assert enough.strategy_ == "continue"


def check_auto_never_worse_than_global(backend: str, device: str) -> None:
    """``auto`` picks a strategy whose holdout score is <= global's (ties: simpler)."""
    base = pretrained(backend, device)
    for seed, name in ((1, "alpha"), (2, "beta"), (3, "gamma")):
        Xn, yn = new_brand(name, seed=seed)
        est = adapted(base, Xn, yn)
        scores = est.holdout_scores_
        assert set(scores) >= {"global", "refit", "continue", "refit+continue", "scratch"}
        assert scores[est.strategy_] <= scores["global"]
        # The selection margin (small brands): the lowest loss only when it beats global by
        # selection_margin / sqrt(rows); without the margin, the lowest loss.
        best = min(scores, key=scores.get)
        n = len(Xn)
        margin = est.selection_margin / np.sqrt(n) if n < est.selection_margin_rows else 0.0
        wins = scores[best] < scores["global"] * (1 - margin)
        assert est.strategy_ == (best if wins or best == "global" else "global")
        plain = adapted(base, Xn, yn, selection_margin=0.0)
        assert plain.holdout_scores_[plain.strategy_] == min(plain.holdout_scores_.values())


def check_unseen_brand_gets_global_prediction(backend: str, device: str) -> None:
    """The global model predicts for a brand it never saw (unknown context), without error."""
    base = pretrained(backend, device)
    Xn, _ = new_brand()
    p = base.predict(Xn)
    assert np.isfinite(p).all()
    other = Xn.assign(brand_id="someone-else")
    np.testing.assert_array_equal(base.predict(other), p)  # both: context unknown
    nan_brand = Xn.assign(brand_id=None)
    np.testing.assert_array_equal(base.predict(nan_brand), p)


def check_brand_context_helps(backend: str, device: str) -> None:
    """Context beats no context on later rows of seen brands, and on a new brand via global."""
    X, y = pooled()
    cutoff = X["date"] < "2024-02-15"
    train, test = cutoff.to_numpy(), ~cutoff.to_numpy()
    params = {"backend": backend, "device": device, "time_column": "date", **SMALL}
    with_ctx = TabTuneRegressor(group_column="brand_id", **params).fit(X[train], y[train])
    without = TabTuneRegressor(**params).fit(X[train].drop(columns="brand_id"), y[train])
    mse_ctx = mse(with_ctx.predict(X[test]), y[test])
    mse_raw = mse(without.predict(X[test].drop(columns="brand_id")), y[test])
    assert mse_ctx < 0.7 * mse_raw, (mse_ctx, mse_raw)
    # A new brand: strategy "global" (no new trees, only the brand's context) beats the base
    # model's prediction without that context.
    base = pretrained(backend, device)
    for name, seed, level in (("strong", 11, 2.5), ("weak", 12, 0.4)):
        Xn, yn = new_brand(name, n_days=90, seed=seed, level=level)
        fit_rows = (Xn["date"] < "2024-03-01").to_numpy()
        glob = adapted(base, Xn[fit_rows], yn[fit_rows], strategy="global")
        assert glob.n_new_trees_ == 0
        later = ~fit_rows
        assert mse(glob.predict(Xn[later]), yn[later]) < mse(base.predict(Xn[later]), yn[later])
