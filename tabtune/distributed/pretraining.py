"""Pooled pretraining on a Dask cluster, with ``lightgbm.dask``.

The steps (each partition holds whole brands; see :mod:`tabtune.distributed.partitions`):

1. the store is read as a ``dask.dataframe``: one partition per group of brands, each read
   with the brand folders and the ``end`` date pushed down to the Parquet scan, turned into
   the task's model inputs on the worker and kept there (``persist``);
2. the statistics that span brands are reduced: vocabularies (-> the feature schema), the
   pooled prior and mean weight, the brand x level column, the per-date row counts (-> the
   holdout's first day, by the single-process rule);
3. the partitions are encoded on the workers (out-of-fold brand context for training rows,
   the training rows' table for holdout rows) into ``dask.array`` s;
4. ``lightgbm.dask`` grows the trees on the training rows; the holdout loss after every
   round is summed over the partitions and LightGBM's early-stopping rule picked on it; the
   model is then grown again on all rows for that many rounds (``regrow_on_all_rows``);
5. the brand-context table is learnt per partition from all rows and merged, and the booster,
   the schema and the context become an ordinary estimator (saved and loaded in tabtune's
   format, so adaptation, the registry and the refresh use it unchanged).

What differs from the single-process fit: the within-brand folds and the context dropout are
drawn from one random stream per partition (same seed, other draws), and LightGBM's
distributed learner bins features per worker; the early stopping trains every
``n_estimators`` round on the older rows first (``lightgbm.dask`` has no early stopping) and
keeps the same round count the callback would have kept.
"""

from __future__ import annotations

import logging
import operator
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from tabtune.boosting.base import BoosterParams, Layout, get_backend
from tabtune.boosting.encoding import FeatureSchema
from tabtune.config import Config, TaskConfig
from tabtune.data.store import CampaignStore
from tabtune.distributed.cluster import dask_client, dask_module
from tabtune.distributed.partitions import (
    TARGET,
    WEIGHT,
    Encoded,
    Pooled,
    context_spec,
    encode_partition,
    holdout_cut,
    merge_statistics,
    partition_statistics,
    partition_table,
    pooled_schema,
    read_task_partition,
    stopping_round,
    validation_curve,
)
from tabtune.errors import TabTuneInputError
from tabtune.estimators.persistence import estimator_manifest, saved_params, write_estimator
from tabtune.features import GROUP_COLUMN, TIME_COLUMN
from tabtune.model_factory import estimator_class, global_estimator
from tabtune.spend_features import empty_daily_spend
from tabtune.tasks.budget import BudgetPlanner, fit_response
from tabtune.transfer import BrandContext, FittedModel
from tabtune.transfer.model import padded_params

__all__ = ["DaskPretrainResult", "SUPPORTED_BACKENDS", "brand_groups", "pretrain_on_dask"]

logger = logging.getLogger("tabtune")

#: Backends with a distributed learner wired here (XGBoost: see docs/architecture.md).
SUPPORTED_BACKENDS = ("lightgbm",)
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


def _check_task(cfg: Config, task: TaskConfig) -> None:
    if cfg.backend not in SUPPORTED_BACKENDS:
        raise TabTuneInputError(
            f"pretraining on Dask supports backend {list(SUPPORTED_BACKENDS)}, and the config "
            f"sets backend: {cfg.backend}; set `backend: lightgbm`, or pretrain in one process "
            "(no --scheduler, and no refresh.scheduler in the config)"
        )
    if task.kind == "classification" and task.target.denominator is None:
        pass  # binary targets: supported


def _first_partition(client: Any, root: str, groups: list[list[str]], task: TaskConfig, end: Any):
    """The model inputs of the first group of brands with usable rows (for the columns)."""
    for group in groups:
        try:
            return client.submit(read_task_partition, group, root, task, end, None).result()
        except TabTuneInputError:
            continue
    raise TabTuneInputError(f"task {task.name!r}: no rows with a usable target in {root}")


def _groups(client: Any, cfg: Config) -> tuple[str, list[list[str]]]:
    """The store's absolute path and its brands in groups of about equal rows."""
    store = CampaignStore(Path(cfg.data.store).resolve())
    store.require_sound()
    counts = store.row_counts()
    if not counts:
        raise TabTuneInputError(f"no rows in the store {cfg.data.store}")
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
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


class Partitions:
    """The store's partitions on the cluster: one future per group of whole brands, each kept
    on one worker (partition ``i`` on the ``i``-th worker in address order, round robin).

    Every step that works on a partition runs on that worker (:meth:`map`), so the rows each
    LightGBM worker trains on, and therefore the model, do not depend on the scheduler's
    choices: the same cluster and seed give the same model.
    """

    def __init__(self, client: Any, futures: list[Any], workers: list[str]) -> None:
        self.client = client
        self.futures = futures
        self.workers = workers

    @classmethod
    def read(
        cls, client: Any, root: str, groups: list[list[str]], task: TaskConfig, end: Any
    ) -> tuple[Partitions, pd.DataFrame]:
        """The task's model inputs of each group, read on its worker, and one partition
        (columns, dtypes and notices)."""
        workers = sorted(client.scheduler_info().get("workers", {}))
        if not workers:
            raise TabTuneInputError("the Dask cluster has no workers; start `dask worker`s")
        sample = _first_partition(client, root, groups, task, end)
        empty = sample.iloc[:0].copy()
        futures = [
            client.submit(
                read_task_partition,
                group,
                root,
                task,
                end,
                empty,
                workers=[workers[i % len(workers)]],
                pure=False,
            )
            for i, group in enumerate(groups)
        ]
        return cls(client, futures, workers), sample

    def frame(self, meta: pd.DataFrame) -> Any:
        """The partitions as a ``dask.dataframe`` (whole brands per partition)."""
        return dask_module("dask.dataframe").from_delayed(
            self.futures, meta=meta, verify_meta=False
        )

    def map(self, fn: Any, *args: Any) -> list[Any]:
        """Futures of ``fn(partition, *args)``, each computed on its partition's worker."""
        return [
            self.client.submit(
                fn, future, *args, workers=[self.workers[i % len(self.workers)]], pure=False
            )
            for i, future in enumerate(self.futures)
        ]

    def encode(
        self,
        schema: FeatureSchema,
        context: BrandContext,
        which: str,
        cut: int | None,
        seed: int | None,
    ) -> list[Any]:
        """Futures of :func:`encode_partition` of each partition (kept on its worker), with
        the partition's own random stream ``[seed, i]``."""
        return [
            self.client.submit(
                encode_partition,
                future,
                schema,
                context,
                which,
                cut,
                None if seed is None else [seed, i],
                workers=[self.workers[i % len(self.workers)]],
                pure=False,
            )
            for i, future in enumerate(self.futures)
        ]

    def gather(self, fn: Any, *args: Any) -> list[Any]:
        """``fn(partition, *args)`` of every partition, brought back here (small results)."""
        return list(self.client.gather(self.map(fn, *args)))

    def arrays(self, encoded: list[Any], width: int) -> tuple[Any, Any, Any, float]:
        """``dask.array`` s (X, y, weight) over encoded partitions (kept where they were
        encoded), and the total weight."""
        da = dask_module("dask.array")
        delayed = dask_module("dask").delayed
        sizes = self.client.gather([self.client.submit(_rows_of, f) for f in encoded])
        kept = [(i, n) for i, n in enumerate(sizes) if n > 0]
        if not kept:
            raise TabTuneInputError("no rows to train on")

        def column(name: str, shape: Any) -> Any:
            pieces = []
            for i, n in kept:
                part = self.client.submit(
                    operator.attrgetter(name),
                    encoded[i],
                    workers=[self.workers[i % len(self.workers)]],
                    pure=False,
                )
                pieces.append(da.from_delayed(delayed(part), shape=shape(n), dtype=np.float64))
            return da.concatenate(pieces)

        X = column("X", lambda n: (n, width))
        y, w = column("y", lambda n: (n,)), column("weight", lambda n: (n,))
        return X, y, w, float(w.sum().compute())


def _rows_of(encoded: Encoded) -> int:
    return len(encoded.y)


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


def _merged_table(parts: Partitions, schema: FeatureSchema, context: BrandContext) -> BrandContext:
    """The context table of all rows: each partition's (its brands), merged in order."""
    merged = context
    for table in parts.gather(partition_table, schema, context):
        merged = merged.overlay(table)
    return merged


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


def _objective(est: Any, task: TaskConfig, pooled: Pooled) -> str:
    if task.kind != "classification":
        return str(est.objective or "squared_error")
    if len(pooled.classes) != 2:
        raise TabTuneInputError(
            f"task {task.name!r}: pretraining on Dask needs two classes, the rows hold "
            f"{pooled.classes}; pretrain in one process for this task"
        )
    return "binary"


def _window(pooled: Pooled) -> tuple[str, str]:
    days = pd.to_datetime(pooled.dates[[0, -1]])
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
        Another backend than LightGBM, no usable rows, an unreachable scheduler.
    OptionalDependencyError
        Dask is not installed.
    """
    task = cfg.task(task_name)
    _check_task(cfg, task)
    est = global_estimator(cfg, task)
    t0 = time.perf_counter()
    with dask_client(scheduler, n_workers=cfg.refresh.n_workers) as client:
        root, groups = _groups(client, cfg)
        parts, sample = Partitions.read(client, root, groups, task, end)
        frame = parts.frame(sample.iloc[:0])  # a dask.dataframe of whole brands
        classification = task.kind == "classification"
        tasks = [_delayed(partition_statistics)(p, 1, classification) for p in frame.to_delayed()]
        pooled = merge_statistics(client.gather(client.compute(tasks)))
        read_seconds = time.perf_counter() - t0
        model = _empty_model(cfg, est, sample, pooled, task)
        booster, n_rounds, scores = _train(parts, model, est, pooled, classification)
        assert model.context is not None  # a pooled model always learns a brand context
        model.context = _merged_table(parts, model.schema, model.context)
        response = None
        if task.name == "budget":
            response = _pooled_response(client, cfg, root, groups, end)
    model.booster = booster
    columns = [c for c in sample.columns if c not in (TARGET, WEIGHT)]
    fitted = dict(
        objective_=model.params.objective,
        holdout_scores_=scores,
        best_iteration_=n_rounds,
        n_new_trees_=n_rounds,
    )
    backend = model.backend
    estimator = _fitted_estimator(cfg, task, model, backend.to_bytes(booster), columns, fitted)
    total = time.perf_counter() - t0
    logger.info(
        "pretrained %s on Dask: %d rows of %d brands, %d rounds in %.1fs",
        task_name,
        pooled.rows,
        pooled.brands,
        n_rounds,
        total,
    )
    return DaskPretrainResult(
        estimator=estimator,
        rows=pooled.rows,
        brands=pooled.brands,
        data_window=_window(pooled),
        holdout_score=scores.get("global"),
        n_rounds=n_rounds,
        notices=list(sample.attrs.get("notices", [])),
        seconds={"read_and_statistics": read_seconds, "total": total},
        response=response,
    )


def _delayed(fn: Any) -> Any:
    return dask_module("dask").delayed(fn)


def _empty_model(
    cfg: Config, est: Any, sample: pd.DataFrame, pooled: Pooled, task: TaskConfig
) -> FittedModel:
    """The model before training: schema, context specification and booster parameters."""
    schema = pooled_schema(sample.iloc[:0], pooled)
    objective = _objective(est, task, pooled)
    context = context_spec(schema, pooled, 1)
    backend = get_backend(cfg.backend)
    model = FittedModel(backend, None, schema, context, booster_params(est, schema, objective, 1))
    model.params = padded_params(model.params, model.layout)
    return model


def _train(
    parts: Partitions, model: FittedModel, est: Any, pooled: Pooled, classification: bool
) -> tuple[Any, int, dict[str, float]]:
    """The booster, its round count and holdout score: grown on the older rows, stopped on
    the newest by LightGBM's rule, then grown again on all rows (the single-process rule)."""
    assert model.context is not None
    schema, context, backend = model.schema, model.context, model.backend
    native = backend.native_params(model.params)
    width = len(model.layout.names)
    patience = est.early_stopping_rounds
    cut = None if patience is None else holdout_cut(pooled, est.validation_fraction)
    seed = est.random_state
    train = parts.arrays(parts.encode(schema, context, "train", cut, seed), width)
    booster = _lightgbm_train(
        parts.client, native, model.layout, train, est.n_estimators, classification
    )
    n_rounds, scores = int(booster.current_iteration()), dict[str, float]()
    if cut is None:
        return booster, n_rounds, scores
    valid = parts.encode(schema, context, "valid", cut, seed)
    valid_weight = parts.arrays(valid, width)[3]
    text = booster.model_to_string()
    objective = model.params.objective
    curves = parts.client.gather(
        [parts.client.submit(validation_curve, text, f, objective, n_rounds) for f in valid]
    )
    curve = np.sum(curves, axis=0)
    n_rounds = stopping_round(curve, int(patience))
    scores["global"] = float(curve[n_rounds - 1] / valid_weight)
    if est.regrow_on_all_rows:
        everything = parts.arrays(parts.encode(schema, context, "all", None, seed), width)
        booster = _lightgbm_train(
            parts.client, native, model.layout, everything, n_rounds, classification
        )
    else:
        booster = backend.from_bytes(booster.model_to_string(num_iteration=n_rounds).encode())
    return booster, n_rounds, scores
