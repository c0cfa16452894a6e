"""Batched pooled pretraining against the in-memory path (the oracle)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabtune.boosting import get_backend
from tabtune.boosting.base import BoosterParams
from tabtune.boosting.encoding import FeatureSchema
from tabtune.errors import TabTuneInputError, ZeroTargetError
from tabtune.evaluation import holdout_split
from tabtune.transfer import FittedModel, Rows, pretrain
from tabtune.transfer.context import CONTEXT_DROPOUT, CONTEXT_SHORT_HISTORY, choose_level_column
from tabtune.transfer.model import FitEncoding, padded_params
from tabtune.transfer.pooled_batches import (
    RowBlock,
    batch_statistics,
    encode_batch,
    encode_pooled,
    encode_sampled,
    holdout_counts,
    pooled_plan,
    pretrain_batched,
)
from tabtune.transfer.pretraining import context_seed, stopping_fraction, stopping_sample

GROUP, TIME = "brand_id", "date"


def _pool(seed: int = 0, n_brands: int = 7) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows of several brands over overlapping date ranges, time-ordered like task_data."""
    rng = np.random.default_rng(seed)
    parts = []
    for b in range(n_brands):
        start = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 20)))
        days = pd.date_range(start, periods=int(rng.integers(30, 60)), freq="D")
        for channel in ["search", "social", "display"][: 1 + b % 3]:
            n = len(days)
            parts.append(
                pd.DataFrame(
                    {
                        GROUP: f"b{b:02d}",
                        TIME: days,
                        "channel": channel,
                        "vertical": ["retail", "travel"][b % 2],
                        "x1": rng.normal(size=n),
                        "x2": np.where(rng.random(n) < 0.1, np.nan, rng.gamma(2.0, size=n)),
                    }
                )
            )
    X = pd.concat(parts, ignore_index=True)
    X = X.sort_values([GROUP, TIME, "channel"], kind="stable", ignore_index=True)
    X = X.iloc[np.argsort(X[TIME].to_numpy(), kind="stable")].reset_index(drop=True)
    level = X[GROUP].str[1:].astype(int).to_numpy() * 0.1
    y = np.exp(0.3 * X["x1"].to_numpy() + level) * rng.gamma(3.0, 1 / 3.0, len(X))
    w = rng.integers(1, 20, len(X)).astype(float)
    return X, y, w


def _batches(X, y, w, sizes):
    """Batches of whole brands (brand order), each in time order as task_data gives them."""
    brands = sorted(X[GROUP].unique())
    out, at = [], 0
    for size in sizes:
        chosen = brands[at : at + size]
        at += size
        keep = X[GROUP].isin(chosen).to_numpy()
        out.append((X.loc[keep].reset_index(drop=True), y[keep], w[keep]))
    assert at >= len(brands)
    return out


def _concat(batches):
    """The pooled rows the batches stand for: concatenated, stably time-ordered."""
    X = pd.concat([b[0] for b in batches], ignore_index=True)
    y = np.concatenate([b[1] for b in batches])
    w = np.concatenate([b[2] for b in batches])
    order = np.argsort(X[TIME].to_numpy(), kind="stable")
    return X.iloc[order].reset_index(drop=True), y[order], w[order]


def _params(schema: FeatureSchema) -> BoosterParams:
    return BoosterParams(
        objective="tweedie",
        n_classes=1,
        learning_rate=0.1,
        num_leaves=15,
        min_child_samples=5,
        random_state=0,
        n_jobs=1,
    )


def _in_memory(X, y, w, backend="lightgbm", **kwargs):
    schema = FeatureSchema.from_table(X, exclude=[GROUP, TIME])
    times = X[TIME].to_numpy().view(np.int64)
    rows = Rows(X, y, w, None, X[GROUP], times)
    return pretrain(
        get_backend(backend), _params(schema), schema, rows, group_column=GROUP, **kwargs
    )


FIT = dict(n_estimators=30, early_stopping_rounds=5, validation_fraction=0.2, random_state=3)


def test_merged_statistics_equal_the_whole():
    X, y, w = _pool()
    batches = _batches(X, y, w, [2, 3, 2])
    kw = dict(group_column=GROUP, time_column=TIME)
    parts = [batch_statistics(*b, **kw) for b in batches]
    merged = parts[2].merge(parts[0].merge(parts[1]))  # any order of merges
    whole = batch_statistics(*_concat(batches), **kw)
    assert merged.n_rows == whole.n_rows == len(y)
    assert merged.levels == whole.levels and merged.pairs == whole.pairs
    assert sorted(merged.groups) == sorted(whole.groups)
    np.testing.assert_array_equal(merged.times, whole.times)
    np.testing.assert_array_equal(merged.time_counts, whole.time_counts)
    np.testing.assert_allclose(merged.target_sum, whole.target_sum, rtol=1e-12)
    assert merged.weight_sum == pytest.approx(whole.weight_sum, rel=1e-12)
    assert merged.schema() == FeatureSchema.from_table(X, exclude=[GROUP, TIME])
    with pytest.raises(TabTuneInputError, match="whole groups"):
        parts[0].merge(parts[0])


def test_level_column_and_split_from_statistics_match_the_whole():
    X, y, w = _pool(1)
    stats = batch_statistics(X, y, w, group_column=GROUP, time_column=TIME)
    schema = stats.schema()
    codes, uniques = pd.factorize(X[GROUP])
    plan = pooled_plan(stats, group_column=GROUP, time_column=TIME, random_state=0)
    assert plan.context is not None
    assert plan.context.level_column == choose_level_column(schema, X, codes, len(uniques))
    assert plan.context.level_column == "channel"
    times = X[TIME].to_numpy().view(np.int64)
    for fraction in (0.01, 0.1, 0.2, 0.5, 0.97):
        expected = holdout_split(len(times), fraction, times)
        got = holdout_counts(len(times), fraction, stats.time_counts)
        assert (None if got is None else got[0]) == expected


def _joined(pooled):
    """All rows of an encoding as one block."""
    blocks = pooled.blocks
    weight = None if blocks[0].weight is None else np.concatenate([b.weight for b in blocks])
    return RowBlock(
        np.concatenate([b.X for b in blocks]), np.concatenate([b.y for b in blocks]), weight
    )


@pytest.mark.parametrize("sizes", [[7], [2, 3, 2], [1, 1, 1, 1, 1, 1, 1]])
def test_batched_matrix_equals_the_in_memory_encoding(sizes):
    X, y, w = _pool(2)
    batches = _batches(X, y, w, sizes)
    kw = dict(group_column=GROUP, time_column=TIME)
    stats = [batch_statistics(*b, **kw) for b in batches]
    merged = stats[0]
    for s in stats[1:]:
        merged = merged.merge(s)
    plan = pooled_plan(merged, **kw, validation_fraction=0.2, random_state=11)
    split = encode_pooled(plan, merged, lambda: batches, np.float64, split=True)
    pooled = _joined(encode_pooled(plan, merged, lambda: batches, np.float64))
    regrown = encode_pooled(plan, merged, lambda: batches, np.float64, regrown=True).blocks[0]
    # the split encoding is the same rows, cut where the early-stopped fit's holdout starts
    assert [len(b.y) for b in split.blocks] == [plan.n_train, len(y) - plan.n_train]
    joined = _joined(split)
    np.testing.assert_array_equal(joined.X, pooled.X)
    np.testing.assert_array_equal(joined.weight, pooled.weight)
    # the in-memory encoding of the concatenated rows, with the same context specification
    PX, Py, Pw = _concat(batches)
    rows = Rows(PX, Py, Pw, None, PX[GROUP], PX[TIME].to_numpy().view(np.int64))
    model = FittedModel(
        get_backend("lightgbm"), None, plan.schema, plan.context, _params(plan.schema)
    )
    fit = FitEncoding(model, rows, 1, np.random.default_rng(0), context_seed(11))
    n_train = rows.split(0.2)
    assert n_train == plan.n_train
    train = fit.part(rows.positions(0, n_train))
    valid = fit.part(rows.positions(n_train, len(rows)))
    fit.fill_out_of_fold(train, CONTEXT_DROPOUT, CONTEXT_SHORT_HISTORY)
    fit.fill_from_table(valid, fit.table(train))
    np.testing.assert_array_equal(pooled.X[:n_train], train.matrix.X)
    np.testing.assert_array_equal(pooled.X[n_train:], valid.matrix.X)
    np.testing.assert_array_equal(pooled.y, Py)
    np.testing.assert_array_equal(pooled.weight, Pw)
    everything = fit.part(rows.positions(0, len(rows)))
    fit.fill_out_of_fold(everything, CONTEXT_DROPOUT, CONTEXT_SHORT_HISTORY)
    # the regrown fit's rows: the same features, the context out of fold on all rows
    np.testing.assert_array_equal(regrown.X, everything.matrix.X)
    np.testing.assert_array_equal(regrown.y, Py)
    np.testing.assert_array_equal(regrown.weight, Pw)
    assert np.isnan(regrown.X[:, -3]).mean() == pytest.approx(CONTEXT_DROPOUT, abs=0.05)
    table = fit.table(everything)
    stored = split.table
    assert stored is not None and stored.keys == table.keys
    np.testing.assert_array_equal(stored.mean, table.mean)
    np.testing.assert_array_equal(stored.level_keys, table.level_keys)
    np.testing.assert_array_equal(stored.level_mean, table.level_mean)


def test_encode_batch_sorts_an_unsorted_batch():
    X, y, w = _pool(3, n_brands=2)
    stats = batch_statistics(X, y, w, group_column=GROUP, time_column=TIME)
    plan = pooled_plan(stats, group_column=GROUP, time_column=TIME, random_state=0)
    ordered = encode_batch(X, y, w, plan, dtype=np.float64)
    # the store's order (brand, then date): encode_batch orders by time, stably
    shuffle = np.lexsort((X[TIME].to_numpy(), X[GROUP].to_numpy()))
    assert not X[TIME].iloc[shuffle].is_monotonic_increasing
    again = encode_batch(X.iloc[shuffle], y[shuffle], w[shuffle], plan, dtype=np.float64)
    np.testing.assert_array_equal(again.X, ordered.X)


@pytest.mark.parametrize("sizes", [[7], [3, 4]])
def test_batched_pretraining_predicts_as_the_in_memory_model(sizes):
    X, y, w = _pool(4)
    batches = _batches(X, y, w, sizes)
    PX, Py, Pw = _concat(batches)
    expected = _in_memory(PX, Py, Pw, **FIT)
    got = pretrain_batched(
        get_backend("lightgbm"),
        _params,
        lambda: batches,
        group_column=GROUP,
        time_column=TIME,
        dtype=np.float64,
        **FIT,
    )
    assert got.n_rounds == expected.n_rounds
    assert got.holdout_scores["global"] == pytest.approx(
        expected.holdout_scores["global"], rel=1e-9
    )
    a, b = expected.model, got.model
    assert a.schema == b.schema and a.context.keys == b.context.keys
    pa = a.predict(a.encode(PX, PX[GROUP]))
    pb = b.predict(b.encode(PX, PX[GROUP]))
    if len(sizes) == 1:
        np.testing.assert_array_equal(pb, pa)  # one batch: the same model bit for bit
    else:
        np.testing.assert_allclose(pb, pa, rtol=1e-6)  # prior: sums in another order
    f32 = pretrain_batched(
        get_backend("lightgbm"),
        _params,
        lambda: batches,
        group_column=GROUP,
        time_column=TIME,
        **FIT,
    )
    pc = f32.model.predict(f32.model.encode(PX, PX[GROUP]))
    np.testing.assert_allclose(pc, pa, rtol=1e-3)


def test_pipeline_pretrain_in_batches_matches_the_in_memory_fit(small_config, monkeypatch):
    """``pipeline.pretrain`` reads brand batches: its model is the in-memory fit of the
    batches' rows (features rounded to float32 as the batched matrix holds them); the budget
    task's pooled response is the one of all rows."""
    from tabtune import pipeline
    from tabtune.cli import main
    from tabtune.config import load_config
    from tabtune.tasks.budget import load_pooled_response, pooled_response

    assert main(["--config", str(small_config), "synth"]) == 0
    cfg = load_config(small_config)
    monkeypatch.setattr(pipeline, "PRETRAIN_BATCH_ROWS", 1_000)  # several batches of brands
    store = pipeline.store_for(cfg)
    groups = pipeline.brand_batches(store.row_counts(), 1_000)
    assert len(groups) > 2
    for task_name in ("bid", "budget"):
        task = cfg.task(task_name)
        result = pipeline.pretrain(cfg, task_name)
        parts = [pipeline.task_data(store.read(brands=g), task) for g in groups]
        X, y, w = _concat([(p.X, p.y, p.weight) for p in parts])
        numeric = [c for c in X.columns if X[c].dtype == np.float64]
        X32 = X.astype({c: np.float32 for c in numeric}).astype({c: np.float64 for c in numeric})
        expected = pipeline.global_estimator(cfg, task).fit(X32, y, sample_weight=w)
        _, got = pipeline.load_global(cfg, task_name)
        assert result.rows == len(y) and result.brands == X["brand_id"].nunique()
        assert got.best_iteration_ == expected.best_iteration_
        np.testing.assert_allclose(got.predict(X32), expected.predict(X32), rtol=1e-3)
        assert got.holdout_scores_["global"] == pytest.approx(
            expected.holdout_scores_["global"], rel=1e-3
        )
        if task_name == "budget":
            ref = pipeline.registry_for(cfg).resolve(task_name)
            stored = load_pooled_response(ref.path)
            whole = pooled_response(cfg, store.read())
            assert (stored is None) == (whole is None)
            if whole is not None:
                assert json_equal(stored.to_dict(), whole.to_dict())


def json_equal(a, b, rel=1e-9):
    """Nested JSON values equal, floats to ``rel``."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k], rel) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y, rel) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return a == pytest.approx(b, rel=rel, abs=1e-12)
    return a == b


def test_batched_pretraining_with_xgboost_predicts_as_the_in_memory_model():
    X, y, w = _pool(5)
    batches = _batches(X, y, w, [3, 4])
    PX, Py, Pw = _concat(batches)
    expected = _in_memory(PX, Py, Pw, backend="xgboost", **FIT)
    got = pretrain_batched(
        get_backend("xgboost"),
        _params,
        lambda: batches,
        group_column=GROUP,
        time_column=TIME,
        dtype=np.float64,
        **FIT,
    )
    assert got.n_rounds == expected.n_rounds
    a, b = expected.model, got.model
    np.testing.assert_allclose(
        b.predict(b.encode(PX, PX[GROUP])), a.predict(a.encode(PX, PX[GROUP])), rtol=1e-5
    )


# -- early stopping on a sample of brands ------------------------------------------------------
def test_stopping_sample_is_per_brand_stable_and_about_the_fraction():
    brands = np.array([f"brand-{i}" for i in range(2000)], dtype=object)
    inside = stopping_sample(brands, 0.3, seed=5)
    assert inside is not None and 0.26 < inside.mean() < 0.34
    # the same brands whatever the rows, their order or repetitions (batches, partitions)
    rows = np.repeat(brands, 3)[::-1]
    again = stopping_sample(rows, 0.3, seed=5)
    expected = dict(zip(brands, inside, strict=True))
    assert again.tolist() == [expected[b] for b in rows]
    # another seed draws other brands; every brand at 1.0
    other = stopping_sample(brands, 0.3, seed=6)
    assert (other != inside).mean() > 0.2
    assert stopping_sample(brands, 1.0, seed=5) is None
    assert stopping_fraction(1000, 250, regrow=True) == 0.25
    assert stopping_fraction(1000, 250, regrow=False) == 1.0  # the early-stopped model is kept
    assert stopping_fraction(1000, 5000, regrow=True) == 1.0
    assert stopping_fraction(1000, None, regrow=True) == 1.0


SAMPLED = dict(FIT, n_estimators=200, early_stopping_rounds=3)


def _sampled_fit_oracle(PX, Py, Pw, max_rows):
    """Raw LightGBM's early stopping on the sampled brands' rows, encoded as for all rows:
    its round count and holdout deviance."""
    import lightgbm as lgb

    schema = FeatureSchema.from_table(PX, exclude=[GROUP, TIME])
    rows = Rows(PX, Py, Pw, None, PX[GROUP], PX[TIME].to_numpy().view(np.int64))
    stats = batch_statistics(PX, Py, Pw, group_column=GROUP, time_column=TIME)
    plan = pooled_plan(stats, group_column=GROUP, time_column=TIME, validation_fraction=0.2)
    backend = get_backend("lightgbm")
    model = FittedModel(backend, None, schema, plan.context, _params(schema))
    model.params = padded_params(model.params, model.layout)
    seed = context_seed(SAMPLED["random_state"])
    fit = FitEncoding(model, rows, 1, np.random.default_rng(SAMPLED["random_state"]), seed)
    n_train = rows.split(0.2)
    train = fit.part(rows.positions(0, n_train))
    valid = fit.part(rows.positions(n_train, len(rows)))
    fit.fill_out_of_fold(train, CONTEXT_DROPOUT, CONTEXT_SHORT_HISTORY)
    fit.fill_from_table(valid, fit.table(train))
    inside = stopping_sample(PX[GROUP].to_numpy(), max_rows / n_train, seed)
    tr, va = inside[:n_train], inside[n_train:]
    params = backend.native_params(model.params)
    names = list(model.layout.names)
    dtrain = lgb.Dataset(
        train.matrix.X[tr], Py[:n_train][tr], weight=Pw[:n_train][tr], feature_name=names,
        categorical_feature=list(model.layout.categorical), free_raw_data=False,
    )  # fmt: skip
    dvalid = dtrain.create_valid(valid.matrix.X[va], Py[n_train:][va], weight=Pw[n_train:][va])
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=SAMPLED["n_estimators"],
        valid_sets=[dvalid],
        callbacks=[lgb.early_stopping(SAMPLED["early_stopping_rounds"], verbose=False)],
    )
    return booster.best_iteration, int(tr.sum()), n_train


def test_early_stopping_on_a_brand_sample_matches_raw_lightgbm_and_the_batched_path():
    X, y, w = _pool(4, n_brands=24)
    batches = _batches(X, y, w, [10, 14])
    PX, Py, Pw = _concat(batches)
    everything = _in_memory(PX, Py, Pw, **SAMPLED)
    n_train = holdout_split(len(Py), 0.2, PX[TIME].to_numpy().view(np.int64))
    max_rows = n_train // 3
    sampled = _in_memory(PX, Py, Pw, **SAMPLED, early_stopping_max_rows=max_rows)
    rounds, in_sample, n = _sampled_fit_oracle(PX, Py, Pw, max_rows)
    assert n == n_train and 0 < in_sample < n_train  # a real sample of the training rows
    assert sampled.n_rounds == rounds  # the oracle: raw LightGBM on the sampled rows
    # the sample changed what early stopping saw (so the test can fail)
    assert (sampled.n_rounds, sampled.holdout_scores["global"]) != (
        everything.n_rounds,
        everything.holdout_scores["global"],
    )
    # the kept model is grown on every row: a fit of that many rounds without early stopping
    plain = _in_memory(
        PX, Py, Pw, **dict(SAMPLED, early_stopping_rounds=None, n_estimators=sampled.n_rounds)
    )
    a, b = sampled.model, plain.model
    np.testing.assert_array_equal(
        a.predict(a.encode(PX, PX[GROUP])), b.predict(b.encode(PX, PX[GROUP]))
    )
    # the batched path stops on the same brands' rows
    got = pretrain_batched(
        get_backend("lightgbm"),
        _params,
        lambda: batches,
        group_column=GROUP,
        time_column=TIME,
        dtype=np.float64,
        early_stopping_max_rows=max_rows,
        **SAMPLED,
    )
    assert got.n_rounds == sampled.n_rounds
    assert got.holdout_scores["global"] == pytest.approx(sampled.holdout_scores["global"], rel=1e-9)
    pg = got.model.predict(got.model.encode(PX, PX[GROUP]))
    np.testing.assert_allclose(pg, a.predict(a.encode(PX, PX[GROUP])), rtol=1e-6)
    # without the regrow the early-stopped model is kept: no sample then
    kept = _in_memory(PX, Py, Pw, **SAMPLED, regrow=False, early_stopping_max_rows=max_rows)
    unsampled = _in_memory(PX, Py, Pw, **SAMPLED, regrow=False)
    assert kept.n_rounds == unsampled.n_rounds
    assert kept.holdout_scores == unsampled.holdout_scores


def test_sample_pass_encodes_only_the_sampled_brands_as_the_full_pass_does(monkeypatch):
    import tabtune.transfer.pooled_batches as pb

    X, y, w = _pool(4, n_brands=24)
    batches = _batches(X, y, w, [10, 14])
    stats = batch_statistics(*batches[0], group_column=GROUP, time_column=TIME).merge(
        batch_statistics(*batches[1], group_column=GROUP, time_column=TIME)
    )
    n_train = holdout_counts(stats.n_rows, 0.2, stats.time_counts)[0]
    plan = pooled_plan(
        stats,
        group_column=GROUP,
        time_column=TIME,
        validation_fraction=0.2,
        random_state=3,
        early_stopping_max_rows=n_train // 3,
    )
    assert plan.stop_fraction < 1.0
    full = encode_pooled(plan, stats, lambda: batches, np.float64, split=True).take()
    encoded = []
    real = pb.encode_batch
    monkeypatch.setattr(
        pb, "encode_batch", lambda bx, *a, **k: encoded.append(len(bx)) or real(bx, *a, **k)
    )
    got = encode_sampled(plan, lambda: batches, np.float64)
    assert got is not None and got.table is None
    sampled = [block.sampled() for block in full]
    assert sum(encoded) == sum(len(m.y) for m in sampled) < stats.n_rows  # only the sample
    for block, want in zip(got.take(), sampled, strict=True):
        np.testing.assert_array_equal(block.X, want.X)  # same rows, same order, same features
        np.testing.assert_array_equal(block.y, want.y)
        np.testing.assert_array_equal(block.weight, want.weight)
    # a sample without holdout rows: early stopping learns from every row (None)
    monkeypatch.setattr(pb, "encode_batch", real)
    late = [(bx, by, bw) for bx, by, bw in batches]
    cut = pd.Timestamp(plan.cut)
    early = [
        (bx[bx[TIME] < cut].reset_index(drop=True), by[(bx[TIME] < cut).to_numpy()],
         bw[(bx[TIME] < cut).to_numpy()])
        for bx, by, bw in late
    ]  # fmt: skip
    assert encode_sampled(plan, lambda: early, np.float64) is None


def test_pipeline_pretrain_with_a_brand_sample_matches_the_in_memory_fit(small_config, monkeypatch):
    """The store's brand batches through the sample-only encoding pass (early stopping on a
    sample of brands) give the in-memory fit with the same sample."""
    import tabtune.transfer.pooled_batches as pb
    from tabtune import pipeline
    from tabtune.cli import main
    from tabtune.config import load_config

    assert main(["--config", str(small_config), "synth"]) == 0
    cfg = load_config(small_config)
    monkeypatch.setattr(pipeline, "PRETRAIN_BATCH_ROWS", 1_000)  # several batches of brands
    store = pipeline.store_for(cfg)
    groups = pipeline.brand_batches(store.row_counts(), 1_000)
    task = cfg.task("bid")
    parts = [pipeline.task_data(store.read(brands=g), task) for g in groups]
    X, y, w = _concat([(p.X, p.y, p.weight) for p in parts])
    cfg.model.early_stopping_max_rows = len(y) // 4  # about a third of the training rows
    sampled = []
    real = pb.encode_sampled

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        sampled.append(out is not None)
        return out

    monkeypatch.setattr(pb, "encode_sampled", spy)
    pipeline.pretrain(cfg, "bid")
    assert sampled == [True]  # the sample-only pass ran (and was usable)
    numeric = [c for c in X.columns if X[c].dtype == np.float64]
    X32 = X.astype({c: np.float32 for c in numeric}).astype({c: np.float64 for c in numeric})
    expected = pipeline.global_estimator(cfg, task).fit(X32, y, sample_weight=w)
    _, got = pipeline.load_global(cfg, "bid")
    assert got.best_iteration_ == expected.best_iteration_
    np.testing.assert_allclose(got.predict(X32), expected.predict(X32), rtol=1e-3)
    assert got.holdout_scores_["global"] == pytest.approx(
        expected.holdout_scores_["global"], rel=1e-3
    )
    # the sample changed what early stopping saw (so the test can fail)
    cfg.model.early_stopping_max_rows = None
    everything = pipeline.global_estimator(cfg, task).fit(X32, y, sample_weight=w)
    assert everything.holdout_scores_["global"] != pytest.approx(
        got.holdout_scores_["global"], rel=1e-3
    )


def test_batched_pretraining_refuses_a_pooled_target_that_is_zero_everywhere():
    # The rule is on the pooled rows, not on each batch: a batch of brands without a positive
    # target is fine among others; zero in every batch is refused (the in-memory rule).
    X, y, w = _pool(4)
    zero_first = np.where(X[GROUP].isin(["b00", "b01", "b02"]).to_numpy(), 0.0, y)
    batches = _batches(X, zero_first, w, [3, 4])
    assert not batches[0][1].any() and batches[1][1].any()

    def fit(parts):
        return pretrain_batched(
            get_backend("lightgbm"),
            _params,
            lambda: parts,
            group_column=GROUP,
            time_column=TIME,
            **FIT,
        )

    assert fit(batches).n_rounds > 0
    zero = _batches(X, np.zeros(len(y)), w, [3, 4])
    with pytest.raises(ZeroTargetError, match="nothing to pretrain on"):
        fit(zero)
    with pytest.raises(ZeroTargetError, match="nothing to pretrain on"):
        _in_memory(*_concat(zero), **FIT)
