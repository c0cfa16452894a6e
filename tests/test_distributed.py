"""Pretraining on Dask: the per-partition pieces against the in-memory path, and a local cluster.

The pure functions of :mod:`tabtune.distributed.partitions` are checked against what the
single-process pretraining computes on all rows at once (the schema, the level column, the
holdout split, the context table) and against LightGBM itself (early stopping, predictions);
one test pretrains through an in-process ``LocalCluster`` and adapts a brand from the result.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from tabtune.boosting.encoding import FeatureSchema
from tabtune.config import load_config
from tabtune.distributed.partitions import (
    TARGET,
    WEIGHT,
    Encoded,
    context_spec,
    encode_partition,
    holdout_cut,
    level_column,
    merge_statistics,
    partition_statistics,
    partition_table,
    pooled_schema,
    stopping_round,
    validation_curve,
)
from tabtune.distributed.pretraining import brand_groups
from tabtune.errors import TabTuneInputError
from tabtune.evaluation import holdout_split, row_losses
from tabtune.features import GROUP_COLUMN, TIME_COLUMN
from tabtune.optional import is_available
from tabtune.pipeline import pretrain_scheduler
from tabtune.transfer.context import CONTEXT_SMOOTHING, choose_level_column

BRANDS = [f"b{i:02d}" for i in range(7)]


def _frame(seed: int = 0, n: int = 3000) -> pd.DataFrame:
    """Rows like a task's model inputs, time-ordered, with a target and weights."""
    rng = np.random.default_rng(seed)
    brand = rng.choice(BRANDS, n, p=np.linspace(1, 3, len(BRANDS)) / np.linspace(1, 3, 7).sum())
    dates = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 60, n), unit="D")
    channel = rng.choice(["search", "social", "display", None], n)
    frame = pd.DataFrame(
        {
            GROUP_COLUMN: brand.astype(str),
            TIME_COLUMN: dates,
            "channel": pd.Series(channel, dtype="str"),
            "vertical": pd.Series([f"v{ord(b[-1]) % 3}" for b in brand], dtype="str"),
            "relative_bid": rng.normal(1, 0.2, n),
        }
    )
    frame[TARGET] = rng.gamma(2.0, 1.0, n) * (1 + (frame["channel"] == "search"))
    frame[WEIGHT] = rng.integers(1, 50, n).astype(float)
    return frame.sort_values(TIME_COLUMN, kind="stable").reset_index(drop=True)


def _split_by_brand(frame: pd.DataFrame) -> list[pd.DataFrame]:
    groups = brand_groups(frame[GROUP_COLUMN].value_counts().to_dict(), 3)
    return [frame[frame[GROUP_COLUMN].isin(g)].reset_index(drop=True) for g in groups]


def test_brand_groups_hold_every_brand_once_balanced() -> None:
    counts = {"a": 100, "b": 90, "c": 10, "d": 10, "e": 5}
    groups = brand_groups(counts, 2)
    assert sorted(b for g in groups for b in g) == sorted(counts)
    sizes = sorted(sum(counts[b] for b in g) for g in groups)
    assert sizes == [105, 110]
    assert len(brand_groups(counts, 10)) == len(counts)


def test_pooled_statistics_match_the_in_memory_schema_and_context() -> None:
    frame = _frame()
    parts = _split_by_brand(frame)
    pooled = merge_statistics([partition_statistics(p, 1, False) for p in parts])
    assert pooled.rows == len(frame) and pooled.brands == len(BRANDS)
    features = frame.drop(columns=[TARGET, WEIGHT])
    expected = FeatureSchema.from_table(features, exclude=[GROUP_COLUMN, TIME_COLUMN])
    schema = pooled_schema(frame.iloc[:0], pooled)
    assert schema == expected
    codes, uniques = pd.factorize(frame[GROUP_COLUMN])
    assert level_column(schema, pooled) == choose_level_column(
        schema, features, np.asarray(codes), len(uniques)
    )
    assert level_column(schema, pooled) == "channel"  # "vertical" is one level per brand
    spec = context_spec(schema, pooled, 1)
    y, w = frame[TARGET].to_numpy(), frame[WEIGHT].to_numpy()
    assert spec.prior == pytest.approx((np.average(y, weights=w),), rel=1e-12)
    assert spec.smoothing == pytest.approx(CONTEXT_SMOOTHING * w.mean(), rel=1e-12)


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.3, 0.9])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holdout_cut_is_the_single_process_split(fraction: float, seed: int) -> None:
    frame = _frame(seed, n=int(np.random.default_rng(seed).integers(20, 400)))
    parts = _split_by_brand(frame)
    pooled = merge_statistics([partition_statistics(p, 1, False) for p in parts])
    times = frame[TIME_COLUMN].to_numpy().astype("datetime64[ns]").view(np.int64)
    n_train = holdout_split(len(frame), fraction, np.sort(times))
    cut = holdout_cut(pooled, fraction)
    if n_train is None:
        assert cut is None
    else:
        assert cut is not None and int(np.sum(times < cut)) == n_train


def test_merged_context_table_is_the_table_of_all_rows() -> None:
    frame = _frame()
    parts = _split_by_brand(frame)
    pooled = merge_statistics([partition_statistics(p, 1, False) for p in parts])
    schema = pooled_schema(frame.iloc[:0], pooled)
    spec = context_spec(schema, pooled, 1)
    merged = spec
    for part in parts:
        merged = merged.overlay(partition_table(part, schema, spec))
    codes, uniques = pd.factorize(frame[GROUP_COLUMN])
    levels = schema.encode_column(frame, "channel")
    whole = spec.with_table(
        np.asarray(codes, dtype=np.int64),
        list(uniques),
        frame[TARGET].to_numpy().reshape(-1, 1),
        frame[WEIGHT].to_numpy(),
        levels,
    )
    np.testing.assert_allclose(
        merged.features(frame[GROUP_COLUMN], levels),
        whole.features(frame[GROUP_COLUMN], levels),
        rtol=1e-12,
    )


def test_encoded_partitions_split_train_and_holdout_by_the_cut() -> None:
    frame = _frame()
    pooled = merge_statistics([partition_statistics(frame, 1, False)])
    schema = pooled_schema(frame.iloc[:0], pooled)
    spec = context_spec(schema, pooled, 1)
    cut = holdout_cut(pooled, 0.2)
    assert cut is not None
    train = encode_partition(frame, schema, spec, "train", cut, [0, 1])
    valid = encode_partition(frame, schema, spec, "valid", cut, [0, 1])
    everything = encode_partition(frame, schema, spec, "all", None, [0, 1])
    assert len(train.y) + len(valid.y) == len(everything.y) == len(frame)
    width = len(schema.columns)
    np.testing.assert_array_equal(everything.X[:, :width], schema.encode(frame, None, order="C"))
    # holdout rows see the table of their brand's training rows, as at serving time
    days = frame[TIME_COLUMN].to_numpy().astype("datetime64[ns]").view(np.int64)
    older = frame[days < cut]
    table = partition_table(older, schema, spec)
    newer = frame[days >= cut]
    expected = table.features(newer[GROUP_COLUMN], schema.encode_column(newer, "channel"))
    np.testing.assert_allclose(valid.X[:, width:], expected, rtol=1e-12)
    # about CONTEXT_DROPOUT of the training rows have no context
    assert 0.05 < np.isnan(train.X[:, width]).mean() < 0.15


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
    part = Encoded(Xv, yv, wv)
    curve = validation_curve(booster.model_to_string(), part, "tweedie", 60)
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


def test_xgboost_backend_is_refused_with_the_fix(tmp_path: Path, monkeypatch) -> None:
    from conftest import write_small_config

    from tabtune.cli import EXIT_BAD_INPUT, main
    from tabtune.distributed import pretrain_on_dask

    monkeypatch.chdir(tmp_path)
    path = write_small_config(tmp_path, backend="xgboost")
    with pytest.raises(TabTuneInputError, match="backend: lightgbm"):
        pretrain_on_dask(load_config(path), "bid", scheduler="local")
    assert main(["--config", str(path), "pretrain", "--scheduler", "local"]) == EXIT_BAD_INPUT


@pytest.mark.skipif(not is_available("dask.distributed"), reason="needs dask.distributed")
def test_pretrain_on_a_local_cluster_gives_an_ordinary_global_model(
    small_config: Path,
) -> None:
    from tabtune.cli import EXIT_OK, main
    from tabtune.pipeline import finetune_brand, load_global, pretrain

    assert main(["--config", str(small_config), "synth"]) == EXIT_OK
    cfg = load_config(small_config)
    res = pretrain(cfg, "bid", scheduler="local")
    ref, model = load_global(cfg, "bid")
    assert ref.id == res.model_id and res.brands == 6
    assert model.strategy_ == "global" and model.holdout_scores_["global"] > 0
    assert model.best_iteration_ <= cfg.model.n_estimators
    assert set(model._model.context.keys) == {f"b{i:03d}" for i in range(6)}
    brand = sorted(model._model.context.keys)[0]
    adapted = finetune_brand(cfg, "bid", brand)  # adaptation uses it unchanged
    assert adapted.strategy and adapted.rows > 0
