"""Pooled pretraining from batches of whole groups, in bounded memory.

:func:`~tabtune.transfer.pretraining.pretrain` takes every pooled row at once; this module
pretrains the same model from *batches*: each batch holds the rows of one or a few whole
groups (brands), and the batches are read two or three times.

1. :func:`batch_statistics` of each batch, combined with :meth:`BatchStatistics.merge` (a
   reduction: any order, any tree), give what the whole pool decides: the feature schema
   (categorical vocabularies), the brand-context specification (prior, smoothing, level
   column), the row count and the rows per timestamp, hence the time split of early stopping
   (:func:`pooled_plan`).
2. :func:`~tabtune.transfer.pooled_encoding.encode_batch` encodes one batch given that plan: its float32 features, the
   brand-context features of its training rows out of fold and of its holdout rows from its
   training rows' table, and its piece of the stored context table. Everything the context
   needs about a row lies in its own group, and the out-of-fold folds and dropout are drawn
   from a seeded key per row (:func:`~tabtune.transfer.context.row_keys`), so a batch's
   encoding is exactly what the in-memory path gives those rows.

:func:`pretrain_batched` runs both passes, writes the encoded batches into preallocated
arrays in the time order of the pooled rows and trains with the backend as
:func:`~tabtune.transfer.pretraining.pretrain` does (early stopping on the newest rows, then
regrown on all rows, whose rows a third pass encodes; with an early-stopping sample of brands,
pass 2 encodes only the sampled brands' rows: :func:`encode_sampled`). Each training set is built
(:meth:`~tabtune.boosting.base.Backend.bin`) before the float rows are dropped, so peak
memory is the float32 matrix, one binned copy of it (LightGBM) and one batch. A Dask path can call :func:`batch_statistics` and :func:`encode_batch` per partition
(partitions of whole groups) and :meth:`BatchStatistics.merge` as its reduction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from tabtune.boosting.base import Backend, BoosterParams, Matrix
from tabtune.boosting.encoding import (
    FeatureSchema,
    Table,
    column_values,
    json_scalar,
    table_columns,
)
from tabtune.errors import TabTuneInputError
from tabtune.memory import release_unused_memory
from tabtune.transfer.context import (
    CONTEXT_DROPOUT,
    CONTEXT_SHORT_HISTORY,
    CONTEXT_SMOOTHING,
    BrandContext,
    context_targets,
    level_column_of,
)
from tabtune.transfer.model import FittedModel, padded_params
from tabtune.transfer.pooled_encoding import EncodedBatch, concat_tables, encode_batch, time_keys
from tabtune.transfer.pooled_fit import train_pooled
from tabtune.transfer.pretraining import (
    PretrainResult,
    check_pooled_target,
    context_seed,
    stopping_fraction,
    stopping_sample,
)

__all__ = [
    "Batch",
    "BatchStatistics",
    "EncodedBatch",
    "PooledPlan",
    "PooledRows",
    "batch_statistics",
    "concat_tables",
    "encode_pooled",
    "encode_sampled",
    "holdout_counts",
    "encode_batch",
    "pooled_plan",
    "pretrain_batched",
    "time_keys",
]

#: One batch: features (with the group and time columns), target, weights (or None).
Batch: TypeAlias = tuple[Table, np.ndarray, np.ndarray | None]


# -- pass 1: statistics ------------------------------------------------------------------------
@dataclass
class BatchStatistics:
    """What the whole pool decides, from one batch or merged over batches.

    Parameters
    ----------
    n_rows : int
    columns : tuple of str
        Feature columns (group and time columns excluded), in table order.
    levels : dict
        ``column -> set of levels`` seen in each categorical column.
    pairs : dict
        ``column -> distinct (group, level) pairs`` of each categorical column (a missing
        level counts as one); sums over batches of whole groups.
    groups : tuple
        Group ids, in order of first appearance (batches must not share a group).
    times, time_counts : ndarray
        Sorted distinct time keys and the rows at each.
    target_sum : ndarray
        Sum of weight x context target (one per target column).
    weight_sum : float
        Sum of weights (rows when unweighted).
    weighted : bool
        Whether the rows carry weights.
    """

    n_rows: int
    columns: tuple[str, ...]
    levels: dict[str, set[Any]]
    pairs: dict[str, int]
    groups: tuple[Any, ...]
    times: np.ndarray
    time_counts: np.ndarray
    target_sum: np.ndarray
    weight_sum: float
    weighted: bool

    def merge(self, other: BatchStatistics) -> BatchStatistics:
        """The statistics of both batches' rows (``self``'s first).

        Raises
        ------
        TabTuneInputError
            When the batches' columns or kinds differ, or they share a group (a batch must
            hold whole groups: the brand context and the per-brand features need them).
        """
        if self.columns != other.columns or set(self.levels) != set(other.levels):
            raise TabTuneInputError(
                f"batches differ in their feature columns or kinds ({list(self.columns)} vs "
                f"{list(other.columns)}); every batch must have the same columns and dtypes"
            )
        if self.weighted != other.weighted:
            raise TabTuneInputError("some batches have sample weights and others do not")
        shared = set(self.groups).intersection(other.groups)
        if shared:
            raise TabTuneInputError(
                f"groups {sorted(map(str, shared))[:5]} appear in two batches; each batch "
                "must hold whole groups (all rows of each of its brands)"
            )
        times, inverse = np.unique(np.concatenate([self.times, other.times]), return_inverse=True)
        counts = np.bincount(
            inverse, weights=np.concatenate([self.time_counts, other.time_counts]).astype(float)
        ).astype(np.int64)
        return BatchStatistics(
            n_rows=self.n_rows + other.n_rows,
            columns=self.columns,
            levels={c: self.levels[c] | other.levels[c] for c in self.levels},
            pairs={c: self.pairs[c] + other.pairs[c] for c in self.pairs},
            groups=self.groups + other.groups,
            times=times,
            time_counts=counts,
            target_sum=self.target_sum + other.target_sum,
            weight_sum=self.weight_sum + other.weight_sum,
            weighted=self.weighted,
        )

    def schema(self) -> FeatureSchema:
        """The feature schema :meth:`FeatureSchema.from_table` learns from all rows (string
        and object columns: the sorted levels; a ``category`` column gets the union of its
        batches' categories, sorted)."""
        vocabularies = {
            name: tuple(json_scalar(v, name) for v in _sorted_levels(self.levels[name]))
            for name in self.columns
            if name in self.levels
        }
        return FeatureSchema(self.columns, vocabularies)


def _sorted_levels(levels: Iterable[Any]) -> list[Any]:
    # The order FeatureSchema.from_table gives string and object columns.
    return sorted(levels, key=lambda v: (type(v).__name__, v))


def batch_statistics(
    X: Table,
    y: np.ndarray,
    weight: np.ndarray | None,
    *,
    group_column: str | None,
    time_column: str | None,
    n_classes: int = 1,
) -> BatchStatistics:
    """Statistics of one batch of whole groups (see :class:`BatchStatistics`).

    Parameters
    ----------
    X : DataFrame
        The batch's features with its group and time columns.
    y : ndarray
        Target (class index for classifiers).
    weight : ndarray or None
        Positive weights.
    group_column, time_column : str or None
    n_classes : int
        Classes of a classifier (context targets are one-hot beyond two).
    """
    excluded = {c for c in (group_column, time_column) if c is not None}
    columns = tuple(c for c in table_columns(X) if c not in excluded)
    probe = FeatureSchema.from_table(
        X.iloc[:0] if isinstance(X, pd.DataFrame) else X, sorted(excluded)
    )
    groups = None if group_column is None else pd.Series(column_values(X, group_column))
    codes, uniques = (
        (np.zeros(len(y), dtype=np.int64), [])
        if groups is None
        else pd.factorize(groups, use_na_sentinel=True)
    )
    levels: dict[str, set[Any]] = {}
    pairs: dict[str, int] = {}
    for name in probe.vocabularies:
        values = pd.Series(column_values(X, name))
        if isinstance(values.dtype, pd.CategoricalDtype):
            levels[name] = set(values.dtype.categories)
        else:
            levels[name] = set(values.dropna().unique())
        if groups is not None:
            known = codes >= 0
            cells = pd.DataFrame({"g": codes[known], "v": values.to_numpy()[known]})
            pairs[name] = int(len(cells.drop_duplicates()))
        else:
            pairs[name] = 0
    if time_column is not None:
        times, counts = np.unique(time_keys(X, time_column), return_counts=True)
    else:
        times, counts = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    targets = context_targets(np.asarray(y), n_classes)
    if weight is None:
        target_sum, weight_sum = targets.sum(axis=0), float(len(y))
    else:
        target_sum = np.multiply(targets, weight[:, None]).sum(axis=0)
        weight_sum = float(np.sum(weight))
    return BatchStatistics(
        n_rows=len(y),
        columns=columns,
        levels=levels,
        pairs=pairs,
        groups=tuple(uniques),
        times=times,
        time_counts=counts.astype(np.int64),
        target_sum=np.asarray(target_sum, dtype=np.float64),
        weight_sum=weight_sum,
        weighted=weight is not None,
    )


# -- the plan ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PooledPlan:
    """What encoding a batch needs from the whole pool (see :func:`pooled_plan`).

    ``cut`` is the first time key of the holdout: rows before it train the early-stopped
    model, the others score it (None: no holdout, every row trains).
    """

    schema: FeatureSchema
    context: BrandContext | None
    group_column: str | None
    time_column: str | None
    n_rows: int
    n_train: int | None
    cut: float | int | None
    seed: int
    n_classes: int
    dropout: float = CONTEXT_DROPOUT
    short_history: float = CONTEXT_SHORT_HISTORY
    #: Share of brands the early-stopped fit learns from (:func:`stopping_fraction`).
    stop_fraction: float = 1.0


def holdout_counts(
    n_rows: int, validation_fraction: float, time_counts: np.ndarray
) -> tuple[int, int] | None:
    """:func:`~tabtune.evaluation.holdout_split` from the rows per (sorted) timestamp.

    Returns the training rows and the index of the holdout's first timestamp, or None when
    the rows cannot be split.
    """
    n_valid = max(1, int(round(validation_fraction * n_rows)))
    n_train = n_rows - n_valid
    if n_train <= 0:
        return None
    ends = np.cumsum(time_counts)
    at = int(np.searchsorted(ends, n_train, side="right"))  # timestamp of sorted row n_train
    start = int(ends[at] - time_counts[at])
    if start >= 2:
        n_train, first = start, at
    else:
        n_train, first = int(ends[at]), at + 1
        if n_train >= n_rows:
            return None
    return (n_train, first) if n_train >= 2 else None


def pooled_plan(
    statistics: BatchStatistics,
    *,
    group_column: str | None,
    time_column: str | None,
    n_classes: int = 1,
    validation_fraction: float = 0.1,
    early_stopping: bool = True,
    random_state: int | None = None,
    early_stopping_max_rows: int | None = None,
    regrow: bool = True,
) -> PooledPlan:
    """The schema, the context specification and the time split of the pooled rows.

    The same as :func:`~tabtune.transfer.pretraining.pretrain` decides on all rows at once
    (prior and smoothing up to the order of floating-point sums).
    """
    if time_column is None and early_stopping:
        raise TabTuneInputError(
            "batched pretraining with early stopping needs a time_column (the holdout is the "
            "newest rows across batches)"
        )
    schema = statistics.schema()
    context = None
    if group_column is not None:
        n_groups = len(statistics.groups)
        level = level_column_of(schema, statistics.pairs, n_groups)
        prior = statistics.target_sum / statistics.weight_sum
        mean_weight = statistics.weight_sum / statistics.n_rows if statistics.weighted else 1.0
        context = BrandContext(
            group_column=group_column,
            level_column=level,
            n_levels=0 if level is None else len(schema.vocabularies[level]),
            prior=tuple(float(v) for v in prior),
            smoothing=CONTEXT_SMOOTHING * mean_weight,
        )
    n_train, cut = None, None
    if early_stopping:
        split = holdout_counts(statistics.n_rows, validation_fraction, statistics.time_counts)
        if split is not None:
            n_train = split[0]
            cut = statistics.times[split[1]].item()
    return PooledPlan(
        schema=schema,
        context=context,
        group_column=group_column,
        time_column=time_column,
        n_rows=statistics.n_rows,
        n_train=n_train,
        cut=cut,
        seed=context_seed(random_state),
        n_classes=n_classes,
        stop_fraction=1.0
        if context is None
        else stopping_fraction(n_train, early_stopping_max_rows, regrow),
    )


# -- both passes -------------------------------------------------------------------------------
def pretrain_batched(
    backend: Backend,
    params_of: Callable[[FeatureSchema], BoosterParams],
    batches: Callable[[], Iterable[Batch]],
    *,
    group_column: str | None,
    time_column: str | None,
    n_estimators: int,
    early_stopping_rounds: int | None,
    validation_fraction: float,
    random_state: int | None,
    regrow: bool = True,
    n_classes: int = 1,
    dtype: Any = np.float32,
    early_stopping_max_rows: int | None = None,
) -> PretrainResult:
    """:func:`~tabtune.transfer.pretraining.pretrain` on rows given as batches of whole groups.

    Parameters
    ----------
    backend : Backend
    params_of : callable
        The booster parameters for the learnt schema.
    batches : callable
        Returns an iterable of batches ``(X, y, weight)``; called two or three times
        (statistics, encoding, encoding of the regrown fit's rows), it must give the same
        batches in the same order. The pooled rows are
        the batches concatenated in that order (which decides ties of the time order).
    group_column, time_column, n_estimators, early_stopping_rounds, validation_fraction, \
random_state, regrow, early_stopping_max_rows
        As for :func:`~tabtune.transfer.pretraining.pretrain`.
    n_classes : int
        Classes of a classifier (1 for regression).
    dtype : numpy dtype, default float32
        Of the training matrix.

    Returns
    -------
    PretrainResult
        The same model as the in-memory path on the concatenated batches (features rounded to
        ``dtype``; the context prior up to the order of floating-point sums).
    """
    merged = _merged_statistics(batches, group_column, time_column, n_classes)
    plan = pooled_plan(
        merged,
        group_column=group_column,
        time_column=time_column,
        n_classes=n_classes,
        validation_fraction=validation_fraction,
        early_stopping=early_stopping_rounds is not None,
        random_state=random_state,
        early_stopping_max_rows=early_stopping_max_rows,
        regrow=regrow,
    )
    model = FittedModel(backend, None, plan.schema, plan.context, params_of(plan.schema))
    check_pooled_target(model.params.objective, merged.target_sum)
    params = model.params = padded_params(model.params, model.layout)
    release_unused_memory()  # what reading the batches left free, before the matrix
    pooled = encode_sampled(plan, batches, dtype) if plan.stop_fraction < 1.0 else None
    if pooled is None:
        pooled = encode_pooled(plan, merged, batches, dtype, split=True)
    release_unused_memory()

    def regrown_rows() -> PooledRows:
        return encode_pooled(plan, merged, batches, dtype, regrown=True)

    return train_pooled(
        model,
        params,
        pooled,
        plan,
        n_estimators,
        early_stopping_rounds,
        regrown_rows if regrow else None,
    )


def _merged_statistics(
    batches: Callable[[], Iterable[Batch]],
    group_column: str | None,
    time_column: str | None,
    n_classes: int,
) -> BatchStatistics:
    """Pass 1: every batch's statistics, merged."""
    merged = None
    for X, y, w in batches():
        stats = batch_statistics(
            X, y, w, group_column=group_column, time_column=time_column, n_classes=n_classes
        )
        merged = stats if merged is None else merged.merge(stats)
    if merged is None:
        raise TabTuneInputError("batched pretraining got no batches (no rows)")
    return merged


@dataclass
class RowBlock:
    """Consecutive pooled rows, encoded: features, target and optional weights."""

    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray | None
    #: Whether each row's brand is in the early-stopped fit's sample (None: all are).
    sample: np.ndarray | None = None

    def matrix(self, *, rows: slice | None = None) -> Matrix:
        return Matrix(self.X, self.y, self.weight, rows=rows)

    def sampled(self) -> Matrix:
        """The rows in the early-stopping sample (a copy), or all rows."""
        if self.sample is None:
            return self.matrix()
        keep = self.sample
        return Matrix(
            self.X[keep], self.y[keep], None if self.weight is None else self.weight[keep]
        )


@dataclass
class PooledRows:
    """The pooled rows encoded, in time order, as one block or as two (the early-stopped fit's
    training rows, then its holdout rows: separate arrays, so that each can be freed on its
    own); ``table``: the stored context table."""

    blocks: list[RowBlock]
    table: BrandContext | None

    def take(self) -> list[RowBlock]:
        """The blocks, no longer held here (so that dropping them frees them)."""
        blocks, self.blocks = self.blocks, []
        if not blocks:
            raise RuntimeError("the rows were taken already")
        return blocks


def encode_pooled(
    plan: PooledPlan,
    merged: BatchStatistics,
    batches: Callable[[], Iterable[Batch]],
    dtype: Any,
    *,
    regrown: bool = False,
    split: bool = False,
) -> PooledRows:
    """Pass 2 (and 3): every batch encoded (:func:`encode_batch`) into preallocated arrays,
    each row at its position in the stable time order of the concatenated batches; with
    ``regrown``, the context columns are those of the fit regrown on all rows; with ``split``,
    the rows before and after the plan's holdout cut go to two blocks."""
    n = merged.n_rows
    n_extra = 0 if plan.context is None else plan.context.n_features
    bounds = [0, n]
    if split and plan.cut is not None and plan.n_train is not None:
        bounds = [0, plan.n_train, n]
    # Target and weights in the features' dtype: the backends train on float32 labels and
    # weights anyway (LightGBM, XGBoost); float64 keeps the in-memory path's holdout score.
    blocks = [
        RowBlock(
            np.empty((hi - lo, len(plan.schema.columns) + n_extra), dtype=dtype),
            np.empty(hi - lo, dtype=dtype),
            np.empty(hi - lo, dtype=dtype) if merged.weighted else None,
            np.empty(hi - lo, dtype=bool) if split and plan.stop_fraction < 1.0 else None,
        )
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    regrown = regrown and plan.cut is not None and plan.context is not None
    starts = np.cumsum(merged.time_counts) - merged.time_counts
    seen = np.zeros(len(merged.times), dtype=np.int64)
    tables: list[BrandContext] = []
    firsts: list[np.ndarray] = []
    filled = 0
    for bx, by, bw in batches():
        batch = encode_batch(bx, by, bw, plan, dtype=dtype, regrow=regrown)
        m = len(batch.y)
        if plan.time_column is None:
            at = np.arange(filled, filled + m)
        else:
            index = np.searchsorted(merged.times, batch.times)
            first = np.searchsorted(batch.times, batch.times, side="left")
            at = starts[index] + seen[index] + (np.arange(m) - first)
            seen += np.bincount(index, minlength=len(seen))
        filled += m
        if regrown and batch.regrow_context is not None:
            # (A batch without holdout rows: its training rows are all its rows.)
            batch.X[:, -n_extra:] = batch.regrow_context
        _put(blocks, bounds, at, batch)
        if batch.table is not None:
            tables.append(batch.table)
            firsts.append(at[batch.first_rows])
    if filled != n:
        raise TabTuneInputError(
            f"the batches gave {filled} rows on a later pass and {n} on the first; "
            "batches must be the same on every pass"
        )
    table = concat_tables(tables, firsts) if tables else None
    return PooledRows(blocks, table)


def encode_sampled(
    plan: PooledPlan, batches: Callable[[], Iterable[Batch]], dtype: Any
) -> PooledRows | None:
    """Pass 2 with an early-stopping sample: only the sampled brands' rows, encoded.

    The early-stopped fit learns from those rows alone, so the other brands' rows are not
    encoded (the regrown fit's pass encodes every row). A brand's encoding depends on its own
    rows only, so the rows are those :func:`encode_pooled` gives, in the same (stable) time
    order. Returns the training rows and the holdout rows as two blocks, with no context
    table (the regrown pass has it), or None when the sample has fewer than 2 training rows
    or no holdout row: early stopping then learns from every row (the in-memory rule).
    """
    assert plan.group_column is not None and plan.cut is not None
    parts: list[EncodedBatch] = []
    for bx, by, bw in batches():
        keep = stopping_sample(column_values(bx, plan.group_column), plan.stop_fraction, plan.seed)
        if keep is None:  # (a fraction of 1: not a sample)
            return None
        if not keep.any():
            continue
        rows = np.flatnonzero(keep)
        sx = bx.iloc[rows] if isinstance(bx, pd.DataFrame) else bx[rows]
        sw = None if bw is None else np.asarray(bw)[rows]
        parts.append(encode_batch(sx, np.asarray(by)[rows], sw, plan, dtype=dtype, regrow=False))
    if not parts:
        return None
    times = np.concatenate([part.times for part in parts])
    order = np.argsort(times, kind="stable")  # a stable sort keeps the batches' order of ties
    n_train = int(np.searchsorted(times[order], plan.cut, side="left"))
    if n_train < 2 or n_train == len(order):
        return None
    X = np.concatenate([part.X for part in parts])
    y = np.concatenate([part.y for part in parts]).astype(dtype, copy=False)
    weights = [part.weight for part in parts]
    weight = None
    if any(w is not None for w in weights):
        weight = np.concatenate([np.asarray(w) for w in weights]).astype(dtype, copy=False)
    del parts
    blocks = []
    for rows in (order[:n_train], order[n_train:]):
        blocks.append(RowBlock(X[rows], y[rows], None if weight is None else weight[rows]))
    return PooledRows(blocks, None)


def _put(blocks: list[RowBlock], bounds: list[int], at: np.ndarray, batch: EncodedBatch) -> None:
    """A batch's rows into the blocks, at their positions ``at`` (increasing: a batch is in
    time order) among the pooled rows; block ``i`` holds positions ``bounds[i]:bounds[i+1]``."""
    cuts = np.searchsorted(at, bounds)
    for block, lo, i, j in zip(blocks, bounds, cuts[:-1], cuts[1:], strict=False):
        if i == j:
            continue
        where = at[i:j] - lo
        block.X[where] = batch.X[i:j]
        block.y[where] = batch.y[i:j]
        if block.weight is not None:
            assert batch.weight is not None
            block.weight[where] = batch.weight[i:j]
        if block.sample is not None:
            block.sample[where] = True if batch.in_sample is None else batch.in_sample[i:j]
