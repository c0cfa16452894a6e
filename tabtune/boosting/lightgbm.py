"""LightGBM backend.

Inputs are float64 matrices whose categorical columns hold integer codes from the frozen
vocabulary (see :mod:`tabtune.boosting.encoding`), declared with ``categorical_feature`` by
position. LightGBM therefore never sees a pandas frame and never stores a
``pandas_categorical`` mapping that a brand's data could replace.
"""

from __future__ import annotations

import ctypes
import math
import re
import warnings
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _safe_call

from tabtune.boosting.base import (
    Backend,
    BoosterParams,
    Layout,
    LeafMemory,
    Matrix,
    Session,
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
_DERIVED = ("metric", "bagging_freq", "deterministic", "force_row_wise", "force_col_wise")
# Rows x trees of leaf indices predicted at once when counting rows per leaf.
_LEAF_BLOCK = 20_000_000
# Rows x trees of leaf indices a session keeps per set of rows (int32); beyond, it falls back
# to the plain backend methods.
_SESSION_LEAVES = 20_000_000
_LEAF_VALUES = re.compile(r"^leaf_value=(.*)$", re.MULTILINE)
# LightGBM treats |value| <= this as zero when predicting (kZeroThreshold).
_ZERO = 1e-35


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
        self,
        data: Matrix,
        layout: Layout,
        reference: lgb.Dataset | None = None,
        init_score: np.ndarray | None = None,
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
            init_score=init_score,
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
        return self._train(
            params,
            layout,
            train,
            num_rounds=num_rounds,
            valid=valid,
            early_stopping_rounds=early_stopping_rounds,
            init_model=init_model,
        )

    def _train(
        self,
        params: BoosterParams,
        layout: Layout,
        train: Matrix,
        *,
        num_rounds: int,
        valid: Matrix | None,
        early_stopping_rounds: int | None,
        init_model: lgb.Booster | None,
        init_scores: tuple[np.ndarray, np.ndarray | None] | None = None,
        keep_extra_rounds: bool = False,
    ) -> Trained:
        """:meth:`train`, optionally given ``init_model``'s raw scores on the rows.

        With ``init_scores`` (raw predictions of ``init_model`` on ``train`` and on ``valid``,
        bit for bit what LightGBM would compute) the Datasets start from those scores and
        ``init_model``'s trees are merged into the booster before its first round
        (:class:`_MergeFirst`). That is what ``lightgbm.train(init_model=...)`` does, except
        that it predicts ``init_model`` on the rows itself: the model (text included), the
        round counts and early stopping come out identical.

        With ``keep_extra_rounds``, for a booster that is only used to predict, the booster
        that trained is returned as is, rounds grown past the best one included, with its
        ``best_iteration`` (which ``predict`` uses) set to the kept count: the same
        predictions, without copying the model through its text.
        """
        native = self.native_params(params)
        base_rounds = 0 if init_model is None else init_model.current_iteration()
        merge_first = init_model is not None and init_scores is not None
        dtrain = self._dataset(train, layout, init_score=init_scores[0] if merge_first else None)
        valid_sets: list[lgb.Dataset] = []
        callbacks: list[Any] = []
        if merge_first:
            callbacks.append(_MergeFirst(init_model))
        if valid is not None and early_stopping_rounds is not None:
            valid_score = init_scores[1] if merge_first else None
            if merge_first and valid_score is None:
                raise ValueError("init_scores lack the raw scores of the validation rows")
            valid_sets.append(self._dataset(valid, layout, dtrain, init_score=valid_score))
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
                init_model=None if merge_first else init_model,
                keep_training_booster=True,
                callbacks=callbacks,
            )
        if merge_first and booster.best_iteration > 0:
            # lightgbm.train counted the rounds from 0, not from init_model's: count the best
            # iteration as it does with init_model, base rounds included.
            booster.best_iteration += base_rounds
        total = booster.current_iteration()
        if valid_sets and booster.best_iteration > 0:
            # best_iteration counts the base model's rounds too (LibraryNotes); keep at least
            # one new round so that "continue" always adds something.
            total = max(int(booster.best_iteration), base_rounds + 1)
        if keep_extra_rounds:
            booster.best_iteration = total if total < booster.current_iteration() else 0
        elif total < booster.current_iteration():
            booster = self.from_bytes(booster.model_to_string(num_iteration=total).encode("utf-8"))
        else:
            # All rounds kept: the booster that trained, not lightgbm.train's copy of it through
            # its text; to_bytes writes the text of such a copy (see to_bytes).
            booster.best_iteration = 0
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
        leaves = _Leaves.parse(model_text)
        reached = self._reached_leaves(booster, data.X, leaves.max_leaves)
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
        _restore_unreached(refitted, leaves, reached)
        return self.from_bytes(refitted.model_to_string().encode("utf-8"))

    def _refit_with_leaves(
        self,
        booster: lgb.Booster,
        params: BoosterParams,
        layout: Layout,
        data: Matrix,
        decay_rate: float,
        leaf_index: np.ndarray,
        leaves: _Leaves,
        by_tree: np.ndarray | None = None,
    ) -> tuple[lgb.Booster, _Leaves]:
        """:meth:`refit` given the rows' leaf indices in ``booster`` and its parsed leaves.

        ``leaf_index`` is ``(n, n_trees)`` as ``predict(pred_leaf=True)`` gives it;
        ``by_tree`` optionally the same, transposed and contiguous.

        ``Booster.refit`` predicts the leaf indices itself; this replays its steps (same
        Dataset, same parameters, ``LGBM_BoosterMerge`` + ``LGBM_BoosterRefit``) with the
        indices the caller already has. Returns the refitted booster (the one trained, its
        Dataset attached) and its leaves.
        """
        new_params = dict(self.native_params(params))
        cats = new_params.pop("categorical_feature", None)
        if cats is not None and list(cats) != list(layout.categorical):
            raise ValueError("categorical_feature in backend_params differs from the layout")
        new_params["linear_tree"] = False
        train_set = lgb.Dataset(
            data.X,
            label=data.y,
            weight=data.weight,
            feature_name=list(layout.names),
            categorical_feature=list(layout.categorical),
            params=new_params,
            free_raw_data=False,
        )
        new_params["refit_decay_rate"] = decay_rate
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
            refitted = lgb.Booster(new_params, train_set)
            _safe_call(_LIB.LGBM_BoosterMerge(refitted._handle, booster._handle))
            index = np.ascontiguousarray(leaf_index, dtype=np.int32)
            nrow, ncol = index.shape
            _safe_call(
                _LIB.LGBM_BoosterRefit(
                    refitted._handle,
                    index.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                    ctypes.c_int32(nrow),
                    ctypes.c_int32(ncol),
                )
            )
        if by_tree is None:
            by_tree = np.ascontiguousarray(leaf_index.T)
        reached = _reached_from_index(by_tree, leaves.max_leaves)
        # The refitted booster itself, not a copy through its text: the text would be the same
        # (a model reloaded from its text writes that text again), at the cost of writing it.
        return refitted, _restore_unreached(refitted, leaves, reached)

    def session(
        self, base: lgb.Booster, layout: Layout, cache: MutableMapping[str, Any] | None = None
    ) -> Session:
        """A session that predicts the base once per set of rows (see :class:`_Session`)."""
        return _Session(self, base, layout, cache)

    @staticmethod
    def _reached_leaves(booster: lgb.Booster, X: np.ndarray, width: int) -> np.ndarray:
        """Boolean ``(n_trees, width)``: which leaves at least one row of X reaches."""
        n_trees = booster.num_trees()
        reached = np.zeros((n_trees, width), dtype=bool)
        step = max(1, _LEAF_BLOCK // max(n_trees, 1))
        for start in range(0, X.shape[0], step):
            leaf = np.asarray(booster.predict(X[start : start + step], pred_leaf=True))
            leaf = leaf.reshape(leaf.shape[0], n_trees)
            reached |= _reached_from_index(np.ascontiguousarray(leaf.T), width)
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


# ----------------------------------------------------------------------------------------------
# sessions: the work adapt's candidates share
# ----------------------------------------------------------------------------------------------


class _MergeFirst:
    """``lightgbm.train`` callback: merges ``init_model``'s trees into the booster before its
    first round, as ``Booster`` does when created with ``init_model`` (``LGBM_BoosterMerge``
    right after ``LGBM_BoosterCreate``; no round has run in between). Training then sees the
    same model as with ``init_model`` (e.g. a first tree that cannot split is dropped, not
    kept as a constant tree, because the model already holds trees)."""

    before_iteration = True
    order = -1_000_000  # before any other callback

    def __init__(self, init_model: lgb.Booster) -> None:
        self.init_model = init_model
        self.merged = False

    def __call__(self, env: Any) -> None:
        if not self.merged:
            _safe_call(_LIB.LGBM_BoosterMerge(env.model._handle, self.init_model._handle))
            self.merged = True


@dataclass
class _Leaves:
    """Leaf values of a model's trees (``values[tree][leaf]``) and its objective line."""

    values: list[np.ndarray]
    objective: str

    @classmethod
    def parse(cls, text: str) -> _Leaves:
        """Leaves of the model text ``text`` (``Booster.model_to_string()``).

        LightGBM writes leaf values with 17 significant digits: they parse back to the
        booster's doubles exactly.
        """
        objective = re.search(r"^objective=(.*)$", text, re.MULTILINE)
        return cls(
            values=[
                np.array(line.split(" "), dtype=np.float64) for line in _LEAF_VALUES.findall(text)
            ],
            objective="" if objective is None else objective.group(1).strip(),
        )

    @property
    def max_leaves(self) -> int:
        """The largest number of leaves of a tree."""
        return max((len(v) for v in self.values), default=1)


@dataclass
class _Splits:
    """Where the base's trees split, feature by feature: which trees a change of a row's
    value of a feature can send down another path.

    A numerical split of tree ``t`` on feature ``j`` at threshold ``c`` sends a row left when
    its value is ``<= c`` (LightGBM's ``NumericalDecision``; thresholds are written with 17
    significant digits, so they parse back exactly). A value moving from ``a`` to ``b`` can
    therefore change the row's path only in trees with a threshold in ``[min, max)``, or with
    a categorical split on ``j``. Missing values and values LightGBM reads as zero take the
    split's default direction: a change from or to one is treated as affecting every tree
    that splits on the feature.
    """

    #: Per feature: sorted numerical thresholds and the tree of each.
    thresholds: list[tuple[np.ndarray, np.ndarray]]
    #: Per feature: the trees with any split on it, and those with a categorical split on it.
    any_split: list[np.ndarray]
    categorical: list[np.ndarray]
    n_trees: int

    @classmethod
    def parse(cls, blocks: list[str], n_features: int) -> _Splits | None:
        """From the tree blocks of a model's text; None when a block does not parse."""
        numeric: list[list[tuple[float, int]]] = [[] for _ in range(n_features)]
        any_split: list[set[int]] = [set() for _ in range(n_features)]
        categorical: list[set[int]] = [set() for _ in range(n_features)]
        for tree, block in enumerate(blocks):
            fields = dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)
            if int(fields.get("num_leaves", "1")) <= 1:
                continue
            try:
                features = [int(v) for v in fields["split_feature"].split()]
                thresholds = [float(v) for v in fields["threshold"].split()]
                kinds = [int(v) for v in fields["decision_type"].split()]
            except (KeyError, ValueError):
                return None
            if not len(features) == len(thresholds) == len(kinds):
                return None
            for feature, threshold, kind in zip(features, thresholds, kinds, strict=True):
                if not 0 <= feature < n_features:
                    return None
                any_split[feature].add(tree)
                if kind & 1:
                    categorical[feature].add(tree)
                else:
                    numeric[feature].append((threshold, tree))
        sorted_numeric = []
        for pairs in numeric:
            pairs.sort()
            sorted_numeric.append(
                (
                    np.array([c for c, _ in pairs], dtype=np.float64),
                    np.array([t for _, t in pairs], dtype=np.int64),
                )
            )
        return cls(
            sorted_numeric,
            [np.array(sorted(t), dtype=np.int64) for t in any_split],
            [np.array(sorted(t), dtype=np.int64) for t in categorical],
            len(blocks),
        )

    def changed(self, old: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows (of ``(n, n_features)`` ``old`` and ``new``) whose path may differ in some
        tree, and which trees (boolean ``(n_trees,)``) any of them may take another path in."""
        rows = np.zeros(len(old), dtype=bool)
        trees = np.zeros(self.n_trees, dtype=bool)
        differs = (old != new) & ~(np.isnan(old) & np.isnan(new))
        for feature in np.flatnonzero(differs.any(axis=0)).tolist():
            at = np.flatnonzero(differs[:, feature])
            a, b = old[at, feature], new[at, feature]
            special = np.isnan(a) | np.isnan(b) | (np.abs(a) <= _ZERO) | (np.abs(b) <= _ZERO)
            if self.any_split[feature].size and special.any():
                rows[at[special]] = True
                trees[self.any_split[feature]] = True
            if self.categorical[feature].size:
                rows[at] = True
                trees[self.categorical[feature]] = True
            values, owners = self.thresholds[feature]
            plain = ~special
            if not values.size or not plain.any():
                continue
            lo = np.searchsorted(values, np.minimum(a[plain], b[plain]), side="left")
            hi = np.searchsorted(values, np.maximum(a[plain], b[plain]), side="left")
            crossed = hi > lo
            if not crossed.any():
                continue
            rows[at[plain][crossed]] = True
            # Thresholds in any row's [lo, hi): a running count of open intervals.
            depth = np.zeros(len(values) + 1, dtype=np.int64)
            np.add.at(depth, lo[crossed], 1)
            np.add.at(depth, hi[crossed], -1)
            trees[owners[np.cumsum(depth[:-1]) > 0]] = True
        return rows, trees


def _leaf_dtype(max_leaves: int) -> type[np.unsignedinteger]:
    """The smallest unsigned integer type that holds leaf indices below ``max_leaves``."""
    if max_leaves <= 1 << 8:
        return np.uint8
    return np.uint16 if max_leaves <= 1 << 16 else np.uint32


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(start, length)`` of each run of True in a boolean vector."""
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a), int(b - a)) for a, b in zip(starts, stops, strict=True)]


def _reached_from_index(by_tree: np.ndarray, width: int) -> np.ndarray:
    """Boolean ``(n_trees, width)``: which leaves are reached, given ``(n_trees, n)`` indices."""
    n_trees = by_tree.shape[0]
    dtype = np.int32 if n_trees * width < 2**31 else np.int64
    flat = by_tree.astype(dtype, copy=False) + (np.arange(n_trees, dtype=dtype) * width)[:, None]
    reached = np.zeros(n_trees * width, dtype=bool)
    reached[flat.ravel()] = True
    return reached.reshape(n_trees, width)


def _restore_unreached(booster: lgb.Booster, old: _Leaves, reached: np.ndarray) -> _Leaves:
    """Give every leaf of ``booster`` that no row reaches its ``old`` value back (in place).

    What ``set_leaf_output(tree, leaf, old value)`` on each such leaf does, through the C API
    directly (the Python wrappers cost more per leaf than the refit). Returns the booster's
    leaves after that: the refitted values of reached leaves (read back), ``old`` elsewhere.
    """
    if len(old.values) != booster.num_trees():
        raise ValueError("the refitted model does not have the base's trees")
    handle = booster._handle
    get_value, set_value = _LIB.LGBM_BoosterGetLeafValue, _LIB.LGBM_BoosterSetLeafValue
    c_double = ctypes.c_double
    out = c_double(0.0)
    out_ref = ctypes.byref(out)
    failed = 0
    values: list[np.ndarray] = []
    for tree, before in enumerate(old.values):
        n_leaves = len(before)
        hit = np.zeros(n_leaves, dtype=bool)
        width = min(n_leaves, reached.shape[1])
        hit[:width] = reached[tree, :width]
        after = before.copy()
        for leaf in np.flatnonzero(hit).tolist():
            failed |= get_value(handle, tree, leaf, out_ref)
            after[leaf] = out.value
        for leaf in np.flatnonzero(~hit).tolist():
            failed |= set_value(handle, tree, leaf, c_double(before[leaf]))
        values.append(after)
    if failed:
        _safe_call(failed)  # raises LightGBM's last error
    return _Leaves(values, old.objective)


def _tree_section(text: str) -> tuple[str, list[str], str] | None:
    """Split LightGBM model text into (header up to ``tree_sizes=``, tree blocks, tail from
    ``end of trees``); None when the text is not laid out as expected."""
    head, found, rest = text.partition("\ntree_sizes=")
    if not found:
        return None
    sizes_line, _, body = rest.partition("\n")
    if not body.startswith("\n"):
        return None
    body = body[1:]
    blocks, pos = [], 0
    for index, size in enumerate(int(v) for v in sizes_line.split()):
        block = body[pos : pos + size]
        if not block.startswith(f"Tree={index}\n"):
            return None
        blocks.append(block)
        pos += size
    tail = body[pos:]
    return (head, blocks, tail) if tail.startswith("end of trees") else None


def _tree_blocks(text: str) -> list[str] | None:
    """The tree blocks (``Tree=i`` ... up to the next) of a model's text."""
    section = _tree_section(text)
    return None if section is None else section[1]


def _splice(shell: str, base_blocks: list[str], values: list[np.ndarray] | None) -> str | None:
    """The text of a model made of the base's trees (leaf values ``values`` if given) and
    the new trees of ``shell``: its own text written from the base's trees on
    (``model_to_string(start_iteration=base rounds)``: header, new trees, feature
    importances and parameters of the model). None when that cannot be done exactly."""
    section = _tree_section(shell)
    if section is None:
        return None
    head, new, tail = section
    if values is not None and len(values) != len(base_blocks):
        return None
    blocks: list[str] = []
    for index, block in enumerate(base_blocks):
        if values is not None:
            before, found, rest = block.partition("\nleaf_value=")
            if not found:
                return None
            line = " ".join(format(float(v), ".17g") for v in values[index])
            block = before + found + line + rest[rest.index("\n") :]
        blocks.append(block)
    offset = len(base_blocks)
    for index, block in enumerate(new):
        if "\nnum_leaves=1\n" in block:
            return None  # a constant tree that trained is written unlike a loaded one
        blocks.append(f"Tree={offset + index}\n" + block[len(f"Tree={index}\n") :])
    sizes = " ".join(str(len(block.encode("utf-8"))) for block in blocks)
    return head + "\ntree_sizes=" + sizes + "\n\n" + "".join(blocks) + tail


def _response(objective: str) -> Callable[[np.ndarray], np.ndarray] | None:
    """Raw score -> prediction, bit for bit as LightGBM converts it, for known objectives.

    ``math.exp`` is the C library's ``exp``, which LightGBM's ``std::exp`` also calls (NumPy's
    vectorised exp may differ in the last bit). None for an objective not handled here.
    """
    name, *options = objective.split(" ")
    if name in ("regression", "regression_l1") and "sqrt" not in options:
        return lambda raw: raw
    if name in ("poisson", "tweedie", "gamma"):
        return lambda raw: np.fromiter(map(math.exp, raw.tolist()), np.float64, len(raw))
    if name == "binary":
        sigmoid = 1.0
        for option in options:
            if option.startswith("sigmoid:"):
                sigmoid = float(option.split(":", 1)[1])
        return lambda raw: np.fromiter(
            (1.0 / (1.0 + math.exp(-sigmoid * v)) for v in raw.tolist()), np.float64, len(raw)
        )
    return None


class _Session(Session):
    """LightGBM session: predicts the base ONCE per set of rows, as leaf indices.

    From the rows' leaf indices in the base it derives, without predicting again: the rows
    each leaf receives (for ``refit``), the input ``Booster.refit`` needs, and the raw scores
    of the base and of any refit of it (same trees, other leaf values) by summing leaf values
    tree by tree in LightGBM's order (bit for bit its ``predict(raw_score=True)``). Continued
    training then starts from those scores (:meth:`LightGBMBackend._train`) instead of
    predicting its ``init_model`` again, and holdout predictions of the base or a refit are
    those scores converted to the response scale. The base is serialised at most once per
    base model (kept in the session cache). Linear trees and very large row sets fall back to
    the plain backend methods.
    """

    backend: LightGBMBackend

    def __init__(
        self,
        backend: LightGBMBackend,
        base: lgb.Booster,
        layout: Layout,
        cache: MutableMapping[str, Any] | None = None,
    ) -> None:
        super().__init__(backend, base, layout, cache)
        # Per set of rows: leaf indices (n, n_trees) and the same by tree (n_trees, n).
        self._index: list[tuple[Matrix, tuple[np.ndarray, np.ndarray] | None]] = []
        self._leaves: list[tuple[lgb.Booster, _Leaves]] = []
        self._raw: list[tuple[lgb.Booster, Matrix, np.ndarray]] = []
        # Boosters trained on from the base or a refit of it: (booster, the model it continued).
        self._continued: list[tuple[lgb.Booster, lgb.Booster]] = []

    # -- what the session knows ------------------------------------------------------------
    def _base_text(self) -> str:
        """The base's model text, written once per base model."""
        return self.derived("lightgbm.text", lambda base: base.model_to_string(num_iteration=-1))

    def _base_leaves(self) -> _Leaves | None:
        def parse(booster: lgb.Booster) -> _Leaves | None:
            text = self._base_text()
            if re.search(r"^is_linear=1$", text, re.MULTILINE):
                return None  # linear trees: a leaf's output is not one number
            leaves = _Leaves.parse(text)
            return leaves if len(leaves.values) == booster.num_trees() else None

        leaves = self.derived("lightgbm.leaves", parse)
        if leaves is not None and not self._leaves:
            self._leaves.append((self.base, leaves))
        return leaves

    def _leaves_of(self, booster: Any) -> _Leaves | None:
        if self._base_leaves() is None:
            return None
        for known, leaves in self._leaves:
            if known is booster:
                return leaves
        return None

    def _leaf_index(self, data: Matrix) -> tuple[np.ndarray, np.ndarray] | None:
        """Leaf index of each row in each tree of the base: ``(n, n_trees)`` and transposed
        ``(n_trees, n)``; None when that is too big to keep."""
        for rows, index in self._index:
            if rows is data:
                return index
        index = None
        n, n_trees = data.X.shape[0], self.base.num_trees()
        if self._base_leaves() is not None and n * n_trees <= _SESSION_LEAVES:
            by_row = self._recalled(data)
            if by_row is None:
                by_row = self._predict_leaves(data.X)
            index = (by_row, np.ascontiguousarray(by_row.T))
        self._index.append((data, index))
        return index

    def _predict_leaves(
        self, X: np.ndarray, start: int = 0, n_iterations: int | None = None
    ) -> np.ndarray:
        """Leaf indices ``(n, trees)`` of rows ``X`` in the base's trees (those of
        ``n_iterations`` iterations from ``start``; default all)."""
        per_iteration = max(1, self.base.num_model_per_iteration())
        if n_iterations is None:
            n_iterations = self.base.current_iteration() - start
        # Row-major rows: LightGBM predicts leaf indices faster from them.
        out = self.base.predict(
            np.ascontiguousarray(X),
            pred_leaf=True,
            start_iteration=start,
            num_iteration=n_iterations,
            **self._threads(),
        )
        return np.asarray(out, dtype=np.int32).reshape(len(X), n_iterations * per_iteration)

    def _recalled(self, data: Matrix) -> np.ndarray | None:
        """Leaf indices of ``data``'s rows, taken from :attr:`memory` for the rows it holds
        whose features cannot have changed their path (see :class:`_Splits`), predicted for
        the others (in the trees where their path may differ); None without a usable
        memory. The same indices as predicting every row: rows are matched by their time
        position (:attr:`Matrix.rows`) and their remembered features compared."""
        memory, positions = self.memory, data.time_positions()
        n_trees = self.base.num_trees()
        if memory is None or positions is None or len(positions) != len(data):
            return None
        if memory.X.shape[1] != data.X.shape[1] or memory.leaves.shape[1] != n_trees:
            return None
        splits = self.derived(
            "lightgbm.splits",
            lambda _: _Splits.parse(_tree_blocks(self._base_text()) or [], len(self.layout.names)),
        )
        if splits is None or splits.n_trees != n_trees:
            return None
        known = np.flatnonzero((positions >= 0) & (positions < len(memory.X)))
        if not known.size:
            return None
        old_rows = positions[known]
        dirty, trees = splits.changed(memory.X[old_rows], data.X[known])
        by_row = np.empty((len(data), n_trees), dtype=np.int32)
        by_row[known] = memory.leaves[old_rows]
        fresh = np.ones(len(data), dtype=bool)
        fresh[known] = False
        per_iteration = max(1, self.base.num_model_per_iteration())
        iterations = trees.reshape(-1, per_iteration).any(axis=1)
        runs = _runs(iterations)
        # A call costs about its trees plus a couple of trees' worth of reading the rows.
        if 2 * (iterations.sum() + 2 * len(runs)) > len(iterations):
            fresh[known[dirty]] = True  # predict those rows whole
        elif dirty.any():
            redo = known[dirty]
            for start, length in runs:
                columns = slice(start * per_iteration, (start + length) * per_iteration)
                by_row[redo, columns] = self._predict_leaves(data.X[redo], start, length)
        if fresh.any():
            by_row[fresh] = self._predict_leaves(data.X[fresh])
        return by_row

    def remembered(self, data: Matrix) -> LeafMemory | None:
        index = next((index for rows, index in self._index if rows is data), None)
        positions = data.time_positions()
        if index is None or positions is None:
            return None
        leaves = self._base_leaves()
        order = np.argsort(positions, kind="stable")
        if leaves is None or not np.array_equal(positions[order], np.arange(len(data))):
            return None  # not all the rows of a fit
        return LeafMemory(
            X=np.ascontiguousarray(data.X[order], dtype=np.float64),
            leaves=index[0][order].astype(_leaf_dtype(leaves.max_leaves)),
        )

    def _raw_scores(self, booster: Any, data: Matrix | None) -> np.ndarray | None:
        """Raw scores of the base or a refit on ``data``, bit for bit ``predict(raw_score=True)``
        (None for another booster).

        From the rows' leaf indices when the session has them (or will need them for a
        refit): the leaf values summed tree by tree, in LightGBM's order. Otherwise predicted.
        """
        if data is None:
            return None
        for known, rows, raw in self._raw:
            if known is booster and rows is data:
                return raw
        leaves = self._leaves_of(booster)
        if leaves is None:
            return None
        index = next((index for rows, index in self._index if rows is data), None)
        if index is None and (self.refits_expected or self.remember or self.memory is not None):
            # Leaf indices serve refits, can be remembered, and come cheap from a memory.
            index = self._leaf_index(data)
        if index is None:
            raw = np.asarray(
                booster.predict(data.X, raw_score=True, num_iteration=-1, **self._threads())
            )
        else:
            per_iteration = max(1, self.base.num_model_per_iteration())
            columns = index[1]
            out = np.zeros((per_iteration, columns.shape[1]))
            for tree, values in enumerate(leaves.values):
                # One tree at a time, in order: LightGBM's own summation order.
                out[tree % per_iteration] += values[columns[tree]]
            raw = out[0] if per_iteration == 1 else out.T
        self._raw.append((booster, data, raw))
        return raw

    @staticmethod
    def _fast(params: BoosterParams) -> bool:
        """False when ``backend_params`` could make the shortcuts differ from LightGBM's own
        paths (linear trees, categorical or prediction settings): then use those paths."""
        words = ("linear", "categorical", "pred", "iteration", "boost")
        return not any(word in key for key in params.extra for word in words)

    # -- the session's methods -----------------------------------------------------------
    def _refit(self, params: BoosterParams, data: Matrix, decay_rate: float) -> Any:
        leaves = self._base_leaves()
        index = self._leaf_index(data) if self._fast(params) else None
        if leaves is None or index is None:
            return super()._refit(params, data, decay_rate)
        booster, refitted = self.backend._refit_with_leaves(
            self.base, params, self.layout, data, decay_rate, index[0], leaves, index[1]
        )
        self._leaves.append((booster, refitted))
        return booster

    def train(
        self,
        params: BoosterParams,
        train: Matrix,
        *,
        num_rounds: int,
        valid: Matrix | None = None,
        early_stopping_rounds: int | None = None,
        init_model: Any = None,
        scoring_only: bool = False,
    ) -> Trained:
        init_scores = None
        if init_model is not None and self._fast(params):
            on_train = self._raw_scores(init_model, train)
            on_valid = None
            if valid is not None and early_stopping_rounds is not None:
                on_valid = self._raw_scores(init_model, valid)
                if on_valid is None:
                    on_train = None
            if on_train is not None:
                init_scores = (on_train, on_valid)
        trained = self.backend._train(
            params,
            self.layout,
            train,
            num_rounds=num_rounds,
            valid=valid,
            early_stopping_rounds=early_stopping_rounds,
            init_model=init_model,
            init_scores=init_scores,
            keep_extra_rounds=scoring_only,
        )
        if init_scores is not None:
            self._continued.append((trained.booster, init_model))
        return trained

    def to_bytes(self, booster: Any) -> bytes:
        """:meth:`LightGBMBackend.to_bytes` of the base, a refit of it, or a booster that
        continued one of them, with the trees it shares with the base copied from the base's
        text (leaf values of a refit rewritten) instead of written again: the same bytes at a
        fraction of the cost for a model of 500 base trees and a few new ones."""
        init = next((init for known, init in self._continued if known is booster), None)
        trees_of = booster if init is None else init
        values = None
        if trees_of is not self.base:
            refitted = self._leaves_of(trees_of)
            if refitted is None:
                return self.backend.to_bytes(booster)
            values = refitted.values
        blocks = self.derived("lightgbm.tree_blocks", lambda _: _tree_blocks(self._base_text()))
        shell = booster.model_to_string(
            num_iteration=-1, start_iteration=self.base.current_iteration()
        )
        spliced = None if blocks is None else _splice(shell, blocks, values)
        return self.backend.to_bytes(booster) if spliced is None else spliced.encode("utf-8")

    def at_rounds(self, booster: Any, n_rounds: int) -> Any | None:
        # A scoring-only booster keeps every round it grew (keep_extra_rounds) and predicts
        # with its best_iteration: point that at the rounds wanted.
        if self._leaves_of(booster) is not None or not isinstance(booster, lgb.Booster):
            return None  # the base or a refit of it: not a booster of train
        grown = booster.current_iteration()
        if not 1 <= n_rounds <= grown:
            return None
        booster.best_iteration = n_rounds if n_rounds < grown else 0
        return booster

    def _continued_prediction(self, booster: lgb.Booster, data: Matrix) -> np.ndarray | None:
        """Predictions of a scoring-only booster that continued the base or a refit: the raw
        scores of the model it continued (known to the session) plus its new trees, added
        tree by tree in LightGBM's order (bit for bit its prediction), so that the base's
        trees are not predicted again. None for another booster."""
        init = next((init for known, init in self._continued if known is booster), None)
        init_leaves = None if init is None else self._leaves_of(init)
        if init_leaves is None or self.base.num_model_per_iteration() != 1:
            return None
        start = init.current_iteration()
        stop = booster.best_iteration if booster.best_iteration > 0 else None
        n_new = (booster.current_iteration() if stop is None else stop) - start
        raw = self._raw_scores(init, data)
        if raw is None:
            return None
        objective = init_leaves.objective
        if n_new >= 1:
            text = booster.model_to_string(num_iteration=n_new, start_iteration=start)
            new = _Leaves.parse(text)
            objective = new.objective
            index = np.asarray(
                booster.predict(
                    data.X,
                    pred_leaf=True,
                    start_iteration=start,
                    num_iteration=n_new,
                    **self._threads(),
                )
            ).reshape(len(raw), n_new)
            raw = raw.copy()
            for tree, values in enumerate(new.values):
                raw += values[index[:, tree]]
        response = _response(objective)
        return None if response is None else response(raw)

    def predict(self, booster: Any, data: Matrix) -> np.ndarray:
        leaves = self._leaves_of(booster)
        if leaves is None:
            continued = self._continued_prediction(booster, data)
            if continued is not None:
                return continued
        response = None if leaves is None else _response(leaves.objective)
        raw = None if response is None else self._raw_scores(booster, data)
        if raw is None or response is None:
            return np.asarray(booster.predict(data.X, **self._threads()))
        return response(raw)

    def _threads(self) -> dict[str, int]:
        return {} if not self.n_threads else {"num_threads": int(self.n_threads)}
