"""LightGBM backend.

Inputs are float64 matrices whose categorical columns hold integer codes from the frozen
vocabulary (see :mod:`tabtune.boosting.encoding`), declared with ``categorical_feature`` by
position. LightGBM therefore never sees a pandas frame and never stores a
``pandas_categorical`` mapping that a brand's data could replace.

This module translates parameters and implements :class:`~tabtune.boosting.base.Backend`;
the boosters' C-API mechanics are in :mod:`tabtune.boosting.lightgbm_booster`, the model
text surgery in :mod:`tabtune.boosting.lightgbm_text` and the session that shares work
between an adaptation's fits in :mod:`tabtune.boosting.lightgbm_session`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np

from tabtune.boosting.base import (
    Backend,
    Binned,
    BoosterParams,
    Layout,
    Matrix,
    Session,
    SessionOptions,
    Trained,
    check_extra_params,
)
from tabtune.boosting.lightgbm_booster import (
    binned,
    first_tree_intercepts,
    reached_leaves,
    refit_start,
    restore_unreached,
    shift_first_trees,
    train_booster,
)
from tabtune.boosting.lightgbm_session import LightGBMSession
from tabtune.boosting.lightgbm_text import Leaves
from tabtune.errors import TabTuneInputError

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


def _parameter_aliases() -> dict[str, list[str]] | None:
    """LightGBM's parameters and their aliases (``lightgbm.basic._ConfigAliases``, which the
    library fills from its C API), or None where this LightGBM does not expose them."""
    try:
        from lightgbm.basic import _ConfigAliases

        _ConfigAliases.get("num_iterations")  # loads the table
        table = _ConfigAliases.aliases or {}
        return {str(k): [str(a) for a in v] for k, v in table.items()}
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - other versions
        return None


#: backend_params values a global model cannot be adapted from (adapting refits it or boosts
#: from it): (LightGBM's name, whether a value is refused, the refusal after "sets ").
_NOT_ADAPTABLE: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    (
        "linear_tree",
        bool,
        "linear_tree: LightGBM's refit of a linear-tree model crashes the Python process (a "
        "native crash when a feature has no value in the brand's rows), and adapting a global "
        "model refits it (strategies refit, refit+continue, and auto, which tries them); leave "
        "linear_tree out",
    ),
    (
        "boosting",
        lambda value: str(value).lower() in ("rf", "random_forest"),
        "boosting: rf: a random forest averages its trees, and adapting a global model refits "
        "or boosts from it (LightGBM refuses both); leave boosting out (gbdt)",
    ),
)

# Set by the translation whatever the canonical values; dropped again by the inverse.
_DERIVED = ("metric", "bagging_freq", "deterministic", "force_row_wise", "force_col_wise")


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
            # instead of LightGBM's timing-based choice between row- and column-wise. Row-wise
            # is the faster for tabtune's shapes (tens of columns): 1M rows x 9 columns 2.47 s
            # vs 2.78 s col-wise; 20k rows on one thread 0.50 s vs 0.54 s (docs/benchmarks.md).
            "deterministic": True,
            "force_row_wise": True,
        }
        if params.objective == "multiclass":
            native["num_class"] = params.n_classes
        if params.random_state is not None:
            native["seed"] = params.random_state
        if params.monotone_constraints is not None:
            native["monotone_constraints"] = list(params.monotone_constraints)
        aliases = _parameter_aliases()
        check_extra_params(
            params.extra,
            native,
            self.name,
            aliases=aliases,
            rounds=("num_iterations", "early_stopping_round"),
            known_only=True,
        )
        for name, refused, why in _NOT_ADAPTABLE:
            spellings = {name, *(aliases or {}).get(name, ())}
            if any(refused(params.extra[k]) for k in spellings if k in params.extra):
                raise TabTuneInputError(f"backend_params sets {why}")
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
    def bin(
        self,
        params: BoosterParams,
        layout: Layout,
        data: Matrix,
        reference: Binned | Matrix | None = None,
    ) -> Binned:
        """A constructed ``lightgbm.Dataset`` of ``data``; see :meth:`Backend.bin`."""
        if isinstance(reference, Matrix):
            raise TypeError("the reference of a binned set must be binned")
        return binned(self.native_params(params), layout, data, reference)

    def train(
        self,
        params: BoosterParams,
        layout: Layout,
        train: Matrix | Binned,
        *,
        num_rounds: int,
        valid: Matrix | Binned | None = None,
        early_stopping_rounds: int | None = None,
        init_model: lgb.Booster | None = None,
    ) -> Trained:
        """Boost with ``lightgbm.train``; see :meth:`Backend.train`."""
        return train_booster(
            self.native_params(params),
            layout,
            train,
            num_rounds=num_rounds,
            valid=valid,
            early_stopping_rounds=early_stopping_rounds,
            init_model=init_model,
        )

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
        leaves = Leaves.parse(model_text)
        reached = reached_leaves(booster, data.X, leaves.max_leaves)
        work = lgb.Booster(model_str=model_text)  # throwaway copy: the base stays untouched
        work.params = self.native_params(params)
        # the starting score stays out of the decay (refit_start)
        start = first_tree_intercepts(booster)
        shift_first_trees(work, leaves, -start)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
            refitted = work.refit(
                data.X,
                data.y,
                decay_rate=decay_rate,
                weight=data.weight,
                init_score=refit_start(start, data.X.shape[0]),
                feature_name=list(layout.names),
                categorical_feature=list(layout.categorical),
                free_raw_data=False,
            )
        shift_first_trees(refitted, leaves, start)
        restore_unreached(refitted, leaves, reached)
        return self.from_bytes(refitted.model_to_string().encode("utf-8"))

    def session(
        self,
        base: lgb.Booster,
        layout: Layout,
        cache: MutableMapping[str, Any] | None = None,
        *,
        options: SessionOptions | None = None,
    ) -> Session:
        """A session that predicts the base once per set of rows (see
        :class:`~tabtune.boosting.lightgbm_session.LightGBMSession`)."""
        return LightGBMSession(self, base, layout, cache, options=options)

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
        """LightGBM's text model format, as a booster read from it writes it again.

        A booster that trained writes a constant tree (one leaf) slightly differently from the
        same tree read back from text (``leaf_weight=0`` vs ``leaf_weight=``); for such a
        model the text of its copy is returned, so that the bytes do not depend on whether
        the booster trained or was loaded. Other trees write the same text either way.
        """
        text = booster.model_to_string()
        if "\nnum_leaves=1\n" in text:
            text = lgb.Booster(model_str=text).model_to_string()
        return text.encode("utf-8")

    def from_bytes(self, data: bytes) -> lgb.Booster:
        """Load LightGBM's text model format."""
        return lgb.Booster(model_str=data.decode("utf-8"))

    @staticmethod
    def library_version() -> str:
        """``lightgbm.__version__``."""
        return str(lgb.__version__)
