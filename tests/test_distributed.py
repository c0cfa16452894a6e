"""Pretraining on Dask: the per-partition pieces against the in-memory path, and a local cluster.

The pure functions of :mod:`tabtune.distributed.partitions` are checked against what the
single-process pretraining computes on all rows at once (the schema, the level column, the
holdout split, the context table) and against LightGBM itself (early stopping, predictions);
one test pretrains through an in-process ``LocalCluster`` and adapts a brand from the result.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from tabtune.config import load_config
from tabtune.distributed.partitions import (
    MATRIX_DTYPE,
    TARGET,
    WEIGHT,
    Part,
    encode_partition,
    partition_batch,
    partition_part,
    partition_statistics,
    sample_counts,
    stopping_round,
    validation_curve,
)
from tabtune.distributed.pretraining import brand_groups
from tabtune.evaluation import row_losses
from tabtune.features import GROUP_COLUMN, TIME_COLUMN
from tabtune.optional import is_available
from tabtune.pipeline import pretrain_scheduler
from tabtune.transfer.pooled_batches import EncodedBatch, encode_batch, pooled_plan
from tabtune.transfer.pretraining import stopping_sample

BRANDS = [f"b{i:02d}" for i in range(7)]


def _frame(seed: int = 0, n: int = 3000) -> pd.DataFrame:
    """A partition: rows like a task's model inputs, with a target and weights."""
    rng = np.random.default_rng(seed)
    brand = rng.choice(BRANDS, n)
    dates = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 60, n), unit="D")
    frame = pd.DataFrame(
        {
            GROUP_COLUMN: brand.astype(str),
            TIME_COLUMN: dates,
            "channel": pd.Series(rng.choice(["search", "social", "display"], n), dtype="str"),
            "relative_bid": rng.normal(1, 0.2, n),
        }
    )
    frame[TARGET] = rng.gamma(2.0, 1.0, n)
    frame[WEIGHT] = rng.integers(1, 50, n).astype(float)
    return frame.sort_values(TIME_COLUMN, kind="stable").reset_index(drop=True)


def test_brand_groups_hold_every_brand_once_balanced() -> None:
    counts = {"a": 100, "b": 90, "c": 10, "d": 10, "e": 5}
    groups = brand_groups(counts, 2)
    assert sorted(b for g in groups for b in g) == sorted(counts)
    sizes = sorted(sum(counts[b] for b in g) for g in groups)
    assert sizes == [105, 110]
    assert len(brand_groups(counts, 10)) == len(counts)


def test_partition_parts_are_the_encoded_batch_split_at_the_holdout() -> None:
    frame = _frame()
    stats = partition_statistics(frame, 1)
    assert stats is not None and stats.n_rows == len(frame)
    plan = pooled_plan(stats, group_column=GROUP_COLUMN, time_column=TIME_COLUMN, random_state=0)
    assert plan.cut is not None and plan.context is not None
    batch = encode_partition(frame, plan, True)
    X, y, w = partition_batch(frame)
    expected = encode_batch(X, y, w, plan, dtype=MATRIX_DTYPE, regrow=True)
    np.testing.assert_array_equal(batch.X, expected.X)
    train, valid, everything = (
        partition_part(batch, p) for p in (Part.TRAIN, Part.VALID, Part.ALL)
    )
    assert len(train[1]) == batch.n_train and len(train[1]) + len(valid[1]) == len(frame)
    np.testing.assert_array_equal(np.vstack([train[0], valid[0]]), batch.X)
    width = len(plan.schema.columns)
    np.testing.assert_array_equal(everything[0][:, :width], batch.X[:, :width])
    assert batch.regrow_context is not None
    np.testing.assert_array_equal(everything[0][:, width:], batch.regrow_context)
    # an unweighted partition trains with weights of one
    unweighted = frame.drop(columns=[WEIGHT])
    stats = partition_statistics(unweighted, 1)
    assert stats is not None and not stats.weighted
    plan = pooled_plan(stats, group_column=GROUP_COLUMN, time_column=TIME_COLUMN, random_state=0)
    assert (partition_part(encode_partition(unweighted, plan, True), Part.ALL)[2] == 1).all()
    assert partition_statistics(frame.iloc[:0], 1) is None
    empty = encode_partition(frame.iloc[:0], plan, True)
    for part in (Part.TRAIN, Part.VALID, Part.ALL):
        X, y, w = partition_part(empty, part)
        assert X.shape == (0, batch.X.shape[1]) and len(y) == len(w) == 0
    curve, weight = validation_curve(empty, "", "tweedie", 3)
    assert weight == 0 and not curve.any()


def _regression(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = np.exp(0.3 * X[:, 0] - 0.2 * X[:, 1]) * rng.gamma(2.0, 0.5, n)
    return X, y, rng.integers(1, 5, n).astype(float)


def test_validation_curve_and_stopping_round_match_lightgbm() -> None:
    X, y, w = _regression(0, 1500)
    Xv, yv, wv = _regression(1, 400)
    params = {"objective": "tweedie", "metric": "tweedie", "learning_rate": 0.3, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(X, y, weight=w), num_boost_round=60)
    part = EncodedBatch(
        np.vstack([X[:5], Xv]),
        np.r_[y[:5], yv],
        np.r_[w[:5], wv],
        np.arange(405),
        5,
        None,
        None,
        np.empty(0, dtype=np.int64),
    )  # 5 training rows, then the holdout rows
    curve, weight = validation_curve(part, booster.model_to_string(), "tweedie", 60)
    assert weight == pytest.approx(wv.sum())
    for k in (1, 7, 60):
        expected = np.sum(wv * row_losses("tweedie", yv, booster.predict(Xv, num_iteration=k)))
        assert curve[k - 1] == pytest.approx(expected, rel=1e-9)
    stopped = lgb.train(
        params,
        lgb.Dataset(X, y, weight=w),
        num_boost_round=60,
        valid_sets=[lgb.Dataset(Xv, yv, weight=wv)],
        callbacks=[lgb.early_stopping(5, verbose=False)],
    )
    assert stopping_round(curve, 5) == stopped.best_iteration
    assert stopping_round(np.array([3.0, 2.0, 2.0, 1.0]), 10) == 4


def test_pretrain_scheduler_rule(tmp_path: Path) -> None:
    from conftest import write_small_config

    cfg = load_config(write_small_config(tmp_path))
    assert pretrain_scheduler(cfg) is None
    assert pretrain_scheduler(cfg, "local") == "local"
    dask_local = cfg.model_copy(
        update={"refresh": cfg.refresh.model_copy(update={"executor": "dask"})}
    )
    assert pretrain_scheduler(dask_local) is None  # a local cluster for brands: pretrain here
    remote = dask_local.model_copy(
        update={"refresh": dask_local.refresh.model_copy(update={"scheduler": "tcp://h:8786"})}
    )
    assert pretrain_scheduler(remote) == "tcp://h:8786"
    assert pretrain_scheduler(remote, "local") == "local"


@pytest.mark.skipif(not is_available("dask.distributed"), reason="needs dask.distributed")
def test_one_worker_xgboost_cluster_gives_the_single_process_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``backend: xgboost`` pretrains with ``xgboost.dask``: on one worker its quantile sketch,
    early stopping and regrown fit are those of ``xgboost.train`` in one process, so the model,
    its round count and its holdout score are the single-process ones. The caller has its own
    client of the cluster (tabtune's must still run the graphs that hold its futures)."""
    from conftest import write_small_config
    from distributed import Client, LocalCluster

    from tabtune.cli import EXIT_OK, main
    from tabtune.pipeline import load_model, load_task_data, pretrain, registry_for

    monkeypatch.chdir(tmp_path)
    path = write_small_config(tmp_path, backend="xgboost")
    assert main(["--config", str(path), "synth"]) == EXIT_OK
    cfg = load_config(path)
    single = pretrain(cfg, "bid", promote=False)
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        res = pretrain(cfg, "bid", scheduler=cluster.scheduler_address, promote=False)
    registry = registry_for(cfg)
    assert registry.manifest(registry.from_id(res.model_id))["trained_on"] == "dask"
    oracle = load_model(registry.from_id(single.model_id), cfg.task("bid"))
    model = load_model(registry.from_id(res.model_id), cfg.task("bid"))
    assert type(model.booster_).__module__.startswith("xgboost")
    data = load_task_data(cfg, cfg.task("bid"))
    np.testing.assert_allclose(model.predict(data.X), oracle.predict(data.X), rtol=1e-6)
    assert model.best_iteration_ == oracle.best_iteration_ < cfg.model.n_estimators
    assert res.holdout_score == pytest.approx(single.holdout_score, rel=1e-6)


def test_holdout_loss_sums_to_the_holdout_score_of_all_rows() -> None:
    """Per-partition sums of :func:`holdout_loss` give the weighted mean that
    :func:`~tabtune.evaluation.holdout_score` computes on every holdout row at once."""
    from tabtune.boosting.base import Layout, get_backend
    from tabtune.distributed.partitions import holdout_loss
    from tabtune.evaluation import holdout_score

    frames = [_frame(seed=s, n=1500) for s in (1, 2)]
    whole = pd.concat(frames, ignore_index=True)
    plan = pooled_plan(
        partition_statistics(whole, 1),
        group_column=GROUP_COLUMN,
        time_column=TIME_COLUMN,
        n_classes=1,
        validation_fraction=0.25,
        early_stopping=True,
        random_state=0,
    )
    batches = [encode_partition(f, plan, False) for f in frames]
    X = np.vstack([b.X[: b.n_train] for b in batches])
    y = np.concatenate([b.y[: b.n_train] for b in batches])
    booster = lgb.train(
        {"objective": "tweedie", "verbose": -1, "num_leaves": 7},
        lgb.Dataset(X, y),
        num_boost_round=20,
    )
    backend = get_backend("lightgbm")
    layout = Layout(names=tuple(f"f{i}" for i in range(X.shape[1])), categorical=())
    pieces = [
        holdout_loss(b, "lightgbm", backend.to_bytes(booster), layout, "tweedie") for b in batches
    ]
    valid = [(b.X[b.n_train :], b.y[b.n_train :], b.weight[b.n_train :]) for b in batches]
    Xv, yv, wv = (np.concatenate([v[k] for v in valid]) for k in range(3))
    expected = holdout_score("tweedie", yv, booster.predict(Xv), wv)
    assert sum(w for _, w in pieces) == pytest.approx(wv.sum())
    assert sum(loss for loss, _ in pieces) / sum(w for _, w in pieces) == pytest.approx(expected)


@pytest.mark.skipif(not is_available("dask.distributed"), reason="needs dask.distributed")
def test_one_worker_cluster_gives_the_single_process_model(small_config: Path) -> None:
    """On one worker ``lightgbm.dask`` is LightGBM's serial learner, and the partitions are
    encoded as the single-process path encodes its batches: the same model, published as an
    ordinary global model that a brand is adapted from."""
    from tabtune.cli import EXIT_OK, main
    from tabtune.pipeline import (
        finetune_brand,
        load_global,
        load_model,
        load_task_data,
        pretrain,
        registry_for,
    )

    assert main(["--config", str(small_config), "synth"]) == EXIT_OK
    cfg = load_config(small_config)
    one = cfg.model_copy(update={"refresh": cfg.refresh.model_copy(update={"n_workers": 1})})
    single = pretrain(cfg, "bid", promote=False)
    res = pretrain(one, "bid", scheduler="local")
    ref, model = load_global(cfg, "bid")
    assert ref.id == res.model_id and res.rows == single.rows and res.brands == 6
    assert registry_for(cfg).manifest(ref)["trained_on"] == "dask"
    oracle = load_model(registry_for(cfg).from_id(single.model_id), cfg.task("bid"))
    data = load_task_data(cfg, cfg.task("bid"))
    np.testing.assert_allclose(model.predict(data.X), oracle.predict(data.X), rtol=1e-6)
    assert model.best_iteration_ == oracle.best_iteration_
    assert res.holdout_score == pytest.approx(single.holdout_score, rel=1e-5)
    brand = str(data.X[GROUP_COLUMN].iloc[-1])
    adapted = finetune_brand(cfg, "bid", brand)
    assert adapted.rows > 0 and adapted.strategy
    # it records the champion it replaced: the global model, so a rollback returns to it
    first = registry_for(cfg).champion("bid", brand=brand)
    assert registry_for(cfg).manifest(first)["champion_before"] is None
    again = finetune_brand(cfg, "bid", brand)
    second = registry_for(cfg).from_id(again.model_id)
    assert registry_for(cfg).manifest(second)["champion_before"] == first.id
    assert registry_for(cfg).rollback("bid", brand) == first
    assert registry_for(cfg).rollback("bid", brand) is None
    # the budget task: its model and the pooled Hill response kept with it
    from tabtune.tasks.budget import load_pooled_response

    registry = registry_for(cfg)
    on_dask = registry.from_id(pretrain(one, "budget", scheduler="local").model_id)
    here = registry.from_id(pretrain(cfg, "budget", promote=False).model_id)
    hill = load_pooled_response(on_dask.path)
    assert hill is not None and hill.to_dict() == load_pooled_response(here.path).to_dict()
    budget = load_task_data(cfg, cfg.task("budget"))
    np.testing.assert_allclose(
        load_model(on_dask, cfg.task("budget")).predict(budget.X),
        load_model(here, cfg.task("budget")).predict(budget.X),
        rtol=1e-6,
    )


def test_sampled_parts_hold_the_sample_brands_rows_only() -> None:
    frame = _frame(n=4000)
    stats = partition_statistics(frame, 1)
    assert stats is not None
    plan = pooled_plan(
        stats,
        group_column=GROUP_COLUMN,
        time_column=TIME_COLUMN,
        random_state=0,
        early_stopping_max_rows=1500,
    )
    assert 0 < plan.stop_fraction < 1
    batch = encode_partition(frame, plan, True)
    assert batch.in_sample is not None
    X, y, w = partition_batch(frame)
    expected = stopping_sample(X[GROUP_COLUMN].to_numpy(), plan.stop_fraction, plan.seed)
    np.testing.assert_array_equal(batch.in_sample, expected)  # sorted by time already
    train, valid = (partition_part(batch, p, True) for p in (Part.TRAIN, Part.VALID))
    inside = batch.in_sample
    np.testing.assert_array_equal(train[0], batch.X[: batch.n_train][inside[: batch.n_train]])
    holdout_y = batch.y[batch.n_train :][inside[batch.n_train :]]
    np.testing.assert_array_equal(valid[1], holdout_y.astype(MATRIX_DTYPE))
    assert sample_counts(batch) == (len(train[1]), len(valid[1]))
    assert 0 < len(train[1]) < batch.n_train
    # the regrown fit's rows and the unsampled parts are every row
    assert len(partition_part(batch, Part.ALL, True)[1]) == len(frame)
    assert len(partition_part(batch, Part.TRAIN)[1]) == batch.n_train


@pytest.mark.skipif(not is_available("dask.distributed"), reason="needs dask.distributed")
def test_one_worker_cluster_stops_early_on_the_same_brand_sample(small_config: Path) -> None:
    """With ``early_stopping_max_rows`` below the training rows, the Dask fit stops early on
    the same sampled brands' rows as the single-process fit: the same round count, holdout
    score and regrown model; and the sample changed them (the test can fail)."""
    from tabtune.cli import EXIT_OK, main
    from tabtune.pipeline import load_model, load_task_data, pretrain, registry_for

    assert main(["--config", str(small_config), "synth"]) == EXIT_OK
    cfg = load_config(small_config)
    everything = pretrain(cfg, "bid", promote=False)
    small = cfg.model_copy(
        update={
            "model": cfg.model.model_copy(
                update={"early_stopping_max_rows": everything.rows // 3, "n_estimators": 150}
            ),
            "refresh": cfg.refresh.model_copy(update={"n_workers": 1}),
        }
    )
    full = cfg.model_copy(
        update={
            "model": cfg.model.model_copy(
                update={"early_stopping_max_rows": None, "n_estimators": 150}
            )
        }
    )
    single = pretrain(small, "bid", promote=False)
    unsampled = pretrain(full, "bid", promote=False)
    res = pretrain(small, "bid", scheduler="local", promote=False)
    registry = registry_for(cfg)
    oracle = load_model(registry.from_id(single.model_id), cfg.task("bid"))
    model = load_model(registry.from_id(res.model_id), cfg.task("bid"))
    other = load_model(registry.from_id(unsampled.model_id), cfg.task("bid"))
    assert (oracle.best_iteration_, single.holdout_score) != (
        other.best_iteration_,
        unsampled.holdout_score,
    )
    assert model.best_iteration_ == oracle.best_iteration_
    assert res.holdout_score == pytest.approx(single.holdout_score, rel=1e-5)
    data = load_task_data(cfg, cfg.task("bid"))
    np.testing.assert_allclose(model.predict(data.X), oracle.predict(data.X), rtol=1e-6)


@pytest.mark.skipif(not is_available("dask.distributed"), reason="needs dask.distributed")
def test_pretraining_on_dask_refuses_a_target_that_is_zero_everywhere(small_config: Path) -> None:
    """The partitions' summed target decides, as the batched path's: the error names the
    task's target and nothing is published."""
    from tabtune.cli import EXIT_OK, main
    from tabtune.data.store import CampaignStore
    from tabtune.errors import TabTuneInputError
    from tabtune.pipeline import pretrain, registry_for

    assert (
        main(["--config", str(small_config), "synth", "--brands", "2", "--days", "30"]) == EXIT_OK
    )
    cfg = load_config(small_config)
    store = CampaignStore(cfg.data.store)
    rows = store.read()
    for brand in store.brands():
        shutil.rmtree(store.partition_dir(brand))
    store.append(rows.assign(revenue=0.0, conversions=0))
    one = cfg.model_copy(update={"refresh": cfg.refresh.model_copy(update={"n_workers": 1})})
    with pytest.raises(TabTuneInputError, match="the target revenue / clicks is zero on every"):
        pretrain(one, "bid", scheduler="local")
    assert registry_for(cfg).versions("bid") == []
