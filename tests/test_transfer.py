"""Adaptation strategies, brand context and the per-brand choice (tabtune.transfer)."""

from __future__ import annotations

import functools
import re

import contracts
import numpy as np
import pandas as pd
import pytest
from contracts import BACKEND_DEVICES, SMALL, adapted, make_brands, new_brand, pretrained

from tabtune import TabTuneClassifier, TabTuneRegressor
from tabtune.boosting import FeatureSchema
from tabtune.errors import TabTuneInputError, ZeroTargetError
from tabtune.estimators import repeat_params
from tabtune.transfer import (
    CONTEXT_FOLDS,
    CONTEXT_MIN_HISTORY,
    STRATEGIES,
    BrandContext,
    Rows,
    apply_offset,
    choose_level_column,
    choose_strategy,
    fold_splits,
    holdout_score,
    holdout_split,
    level_offset,
    row_losses,
    short_histories,
)
from tabtune.transfer.context import MEAN_STEP, history_size_feature, rounded_means

# -- the domain contracts, for every backend x device -------------------------------------------


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES)
def test_zero_extra_rounds_reproduce_base(backend, device):
    contracts.check_zero_extra_rounds_reproduce_base(backend, device)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES)
def test_seeded_fit_is_deterministic(backend, device):
    contracts.check_seeded_fit_deterministic(backend, device)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES)
def test_adaptation_keeps_feature_schema(backend, device):
    contracts.check_adaptation_keeps_schema(backend, device)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES)
def test_unseen_categories_predict(backend, device):
    contracts.check_unseen_categories(backend, device)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES)
def test_save_load_bit_for_bit_without_pickle(backend, device, tmp_path):
    contracts.check_save_load_bit_for_bit(backend, device, tmp_path)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES)
def test_base_model_never_mutated(backend, device):
    contracts.check_base_never_mutated(backend, device)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES)
def test_min_rows_to_adapt(backend, device):
    contracts.check_min_rows_to_adapt(backend, device)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES)
def test_auto_never_worse_than_global_on_holdout(backend, device):
    contracts.check_auto_never_worse_than_global(backend, device)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES)
def test_unseen_brand_gets_global_prediction(backend, device):
    contracts.check_unseen_brand_gets_global_prediction(backend, device)


@pytest.mark.parametrize("backend,device", BACKEND_DEVICES)
def test_brand_context_helps(backend, device):
    contracts.check_brand_context_helps(backend, device)


# -- strategy choice ------------------------------------------------------------------------------


def test_choose_strategy_prefers_lowest_then_simplest():
    assert choose_strategy({"global": 1.0, "refit": 0.9, "scratch": 0.5}) == "scratch"
    assert choose_strategy({"global": 1.0, "continue": 1.0, "refit": 1.0}) == "global"
    assert choose_strategy({"global": 1.0, "continue": 0.7, "scratch": 0.7}) == "continue"
    assert choose_strategy({"global": 1.0, "continue": float("nan")}) == "global"
    with pytest.raises(ValueError):
        choose_strategy({"refit": 1.0})
    assert STRATEGIES[0] == "global"


def test_holdout_split_and_score():
    assert holdout_split(100, 0.2) == 80
    assert holdout_split(10, 0.5) == 5
    assert holdout_split(2, 0.2) is None  # one training row is not enough
    assert holdout_split(3, 0.2) == 2
    # With time keys the cut never splits a timestamp: 4 rows a day, 10 days.
    days = np.repeat(np.arange(10), 4)
    assert holdout_split(40, 0.2, days) == 32
    assert holdout_split(40, 0.15, days) == 32  # 34 -> back to the first row of day 8
    assert holdout_split(6, 0.5, np.array([0, 0, 0, 1, 1, 1])) == 3
    assert holdout_split(4, 0.5, np.array([0, 0, 0, 0])) is None  # one day: no holdout
    y = np.array([0.0, 1.0, 2.0])
    assert holdout_score("squared_error", y, y + 1, None) == pytest.approx(1.0)
    assert holdout_score("squared_error", y, y + np.array([1, 0, 0]), np.array([2.0, 1, 1])) == (
        pytest.approx(0.5)
    )
    p = np.array([0.5, 0.5])
    assert holdout_score("binary", np.array([0.0, 1.0]), p, None) == pytest.approx(np.log(2))
    probs = np.array([[0.2, 0.8], [0.9, 0.1]])
    assert holdout_score("multiclass", np.array([1.0, 0.0]), probs, None) == pytest.approx(
        -(np.log(0.8) + np.log(0.9)) / 2
    )


@pytest.mark.parametrize(
    "n_rows,fraction,n_folds,expected",
    [(100, 0.2, 3, 3), (37, 0.3, 4, 3), (1000, 0.1, 2, 2)],  # 37 rows: room for 3 folds of 11
)
def test_fold_splits_roll_back_from_the_newest_rows(n_rows, fraction, n_folds, expected):
    rows = Rows(X=np.zeros((n_rows, 1)), y=np.zeros(n_rows))
    folds = fold_splits(rows, fraction, n_folds)
    assert len(folds) == expected
    assert folds[0] == (holdout_split(n_rows, fraction), n_rows)  # the newest fold
    for (n_train, n_end), (older_train, older_end) in zip(folds, folds[1:], strict=False):
        assert older_end == n_train  # each older fold ends where the newer one trains up to
        assert older_train < n_train and older_train >= 2
        assert abs((older_end - older_train) - (n_end - n_train)) <= 1  # about as many rows


def test_fold_splits_never_split_a_day_and_stop_when_rows_run_out():
    days = np.repeat(np.arange(10), 4)  # 4 rows a day
    rows = Rows(X=np.zeros((40, 1)), y=np.zeros(40), times=days)
    folds = fold_splits(rows, 0.2, 3)
    assert folds == [(32, 40), (24, 32), (16, 24)]
    assert all(days[n_train - 1] < days[n_train] for n_train, _ in folds)
    assert len(fold_splits(Rows(X=np.zeros((6, 1)), y=np.zeros(6)), 0.4, 5)) == 2
    assert fold_splits(Rows(X=np.zeros((2, 1)), y=np.zeros(2)), 0.2, 3) == []


def test_row_losses_match_scikit_learn_deviances():
    from sklearn.metrics import mean_poisson_deviance, mean_tweedie_deviance

    rng = np.random.default_rng(0)
    y = rng.gamma(1.0, 2.0, 200) * (rng.random(200) < 0.6)
    mu = rng.gamma(2.0, 1.0, 200)
    w = rng.random(200)
    assert holdout_score("tweedie", y, mu, w) == pytest.approx(
        mean_tweedie_deviance(y, mu, sample_weight=w, power=1.5)
    )
    assert holdout_score("poisson", y, mu, w) == pytest.approx(
        mean_poisson_deviance(y, mu, sample_weight=w)
    )
    np.testing.assert_allclose(row_losses("squared_error", y, mu), (y - mu) ** 2)


def test_level_offset_formula_link_and_shrinkage():
    y = np.array([2.0, 4.0, 6.0])
    p = np.array([1.0, 2.0, 3.0])
    w = np.array([1.0, 1.0, 2.0])
    # log link: log(sum w y / sum w p), shrunk by n / (n + prior rows)
    assert level_offset("tweedie", y, p, w, 0.0) == pytest.approx(np.log(2.0))
    assert level_offset("poisson", y, p, w, 1.0) == pytest.approx(np.log(2.0) * 3 / 4)
    # identity link: sum w (y - p) / sum w, shrunk the same way
    assert level_offset("squared_error", y, p, w, 3.0) == pytest.approx((1 + 2 + 6) / 4 / 2)
    # the default prior: CONTEXT_SMOOTHING rows
    assert level_offset("tweedie", y, p, w) == pytest.approx(np.log(2.0) * 3 / 13)
    assert level_offset("binary", y, p, w, 0.0) == 0.0  # classifiers: no offset
    assert level_offset("tweedie", np.zeros(3), p, w, 0.0) == 0.0  # nothing observed
    np.testing.assert_allclose(apply_offset("tweedie", p, np.log(2.0)), 2 * p)
    np.testing.assert_allclose(apply_offset("squared_error", p, 1.5), p + 1.5)
    np.testing.assert_array_equal(apply_offset("binary", p, 3.0), p)


@pytest.mark.parametrize("backend", ["lightgbm", "xgboost"])
def test_global_strategy_serves_the_brand_at_its_own_level(backend, tmp_path):
    base = pretrained(backend, "cpu")
    # a brand far above every pretraining brand's level (they reach about 2.5): trees split
    # on brand context cannot predict beyond the levels they were grown on
    Xn, yn = new_brand("pricey", level=6.0)
    trees = adapted(base, Xn, yn, strategy="continue", adapt_n_estimators=0)
    glob = adapted(base, Xn, yn, strategy="global")
    offset = dict(glob._model.context.offsets)["pricey"]
    assert offset > 0
    # the offset moves the brand's mean prediction towards its own mean target
    gap_trees = abs(trees.predict(Xn).mean() - yn.mean())
    gap_glob = abs(glob.predict(Xn).mean() - yn.mean())
    assert gap_glob < 0.5 * gap_trees
    # every other brand is predicted exactly as by the base model
    X, _ = contracts.pooled()
    np.testing.assert_array_equal(glob.predict(X), base.predict(X))
    # the offset is saved with the model (JSON) and loads back bit for bit
    loaded = TabTuneRegressor.load(glob.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict(Xn), glob.predict(Xn))
    # below min_rows_to_adapt the brand still gets its (shrunk) level, and no new trees
    # (segment offsets on top when its folds show them: test_segments.py)
    few = adapted(base, Xn.iloc[:40], yn[:40], strategy="auto", min_rows_to_adapt=100)
    assert few.strategy_ in ("global", "segments") and few.n_new_trees_ == 0
    assert dict(few._model.context.offsets)["pricey"] > 0


@pytest.mark.parametrize("backend", ["lightgbm", "xgboost"])
def test_requesting_autos_choice_with_its_rounds_gives_the_same_model(backend):
    """What a refresh does between two choices: one fit, the very same model."""
    base = pretrained(backend, "cpu")
    for seed, name in ((1, "alpha"), (4, "delta")):
        Xn, yn = new_brand(name, seed=seed, n_days=90)
        auto = adapted(base, Xn, yn)
        again = adapted(base, Xn, yn, **repeat_params(auto.strategy_, auto.n_new_trees_))
        assert again.model_sha256_ == auto.model_sha256_
        np.testing.assert_array_equal(again.predict(Xn), auto.predict(Xn))


def test_adaptation_learns_from_the_context_the_brand_is_served_with():
    """No random context folds within a brand: the adapted model does not depend on the seed."""
    base = pretrained("lightgbm", "cpu")
    Xn, yn = new_brand("steady", seed=5, n_days=90)
    for strategy in ("refit", "continue", "auto"):
        one = adapted(base, Xn, yn, strategy=strategy, random_state=1)
        two = adapted(base, Xn, yn, strategy=strategy, random_state=2)  # (stored in the model)
        assert one.strategy_ == two.strategy_ and one.n_new_trees_ == two.n_new_trees_
        np.testing.assert_array_equal(one.predict(Xn), two.predict(Xn))


def test_auto_scores_every_candidate_on_rolling_folds():
    base = pretrained("lightgbm", "cpu")
    Xn, yn = new_brand("folded", n_days=90)
    one = adapted(base, Xn, yn, selection_folds=1)
    three = adapted(base, Xn, yn, selection_folds=3)
    assert "newest" in one.strategy_reason_
    assert "3 rolling-origin folds" in three.strategy_reason_
    assert set(three.holdout_scores_) == set(STRATEGIES)
    assert one.holdout_scores_ != three.holdout_scores_  # more rows scored: other scores
    with pytest.raises(ValueError, match="selection_folds"):
        adapted(base, Xn, yn, selection_folds=0)


def test_boosted_candidates_are_scored_at_a_round_count_from_another_fold(monkeypatch):
    """No fold scores a boosted candidate at the round count early stopping chose on it."""
    import tabtune.transfer.choice as transfer
    from tabtune.boosting.lightgbm_session import LightGBMSession as _Session

    calls = []
    early_fits = {}  # id of an early-stopped booster -> (strategy, its fold's training rows)
    real = transfer.run_strategy

    def spy(strategy, base, params, settings, train, *, valid=None, rounds=None, **kw):
        out = real(strategy, base, params, settings, train, valid=valid, rounds=rounds, **kw)
        calls.append((strategy, len(train.y), valid is not None, rounds, out[2]))
        if valid is not None:
            early_fits[id(out[0])] = (strategy, len(train.y))
        return out

    real_at_rounds = _Session.at_rounds

    def at_rounds_spy(self, booster, n_rounds):
        out = real_at_rounds(self, booster, n_rounds)
        if out is not None:  # scored by cutting the fold's own early-stopped fit
            strategy, n_train = early_fits[id(booster)]
            start = 0 if strategy == "scratch" else self.base.current_iteration()
            calls.append((strategy, n_train, False, n_rounds - start, None))
        return out

    monkeypatch.setattr(transfer, "run_strategy", spy)
    monkeypatch.setattr(_Session, "at_rounds", at_rounds_spy)
    base = pretrained("lightgbm", "cpu")
    Xn, yn = new_brand("crossed", n_days=90)
    est = adapted(base, Xn, yn, selection_folds=3)
    for strategy in ("continue", "refit+continue", "scratch"):
        mine = [c for c in calls if c[0] == strategy]
        stopped = {n_train: n_new for _, n_train, early, _, n_new in mine if early}
        scored = {n_train: rounds for _, n_train, early, rounds, _ in mine if not early}
        assert len(stopped) == 2  # early stopping on the newest two folds only
        newest, second = sorted(stopped, reverse=True)
        assert scored[newest] == stopped[second]  # newest fold: the second fold's count
        older = [n for n in scored if n not in (newest, len(yn))]
        assert len(older) == 2 and all(scored[n] == stopped[newest] for n in older)
    # The final fit grows the newest fold's early-stopped count.
    if est.strategy_ in ("continue", "refit+continue", "scratch"):
        final = [c for c in calls if c[1] == len(yn)]
        assert final[-1][3] == est.n_new_trees_


@pytest.mark.parametrize("backend", ["lightgbm", "xgboost"])
def test_cutting_early_stopped_fits_scores_as_fitting_the_count_again(monkeypatch, backend):
    """Scoring a fold at another fold's round count by cutting its early-stopped fit gives
    the very scores of boosting that count again; and it does cut at least once here."""
    from tabtune.boosting.base import Session

    base = pretrained(backend, "cpu")
    Xn, yn = new_brand("crossed", n_days=90)
    session_class = type(base._model.session())
    real = session_class.at_rounds
    cuts = []

    def counting(self, booster, n_rounds):
        out = real(self, booster, n_rounds)
        cuts.append(out is not None)
        return out

    monkeypatch.setattr(session_class, "at_rounds", counting)
    cut = adapted(base, Xn, yn, selection_folds=3)
    assert any(cuts)
    monkeypatch.setattr(session_class, "at_rounds", Session.at_rounds)  # never cuts
    refitted = adapted(base, Xn, yn, selection_folds=3)
    assert cut.holdout_scores_ == refitted.holdout_scores_
    assert cut.strategy_ == refitted.strategy_
    np.testing.assert_array_equal(cut.predict(Xn), refitted.predict(Xn))


def test_explicit_strategies_report_their_and_global_scores():
    base = pretrained("lightgbm", "cpu")
    Xn, yn = new_brand()
    for strategy in ("refit", "continue", "refit+continue", "scratch"):
        est = adapted(base, Xn, yn, strategy=strategy)
        assert est.strategy_ == strategy
        assert set(est.holdout_scores_) == {"global", strategy}
        assert est.strategy_reason_ == f"strategy={strategy!r} requested"
    est = adapted(base, Xn, yn, strategy="refit")
    assert est.n_new_trees_ == 0 and est.best_iteration_ == base.best_iteration_
    est = adapted(base, Xn, yn, strategy="continue", early_stopping_rounds=None)
    assert est.n_new_trees_ == SMALL["adapt_n_estimators"]
    assert est.holdout_scores_ == {}


def test_refit_decay_one_keeps_the_base_trees():
    for backend in ("lightgbm", "xgboost"):
        base = pretrained(backend, "cpu")
        Xn, yn = new_brand()
        kept = adapted(base, Xn, yn, strategy="refit", refit_decay_rate=1.0)
        trees = adapted(base, Xn, yn, strategy="continue", adapt_n_estimators=0)
        np.testing.assert_array_equal(kept.predict(Xn), trees.predict(Xn))
        moved = adapted(base, Xn, yn, strategy="refit", refit_decay_rate=0.0)
        assert not np.array_equal(moved.predict(Xn), trees.predict(Xn))


def test_adapted_model_stores_brand_context_on_top_of_base_table():
    base = pretrained("xgboost", "cpu")
    Xn, yn = new_brand(level=3.0)
    est = adapted(base, Xn, yn, strategy="global")
    keys = est._model.context.keys
    assert "newco" in keys and set(base._model.context.keys) < set(keys)
    brand_mean = est._model.context.mean[keys.index("newco"), 0]
    prior = base._model.context.prior[0]
    assert brand_mean > 2 * prior  # a strong brand: its (shrunk) mean is far above the pool's
    assert brand_mean == rounded_means(
        (yn.sum() + base._model.context.smoothing * prior)
        / (len(yn) + base._model.context.smoothing)
    )


def test_multiclass_classifier_adapts_with_every_strategy():
    X, y = make_brands([f"b{i}" for i in range(6)], n_days=30, seed=3)
    labels = np.digitize(y, np.quantile(y, [0.33, 0.66]))  # 3 classes
    names = np.array(["low", "mid", "high"])[labels]
    for backend in ("lightgbm", "xgboost"):
        glob = TabTuneClassifier(
            backend=backend, group_column="brand_id", time_column="date", **SMALL
        ).fit(X, names)
        assert glob.objective_ == "multiclass"
        Xn, yn = new_brand(n_days=40, level=2.0)
        labels_n = np.array(["low", "mid", "high"])[np.digitize(yn, np.quantile(y, [0.33, 0.66]))]
        for strategy in ("auto", "refit", "continue", "refit+continue", "scratch"):
            est = TabTuneClassifier(
                base_model=glob, strategy=strategy, min_rows_to_adapt=0, **SMALL
            ).fit(Xn, labels_n)
            proba = est.predict_proba(Xn)
            assert proba.shape == (len(Xn), 3)
            np.testing.assert_allclose(proba.sum(axis=1), 1.0)
            assert set(est.predict(Xn)) <= {"low", "mid", "high"}
            assert list(est.classes_) == list(glob.classes_)
            if strategy == "auto":
                assert est.holdout_scores_[est.strategy_] <= est.holdout_scores_["global"]


@pytest.mark.parametrize("backend", ["lightgbm", "xgboost"])
def test_adapting_on_a_level_the_base_never_trained_on(backend):
    """A vocabulary level (declared, never observed at pretraining) is fine when adapting."""
    channels = ["search", "social", "display", "tv"]
    X, y = make_brands(["a", "b", "c"], n_days=30, channels=("search", "social", "display"))
    X = X.assign(channel=pd.Categorical(X["channel"], categories=channels))
    glob = TabTuneRegressor(
        backend=backend, group_column="brand_id", time_column="date", **SMALL
    ).fit(X, y)
    assert glob._model.schema.vocabularies["channel"] == tuple(channels)
    Xn, yn = new_brand(channels=("search", "tv"), n_days=40)
    Xn = Xn.assign(channel=pd.Categorical(Xn["channel"], categories=channels))
    yn = np.where(Xn["channel"] == "tv", yn * 3, yn)
    for strategy in ("continue", "refit+continue", "scratch"):
        est = TabTuneRegressor(
            base_model=glob, strategy=strategy, min_rows_to_adapt=0, **SMALL
        ).fit(Xn, yn)
        tv = (Xn["channel"] == "tv").to_numpy()
        assert est.predict(Xn[tv]).mean() > est.predict(Xn[~tv]).mean()
    # The same frame with plain strings encodes to the same codes.
    as_str = Xn.assign(channel=Xn["channel"].astype("str"))
    np.testing.assert_array_equal(est.predict(as_str), est.predict(Xn))


@pytest.mark.parametrize("backend", ["lightgbm", "xgboost"])
def test_adapting_many_brands_from_one_base_matches_fresh_bases(backend, tmp_path):
    """What adaptation keeps on a base model between brands (its serialised leaves) never
    changes a later brand's model: each equals the one adapted from a freshly loaded base."""
    base = pretrained(backend, "cpu")
    path = base.save(tmp_path / "base")
    brands = [
        new_brand("alpha", n_days=40, level=2.0),
        new_brand("beta", n_days=25, channels=("search", "display"), level=0.5),
        new_brand("gamma", n_days=50, seed=3),
    ]
    for strategy in ("auto", "refit", "refit+continue"):
        for Xn, yn in brands:
            shared = adapted(base, Xn, yn, strategy=strategy)
            fresh = adapted(TabTuneRegressor.load(path), Xn, yn, strategy=strategy)
            assert shared.strategy_ == fresh.strategy_
            assert shared.holdout_scores_ == fresh.holdout_scores_
            assert shared.model_sha256_ == fresh.model_sha256_


# -- brand context ------------------------------------------------------------------------------


def _context(n_levels: int = 3) -> BrandContext:
    return BrandContext(
        group_column="brand_id",
        level_column="channel",
        n_levels=n_levels,
        prior=(2.0,),
        smoothing=4.0,
    )


@pytest.mark.parametrize("short_history", [0.0, 1.0])
def test_out_of_fold_context_never_sees_own_target(short_history):
    rng = np.random.default_rng(0)
    n = 200
    codes = rng.integers(0, 4, n)
    levels = rng.integers(0, 3, n).astype(float)
    y = rng.normal(size=(n, 1))
    ctx = _context()

    def encode(targets):
        keys = np.random.default_rng(5)  # the same keys on every call
        return ctx.out_of_fold(codes, 4, targets, None, levels, keys, short_history=short_history)

    first = encode(y)
    for i in (0, 17, 123):
        changed = y.copy()
        changed[i] += 1000.0
        again = encode(changed)
        # own row: untouched (short histories' prefix sums may differ in their last bits; a
        # leak would move the means by ~1000 / rows)
        np.testing.assert_allclose(again[i], first[i], rtol=1e-9, atol=1e-9)
        if short_history == 0.0:  # every other row of the brand's other folds sees it
            others = np.flatnonzero(codes == codes[i])
            assert (np.abs(again[others, 0] - first[others, 0]) > 1.0).sum() >= (
                len(others) * (CONTEXT_FOLDS - 1) // CONTEXT_FOLDS - 2
            )


def test_out_of_fold_context_formula_and_dropout():
    codes = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, -1])
    y = np.arange(11, dtype=float).reshape(-1, 1)
    ctx = BrandContext("g", None, 0, prior=(0.0,), smoothing=1.0)
    out = ctx.out_of_fold(codes, 2, y, None, None, np.random.default_rng(0))
    assert out.shape == (11, 2)  # mean, log rows
    # 5 rows per group, 5 folds: each row's mean uses the 4 other rows of its group.
    for i in range(10):
        g = codes[i]
        others = [j for j in range(10) if codes[j] == g and j != i]
        assert out[i, 0] == pytest.approx(rounded_means(y[others, 0].sum() / (4 + 1.0)))
        assert out[i, 1] == history_size_feature(5)
    assert np.isnan(out[10]).all()  # no group: unknown context
    dropped = ctx.out_of_fold(codes, 2, y, None, None, np.random.default_rng(0), dropout=0.5)
    assert 0 < np.isnan(dropped[:10, 0]).sum() < 10


def _short_history_oracle(ctx, codes, y, w, levels, keys, sizes):
    """Context of each row by brute force: its group's rows ranked (by key) below the row's
    history size, outside its fold, shrunk as the table is."""
    out = np.full((len(codes), 3), np.nan)
    for i in np.flatnonzero(codes >= 0):
        members = np.flatnonzero(codes == codes[i])
        rank = {j: r for r, j in enumerate(members[np.argsort(keys[members])])}
        fold = {j: r % CONTEXT_FOLDS for j, r in rank.items()}
        used = [j for j in members if rank[j] < sizes[i] and fold[j] != fold[i]]
        sw, sy = w[used].sum(), (w[used] * y[used, 0]).sum()
        mean = (sy + ctx.smoothing * ctx.prior[0]) / (sw + ctx.smoothing)
        cell = [j for j in used if levels[j] == levels[i]]
        lw, ly = w[cell].sum(), (w[cell] * y[cell, 0]).sum()
        level = (ly + ctx.smoothing * mean) / (lw + ctx.smoothing)
        out[i] = [*rounded_means(np.array([mean, level])), history_size_feature(sizes[i])]
    return out


def test_short_history_context_matches_brute_force():
    rng = np.random.default_rng(3)
    sizes_of = {0: 4, 1: 37, 2: 150, 3: 11}  # group 0 is below CONTEXT_MIN_HISTORY rows
    codes = np.concatenate([np.full(m, g) for g, m in sizes_of.items()] + [np.array([-1])])
    n = len(codes)
    y = rng.gamma(2.0, 1.5, size=(n, 1))
    w = rng.uniform(0.5, 3.0, n)
    levels = rng.integers(0, 3, n).astype(float)
    keys = rng.integers(0, 2**63, size=n, dtype=np.uint64)
    ctx = _context()
    out = ctx.out_of_fold(codes, 4, y, w, levels, keys, short_history=1.0)
    group_rows = np.array([sizes_of.get(g, 0) for g in codes])
    sizes = short_histories(keys, group_rows, 1.0)
    assert (sizes[codes == 0] == 4).all()  # too few rows to shorten
    short = sizes < group_rows
    assert short[codes == 2].mean() > 0.9 and (sizes[short] >= CONTEXT_MIN_HISTORY).all()
    assert len(np.unique(sizes[codes == 2])) > 20  # sizes drawn, not one value
    expected = _short_history_oracle(ctx, codes, y, w, levels, keys, sizes)
    np.testing.assert_allclose(out[:-1], expected[:-1], rtol=1e-10)
    assert np.isnan(out[-1]).all()
    # Rows not drawn keep the plain out-of-fold features; share 0 is the plain encoder.
    plain = ctx.out_of_fold(codes, 4, y, w, levels, keys)
    half = ctx.out_of_fold(codes, 4, y, w, levels, keys, short_history=0.5)
    drawn = short_histories(keys, group_rows, 0.5) < group_rows
    assert 0.3 < drawn[codes == 2].mean() < 0.7
    np.testing.assert_array_equal(half[~drawn], plain[~drawn])
    np.testing.assert_allclose(half[drawn], expected[drawn], rtol=1e-10)


def test_context_means_and_row_counts_are_rounded_to_steps():
    v = np.array([0.0, np.nan, 1e-9, 0.37, -12.5, 3e6])
    r = rounded_means(v)
    assert r[0] == 0.0 and np.isnan(r[1])
    np.testing.assert_array_equal(np.sign(r[2:]), np.sign(v[2:]))
    assert np.all(np.abs(r[2:] / v[2:] - 1) <= np.expm1(MEAN_STEP / 2) + 1e-12)
    np.testing.assert_array_equal(rounded_means(r), r)  # steps are fixed points
    drift = rounded_means(np.linspace(10.0, 10.02, 200))  # a mean drifting 0.2%
    assert len(np.unique(drift)) <= 2  # crosses at most one step
    rows = history_size_feature(np.array([0, 1, 99, 100, 360, 364, 10_000]))
    assert rows[0] == 0.0 and np.all(
        np.abs(rows - np.log1p([0, 1, 99, 100, 360, 364, 1e4])) <= 0.125
    )
    assert rows[4] == rows[5]  # a day's growth of a 360-row brand: the same value


def test_context_table_lookup_overlay_and_round_trip():
    ctx = _context()
    codes = np.array([0, 0, 1, 1, 1])
    levels = np.array([0.0, 1.0, 0.0, np.nan, 0.0])
    y = np.array([[1.0], [3.0], [10.0], [20.0], [30.0]])
    table = ctx.with_table(codes, ["a", "b"], y, None, levels)
    assert table.keys == ("a", "b")
    feats = table.features(pd.Series(["b", "zzz", "a"]), np.array([0.0, 0.0, 2.0]))
    assert np.isnan(feats[1]).all()  # unknown brand
    mean_b = (60.0 + 4.0 * 2.0) / (3 + 4.0)
    # means are stored rounded to 1% steps (rounded_means), shrunk from the exact ones
    assert feats[0, 0] == rounded_means(mean_b) and abs(feats[0, 0] / mean_b - 1) <= 0.005
    assert feats[0, 1] == rounded_means((40.0 + 4.0 * mean_b) / (2 + 4.0))  # b x level 0
    mean_a = (4.0 + 8.0) / (2 + 4.0)
    assert feats[2, 1] == rounded_means(mean_a)  # a x level 2 never seen: brand mean
    assert feats[2, 2] == history_size_feature(2)
    other = ctx.with_table(
        np.array([0, 0]), ["b"], np.array([[5.0], [7.0]]), None, np.array([1.0, 1.0])
    )
    merged = table.overlay(other)
    assert merged.keys == ("a", "b")
    f = merged.features(pd.Series(["a", "b"]), np.array([1.0, 1.0]))
    np.testing.assert_array_equal(f[0], table.features(pd.Series(["a"]), np.array([1.0]))[0])
    np.testing.assert_array_equal(f[1], other.features(pd.Series(["b"]), np.array([1.0]))[0])
    again = BrandContext.from_dict(merged.to_dict())
    probe_levels = np.array([0.0, 1.0, np.nan])
    probe = pd.Series(["a", "b", "b"])
    np.testing.assert_array_equal(
        again.features(probe, probe_levels), merged.features(probe, probe_levels)
    )


def test_level_column_is_the_categorical_that_varies_within_brands():
    X = pd.DataFrame(
        {
            "brand_id": ["a"] * 4 + ["b"] * 4,
            "vertical": ["retail"] * 4 + ["travel"] * 4,  # constant within a brand
            "channel": ["search", "social", "search", "display"] * 2,
            "spend": np.arange(8.0),
        }
    )
    schema = FeatureSchema.from_table(X, exclude=["brand_id"])
    codes = pd.factorize(X["brand_id"])[0]
    assert choose_level_column(schema, X, codes, 2) == "channel"
    assert choose_level_column(schema, X.assign(channel="search"), codes, 2) is None


def test_an_adaptation_on_one_thread_predicts_the_base_on_one_thread(monkeypatch):
    """``n_jobs=1`` holds for the base's predictions inside an adaptation too (they were made
    on every core: more CPU time per brand, and two brands adapted at once competed)."""
    import lightgbm as lgb

    base = pretrained("lightgbm", "cpu")
    Xn, yn = new_brand("crossed", n_days=90)
    threads = []
    real = lgb.Booster.predict

    def spy(self, data, *args, **kwargs):
        threads.append(kwargs.get("num_threads"))
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(lgb.Booster, "predict", spy)
    one = adapted(base, Xn, yn, n_jobs=1)
    assert threads and set(threads) == {1}
    threads.clear()
    monkeypatch.setattr(lgb.Booster, "predict", real)
    default = adapted(base, Xn, yn, n_jobs=None)
    assert default.holdout_scores_ == one.holdout_scores_
    np.testing.assert_array_equal(default.predict(Xn), one.predict(Xn))


def test_choose_strategy_margin_keeps_global_unless_the_gain_is_large():
    scores = {"global": 1.0, "refit": 0.85, "continue": 0.95}
    # 2 / sqrt(100) = 20%: a 15% gain is not enough, a 25% gain is.
    assert choose_strategy(scores, n_rows=100, margin=2.0) == "global"
    assert choose_strategy({**scores, "refit": 0.75}, n_rows=100, margin=2.0) == "refit"
    # 2 / sqrt(10_000) = 2%: the 15% gain wins; no margin: the lowest loss wins.
    assert choose_strategy(scores, n_rows=10_000, margin=2.0) == "refit"
    assert choose_strategy(scores, n_rows=100, margin=0.0) == "refit"


def test_auto_applies_the_margin_only_below_selection_margin_rows():
    from tabtune.transfer import AdaptSettings
    from tabtune.transfer.choice import choice_margin

    settings = AdaptSettings(selection_margin=2.0, selection_margin_rows=300)
    assert choice_margin(settings, 299) == 2.0
    assert choice_margin(settings, 300) == 0.0
    assert choice_margin(AdaptSettings(selection_margin_rows=0), 50) == 0.0


# -- a target that is zero on rows a log-link objective must fit ------------------------------
@functools.cache
def _tweedie_base(backend: str) -> TabTuneRegressor:
    """A Tweedie global model (log link) of the pooled contract data (clipped at 0)."""
    X, y = contracts.pooled()
    return TabTuneRegressor(
        backend=backend, objective="tweedie", group_column="brand_id", time_column="date", **SMALL
    ).fit(X, np.maximum(y, 0.0))


def _zero_before(day: int, name: str = "late") -> tuple[pd.DataFrame, np.ndarray]:
    """A new brand (60 days x 4 channels) whose target is zero before its ``day``-th day."""
    Xn, yn = new_brand(name, n_days=60)
    days = (Xn["date"] - Xn["date"].min()).dt.days.to_numpy()
    return Xn, np.where(days < day, 0.0, np.maximum(yn, 0.0))


def test_lightgbm_refuses_a_log_link_fit_whose_labels_are_all_zero():
    # Why zero-target rows are never sent to the backends (transfer.context.zero_target).
    import lightgbm as lgb

    X = np.random.default_rng(0).normal(size=(50, 2))
    for objective in ("tweedie", "poisson"):
        with pytest.raises(lgb.basic.LightGBMError, match="sum of labels is zero"):
            lgb.train({"objective": objective, "verbose": -1}, lgb.Dataset(X, np.zeros(50)), 2)


@pytest.mark.parametrize("backend", ["lightgbm", "xgboost"])
def test_auto_skips_the_oldest_folds_whose_training_rows_have_a_zero_target(backend):
    # 3 folds of 12 days from the newest: the oldest trains on days 0-23 (all zero), the
    # others on days 0-35 and 0-47 (not). The oldest is skipped for every candidate; the
    # others still score them all, tree strategies included.
    Xn, yn = _zero_before(30)
    est = adapted(_tweedie_base(backend), Xn, yn, selection_folds=3)
    assert "2 rolling-origin folds" in est.strategy_reason_
    assert "the 1 oldest fold(s) skipped for every candidate" in est.strategy_reason_
    assert set(est.holdout_scores_) == set(STRATEGIES)
    prediction = est.predict(Xn)
    assert np.isfinite(prediction).all() and (prediction > 0).all()


@pytest.mark.parametrize("backend", ["lightgbm", "xgboost"])
def test_auto_serves_a_brand_zero_before_every_holdout_by_the_global_trees(backend):
    Xn, yn = _zero_before(50)  # the newest fold trains on days 0-47
    base = _tweedie_base(backend)
    est = adapted(base, Xn, yn, selection_folds=3)
    assert est.strategy_ == "global" and est.n_new_trees_ == 0
    assert "zero on every row before the newest holdout" in est.strategy_reason_
    # its level offset comes from all rows, whose revenue is not zero
    assert dict(est._model.context.offsets)["late"] != 0.0
    assert np.isfinite(est.predict(Xn)).all()


@pytest.mark.parametrize("backend", ["lightgbm", "xgboost"])
def test_auto_serves_an_all_zero_brand_by_the_global_trees_without_an_offset(backend):
    Xn, yn = _zero_before(60, "nothing")
    base = _tweedie_base(backend)
    est = adapted(base, Xn, yn)
    assert est.strategy_ == "global" and est.n_new_trees_ == 0
    assert "zero on every one of the 240 rows" in est.strategy_reason_
    assert dict(est._model.context.offsets).get("nothing", 0.0) == 0.0  # log(0) has none
    prediction = est.predict(Xn)
    assert np.isfinite(prediction).all() and (prediction > 0).all()
    np.testing.assert_array_equal(prediction, adapted(base, Xn, yn, strategy="global").predict(Xn))


@pytest.mark.parametrize("backend", ["lightgbm", "xgboost"])
@pytest.mark.parametrize("strategy", ["refit", "continue", "refit+continue", "scratch"])
def test_a_requested_tree_strategy_on_an_all_zero_brand_is_refused(backend, strategy):
    Xn, yn = _zero_before(60, "nothing")
    base = _tweedie_base(backend)
    with pytest.raises(ZeroTargetError, match=re.escape(f"strategy={strategy!r} cannot refit")):
        adapted(base, Xn, yn, strategy=strategy)
    assert issubclass(ZeroTargetError, TabTuneInputError)
    # too few rows to adapt: no trees are fitted, the brand is served by the global trees
    few = adapted(base, Xn, yn, strategy=strategy, min_rows_to_adapt=1000)
    assert few.strategy_ == "global"
