"""The LightGBM session: the work that the fits of one adaptation share.

:func:`tabtune.transfer.adapt` refits and continues one base model on the same rows several
times; :class:`LightGBMSession` predicts the base on those rows once, as leaf indices, and
derives from them what each fit needs (see its docstring). The model text it reads and
writes is handled by :mod:`tabtune.boosting.lightgbm_text`, the boosters by
:mod:`tabtune.boosting.lightgbm_booster`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, MutableMapping
from typing import Any

import lightgbm as lgb
import numpy as np

from tabtune.boosting.base import (
    Backend,
    BoosterParams,
    Layout,
    LeafMemory,
    Matrix,
    Session,
    SessionOptions,
    Trained,
)
from tabtune.boosting.lightgbm_booster import (
    first_tree_intercepts,
    refit_with_leaves,
    train_booster,
)
from tabtune.boosting.lightgbm_text import Leaves, Splits, splice, tree_blocks

__all__ = ["LightGBMSession"]

# Rows x trees of leaf indices a session keeps per set of rows (int32); beyond, it falls back
# to the plain backend methods.
_SESSION_LEAVES = 20_000_000
# Rows of a leaf memory predicted again to cross-check it against the base (see _trusted).
_SPOT_CHECK_ROWS = 8
# A leaf memory comes from tabtune.leaf_cache: its warnings go under that name.
_cache_logger = logging.getLogger("tabtune.leaf_cache")


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


class LightGBMSession(Session):
    """LightGBM session: predicts the base ONCE per set of rows, as leaf indices.

    From the rows' leaf indices in the base it derives, without predicting again: the rows
    each leaf receives (for ``refit``), the input ``Booster.refit`` needs, and the raw scores
    of the base and of any refit of it (same trees, other leaf values) by summing leaf values
    tree by tree in LightGBM's order (bit for bit its ``predict(raw_score=True)``). Continued
    training then starts from those scores
    (:func:`~tabtune.boosting.lightgbm_booster.train_booster`) instead of predicting its
    ``init_model`` again, and holdout predictions of the base or a refit are those scores
    converted to the response scale. The base is serialised at most once per base model (kept
    in the session cache). Linear trees and very large row sets fall back to the plain backend
    methods.
    """

    def __init__(
        self,
        backend: Backend,
        base: lgb.Booster,
        layout: Layout,
        cache: MutableMapping[str, Any] | None = None,
        *,
        options: SessionOptions | None = None,
    ) -> None:
        super().__init__(backend, base, layout, cache, options=options)
        # Per set of rows: leaf indices (n, n_trees) and the same by tree (n_trees, n).
        self._index: list[tuple[Matrix, tuple[np.ndarray, np.ndarray] | None]] = []
        self._leaves: list[tuple[lgb.Booster, Leaves]] = []
        self._raw: list[tuple[lgb.Booster, Matrix, np.ndarray]] = []
        # Boosters trained on from the base or a refit of it: (booster, the model it continued).
        self._continued: list[tuple[lgb.Booster, lgb.Booster]] = []

    # -- what the session knows ------------------------------------------------------------
    def _base_text(self) -> str:
        """The base's model text, written once per base model."""
        return self.derived("lightgbm.text", lambda base: base.model_to_string(num_iteration=-1))

    def _base_leaves(self) -> Leaves | None:
        def parse(booster: lgb.Booster) -> Leaves | None:
            text = self._base_text()
            if re.search(r"^is_linear=1$", text, re.MULTILINE):
                return None  # linear trees: a leaf's output is not one number
            leaves = Leaves.parse(text)
            return leaves if len(leaves.values) == booster.num_trees() else None

        leaves = self.derived("lightgbm.leaves", parse)
        if leaves is not None and not self._leaves:
            self._leaves.append((self.base, leaves))
        return leaves

    def _leaves_of(self, booster: Any) -> Leaves | None:
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
        whose features cannot have changed their path (see :class:`Splits`), predicted for
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
            lambda _: Splits.parse(tree_blocks(self._base_text()) or [], len(self.layout.names)),
        )
        if splits is None or splits.n_trees != n_trees:
            return None
        known = np.flatnonzero((positions >= 0) & (positions < len(memory.X)))
        if not known.size:
            return None
        old_rows = positions[known]
        dirty, trees = splits.changed(memory.X[old_rows], data.X[known])
        if not self._trusted(memory.leaves[old_rows], data.X[known], dirty):
            return None
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

    def _trusted(self, remembered: np.ndarray, X: np.ndarray, dirty: np.ndarray) -> bool:
        """Cross-check remembered leaf indices (of rows ``X``) against the base: in range for
        every tree, and equal to a fresh prediction on a few rows whose features did not change
        (not ``dirty``). A memory that fails is ignored with a warning (predicted instead)."""
        leaves = self._base_leaves()
        if leaves is None:
            return False
        counts = np.array([len(v) for v in leaves.values], dtype=np.int64)
        if remembered.size and bool((remembered.max(axis=0).astype(np.int64) >= counts).any()):
            _cache_logger.warning(
                "leaf cache ignored: remembered leaf indices are out of range for the base "
                "model's trees; predicting them again"
            )
            return False
        clean = np.flatnonzero(~np.asarray(dirty, dtype=bool))
        if clean.size:
            picks = np.linspace(0, clean.size - 1, min(_SPOT_CHECK_ROWS, clean.size))
            sample = clean[np.unique(picks.astype(np.int64))]
            if not np.array_equal(self._predict_leaves(X[sample]), remembered[sample]):
                _cache_logger.warning(
                    "leaf cache ignored: remembered leaf indices disagree with the base model "
                    "on sampled rows; predicting them again"
                )
                return False
        return True

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
        native = self.backend.native_params(params)
        intercepts = self.derived("lightgbm.intercepts", first_tree_intercepts)
        booster, refitted = refit_with_leaves(
            self.base,
            native,
            self.layout,
            data,
            decay_rate,
            index[0],
            leaves,
            index[1],
            intercepts=intercepts,
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
        trained = train_booster(
            self.backend.native_params(params),
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
        """:meth:`LightGBMBackend.to_bytes <tabtune.boosting.lightgbm.LightGBMBackend.to_bytes>`
        of the base, a refit of it, or a booster that continued one of them, with the trees it
        shares with the base copied from the base's text (leaf values of a refit rewritten)
        instead of written again: the same bytes at a fraction of the cost for a model of 500
        base trees and a few new ones."""
        init = next((init for known, init in self._continued if known is booster), None)
        trees_of = booster if init is None else init
        values = None
        if trees_of is not self.base:
            refitted = self._leaves_of(trees_of)
            if refitted is None:
                return self.backend.to_bytes(booster)
            values = refitted.values
        blocks = self.derived("lightgbm.tree_blocks", lambda _: tree_blocks(self._base_text()))
        shell = booster.model_to_string(
            num_iteration=-1, start_iteration=self.base.current_iteration()
        )
        spliced = None if blocks is None else splice(shell, blocks, values)
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
        if init is None or init_leaves is None or self.base.num_model_per_iteration() != 1:
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
            new = Leaves.parse(text)
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

    def _threads(self) -> dict[str, Any]:
        return {} if not self.n_threads else {"num_threads": int(self.n_threads)}
