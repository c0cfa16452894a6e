"""LightGBM boosters at the level of its C API: training, refits and leaf values.

What :class:`~tabtune.boosting.lightgbm.LightGBMBackend` and its session
(:mod:`tabtune.boosting.lightgbm_session`) both do to a booster, given LightGBM's native
parameters: boosting (:func:`train_booster`, optionally from raw scores the caller already
has), refitting from leaf indices the caller already has (:func:`refit_with_leaves`), and
giving the leaves no row reaches their old values back (:func:`restore_unreached`).
"""

from __future__ import annotations

import ctypes
import warnings
from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import numpy as np
from lightgbm.basic import _LIB, _safe_call

from tabtune.boosting.base import Binned, Layout, Matrix, Trained
from tabtune.boosting.lightgbm_text import Leaves

__all__ = [
    "MergeFirst",
    "binned",
    "dataset",
    "first_tree_intercepts",
    "reached_from_index",
    "reached_leaves",
    "refit_start",
    "refit_with_leaves",
    "restore_unreached",
    "shift_first_trees",
    "train_booster",
]

# Rows x trees of leaf indices predicted at once when counting rows per leaf.
_LEAF_BLOCK = 20_000_000


def dataset(
    data: Matrix,
    layout: Layout,
    reference: lgb.Dataset | None = None,
    init_score: np.ndarray | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    free_raw_data: bool = False,
) -> lgb.Dataset:
    """A LightGBM Dataset of ``data``'s rows, its columns named and typed by ``layout``.

    By default it keeps its rows (``free_raw_data=False``): continued training computes init
    scores from them.
    """
    return lgb.Dataset(
        data.X,
        label=data.y,
        weight=data.weight,
        feature_name=list(layout.names),
        categorical_feature=list(layout.categorical),
        reference=reference,
        free_raw_data=free_raw_data,
        init_score=init_score,
        params=None if params is None else dict(params),
    )


def binned(
    native: Mapping[str, Any],
    layout: Layout,
    data: Matrix,
    reference: Binned | None = None,
) -> Binned:
    """``data`` constructed now into the Dataset ``lightgbm.train(native, ...)`` would build
    from it (the same parameters, names and categorical columns: the same bins), holding
    no reference to ``data.X`` once built (``free_raw_data``)."""
    built = dataset(
        data,
        layout,
        None if reference is None else reference.handle,
        params=native,
        free_raw_data=True,
    ).construct()
    return Binned(built, len(data))


class MergeFirst:
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


def train_booster(
    native: Mapping[str, Any],
    layout: Layout,
    train: Matrix | Binned,
    *,
    num_rounds: int,
    valid: Matrix | Binned | None,
    early_stopping_rounds: int | None,
    init_model: lgb.Booster | None,
    init_scores: tuple[np.ndarray, np.ndarray | None] | None = None,
    keep_extra_rounds: bool = False,
) -> Trained:
    """:meth:`LightGBMBackend.train <tabtune.boosting.lightgbm.LightGBMBackend.train>` with
    the native parameters ``native``, optionally given ``init_model``'s raw scores on the rows.

    With ``init_scores`` (raw predictions of ``init_model`` on ``train`` and on ``valid``, bit
    for bit what LightGBM would compute) the Datasets start from those scores and
    ``init_model``'s trees are merged into the booster before its first round
    (:class:`MergeFirst`). That is what ``lightgbm.train(init_model=...)`` does, except that
    it predicts ``init_model`` on the rows itself: the model (text included), the round counts
    and early stopping come out identical.

    With ``keep_extra_rounds``, for a booster that is only used to predict, the booster that
    trained is returned as is, rounds grown past the best one included, with its
    ``best_iteration`` (which ``predict`` uses) set to the kept count: the same predictions,
    without copying the model through its text.
    """
    base_rounds = 0 if init_model is None else init_model.current_iteration()
    # init_model's raw scores on the rows, when its trees are merged in before the first round
    merge_scores = init_scores if init_model is not None else None
    merge_first = merge_scores is not None
    dtrain, dvalid = _datasets(
        layout, train, valid if early_stopping_rounds is not None else None, merge_scores
    )
    valid_sets: list[lgb.Dataset] = []
    callbacks: list[Any] = []
    if init_model is not None and merge_scores is not None:
        callbacks.append(MergeFirst(init_model))
    if dvalid is not None and early_stopping_rounds is not None:
        valid_sets.append(dvalid)
        callbacks.append(
            lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False)
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
        booster = lgb.train(
            dict(native),
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
        # one new round so that "continue" always adds something, unless LightGBM grew none
        # (its first new round found no split): never count rounds the booster does not hold.
        total = min(max(int(booster.best_iteration), base_rounds + 1), total)
    if keep_extra_rounds:
        booster.best_iteration = total if total < booster.current_iteration() else 0
    elif total < booster.current_iteration():
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=total))
    else:
        # All rounds kept: the booster that trained, not lightgbm.train's copy of it through
        # its text; to_bytes writes the text of such a copy (see LightGBMBackend.to_bytes).
        booster.best_iteration = 0
    return Trained(booster=booster, n_rounds=total, n_new_rounds=total - base_rounds)


def _datasets(
    layout: Layout,
    train: Matrix | Binned,
    valid: Matrix | Binned | None,
    merge_scores: tuple[np.ndarray, np.ndarray | None] | None,
) -> tuple[lgb.Dataset, lgb.Dataset | None]:
    """The training and validation Datasets of ``train_booster``: built here from rows
    (starting from ``merge_scores``, the raw scores of a model merged in), or already built."""
    if merge_scores is not None and (isinstance(train, Binned) or isinstance(valid, Binned)):
        raise ValueError("init_scores need the rows, not a Binned set")
    if isinstance(train, Binned):
        dtrain = train.handle
    else:
        dtrain = dataset(
            train, layout, init_score=None if merge_scores is None else merge_scores[0]
        )
    if valid is None:
        return dtrain, None
    if isinstance(valid, Binned):
        return dtrain, valid.handle
    valid_score = None if merge_scores is None else merge_scores[1]
    if merge_scores is not None and valid_score is None:
        raise ValueError("init_scores lack the raw scores of the validation rows")
    return dtrain, dataset(valid, layout, dtrain, init_score=valid_score)


def refit_with_leaves(
    booster: lgb.Booster,
    native: Mapping[str, Any],
    layout: Layout,
    data: Matrix,
    decay_rate: float,
    leaf_index: np.ndarray,
    leaves: Leaves,
    by_tree: np.ndarray | None = None,
    intercepts: np.ndarray | None = None,
) -> tuple[lgb.Booster, Leaves]:
    """:meth:`LightGBMBackend.refit <tabtune.boosting.lightgbm.LightGBMBackend.refit>` with
    the native parameters ``native``, given the rows' leaf indices in ``booster`` and its
    parsed leaves.

    ``leaf_index`` is ``(n, n_trees)`` as ``predict(pred_leaf=True)`` gives it; ``by_tree``
    optionally the same, transposed and contiguous.

    ``Booster.refit`` predicts the leaf indices itself; this replays its steps (same Dataset,
    same parameters, ``LGBM_BoosterMerge`` + ``LGBM_BoosterRefit``) with the indices the
    caller already has. Returns the refitted booster (the one trained, its Dataset attached)
    and its leaves.

    ``intercepts``: the starting score of each class's first tree
    (:func:`first_tree_intercepts`), kept out of the refit's decay (:func:`refit_start`).
    """
    new_params = dict(native)
    cats = new_params.pop("categorical_feature", None)
    if cats is not None and list(cats) != list(layout.categorical):
        raise ValueError("categorical_feature in backend_params differs from the layout")
    new_params["linear_tree"] = False
    start = np.zeros(1) if intercepts is None else np.asarray(intercepts, dtype=float)
    train_set = dataset(
        data, layout, init_score=refit_start(start, data.X.shape[0]), params=new_params
    )
    new_params["refit_decay_rate"] = decay_rate
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
        refitted = lgb.Booster(new_params, train_set)
        _safe_call(_LIB.LGBM_BoosterMerge(refitted._handle, booster._handle))
        shift_first_trees(refitted, leaves, -start)
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
    shift_first_trees(refitted, leaves, start)
    if by_tree is None:
        by_tree = np.ascontiguousarray(leaf_index.T)
    reached = reached_from_index(by_tree, leaves.max_leaves)
    # The refitted booster itself, not a copy through its text: the text would be the same
    # (a model reloaded from its text writes that text again), at the cost of writing it.
    return refitted, restore_unreached(refitted, leaves, reached)


def first_tree_intercepts(booster: lgb.Booster) -> np.ndarray:
    """The starting score each class's first tree carries: its root's value.

    LightGBM adds the starting score (``boost_from_average``: the log of the mean for a log
    link) to every leaf of the first tree of each class (and sets that tree's shrinkage to
    1). The root's value is that score plus the tree's own, near zero, output at the root:
    what a refit keeps out of its decay (:func:`refit_start`). Read from the model's dump of
    its first iteration (the model text writes internal values to 6 digits only).
    """
    trees = booster.dump_model(num_iteration=1)["tree_info"]
    roots = [t["tree_structure"] for t in trees[: max(1, booster.num_model_per_iteration())]]
    return np.array([float(r.get("internal_value", r.get("leaf_value", 0.0))) for r in roots])


def refit_start(intercepts: np.ndarray, n_rows: int) -> np.ndarray | None:
    """The init scores a refit starts from: each class's first-tree intercept on every row
    (None when they are all zero).

    LightGBM's refit recomputes every leaf from the scores of the trees before it, starting
    at zero, and blends it with the old value by ``decay_rate``; the first tree's leaves hold
    the model's starting score (``boost_from_average``), so that score was decayed too, and a
    log-link model refitted on its own rows predicted far lower (a 60-tree Tweedie model:
    199 -> 129, mean 204). Taken out of the first tree's leaves (:func:`shift_first_trees`)
    and given as the rows' init score instead, the refit starts where the model started, as
    its training did, and the intercept is added back afterwards untouched by the decay.
    """
    if not np.any(intercepts):
        return None
    if len(intercepts) == 1:
        return np.full(n_rows, float(intercepts[0]))
    return np.tile(np.asarray(intercepts, dtype=float), (n_rows, 1))


def shift_first_trees(booster: lgb.Booster, leaves: Leaves, delta: np.ndarray) -> None:
    """Add ``delta[k]`` to every leaf of tree ``k`` of ``booster`` (the first iteration's
    trees; in place, through the C API as :func:`restore_unreached`). ``leaves`` gives each
    tree's leaf count."""
    if not np.any(delta):
        return
    handle, out = booster._handle, ctypes.c_double(0.0)
    failed = 0
    for tree, shift in enumerate(np.asarray(delta, dtype=float).tolist()):
        for leaf in range(len(leaves.values[tree])):
            failed |= _LIB.LGBM_BoosterGetLeafValue(handle, tree, leaf, ctypes.byref(out))
            failed |= _LIB.LGBM_BoosterSetLeafValue(
                handle, tree, leaf, ctypes.c_double(out.value + shift)
            )
    if failed:
        _safe_call(failed)


def reached_leaves(booster: lgb.Booster, X: np.ndarray, width: int) -> np.ndarray:
    """Boolean ``(n_trees, width)``: which leaves at least one row of X reaches."""
    n_trees = booster.num_trees()
    reached = np.zeros((n_trees, width), dtype=bool)
    step = max(1, _LEAF_BLOCK // max(n_trees, 1))
    for start in range(0, X.shape[0], step):
        leaf = np.asarray(booster.predict(X[start : start + step], pred_leaf=True))
        leaf = leaf.reshape(leaf.shape[0], n_trees)
        reached |= reached_from_index(np.ascontiguousarray(leaf.T), width)
    return reached


def reached_from_index(by_tree: np.ndarray, width: int) -> np.ndarray:
    """Boolean ``(n_trees, width)``: which leaves are reached, given ``(n_trees, n)`` indices."""
    n_trees = by_tree.shape[0]
    dtype: type[np.signedinteger[Any]] = np.int32 if n_trees * width < 2**31 else np.int64
    flat = by_tree.astype(dtype, copy=False) + (np.arange(n_trees, dtype=dtype) * width)[:, None]
    reached = np.zeros(n_trees * width, dtype=bool)
    reached[flat.ravel()] = True
    return reached.reshape(n_trees, width)


def restore_unreached(booster: lgb.Booster, old: Leaves, reached: np.ndarray) -> Leaves:
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
    return Leaves(values, old.objective)
