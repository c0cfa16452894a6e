"""Pretraining, brand context and the per-brand adaptation strategies.

This module is functional and knows nothing of scikit-learn: it takes encoded-ready rows
(:class:`Rows`), a :class:`~tabtune.boosting.base.Backend` and parameters, and returns fitted
models (:class:`FittedModel`). ``tabtune.estimators`` is a thin layer over it.

Brand context
-------------
With a ``group_column`` (say ``brand_id``) the raw id is never a feature. Instead each row
gets *brand-context features* computed from its brand's history (:class:`BrandContext`):

``__brand_mean``
    the brand's weighted mean target, shrunk towards the pooled mean with a prior worth
    :data:`CONTEXT_SMOOTHING` average rows. Brands that differ by multiplicative level
    effects differ here first.
``__brand_level_mean``
    the mean target of the brand within each level of the *level column* (the categorical
    feature that varies most within brands, e.g. ``channel``), shrunk towards the brand mean.
``__brand_log_rows``
    ``log1p`` of the brand's row count (how much history backs the two means).

For a multiclass target the means are per class (``__brand_mean_0``, ...). Pretraining rows
never see their own target: their means come out of fold (:data:`CONTEXT_FOLDS` folds
assigned within each brand). Adaptation learns from one brand's rows with the brand's table
entry (the values it is served with; see ``_fill_training_context``). Holdout rows and predictions use the table stored from the fit
rows, exactly as at serving time. During pretraining a random :data:`CONTEXT_DROPOUT`
share of rows gets unknown (NaN) context, so that the trees learn what to do for a brand
they have never seen: such a brand gets NaN context and a pooled prediction, without error.

Strategies
----------
``global`` the base model as is, with the brand's context and a *level offset*: the brand's
weighted mean target against the base's predictions on its rows, on the link scale (log for
Tweedie/Poisson, identity for squared error), shrunk towards 0 by a prior worth
:data:`CONTEXT_SMOOTHING` of the brand's rows (:func:`level_offset`; none for classifiers). The trees learn what brand context
means from the pretraining brands only, so a new brand's level is often off by tens of percent;
the offset corrects that without growing a tree. ``refit`` the base's trees with leaf values
re-estimated on the brand's rows; ``continue`` new trees boosted from the base; ``refit+continue``
both; ``scratch`` a model of the brand's rows alone. ``auto`` fits each candidate on the older
rows and scores it on the newer ones, over ``selection_folds`` rolling-origin folds (the newest
holds the newest ``validation_fraction`` of rows; each older fold as many rows just before it),
with the objective's own loss (:func:`holdout_score`: Tweedie or Poisson deviance, squared
error, log loss). It keeps the best (ties go to the simpler, in the order above; ``global`` is a
candidate, so the choice is never worse than ``global`` on those folds), then fits the chosen
strategy again on ALL rows with the number of new rounds early stopping found on the newest
fold. One holdout of a few dozen rows is too noisy to choose on (docs/benchmarks.md compares
one and three folds). With monotone constraints the refit strategies are not used (re-estimated leaf values are unconstrained and could break monotonicity).

Cost
----
The fits of one :func:`adapt` call share their common work through a backend
:class:`~tabtune.boosting.base.Session`: the base is predicted once per set of rows (LightGBM:
as leaf indices, from which refits, the raw scores continued training starts from and the
holdout predictions of the base and of a refit all follow), ``refit`` and ``refit+continue``
share one refit, candidates are not copied through their bytes, and what is derived from the
base alone (its parsed leaves) is kept on the base model for the next brand. Every result is
bit for bit what the plain backend calls give.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from tabtune import evaluation
from tabtune.boosting.base import (
    Backend,
    BoosterParams,
    Layout,
    LeafMemory,
    Matrix,
    Session,
    SessionOptions,
)
from tabtune.boosting.encoding import FeatureSchema, Table, json_scalar
from tabtune.errors import TabTuneInputError
from tabtune.evaluation import holdout_score, holdout_split, loss_name, row_losses
from tabtune.params import STRATEGIES, default

__all__ = [
    "CONTEXT_DROPOUT",
    "CONTEXT_FOLDS",
    "CONTEXT_SMOOTHING",
    "STRATEGIES",
    "AdaptResult",
    "AdaptSettings",
    "BrandContext",
    "FittedModel",
    "Rows",
    "adapt",
    "choose_level_column",
    "choose_strategy",
    "holdout_split",
    "holdout_score",
    "fold_splits",
    "level_offset",
    "apply_offset",
    "row_losses",
    "loss_name",
    "pretrain",
    "run_strategy",
]

_REFITS = ("refit", "refit+continue")
#: Strategies that grow new trees (their round count comes from early stopping).
_BOOSTED = ("continue", "refit+continue", "scratch")
#: Folds within each brand for out-of-fold context at training time.
CONTEXT_FOLDS = 5
#: Prior strength of the context means, in (average-weight) rows.
CONTEXT_SMOOTHING = 10.0
#: Share of pretraining rows whose context is hidden (NaN) to teach the unseen-brand path.
CONTEXT_DROPOUT = 0.1
#: Level columns with more levels than this are not used for brand x level means.
MAX_CONTEXT_LEVELS = 64
_DENSE_KEYS = 20_000_000


# ----------------------------------------------------------------------------------------------
# rows and scores
# ----------------------------------------------------------------------------------------------


@dataclass
class Rows:
    """The rows of one fit call.

    Parameters
    ----------
    X : DataFrame or ndarray
        The table, in the caller's row order.
    y : ndarray of float64
        Target; class index (0..K-1) for classifiers.
    weight : ndarray or None
        Positive sample weights (zero-weight rows already removed), or None.
    order : ndarray of int or None
        Time order of the rows (oldest first); None when the given order is the time order.
    groups : Series, ndarray or None
        The group column's values (brand ids), in the caller's row order.
    times : ndarray or None
        Sortable time keys (e.g. int64 nanoseconds) in the caller's row order, when a time
        column is known: the holdout then never splits the rows of one timestamp.
    """

    X: Table
    y: np.ndarray
    weight: np.ndarray | None = None
    order: np.ndarray | None = None
    groups: pd.Series | np.ndarray | None = None
    times: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def sorted_times(self) -> np.ndarray | None:
        """The rows' time keys in time order, or None when no time column is known."""
        if self.times is None:
            return None
        return self.times if self.order is None else self.times[self.order]

    def split(self, validation_fraction: float) -> int | None:
        """Training rows before the holdout (see :func:`~tabtune.evaluation.holdout_split`)."""
        return holdout_split(len(self), validation_fraction, self.sorted_times())

    def positions(self, start: int, stop: int) -> np.ndarray | slice:
        """Row positions of the ``start:stop`` slice of the time-ordered rows."""
        if self.order is None:
            return slice(start, stop)
        return self.order[start:stop]


#: Objectives whose predictions take a level offset, and their link.
_LINKS = {
    "tweedie": "log",
    "poisson": "log",
    "squared_error": "identity",
    "absolute_error": "identity",
}


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


def _take(values: np.ndarray | None, rows: np.ndarray | slice | None) -> np.ndarray | None:
    if values is None or rows is None:
        return values
    return values[rows]


def _targets(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Context target matrix: y itself, or one-hot classes for multiclass."""
    if n_classes > 2:
        return np.eye(n_classes)[y.astype(np.intp)]
    return y.reshape(-1, 1)


# ----------------------------------------------------------------------------------------------
# brand context
# ----------------------------------------------------------------------------------------------


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


def _within_group_folds(codes: np.ndarray, n_groups: int, rng: np.random.Generator) -> np.ndarray:
    """Fold ids 0..CONTEXT_FOLDS-1, balanced within each group, in random order."""
    n = len(codes)
    perm = rng.permutation(n)
    by_group = perm[np.argsort(codes[perm], kind="stable")]
    counts = np.bincount(codes, minlength=n_groups)
    starts = np.cumsum(counts) - counts
    rank = np.empty(n, dtype=np.int64)
    rank[by_group] = np.arange(n) - np.repeat(starts, counts)
    return rank % CONTEXT_FOLDS


def choose_level_column(
    schema: FeatureSchema, X: Table, group_codes: np.ndarray, n_groups: int
) -> str | None:
    """The categorical feature for brand x level means: the one that varies most within brands.

    Among categorical columns with 2..:data:`MAX_CONTEXT_LEVELS` levels, picks the one with
    the most distinct levels per brand on average (ties: the earlier column), provided that
    average exceeds one (a brand-level attribute such as ``vertical`` never qualifies).
    """
    best: tuple[float, str] | None = None
    known = group_codes >= 0
    for name in schema.columns:
        vocabulary = schema.vocabularies.get(name)
        if vocabulary is None or not 2 <= len(vocabulary) <= MAX_CONTEXT_LEVELS:
            continue
        codes = schema.encode_column(X, name)
        levels = np.where(np.isnan(codes), len(vocabulary), codes).astype(np.int64)
        pairs = group_codes[known] * (len(vocabulary) + 1) + levels[known]
        per_group = np.count_nonzero(np.bincount(pairs)) / max(n_groups, 1)
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
        mean = (s_g + self.smoothing * np.asarray(self.prior)) / (w_g + self.smoothing)[:, None]
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
            level_mean = (s_c[used] + self.smoothing * mean[cell_group]) / (
                w_c[used] + self.smoothing
            )[:, None]
            level_keys = index[cell_group] * width + cells % width
            sort = np.argsort(level_keys, kind="stable")
            level_keys, level_mean = level_keys[sort], level_mean[sort]
        return BrandContext(
            group_column=self.group_column,
            level_column=self.level_column,
            n_levels=self.n_levels,
            prior=self.prior,
            smoothing=self.smoothing,
            keys=tuple(json_scalar(u, self.group_column) for u, p in zip(uniques, present) if p),
            mean=mean[present],
            log_rows=np.log1p(n_g[present]),
            level_keys=level_keys,
            level_mean=level_mean,
        )

    def out_of_fold(
        self,
        codes: np.ndarray,
        n_groups: int,
        targets: np.ndarray,
        weight: np.ndarray | None,
        levels: np.ndarray | None,
        rng: np.random.Generator,
        dropout: float = 0.0,
    ) -> np.ndarray:
        """Context features of training rows, each computed without the row's own fold.

        Returns
        -------
        ndarray of shape (n, n_features)
            NaN for rows without a group and for the ``dropout`` share of rows.
        """
        n = len(codes)
        out = np.full((n, self.n_features), np.nan)
        known = np.flatnonzero(codes >= 0)
        c = codes[known]
        t = targets[known]
        w = None if weight is None else weight[known]
        fold = _within_group_folds(c, n_groups, rng)
        prior = np.asarray(self.prior)
        k = CONTEXT_FOLDS
        _, w_g, s_g, n_g = _sums(c, n_groups, w, t)
        inv_gf, w_gf, s_gf, _ = _sums(c * k + fold, n_groups * k, w, t)
        w_oof = w_g[c] - w_gf[inv_gf]
        s_oof = s_g[c] - s_gf[inv_gf]
        mean = (s_oof + self.smoothing * prior) / (w_oof + self.smoothing)[:, None]
        cols = [mean]
        lv = self._level_codes(None if levels is None else levels[known], self.n_levels)
        if lv is not None:
            width = self.n_levels + 1
            cell = c * width + lv
            inv_c, w_c, s_c, _ = _sums(cell, n_groups * width, w, t)
            inv_cf, w_cf, s_cf, _ = _sums(cell * k + fold, n_groups * width * k, w, t)
            w_lo = w_c[inv_c] - w_cf[inv_cf]
            s_lo = s_c[inv_c] - s_cf[inv_cf]
            cols.append((s_lo + self.smoothing * mean) / (w_lo + self.smoothing)[:, None])
        cols.append(np.log1p(n_g[c])[:, None])
        out[known] = np.hstack(cols)
        if dropout > 0:
            out[rng.random(n) < dropout] = np.nan
        return out

    # -- lookup ----------------------------------------------------------------------------
    def positions_of(self, groups: Sequence[Any]) -> np.ndarray:
        """Position of each group id in :attr:`keys` (-1 when the table does not hold it)."""
        if not len(self.keys):
            return np.full(len(groups), -1, dtype=np.intp)
        return pd.Index(list(self.keys)).get_indexer(pd.Index(list(groups)))

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
        )

    def with_offset(self, group: Any, offset: float) -> BrandContext:
        """This table with ``group``'s level offset set (0 removes it)."""
        kept = tuple((k, v) for k, v in self.offsets if k != group)
        if offset == 0.0:
            return replace(self, offsets=kept)
        return replace(self, offsets=(*kept, (group, float(offset))))

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
        }

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
        )


# ----------------------------------------------------------------------------------------------
# fitted models
# ----------------------------------------------------------------------------------------------


@dataclass
class FittedModel:
    """A booster with everything needed to encode rows for it.

    Parameters
    ----------
    backend : Backend
    booster : object
        The native booster (never modified after creation).
    schema : FeatureSchema
    context : BrandContext or None
        Context specification and the stored per-brand table.
    params : BoosterParams
        Parameters the model's (base) trees were grown with; ``refit`` reuses them.

    Attributes
    ----------
    derived : dict
        What backend sessions derived from ``booster`` alone, kept for the next session
        (see :meth:`session`); tied to the booster object, so replacing ``booster`` voids it.
    """

    backend: Backend
    booster: Any
    schema: FeatureSchema
    context: BrandContext | None
    params: BoosterParams
    #: What sessions derived from ``booster`` alone (see :meth:`Backend.session`).
    derived: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def session(self, options: SessionOptions | None = None) -> Session:
        """A backend :class:`~tabtune.boosting.base.Session` of fits that start from this model.

        What it derives from the booster alone is kept on this model for later sessions.
        """
        return self.backend.session(self.booster, self.layout, self.derived, options=options)

    @property
    def layout(self) -> Layout:
        """Feature names (schema, then context) and categorical positions."""
        extra = () if self.context is None else self.context.feature_names
        return Layout((*self.schema.columns, *extra), tuple(self.schema.categorical_indices))

    def encode(self, X: Table, groups: Any = None) -> np.ndarray | pd.DataFrame:
        """Model inputs for X, with context features from the stored table.

        ``groups`` holds the group column's values (None: every group unknown). The result
        is a matrix, or a DataFrame of columns (no copy of float64 features) for backends
        that predict from columns.
        """
        context = self.context
        n_extra = 0 if context is None else context.n_features
        if self.backend.columnar_predict:
            columns = self.schema.encode_columns(X)
            if context is not None:
                levels = None if context.level_column is None else columns[context.level_column]
                values = self._context_features(len(next(iter(columns.values()))), groups, levels)
                columns.update(zip(context.feature_names, values.T, strict=True))
            return pd.DataFrame(columns, copy=False)
        matrix = self.schema.encode(X, None, n_extra=n_extra, order=self.backend.matrix_order)
        if context is not None:
            levels = _level_values(context, self.schema, matrix)
            matrix[:, len(self.schema.columns) :] = self._context_features(
                matrix.shape[0], groups, levels
            )
        return matrix

    def _context_features(self, n: int, groups: Any, levels: np.ndarray | None) -> np.ndarray:
        assert self.context is not None
        if groups is None:
            return self.context.features_at(np.full(n, -1, dtype=np.intp), levels)
        return self.context.features(groups, levels)

    def predict(
        self, matrix: np.ndarray | pd.DataFrame, device: str = "cpu", groups: Any = None
    ) -> np.ndarray:
        """Response-scale predictions on encoded inputs (see :meth:`encode`).

        ``groups`` (the rows' group ids) applies the stored level offsets of brands served
        by the base trees as they are; without it no offset is applied.
        """
        prediction = np.asarray(
            self.backend.predict(self.booster, matrix, self.layout, device=device)
        )
        if self.context is None or groups is None:
            return prediction
        offsets = self.context.offsets_of(groups)
        if offsets is None:
            return prediction
        return apply_offset(self.params.objective, prediction, offsets)


def _level_values(
    context: BrandContext, schema: FeatureSchema, matrix: np.ndarray
) -> np.ndarray | None:
    if context.level_column is None:
        return None
    return matrix[:, schema.columns.index(context.level_column)]


@dataclass
class _Part:
    """Encoded rows of one part of a fit (training rows, holdout rows or all rows)."""

    matrix: Matrix
    codes: np.ndarray | None


class _Fit:
    """The rows of one fit call, encoded part by part for a model layout."""

    def __init__(
        self, model: FittedModel, rows: Rows, n_classes: int, rng: np.random.Generator
    ) -> None:
        self.model = model
        self.rows = rows
        self.n_classes = n_classes
        self.rng = rng
        self.codes: np.ndarray | None = None
        self.uniques: list[Any] = []
        if model.context is not None:
            codes, uniques = pd.factorize(pd.Series(rows.groups))
            self.codes = np.asarray(codes, dtype=np.int64)
            self.uniques = list(uniques)
        self._columns: dict[str, np.ndarray] | None = None

    def time_part(self, start: int, stop: int) -> _Part:
        """Encode the ``start:stop`` slice of the time-ordered rows."""
        return self.part(self.rows.positions(start, stop), slice(start, stop))

    def part(
        self, positions: np.ndarray | slice | None, time_rows: slice | np.ndarray | None = None
    ) -> _Part:
        """Encode the rows at ``positions`` (None: all rows, as given); ``time_rows`` says
        where they stand in time order (known for all rows)."""
        if positions is None:
            order = self.rows.order
            if order is None:
                time_rows = slice(0, len(self.rows))
            else:
                time_rows = np.empty(len(order), dtype=np.int64)
                time_rows[order] = np.arange(len(order))
        context = self.model.context
        if self._columns is None:  # every part takes its rows from the same encoded columns
            self._columns = self.model.schema.encode_columns(self.rows.X)
        matrix = self.model.schema.encode(
            self.rows.X,
            positions,
            n_extra=0 if context is None else context.n_features,
            order=self.model.backend.matrix_order,
            columns=self._columns,
        )
        return _Part(
            Matrix(
                matrix,
                _take(self.rows.y, positions),
                _take(self.rows.weight, positions),
                rows=time_rows,
            ),
            _take(self.codes, positions),
        )

    def _levels(self, part: _Part) -> np.ndarray | None:
        assert self.model.context is not None
        return _level_values(self.model.context, self.model.schema, part.matrix.X)

    def table(self, part: _Part) -> BrandContext:
        """Context table learnt from the rows of ``part`` (its groups only)."""
        assert self.model.context is not None and part.codes is not None
        return self.model.context.with_table(
            part.codes,
            self.uniques,
            _targets(part.matrix.y, self.n_classes),
            part.matrix.weight,
            self._levels(part),
        )

    def fill_out_of_fold(self, part: _Part, dropout: float = 0.0) -> None:
        """Context columns of training rows, out of fold."""
        context = self.model.context
        if context is None:
            return
        assert part.codes is not None
        part.matrix.X[:, len(self.model.schema.columns) :] = context.out_of_fold(
            part.codes,
            len(self.uniques),
            _targets(part.matrix.y, self.n_classes),
            part.matrix.weight,
            self._levels(part),
            self.rng,
            dropout=dropout,
        )

    def offsets(self, part: _Part, prediction: np.ndarray) -> np.ndarray | None:
        """Level offset of each group (by code) from the rows of ``part`` and the base's
        predictions on them (see :func:`level_offset`); None without a brand context."""
        context = self.model.context
        if context is None or part.codes is None:
            return None
        out = np.zeros(len(self.uniques))
        y, w = part.matrix.y, part.matrix.weight
        for code in np.unique(part.codes[part.codes >= 0]):
            at = part.codes == code
            out[code] = level_offset(
                self.model.params.objective,
                y[at],
                prediction[at],
                None if w is None else w[at],
            )
        return out

    def fill_from_table(self, part: _Part, table: BrandContext) -> None:
        """Context columns looked up in ``table``, as at serving time."""
        if self.model.context is None:
            return
        assert part.codes is not None
        table_pos = np.append(table.positions_of(self.uniques), -1)
        part.matrix.X[:, len(self.model.schema.columns) :] = table.features_at(
            table_pos[part.codes], self._levels(part)
        )


# ----------------------------------------------------------------------------------------------
# pretraining
# ----------------------------------------------------------------------------------------------


@dataclass
class PretrainResult:
    """A pretrained model, its round count and its holdout score."""

    model: FittedModel
    n_rounds: int
    holdout_scores: dict[str, float]


def pretrain(
    backend: Backend,
    params: BoosterParams,
    schema: FeatureSchema,
    rows: Rows,
    *,
    group_column: str | None,
    n_estimators: int,
    early_stopping_rounds: int | None,
    validation_fraction: float,
    random_state: int | None,
) -> PretrainResult:
    """Fit the global model on pooled rows.

    With early stopping the model is grown on the older rows and stopped on the newest
    ``validation_fraction``, and kept as is (pooled data are large: it is not grown again on
    all rows); its holdout score is reported as ``"global"``. Without early stopping it is
    grown on all rows for ``n_estimators`` rounds. With a ``group_column`` the brand context
    is learnt: out of fold (with :data:`CONTEXT_DROPOUT`) for training rows, from the
    training rows' table for holdout rows, and stored from all rows.
    """
    context: BrandContext | None = None
    if group_column is not None:
        codes, uniques = pd.factorize(pd.Series(rows.groups))
        codes = np.asarray(codes, dtype=np.int64)
        targets = _targets(rows.y, params.n_classes)
        prior = tuple(float(v) for v in np.average(targets, axis=0, weights=rows.weight))
        mean_weight = 1.0 if rows.weight is None else float(np.mean(rows.weight))
        level = choose_level_column(schema, rows.X, codes, len(uniques))
        context = BrandContext(
            group_column=group_column,
            level_column=level,
            n_levels=0 if level is None else len(schema.vocabularies[level]),
            prior=prior,
            smoothing=CONTEXT_SMOOTHING * mean_weight,
        )
    model = FittedModel(backend, None, schema, context, params)
    params = model.params = _padded(params, model.layout)
    fit = _Fit(model, rows, params.n_classes, np.random.default_rng(random_state))
    n_train = None
    if early_stopping_rounds is not None:
        n_train = rows.split(validation_fraction)
    if n_train is None:
        train, valid = fit.part(None), None
    else:
        train = fit.part(rows.positions(0, n_train))
        valid = fit.part(rows.positions(n_train, len(rows)))
    fit.fill_out_of_fold(train, dropout=CONTEXT_DROPOUT)
    if valid is not None and context is not None:
        fit.fill_from_table(valid, fit.table(train))
    trained = backend.train(
        params,
        model.layout,
        train.matrix,
        num_rounds=n_estimators,
        valid=None if valid is None else valid.matrix,
        early_stopping_rounds=early_stopping_rounds,
    )
    model.booster = trained.booster
    scores: dict[str, float] = {}
    if valid is not None:
        scores["global"] = holdout_score(
            params.objective, valid.matrix.y, model.predict(valid.matrix.X), valid.matrix.weight
        )
    if context is not None:
        if valid is None:
            model.context = fit.table(train)
        else:
            levels = None
            if context.level_column is not None:
                levels = schema.encode_column(rows.X, context.level_column)
            assert fit.codes is not None
            model.context = context.with_table(
                fit.codes,
                fit.uniques,
                _targets(rows.y, params.n_classes),
                rows.weight,
                levels,
            )
    return PretrainResult(model=model, n_rounds=trained.n_rounds, holdout_scores=scores)


# ----------------------------------------------------------------------------------------------
# adaptation
# ----------------------------------------------------------------------------------------------


@dataclass
class AdaptResult:
    """An adapted model and why its strategy was chosen."""

    model: FittedModel
    strategy: str
    reason: str
    holdout_scores: dict[str, float]
    n_rounds: int
    n_new_rounds: int
    #: The model's booster in the backend's format (None: not written yet).
    model_bytes: bytes | None = None
    #: With ``remember``: the base's leaf indices of the rows (None when not computed).
    memory: LeafMemory | None = None


@dataclass
class AdaptSettings:
    """Adaptation settings (see ``TabTuneRegressor``; defaults: :mod:`tabtune.params`)."""

    strategy: str = default("strategy")
    validation_fraction: float = default("validation_fraction")
    min_rows_to_adapt: int = default("min_rows_to_adapt")
    n_estimators: int = default("n_estimators")
    adapt_n_estimators: int = default("adapt_n_estimators")
    #: Resolved: the table's None means ``learning_rate``.
    adapt_learning_rate: float = default("learning_rate")
    early_stopping_rounds: int | None = default("early_stopping_rounds")
    refit_decay_rate: float = default("refit_decay_rate")
    random_state: int | None = default("random_state")
    selection_folds: int = default("selection_folds")


def fold_splits(rows: Rows, validation_fraction: float, n_folds: int) -> list[tuple[int, int]]:
    """Rolling-origin folds over ``rows`` in time order (:func:`tabtune.evaluation.fold_splits`)."""
    return evaluation.fold_splits(len(rows), validation_fraction, n_folds, rows.sorted_times())


def _padded(params: BoosterParams, layout: Layout) -> BoosterParams:
    """Monotone constraints (given per schema column) padded with 0 for context features."""
    constraints = params.monotone_constraints
    if constraints is None or len(constraints) == len(layout.names):
        return params
    return params.replace(
        monotone_constraints=tuple(constraints) + (0,) * (len(layout.names) - len(constraints))
    )


def _has_two_classes(y: np.ndarray) -> bool:
    return bool(len(y)) and bool(np.any(y != y[0]))


def choose_strategy(scores: dict[str, float]) -> str:
    """The strategy with the lowest holdout score; ties go to the simpler (earlier) one.

    ``global`` must be among the scores, so the choice is never worse than ``global``.
    """
    if "global" not in scores:
        raise ValueError("choose_strategy needs the score of 'global'")
    rank = {s: i for i, s in enumerate(STRATEGIES)}
    finite = {s: v for s, v in scores.items() if np.isfinite(v)} or {"global": scores["global"]}
    return min(finite, key=lambda s: (finite[s], rank[s]))


def run_strategy(
    strategy: str,
    base: FittedModel,
    params: BoosterParams,
    settings: AdaptSettings,
    train: Matrix,
    *,
    valid: Matrix | None = None,
    rounds: int | None = None,
    session: Session | None = None,
    scoring_only: bool = False,
) -> tuple[Any, int, int]:
    """Fit one strategy on encoded rows.

    Parameters
    ----------
    strategy : str
        One of :data:`STRATEGIES`.
    base : FittedModel
        The base model (its booster is read, never modified).
    params : BoosterParams
        Parameters of the adapting estimator (``continue`` uses its ``adapt_learning_rate``).
    settings : AdaptSettings
    train : Matrix
        Encoded rows the strategy learns from.
    valid : Matrix, optional
        Holdout rows for early stopping (when ``settings.early_stopping_rounds`` is set).
    rounds : int, optional
        New rounds to grow (default: ``adapt_n_estimators``, ``n_estimators`` for scratch).
    session : Session, optional
        ``base.session()`` shared by several calls on the same rows (same ``Matrix``
        objects), so that they share their common work; the result is the same without.
    scoring_only : bool, default False
        The booster is only used to predict (a holdout): it may keep rounds that early
        stopping grew past the best one, predicting with the best ones (see
        :meth:`Session.train <tabtune.boosting.base.Session.train>`).

    Returns
    -------
    booster, n_rounds, n_new_rounds
    """
    backend = base.backend
    if session is None:
        session = base.session()
    es = settings.early_stopping_rounds if valid is not None else None
    base_rounds = backend.num_rounds(base.booster)
    if strategy == "global":
        return base.booster, base_rounds, 0
    if strategy == "scratch":
        if params.n_classes >= 2 and not _has_two_classes(train.y):
            raise TabTuneInputError(
                "strategy='scratch' needs at least two classes among the brand's rows"
            )
        n = settings.n_estimators if rounds is None else rounds
        trained = session.train(
            params,
            train,
            num_rounds=n,
            valid=valid,
            early_stopping_rounds=es,
            scoring_only=scoring_only,
        )
        return trained.booster, trained.n_rounds, trained.n_new_rounds
    booster = base.booster
    if strategy in ("refit", "refit+continue"):
        refit_params = base.params.replace(
            device=params.device, n_jobs=params.n_jobs, verbose=params.verbose
        )
        booster = session.refit(refit_params, train, settings.refit_decay_rate)
        if strategy == "refit":
            return booster, base_rounds, 0
    n = settings.adapt_n_estimators if rounds is None else rounds
    if n == 0:
        return booster, base_rounds, 0
    trained = session.train(
        params.replace(learning_rate=settings.adapt_learning_rate),
        train,
        num_rounds=n,
        valid=valid,
        early_stopping_rounds=es,
        init_model=booster,
        scoring_only=scoring_only,
    )
    return trained.booster, trained.n_rounds, trained.n_new_rounds


def adapt(
    base: FittedModel,
    params: BoosterParams,
    rows: Rows,
    settings: AdaptSettings,
    *,
    memory: LeafMemory | None = None,
    remember: bool = False,
) -> AdaptResult:
    """Adapt a base model to a brand's rows.

    The brand's context is computed from its rows (the rows a strategy learns from get the
    brand's table entry, as at serving time) and stored on top of the base's table. With
    ``strategy="auto"`` every strategy is fitted on the older rows and scored on the newer
    ones of ``selection_folds`` rolling folds; the best (ties: the simpler) is fitted again on
    ALL rows with the number of new rounds early stopping found on the newest fold. An explicit strategy with early stopping is fitted the same way
    (holdout scores for it and ``global`` reported); without early stopping it is fitted on
    all rows at once. Fewer than ``min_rows_to_adapt`` rows give ``global``.

    ``memory`` (the base's leaf indices of an earlier fit on this brand's rows, see
    :class:`~tabtune.boosting.base.LeafMemory`) lets the fit predict the base only for rows
    that are new or whose features changed; with ``remember`` the result carries the leaf
    indices of all rows, for the next fit. Neither changes the model.

    Returns
    -------
    AdaptResult
    """
    n_classes = params.n_classes
    params = _padded(params, base.layout)
    # One session per set of fits below (each fold's candidates, the final fit): fits share
    # the base's predictions on their rows, the serialised base and the refit that "refit" and
    # "refit+continue" both start from.
    options = SessionOptions(n_threads=params.n_jobs, memory=memory, remember=remember)
    if settings.strategy in _REFITS and params.monotone_constraints is not None:
        raise TabTuneInputError(
            f"strategy={settings.strategy!r} cannot keep monotone_constraints (refitted leaf "
            "values are not constrained); use 'continue', 'scratch' or 'auto'"
        )
    fit = _Fit(base, rows, n_classes, np.random.default_rng(settings.random_state))
    n = len(rows)
    strategy = settings.strategy
    scores: dict[str, float] = {}
    new_rounds: dict[str, int | None] = {s: None for s in STRATEGIES}
    reason: str
    if strategy != "global" and n < settings.min_rows_to_adapt:
        strategy = "global"
        reason = (
            f"{n} rows < min_rows_to_adapt={settings.min_rows_to_adapt}: served by the global "
            "model, conditioned on the brand's context and level"
        )
    else:
        evaluate = strategy == "auto" or settings.early_stopping_rounds is not None
        n_folds = settings.selection_folds if strategy == "auto" else 1
        folds = fold_splits(rows, settings.validation_fraction, n_folds) if evaluate else []
        if not folds:
            if strategy == "auto":
                strategy = "global"
                reason = f"{n} rows are too few for a holdout: served by the global model"
            else:
                reason = f"strategy={strategy!r} requested"
        else:
            candidates = list(STRATEGIES) if strategy == "auto" else ["global", strategy]
            if params.monotone_constraints is not None:
                # Refitted leaves are re-estimated without the constraints: they could break
                # monotonicity, so refit strategies are not candidates then.
                candidates = [s for s in candidates if s not in _REFITS]
            candidates = list(dict.fromkeys(candidates))
            scores, new_rounds = _evaluate(base, params, settings, fit, folds, candidates, options)
            metric = loss_name(params.objective)
            where = (
                f"the newest {n - folds[0][0]} rows"
                if len(folds) == 1
                else f"{len(folds)} rolling-origin folds ({n - folds[-1][0]} rows scored)"
            )
            if strategy == "auto":
                strategy = choose_strategy(scores)
                if strategy == "global":
                    reason = (
                        f"no strategy beat the global model (weighted {metric} "
                        f"{scores['global']:.6g}) on {where}"
                    )
                else:
                    reason = (
                        f"lowest weighted {metric} on {where}: "
                        f"{scores[strategy]:.6g} (global {scores['global']:.6g})"
                    )
            else:
                reason = f"strategy={strategy!r} requested"
    # Final fit on ALL rows with the round count found on the holdout. It does not depend on
    # how the choice was made: the chosen strategy requested with the same round count (what a
    # refresh does between two choices) gives the very same model.
    everything = fit.part(None)
    context = base.context
    if context is not None:
        context = context.overlay(fit.table(everything))
        _fill_training_context(fit, everything, context)
    session = base.session(replace(options, refits_expected=strategy in _REFITS))
    booster, n_rounds, n_new = run_strategy(
        strategy,
        base,
        params,
        settings,
        everything.matrix,
        rounds=new_rounds.get(strategy),
        session=session,
    )
    if strategy == "global" and context is not None:
        offsets = fit.offsets(everything, np.asarray(session.predict(booster, everything.matrix)))
        assert offsets is not None
        for group, offset in zip(fit.uniques, offsets, strict=True):
            context = context.with_offset(json_scalar(group, context.group_column), offset)
    grown_with = params if strategy == "scratch" else base.params
    model = FittedModel(base.backend, booster, base.schema, context, grown_with)
    # Written through the session: the trees shared with the base are not written again.
    model_bytes = None if booster is base.booster else session.to_bytes(booster)
    remembered = session.remembered(everything.matrix) if remember else None
    return AdaptResult(model, strategy, reason, scores, n_rounds, n_new, model_bytes, remembered)


def _fill_training_context(fit: _Fit, part: _Part, table: BrandContext) -> None:
    """Context features of the rows an adaptation learns from: the brand's table entry.

    Pretraining needs out-of-fold context (across brands a row's own target would leak into
    its brand mean). Within one brand, out-of-fold means vary only by the fold a row fell in:
    noise that new trees could split on, and that routes rows to other base leaves than
    serving will. Adaptation therefore learns from the very values the brand is served with.
    On the transfer benchmark this made adaptation deterministic (no random folds) and better
    than out-of-fold context under two seeds (which moved bucket means by up to 50% between
    them), measured on the transfer benchmark's data during development.
    """
    fit.fill_from_table(part, table)


def _with_offsets(
    objective: str, prediction: np.ndarray, part: _Part, offsets: np.ndarray | None
) -> np.ndarray:
    """``prediction`` on ``part``'s rows shifted by each row's group offset."""
    if offsets is None or part.codes is None:
        return prediction
    per_row = np.where(part.codes >= 0, offsets[np.maximum(part.codes, 0)], 0.0)
    return apply_offset(objective, prediction, per_row)


def _evaluate(
    base: FittedModel,
    params: BoosterParams,
    settings: AdaptSettings,
    fit: _Fit,
    folds: list[tuple[int, int]],
    candidates: list[str],
    options: SessionOptions,
) -> tuple[dict[str, float], dict[str, int | None]]:
    """Fit candidates on each fold's older rows and score them on its holdout.

    Scores are the weighted loss over every fold's holdout rows together; the new round
    counts returned are those early stopping found on the newest fold (the one with the most
    rows), for the final fit.

    With two folds or more, the boosted candidates (``continue``, ``refit+continue``,
    ``scratch``) are scored at round counts *cross-fitted* between folds: the newest fold's
    early-stopped count scores the older folds, and the second newest fold's count scores the
    newest. Early stopping on the very rows that score a candidate picks the count that fits
    them best; on a brand's small holdouts that bias favoured boosted candidates over
    ``global`` and ``refit`` (a 134-row brand chose ``scratch`` with 3 trees: 3.5x the error of
    ``global`` after the cut). A fold with an early-stopped fit of its own is scored by cutting
    that fit to the other fold's count (:meth:`Session.at_rounds
    <tabtune.boosting.base.Session.at_rounds>`; the model a fit of that count gives), other
    folds by a fit of that count. With one fold, counts and scores come from the same rows. A
    candidate that cannot be fitted on some fold is not scored.
    """
    classifier = params.n_classes >= 2
    refits = any(s in _REFITS for s in candidates)
    skipped: set[str] = set()
    prepared: list[tuple[_Part, _Part, Session]] = []
    for i, (n_train, n_end) in enumerate(folds):
        # A session per fold, refits expected when a candidate refits. The newest fold's also
        # takes the fit's ``remember`` (which paths it predicts the base by; same scores).
        fold_options = replace(
            options, refits_expected=refits, remember=options.remember and i == 0
        )
        fold_session = base.session(fold_options)
        train = fit.time_part(0, n_train)
        valid = fit.time_part(n_train, n_end)
        if base.context is not None:
            table = base.context.overlay(fit.table(train))
            _fill_training_context(fit, train, table)
            fit.fill_from_table(valid, table)
        if classifier and not _has_two_classes(train.matrix.y):
            skipped.add("scratch")  # a brand-only classifier needs two classes
        prepared.append((train, valid, fold_session))
    cross_fitted = len(folds) >= 2
    base_rounds = base.backend.num_rounds(base.booster)
    # Early-stopped fits: the round counts (newest two folds), and the boosters that score the
    # newest fold when there is no other fold to take a count from.
    early: list[dict[str, tuple[Any, int]]] = []
    for train, valid, fold_session in prepared[: 2 if cross_fitted else 1]:
        found: dict[str, tuple[Any, int]] = {}
        for strategy in candidates:
            if strategy in skipped or strategy not in _BOOSTED:
                continue
            booster, _, n_new = run_strategy(
                strategy,
                base,
                params,
                settings,
                train.matrix,
                valid=valid.matrix,
                session=fold_session,
                scoring_only=True,
            )
            found[strategy] = (booster, n_new)
        early.append(found)
    new_rounds: dict[str, int | None] = {s: None for s in STRATEGIES}
    new_rounds.update({s: n_new for s, (_, n_new) in early[0].items()})
    losses: dict[str, float] = {}
    weights: dict[str, float] = {}
    for i, (train, valid, fold_session) in enumerate(prepared):
        w = valid.matrix.weight
        total_w = float(len(valid.matrix.y) if w is None else np.sum(w))
        for strategy in candidates:
            if strategy in skipped:
                continue
            if strategy in _BOOSTED and not cross_fitted:
                booster = early[0][strategy][0]
            elif strategy in _BOOSTED:
                count = early[1 if i == 0 else 0][strategy][1]
                booster = None
                if i < len(early):
                    # This fold's early-stopped fit, cut to the count: what a fit of exactly
                    # that many rounds gives (boosting is deterministic), without refitting.
                    start = 0 if strategy == "scratch" else base_rounds
                    booster = fold_session.at_rounds(early[i][strategy][0], start + count)
                if booster is None:
                    booster, _, _ = run_strategy(
                        strategy,
                        base,
                        params,
                        settings,
                        train.matrix,
                        rounds=count,
                        session=fold_session,
                        scoring_only=True,
                    )
            else:
                booster, _, _ = run_strategy(
                    strategy, base, params, settings, train.matrix, session=fold_session
                )
            prediction = np.asarray(fold_session.predict(booster, valid.matrix))
            if strategy == "global":
                prediction = _with_offsets(
                    params.objective,
                    prediction,
                    valid,
                    fit.offsets(train, np.asarray(fold_session.predict(booster, train.matrix))),
                )
            score = holdout_score(params.objective, valid.matrix.y, prediction, w)
            losses[strategy] = losses.get(strategy, 0.0) + score * total_w
            weights[strategy] = weights.get(strategy, 0.0) + total_w
    scores = {s: losses[s] / weights[s] for s in losses}
    return scores, new_rounds
