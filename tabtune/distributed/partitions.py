"""The per-partition work of pretraining on Dask: plain functions of pandas and numpy.

A partition holds whole brands, like a batch of the bounded-memory single-process path
(:mod:`tabtune.transfer.pooled_batches`), whose functions do the work:
:func:`~tabtune.transfer.pooled_batches.batch_statistics` per partition, reduced with
``BatchStatistics.merge`` into the plan (schema, context, holdout cut), then
:func:`~tabtune.transfer.pooled_batches.encode_batch` per partition. The brand context's folds
and dropout are drawn from a seeded key per row, so a partition is encoded exactly as the
single-process path encodes those rows. This module adds what a cluster needs around them:
reading a partition, splitting an encoded partition into the training, holdout and regrow
matrices, and the holdout loss after every round (``lightgbm.dask`` has no early stopping).
Nothing here imports Dask: these functions run on the workers and are tested on their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tabtune.boosting.base import Layout, get_backend
from tabtune.config import TaskConfig
from tabtune.data.store import CampaignStore
from tabtune.errors import TabTuneInputError
from tabtune.evaluation import row_losses
from tabtune.features import GROUP_COLUMN, TIME_COLUMN, task_data
from tabtune.transfer.pooled_batches import (
    BatchStatistics,
    EncodedBatch,
    PooledPlan,
    batch_statistics,
    encode_batch,
)

__all__ = [
    "MATRIX_DTYPE",
    "TARGET",
    "WEIGHT",
    "Part",
    "encode_partition",
    "holdout_loss",
    "partition_batch",
    "partition_part",
    "part_rows",
    "partition_statistics",
    "read_task_partition",
    "sample_counts",
    "stopping_round",
    "validation_curve",
]

#: Columns that carry the target and the sample weight (when the task has one) next to the
#: model inputs in a partition.
TARGET = "__target"
WEIGHT = "__weight"
#: The training matrices' dtype (as the bounded-memory single-process path).
MATRIX_DTYPE = np.float32


def read_task_partition(
    brands: list[str], store_root: str, task: TaskConfig, end: Any, empty: pd.DataFrame | None
) -> pd.DataFrame:
    """The task's model inputs of some brands, with :data:`TARGET` (and :data:`WEIGHT`).

    Reads only these brands' folders, up to ``end`` (both pushed down to the Parquet scan),
    through :meth:`CampaignStore.read` (its checks included). A partition without a usable
    row gives ``empty`` (the frame's columns and dtypes) when given.
    """
    rows = CampaignStore(store_root).read(brands=brands, end=end)
    try:
        if len(rows) == 0:
            raise TabTuneInputError("no rows")
        data = task_data(rows, task)
    except TabTuneInputError:
        if empty is None:
            raise
        return empty.iloc[:0].copy()
    out = data.X.copy()
    out[TARGET] = np.asarray(data.y, dtype=np.float64)
    if data.weight is not None:
        out[WEIGHT] = np.asarray(data.weight, dtype=np.float64)
    out.attrs["notices"] = list(data.notices)
    return out


def partition_batch(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
    """A partition as the ``(X, y, weight)`` batch of :mod:`~tabtune.transfer.pooled_batches`."""
    X = frame.drop(columns=[c for c in (TARGET, WEIGHT) if c in frame.columns])
    weight = frame[WEIGHT].to_numpy(dtype=np.float64) if WEIGHT in frame.columns else None
    return X, frame[TARGET].to_numpy(dtype=np.float64), weight


def partition_statistics(frame: pd.DataFrame, n_classes: int) -> BatchStatistics | None:
    """:func:`~tabtune.transfer.pooled_batches.batch_statistics` of a partition (None: empty)."""
    if len(frame) == 0:
        return None
    X, y, w = partition_batch(frame)
    return batch_statistics(
        X, y, w, group_column=GROUP_COLUMN, time_column=TIME_COLUMN, n_classes=n_classes
    )


def encode_partition(frame: pd.DataFrame, plan: PooledPlan, regrow: bool) -> EncodedBatch:
    """:func:`~tabtune.transfer.pooled_batches.encode_batch` of a partition (float32)."""
    X, y, w = partition_batch(frame)
    if len(y) == 0:  # an empty partition: no rows, the plan's widths
        assert plan.context is not None
        width = len(plan.schema.columns) + plan.context.n_features
        none = np.empty(0, dtype=np.int64)
        return EncodedBatch(
            np.empty((0, width), dtype=MATRIX_DTYPE), y, w, none, 0, None, None, none
        )
    return encode_batch(X, y, w, plan, dtype=MATRIX_DTYPE, regrow=regrow)


class Part:
    """Which rows of an encoded partition a matrix holds: :attr:`TRAIN` (before the holdout),
    :attr:`VALID` (the holdout), :attr:`ALL` (every row, with the regrown fit's context)."""

    TRAIN = "train"
    VALID = "valid"
    ALL = "all"


def part_rows(batch: EncodedBatch, part: str, sampled: bool = False) -> slice | np.ndarray:
    """The rows of one part of an encoded partition; with ``sampled``, the training and
    holdout rows are only those of the early-stopping sample's brands (``in_sample``)."""
    n = len(batch.y)
    rows = {Part.TRAIN: slice(0, batch.n_train), Part.VALID: slice(batch.n_train, n)}.get(
        part, slice(0, n)
    )
    if sampled and part != Part.ALL and batch.in_sample is not None:
        return np.flatnonzero(batch.in_sample[rows]) + rows.start
    return rows


def sample_counts(batch: EncodedBatch) -> tuple[int, int]:
    """Training and holdout rows of a partition in the early-stopping sample."""
    if batch.in_sample is None:
        return batch.n_train, len(batch.y) - batch.n_train
    inside = batch.in_sample
    return int(inside[: batch.n_train].sum()), int(inside[batch.n_train :].sum())


def partition_part(
    batch: EncodedBatch, part: str, sampled: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, weight)`` of one part of an encoded partition (weights of 1 when unweighted).

    The regrown fit's matrix (:attr:`Part.ALL`) is every row with its own context columns
    (``regrow_context``; a partition without holdout rows has the training rows' context).
    With ``sampled``, the training and holdout parts hold only the early-stopping sample's
    rows (see :func:`part_rows`).
    """
    n = len(batch.y)
    rows = part_rows(batch, part, sampled)
    X = batch.X[rows]
    if part == Part.ALL and batch.regrow_context is not None:
        X = X.copy()
        X[:, X.shape[1] - batch.regrow_context.shape[1] :] = batch.regrow_context
    weight = np.ones(n, dtype=MATRIX_DTYPE) if batch.weight is None else batch.weight
    return (
        X,
        np.asarray(batch.y[rows], dtype=MATRIX_DTYPE),
        np.asarray(weight[rows], dtype=MATRIX_DTYPE),
    )


def _response(objective: str, raw: np.ndarray) -> np.ndarray:
    """LightGBM's raw score on the response scale (the objectives tabtune trains)."""
    if objective in ("tweedie", "poisson"):
        return np.exp(raw)
    if objective == "binary":
        return 1.0 / (1.0 + np.exp(-raw))
    return raw


def validation_curve(
    batch: EncodedBatch, model_text: str, objective: str, n_rounds: int, sampled: bool = False
) -> tuple[np.ndarray, float]:
    """``sum(weight x loss)`` of a partition's holdout rows (``sampled``: of the sample's
    brands) after each round (the objective's own loss, in float64), and their weight.

    One tree at a time, so the curve costs one prediction of every tree (not one per prefix).
    """
    import lightgbm as lgb

    out = np.zeros(n_rounds)
    rows = part_rows(batch, Part.VALID, sampled)
    X = batch.X[rows]
    if len(X) == 0:
        return out, 0.0
    y64 = np.asarray(batch.y[rows], dtype=np.float64)
    w64 = np.ones(len(y64))
    if batch.weight is not None:
        w64 = np.asarray(batch.weight[rows], dtype=np.float64)
    booster = lgb.Booster(model_str=model_text)
    raw = np.zeros(len(y64))
    for i in range(min(n_rounds, booster.current_iteration())):
        raw += booster.predict(X, raw_score=True, start_iteration=i, num_iteration=1)
        out[i] = float(np.sum(w64 * row_losses(objective, y64, _response(objective, raw))))
    return out, float(np.sum(w64))


def holdout_loss(
    batch: EncodedBatch,
    backend_name: str,
    model_bytes: bytes,
    layout: Layout,
    objective: str,
    sampled: bool = False,
) -> tuple[float, float]:
    """``sum(weight x loss)`` of a partition's holdout rows (``sampled``: of the sample's
    brands) under a finished model (the objective's own loss, in float64), and their weight.

    For a learner that early-stops by itself (``xgboost.dask``): the holdout score is then
    the weighted mean over the partitions, as :func:`~tabtune.evaluation.holdout_score`
    computes it on all holdout rows at once.
    """
    rows = part_rows(batch, Part.VALID, sampled)
    X = batch.X[rows]
    if len(X) == 0:
        return 0.0, 0.0
    y64 = np.asarray(batch.y[rows], dtype=np.float64)
    w64 = np.ones(len(y64))
    if batch.weight is not None:
        w64 = np.asarray(batch.weight[rows], dtype=np.float64)
    backend = get_backend(backend_name)
    prediction = backend.predict(backend.from_bytes(model_bytes), X, layout)
    return float(np.sum(w64 * row_losses(objective, y64, prediction))), float(np.sum(w64))


def stopping_round(curve: np.ndarray, patience: int) -> int:
    """Rounds kept by LightGBM's early stopping on this validation curve (1-based).

    The best round so far is kept; training stops once ``patience`` rounds in a row did not
    improve on it (strictly), as ``lightgbm.early_stopping`` does.
    """
    best = 0
    for i in range(1, len(curve)):
        if curve[i] < curve[best]:
            best = i
        elif i - best >= patience:
            break
    return best + 1
