"""LightGBM backend.

Inputs are float64 matrices whose categorical columns hold integer codes from the frozen
vocabulary (see :mod:`tabtune.boosting.encoding`), declared with ``categorical_feature`` by
position. LightGBM therefore never sees a pandas frame and never stores a
``pandas_categorical`` mapping that a brand's data could replace.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np

from tabtune.boosting.base import (
    Backend,
    BoosterParams,
    Layout,
    Matrix,
    Trained,
    check_extra_params,
)

__all__ = ["LightGBMBackend"]

_OBJECTIVES = {
    "squared_error": "regression",
    "poisson": "poisson",
    "tweedie": "tweedie",
    "absolute_error": "regression_l1",
    "binary": "binary",
    "multiclass": "multiclass",
}
_METRICS = {
    "squared_error": "l2",
    "poisson": "poisson",
    "tweedie": "tweedie",
    "absolute_error": "l1",
    "binary": "binary_logloss",
    "multiclass": "multi_logloss",
}
# Set by the translation whatever the canonical values; dropped again by the inverse.
_DERIVED = ("metric", "bagging_freq", "deterministic", "force_col_wise")
# Rows x trees of leaf indices predicted at once when counting rows per leaf.
_LEAF_BLOCK = 20_000_000


class LightGBMBackend(Backend):
    """:class:`~tabtune.boosting.base.Backend` over ``lightgbm``."""

    name: ClassVar[str] = "lightgbm"
    model_file: ClassVar[str] = "model.txt"

    # -- parameters ------------------------------------------------------------------------
    def native_params(self, params: BoosterParams) -> dict[str, Any]:
        """Translate canonical parameters to LightGBM's (the only place that does)."""
        native: dict[str, Any] = {
            "objective": _OBJECTIVES[params.objective],
            "metric": _METRICS[params.objective],
            "learning_rate": params.learning_rate,
            "num_leaves": params.num_leaves,
            "max_depth": params.max_depth,
            "min_data_in_leaf": params.min_child_samples,
            "bagging_fraction": params.subsample,
            "bagging_freq": 1 if params.subsample < 1.0 else 0,
            "feature_fraction": params.colsample_bytree,
            "lambda_l1": params.reg_alpha,
            "lambda_l2": params.reg_lambda,
            "num_threads": params.n_jobs or 0,
            "verbosity": params.verbose - 1,
            "device_type": params.device,
            # Same inputs + same parameters -> bit-identical models: fixed histogram layout
            # instead of LightGBM's timing-based choice between row- and column-wise.
            "deterministic": True,
            "force_col_wise": True,
        }
        if params.objective == "multiclass":
            native["num_class"] = params.n_classes
        if params.random_state is not None:
            native["seed"] = params.random_state
        if params.monotone_constraints is not None:
            native["monotone_constraints"] = list(params.monotone_constraints)
        check_extra_params(params.extra, native, self.name)
        native.update(params.extra)
        return native

    def canonical_params(self, native: Mapping[str, Any]) -> BoosterParams:
        """Inverse of :meth:`native_params`."""
        rest = dict(native)
        for key in _DERIVED:
            rest.pop(key, None)
        objective = {v: k for k, v in _OBJECTIVES.items()}[rest.pop("objective")]
        n_classes = int(rest.pop("num_class", 2 if objective == "binary" else 1))
        monotone = rest.pop("monotone_constraints", None)
        threads = int(rest.pop("num_threads"))
        return BoosterParams(
            objective=objective,
            n_classes=n_classes,
            learning_rate=rest.pop("learning_rate"),
            num_leaves=rest.pop("num_leaves"),
            max_depth=rest.pop("max_depth"),
            min_child_samples=rest.pop("min_data_in_leaf"),
            subsample=rest.pop("bagging_fraction"),
            colsample_bytree=rest.pop("feature_fraction"),
            reg_alpha=rest.pop("lambda_l1"),
            reg_lambda=rest.pop("lambda_l2"),
            monotone_constraints=None if monotone is None else tuple(monotone),
            random_state=rest.pop("seed", None),
            n_jobs=threads or None,
            verbose=rest.pop("verbosity") + 1,
            device=rest.pop("device_type"),
            extra=rest,
        )

    # -- training --------------------------------------------------------------------------
    def _dataset(
        self, data: Matrix, layout: Layout, reference: lgb.Dataset | None = None
    ) -> lgb.Dataset:
        # free_raw_data=False: continued training computes init scores from the raw rows.
        return lgb.Dataset(
            data.X,
            label=data.y,
            weight=data.weight,
            feature_name=list(layout.names),
            categorical_feature=list(layout.categorical),
            reference=reference,
            free_raw_data=False,
        )

    def train(
        self,
        params: BoosterParams,
        layout: Layout,
        train: Matrix,
        *,
        num_rounds: int,
        valid: Matrix | None = None,
        early_stopping_rounds: int | None = None,
        init_model: lgb.Booster | None = None,
    ) -> Trained:
        """Boost with ``lightgbm.train``; see :meth:`Backend.train`."""
        native = self.native_params(params)
        base_rounds = 0 if init_model is None else init_model.current_iteration()
        dtrain = self._dataset(train, layout)
        valid_sets: list[lgb.Dataset] = []
        callbacks: list[Any] = []
        if valid is not None and early_stopping_rounds is not None:
            valid_sets.append(self._dataset(valid, layout, reference=dtrain))
            callbacks.append(
                lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False)
            )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
            booster = lgb.train(
                native,
                dtrain,
                num_boost_round=num_rounds,
                valid_sets=valid_sets,
                valid_names=["holdout"][: len(valid_sets)],
                init_model=init_model,
                callbacks=callbacks,
            )
        total = booster.current_iteration()
        if valid_sets and booster.best_iteration > 0:
            # best_iteration counts the base model's rounds too (LibraryNotes); keep at least
            # one new round so that "continue" always adds something.
            total = max(int(booster.best_iteration), base_rounds + 1)
            if total < booster.current_iteration():
                booster = self.from_bytes(
                    booster.model_to_string(num_iteration=total).encode("utf-8")
                )
        return Trained(booster=booster, n_rounds=total, n_new_rounds=total - base_rounds)

    def refit(
        self,
        booster: lgb.Booster,
        params: BoosterParams,
        layout: Layout,
        data: Matrix,
        decay_rate: float,
    ) -> lgb.Booster:
        """``Booster.refit`` that leaves untouched the leaves no row reaches.

        LightGBM multiplies the value of a leaf that receives no rows by ``decay_rate``
        (``FitByExistingTree``), dragging regions the brand never visits towards zero; we
        count rows per leaf and restore those leaves afterwards. Restoring them changes no
        training row's score, so the sequential refit of later trees stays exact.
        """
        model_text = booster.model_to_string()
        reached = self._reached_leaves(booster, data.X)
        work = lgb.Booster(model_str=model_text)  # throwaway copy: the base stays untouched
        work.params = self.native_params(params)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
            refitted = work.refit(
                data.X,
                data.y,
                decay_rate=decay_rate,
                weight=data.weight,
                feature_name=list(layout.names),
                categorical_feature=list(layout.categorical),
                free_raw_data=False,
            )
        leaves = [int(v) for v in re.findall(r"^num_leaves=(\d+)$", model_text, re.MULTILINE)]
        for tree, n_leaves in enumerate(leaves):
            for leaf in np.flatnonzero(~reached[tree, :n_leaves]):
                refitted.set_leaf_output(tree, int(leaf), booster.get_leaf_output(tree, int(leaf)))
        return self.from_bytes(refitted.model_to_string().encode("utf-8"))

    @staticmethod
    def _reached_leaves(booster: lgb.Booster, X: np.ndarray) -> np.ndarray:
        """Boolean ``(n_trees, max_leaves)``: which leaves at least one row of X reaches."""
        n_trees = booster.num_trees()
        reached = np.zeros((n_trees, 1), dtype=bool)
        step = max(1, _LEAF_BLOCK // max(n_trees, 1))
        for start in range(0, X.shape[0], step):
            leaf = np.asarray(booster.predict(X[start : start + step], pred_leaf=True))
            leaf = leaf.reshape(leaf.shape[0], -1)
            width = max(reached.shape[1], int(leaf.max()) + 1)
            if width > reached.shape[1]:
                reached = np.pad(reached, ((0, 0), (0, width - reached.shape[1])))
            flat = (np.arange(n_trees) * width + leaf).ravel()
            reached |= np.bincount(flat, minlength=n_trees * width).reshape(n_trees, width) > 0
        return reached

    # -- prediction and files ----------------------------------------------------------------
    def predict(
        self, booster: lgb.Booster, X: np.ndarray, layout: Layout, device: str = "cpu"
    ) -> np.ndarray:
        """Response-scale predictions (probabilities for classification)."""
        return np.asarray(booster.predict(X))

    def num_rounds(self, booster: lgb.Booster) -> int:
        """Boosting rounds in the model."""
        return int(booster.current_iteration())

    def to_bytes(self, booster: lgb.Booster) -> bytes:
        """LightGBM's text model format."""
        return booster.model_to_string().encode("utf-8")

    def from_bytes(self, data: bytes) -> lgb.Booster:
        """Load LightGBM's text model format."""
        return lgb.Booster(model_str=data.decode("utf-8"))

    @staticmethod
    def library_version() -> str:
        """``lightgbm.__version__``."""
        return str(lgb.__version__)
