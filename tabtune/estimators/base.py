"""The estimators' shared machinery: parameters, the steps of ``fit``, prediction, files.

:class:`TabTuneBase` validates parameters, resolves the base model, runs ``fit`` step by step
(inputs -> rows -> pretrain or adapt -> the kept model) over :mod:`tabtune.transfer`, and
saves and loads through :mod:`tabtune.estimators.persistence`. The target-specific parts are
hooks of :class:`~tabtune.estimators.classes.TabTuneRegressor` and
:class:`~tabtune.estimators.classes.TabTuneClassifier`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from tabtune.boosting.base import (
    Backend,
    BoosterParams,
    get_backend,
    resolve_device,
    sha256_hex,
)
from tabtune.boosting.encoding import FeatureSchema, Table, column_values
from tabtune.errors import TabTuneInputError
from tabtune.estimators.importance import gain_shares
from tabtune.estimators.inputs import (
    array_names,
    check_columns_exist,
    check_same_columns,
    check_weight,
    check_X,
    check_y,
    drop_zero_weights,
    time_order,
    warn_other_groups,
)
from tabtune.estimators.persistence import (
    estimator_manifest,
    model_from_manifest,
    read_estimator,
    saved_params,
    write_estimator,
)
from tabtune.leaf_cache import LeafCache
from tabtune.params import estimator_params
from tabtune.transfer import AdaptResult, AdaptSettings, FittedModel, Rows, adapt, pretrain
from tabtune.transfer.pooled_batches import pretrain_batched
from tabtune.transfer.pretraining import PretrainResult

__all__ = [
    "EARLY_STOPPING_WEIGHT_REASON",
    "PARAMETER_CONSTRAINTS",
    "TabTuneBase",
    "expected_failed_checks",
    "repeat_params",
]

logger = logging.getLogger("tabtune")

# ----------------------------------------------------------------------------------------------
# parameter constraints and defaults: rows of the parameter table (tabtune.params)
# ----------------------------------------------------------------------------------------------

_PARAMS = estimator_params()
#: Constructor defaults, from :data:`tabtune.params.PARAMETERS`.
_D: dict[str, Any] = {name: p.default for name, p in _PARAMS.items()}


#: The prefix of a loaded adapted model's ``base_model``: its base kept by checksum only.
ADAPTED_FROM = "sha256:"


def _is_base_model(value: Any) -> bool:
    return value is None or isinstance(value, str | os.PathLike | TabTuneBase)


#: Allowed values of every constructor parameter: ``name -> (check, description)``, from
#: :data:`tabtune.params.PARAMETERS` (``base_model`` also accepts a fitted estimator, a class
#: the table's layer cannot see).
PARAMETER_CONSTRAINTS: dict[str, tuple[Callable[[Any], bool], str]] = {
    name: (p.constraint.check, p.constraint.text) for name, p in _PARAMS.items()
}
PARAMETER_CONSTRAINTS["base_model"] = (_is_base_model, _PARAMS["base_model"].constraint.text)

#: Why ``check_sample_weight_equivalence_on_dense_data`` fails with early stopping on.
EARLY_STOPPING_WEIGHT_REASON = (
    "early stopping holds out the newest validation_fraction of the rows in time order, so "
    "repeating a row (or giving it weight 2) moves the holdout boundary and changes which rows "
    "train and when training stops: a time-ordered holdout is not invariant to repeated rows"
)


def expected_failed_checks(estimator: Any) -> dict[str, str]:
    """scikit-learn checks a tabtune estimator is expected to fail, with the reason.

    Pass it to ``sklearn.utils.estimator_checks.check_estimator(est,
    expected_failed_checks=expected_failed_checks(est))`` or as ``parametrize_with_checks(...,
    expected_failed_checks=expected_failed_checks)``: scikit-learn >= 1.6 (which tabtune
    requires) reads expected failures from that argument only; the ``_xfail_checks`` estimator
    tag of earlier versions is gone, and its ``Tags`` have no field for them.

    Parameters
    ----------
    estimator : TabTuneRegressor or TabTuneClassifier

    Returns
    -------
    dict of str to str
        Check name -> reason: ``check_sample_weight_equivalence_on_dense_data`` when early
        stopping is on (the default); empty otherwise.
    """
    if getattr(estimator, "early_stopping_rounds", None) is None:
        return {}
    return {"check_sample_weight_equivalence_on_dense_data": EARLY_STOPPING_WEIGHT_REASON}


class TabTuneBase(BaseEstimator):
    """Shared machinery of :class:`TabTuneRegressor` and :class:`TabTuneClassifier`."""

    _allowed_objectives: ClassVar[tuple[str, ...]] = ()

    # Fitted attributes, set by fit (or load); absent before.
    backend_: str
    device_: str
    group_column_: str | None
    time_column_: str | None
    strategy_: str
    strategy_reason_: str
    holdout_scores_: dict[str, float]
    best_iteration_: int
    n_new_trees_: int
    base_model_id_: str | None
    model_sha256_: str
    booster_: Any
    _model: FittedModel
    _model_bytes: bytes

    def __init__(
        self,
        *,
        backend: str | None = _D["backend"],
        device: str = _D["device"],
        base_model: Any = _D["base_model"],
        strategy: str = _D["strategy"],
        group_column: str | None = _D["group_column"],
        time_column: str | None = _D["time_column"],
        validation_fraction: float = _D["validation_fraction"],
        min_rows_to_adapt: int = _D["min_rows_to_adapt"],
        selection_folds: int = _D["selection_folds"],
        selection_margin: float = _D["selection_margin"],
        selection_margin_rows: int = _D["selection_margin_rows"],
        n_estimators: int = _D["n_estimators"],
        learning_rate: float = _D["learning_rate"],
        num_leaves: int = _D["num_leaves"],
        max_depth: int = _D["max_depth"],
        min_child_samples: int = _D["min_child_samples"],
        subsample: float = _D["subsample"],
        colsample_bytree: float = _D["colsample_bytree"],
        reg_alpha: float = _D["reg_alpha"],
        reg_lambda: float = _D["reg_lambda"],
        early_stopping_rounds: int | None = _D["early_stopping_rounds"],
        regrow_on_all_rows: bool = _D["regrow_on_all_rows"],
        early_stopping_max_rows: int | None = _D["early_stopping_max_rows"],
        adapt_n_estimators: int = _D["adapt_n_estimators"],
        adapt_learning_rate: float | None = _D["adapt_learning_rate"],
        refit_decay_rate: float = _D["refit_decay_rate"],
        objective: str | None = _D["objective"],
        monotone_constraints: dict[str, int] | None = _D["monotone_constraints"],
        random_state: int | None = _D["random_state"],
        n_jobs: int | None = _D["n_jobs"],
        verbose: int = _D["verbose"],
        backend_params: dict[str, Any] | None = _D["backend_params"],
        leaf_cache: str | os.PathLike[str] | None = _D["leaf_cache"],
    ) -> None:
        self.backend = backend
        self.device = device
        self.base_model = base_model
        self.strategy = strategy
        self.group_column = group_column
        self.time_column = time_column
        self.validation_fraction = validation_fraction
        self.min_rows_to_adapt = min_rows_to_adapt
        self.selection_folds = selection_folds
        self.selection_margin = selection_margin
        self.selection_margin_rows = selection_margin_rows
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_alpha = reg_alpha
        self.reg_lambda = reg_lambda
        self.early_stopping_rounds = early_stopping_rounds
        self.regrow_on_all_rows = regrow_on_all_rows
        self.early_stopping_max_rows = early_stopping_max_rows
        self.adapt_n_estimators = adapt_n_estimators
        self.adapt_learning_rate = adapt_learning_rate
        self.refit_decay_rate = refit_decay_rate
        self.objective = objective
        self.monotone_constraints = monotone_constraints
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.backend_params = backend_params
        self.leaf_cache = leaf_cache

    # -- scikit-learn plumbing ---------------------------------------------------------------
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_model")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters.

        ``base_model`` is a read-only input: its own parameters are never exposed as nested
        parameters, so ``set_params`` cannot change a base model.
        """
        return super().get_params(deep=False)

    def set_params(self, **params: Any) -> TabTuneBase:
        """Set constructor parameters; ``base_model__<name>`` is refused (a pretrained base
        model is shared: changing it would change every model adapted from it)."""
        nested = sorted(k for k in params if k.startswith("base_model__"))
        if nested:
            raise TabTuneInputError(
                f"{nested[0]!r}: a base model's parameters cannot be set through the model "
                "adapted from it (the base is shared, read-only); pretrain another base model "
                "and pass it as base_model"
            )
        return super().set_params(**params)

    def __sklearn_clone__(self) -> TabTuneBase:
        # A fitted base model is kept by reference (like sklearn's FrozenEstimator): cloning
        # an adapting estimator must not turn its base into an unfitted copy.
        params = self.get_params()
        return type(self)(
            **{k: v if k == "base_model" else clone(v, safe=False) for k, v in params.items()}
        )

    def _validate_params(self) -> None:
        for name, value in self.get_params().items():
            check, text = PARAMETER_CONSTRAINTS[name]
            if not check(value):
                raise TabTuneInputError(
                    f"The {name!r} parameter of {type(self).__name__} must be {text}. "
                    f"Got {value!r} instead."
                )
        if self.objective is not None and self.objective not in self._allowed_objectives:
            raise TabTuneInputError(
                f"The 'objective' parameter of {type(self).__name__} must be None or one of "
                f"{list(self._allowed_objectives)}. Got {self.objective!r} instead."
            )

    def _resolve_base(self) -> TabTuneBase | None:
        base = self.base_model
        if base is None:
            return None
        if isinstance(base, str) and base.startswith(ADAPTED_FROM):
            raise TabTuneInputError(
                f"base_model {base!r} is the checksum of the model this one was adapted from "
                "(a saved adapted model keeps its base's id, not the base itself), so fit "
                "cannot adapt it again; fix: set_params(base_model=<that base model, fitted, "
                "or the folder it was saved in>) to adapt again, or base_model=None to "
                "pretrain on these rows alone"
            )
        if isinstance(base, str | os.PathLike):
            base = type(self).load(base)
        if type(base) is not type(self):
            raise TabTuneInputError(
                f"base_model is a {type(base).__name__}; a {type(self).__name__} can only "
                f"adapt a {type(self).__name__}"
            )
        if not base.__sklearn_is_fitted__():
            raise NotFittedError(
                f"base_model is an unfitted {type(base).__name__}: fit it on the pooled rows "
                f"first, or load a saved one ({type(base).__name__}.load(path))"
            )
        if self.backend is not None and self.backend != base.backend_:
            raise TabTuneInputError(
                f"base_model was trained with backend {base.backend_!r} but backend="
                f"{self.backend!r} was set; leave backend=None to inherit it, or pretrain a "
                f"{self.backend} base model"
            )
        for name in ("group_column", "objective"):
            mine, theirs = getattr(self, name), getattr(base, f"{name}_")
            if mine is not None and mine != theirs:
                raise TabTuneInputError(
                    f"{name}={mine!r} differs from the base model's {theirs!r}; an adapted "
                    f"model inherits {name} from its base (leave it None)"
                )
        return base

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> TabTuneBase:
        """Pretrain on pooled rows, or adapt ``base_model`` to a brand's rows.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_columns)
            Features, plus ``group_column`` and ``time_column`` when set.
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative; rows of weight zero are dropped (they carry no information).

        Returns
        -------
        self

        Notes
        -----
        A fit that raises leaves the estimator as it was before the call (a fitted one keeps
        its model).
        """
        with self._unchanged_on_error():
            return self._fit(X, y, sample_weight)

    @contextlib.contextmanager
    def _unchanged_on_error(self) -> Iterator[None]:
        """Restore every attribute if the block raises: a failed fit leaves no half-fitted
        state (e.g. a new ``classes_`` next to the previous model)."""
        before = dict(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _fit(self, X: Any, y: Any, sample_weight: Any) -> TabTuneBase:
        """:meth:`fit`'s work."""
        self._validate_params()
        base = self._resolve_base()
        if base is None and self.strategy in ("refit", "continue", "refit+continue"):
            raise TabTuneInputError(
                f"strategy={self.strategy!r} adapts a base model, but base_model is None "
                "(without a base model fit pretrains)"
            )
        X, y_encoded, w = self._fit_inputs(X, y, sample_weight, base)
        rows, backend = self._fit_rows(X, y_encoded, w, base)
        if base is None:
            model, model_bytes = self._pretrain(backend, rows), None
        else:
            model, model_bytes = self._adapt(base, rows)
        self._keep_model(model, model_bytes, backend, base)
        return self

    def fit_batches(self, batches: Callable[[], Iterable[tuple[Any, Any, Any]]]) -> TabTuneBase:
        """Pretrain on pooled rows given as batches of whole groups, in bounded memory.

        The same model as :meth:`fit` on the batches concatenated (features rounded to
        float32; see :mod:`tabtune.transfer.pooled_batches`), holding the float32 training
        matrix and one batch at a time instead of several copies of the rows. Regressors
        with a ``time_column`` only; no ``base_model``.

        Parameters
        ----------
        batches : callable
            Returns an iterable of ``(X, y, sample_weight)``, each batch holding all rows of
            its groups; called two or three times (statistics, encoding, and the rows of
            the regrown fit), it must give the same batches in the same order.

        Returns
        -------
        self
        """
        with self._unchanged_on_error():
            return self._fit_batches(batches)

    def _fit_batches(self, batches: Callable[[], Iterable[tuple[Any, Any, Any]]]) -> TabTuneBase:
        """:meth:`fit_batches`' work."""
        self._validate_params()
        if self._resolve_base() is not None or is_classifier(self):
            raise TabTuneInputError(
                "fit_batches pretrains a regressor (base_model=None); use fit for adaptation "
                "and for classifiers"
            )
        backend_name = self.backend or "lightgbm"
        self.backend_ = backend_name
        self.device_ = resolve_device(self.device, backend_name)
        self.group_column_ = self.group_column
        self.time_column_ = self.time_column
        backend = get_backend(backend_name)

        def checked() -> Iterator[tuple[Any, Any, Any]]:
            for X, y, weight in batches():
                X, y_encoded, w = self._fit_inputs(X, y, weight, None)
                check_columns_exist(X, group_column=self.group_column, time_column=self.time_column)
                yield X, y_encoded, w

        result = pretrain_batched(
            backend,
            lambda schema: self._booster_params(
                schema, self.device_, self.monotone_constraints, self.backend_params
            ),
            checked,
            group_column=self.group_column_,
            time_column=self.time_column_,
            n_estimators=self.n_estimators,
            early_stopping_rounds=self.early_stopping_rounds,
            validation_fraction=self.validation_fraction,
            random_state=self.random_state,
            regrow=self.regrow_on_all_rows,
            early_stopping_max_rows=self.early_stopping_max_rows,
        )
        self._record_pretraining(result)
        self._keep_model(result.model, None, backend, None)
        return self

    def _record_pretraining(self, result: PretrainResult) -> None:
        """The fitted attributes of a pretraining (in memory or from batches)."""
        self.strategy_ = "global"
        self.strategy_reason_ = "pretrained on the pooled rows (no base model)"
        self.holdout_scores_ = dict(result.holdout_scores)
        self.best_iteration_ = result.n_rounds
        self.n_new_trees_ = result.n_rounds
        self.base_model_id_ = None
        self.adapted_groups_: list[str] | None = None

    def _fit_inputs(
        self, X: Any, y: Any, sample_weight: Any, base: TabTuneBase | None
    ) -> tuple[Table, np.ndarray, np.ndarray | None]:
        """Checked X, encoded target and weights, without the rows of weight zero."""
        X = check_X(self, X, reset=True)
        n_rows = X.shape[0]
        y = check_y(type(self).__name__, y, n_rows)
        w = check_weight(sample_weight, n_rows)
        y_encoded = self._encode_target(y, base)
        X, y_encoded, w = drop_zero_weights(X, y_encoded, w)
        self._check_targets_after_weights(y_encoded)
        return X, y_encoded, w

    def _fit_rows(
        self, X: Table, y: np.ndarray, w: np.ndarray | None, base: TabTuneBase | None
    ) -> tuple[Rows, Backend]:
        """The rows of the fit and its backend, with the resolved settings (``backend_``,
        ``device_``, ``group_column_``, ``time_column_``; an adapted model inherits its
        base's)."""
        backend_name = base.backend_ if base is not None else (self.backend or "lightgbm")
        group_column = base.group_column_ if base is not None else self.group_column
        time_column = self.time_column
        if time_column is None and base is not None and base.time_column_ is not None:
            time_column = base.time_column_
        if base is not None:
            theirs = getattr(base, "feature_names_in_", array_names(base.n_features_in_))
            check_same_columns(X, list(theirs))
        check_columns_exist(X, group_column=group_column, time_column=time_column)
        order, times = time_order(X, time_column) if time_column is not None else (None, None)
        device = resolve_device(self.device, backend_name, n_rows=len(y))
        backend = get_backend(backend_name)
        groups = column_values(X, group_column) if group_column is not None else None
        self.backend_ = backend_name
        self.device_ = device
        self.group_column_ = group_column
        self.time_column_ = time_column
        return Rows(X, y, w, order, groups, times), backend

    def _pretrain(self, backend: Backend, rows: Rows) -> FittedModel:
        """The global model of the pooled rows (no base model)."""
        schema = FeatureSchema.from_table(
            rows.X, exclude=[c for c in (self.group_column_, self.time_column_) if c is not None]
        )
        params = self._booster_params(
            schema, self.device_, self.monotone_constraints, self.backend_params
        )
        result = pretrain(
            backend,
            params,
            schema,
            rows,
            group_column=self.group_column_,
            n_estimators=self.n_estimators,
            early_stopping_rounds=self.early_stopping_rounds,
            validation_fraction=self.validation_fraction,
            random_state=self.random_state,
            regrow=self.regrow_on_all_rows,
            early_stopping_max_rows=self.early_stopping_max_rows,
        )
        self._record_pretraining(result)
        return result.model

    def _adapt(self, base: TabTuneBase, rows: Rows) -> tuple[FittedModel, bytes | None]:
        """``base`` adapted to the rows: the model and its bytes (None: not written yet)."""
        schema = base._model.schema
        inherited = base._model.params  # the base's effective settings
        monotone = self.monotone_constraints
        if monotone is None and inherited.monotone_constraints is not None:
            monotone = dict(zip(schema.columns, inherited.monotone_constraints, strict=False))
        extra = self.backend_params
        if extra is None:
            extra = dict(inherited.extra)
        params = self._booster_params(schema, self.device_, monotone, extra)
        outcome = self._adapt_cached(base, params, rows, self._adapt_settings())
        self.strategy_ = outcome.strategy
        self.strategy_reason_ = outcome.reason
        self.holdout_scores_ = dict(outcome.holdout_scores)
        self.best_iteration_ = outcome.n_rounds
        self.n_new_trees_ = outcome.n_new_rounds
        self.base_model_id_ = base.model_sha256_
        groups = None if rows.groups is None else pd.unique(np.asarray(rows.groups, dtype=object))
        self.adapted_groups_ = None if groups is None else sorted(str(g) for g in groups)
        logger.info(
            "adapted %s: strategy %s (%s)",
            type(self).__name__,
            self.strategy_,
            self.strategy_reason_,
        )
        return outcome.model, outcome.model_bytes

    def _adapt_settings(self) -> AdaptSettings:
        """The adaptation settings of this estimator's parameters."""
        return AdaptSettings(
            strategy=self.strategy,
            validation_fraction=self.validation_fraction,
            min_rows_to_adapt=self.min_rows_to_adapt,
            n_estimators=self.n_estimators,
            adapt_n_estimators=self.adapt_n_estimators,
            adapt_learning_rate=(
                self.learning_rate if self.adapt_learning_rate is None else self.adapt_learning_rate
            ),
            early_stopping_rounds=self.early_stopping_rounds,
            refit_decay_rate=self.refit_decay_rate,
            random_state=self.random_state,
            selection_folds=self.selection_folds,
            selection_margin=self.selection_margin,
            selection_margin_rows=self.selection_margin_rows,
        )

    def _adapt_cached(
        self, base: TabTuneBase, params: BoosterParams, rows: Rows, settings: AdaptSettings
    ) -> AdaptResult:
        """:func:`~tabtune.transfer.adapt`, through the leaf cache when one is set."""
        cache = None if self.leaf_cache is None else LeafCache(self.leaf_cache)
        memory = None
        if cache is not None:
            memory = cache.load(base.model_sha256_, rows.groups, len(base._model.layout.names))
        outcome = adapt(
            base._model, params, rows, settings, memory=memory, remember=cache is not None
        )
        if cache is not None and outcome.memory is not None:
            try:
                cache.save(base.model_sha256_, rows.groups, outcome.memory)
            except OSError as exc:  # a cache: the fit stands without it
                logger.warning("leaf cache not written (%s)", exc)
        return outcome

    def _keep_model(
        self,
        model: FittedModel,
        model_bytes: bytes | None,
        backend: Backend,
        base: TabTuneBase | None,
    ) -> None:
        """Keep the fitted model with its bytes and checksum."""
        if base is not None and model.booster is base._model.booster:
            # Served by the base's trees as they are: the same bytes (and booster, which is
            # never modified), without writing 500 trees to text again for every such brand.
            self._model_bytes = base._model_bytes
            self.model_sha256_ = base.model_sha256_
        else:
            # The in-memory booster is the one the saved bytes describe (save/load bit for bit).
            if model_bytes is None:
                model_bytes = backend.to_bytes(model.booster)
            self._model_bytes = model_bytes
            model.booster = backend.from_bytes(self._model_bytes)
            self.model_sha256_ = sha256_hex(self._model_bytes)
        self._model = model
        self.booster_ = model.booster

    def _booster_params(
        self,
        schema: FeatureSchema,
        device: str,
        monotone: Mapping[str, int] | None,
        extra: Mapping[str, Any] | None,
    ) -> BoosterParams:
        constraints = None
        if monotone:
            unknown = sorted(set(monotone) - set(schema.columns))
            if unknown:
                raise TabTuneInputError(
                    f"monotone_constraints names {unknown}, which are not model features "
                    f"(features: {list(schema.columns)})"
                )
            categorical = sorted(c for c in monotone if c in schema.vocabularies and monotone[c])
            if categorical:
                raise TabTuneInputError(
                    f"monotone_constraints on categorical columns {categorical} are not supported"
                )
            vector = tuple(int(monotone.get(c, 0)) for c in schema.columns)
            # Per schema column; transfer pads zeros for the brand-context features.
            constraints = vector if any(vector) else None
        n_jobs = self.n_jobs
        if n_jobs is not None and n_jobs < 0:
            n_jobs = None if n_jobs == -1 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)
        objective, n_classes = self._objective_and_classes()
        return BoosterParams(
            objective=objective,
            n_classes=n_classes,
            learning_rate=float(self.learning_rate),
            num_leaves=int(self.num_leaves),
            max_depth=int(self.max_depth),
            min_child_samples=int(self.min_child_samples),
            subsample=float(self.subsample),
            colsample_bytree=float(self.colsample_bytree),
            reg_alpha=float(self.reg_alpha),
            reg_lambda=float(self.reg_lambda),
            monotone_constraints=constraints,
            random_state=None if self.random_state is None else int(self.random_state),
            n_jobs=n_jobs,
            verbose=int(self.verbose),
            device=device,
            extra=dict(extra or {}),
        )

    # -- importance -------------------------------------------------------------------------
    def _gain_shares(self) -> tuple[np.ndarray, dict[str, float]]:
        check_is_fitted(self)
        inputs = getattr(self, "feature_names_in_", None)
        names = list(inputs) if inputs is not None else array_names(self.n_features_in_)
        return gain_shares(self.backend_, self.booster_, self._model.layout.names, names)

    @property
    def feature_importances_(self) -> np.ndarray:
        """Each input column's share of the model's total gain (see the class docstring)."""
        return self._gain_shares()[0]

    @property
    def context_importances_(self) -> dict[str, float]:
        """Each brand-context feature's share of the model's total gain."""
        return self._gain_shares()[1]

    @property
    def context_groups_(self) -> tuple[Any, ...] | None:
        """The groups (brands) whose brand context the model holds: a group it does not hold
        is served without one (its context features missing, as for a brand never seen).
        None without a ``group_column``."""
        check_is_fitted(self)
        context = self._model.context
        return None if context is None else tuple(context.keys)

    # -- prediction -------------------------------------------------------------------------
    def _predict_raw(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = check_X(self, X, reset=False)
        model: FittedModel = self._model
        groups = None
        if model.context is not None:
            groups = column_values(X, model.context.group_column)
            model.context.refuse_spelling_twins(list(pd.unique(groups)))
            warn_other_groups(self, groups)
        return model.predict(model.encode(X, groups), device=self.device_, groups=groups)

    # -- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready manifest of a fitted estimator (everything but the model file)."""
        check_is_fitted(self)
        return estimator_manifest(
            self, self._model, saved_params(self.get_params()), self._target_manifest()
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save into directory ``path``: the native model file and ``manifest.json``.

        LightGBM models are written as ``model.txt`` (text format), XGBoost models as
        ``model.ubj`` (UBJSON). The write is atomic (temporary directory, then rename). No
        pickle is involved.

        Returns
        -------
        Path
            The model directory.
        """
        check_is_fitted(self)
        return write_estimator(path, self._model, self._model_bytes, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        """Load an estimator saved with :meth:`save` (checksum verified, no pickle).

        Raises
        ------
        ModelIntegrityError
            When the model file does not match the checksum in its manifest.
        TabTuneInputError
            When ``path`` holds no model, or a model of another estimator class.
        """
        manifest, model_bytes = read_estimator(path, cls.__name__)
        params = dict(manifest["params"])
        if params.get("base_model") is None and manifest["base_model_id"] is not None:
            # adapted from a base kept by id only: a refit must not pretrain in silence
            params["base_model"] = ADAPTED_FROM + manifest["base_model_id"]
        est = cls(**params)
        model = model_from_manifest(manifest, model_bytes)
        est.backend_ = manifest["backend"]
        est.device_ = "cpu" if est.device == "cpu" else resolve_device("auto", est.backend_)
        est.group_column_ = manifest["group_column"]
        est.time_column_ = manifest["time_column"]
        est.n_features_in_ = int(manifest["n_features_in"])
        if manifest["feature_names_in"] is not None:
            est.feature_names_in_ = np.asarray(manifest["feature_names_in"], dtype=object)
        est.strategy_ = manifest["strategy"]
        est.strategy_reason_ = manifest["strategy_reason"]
        est.holdout_scores_ = dict(manifest["holdout_scores"])
        est.base_model_id_ = manifest["base_model_id"]
        est.best_iteration_ = int(manifest["best_iteration"])
        est.n_new_trees_ = int(manifest["n_new_trees"])
        est.adapted_groups_ = manifest.get("adapted_groups")  # older manifests: unknown
        est._load_target(manifest)
        est._model_bytes = model_bytes
        est._model = model
        est.model_sha256_ = manifest["model_sha256"]
        est.booster_ = model.booster
        return est

    # -- hooks for the subclasses -----------------------------------------------------------
    def _encode_target(self, y: np.ndarray, base: TabTuneBase | None) -> np.ndarray:
        raise NotImplementedError

    def _check_targets_after_weights(self, y: np.ndarray) -> None:
        """Hook: checks that need the rows kept after dropping zero weights."""

    def _objective_and_classes(self) -> tuple[str, int]:
        raise NotImplementedError

    def _target_manifest(self) -> dict[str, Any]:
        raise NotImplementedError

    def _load_target(self, manifest: Mapping[str, Any]) -> None:
        raise NotImplementedError


def repeat_params(strategy: str, n_new_trees: int) -> dict[str, Any]:
    """Estimator parameters that repeat a strategy choice on new rows in one fit.

    ``strategy`` and ``n_new_trees`` are what ``strategy="auto"`` chose (``strategy_``,
    ``n_new_trees_``). With them and no early stopping, a fit on the same rows gives the very
    same model as the choosing fit, with one fit instead of one per candidate and fold.
    """
    params: dict[str, Any] = {"strategy": strategy, "early_stopping_rounds": None}
    if strategy == "scratch":
        params["n_estimators"] = max(int(n_new_trees), 1)
    else:
        params["adapt_n_estimators"] = int(n_new_trees)
    return params
