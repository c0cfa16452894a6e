"""The per-brand choice: adaptation of a base model to a brand's rows, and ``auto``.

:func:`adapt` chooses a strategy (``auto``: every candidate fitted on the older rows and scored
on the newer ones of rolling-origin folds, :func:`evaluate_candidates`, the lowest loss kept by
:func:`choose_strategy`) and fits it again on all rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np

from tabtune import evaluation
from tabtune.boosting.base import BoosterParams, LeafMemory, Session, SessionOptions
from tabtune.boosting.encoding import json_scalar
from tabtune.errors import TabTuneInputError
from tabtune.evaluation import holdout_score, loss_name
from tabtune.params import STRATEGIES
from tabtune.transfer.context import (
    BrandContext,
    apply_offset,
    objective_link,
    zero_target,
    zero_target_error,
)
from tabtune.transfer.model import EncodedPart, FitEncoding, FittedModel, Rows, padded_params
from tabtune.transfer.strategies import (
    BOOSTED,
    OFFSETS,
    REFITS,
    AdaptSettings,
    has_two_classes,
    run_strategy,
)

__all__ = [
    "AdaptResult",
    "adapt",
    "choice_margin",
    "choose_strategy",
    "evaluate_candidates",
    "fold_splits",
]


#: Strategies fitted on the brand's rows (refitted leaves or new trees).
_FITTED = frozenset(REFITS) | frozenset(BOOSTED)
#: Why no fold scores a strategy when the rows before every holdout have a zero target.
_ZERO_BEFORE_HOLDOUT = (
    "the target is zero on every row before the newest holdout, so no fold can score a "
    "strategy that refits or grows trees (a log-link objective cannot be fitted on them)"
)


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


def fold_splits(rows: Rows, validation_fraction: float, n_folds: int) -> list[tuple[int, int]]:
    """Rolling-origin folds over ``rows`` in time order (:func:`tabtune.evaluation.fold_splits`)."""
    return evaluation.fold_splits(len(rows), validation_fraction, n_folds, rows.sorted_times())


def choose_strategy(
    scores: dict[str, float], *, n_rows: int | None = None, margin: float = 0.0
) -> str:
    """The strategy with the lowest holdout score; ties go to the simpler (earlier) one.

    ``global`` must be among the scores, so the choice is never worse than ``global``. With
    ``margin`` > 0 and ``n_rows``, another strategy replaces ``global`` only when its score is
    lower than ``global``'s by the relative margin ``margin / sqrt(n_rows)``: a small brand's
    few holdout rows cannot tell a small gain from noise (see ``selection_margin``).
    """
    if "global" not in scores:
        raise ValueError("choose_strategy needs the score of 'global'")
    rank = {s: i for i, s in enumerate(STRATEGIES)}
    finite = {s: v for s, v in scores.items() if np.isfinite(v)} or {"global": scores["global"]}
    best = min(finite, key=lambda s: (finite[s], rank[s]))
    if best == "global" or margin <= 0 or not n_rows or "global" not in finite:
        return best
    bar = finite["global"] * (1.0 - margin / np.sqrt(n_rows))
    return best if finite[best] < bar else "global"


def choice_margin(settings: AdaptSettings, n_rows: int) -> float:
    """The selection margin that applies to a brand of ``n_rows`` rows (0: none)."""
    return settings.selection_margin if n_rows < settings.selection_margin_rows else 0.0


@dataclass
class _Choice:
    """A strategy chosen for the final fit, why, and what the holdout folds found."""

    strategy: str
    reason: str
    scores: dict[str, float]
    #: New rounds early stopping found on the newest fold, per strategy (None: not boosted).
    new_rounds: dict[str, int | None]


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
    all rows at once. Fewer than ``min_rows_to_adapt`` rows give ``global``. Under a log-link
    objective, rows whose target is zero everywhere give ``global`` with ``auto`` and are
    refused (:class:`~tabtune.errors.ZeroTargetError`) for a strategy that refits or grows
    trees; folds whose training rows have a zero target are skipped.

    ``memory`` (the base's leaf indices of an earlier fit on this brand's rows, see
    :class:`~tabtune.boosting.base.LeafMemory`) lets the fit predict the base only for rows
    that are new or whose features changed; with ``remember`` the result carries the leaf
    indices of all rows, for the next fit. Neither changes the model.

    Returns
    -------
    AdaptResult
    """
    n_classes = params.n_classes
    params = padded_params(params, base.layout)
    # One session per set of fits below (each fold's candidates, the final fit): fits share
    # the base's predictions on their rows, the serialised base and the refit that "refit" and
    # "refit+continue" both start from.
    options = SessionOptions(n_threads=params.n_jobs, memory=memory, remember=remember)
    if settings.strategy in REFITS and params.monotone_constraints is not None:
        raise TabTuneInputError(
            f"strategy={settings.strategy!r} cannot keep monotone_constraints (refitted leaf "
            "values are not constrained); use 'continue', 'scratch' or 'auto'"
        )
    fit = FitEncoding(base, rows, n_classes, np.random.default_rng(settings.random_state))
    choice = _choose(base, params, settings, fit, options)
    return _final_fit(base, params, settings, fit, options, choice)


def _choose(
    base: FittedModel,
    params: BoosterParams,
    settings: AdaptSettings,
    fit: FitEncoding,
    options: SessionOptions,
) -> _Choice:
    """The strategy to fit on all rows: the requested one, ``global`` for too few rows or a
    target that is zero on every row, or (``auto``) the best on the holdout folds; with the
    holdout scores and round counts."""
    n = len(fit.rows)
    strategy = settings.strategy
    no_rounds: dict[str, int | None] = {s: None for s in STRATEGIES}
    if strategy != "global" and n < settings.min_rows_to_adapt:
        return _small_brand_choice(base, params, settings, fit, options)
    fitted = strategy == "auto" or strategy in _FITTED
    if fitted and zero_target(params.objective, fit.rows.y, fit.rows.weight):
        return _zero_target_choice(params.objective, strategy, n)
    evaluate = strategy == "auto" or settings.early_stopping_rounds is not None
    n_folds = settings.selection_folds if strategy == "auto" else 1
    folds = fold_splits(fit.rows, settings.validation_fraction, n_folds) if evaluate else []
    candidates = _candidates(base, params, strategy)
    folds, n_skipped = _fittable_folds(params.objective, fit.rows, folds, candidates)
    if not folds:
        if strategy == "auto":
            reason = f"{n} rows are too few for a holdout: served by the global model"
            if n_skipped:
                reason = f"{_ZERO_BEFORE_HOLDOUT}: served by the global model"
            return _Choice("global", reason, {}, no_rounds)
        reason = f"strategy={strategy!r} requested"
        if n_skipped:
            reason += f" (no holdout: {_ZERO_BEFORE_HOLDOUT})"
        return _Choice(strategy, reason, {}, no_rounds)
    scores, new_rounds = evaluate_candidates(
        base, params, settings, fit, folds, candidates, options
    )
    if strategy != "auto":
        return _Choice(strategy, f"strategy={strategy!r} requested", scores, new_rounds)
    margin = choice_margin(settings, n)
    chosen = choose_strategy(scores, n_rows=n, margin=margin)
    reason = _choice_reason(chosen, scores, loss_name(params.objective), folds, n)
    if n_skipped:
        reason += (
            f"; the {n_skipped} oldest fold(s) skipped for every candidate, the target being "
            "zero on all their training rows"
        )
    if margin > 0:
        reason += f"; under {settings.selection_margin_rows} rows a strategy must beat global by "
        reason += f"{margin / np.sqrt(n):.1%}"
    return _Choice(chosen, reason, scores, new_rounds)


def _candidates(base: FittedModel, params: BoosterParams, strategy: str) -> list[str]:
    """The strategies scored on the folds: all for ``auto`` (less those that do not apply),
    else ``global`` and the one requested."""
    candidates = list(STRATEGIES) if strategy == "auto" else ["global", strategy]
    if strategy == "auto" and not _offsets_apply(base, params):
        # No brand offsets (classifiers, no group column): segments would be global.
        candidates.remove("segments")
    if params.monotone_constraints is not None:
        # Refitted leaves are re-estimated without the constraints: they could break
        # monotonicity, so refit strategies are not candidates then.
        candidates = [s for s in candidates if s not in REFITS]
    return list(dict.fromkeys(candidates))


def _zero_target_choice(objective: str, strategy: str, n: int) -> _Choice:
    """A brand whose target is zero on every row (:func:`zero_target`): its own trees cannot
    be fitted, so ``auto`` serves it by the global model's trees, with no level offset (the
    log of a zero mean does not exist; :func:`level_offset` gives 0); a requested strategy
    that refits or grows trees is refused (``global`` and ``segments`` fit no trees and are
    never sent here)."""
    if strategy in _FITTED:
        raise zero_target_error(
            objective,
            f"strategy={strategy!r} cannot refit or grow trees on the brand's rows",
            "Use strategy='auto' or 'global' (the brand is then served by the base model's "
            "trees), or check how the target is recorded (a column missing from the data, or "
            "always 0).",
        )
    reason = (
        f"the target is zero on every one of the {n} rows: no strategy that refits or grows "
        "trees can be fitted (a log-link objective needs a positive target): served by the "
        "global model's trees with the brand's context, without a level offset (a zero mean "
        "has no log)"
    )
    return _Choice("global", reason, {}, {s: None for s in STRATEGIES})


def _fittable_folds(
    objective: str, rows: Rows, folds: list[tuple[int, int]], candidates: list[str]
) -> tuple[list[tuple[int, int]], int]:
    """The folds every candidate can be fitted on, and how many were skipped.

    A fold whose training rows have a zero target (:func:`zero_target`) cannot fit the
    candidates that refit or grow trees. It is skipped for every candidate rather than those
    candidates dropped: all candidates are then compared on the same holdout rows (a
    candidate scored on fewer folds would be compared on other rows), and the tree strategies
    still compete on the folds that can fit them. Training rows are a prefix of the time
    order, so the folds skipped are the oldest: the newest, whose round counts the final fit
    takes, stays whenever any does.
    """
    if not _FITTED.intersection(candidates):
        return folds, 0
    kept = []
    for n_train, n_end in folds:
        at = rows.positions(0, n_train)
        weight = None if rows.weight is None else rows.weight[at]
        if not zero_target(objective, rows.y[at], weight):
            kept.append((n_train, n_end))
    return kept, len(folds) - len(kept)


def _offsets_apply(base: FittedModel, params: BoosterParams) -> bool:
    """Whether brand offsets (and so ``segments``) apply: a group column and a link."""
    return base.context is not None and objective_link(params.objective) is not None


def _small_brand_choice(
    base: FittedModel,
    params: BoosterParams,
    settings: AdaptSettings,
    fit: FitEncoding,
    options: SessionOptions,
) -> _Choice:
    """A brand under ``min_rows_to_adapt``: the global model's trees serve it, no new trees.

    Always with the brand's context and level offset (``global``). With ``auto``, and where
    segment offsets apply (a group column and a link with offsets), ``segments`` (the same
    trees, plus offsets of the brand's categorical segments) is scored against ``global`` on
    the rolling folds and replaces it only by the small-brand margin (``selection_margin``):
    offsets are not new trees, but a few rows must show them clearly.
    """
    n = len(fit.rows)
    no_rounds: dict[str, int | None] = {s: None for s in STRATEGIES}
    reason = (
        f"{n} rows < min_rows_to_adapt={settings.min_rows_to_adapt}: served by the global "
        "model, conditioned on the brand's context and level"
    )
    if settings.strategy != "auto" or not _offsets_apply(base, params):
        return _Choice("global", reason, {}, no_rounds)
    folds = fold_splits(fit.rows, settings.validation_fraction, settings.selection_folds)
    if not folds:
        return _Choice("global", reason, {}, no_rounds)
    scores, _ = evaluate_candidates(
        base, params, settings, fit, folds, ["global", "segments"], options
    )
    margin = choice_margin(settings, n)
    chosen = choose_strategy(scores, n_rows=n, margin=margin)
    loss = loss_name(params.objective)
    if chosen == "segments":
        reason += (
            f" and segment offsets (weighted {loss} {scores['segments']:.6g} against "
            f"{scores['global']:.6g} on {len(folds)} rolling-origin folds, beyond the margin "
            f"{margin / np.sqrt(n):.1%})"
        )
    return _Choice(chosen, reason, scores, no_rounds)


def _choice_reason(
    strategy: str, scores: dict[str, float], metric: str, folds: list[tuple[int, int]], n: int
) -> str:
    """Why ``auto`` chose ``strategy``: its loss and ``global``'s on the scored rows."""
    where = (
        f"the newest {n - folds[0][0]} rows"
        if len(folds) == 1
        else f"{len(folds)} rolling-origin folds ({n - folds[-1][0]} rows scored)"
    )
    if strategy == "global":
        return (
            f"no strategy beat the global model (weighted {metric} "
            f"{scores['global']:.6g}) on {where}"
        )
    return (
        f"lowest weighted {metric} on {where}: "
        f"{scores[strategy]:.6g} (global {scores['global']:.6g})"
    )


def _final_fit(
    base: FittedModel,
    params: BoosterParams,
    settings: AdaptSettings,
    fit: FitEncoding,
    options: SessionOptions,
    choice: _Choice,
) -> AdaptResult:
    """The chosen strategy fitted on ALL rows with the round count found on the holdout.

    It does not depend on how the choice was made: the chosen strategy requested with the
    same round count (what a refresh does between two choices) gives the very same model.
    """
    strategy = choice.strategy
    everything = fit.part(None)
    context = base.context
    if context is not None:
        context = context.overlay(fit.table(everything))
        _fill_training_context(fit, everything, context)
    session = base.session(replace(options, refits_expected=strategy in REFITS))
    booster, n_rounds, n_new = run_strategy(
        strategy,
        base,
        params,
        settings,
        everything.matrix,
        rounds=choice.new_rounds.get(strategy),
        session=session,
    )
    if strategy in OFFSETS and context is not None:
        context = _with_level_offsets(fit, everything, context, session, booster, strategy)
    grown_with = params if strategy == "scratch" else base.params
    model = FittedModel(base.backend, booster, base.schema, context, grown_with)
    # Written through the session: the trees shared with the base are not written again.
    model_bytes = None if booster is base.booster else session.to_bytes(booster)
    remembered = session.remembered(everything.matrix) if options.remember else None
    return AdaptResult(
        model,
        strategy,
        choice.reason,
        choice.scores,
        n_rounds,
        n_new,
        model_bytes,
        remembered,
    )


def _with_level_offsets(
    fit: FitEncoding,
    everything: EncodedPart,
    context: BrandContext,
    session: Session,
    booster: Any,
    strategy: str,
) -> BrandContext:
    """``context`` with the level offset of each of the fit's brands, learnt from all rows,
    and (strategy ``segments``) their segment offsets, learnt from all rows' predictions
    with the level offsets."""
    prediction = np.asarray(session.predict(booster, everything.matrix))
    offsets = fit.offsets(everything, prediction)
    assert offsets is not None
    for group, offset in zip(fit.uniques, offsets, strict=True):
        context = context.with_offset(json_scalar(group, context.group_column), offset)
    if strategy == "segments":
        objective = fit.model.params.objective
        shifted = _with_offsets(objective, prediction, everything, offsets)
        segments = fit.segments(everything, shifted) or [None] * len(fit.uniques)
        for group, found in zip(fit.uniques, segments, strict=True):
            context = context.with_segments(json_scalar(group, context.group_column), found)
    return context


def _fill_training_context(fit: FitEncoding, part: EncodedPart, table: BrandContext) -> None:
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
    objective: str, prediction: np.ndarray, part: EncodedPart, offsets: np.ndarray | None
) -> np.ndarray:
    """``prediction`` on ``part``'s rows shifted by each row's group offset."""
    if offsets is None or part.codes is None:
        return prediction
    per_row = np.where(part.codes >= 0, offsets[np.maximum(part.codes, 0)], 0.0)
    return apply_offset(objective, prediction, per_row)


class _Fold(NamedTuple):
    """One holdout fold: the encoded training and holdout rows, and their session."""

    train: EncodedPart
    valid: EncodedPart
    session: Session


def evaluate_candidates(
    base: FittedModel,
    params: BoosterParams,
    settings: AdaptSettings,
    fit: FitEncoding,
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
    prepared, skipped = _prepare_folds(base, params, fit, folds, candidates, options)
    cross_fitted = len(folds) >= 2
    # Early-stopped fits: the round counts (newest two folds), and the boosters that score the
    # newest fold when there is no other fold to take a count from.
    early = [
        _early_stopped(base, params, settings, fold, candidates, skipped)
        for fold in prepared[: 2 if cross_fitted else 1]
    ]
    new_rounds: dict[str, int | None] = {s: None for s in STRATEGIES}
    new_rounds.update({s: n_new for s, (_, n_new) in early[0].items()})
    losses: dict[str, float] = {}
    weights: dict[str, float] = {}
    for i, fold in enumerate(prepared):
        w = fold.valid.matrix.weight
        total_w = float(len(fold.valid.matrix) if w is None else np.sum(w))
        for strategy in candidates:
            if strategy in skipped:
                continue
            booster = _fold_booster(base, params, settings, strategy, fold, i, early, cross_fitted)
            score = _holdout_loss(params.objective, fit, fold, strategy, booster)
            losses[strategy] = losses.get(strategy, 0.0) + score * total_w
            weights[strategy] = weights.get(strategy, 0.0) + total_w
    scores = {s: losses[s] / weights[s] for s in losses}
    return scores, new_rounds


def _prepare_folds(
    base: FittedModel,
    params: BoosterParams,
    fit: FitEncoding,
    folds: list[tuple[int, int]],
    candidates: list[str],
    options: SessionOptions,
) -> tuple[list[_Fold], set[str]]:
    """Each fold's encoded rows and session, and the candidates no fold can be fitted by."""
    classifier = params.n_classes >= 2
    refits = any(s in REFITS for s in candidates)
    skipped: set[str] = set()
    prepared: list[_Fold] = []
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
        assert train.matrix.y is not None  # a fit's rows always have a target
        if classifier and not has_two_classes(train.matrix.y):
            skipped.add("scratch")  # a brand-only classifier needs two classes
        prepared.append(_Fold(train, valid, fold_session))
    return prepared, skipped


def _early_stopped(
    base: FittedModel,
    params: BoosterParams,
    settings: AdaptSettings,
    fold: _Fold,
    candidates: list[str],
    skipped: set[str],
) -> dict[str, tuple[Any, int]]:
    """The boosted candidates fitted with early stopping on ``fold``: booster, new rounds."""
    found: dict[str, tuple[Any, int]] = {}
    for strategy in candidates:
        if strategy in skipped or strategy not in BOOSTED:
            continue
        booster, _, n_new = run_strategy(
            strategy,
            base,
            params,
            settings,
            fold.train.matrix,
            valid=fold.valid.matrix,
            session=fold.session,
            scoring_only=True,
        )
        found[strategy] = (booster, n_new)
    return found


def _fold_booster(
    base: FittedModel,
    params: BoosterParams,
    settings: AdaptSettings,
    strategy: str,
    fold: _Fold,
    i: int,
    early: list[dict[str, tuple[Any, int]]],
    cross_fitted: bool,
) -> Any:
    """The booster that scores ``strategy`` on fold ``i`` (see :func:`evaluate_candidates`)."""
    if strategy not in BOOSTED:
        booster, _, _ = run_strategy(
            strategy, base, params, settings, fold.train.matrix, session=fold.session
        )
        return booster
    if not cross_fitted:
        return early[0][strategy][0]
    count = early[1 if i == 0 else 0][strategy][1]
    booster = None
    if i < len(early):
        # This fold's early-stopped fit, cut to the count: what a fit of exactly that many
        # rounds gives (boosting is deterministic), without refitting.
        start = 0 if strategy == "scratch" else base.backend.num_rounds(base.booster)
        booster = fold.session.at_rounds(early[i][strategy][0], start + count)
    if booster is None:
        booster, _, _ = run_strategy(
            strategy,
            base,
            params,
            settings,
            fold.train.matrix,
            rounds=count,
            session=fold.session,
            scoring_only=True,
        )
    return booster


def _holdout_loss(
    objective: str, fit: FitEncoding, fold: _Fold, strategy: str, booster: Any
) -> float:
    """The weighted loss of ``booster`` on the fold's holdout (``global`` with its level
    offsets, ``segments`` with its level and segment offsets, all learnt on the fold's
    training rows)."""
    session, train, valid = fold.session, fold.train, fold.valid
    prediction = np.asarray(session.predict(booster, valid.matrix))
    if strategy in OFFSETS:
        train_prediction = np.asarray(session.predict(booster, train.matrix))
        offsets = fit.offsets(train, train_prediction)
        prediction = _with_offsets(objective, prediction, valid, offsets)
        if strategy == "segments":
            shifted = _with_offsets(objective, train_prediction, train, offsets)
            segments = fit.segments(train, shifted)
            per_row = fit.segment_offsets(valid, segments)
            if per_row is not None:
                prediction = apply_offset(objective, prediction, per_row)
    assert valid.matrix.y is not None  # a fit's rows always have a target
    return holdout_score(objective, valid.matrix.y, prediction, valid.matrix.weight)
