"""The per-partition work of pretraining on Dask: plain functions of pandas and numpy.

A partition holds whole brands, so everything per brand (the task's features, the brand
context's out-of-fold means, the table a model stores) is computed inside one partition; only
the statistics that span brands (vocabularies, the pooled prior, the level column, the
per-date row counts of the holdout) are reduced across partitions (:func:`merge_statistics`).
Nothing here imports Dask: these functions run on the workers and are tested on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tabtune.boosting.encoding import FeatureSchema, is_categorical_dtype
from tabtune.config import TaskConfig
from tabtune.data.store import CampaignStore
from tabtune.errors import TabTuneInputError
from tabtune.evaluation import row_losses
from tabtune.features import GROUP_COLUMN, TIME_COLUMN, task_data
from tabtune.transfer import BrandContext
from tabtune.transfer.context import (
    CONTEXT_DROPOUT,
    CONTEXT_SMOOTHING,
    MAX_CONTEXT_LEVELS,
    context_targets,
)

__all__ = [
    "TARGET",
    "WEIGHT",
    "Encoded",
    "PartStatistics",
    "Pooled",
    "encode_partition",
    "level_column",
    "merge_statistics",
    "partition_statistics",
    "partition_table",
    "read_task_partition",
    "stopping_round",
    "validation_curve",
]

#: Columns that carry the target and the sample weight next to the model inputs.
TARGET = "__target"
WEIGHT = "__weight"


def read_task_partition(
    brands: list[str], store_root: str, task: TaskConfig, end: Any, empty: pd.DataFrame | None
) -> pd.DataFrame:
    """The task's model inputs of some brands, with :data:`TARGET` and :data:`WEIGHT`.

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
    out[WEIGHT] = 1.0 if data.weight is None else np.asarray(data.weight, dtype=np.float64)
    out.attrs["notices"] = list(data.notices)
    return out


def _features(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in (GROUP_COLUMN, TIME_COLUMN, TARGET, WEIGHT)]


@dataclass
class PartStatistics:
    """What one partition adds to the pooled statistics (all of them sums or unions)."""

    rows: int = 0
    brands: int = 0
    weight: float = 0.0
    target_sums: np.ndarray = field(default_factory=lambda: np.zeros(0))
    classes: set[Any] = field(default_factory=set)
    levels: dict[str, set[Any]] = field(default_factory=dict)
    pairs: dict[str, int] = field(default_factory=dict)
    dates: dict[int, int] = field(default_factory=dict)


def partition_statistics(
    frame: pd.DataFrame, n_targets: int, classification: bool
) -> PartStatistics:
    """Mergeable statistics of one partition (see :func:`merge_statistics`)."""
    stats = PartStatistics(rows=len(frame), brands=int(frame[GROUP_COLUMN].nunique()))
    y = frame[TARGET].to_numpy(dtype=np.float64)
    w = frame[WEIGHT].to_numpy(dtype=np.float64)
    stats.weight = float(w.sum())
    if classification:
        stats.classes = set(np.unique(y).astype(np.int64).tolist())
    targets = context_targets(y, n_targets) if len(y) else np.zeros((0, n_targets))
    stats.target_sums = (targets * w[:, None]).sum(axis=0)
    brands = frame[GROUP_COLUMN].to_numpy()
    for name in _features(frame):
        if not is_categorical_dtype(frame[name].dtype):
            continue
        values = frame[name]
        stats.levels[name] = set(values.dropna().unique().tolist())
        pairs = pd.DataFrame({"b": brands, "v": values.fillna("\0missing")}).drop_duplicates()
        stats.pairs[name] = len(pairs)
    days = frame[TIME_COLUMN].to_numpy().astype("datetime64[ns]").view(np.int64)
    keys, counts = np.unique(days, return_counts=True)
    stats.dates = dict(zip(keys.tolist(), counts.tolist(), strict=True))
    return stats


@dataclass
class Pooled:
    """The statistics of every partition, merged."""

    rows: int
    brands: int
    weight: float
    target_sums: np.ndarray
    classes: list[Any]
    levels: dict[str, list[Any]]
    pairs: dict[str, int]
    dates: np.ndarray
    date_counts: np.ndarray


def merge_statistics(parts: list[PartStatistics]) -> Pooled:
    """Sum and unite the statistics of the partitions (whole brands each, so exact)."""
    levels: dict[str, set[Any]] = {}
    pairs: dict[str, int] = {}
    dates: dict[int, int] = {}
    for p in parts:
        for name, values in p.levels.items():
            levels.setdefault(name, set()).update(values)
        for name, n in p.pairs.items():
            pairs[name] = pairs.get(name, 0) + n
        for day, n in p.dates.items():
            dates[day] = dates.get(day, 0) + n
    sums = [p.target_sums for p in parts if len(p.target_sums)]
    keys = np.array(sorted(dates), dtype=np.int64)
    return Pooled(
        rows=sum(p.rows for p in parts),
        brands=sum(p.brands for p in parts),
        weight=sum(p.weight for p in parts),
        target_sums=np.sum(sums, axis=0) if sums else np.zeros(1),
        classes=sorted(set().union(*(p.classes for p in parts))),
        levels={k: list(v) for k, v in levels.items()},
        pairs=pairs,
        dates=keys,
        date_counts=np.array([dates[k] for k in keys], dtype=np.int64),
    )


def pooled_schema(empty: pd.DataFrame, pooled: Pooled) -> FeatureSchema:
    """The feature schema :meth:`FeatureSchema.from_table` learns from all rows.

    Built from a frame with the partitions' columns and dtypes holding each categorical
    column's levels (vocabularies are sorted the same way whatever the rows' order).
    """
    size = max([len(v) for v in pooled.levels.values()] + [1])
    columns: dict[str, Any] = {}
    for name in [c for c in empty.columns if c not in (TARGET, WEIGHT)]:
        dtype = empty[name].dtype
        values = pooled.levels.get(name)
        if values is not None:
            columns[name] = pd.Series(values + [None] * (size - len(values)), dtype=dtype)
        elif name == TIME_COLUMN:
            columns[name] = pd.Series(pd.NaT, index=range(size), dtype=dtype)
        else:
            columns[name] = pd.Series(np.nan, index=range(size)).astype(dtype, errors="ignore")
    return FeatureSchema.from_table(pd.DataFrame(columns), exclude=[GROUP_COLUMN, TIME_COLUMN])


def level_column(schema: FeatureSchema, pooled: Pooled) -> str | None:
    """:func:`~tabtune.transfer.context.choose_level_column`'s rule on pooled counts."""
    best: tuple[float, str] | None = None
    for name in schema.columns:
        vocabulary = schema.vocabularies.get(name)
        if vocabulary is None or not 2 <= len(vocabulary) <= MAX_CONTEXT_LEVELS:
            continue
        per_group = pooled.pairs.get(name, 0) / max(pooled.brands, 1)
        if per_group > 1.0 and (best is None or per_group > best[0]):
            best = (per_group, name)
    return None if best is None else best[1]


def context_spec(schema: FeatureSchema, pooled: Pooled, n_targets: int) -> BrandContext:
    """The brand-context specification (no table) of the pooled rows."""
    level = level_column(schema, pooled)
    prior = tuple(float(v) for v in pooled.target_sums / pooled.weight)
    return BrandContext(
        group_column=GROUP_COLUMN,
        level_column=level,
        n_levels=0 if level is None else len(schema.vocabularies[level]),
        prior=prior[:n_targets],
        smoothing=CONTEXT_SMOOTHING * pooled.weight / max(pooled.rows, 1),
    )


def holdout_cut(pooled: Pooled, validation_fraction: float) -> int | None:
    """The first time key (int64 ns) of the holdout, by
    :func:`~tabtune.evaluation.holdout_split`'s rule on per-date counts; None: no split."""
    n = pooled.rows
    n_valid = max(1, int(round(validation_fraction * n)))
    n_train = n - n_valid
    if not 0 < n_train < n:
        return None
    ends = np.cumsum(pooled.date_counts)
    at = int(np.searchsorted(ends, n_train, side="right"))  # the date of row n_train
    start = int(ends[at - 1]) if at > 0 else 0
    if start >= 2:
        return int(pooled.dates[at])
    if at + 1 >= len(pooled.dates) or int(ends[at]) < 2:
        return None
    return int(pooled.dates[at + 1])


@dataclass
class Encoded:
    """One partition's encoded rows: the matrix (schema then context columns), target, weight."""

    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray


def _levels(context: BrandContext, schema: FeatureSchema, matrix: np.ndarray) -> np.ndarray | None:
    if context.level_column is None:
        return None
    return matrix[:, schema.columns.index(context.level_column)]


def encode_partition(
    frame: pd.DataFrame,
    schema: FeatureSchema,
    context: BrandContext,
    part: str,
    cut: int | None,
    seed: Any,
) -> Encoded:
    """Encode a partition's ``"train"`` rows (before ``cut``), ``"valid"`` rows (from it) or
    ``"all"`` rows, with the brand-context columns.

    Training and all rows get out-of-fold context (with :data:`CONTEXT_DROPOUT`), holdout rows
    the table of their brand's training rows, as the single-process pretraining does; the
    folds and the dropout are drawn from ``seed`` (one stream per partition).
    """
    n_targets = context.n_targets
    days = frame[TIME_COLUMN].to_numpy().astype("datetime64[ns]").view(np.int64)
    train = np.ones(len(frame), dtype=bool) if cut is None else days < cut
    codes, uniques = pd.factorize(frame[GROUP_COLUMN])
    codes = np.asarray(codes, dtype=np.int64)
    y = frame[TARGET].to_numpy(dtype=np.float64)
    w = frame[WEIGHT].to_numpy(dtype=np.float64)
    matrix = schema.encode(frame, None, n_extra=context.n_features, order="C")
    width = len(schema.columns)
    rng = np.random.default_rng(seed)
    if part == "valid":
        table = context.with_table(
            codes[train],
            list(uniques),
            context_targets(y[train], _n_classes(n_targets)),
            w[train],
            _take(_levels(context, schema, matrix), train),
        )
        keep = ~train
        matrix = matrix[keep]
        table_pos = np.append(table.positions_of(list(uniques)), -1)
        matrix[:, width:] = table.features_at(
            table_pos[codes[keep]], _levels(context, schema, matrix)
        )
        return Encoded(matrix, y[keep], w[keep])
    keep = train if part == "train" else np.ones(len(frame), dtype=bool)
    matrix, codes, y, w = matrix[keep], codes[keep], y[keep], w[keep]
    matrix[:, width:] = context.out_of_fold(
        codes,
        len(uniques),
        context_targets(y, _n_classes(n_targets)),
        w,
        _levels(context, schema, matrix),
        rng,
        dropout=CONTEXT_DROPOUT,
    )
    return Encoded(matrix, y, w)


def _n_classes(n_targets: int) -> int:
    return n_targets if n_targets > 1 else 1


def _take(values: np.ndarray | None, mask: np.ndarray) -> np.ndarray | None:
    return None if values is None else values[mask]


def partition_table(
    frame: pd.DataFrame, schema: FeatureSchema, context: BrandContext
) -> BrandContext:
    """The context table a model stores, learnt from a partition's rows (its brands only)."""
    codes, uniques = pd.factorize(frame[GROUP_COLUMN])
    levels = None
    if context.level_column is not None:
        levels = schema.encode_column(frame, context.level_column)
    return context.with_table(
        np.asarray(codes, dtype=np.int64),
        list(uniques),
        context_targets(frame[TARGET].to_numpy(dtype=np.float64), _n_classes(context.n_targets)),
        frame[WEIGHT].to_numpy(dtype=np.float64),
        levels,
    )


def _response(objective: str, raw: np.ndarray) -> np.ndarray:
    """LightGBM's raw score on the response scale (the objectives tabtune trains)."""
    if objective in ("tweedie", "poisson"):
        return np.exp(raw)
    if objective == "binary":
        return 1.0 / (1.0 + np.exp(-raw))
    return raw


def validation_curve(model_text: str, part: Encoded, objective: str, n_rounds: int) -> np.ndarray:
    """``sum(weight x loss)`` of the holdout rows after each round (the objective's own loss).

    One tree at a time, so the curve costs one prediction of every tree (not one per prefix).
    """
    import lightgbm as lgb

    booster = lgb.Booster(model_str=model_text)
    raw = np.zeros(len(part.y))
    out = np.zeros(n_rounds)
    for i in range(min(n_rounds, booster.current_iteration())):
        raw += booster.predict(part.X, raw_score=True, start_iteration=i, num_iteration=1)
        losses = row_losses(objective, part.y, _response(objective, raw))
        out[i] = float(np.sum(part.weight * losses))
    return out


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
