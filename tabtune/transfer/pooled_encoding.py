"""Pass 2 of batched pooled pretraining: one batch of whole groups encoded for the pooled model.

:func:`encode_batch` encodes a batch given the pool's plan
(:class:`~tabtune.transfer.pooled_batches.PooledPlan`): its float features, the brand-context
features of its training rows out of fold and of its holdout rows from its training rows'
table, and its piece of the stored context table (:func:`concat_tables` joins the pieces).
Everything the context needs about a row lies in its own group, and the out-of-fold folds and
dropout are drawn from a seeded key per row, so a batch's encoding is exactly what the
in-memory path gives those rows. :mod:`tabtune.transfer.pooled_batches` runs the passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tabtune.boosting.encoding import Table, column_values
from tabtune.errors import TabTuneInputError
from tabtune.transfer.context import BrandContext, context_targets, group_ordinals, row_keys
from tabtune.transfer.model import level_values
from tabtune.transfer.pretraining import stopping_sample

if TYPE_CHECKING:  # pragma: no cover
    from tabtune.transfer.pooled_batches import PooledPlan

__all__ = ["EncodedBatch", "concat_tables", "encode_batch", "time_keys"]


def time_keys(X: Table, time_column: str) -> np.ndarray:
    """Sortable int64 (datetimes: nanoseconds) or float64 time keys of the rows."""
    values = column_values(X, time_column)
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return series.to_numpy().astype("datetime64[ns]").view(np.int64)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64)
    raise TabTuneInputError(
        f"time_column {time_column!r} must hold datetimes or numbers for batched pretraining "
        f"(dtype {series.dtype}); convert it with pandas.to_datetime"
    )


@dataclass
class EncodedBatch:
    """One batch encoded for the pooled model, its rows in time order.

    Attributes
    ----------
    X : ndarray of shape (n, n_schema + n_context)
        Schema columns, then the brand-context columns of the early-stopped fit (training
        rows out of fold, holdout rows from the training rows' table; without a holdout:
        every row out of fold).
    y, weight : ndarray
    times : ndarray
        Time keys (sorted).
    n_train : int
        Rows before the holdout (the first ``n_train`` rows of the batch).
    regrow_context : ndarray or None
        Context columns of the regrown fit (every row out of fold), when it differs from
        the early-stopped fit's.
    table : BrandContext or None
        The stored context table of the batch's groups (learnt from all their rows).
    first_rows : ndarray of int
        Row (in the batch's time order) where each group of ``table`` first appears.
    in_sample : ndarray of bool or None
        Whether each row's brand is in the early-stopped fit's sample (None: all are).
    """

    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray | None
    times: np.ndarray
    n_train: int
    regrow_context: np.ndarray | None
    table: BrandContext | None
    first_rows: np.ndarray
    in_sample: np.ndarray | None = None


def encode_batch(
    X: Table,
    y: np.ndarray,
    weight: np.ndarray | None,
    plan: PooledPlan,
    *,
    dtype: Any = np.float32,
    regrow: bool = True,
) -> EncodedBatch:
    """Encode one batch of whole groups for the pooled model (see :class:`EncodedBatch`).

    Parameters
    ----------
    X, y, weight
        The batch (as given to :func:`batch_statistics`).
    plan : PooledPlan
        From the merged statistics of every batch.
    dtype : numpy dtype, default float32
        Of the features (float64 gives the in-memory path's matrix bit for bit).
    regrow : bool
        Also compute the regrown fit's context columns.
    """
    y = np.asarray(y)
    times = (
        time_keys(X, plan.time_column)
        if plan.time_column is not None
        else np.zeros(len(y), dtype=np.int64)
    )
    order = None if _is_sorted(times) else np.argsort(times, kind="stable")
    positions: np.ndarray | slice = slice(None) if order is None else order
    context = plan.context
    n_extra = 0 if context is None else context.n_features
    matrix = np.empty((len(y), len(plan.schema.columns) + n_extra), dtype=dtype)
    matrix[:, : len(plan.schema.columns)] = plan.schema.encode(X, order, order="C")
    y, times = y[positions], times[positions]
    weight = None if weight is None else np.asarray(weight)[positions]
    n_train = len(y) if plan.cut is None else int(np.searchsorted(times, plan.cut, side="left"))
    regrow_context, table, in_sample = None, None, None
    first_rows = np.empty(0, dtype=np.int64)
    if context is not None:
        assert plan.group_column is not None
        groups = pd.Series(column_values(X, plan.group_column)).to_numpy()[positions]
        in_sample = stopping_sample(groups, plan.stop_fraction, plan.seed)
        codes, uniques = pd.factorize(pd.Series(groups))
        codes = np.asarray(codes, dtype=np.int64)
        keys = row_keys(codes, uniques, group_ordinals(codes), plan.seed)
        targets = context_targets(y, plan.n_classes)
        levels = level_values(context, plan.schema, matrix[:, : len(plan.schema.columns)])
        levels = None if levels is None else levels.astype(np.float64)
        ctx = _BatchContext(context, codes, len(uniques), targets, weight, levels, keys)
        tr = slice(0, n_train)
        matrix[tr, -n_extra:] = ctx.out_of_fold(tr, plan.dropout, plan.short_history)
        if n_train < len(y):
            train_table = ctx.table(tr, uniques)
            table_pos = np.append(train_table.positions_of(list(uniques)), -1)
            ho = slice(n_train, len(y))
            matrix[ho, -n_extra:] = train_table.features_at(
                table_pos[codes[ho]], None if levels is None else levels[ho]
            )
            if regrow:
                regrow_context = ctx.out_of_fold(
                    slice(None), plan.dropout, plan.short_history
                ).astype(dtype)
        table = ctx.table(slice(None), uniques)
        first_rows = np.unique(codes[codes >= 0], return_index=True)[1]
    return EncodedBatch(
        matrix, y, weight, times, n_train, regrow_context, table, first_rows, in_sample
    )


def _is_sorted(values: np.ndarray) -> bool:
    return bool(len(values) < 2 or np.all(values[1:] >= values[:-1]))


@dataclass
class _BatchContext:
    """A batch's context inputs (rows in time order), for parts given as slices."""

    spec: BrandContext
    codes: np.ndarray
    n_groups: int
    targets: np.ndarray
    weight: np.ndarray | None
    levels: np.ndarray | None
    keys: np.ndarray

    def _at(self, values: np.ndarray | None, rows: slice) -> np.ndarray | None:
        return None if values is None else values[rows]

    def out_of_fold(self, rows: slice, dropout: float, short_history: float) -> np.ndarray:
        return self.spec.out_of_fold(
            self.codes[rows],
            self.n_groups,
            self.targets[rows],
            self._at(self.weight, rows),
            self._at(self.levels, rows),
            self.keys[rows],
            dropout=dropout,
            short_history=short_history,
        )

    def table(self, rows: slice, uniques: Sequence[Any]) -> BrandContext:
        return self.spec.with_table(
            self.codes[rows],
            uniques,
            self.targets[rows],
            self._at(self.weight, rows),
            self._at(self.levels, rows),
        )


def concat_tables(
    pieces: Sequence[BrandContext], first_rows: Sequence[np.ndarray] | None = None
) -> BrandContext:
    """One context table from the tables of batches of disjoint groups.

    ``first_rows`` (per piece, per key: the key's first row among the pooled rows) orders
    the keys as the in-memory table does (first appearance in time order); without it they
    stay in batch order.
    """
    if not pieces:
        raise ValueError("no context tables to concatenate")
    first = pieces[0]
    width = first.n_levels + 1
    level_keys, offset = [], 0
    for piece in pieces:
        level_keys.append(piece.level_keys + offset * width)
        offset += len(piece.keys)
    keys = [k for piece in pieces for k in piece.keys]
    mean = np.vstack([piece.mean for piece in pieces])
    log_rows = np.concatenate([piece.log_rows for piece in pieces])
    cells = np.concatenate(level_keys).astype(np.int64)
    level_mean = np.vstack([piece.level_mean for piece in pieces])
    if first_rows is not None:
        order = np.argsort(np.concatenate(list(first_rows)), kind="stable")
        new_index = np.empty(len(order), dtype=np.int64)
        new_index[order] = np.arange(len(order))
        keys, mean, log_rows = [keys[i] for i in order], mean[order], log_rows[order]
        cells = new_index[cells // width] * width + cells % width
        sort = np.argsort(cells, kind="stable")
        cells, level_mean = cells[sort], level_mean[sort]
    return replace(
        first,
        keys=tuple(keys),
        mean=mean,
        log_rows=log_rows,
        level_keys=cells,
        level_mean=level_mean,
        offsets=(),
        segments=(),
    )
