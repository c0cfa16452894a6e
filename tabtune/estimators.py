"""``TabTuneRegressor`` and ``TabTuneClassifier``: the scikit-learn layer.

These classes validate parameters and inputs, then call :mod:`tabtune.transfer` (pretraining
and adaptation) and :mod:`tabtune.boosting` (backends, encoding, model files). They do not
know how a library stores a category or a tree.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d, validate_data

from tabtune.boosting.base import (
    BoosterParams,
    get_backend,
    read_model_dir,
    resolve_device,
    sha256_hex,
    write_model_dir,
)
from tabtune.boosting.encoding import FeatureSchema, Table, column_values, json_scalar
from tabtune.errors import ModelIntegrityError, TabTuneInputError
from tabtune.leaf_cache import LeafCache
from tabtune.params import CLASSIFICATION_OBJECTIVES, REGRESSION_OBJECTIVES, estimator_params
from tabtune.transfer import (
    AdaptSettings,
    BrandContext,
    FittedModel,
    Rows,
    adapt,
    pretrain,
)

__all__ = [
    "EARLY_STOPPING_WEIGHT_REASON",
    "FORMAT_VERSION",
    "PARAMETER_CONSTRAINTS",
    "TabTuneClassifier",
    "TabTuneRegressor",
    "expected_failed_checks",
    "load",
    "repeat_params",
]

logger = logging.getLogger("tabtune")

#: Version of the saved-model layout (``manifest.json`` + native model file).
FORMAT_VERSION = 1
_READABLE_FORMATS = (1,)

# ----------------------------------------------------------------------------------------------
# parameter constraints and defaults: rows of the parameter table (tabtune.params)
# ----------------------------------------------------------------------------------------------

_PARAMS = estimator_params()
#: Constructor defaults, from :data:`tabtune.params.PARAMETERS`.
_D: dict[str, Any] = {name: p.default for name, p in _PARAMS.items()}


def _is_base_model(value: Any) -> bool:
    return value is None or isinstance(value, str | os.PathLike | _TabTuneBase)


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


# ----------------------------------------------------------------------------------------------
# the estimators
# ----------------------------------------------------------------------------------------------


class _TabTuneBase(BaseEstimator):
    """Shared machinery of :class:`TabTuneRegressor` and :class:`TabTuneClassifier`."""

    _allowed_objectives: ClassVar[tuple[str, ...]] = ()

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

    def __sklearn_clone__(self) -> _TabTuneBase:
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

    # -- input validation -------------------------------------------------------------------
    def _check_X(self, X: Any, *, reset: bool) -> Table:
        """A DataFrame with string column names, or a float64 array (columns x0, x1, ...)."""
        if isinstance(X, pd.DataFrame):
            if not all(isinstance(c, str) for c in X.columns):
                X = X.set_axis([f"x{i}" for i in range(X.shape[1])], axis=1)
            validate_data(self, X, reset=reset, skip_check_array=True)
            if X.shape[0] == 0:
                raise TabTuneInputError(
                    f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is "
                    "required."
                )
            if X.shape[1] == 0:
                raise TabTuneInputError(
                    f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is "
                    "required."
                )
            return X
        names = getattr(self, "feature_names_in_", None)
        if not reset and names is not None:
            # Fitted on a DataFrame: read an array positionally under the fitted names.
            validate_data(self, X, reset=False, skip_check_array=True)
            array = check_array(X, dtype=None, ensure_all_finite=False)
            return pd.DataFrame(array, columns=list(names))
        return validate_data(self, X, reset=reset, dtype=np.float64, ensure_all_finite="allow-nan")

    def _check_y(self, y: Any, n_rows: int) -> np.ndarray:
        if y is None:
            raise TabTuneInputError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        y = column_or_1d(np.asarray(y) if not isinstance(y, pd.Series) else y.to_numpy(), warn=True)
        if y.shape[0] != n_rows:
            raise TabTuneInputError(
                f"X has {n_rows} rows but y has {y.shape[0]}: they must have the same length"
            )
        return y

    @staticmethod
    def _check_weight(sample_weight: Any, n_rows: int) -> np.ndarray | None:
        if sample_weight is None:
            return None
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.ndim == 0:
            w = np.full(n_rows, float(w))
        if w.ndim != 1 or w.shape[0] != n_rows:
            raise TabTuneInputError(
                f"sample_weight has shape {w.shape}; expected ({n_rows},), one weight per row"
            )
        if not np.isfinite(w).all() or (w < 0).any():
            raise TabTuneInputError("sample_weight must hold finite, non-negative numbers")
        if not (w > 0).any():
            raise TabTuneInputError(
                "Sample weights must contain at least one non-zero number: all sample weights "
                "are zero"
            )
        return w

    def _resolve_base(self) -> _TabTuneBase | None:
        base = self.base_model
        if base is None:
            return None
        if isinstance(base, str | os.PathLike):
            base = type(self).load(base)
        if type(base) is not type(self):
            raise TabTuneInputError(
                f"base_model is a {type(base).__name__}; a {type(self).__name__} can only "
                f"adapt a {type(self).__name__}"
            )
        check_is_fitted(base)
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
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> _TabTuneBase:
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
        """
        self._validate_params()
        base = self._resolve_base()
        if base is None and self.strategy in ("refit", "continue", "refit+continue"):
            raise TabTuneInputError(
                f"strategy={self.strategy!r} adapts a base model, but base_model is None "
                "(without a base model fit pretrains)"
            )
        X = self._check_X(X, reset=True)
        n_rows = X.shape[0]
        y = self._check_y(y, n_rows)
        w = self._check_weight(sample_weight, n_rows)
        y_encoded = self._encode_target(y, base)
        if w is not None and not (w > 0).all():
            keep = np.flatnonzero(w > 0)
            X = X.iloc[keep] if isinstance(X, pd.DataFrame) else X[keep]
            y_encoded, w = y_encoded[keep], w[keep]
            y = y[keep]
        self._check_targets_after_weights(y_encoded)
        backend_name = base.backend_ if base is not None else (self.backend or "lightgbm")
        group_column = base.group_column_ if base is not None else self.group_column
        time_column = self.time_column
        if time_column is None and base is not None and base.time_column_ is not None:
            time_column = base.time_column_
        columns = set(X.columns) if isinstance(X, pd.DataFrame) else None
        if base is not None:
            self._check_same_columns(X, base)
        for name, value in (("group_column", group_column), ("time_column", time_column)):
            if value is not None and columns is not None and value not in columns:
                raise TabTuneInputError(f"{name}={value!r} is not a column of X")
            if value is not None and columns is None and value not in _array_names(X):
                raise TabTuneInputError(f"{name}={value!r} is not a column of X")
        order, times = _time_order(X, time_column) if time_column is not None else (None, None)
        device = resolve_device(self.device, backend_name, n_rows=len(y_encoded))
        backend = get_backend(backend_name)
        groups = column_values(X, group_column) if group_column is not None else None
        rows = Rows(X, y_encoded, w, order, groups, times)
        self.backend_ = backend_name
        self.device_ = device
        self.group_column_ = group_column
        self.time_column_ = time_column
        model_bytes: bytes | None = None
        if base is None:
            schema = FeatureSchema.from_table(
                X, exclude=[c for c in (group_column, time_column) if c is not None]
            )
            params = self._booster_params(
                schema, device, self.monotone_constraints, self.backend_params
            )
            result = pretrain(
                backend,
                params,
                schema,
                rows,
                group_column=group_column,
                n_estimators=self.n_estimators,
                early_stopping_rounds=self.early_stopping_rounds,
                validation_fraction=self.validation_fraction,
                random_state=self.random_state,
            )
            model = result.model
            self.strategy_ = "global"
            self.strategy_reason_ = "pretrained on the pooled rows (no base model)"
            self.holdout_scores_ = dict(result.holdout_scores)
            self.best_iteration_ = result.n_rounds
            self.n_new_trees_ = result.n_rounds
            self.base_model_id_ = None
        else:
            schema = base._model.schema
            inherited = base._model.params  # the base's effective settings
            monotone = self.monotone_constraints
            if monotone is None and inherited.monotone_constraints is not None:
                monotone = dict(zip(schema.columns, inherited.monotone_constraints, strict=False))
            extra = self.backend_params
            if extra is None:
                extra = dict(inherited.extra)
            params = self._booster_params(schema, device, monotone, extra)
            settings = AdaptSettings(
                strategy=self.strategy,
                validation_fraction=self.validation_fraction,
                min_rows_to_adapt=self.min_rows_to_adapt,
                n_estimators=self.n_estimators,
                adapt_n_estimators=self.adapt_n_estimators,
                adapt_learning_rate=(
                    self.learning_rate
                    if self.adapt_learning_rate is None
                    else self.adapt_learning_rate
                ),
                early_stopping_rounds=self.early_stopping_rounds,
                refit_decay_rate=self.refit_decay_rate,
                random_state=self.random_state,
                selection_folds=self.selection_folds,
            )
            cache = None if self.leaf_cache is None else LeafCache(self.leaf_cache)
            memory = None
            if cache is not None:
                memory = cache.load(base.model_sha256_, groups, len(base._model.layout.names))
            outcome = adapt(
                base._model, params, rows, settings, memory=memory, remember=cache is not None
            )
            if cache is not None and outcome.memory is not None:
                try:
                    cache.save(base.model_sha256_, groups, outcome.memory)
                except OSError as exc:  # a cache: the fit stands without it
                    logger.warning("leaf cache not written (%s)", exc)
            model = outcome.model
            model_bytes = outcome.model_bytes
            self.strategy_ = outcome.strategy
            self.strategy_reason_ = outcome.reason
            self.holdout_scores_ = dict(outcome.holdout_scores)
            self.best_iteration_ = outcome.n_rounds
            self.n_new_trees_ = outcome.n_new_rounds
            self.base_model_id_ = base.model_sha256_
            logger.info(
                "adapted %s: strategy %s (%s)",
                type(self).__name__,
                self.strategy_,
                self.strategy_reason_,
            )
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
        return self

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

    @staticmethod
    def _check_same_columns(X: Table, base: _TabTuneBase) -> None:
        mine = list(X.columns) if isinstance(X, pd.DataFrame) else _array_names(X)
        theirs = list(getattr(base, "feature_names_in_", _array_names_n(base.n_features_in_)))
        missing = [c for c in theirs if c not in set(mine)]
        extra = [c for c in mine if c not in set(theirs)]
        if missing or extra:
            raise TabTuneInputError(
                "X must have the base model's columns: "
                + (f"missing {missing}" if missing else "")
                + ("; " if missing and extra else "")
                + (f"unexpected {extra}" if extra else "")
            )

    # -- prediction -------------------------------------------------------------------------
    def _predict_raw(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        model: FittedModel = self._model
        groups = None
        if model.context is not None:
            groups = column_values(X, model.context.group_column)
        return model.predict(model.encode(X, groups), device=self.device_, groups=groups)

    # -- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready manifest of a fitted estimator (everything but the model file)."""
        check_is_fitted(self)
        model: FittedModel = self._model
        params = self.get_params()
        base = params["base_model"]
        params["base_model"] = os.fspath(base) if isinstance(base, str | os.PathLike) else None
        if params["leaf_cache"] is not None:
            params["leaf_cache"] = os.fspath(params["leaf_cache"])
        booster_params = asdict(model.params)
        booster_params["extra"] = dict(model.params.extra)
        booster_params["monotone_constraints"] = (
            None
            if model.params.monotone_constraints is None
            else list(model.params.monotone_constraints)
        )
        versions = {
            self.backend_: model.backend.library_version(),
            "numpy": np.__version__,
            "pandas": pd.__version__,
        }
        from tabtune import __version__

        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "estimator": type(self).__name__,
            "tabtune_version": __version__,
            "backend": self.backend_,
            "library_versions": versions,
            "params": params,
            "booster_params": booster_params,
            "objective": self.objective_,
            "group_column": self.group_column_,
            "time_column": self.time_column_,
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": (
                None
                if getattr(self, "feature_names_in_", None) is None
                else [str(c) for c in self.feature_names_in_]
            ),
            "feature_schema": model.schema.to_dict(),
            "brand_context": None if model.context is None else model.context.to_dict(),
            "strategy": self.strategy_,
            "strategy_reason": self.strategy_reason_,
            "holdout_scores": {k: float(v) for k, v in self.holdout_scores_.items()},
            "base_model_id": self.base_model_id_,
            "best_iteration": int(self.best_iteration_),
            "n_new_trees": int(self.n_new_trees_),
        }
        manifest.update(self._target_manifest())
        return manifest

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
        manifest = self.to_dict()
        try:
            import json

            json.dumps(manifest)
        except (TypeError, ValueError) as exc:
            raise TabTuneInputError(
                f"cannot save: a parameter is not JSON-serialisable ({exc}); backend_params "
                "and monotone_constraints must hold plain numbers and strings"
            ) from exc
        return write_model_dir(path, self._model.backend.model_file, self._model_bytes, manifest)

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
        manifest, model_bytes = read_model_dir(path)
        version = manifest.get("format_version")
        if version not in _READABLE_FORMATS:
            raise ModelIntegrityError(
                f"{path}: model format_version {version!r} is not readable by this tabtune "
                f"(reads {list(_READABLE_FORMATS)})"
            )
        if manifest.get("estimator") != cls.__name__:
            raise TabTuneInputError(
                f"{path} holds a {manifest.get('estimator')}; load it with "
                f"{manifest.get('estimator')}.load"
            )
        est = cls(**manifest["params"])
        backend = get_backend(manifest["backend"])
        booster_params = dict(manifest["booster_params"])
        if booster_params.get("monotone_constraints") is not None:
            booster_params["monotone_constraints"] = tuple(booster_params["monotone_constraints"])
        context = manifest["brand_context"]
        model = FittedModel(
            backend=backend,
            booster=backend.from_bytes(model_bytes),
            schema=FeatureSchema.from_dict(manifest["feature_schema"]),
            context=None if context is None else BrandContext.from_dict(context),
            params=BoosterParams(**booster_params),
        )
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
        est._load_target(manifest)
        est._model_bytes = model_bytes
        est._model = model
        est.model_sha256_ = manifest["model_sha256"]
        est.booster_ = model.booster
        return est

    # -- hooks for the subclasses -----------------------------------------------------------
    def _encode_target(self, y: np.ndarray, base: _TabTuneBase | None) -> np.ndarray:
        raise NotImplementedError

    def _check_targets_after_weights(self, y: np.ndarray) -> None:
        """Hook: checks that need the rows kept after dropping zero weights."""

    def _objective_and_classes(self) -> tuple[str, int]:
        raise NotImplementedError

    def _target_manifest(self) -> dict[str, Any]:
        raise NotImplementedError

    def _load_target(self, manifest: Mapping[str, Any]) -> None:
        raise NotImplementedError


_DOC_PARAMETERS = """
    Parameters
    ----------
    backend : {"lightgbm", "xgboost"} or None, default=<backend>
        Gradient-boosting library. None means LightGBM when pretraining and the base model's
        backend when adapting; an explicit value that differs from the base's is an error.
    device : {"auto", "cpu", "cuda"}, default=<device>
        ``"auto"`` uses CUDA only where a usable GPU and a CUDA build exist (else CPU, logged
        once); ``"cuda"`` without them raises.
    base_model : fitted estimator of the same class, path, or None, default=<base_model>
        None: ``fit`` pretrains. Otherwise ``fit`` adapts this model (or the one saved at
        this path) to the rows given; it is read, never modified, and kept by reference when
        this estimator is cloned.
    strategy : {"auto", "global", "refit", "continue", "refit+continue", "scratch"}, \
default=<strategy>
        How to adapt (ignored when pretraining). See :mod:`tabtune.transfer`.
    group_column : str or None, default=<group_column>
        Column identifying the brand. Never a raw feature: pretraining learns brand-context
        features from it; adapted models inherit it from their base.
    time_column : str or None, default=<time_column>
        Column giving time order (rows are stably sorted by it); None: rows are in time
        order. Not a feature.
    validation_fraction : float in (0, 0.5], default=<validation_fraction>
        Newest share of rows held out for early stopping and the strategy choice.
    min_rows_to_adapt : int, default=<min_rows_to_adapt>
        Brands with fewer rows (after dropping zero weights) get the ``global`` strategy.
    selection_folds : int, default=<selection_folds>
        Rolling-origin folds ``strategy="auto"`` scores its candidates on: the newest holds
        the newest ``validation_fraction`` of rows, each older one about as many rows just
        before the next one's. One holdout is a noisy basis for the choice (a few dozen rows
        for a small brand); 1 restores it (cheaper: the choice costs a fit per candidate
        and fold).
    n_estimators : int, default=<n_estimators>
        Boosting rounds when pretraining and for ``scratch`` (fewer with early stopping).
    learning_rate : float, default=<learning_rate>
    num_leaves : int, default=<num_leaves>
    max_depth : int, default=<max_depth>
        -1: no limit.
    min_child_samples : int, default=<min_child_samples>
        Minimum rows per leaf (XGBoost: translated to ``min_child_weight``).
    subsample : float in (0, 1], default=<subsample>
    colsample_bytree : float in (0, 1], default=<colsample_bytree>
    reg_alpha : float >= 0, default=<reg_alpha>
    reg_lambda : float >= 0, default=<reg_lambda>
    early_stopping_rounds : int or None, default=<early_stopping_rounds>
        Rounds without improvement on the holdout before stopping; None: no early stopping
        (pretraining then uses all rows). With early stopping, weighting a row by 2 is not
        the same as repeating it: the time-ordered holdout moves (scikit-learn's
        ``check_sample_weight_equivalence_on_dense_data``; see
        :func:`expected_failed_checks`).
    adapt_n_estimators : int, default=<adapt_n_estimators>
        Most new rounds ``continue`` and ``refit+continue`` add.
    adapt_learning_rate : float or None, default=<adapt_learning_rate>
        Learning rate of the new rounds (None: ``learning_rate``).
    refit_decay_rate : float in [0, 1], default=<refit_decay_rate>
        ``refit`` sets each leaf reached by the brand's rows to
        ``decay * old + (1 - decay) * new``; leaves no row reaches keep their value.
    objective : str or None, default=<objective>
        {objectives}
    monotone_constraints : dict or None, default=<monotone_constraints>
        ``column -> -1 | 0 | 1``: monotone decreasing / none / increasing in that numeric
        column. Adapted models inherit the base's when None.
    random_state : int or None, default=<random_state>
        Seed of the libraries and of the context folds.
    n_jobs : int or None, default=<n_jobs>
        Threads (None or -1: all).
    verbose : int, default=<verbose>
        0 silent; 1 warnings; 2 info; 3 debug (library logging).
    backend_params : dict or None, default=<backend_params>
        Extra parameters passed to the library unchanged (adapted models inherit the base's
        when None). Keys tabtune sets itself are refused.
    leaf_cache : str, path or None, default=<leaf_cache>
        Directory where an adapting fit keeps the base model's leaf indices of the brand's
        rows (:class:`tabtune.leaf_cache.LeafCache`; LightGBM backend). A later fit from the
        same base on the same rows plus new ones predicts the base only on what changed:
        the same model at a fraction of the cost (a nightly refresh). None: no cache.

    Attributes
    ----------
    booster_ : lightgbm.Booster or xgboost.Booster
        The native model.
    strategy_ : str
        Chosen strategy (``"global"`` for a pretrained model).
    strategy_reason_ : str
        Why that strategy.
    holdout_scores_ : dict
        Holdout score of each evaluated strategy: the weighted loss of the objective
        (Tweedie or Poisson deviance, squared error, or log loss for classifiers; lower is
        better) over the holdout rows of every selection fold; empty when nothing was held
        out.
    base_model_id_ : str or None
        SHA-256 of the base model's native model bytes.
    model_sha256_ : str
        SHA-256 of this model's native model bytes (the id of this model as a base).
    best_iteration_ : int
        Boosting rounds in ``booster_`` (base rounds included).
    n_new_trees_ : int
        Rounds this fit added (a round holds one tree per class in multiclass).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Present when X was a DataFrame with string column names.
    backend_, device_, group_column_, time_column_, objective_ :
        Resolved settings.
"""


class TabTuneRegressor(RegressorMixin, _TabTuneBase):
    """Gradient-boosted regressor pretrained on pooled brands and adapted per brand.

    ``fit`` without ``base_model`` pretrains a global model; with it, ``fit`` adapts that
    model to the rows given (one brand's history) with the chosen ``strategy``.
    {parameters}
    Examples
    --------
    >>> glob = TabTuneRegressor(group_column="brand_id", time_column="date")  # doctest: +SKIP
    >>> glob.fit(X_pooled, y_pooled)  # doctest: +SKIP
    >>> est = TabTuneRegressor(base_model=glob).fit(X_brand, y_brand)  # doctest: +SKIP
    >>> est.strategy_, est.holdout_scores_  # doctest: +SKIP
    """

    _allowed_objectives: ClassVar[tuple[str, ...]] = REGRESSION_OBJECTIVES

    def _encode_target(self, y: np.ndarray, base: _TabTuneBase | None) -> np.ndarray:
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TabTuneInputError(f"y must be numeric for a regressor ({exc})") from exc
        if not np.isfinite(y).all():
            raise TabTuneInputError("Input y contains NaN or infinity; every target must be finite")
        self.objective_ = (
            base.objective_ if base is not None else (self.objective or "squared_error")
        )
        if self.objective_ in ("poisson", "tweedie") and (y < 0).any():
            raise TabTuneInputError(f"objective={self.objective_!r} needs y >= 0")
        return y

    def _objective_and_classes(self) -> tuple[str, int]:
        return self.objective_, 1

    def _target_manifest(self) -> dict[str, Any]:
        return {}

    def _load_target(self, manifest: Mapping[str, Any]) -> None:
        self.objective_ = manifest["objective"]

    def predict(self, X: Any) -> np.ndarray:
        """Predicted mean target.

        Parameters
        ----------
        X : DataFrame or array-like
            The columns the model was fitted with. Unseen categories and unseen brands are
            fine (missing category / unknown brand context).

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self._predict_raw(X)


class TabTuneClassifier(ClassifierMixin, _TabTuneBase):
    """Gradient-boosted classifier pretrained on pooled brands and adapted per brand.

    Binary and multiclass targets; every strategy works for both. An adapted classifier keeps
    its base's classes (the brand's rows may lack some).
    {parameters}
    """

    _allowed_objectives: ClassVar[tuple[str, ...]] = CLASSIFICATION_OBJECTIVES

    def _encode_target(self, y: np.ndarray, base: _TabTuneBase | None) -> np.ndarray:
        missing = pd.isna(y) if y.dtype == object else np.zeros(len(y), dtype=bool)
        if y.dtype.kind == "f":
            missing = ~np.isfinite(y)
        if missing.any():
            raise TabTuneInputError("Input y contains NaN or infinity; every label must be set")
        check_classification_targets(y)
        if base is not None:
            classes = base.classes_
            index = pd.Index(classes).get_indexer(pd.Index(y))
            if (index < 0).any():
                unknown = sorted({str(v) for v in np.asarray(y)[index < 0]})[:10]
                raise TabTuneInputError(
                    f"y holds labels {unknown} that the base model does not know "
                    f"(classes {list(classes)})"
                )
            self.classes_ = classes
            self.objective_ = base.objective_
            return index.astype(np.float64)
        classes, encoded = np.unique(y, return_inverse=True)
        self.classes_ = classes
        self.objective_ = "binary" if len(classes) <= 2 else "multiclass"
        if self.objective is not None and self.objective != self.objective_:
            raise TabTuneInputError(
                f"objective={self.objective!r} but y has {len(classes)} classes"
            )
        return encoded.astype(np.float64)

    def _check_targets_after_weights(self, y: np.ndarray) -> None:
        if self.base_model is None and not (len(y) and np.any(y != y[0])):
            raise TabTuneInputError(
                "y (rows of non-zero weight) holds only 1 class; a classifier needs at least 2 "
                "classes to pretrain"
            )

    def _objective_and_classes(self) -> tuple[str, int]:
        return self.objective_, max(2, len(self.classes_))

    def _target_manifest(self) -> dict[str, Any]:
        return {
            "classes": [json_scalar(c, "y") for c in self.classes_],
            "classes_dtype": str(self.classes_.dtype),
        }

    def _load_target(self, manifest: Mapping[str, Any]) -> None:
        self.objective_ = manifest["objective"]
        dtype = np.dtype(manifest["classes_dtype"])
        self.classes_ = np.asarray(manifest["classes"], dtype=dtype)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        raw = self._predict_raw(X)
        if raw.ndim == 1:
            return np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


# The documented defaults are the table's (tabtune.params).
for _name, _value in _D.items():
    _DOC_PARAMETERS = _DOC_PARAMETERS.replace(
        f"default=<{_name}>",
        "default=" + (f'"{_value}"' if isinstance(_value, str) else repr(_value)),
    )

TabTuneRegressor.__doc__ = (TabTuneRegressor.__doc__ or "").replace(
    "{parameters}",
    _DOC_PARAMETERS.replace(
        "{objectives}",
        '"squared_error" (None), "poisson", "tweedie" or "absolute_error".',
    ),
)
TabTuneClassifier.__doc__ = (TabTuneClassifier.__doc__ or "").replace(
    "{parameters}",
    _DOC_PARAMETERS.replace(
        "{objectives}", '"binary" or "multiclass"; None infers it from the classes.'
    ),
)


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


def load(path: str | os.PathLike[str]) -> TabTuneRegressor | TabTuneClassifier:
    """Load a saved estimator of either class (the manifest says which)."""
    manifest, _ = read_model_dir(path)
    kinds = {"TabTuneRegressor": TabTuneRegressor, "TabTuneClassifier": TabTuneClassifier}
    kind = kinds.get(manifest.get("estimator", ""))
    if kind is None:
        raise TabTuneInputError(f"{path} holds no tabtune estimator")
    return kind.load(path)


# -- helpers -------------------------------------------------------------------------------------


def _array_names(X: Table) -> list[str]:
    return _array_names_n(X.shape[1])


def _array_names_n(n: int) -> list[str]:
    return [f"x{i}" for i in range(n)]


def _time_order(X: Table, time_column: str) -> tuple[np.ndarray | None, np.ndarray]:
    """Stable time order of the rows (None when already in order) and their time keys."""
    values = column_values(X, time_column)
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        keys = series
    else:
        try:
            keys = pd.to_datetime(series)
        except (TypeError, ValueError) as exc:
            raise TabTuneInputError(
                f"time_column {time_column!r} must hold dates, datetimes or numbers ({exc})"
            ) from exc
    if keys.isna().any():
        raise TabTuneInputError(f"time_column {time_column!r} has missing values")
    if pd.api.types.is_datetime64_any_dtype(keys.dtype):
        array = (
            keys.to_numpy().view(np.int64)
            if keys.dt.tz is None
            else (keys.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().view(np.int64))
        )
    else:
        array = keys.to_numpy(dtype=np.float64)
    if keys.is_monotonic_increasing:
        return None, array
    return np.argsort(array, kind="stable"), array
