"""The adaptation strategies: how one strategy is fitted from a base model on encoded rows.

``global`` the base model as is; ``segments`` the base model as is, with segment offsets
(:mod:`tabtune.transfer.segments`); ``refit`` the base's trees with leaf values re-estimated on
the brand's rows; ``continue`` new trees boosted from the base; ``refit+continue`` both;
``scratch`` a model of the brand's rows alone (see :mod:`tabtune.transfer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tabtune.boosting.base import BoosterParams, Matrix, Session
from tabtune.errors import TabTuneInputError
from tabtune.params import STRATEGIES, default
from tabtune.transfer.model import FittedModel

__all__ = [
    "BOOSTED",
    "OFFSETS",
    "REFITS",
    "STRATEGIES",
    "AdaptSettings",
    "has_two_classes",
    "run_strategy",
]

#: Strategies that serve the base's trees as they are, with offsets learnt from the brand's
#: rows: ``global`` its level offset, ``segments`` that and its segment offsets.
OFFSETS = ("global", "segments")
#: Strategies that start from a refit of the base's leaf values.
REFITS = ("refit", "refit+continue")
#: Strategies that grow new trees (their round count comes from early stopping).
BOOSTED = ("continue", "refit+continue", "scratch")


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
    selection_margin: float = default("selection_margin")
    selection_margin_rows: int = default("selection_margin_rows")


def has_two_classes(y: np.ndarray) -> bool:
    """Whether ``y`` holds at least two distinct values."""
    return bool(len(y)) and bool(np.any(y != y[0]))


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
    """
    if session is None:
        session = base.session()
    es = settings.early_stopping_rounds if valid is not None else None
    if strategy in OFFSETS:
        return base.booster, base.backend.num_rounds(base.booster), 0
    if strategy == "scratch":
        return _fit_scratch(params, settings, train, valid, rounds, session, es, scoring_only)
    return _fit_from_base(
        strategy, base, params, settings, train, valid, rounds, session, es, scoring_only
    )


def _fit_scratch(
    params: BoosterParams,
    settings: AdaptSettings,
    train: Matrix,
    valid: Matrix | None,
    rounds: int | None,
    session: Session,
    early_stopping_rounds: int | None,
    scoring_only: bool,
) -> tuple[Any, int, int]:
    """Strategy ``scratch``: a model of the brand's rows alone (see :func:`run_strategy`)."""
    assert train.y is not None  # a fit's rows always have a target
    if params.n_classes >= 2 and not has_two_classes(train.y):
        raise TabTuneInputError(
            "strategy='scratch' needs at least two classes among the brand's rows"
        )
    n = settings.n_estimators if rounds is None else rounds
    trained = session.train(
        params,
        train,
        num_rounds=n,
        valid=valid,
        early_stopping_rounds=early_stopping_rounds,
        scoring_only=scoring_only,
    )
    return trained.booster, trained.n_rounds, trained.n_new_rounds


def _fit_from_base(
    strategy: str,
    base: FittedModel,
    params: BoosterParams,
    settings: AdaptSettings,
    train: Matrix,
    valid: Matrix | None,
    rounds: int | None,
    session: Session,
    early_stopping_rounds: int | None,
    scoring_only: bool,
) -> tuple[Any, int, int]:
    """Strategies ``refit``, ``continue`` and ``refit+continue`` (see :func:`run_strategy`)."""
    assert train.y is not None  # a fit's rows always have a target
    if params.n_classes == 2 and base.backend.name == "lightgbm" and not has_two_classes(train.y):
        train = _with_the_other_class(train)
    base_rounds = base.backend.num_rounds(base.booster)
    booster = base.booster
    if strategy in REFITS:
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
        early_stopping_rounds=early_stopping_rounds,
        init_model=booster,
        scoring_only=scoring_only,
    )
    return trained.booster, trained.n_rounds, trained.n_new_rounds


def _with_the_other_class(train: Matrix) -> Matrix:
    """``train`` with one row of weight 0 in the class its labels lack.

    LightGBM's binary objective trains nothing on labels of one class: ``continue`` added no
    tree and ``refit`` halved every leaf (a brand without a conversion was served 0.55 where
    XGBoost, which fits it, gave 0.03; red-team of the Python API). A row of weight 0 adds no
    gradient; LightGBM only counts its label.
    """
    assert train.y is not None
    y = np.asarray(train.y, dtype=float)
    weight = np.ones(len(y)) if train.weight is None else np.asarray(train.weight, dtype=float)
    return Matrix(
        np.vstack([train.X, train.X[:1]]), np.append(y, 1.0 - y[0]), np.append(weight, 0.0)
    )
