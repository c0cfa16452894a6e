"""Pooled pretraining on a Dask cluster, with ``lightgbm.dask`` or ``xgboost.dask``.

The steps (each partition holds whole brands; see :mod:`tabtune.distributed.partitions`):

1. the store is read as a ``dask.dataframe``: one partition per group of brands, each read
   on a worker with the brand folders and the ``end`` date pushed down to the Parquet scan
   and turned into the task's model inputs there, where it stays;
2. the partitions' statistics (:func:`~tabtune.transfer.pooled_batches.batch_statistics`)
   are reduced into the plan: the feature schema, the brand-context specification and the
   holdout's first day, as the single-process fit decides them;
3. the partitions are encoded on the workers
   (:func:`~tabtune.transfer.pooled_batches.encode_batch`: the same rows as the
   single-process path, float32) into ``dask.array`` s;
4. the backend's distributed learner grows the trees on the rows before the holdout and
   stops early on the holdout; the model is then grown again on all rows for that many rounds
   (``regrow_on_all_rows``). ``lightgbm.dask`` (``backend: lightgbm``) has no early stopping:
   it grows every round, the holdout loss after every round is summed over the partitions
   and LightGBM's early-stopping rule applied to it. ``xgboost.dask`` (``backend: xgboost``)
   stops by itself on a ``DaskQuantileDMatrix`` of the holdout, as ``xgboost.train`` does in
   one process;
5. the partitions' context tables are joined, and the booster, the schema and the context
   become an ordinary estimator, written in tabtune's format and read back (so adaptation,
   the registry and the refresh use it unchanged).

What differs from the single-process fit: LightGBM's distributed learner (data parallel)
finds each feature's bins on one worker's rows and sums histograms across workers, so the
trees can differ slightly; XGBoost merges the workers' quantile sketches, whose cuts can also
differ slightly from one sketch of all rows; the stored context table lists the brands
partition by partition (lookups are the same).
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from tabtune.boosting.base import BoosterParams, Layout, get_backend
from tabtune.boosting.encoding import FeatureSchema
from tabtune.config import Config, TaskConfig
from tabtune.data.store import CampaignStore
from tabtune.distributed.cluster import Partitions, dask_client, dask_module
from tabtune.distributed.native_logs import route_on_cluster
from tabtune.distributed.partitions import (
    TARGET,
    WEIGHT,
    Part,
    encode_partition,
    holdout_loss,
    partition_part,
    partition_statistics,
    read_task_partition,
    sample_counts,
    stopping_round,
    validation_curve,
)
from tabtune.errors import TabTuneInputError
from tabtune.estimators.persistence import estimator_manifest, saved_params, write_estimator
from tabtune.features import GROUP_COLUMN, TIME_COLUMN
from tabtune.model_factory import estimator_class, global_estimator
from tabtune.spend_features import empty_daily_spend
from tabtune.tasks.budget import BudgetPlanner, fit_response
from tabtune.transfer import FittedModel
from tabtune.transfer.model import padded_params
from tabtune.transfer.pooled_batches import BatchStatistics, PooledPlan, concat_tables, pooled_plan
from tabtune.transfer.pretraining import check_pooled_target

__all__ = [
    "DaskPretrainResult",
    "booster_params",
    "brand_groups",
    "pretrain_on_dask",
]

logger = logging.getLogger("tabtune")

#: Rows a partition aims at (whole brands each, so a big brand makes a bigger one).
ROWS_PER_PARTITION = 500_000


@dataclass
class DaskPretrainResult:
    """A global model pretrained on a Dask cluster, and what it was trained on."""

    estimator: Any
    rows: int
    brands: int
    data_window: tuple[str, str]
    holdout_score: float | None
    n_rounds: int
    notices: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    #: The ``budget`` task's pooled Hill response (None for other tasks, or without one).
    response: Any = None


def brand_groups(row_counts: dict[str, int], n_parts: int) -> list[list[str]]:
    """Brands in ``n_parts`` groups of about equal rows (largest first, each to the smallest
    group); empty groups dropped, brands sorted within a group."""
    n_parts = max(1, min(int(n_parts), len(row_counts)))
    groups: list[list[str]] = [[] for _ in range(n_parts)]
    sizes = [0] * n_parts
    for brand, n in sorted(row_counts.items(), key=lambda kv: (-kv[1], kv[0])):
        at = sizes.index(min(sizes))
        groups[at].append(brand)
        sizes[at] += n
    return [sorted(g) for g in groups if g]


def _groups(client: Any, cfg: Config) -> tuple[str, list[list[str]]]:
    """The store's absolute path and its brands in groups of about equal rows."""
    store = CampaignStore(Path(cfg.data.store).resolve())
    store.require_sound()
    counts = store.row_counts()
    if not counts:
        raise TabTuneInputError(f"no rows in the store {cfg.data.store}")
    n_workers = max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})))
    n_parts = max(2 * n_workers, -(-sum(counts.values()) // ROWS_PER_PARTITION))
    return str(store.root), brand_groups(counts, n_parts)


def spend_history(brands: list[str], store_root: str, cfg: Config, end: Any) -> pd.DataFrame:
    """The daily spend history (per brand, day and channel) of some brands' rows, as
    :func:`~tabtune.tasks.budget.pooled_response` builds it from all rows."""
    rows = CampaignStore(store_root).read(brands=brands, end=end)
    if len(rows) == 0:
        return empty_daily_spend()
    days = BudgetPlanner(config=cfg)
    days.spend_history_, days.bid_reference_ = empty_daily_spend(), None
    return days.observe(rows).spend_history_


def _pooled_response(client: Any, cfg: Config, root: str, groups: list[list[str]], end: Any) -> Any:
    """The budget task's pooled Hill response, from the partitions' daily spend (per brand
    and channel, so exact), or None with ``budget.response: model``."""
    if cfg.budget.response != "hill":
        return None
    parts = client.gather([client.submit(spend_history, g, root, cfg, end) for g in groups])
    days = pd.concat([p for p in parts if len(p)], ignore_index=True)
    return fit_response(
        cfg, days.sort_values([GROUP_COLUMN, TIME_COLUMN, "channel"]).reset_index(drop=True)
    )


def _read(
    client: Any, root: str, groups: list[list[str]], task: TaskConfig, end: Any
) -> tuple[Partitions, pd.DataFrame]:
    """The task's model inputs of each group of brands, read and kept on the workers, and
    the first non-empty partition (its columns, dtypes and notices)."""
    sample = None
    for group in groups:
        try:
            sample = client.submit(read_task_partition, group, root, task, end, None).result()
            break
        except TabTuneInputError:
            continue
    if sample is None:
        raise TabTuneInputError(f"task {task.name!r}: no rows with a usable target in {root}")
    empty = sample.iloc[:0].copy()
    return Partitions.submit(client, read_task_partition, groups, root, task, end, empty), sample


def _plan(
    parts: Partitions, sample: pd.DataFrame, est: Any, n_classes: int
) -> tuple[PooledPlan, BatchStatistics]:
    """The pooled plan from the partitions' statistics, reduced through a ``dask.dataframe``
    of the partitions (in partition order: the pooled rows' order)."""
    frame = parts.frame(sample.iloc[:0])
    tasks = [
        dask_module("dask").delayed(partition_statistics)(p, n_classes) for p in frame.to_delayed()
    ]
    stats = [s for s in parts.client.gather(parts.client.compute(tasks)) if s is not None]
    merged = reduce(lambda a, b: a.merge(b), stats)
    plan = pooled_plan(
        merged,
        group_column=GROUP_COLUMN,
        time_column=TIME_COLUMN,
        n_classes=n_classes,
        validation_fraction=est.validation_fraction,
        early_stopping=est.early_stopping_rounds is not None,
        random_state=est.random_state,
        early_stopping_max_rows=est.early_stopping_max_rows,
        regrow=est.regrow_on_all_rows,
    )
    return plan, merged


def _train(
    encoded: Partitions, model: FittedModel, est: Any, plan: PooledPlan, classification: bool
) -> tuple[Any, int, dict[str, float]]:
    """The booster, its round count and holdout score: grown on the older rows, stopped on
    the newest, then grown again on all rows (the single-process rule), with the backend's
    distributed learner."""
    if model.backend.name == "xgboost":
        return _train_xgboost(encoded, model, est, plan)
    return _train_lightgbm(encoded, model, est, plan, classification)


def _sample_usable(encoded: Partitions, plan: PooledPlan) -> bool:
    """Whether the early stopping learns from the sample's brands only: a sample was drawn
    and it has training rows and a holdout (the single-process rule; else all rows)."""
    if plan.stop_fraction >= 1.0 or plan.cut is None:
        return False
    counts = encoded.gather(sample_counts)
    return sum(t for t, _ in counts) >= 2 and sum(v for _, v in counts) > 0


def _train_lightgbm(
    encoded: Partitions, model: FittedModel, est: Any, plan: PooledPlan, classification: bool
) -> tuple[Any, int, dict[str, float]]:
    """:func:`_train` with ``lightgbm.dask``: every round grown, then the round count LightGBM's
    early-stopping callback would have kept, read from the holdout curve."""
    native = model.backend.native_params(model.params)
    width = len(model.layout.names)

    sampled = _sample_usable(encoded, plan)

    def grow(part: str, rounds: int) -> Any:
        arrays = encoded.arrays(partition_part, part, sampled, width=width)
        return _lightgbm_train(encoded.client, native, model.layout, arrays, rounds, classification)

    if plan.cut is None:
        booster = grow(Part.ALL, est.n_estimators)
        return booster, int(booster.current_iteration()), {}
    booster = grow(Part.TRAIN, est.n_estimators)
    text = booster.model_to_string()
    n_grown = int(booster.current_iteration())
    pieces = encoded.gather(validation_curve, text, model.params.objective, n_grown, sampled)
    curve = np.sum([c for c, _ in pieces], axis=0)
    valid_weight = sum(w for _, w in pieces)
    n_rounds = stopping_round(curve, int(est.early_stopping_rounds))
    scores = {"global": float(curve[n_rounds - 1] / valid_weight)}
    if est.regrow_on_all_rows:
        booster = grow(Part.ALL, n_rounds)
    else:
        booster = model.backend.from_bytes(booster.model_to_string(num_iteration=n_rounds).encode())
    return booster, n_rounds, scores


def _train_xgboost(
    encoded: Partitions, model: FittedModel, est: Any, plan: PooledPlan
) -> tuple[Any, int, dict[str, float]]:
    """:func:`_train` with ``xgboost.dask``: early stopping on a holdout ``DaskQuantileDMatrix``
    that shares the training matrix's cuts (XGBoost's own rule, as in one process)."""
    xgb_dask = dask_module("xgboost.dask")
    layout, client = model.layout, encoded.client
    # Without nthread, xgboost.dask gives each worker's booster that worker's threads.
    native = {k: v for k, v in model.backend.native_params(model.params).items() if k != "nthread"}
    max_bin = int(native.setdefault("max_bin", 256))
    width = len(layout.names)

    sampled = _sample_usable(encoded, plan)

    def matrix(part: str, ref: Any = None) -> Any:
        X, y, w = encoded.arrays(partition_part, part, sampled, width=width)
        return xgb_dask.DaskQuantileDMatrix(
            client,
            X,
            y,
            weight=w,
            ref=ref,
            max_bin=max_bin,
            feature_names=list(layout.names),
            feature_types=layout.feature_types,
            enable_categorical=True,
        )

    def grow(train: Any, rounds: int, valid: Any = None) -> Any:
        evals = [] if valid is None else [(valid, "holdout")]
        out = xgb_dask.train(
            client,
            native,
            train,
            num_boost_round=int(rounds),
            evals=evals,
            early_stopping_rounds=est.early_stopping_rounds if evals else None,
            verbose_eval=False,
        )
        return out["booster"]

    if plan.cut is None:
        booster = grow(matrix(Part.ALL), est.n_estimators)
        return booster, int(booster.num_boosted_rounds()), {}
    train = matrix(Part.TRAIN)
    booster = grow(train, est.n_estimators, matrix(Part.VALID, ref=train))
    del train
    n_rounds = min(int(booster.best_iteration) + 1, int(booster.num_boosted_rounds()))
    booster = booster[:n_rounds]
    booster.set_attr(best_iteration=None, best_score=None)
    model_bytes = model.backend.to_bytes(booster)
    pieces = encoded.gather(
        holdout_loss, model.backend.name, model_bytes, layout, model.params.objective, sampled
    )
    scores = {"global": sum(loss for loss, _ in pieces) / sum(w for _, w in pieces)}
    if est.regrow_on_all_rows:
        booster = grow(matrix(Part.ALL), n_rounds)
    return booster, n_rounds, scores


def _table_of(batch: Any) -> Any:
    return batch.table


def _objective(est: Any, task: TaskConfig) -> tuple[str, int]:
    """The objective and class count of the global model."""
    if task.kind != "classification":
        return str(est.objective or "squared_error"), 1
    return "binary", 2


def _window(merged: BatchStatistics) -> tuple[str, str]:
    days = pd.to_datetime(merged.times[[0, -1]])
    return (str(days[0].date()), str(days[1].date()))


def pretrain_on_dask(
    cfg: Config, task_name: str, *, scheduler: str, end: Any = None
) -> DaskPretrainResult:
    """Pretrain a task's global model on a Dask cluster (see the module docstring).

    Parameters
    ----------
    cfg : Config
    task_name : str
    scheduler : str
        ``"local"`` (a local cluster of ``refresh.n_workers`` processes) or a scheduler
        address such as ``"tcp://host:8786"``; the workers must see the store at the same
        path and import tabtune.
    end : date-like, optional
        Use rows up to this date (inclusive).

    Returns
    -------
    DaskPretrainResult
        Its ``estimator`` is fitted, like ``global_estimator(cfg, task).fit(...)``'s.

    Raises
    ------
    TabTuneInputError
        No usable rows, an unreachable scheduler, a
        classification task with other than two classes, a target that is zero on every
        row under a log-link objective (:class:`~tabtune.errors.ZeroTargetError`).
    OptionalDependencyError
        Dask is not installed.
    """
    task = cfg.task(task_name)
    est = global_estimator(cfg, task)
    t0 = time.perf_counter()
    with dask_client(scheduler, n_workers=cfg.refresh.n_workers) as client:
        root, groups = _groups(client, cfg)
        parts, sample = _read(client, root, groups, task, end)
        objective, n_classes = _objective(est, task)
        plan, merged = _plan(parts, sample, est, n_classes)
        _check_classes(task, sample)
        check_pooled_target(objective, merged.target_sum)
        model = _untrained_model(cfg, est, plan, objective, n_classes)
        regrow = plan.cut is not None and est.regrow_on_all_rows
        encoded = parts.map(encode_partition, plan, regrow)
        booster, n_rounds, scores = _train(encoded, model, est, plan, n_classes == 2)
        tables = [t for t in encoded.gather(_table_of) if t is not None]
        model.context = concat_tables(tables)
        response = (
            _pooled_response(client, cfg, root, groups, end) if task.name == "budget" else None
        )
    model.booster = booster
    columns = [c for c in sample.columns if c not in (TARGET, WEIGHT)]
    fitted = dict(
        objective_=objective,
        holdout_scores_=scores,
        best_iteration_=n_rounds,
        n_new_trees_=n_rounds,
    )
    estimator = _fitted_estimator(
        cfg, task, model, model.backend.to_bytes(booster), columns, fitted
    )
    total = time.perf_counter() - t0
    logger.info(
        "pretrained %s on Dask: %d rows of %d brands, %d rounds in %.1fs",
        task_name,
        merged.n_rows,
        len(merged.groups),
        n_rounds,
        total,
    )
    return DaskPretrainResult(
        estimator=estimator,
        rows=merged.n_rows,
        brands=len(merged.groups),
        data_window=_window(merged),
        holdout_score=scores.get("global"),
        n_rounds=n_rounds,
        notices=list(sample.attrs.get("notices", [])),
        seconds={"total": total},
        response=response,
    )


def _untrained_model(
    cfg: Config, est: Any, plan: PooledPlan, objective: str, n_classes: int
) -> FittedModel:
    """The model before training: the plan's schema and context, the booster parameters."""
    params = booster_params(est, plan.schema, objective, n_classes)
    model = FittedModel(get_backend(cfg.backend), None, plan.schema, plan.context, params)
    model.params = padded_params(model.params, model.layout)
    return model


def _check_classes(task: TaskConfig, sample: pd.DataFrame) -> None:
    if task.kind != "classification":
        return
    values = set(np.unique(sample[TARGET]).tolist())
    if not values <= {0.0, 1.0}:
        raise TabTuneInputError(
            f"task {task.name!r}: pretraining on Dask needs a binary target (0/1); pretrain "
            "in one process for this task"
        )


def _lightgbm_train(
    client: Any,
    native: dict[str, Any],
    layout: Layout,
    arrays: tuple,
    n_rounds: int,
    classification: bool,
) -> Any:
    """A ``lightgbm.Booster`` grown with ``lightgbm.dask`` on the arrays."""
    lgb_dask = dask_module("lightgbm.dask")
    params = {k: v for k, v in native.items() if k not in ("num_threads", "n_jobs")}
    cls = lgb_dask.DaskLGBMClassifier if classification else lgb_dask.DaskLGBMRegressor
    model = cls(client=client, n_estimators=int(n_rounds), **params)
    X, y, w = arrays[:3]
    route_on_cluster(client)  # its network start-up printed [Info] lines on stdout
    with warnings.catch_warnings():  # the wrapper's own n_jobs: each worker uses its threads
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        model.fit(
            X,
            y,
            sample_weight=w,
            feature_name=list(layout.names),
            categorical_feature=list(layout.categorical),
        )
    return model.booster_


def booster_params(
    est: Any, schema: FeatureSchema, objective: str, n_classes: int
) -> BoosterParams:
    """The booster parameters an estimator's fit would use (``TabTuneBase._booster_params``
    for the global model's settings)."""
    monotone = est.monotone_constraints or {}
    vector = tuple(int(monotone.get(c, 0)) for c in schema.columns)
    n_jobs = est.n_jobs
    if n_jobs is not None and n_jobs < 0:
        import os

        n_jobs = None if n_jobs == -1 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return BoosterParams(
        objective=objective,
        n_classes=n_classes,
        learning_rate=float(est.learning_rate),
        num_leaves=int(est.num_leaves),
        max_depth=int(est.max_depth),
        min_child_samples=int(est.min_child_samples),
        subsample=float(est.subsample),
        colsample_bytree=float(est.colsample_bytree),
        reg_alpha=float(est.reg_alpha),
        reg_lambda=float(est.reg_lambda),
        monotone_constraints=vector if any(vector) else None,
        random_state=None if est.random_state is None else int(est.random_state),
        n_jobs=n_jobs,
        verbose=int(est.verbose),
        device="cpu",
        extra=dict(est.backend_params or {}),
    )


def _fitted_estimator(
    cfg: Config,
    task: TaskConfig,
    model: FittedModel,
    model_bytes: bytes,
    columns: list[str],
    fitted: dict[str, Any],
) -> Any:
    """The estimator ``est.fit`` would have left, written in tabtune's format and loaded."""
    est = global_estimator(cfg, task)
    attrs = SimpleNamespace(
        backend_=cfg.backend,
        group_column_=est.group_column,
        time_column_=est.time_column,
        n_features_in_=len(columns),
        feature_names_in_=np.asarray(columns, dtype=object),
        strategy_="global",
        strategy_reason_="pretrained on the pooled rows (no base model) on Dask",
        base_model_id_=None,
        **fitted,
    )
    target: dict[str, Any] = {}
    if task.kind == "classification":
        target = {"classes": [0, 1], "classes_dtype": "int64"}
    manifest = estimator_manifest(attrs, model, saved_params(est.get_params()), target)
    manifest["estimator"] = type(est).__name__
    with tempfile.TemporaryDirectory(prefix="tabtune-dask-") as tmp:
        path = write_estimator(Path(tmp) / "model", model, model_bytes, manifest)
        return estimator_class(task).load(path)
