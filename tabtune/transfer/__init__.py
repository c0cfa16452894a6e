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
dealt within each brand by a seeded key per row, so that a brand's folds do not depend on the
other brands' rows and pretraining from batches of brands gives the same features; see
:mod:`tabtune.transfer.pooled_batches`). Adaptation learns from one brand's rows with the brand's table
entry (the values it is served with; see ``_fill_training_context``). Holdout rows and predictions use the table stored from the fit
rows, exactly as at serving time. During pretraining a random :data:`CONTEXT_DROPOUT`
share of rows gets unknown (NaN) context, so that the trees learn what to do for a brand
they have never seen: such a brand gets NaN context and a pooled prediction, without error.
A :data:`CONTEXT_SHORT_HISTORY` share of rows gets its context from a short random history
of its brand (at least :data:`CONTEXT_MIN_HISTORY` rows; ``__brand_log_rows`` says how
short), so that the trees learn how far the noisy means of a young brand can be trusted:
pretraining brands have long histories, the brands served with their context often not.

Strategies
----------
``global`` the base model as is, with the brand's context and a *level offset*: the brand's
weighted mean target against the base's predictions on its rows, on the link scale (log for
Tweedie/Poisson, identity for squared error), shrunk towards 0 by a prior worth
:data:`CONTEXT_SMOOTHING` of the brand's rows (:func:`level_offset`; none for classifiers). The trees learn what brand context
means from the pretraining brands only, so a new brand's level is often off by tens of percent;
the offset corrects that without growing a tree. ``segments`` is ``global`` plus nested
*segment offsets*: the brand's rows split by its categorical columns in schema order (say
``channel``, then ``channel | audience``, ...), each segment at each depth shifted on the link
scale by its observed / expected ratio against the prediction so far, shrunk by a
random-effects (DerSimonian-Laird) estimate of how much that depth's segments differ; a row
takes its deepest segment seen in training (:mod:`~tabtune.transfer.segments`; none for
classifiers, where it is not a candidate of ``auto``). ``refit`` the base's trees with leaf values
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

Modules
-------
:mod:`~tabtune.transfer.context`
    brand context (:class:`BrandContext`, the out-of-fold encoder, the level column) and
    level offsets.
:mod:`~tabtune.transfer.segments`
    segment offsets (:func:`~tabtune.transfer.segments.fit_segment_offsets`).
:mod:`~tabtune.transfer.model`
    the rows of a fit call (:class:`Rows`), the fitted model (:class:`FittedModel`) and the
    rows encoded part by part for it.
:mod:`~tabtune.transfer.pretraining`
    the global model (:func:`pretrain`).
:mod:`~tabtune.transfer.strategies`
    one strategy fitted from a base model (:func:`run_strategy`, :class:`AdaptSettings`).
:mod:`~tabtune.transfer.choice`
    the per-brand choice and final fit (:func:`adapt`, :func:`choose_strategy`).

The losses and time splits live in :mod:`tabtune.evaluation` (re-exported here).
"""

from __future__ import annotations

from tabtune.evaluation import holdout_score, holdout_split, loss_name, row_losses
from tabtune.params import STRATEGIES
from tabtune.transfer.choice import AdaptResult, adapt, choose_strategy, fold_splits
from tabtune.transfer.context import (
    CONTEXT_DROPOUT,
    CONTEXT_FOLDS,
    CONTEXT_MIN_HISTORY,
    CONTEXT_SHORT_HISTORY,
    CONTEXT_SMOOTHING,
    MAX_CONTEXT_LEVELS,
    BrandContext,
    apply_offset,
    choose_level_column,
    level_offset,
    short_histories,
)
from tabtune.transfer.model import FittedModel, Rows
from tabtune.transfer.pretraining import PretrainResult, pretrain
from tabtune.transfer.strategies import AdaptSettings, run_strategy

__all__ = [
    "CONTEXT_DROPOUT",
    "CONTEXT_FOLDS",
    "CONTEXT_MIN_HISTORY",
    "CONTEXT_SHORT_HISTORY",
    "CONTEXT_SMOOTHING",
    "MAX_CONTEXT_LEVELS",
    "STRATEGIES",
    "AdaptResult",
    "AdaptSettings",
    "BrandContext",
    "FittedModel",
    "PretrainResult",
    "Rows",
    "adapt",
    "apply_offset",
    "choose_level_column",
    "choose_strategy",
    "fold_splits",
    "holdout_score",
    "holdout_split",
    "level_offset",
    "loss_name",
    "pretrain",
    "row_losses",
    "run_strategy",
    "short_histories",
]
