"""Brand context: the per-brand table of target means, the out-of-fold encoder, level offsets.

With a ``group_column`` (say ``brand_id``) the raw id is never a feature. Instead each row
gets *brand-context features* computed from its brand's history (:class:`BrandContext`; see
:mod:`tabtune.transfer` for the features). A brand served by the base trees as they are gets
a *level offset* (:func:`level_offset`, applied by :func:`apply_offset`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from tabtune.boosting.encoding import (
    FeatureSchema,
    Table,
    json_scalar,
    same_text_twins,
    type_twin_error,
)
from tabtune.data.limits import spelling_key
from tabtune.errors import TabTuneInputError, ZeroTargetError
from tabtune.transfer.segments import SegmentOffsets

__all__ = [
    "CONTEXT_DROPOUT",
    "CONTEXT_FOLDS",
    "CONTEXT_MIN_HISTORY",
    "CONTEXT_SHORT_HISTORY",
    "CONTEXT_SMOOTHING",
    "MAX_CONTEXT_LEVELS",
    "BrandContext",
    "apply_offset",
    "choose_level_column",
    "context_targets",
    "dropped_rows",
    "group_ordinals",
    "level_column_of",
    "level_offset",
    "objective_link",
    "row_keys",
    "short_histories",
    "zero_target",
    "zero_target_error",
]

#: Folds within each brand for out-of-fold context at training time.
CONTEXT_FOLDS = 5
#: Prior strength of the context means, in (average-weight) rows.
CONTEXT_SMOOTHING = 10.0
#: Share of pretraining rows whose context is hidden (NaN) to teach the unseen-brand path.
CONTEXT_DROPOUT = 0.1
#: Share of pretraining rows whose context comes from a short random history of their brand
#: (see :meth:`BrandContext.out_of_fold`), to teach how far a young brand's means can be trusted.
CONTEXT_SHORT_HISTORY = 0.25
#: Fewest rows of such a short history (its size is drawn log-uniformly up to the brand's).
CONTEXT_MIN_HISTORY = 10
#: Level columns with more levels than this are not used for brand x level means.
MAX_CONTEXT_LEVELS = 64
_DENSE_KEYS = 20_000_000


#: Objectives whose predictions take a level offset, and their link.
_LINKS = {
    "tweedie": "log",
    "poisson": "log",
    "squared_error": "identity",
    "absolute_error": "identity",
}


def objective_link(objective: str) -> str | None:
    """``"log"`` or ``"identity"``: the link on which an objective's predictions take level
    and segment offsets; None (classifiers) when they take none."""
    return _LINKS.get(objective)


def zero_target(objective: str, y: np.ndarray, weight: np.ndarray | None = None) -> bool:
    """Whether a log-link objective cannot be fitted on rows: none of positive weight has a
    positive target.

    Tweedie and Poisson model the log of the mean target, and a zero mean has no log:
    LightGBM refuses such rows ("sum of labels is zero"), XGBoost fits towards minus infinity
    (a model of the rows alone predicts NaN). Targets are compared as float32, the labels both
    backends train on. ``y`` may also be sums of targets (a batch's ``target_sum``). Always
    False for other objectives.
    """
    if objective_link(objective) != "log":
        return False
    y = np.asarray(y, dtype=np.float32)
    if weight is not None:
        y = y[np.asarray(weight) > 0]
    return not bool(np.any(y > 0))


def zero_target_error(objective: str, consequence: str, fix: str) -> ZeroTargetError:
    """The error for rows :func:`zero_target` refuses: what cannot be done, why, and ``fix``."""
    return ZeroTargetError(
        f"y (the target) is zero on every row of non-zero weight, so {consequence}: "
        f"objective={objective!r} models the log of the mean target, and a mean of zero has "
        f"no log. {fix}",
        objective,
    )


def apply_offset(objective: str, prediction: np.ndarray, offset: np.ndarray | float) -> np.ndarray:
    """Predictions shifted by ``offset`` on the objective's link scale."""
    link = _LINKS.get(objective)
    if link == "log":
        return prediction * np.exp(offset)
    if link == "identity":
        return prediction + offset
    return prediction


def level_offset(
    objective: str,
    y: np.ndarray,
    prediction: np.ndarray,
    weight: np.ndarray | None,
    prior_rows: float = CONTEXT_SMOOTHING,
) -> float:
    """A brand's level offset: how far its rows sit from the base model, shrunk.

    Log link (Tweedie, Poisson): ``log(sum w y / sum w p)``; identity link:
    ``sum w (y - p) / sum w``; either times ``n / (n + prior_rows)`` for ``n`` rows, so a
    brand with little history moves less (a prior worth :data:`CONTEXT_SMOOTHING` of the
    brand's own rows: day-level shocks do not average out with clicks, rows do). 0 for
    classifiers and when the sums are not positive.
    """
    link = _LINKS.get(objective)
    if link is None or not len(y):
        return 0.0
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=float)
    total = float(np.sum(w))
    if total <= 0:
        return 0.0
    shrink = len(y) / (len(y) + prior_rows)
    if link == "identity":
        return float(np.sum(w * (y - prediction)) / total * shrink)
    observed, expected = float(np.sum(w * y)), float(np.sum(w * prediction))
    if observed <= 0 or expected <= 0:
        return 0.0
    return float(np.log(observed / expected) * shrink)


def context_targets(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Context target matrix: y itself, or one-hot classes for multiclass."""
    if n_classes > 2:
        return np.eye(n_classes)[y.astype(np.intp)]
    return y.reshape(-1, 1)


def _sums(
    key: np.ndarray, size: int, weight: np.ndarray | None, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-key (row index into result, weight sum, weighted target sums, row count)."""
    if size <= _DENSE_KEYS:
        inverse, m = key, size
    else:
        _, inverse = np.unique(key, return_inverse=True)
        m = int(inverse.max()) + 1 if len(inverse) else 0
    count = np.bincount(inverse, minlength=m).astype(np.float64)
    w_sum = count if weight is None else np.bincount(inverse, weights=weight, minlength=m)
    wt = targets if weight is None else targets * weight[:, None]
    t_sum = np.column_stack(
        [np.bincount(inverse, weights=wt[:, j], minlength=m) for j in range(targets.shape[1])]
    )
    return inverse, w_sum, t_sum, count


_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
#: Salt of the dropout draw (the fold draw uses the key itself).
_DROPOUT_SALT = np.uint64(0xD1B54A32D192ED03)
#: Salts of the short-history draws: which rows, and how many rows of history.
_SHORT_SALT = np.uint64(0xA24BAED4963EE407)
_SIZE_SALT = np.uint64(0x9FB21C651E98DF25)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 values (wrapping arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX1
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX2
    return x ^ (x >> np.uint64(31))


def row_keys(
    codes: np.ndarray, uniques: Sequence[Any], ordinals: np.ndarray, seed: int
) -> np.ndarray:
    """A seeded 64-bit random key per row from its group id and its ordinal in its group.

    The key depends on the row alone (its group's value, its rank among its group's rows in
    time order, the seed), never on the other groups' rows: the out-of-fold context of a
    group comes out the same whether its rows are encoded with the whole pool or in a batch
    of a few groups (see :mod:`tabtune.transfer.pooled_batches`).

    Parameters
    ----------
    codes : ndarray of int
        Group code of each row, indexing ``uniques`` (-1: no group).
    uniques : sequence
        Group ids (hashed by value with pandas' stable hash).
    ordinals : ndarray of int
        Rank of each row among its group's rows, in time order.
    seed : int
    """
    values = pd.Series(np.asarray(list(uniques), dtype=object), dtype=object)
    hashed = pd.util.hash_pandas_object(values, index=False).to_numpy(dtype=np.uint64)
    salt = _mix(np.asarray([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        group_key = np.append(_mix(hashed ^ salt), np.uint64(0))[codes]
        return _mix(group_key + np.asarray(ordinals, dtype=np.uint64) * _GOLDEN)


def group_ordinals(codes: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """Rank of each row among the rows of its group code, in time order.

    ``order`` is the rows' time order (None: the rows are in time order)."""
    sorted_codes = codes if order is None else codes[order]
    rank_sorted = _ranks_within(sorted_codes, np.argsort(sorted_codes, kind="stable"))
    if order is None:
        return rank_sorted
    ranks = np.empty(len(codes), dtype=np.int64)
    ranks[order] = rank_sorted
    return ranks


def _ranks_within(codes: np.ndarray, by_group: np.ndarray) -> np.ndarray:
    """Rank of each row within its code, given ``by_group``: the rows sorted by code, each
    code's rows in rank order."""
    n = len(codes)
    sorted_codes = codes[by_group]
    new_group = np.empty(n, dtype=bool)
    new_group[:1] = True
    new_group[1:] = sorted_codes[1:] != sorted_codes[:-1]
    starts = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[by_group] = np.arange(n) - starts
    return rank


#: Steps per unit of ``log1p(rows)`` in ``__brand_log_rows`` (4: a step per ~28% growth).
LOG_ROWS_STEPS = 4
#: Relative step of the context means (0.01: rounded to the nearest 1% on a log scale).
MEAN_STEP = 0.01


def rounded_means(values: np.ndarray) -> np.ndarray:
    """Context means rounded to relative steps of :data:`MEAN_STEP` (sign kept; 0, NaN as
    they are).

    A brand's means drift a little every night as its history grows; rounded, they move
    across a split of the base's trees only once they moved by a step, so most rows keep their
    leaves between nights (the refresh's leaf cache, :mod:`tabtune.leaf_cache`). A 1% step
    is far below the noise of any mean a tree could split on.
    """
    v = np.asarray(values, dtype=np.float64)
    out = v.copy()
    nonzero = np.isfinite(v) & (v != 0)
    magnitude = np.round(np.log(np.abs(v[nonzero])) / MEAN_STEP) * MEAN_STEP
    out[nonzero] = np.sign(v[nonzero]) * np.exp(magnitude)
    return out


def history_size_feature(rows: np.ndarray) -> np.ndarray:
    """``__brand_log_rows``: ``log1p`` of a brand's row count, rounded to steps of
    1 / :data:`LOG_ROWS_STEPS`.

    Rounded so that a brand growing by a day's rows rarely moves it across a split of the
    base's trees (pretraining draws short histories of every size, and the trees split on it
    at every scale): its rows keep their leaves and the refresh's leaf cache keeps them
    (:mod:`tabtune.leaf_cache`).
    """
    return np.round(np.log1p(np.asarray(rows, dtype=np.float64)) * LOG_ROWS_STEPS) / LOG_ROWS_STEPS


def _unit_draws(keys: np.ndarray, salt: np.uint64) -> np.ndarray:
    """A uniform draw in [0, 1) per row from its key and ``salt``."""
    with np.errstate(over="ignore"):
        return (_mix(keys ^ salt) >> np.uint64(11)).astype(np.float64) / 2.0**53


def dropped_rows(keys: np.ndarray, dropout: float) -> np.ndarray:
    """Rows whose context is hidden: a ``dropout`` share, drawn from each row's key."""
    return _unit_draws(keys, _DROPOUT_SALT) < dropout


def short_histories(
    keys: np.ndarray, group_rows: np.ndarray, share: float, min_rows: int = CONTEXT_MIN_HISTORY
) -> np.ndarray:
    """The history size each row's context is computed from.

    A ``share`` of the rows of groups larger than ``min_rows`` (drawn from each row's key)
    get a size drawn log-uniformly between ``min_rows`` and their group's row count
    ``group_rows``; every other row gets its group's row count.
    """
    n = np.asarray(group_rows, dtype=np.int64)
    short = (_unit_draws(keys, _SHORT_SALT) < share) & (n > min_rows)
    lo = np.log(min_rows)
    span = np.log(np.maximum(n, min_rows)) - lo
    drawn = np.floor(np.exp(lo + _unit_draws(keys, _SIZE_SALT) * span)).astype(np.int64)
    return np.where(short, np.clip(drawn, min_rows, n), n)


def _prefix_sums(
    segment: np.ndarray,
    rank: np.ndarray,
    weight: np.ndarray,
    wt: np.ndarray,
    query_segment: np.ndarray,
    query_upto: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For each query q: the weight and weighted-target sums over the rows j of its segment
    (``segment[j] == query_segment[q]``) ranked before ``query_upto[q]`` (``rank[j] <
    query_upto[q]``).

    The running sums restart at every segment (a pandas group-wise cumulative sum), so a
    segment's sums depend on its own rows only, to the last bit: the same whether its group
    is encoded with the whole pool or in a batch (:mod:`~tabtune.transfer.pooled_batches`).
    """
    width = int(max(rank.max(initial=0), query_upto.max(initial=0))) + 1
    key = segment * width + rank
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    values = pd.DataFrame(np.column_stack([weight[order], wt[order]]))
    running = values.groupby(segment[order], sort=False).cumsum().to_numpy()
    last = np.searchsorted(sorted_key, query_segment * width + query_upto) - 1
    first = np.searchsorted(sorted_key, query_segment * width)
    sums = np.where((last >= first)[:, None], running[np.maximum(last, 0)], 0.0)
    return sums[:, 0], sums[:, 1:]


def choose_level_column(
    schema: FeatureSchema, X: Table, group_codes: np.ndarray, n_groups: int
) -> str | None:
    """The categorical feature for brand x level means: the one that varies most within brands.

    Among categorical columns with 2..:data:`MAX_CONTEXT_LEVELS` levels, picks the one with
    the most distinct levels per brand on average (ties: the earlier column), provided that
    average exceeds one (a brand-level attribute such as ``vertical`` never qualifies).
    """
    known = group_codes >= 0
    pairs: dict[str, int] = {}
    for name in schema.columns:
        vocabulary = schema.vocabularies.get(name)
        if vocabulary is None or not 2 <= len(vocabulary) <= MAX_CONTEXT_LEVELS:
            continue
        codes = schema.encode_column(X, name)
        levels = np.where(np.isnan(codes), len(vocabulary), codes).astype(np.int64)
        cells = group_codes[known] * (len(vocabulary) + 1) + levels[known]
        pairs[name] = int(np.count_nonzero(np.bincount(cells)))
    return level_column_of(schema, pairs, n_groups)


def level_column_of(schema: FeatureSchema, pairs: dict[str, int], n_groups: int) -> str | None:
    """:func:`choose_level_column` from the number of distinct (group, level) pairs of each
    categorical column (a missing level counts as one level), e.g. summed over batches of
    whole groups."""
    best: tuple[float, str] | None = None
    for name in schema.columns:
        vocabulary = schema.vocabularies.get(name)
        if vocabulary is None or not 2 <= len(vocabulary) <= MAX_CONTEXT_LEVELS:
            continue
        per_group = pairs.get(name, 0) / max(n_groups, 1)
        if per_group > 1.0 and (best is None or per_group > best[0]):
            best = (per_group, name)
    return None if best is None else best[1]


@dataclass(frozen=True)
class BrandContext:
    """Brand-context specification and the per-brand table a model stores.

    Parameters
    ----------
    group_column : str
    level_column : str or None
        Categorical feature for brand x level means (None: no such feature).
    n_levels : int
        Vocabulary size of the level column; code ``n_levels`` stands for missing.
    prior : tuple of float
        Pooled weighted mean target(s) at pretraining (the shrinkage target).
    smoothing : float
        Prior strength in weight units (:data:`CONTEXT_SMOOTHING` x mean pretraining weight).
    keys : tuple
        Group ids in the table.
    mean : ndarray of shape (n_keys, n_targets)
    log_rows : ndarray of shape (n_keys,)
    level_keys : ndarray of int64, sorted
        ``key_index * (n_levels + 1) + level_code`` of each stored brand x level cell.
    level_mean : ndarray of shape (n_cells, n_targets)
    offsets : tuple of (group id, float)
        Level offsets of brands served by the base trees as they are (strategy ``global``):
        a shift on the link scale (log for Tweedie/Poisson, identity for squared or absolute
        error) learnt from the brand's rows (:func:`level_offset`). Groups not listed: 0.
    segments : tuple of (group id, SegmentOffsets)
        Segment offsets of brands served with strategy ``segments``, on top of their level
        offset (:mod:`tabtune.transfer.segments`). Groups not listed: none.
    """

    group_column: str
    level_column: str | None
    n_levels: int
    prior: tuple[float, ...]
    smoothing: float
    keys: tuple[Any, ...] = ()
    mean: np.ndarray = field(default_factory=lambda: np.empty((0, 1)))
    log_rows: np.ndarray = field(default_factory=lambda: np.empty(0))
    level_keys: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    level_mean: np.ndarray = field(default_factory=lambda: np.empty((0, 1)))
    offsets: tuple[tuple[Any, float], ...] = ()
    segments: tuple[tuple[Any, SegmentOffsets], ...] = ()

    # -- names --------------------------------------------------------------------------
    @property
    def n_targets(self) -> int:
        """Number of target columns (classes for multiclass, else 1)."""
        return len(self.prior)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the context features appended after the schema columns."""
        suffixes = [""] if self.n_targets == 1 else [f"_{k}" for k in range(self.n_targets)]
        names = [f"__brand_mean{s}" for s in suffixes]
        if self.level_column is not None:
            names += [f"__brand_level_mean{s}" for s in suffixes]
        return (*names, "__brand_log_rows")

    @property
    def n_features(self) -> int:
        """Number of context features."""
        return len(self.feature_names)

    # -- statistics ------------------------------------------------------------------------
    def _shrunk(self, sums: np.ndarray, weights: np.ndarray, toward: np.ndarray) -> np.ndarray:
        """Weighted target means ``sums / weights`` shrunk towards ``toward`` with a prior worth
        :attr:`smoothing` of weight."""
        return (sums + self.smoothing * toward) / (weights + self.smoothing)[:, None]

    @staticmethod
    def _level_codes(levels: np.ndarray | None, n_levels: int) -> np.ndarray | None:
        if levels is None:
            return None
        return np.where(np.isnan(levels), n_levels, levels).astype(np.int64)

    def with_table(
        self,
        codes: np.ndarray,
        uniques: Sequence[Any],
        targets: np.ndarray,
        weight: np.ndarray | None,
        levels: np.ndarray | None,
    ) -> BrandContext:
        """The same specification with a table learnt from these rows (all of their groups).

        Parameters
        ----------
        codes : ndarray of int
            Group code of each row (-1: missing group, ignored), indexing ``uniques``.
        uniques : sequence
            Group ids.
        targets : ndarray of shape (n, n_targets)
        weight : ndarray or None
        levels : ndarray of float or None
            Level-column codes of each row (NaN: missing), when there is a level column.
        """
        known = codes >= 0
        codes, targets = codes[known], targets[known]
        weight = None if weight is None else weight[known]
        g = len(uniques)
        _, w_g, s_g, n_g = _sums(codes, g, weight, targets)
        present = n_g > 0
        mean = self._shrunk(s_g, w_g, np.asarray(self.prior))
        index = np.cumsum(present) - 1  # new position of each kept group
        level_keys = np.empty(0, dtype=np.int64)
        level_mean = np.empty((0, self.n_targets))
        lv = self._level_codes(None if levels is None else levels[known], self.n_levels)
        if lv is not None:
            width = self.n_levels + 1
            cell = codes * width + lv
            inverse, w_c, s_c, n_c = _sums(cell, g * width, weight, targets)
            first = np.full(len(n_c), -1, dtype=np.int64)
            first[inverse] = cell
            used = n_c > 0
            cells = first[used]
            cell_group = cells // width
            level_mean = self._shrunk(s_c[used], w_c[used], mean[cell_group])
            level_keys = index[cell_group] * width + cells % width
            sort = np.argsort(level_keys, kind="stable")
            level_keys, level_mean = level_keys[sort], rounded_means(level_mean[sort])
        return replace(
            self,
            keys=tuple(json_scalar(u, self.group_column) for u, p in zip(uniques, present) if p),
            mean=rounded_means(mean[present]),
            log_rows=history_size_feature(n_g[present]),
            level_keys=level_keys,
            level_mean=level_mean,
            offsets=(),
            segments=(),
        )

    def out_of_fold(
        self,
        codes: np.ndarray,
        n_groups: int,
        targets: np.ndarray,
        weight: np.ndarray | None,
        levels: np.ndarray | None,
        keys: np.ndarray | np.random.Generator,
        dropout: float = 0.0,
        short_history: float = 0.0,
    ) -> np.ndarray:
        """Context features of training rows, each computed without the row's own fold.

        ``keys`` are the rows' random keys (:func:`row_keys`): they deal each group's rows
        into balanced folds and draw the ``dropout`` rows, so a row's features depend on its
        own group's rows only. A random generator instead draws the keys (fresh folds
        each call).

        A ``short_history`` share of rows (drawn from their keys; :func:`short_histories`)
        sees its brand as a young brand would be seen: its features come from the brand's
        first ``m`` rows in key order only (``m`` drawn log-uniformly from
        :data:`CONTEXT_MIN_HISTORY` to the brand's row count), still without the row's own
        fold, and ``__brand_log_rows`` is :func:`history_size_feature` of ``m``. Pretraining
        brands have long
        histories, brands served with their context often short ones: the trees see
        noisy means of few rows with the row count that says so, and learn how far to trust
        them.

        Returns
        -------
        ndarray of shape (n, n_features)
            NaN for rows without a group and for the ``dropout`` share of rows.
        """
        n = len(codes)
        if isinstance(keys, np.random.Generator):
            keys = keys.integers(0, 2**64, size=n, dtype=np.uint64)
        out = np.full((n, self.n_features), np.nan)
        known = np.flatnonzero(codes >= 0)
        c = codes[known]
        t = targets[known]
        w = None if weight is None else weight[known]
        rank = _ranks_within(c, np.lexsort((keys[known], c)))
        fold = rank % CONTEXT_FOLDS
        prior = np.asarray(self.prior)
        k = CONTEXT_FOLDS
        _, w_g, s_g, n_g = _sums(c, n_groups, w, t)
        inv_gf, w_gf, s_gf, _ = _sums(c * k + fold, n_groups * k, w, t)
        w_oof = w_g[c] - w_gf[inv_gf]
        s_oof = s_g[c] - s_gf[inv_gf]
        mean = self._shrunk(s_oof, w_oof, prior)
        cols = [mean]
        lv = self._level_codes(None if levels is None else levels[known], self.n_levels)
        if lv is not None:
            width = self.n_levels + 1
            cell = c * width + lv
            inv_c, w_c, s_c, _ = _sums(cell, n_groups * width, w, t)
            inv_cf, w_cf, s_cf, _ = _sums(cell * k + fold, n_groups * width * k, w, t)
            w_lo = w_c[inv_c] - w_cf[inv_cf]
            s_lo = s_c[inv_c] - s_cf[inv_cf]
            cols.append(self._shrunk(s_lo, w_lo, mean))
        cols = [rounded_means(col) for col in cols]
        cols.append(history_size_feature(n_g[c])[:, None])
        out[known] = np.hstack(cols)
        if short_history > 0:
            size = short_histories(keys[known], n_g[c].astype(np.int64), short_history)
            short = np.flatnonzero(size < n_g[c])
            if len(short):
                out[known[short]] = self._short_history_features(
                    c, rank, fold, lv, t, w, short, size[short]
                )
        if dropout > 0:
            out[dropped_rows(keys, dropout)] = np.nan
        return out

    def _short_history_features(
        self,
        c: np.ndarray,
        rank: np.ndarray,
        fold: np.ndarray,
        lv: np.ndarray | None,
        t: np.ndarray,
        w: np.ndarray | None,
        rows: np.ndarray,
        size: np.ndarray,
    ) -> np.ndarray:
        """Context features of ``rows`` from their group's rows ranked below ``size`` and
        outside their own fold (the other arguments: every known row, as in
        :meth:`out_of_fold`)."""
        k = CONTEXT_FOLDS
        weight = np.ones(len(c)) if w is None else np.asarray(w, dtype=np.float64)
        wt = t * weight[:, None]
        upto = size

        def subset_sums(segment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # rows of the segment in the first `size` ranks, less those in the row's own fold
            aw, at = _prefix_sums(segment, rank, weight, wt, segment[rows], upto)
            fseg = segment * k + fold
            fw, ft = _prefix_sums(fseg, rank, weight, wt, fseg[rows], upto)
            return aw - fw, at - ft

        sw, st = subset_sums(c)
        mean = self._shrunk(st, sw, np.asarray(self.prior))
        cols = [mean]
        if lv is not None:
            lw, lt = subset_sums(c * (self.n_levels + 1) + lv)
            cols.append(self._shrunk(lt, lw, mean))
        cols = [rounded_means(col) for col in cols]
        cols.append(history_size_feature(size)[:, None])
        return np.hstack(cols)

    # -- lookup ----------------------------------------------------------------------------
    @cached_property
    def key_index(self) -> pd.Index:
        """:attr:`keys` as a ``pandas.Index``, built once (a store of thousands of brands
        would otherwise rebuild it on every prediction)."""
        return pd.Index(list(self.keys))

    def positions_of(self, groups: Sequence[Any]) -> np.ndarray:
        """Position of each group id in :attr:`keys` (-1 when the table does not hold it)."""
        if not len(self.keys):
            return np.full(len(groups), -1, dtype=np.intp)
        positions = self.key_index.get_indexer(pd.Index(list(groups)))
        unknown = [g for g, at in zip(groups, positions, strict=True) if at < 0]
        twins = same_text_twins(unknown, self.keys)
        if twins:  # 42 given as "42": served as an unseen brand without a word otherwise
            raise type_twin_error(self.group_column or "group", twins)
        return positions

    @cached_property
    def _spellings(self) -> dict[str, str]:
        """Each text key by its case- and spacing-folded form (``"acme shoes"``)."""
        return {spelling_key(k): k for k in self.keys if isinstance(k, str)}

    def refuse_spelling_twins(self, groups: Sequence[Any]) -> None:
        """Refuse ids to predict for that the table lacks but that differ from one it holds
        only in case or spacing (``"B006"``, ``"b006 "`` for ``"b006"``): they would be served
        as unseen brands, without their context, and no one would know. For predictions only:
        in training data, two such ids may be two brands."""
        if not len(self.keys):
            return
        found = self.key_index.get_indexer(pd.Index(list(groups)))
        unknown = [g for g, at in zip(groups, found, strict=True) if at < 0]
        for value in unknown:
            if isinstance(value, str) and (known := self._spellings.get(spelling_key(value))):
                name = self.group_column or "group"
                raise TabTuneInputError(
                    f"column {name!r} holds {value!r} where the model knows {known!r}: ids that "
                    "differ only in case or spacing would be served as an unseen brand, "
                    f"without its context; fix: spell it as the model knows it ({known!r})"
                )

    def features(self, group_values: Any, levels: np.ndarray | None) -> np.ndarray:
        """Context features from the stored table; NaN for groups it does not hold."""
        codes, uniques = pd.factorize(pd.Series(group_values))
        table_pos = np.append(self.positions_of(list(uniques)), -1)
        return self.features_at(table_pos[codes], levels)

    def features_at(self, positions: np.ndarray, levels: np.ndarray | None) -> np.ndarray:
        """Context features for rows whose group is at ``positions`` in ``keys`` (-1: none)."""
        n = len(positions)
        nt = self.n_targets
        out = np.full((n, self.n_features), np.nan, order="F")
        known = positions >= 0
        pos = positions[known]
        mean = self.mean[pos]
        out[known, :nt] = mean
        lv = self._level_codes(None if levels is None else levels[known], self.n_levels)
        if self.level_column is not None and lv is not None:
            width = self.n_levels + 1
            key = pos * width + lv
            at = np.searchsorted(self.level_keys, key)
            found = at < len(self.level_keys)
            found[found] = self.level_keys[at[found]] == key[found]
            level_mean = mean.copy()
            level_mean[found] = self.level_mean[at[found]]
            out[known, nt : 2 * nt] = level_mean
        out[known, -1] = self.log_rows[pos]
        return out

    def overlay(self, other: BrandContext) -> BrandContext:
        """This table with ``other``'s groups added (or replaced by ``other``'s entries)."""
        mine = pd.Index(list(self.keys))
        keep = ~mine.isin(list(other.keys))
        kept = np.flatnonzero(keep)
        width = self.n_levels + 1
        remap = np.full(len(self.keys), -1, dtype=np.int64)
        remap[kept] = np.arange(len(kept))
        cell_group = self.level_keys // width
        cell_keep = keep[cell_group] if len(cell_group) else np.zeros(0, dtype=bool)
        own_cells = remap[cell_group[cell_keep]] * width + self.level_keys[cell_keep] % width
        other_cells = (other.level_keys // width + len(kept)) * width + other.level_keys % width
        level_keys = np.concatenate([own_cells, other_cells]).astype(np.int64)
        level_mean = np.vstack([self.level_mean[cell_keep], other.level_mean])
        sort = np.argsort(level_keys, kind="stable")
        return BrandContext(
            group_column=self.group_column,
            level_column=self.level_column,
            n_levels=self.n_levels,
            prior=self.prior,
            smoothing=self.smoothing,
            keys=tuple(self.keys[i] for i in kept) + tuple(other.keys),
            mean=np.vstack([self.mean[kept], other.mean]),
            log_rows=np.concatenate([self.log_rows[kept], other.log_rows]),
            level_keys=level_keys[sort],
            level_mean=level_mean[sort],
            offsets=tuple((k, v) for k, v in self.offsets if k not in set(other.keys))
            + other.offsets,
            segments=tuple((k, v) for k, v in self.segments if k not in set(other.keys))
            + other.segments,
        )

    def with_offset(self, group: Any, offset: float) -> BrandContext:
        """This table with ``group``'s level offset set (0 removes it)."""
        kept = tuple((k, v) for k, v in self.offsets if k != group)
        if offset == 0.0:
            return replace(self, offsets=kept)
        return replace(self, offsets=(*kept, (group, float(offset))))

    def with_segments(self, group: Any, segments: SegmentOffsets | None) -> BrandContext:
        """This table with ``group``'s segment offsets set (None or empty ones remove them)."""
        kept = tuple((k, v) for k, v in self.segments if k != group)
        if segments is None or segments.is_empty:
            return replace(self, segments=kept)
        return replace(self, segments=(*kept, (group, segments)))

    def segments_of(self, groups: Any) -> dict[int, np.ndarray]:
        """The rows of each group with segment offsets: position in :attr:`segments` ->
        row positions (empty when no row's group has any)."""
        if not self.segments:
            return {}
        table = {k: i for i, (k, _) in enumerate(self.segments)}
        at = pd.Series(np.asarray(groups, dtype=object)).map(table).to_numpy(dtype=float)
        found = np.flatnonzero(~np.isnan(at))
        return {int(i): found[at[found] == i] for i in np.unique(at[found])}

    def offsets_of(self, groups: Any) -> np.ndarray | None:
        """Level offset of each row's group, or None when no group has one."""
        if not self.offsets:
            return None
        table = dict(self.offsets)
        return pd.Series(np.asarray(groups, dtype=object)).map(table).fillna(0.0).to_numpy(float)

    # -- serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (floats round-trip exactly through ``json``)."""
        return {
            "group_column": self.group_column,
            "level_column": self.level_column,
            "n_levels": self.n_levels,
            "prior": list(self.prior),
            "smoothing": self.smoothing,
            "features": list(self.feature_names),
            "groups": {
                "keys": list(self.keys),
                "mean": self.mean.tolist(),
                "log_rows": self.log_rows.tolist(),
            },
            "levels": {"keys": self.level_keys.tolist(), "mean": self.level_mean.tolist()},
            "offsets": [[k, v] for k, v in self.offsets],
        } | ({"segments": [[k, v.to_dict()] for k, v in self.segments]} if self.segments else {})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BrandContext:
        """Inverse of :meth:`to_dict`."""
        nt = len(data["prior"])
        return cls(
            group_column=data["group_column"],
            level_column=data["level_column"],
            n_levels=int(data["n_levels"]),
            prior=tuple(float(v) for v in data["prior"]),
            smoothing=float(data["smoothing"]),
            keys=tuple(data["groups"]["keys"]),
            mean=np.asarray(data["groups"]["mean"], dtype=np.float64).reshape(-1, nt),
            log_rows=np.asarray(data["groups"]["log_rows"], dtype=np.float64),
            level_keys=np.asarray(data["levels"]["keys"], dtype=np.int64),
            level_mean=np.asarray(data["levels"]["mean"], dtype=np.float64).reshape(-1, nt),
            offsets=tuple((k, float(v)) for k, v in data.get("offsets", [])),
            segments=tuple((k, SegmentOffsets.from_dict(v)) for k, v in data.get("segments", [])),
        )
