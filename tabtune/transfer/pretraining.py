"""Pretraining: the global model on pooled rows, with the brand context it learns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tabtune.boosting.base import Backend, BoosterParams, Matrix
from tabtune.boosting.encoding import FeatureSchema
from tabtune.evaluation import holdout_score
from tabtune.transfer.context import (
    CONTEXT_DROPOUT,
    CONTEXT_SHORT_HISTORY,
    CONTEXT_SMOOTHING,
    BrandContext,
    choose_level_column,
    context_targets,
    zero_target,
    zero_target_error,
)
from tabtune.transfer.model import EncodedPart, FitEncoding, FittedModel, Rows, padded_params

__all__ = [
    "PretrainResult",
    "check_pooled_target",
    "context_seed",
    "pretrain",
    "stopping_fraction",
    "stopping_sample",
]


def check_pooled_target(objective: str, y: np.ndarray, weight: np.ndarray | None = None) -> None:
    """Refuse pooled rows that ``objective`` cannot be fitted on (:func:`zero_target`).

    Called by every pretraining path (in memory, from batches, on Dask) before it fits, with
    the rows' targets or, from batches, their summed targets.

    Raises
    ------
    ZeroTargetError
        With a log link (Tweedie, Poisson), when no row has a positive target.
    """
    if zero_target(objective, y, weight):
        raise zero_target_error(
            objective,
            "there is nothing to pretrain on",
            "Check how the target is recorded (a column missing from the data, or always 0), "
            "or choose an objective without a log link ('squared_error').",
        )


def context_seed(random_state: int | None) -> int:
    """The seed of the rows' random keys: ``random_state``, or fresh entropy for None."""
    if random_state is not None:
        return int(random_state)
    return int(np.random.SeedSequence().entropy) & 0x7FFFFFFFFFFFFFFF  # type: ignore[arg-type]


def stopping_fraction(n_train: int | None, max_rows: int | None, regrow: bool) -> float:
    """The share of brands the early-stopped fit learns from (1.0: every brand).

    Below 1 only when the model is grown again on every row (``regrow``) and the training
    rows before the holdout exceed ``max_rows`` (``early_stopping_max_rows``): the sample
    then holds about ``max_rows`` of them.
    """
    if not regrow or max_rows is None or n_train is None or n_train <= max_rows:
        return 1.0
    return max_rows / n_train


def stopping_sample(groups: Any, fraction: float, seed: int) -> np.ndarray | None:
    """Whether each row's brand is in the early-stopped fit's sample (None: every row is).

    A brand is in when a seeded hash of its id falls below ``fraction``: the same brands in
    every batch, partition and process, whatever the order of the rows, so the in-memory,
    batched and Dask fits stop early on the same rows.
    """
    if fraction >= 1.0:
        return None
    codes, uniques = pd.factorize(
        pd.Series(np.asarray(groups, dtype=object)), use_na_sentinel=False
    )
    key = str(int(seed)).encode()
    inside = np.array(
        [
            int.from_bytes(
                hashlib.blake2b(str(u).encode(), digest_size=8, key=key).digest(), "little"
            )
            < fraction * 2.0**64
            for u in uniques
        ],
        dtype=bool,
    )
    return inside[np.asarray(codes, dtype=np.int64)]


def _sampled(matrix: Matrix, inside: np.ndarray | None) -> Matrix:
    """The rows of ``matrix`` in the early-stopping sample (``inside``; None: all)."""
    if inside is None:
        return matrix
    return Matrix(
        matrix.X[inside],
        None if matrix.y is None else matrix.y[inside],
        None if matrix.weight is None else matrix.weight[inside],
    )


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
    regrow: bool = True,
    early_stopping_max_rows: int | None = None,
) -> PretrainResult:
    """Fit the global model on pooled rows.

    With early stopping the model is grown on the older rows and stopped on the newest
    ``validation_fraction``; its holdout score is reported as ``"global"``. With ``regrow``
    (the default) it is then grown again on ALL rows with the round count found, so that the
    newest days, the most relevant ones, count in the model every brand starts from: the same
    model as a fit without early stopping for that many rounds. Without ``regrow`` the model
    grown on the older rows is kept. Without early stopping it is grown on all rows for
    ``n_estimators`` rounds. With a ``group_column`` the brand context is learnt: out of fold
    (with :data:`CONTEXT_DROPOUT`) for training rows, from the training rows' table for
    holdout rows, and stored from all rows; a :data:`CONTEXT_SHORT_HISTORY` share of training
    rows sees its brand through a short random history. With the regrow and more training rows
    than ``early_stopping_max_rows``, the early-stopped fit learns from (and is scored on) a
    seeded sample of brands' rows (:func:`stopping_sample`), encoded as they are for all.
    """
    check_pooled_target(params.objective, rows.y, rows.weight)
    context = _context_spec(group_column, schema, rows, params.n_classes)
    model = FittedModel(backend, None, schema, context, params)
    params = model.params = padded_params(params, model.layout)
    # One seed for both encodings: the rows' random keys deal the context folds and dropout
    # (row by row, so batches of whole groups encode the same; see pooled_batches).
    seed = context_seed(random_state)
    fit = FitEncoding(model, rows, params.n_classes, np.random.default_rng(random_state), seed)
    n_train = None if early_stopping_rounds is None else rows.split(validation_fraction)
    if n_train is None:
        train, valid = fit.part(None), None
    else:
        train = fit.part(rows.positions(0, n_train))
        valid = fit.part(rows.positions(n_train, len(rows)))
    fit.fill_out_of_fold(train, CONTEXT_DROPOUT, CONTEXT_SHORT_HISTORY)
    if valid is not None and context is not None:
        fit.fill_from_table(valid, fit.table(train))
    train_matrix, valid_matrix = train.matrix, None if valid is None else valid.matrix
    if valid_matrix is not None and n_train is not None:
        fraction = stopping_fraction(n_train, early_stopping_max_rows, regrow)
        train_matrix, valid_matrix = _stopping_matrices(
            train_matrix, valid_matrix, rows, n_train, fraction, seed
        )
    trained = backend.train(
        params,
        model.layout,
        train_matrix,
        num_rounds=n_estimators,
        valid=valid_matrix,
        early_stopping_rounds=early_stopping_rounds,
    )
    model.booster = trained.booster
    scores: dict[str, float] = {}
    if valid_matrix is not None:
        assert valid_matrix.y is not None  # a fit's rows always have a target
        scores["global"] = holdout_score(
            params.objective, valid_matrix.y, model.predict(valid_matrix.X), valid_matrix.weight
        )
    if valid is not None and regrow:
        # A fresh encoding (folds dealt among all rows), so the result is exactly that of a
        # fit of n_rounds without early stopping.
        fit = FitEncoding(model, rows, params.n_classes, np.random.default_rng(random_state), seed)
        train, valid = fit.part(rows.positions(0, len(rows))), None  # in time order
        fit.fill_out_of_fold(train, CONTEXT_DROPOUT, CONTEXT_SHORT_HISTORY)
        model.booster = backend.train(
            params, model.layout, train.matrix, num_rounds=trained.n_rounds
        ).booster
    if context is not None:
        model.context = _stored_context(fit, context, train, holdout=valid is not None)
    return PretrainResult(model=model, n_rounds=trained.n_rounds, holdout_scores=scores)


def _stopping_matrices(
    train: Matrix, valid: Matrix, rows: Rows, n_train: int, fraction: float, seed: int
) -> tuple[Matrix, Matrix]:
    """The early-stopped fit's training and holdout rows: those of the sampled brands
    (:func:`stopping_sample`), or all when there is no sample, or it has fewer than two
    training rows or no holdout row."""
    if rows.groups is None:  # without brands, no sample
        return train, valid
    groups = (
        rows.groups if rows.order is None else np.asarray(rows.groups, dtype=object)[rows.order]
    )
    inside = stopping_sample(groups, fraction, seed)
    if inside is None or inside[:n_train].sum() < 2 or not inside[n_train:].any():
        return train, valid
    return _sampled(train, inside[:n_train]), _sampled(valid, inside[n_train:])


def _context_spec(
    group_column: str | None, schema: FeatureSchema, rows: Rows, n_classes: int
) -> BrandContext | None:
    """The brand-context specification learnt from pooled rows (no table yet); None without
    a group column."""
    if group_column is None:
        return None
    codes, uniques = pd.factorize(pd.Series(rows.groups))
    codes = np.asarray(codes, dtype=np.int64)
    targets = context_targets(rows.y, n_classes)
    prior = tuple(float(v) for v in np.average(targets, axis=0, weights=rows.weight))
    mean_weight = 1.0 if rows.weight is None else float(np.mean(rows.weight))
    level = choose_level_column(schema, rows.X, codes, len(uniques))
    return BrandContext(
        group_column=group_column,
        level_column=level,
        n_levels=0 if level is None else len(schema.vocabularies[level]),
        prior=prior,
        smoothing=CONTEXT_SMOOTHING * mean_weight,
    )


def _stored_context(
    fit: FitEncoding, context: BrandContext, train: EncodedPart, *, holdout: bool
) -> BrandContext:
    """The table the pretrained model stores: learnt from all rows (the training rows are
    all rows when there is no holdout)."""
    if not holdout:
        return fit.table(train)
    rows = fit.rows
    schema = fit.model.schema
    levels = None
    if context.level_column is not None:
        levels = schema.encode_column(rows.X, context.level_column)
    assert fit.codes is not None
    return context.with_table(
        fit.codes,
        fit.uniques,
        context_targets(rows.y, fit.n_classes),
        rows.weight,
        levels,
    )
