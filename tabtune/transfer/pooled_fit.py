"""Training the pooled model on rows encoded from batches, one training set at a time.

:func:`~tabtune.transfer.pooled_batches.pretrain_batched` encodes the pooled rows
(:func:`~tabtune.transfer.pooled_batches.encode_pooled`); :func:`train_pooled` fits them as
:func:`~tabtune.transfer.pretraining.pretrain` does (early stopping on the newest rows, then
regrown on all rows), building each training set before its float rows are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from tabtune.boosting.base import BoosterParams
from tabtune.evaluation import holdout_score
from tabtune.memory import release_unused_memory
from tabtune.transfer.model import FittedModel
from tabtune.transfer.pretraining import PretrainResult

if TYPE_CHECKING:
    from tabtune.transfer.pooled_batches import PooledPlan, PooledRows, RowBlock

__all__ = ["train_pooled"]


def train_pooled(
    model: FittedModel,
    params: BoosterParams,
    pooled: PooledRows,
    plan: PooledPlan,
    n_estimators: int,
    early_stopping_rounds: int | None,
    regrown_rows: Callable[[], PooledRows] | None,
) -> PretrainResult:
    """Early stopping on the newest rows, then (``regrown_rows``: the rows encoded for it)
    regrown on all rows (as ``pretrain``).

    Memory: each training set is built (:meth:`Backend.bin`) and its float rows dropped
    before the next is built or any trains (``pooled`` holds the training and the holdout
    rows as separate blocks); only the holdout rows' features stay, for the holdout score.
    The rows of the regrown fit are encoded again once the early-stopped fit is gone (the
    batches' third pass) rather than kept beside it. With LightGBM the peak is then the
    float matrix and one binned copy of it (about half its size, labels and weights
    included). With an early-stopping sample, the early-stopped fit learns from (and is
    scored on) the sampled brands' rows only, a copy, as in the in-memory ``pretrain``."""
    backend, layout = model.backend, model.layout
    blocks = pooled.take()
    scores: dict[str, float] = {}
    if len(blocks) == 1:
        (block,) = blocks
        rows = backend.bin(params, layout, block.matrix(rows=slice(0, len(block.y))))
        del blocks, block
        release_unused_memory()
        trained = backend.train(
            params,
            layout,
            rows,
            num_rounds=n_estimators,
            early_stopping_rounds=early_stopping_rounds,
        )
        del rows
        model.booster, n_rounds = trained.booster, trained.n_rounds
    else:
        train_block, valid_block = blocks
        del blocks
        _drop_unusable_sample(train_block, valid_block)
        train = backend.bin(params, layout, train_block.sampled())
        del train_block  # the training rows' floats, before the holdout set is built
        release_unused_memory()
        holdout = valid_block.sampled()
        del valid_block
        valid = backend.bin(params, layout, holdout, reference=train)
        # The holdout rows' floats stay, for the holdout score.
        valid_X = holdout.X
        valid_y = np.asarray(holdout.y, dtype=np.float64)
        valid_weight = None if holdout.weight is None else holdout.weight.astype(np.float64)
        del holdout
        trained = backend.train(
            params,
            layout,
            train,
            num_rounds=n_estimators,
            valid=valid,
            early_stopping_rounds=early_stopping_rounds,
        )
        del train, valid
        model.booster, n_rounds = trained.booster, trained.n_rounds
        del trained
        scores["global"] = holdout_score(
            params.objective, valid_y, model.predict(valid_X), valid_weight
        )
        del valid_X, valid_y, valid_weight
        if regrown_rows is not None:
            model.booster = None  # free the early-stopped model and its binned rows first
            release_unused_memory()
            _regrow(model, params, pooled, regrown_rows(), n_rounds)
    if pooled.table is not None:
        model.context = pooled.table
    return PretrainResult(model=model, n_rounds=n_rounds, holdout_scores=scores)


def _regrow(
    model: FittedModel,
    params: BoosterParams,
    pooled: PooledRows,
    regrown: PooledRows,
    n_rounds: int,
) -> None:
    """``model`` grown again on every row (``regrown``, the third pass) with ``n_rounds``; its
    context table replaces ``pooled``'s (the same table; a sample-only pass has none)."""
    backend, layout = model.backend, model.layout
    if regrown.table is not None:
        pooled.table = regrown.table
    (block,) = regrown.take()
    del regrown
    release_unused_memory()  # what encoding the batches left free
    rows = backend.bin(params, layout, block.matrix(rows=slice(0, len(block.y))))
    del block
    release_unused_memory()
    model.booster = backend.train(params, layout, rows, num_rounds=n_rounds).booster


def _drop_unusable_sample(train: RowBlock, valid: RowBlock) -> None:
    """Early stopping on every row when the sample has too few rows to learn from or no
    holdout (the in-memory rule)."""
    if train.sample is None or valid.sample is None:
        return
    if int(train.sample.sum()) < 2 or not valid.sample.any():
        train.sample = valid.sample = None
