"""``TabTuneRegressor`` and ``TabTuneClassifier``: the target-specific parts of the estimators.

Everything else (parameters, the steps of ``fit``, prediction, files) is in
:class:`~tabtune.estimators.base.TabTuneBase`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets

from tabtune.boosting.base import read_model_dir
from tabtune.boosting.encoding import json_scalar
from tabtune.errors import TabTuneInputError
from tabtune.estimators.base import TabTuneBase
from tabtune.estimators.docs import parameters_doc
from tabtune.params import CLASSIFICATION_OBJECTIVES, REGRESSION_OBJECTIVES

#: The largest absolute target a regressor takes (see ``_encode_target``).
MAX_ABS_TARGET = 1e30

__all__ = ["TabTuneClassifier", "TabTuneRegressor", "load"]


class TabTuneRegressor(RegressorMixin, TabTuneBase):
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

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # poisson and tweedie need y >= 0 (refused otherwise), as scikit-learn's checks ask
        tags.target_tags.positive_only = self.objective in ("poisson", "tweedie")
        return tags

    def _encode_target(self, y: np.ndarray, base: TabTuneBase | None) -> np.ndarray:
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TabTuneInputError(f"y must be numeric for a regressor ({exc})") from exc
        if not np.isfinite(y).all():
            raise TabTuneInputError("Input y contains NaN or infinity; every target must be finite")
        if len(y) and np.abs(y).max() > MAX_ABS_TARGET:
            raise TabTuneInputError(
                f"y holds {np.abs(y).max():.3g}: every target must be at most "
                f"{MAX_ABS_TARGET:.0e} in absolute value (the brand context is kept in 32-bit "
                "floats, which overflow near 3.4e38); scale the target, e.g. to thousands"
            )
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


class TabTuneClassifier(ClassifierMixin, TabTuneBase):
    """Gradient-boosted classifier pretrained on pooled brands and adapted per brand.

    Binary and multiclass targets; every strategy works for both. An adapted classifier keeps
    its base's classes (the brand's rows may lack some).
    {parameters}
    """

    _allowed_objectives: ClassVar[tuple[str, ...]] = CLASSIFICATION_OBJECTIVES

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # objective="binary" refuses more than two classes, as scikit-learn's checks ask
        tags.classifier_tags.multi_class = self.objective != "binary"
        return tags

    def _encode_target(self, y: np.ndarray, base: TabTuneBase | None) -> np.ndarray:
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
                    f"(classes {np.asarray(classes).tolist()})"
                )
            self.classes_ = classes
            self.objective_ = base.objective_
            return index.astype(np.float64)
        classes, encoded = np.unique(y, return_inverse=True)
        self.classes_ = classes
        self.objective_ = "binary" if len(classes) <= 2 else "multiclass"
        if self.objective is not None and self.objective != self.objective_:
            only = "Only binary classification is supported with objective='binary'; "
            raise TabTuneInputError(
                (only if self.objective == "binary" else "")
                + f"objective={self.objective!r} but y has {len(classes)} classes"
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


TabTuneRegressor.__doc__ = (TabTuneRegressor.__doc__ or "").replace(
    "{parameters}",
    parameters_doc('"squared_error" (None), "poisson", "tweedie" or "absolute_error".'),
)
TabTuneClassifier.__doc__ = (TabTuneClassifier.__doc__ or "").replace(
    "{parameters}", parameters_doc('"binary" or "multiclass"; None infers it from the classes.')
)


def load(path: str | os.PathLike[str]) -> TabTuneRegressor | TabTuneClassifier:
    """Load a saved estimator of either class (the manifest says which)."""
    manifest, _ = read_model_dir(path)
    kinds = {"TabTuneRegressor": TabTuneRegressor, "TabTuneClassifier": TabTuneClassifier}
    kind = kinds.get(manifest.get("estimator", ""))
    if kind is None:
        raise TabTuneInputError(f"{path} holds no tabtune estimator")
    return kind.load(path)
