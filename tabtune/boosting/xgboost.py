"""XGBoost backend.

Inputs are float64 matrices whose categorical columns hold integer codes from the frozen
vocabulary, declared with ``feature_types="c"``: the full vocabulary is fixed before XGBoost
sees any data, so a brand lacking some levels (or a new level at predict time, which the
encoder turns into NaN) never meets XGBoost's refusal of unknown categories. CuPy is
imported lazily, only on the CUDA path.
"""

from __future__ import annotations

import json
import re
import struct
import warnings
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xgboost as xgb

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
    to_constraint_string,
)
from tabtune.boosting.xgboost_params import check_used
from tabtune.optional import optional_import

__all__ = ["UBJModel", "XGBoostBackend", "apply_ubj_delta", "ubj_delta", "ubj_model"]

#: XGBoost's other spellings of the parameters tabtune translates, and of the round count.
_ALIASES = dict(learning_rate=["eta"], alpha=["reg_alpha"], gamma=["min_split_loss"])
_ALIASES.update({"lambda": ["reg_lambda"], "nthread": ["n_jobs"], "seed": ["random_state"]})
_ROUNDS = ("n_estimators", "num_boost_round", "num_round", "early_stopping_rounds")

_OBJECTIVES = {
    "squared_error": "reg:squarederror",
    "poisson": "count:poisson",
    "tweedie": "reg:tweedie",
    "absolute_error": "reg:absoluteerror",
    "binary": "binary:logistic",
    "multiclass": "multi:softprob",
}
_METRICS = {
    "squared_error": "rmse",
    "poisson": "poisson-nloglik",
    "tweedie": "tweedie-nloglik@{power}",
    "absolute_error": "mae",
    "binary": "logloss",
    "multiclass": "mlogloss",
}
# XGBoost has no minimum row count per leaf, only a minimum hessian sum (min_child_weight).
# min_child_samples is translated with the largest hessian one row can carry, so that the
# XGBoost bound never demands more rows than min_child_samples: 1 for squared and absolute
# error (exactly a row count there) and, as an approximation, for poisson/tweedie;
# p(1-p) <= 1/4 for the logistic loss; 2p(1-p) <= 1/2 for XGBoost's softmax.
_HESSIAN_PER_ROW = {
    "squared_error": 1.0,
    "poisson": 1.0,
    "tweedie": 1.0,
    "absolute_error": 1.0,
    "binary": 0.25,
    "multiclass": 0.5,
}
_DERIVED = ("eval_metric", "tree_method", "grow_policy")


def _to_device(X: np.ndarray | pd.DataFrame, layout: Layout, device: str) -> Any:
    """The matrix in the form XGBoost reads fastest.

    On CUDA, a CuPy array when CuPy is installed. On CPU, a column-major matrix is wrapped
    (without copying) in a DataFrame: XGBoost reads DataFrames column by column, which is
    faster than its strided reading of a column-major array. ``feature_types`` still say
    which columns hold category codes.
    """
    if device == "cuda":
        try:  # lazy on purpose: `import tabtune` must not import CuPy
            cupy = optional_import("cupy", extra="gpu", purpose="CuPy input on CUDA")
        except ImportError:
            return X
        return cupy.asarray(X.to_numpy() if isinstance(X, pd.DataFrame) else X)
    if isinstance(X, pd.DataFrame):
        return X
    if X.flags["F_CONTIGUOUS"] and not X.flags["C_CONTIGUOUS"]:
        return pd.DataFrame(X, columns=list(layout.names), copy=False)
    return X


class XGBoostBackend(Backend):
    """:class:`~tabtune.boosting.base.Backend` over ``xgboost``."""

    name: ClassVar[str] = "xgboost"
    model_file: ClassVar[str] = "model.ubj"
    columnar_predict: ClassVar[bool] = True

    # -- parameters ------------------------------------------------------------------------
    def native_params(self, params: BoosterParams) -> dict[str, Any]:
        """Canonical parameters in XGBoost's names (the only place that translates them)."""
        power = params.extra.get("tweedie_variance_power", 1.5)
        native: dict[str, Any] = {
            "objective": _OBJECTIVES[params.objective],
            "eval_metric": _METRICS[params.objective].format(power=power),
            "tree_method": "hist",
            # Leaf-wise growth bounded by max_leaves, like LightGBM; depth 0 = unlimited.
            "grow_policy": "lossguide",
            "learning_rate": params.learning_rate,
            "max_leaves": params.num_leaves,
            "max_depth": 0 if params.max_depth == -1 else params.max_depth,
            "min_child_weight": params.min_child_samples * _HESSIAN_PER_ROW[params.objective],
            "subsample": params.subsample,
            "colsample_bytree": params.colsample_bytree,
            "alpha": params.reg_alpha,
            "lambda": params.reg_lambda,
            "nthread": params.n_jobs or 0,
            "verbosity": params.verbose,
            "device": params.device,
        }
        if params.objective == "multiclass":
            native["num_class"] = params.n_classes
        if params.random_state is not None:
            native["seed"] = params.random_state
        if params.monotone_constraints is not None:
            native["monotone_constraints"] = to_constraint_string(params.monotone_constraints)
        check_extra_params(params.extra, native, self.name, aliases=_ALIASES, rounds=_ROUNDS)
        native.update(params.extra)
        check_used(native, params.extra)
        return native

    def canonical_params(self, native: Mapping[str, Any]) -> BoosterParams:
        """Inverse of :meth:`native_params`."""
        rest = dict(native)
        for key in _DERIVED:
            rest.pop(key, None)
        objective = {v: k for k, v in _OBJECTIVES.items()}[rest.pop("objective")]
        n_classes = int(rest.pop("num_class", 2 if objective == "binary" else 1))
        monotone = rest.pop("monotone_constraints", None)
        if monotone is not None:
            monotone = tuple(int(v) for v in monotone.strip("()").split(","))
        depth = int(rest.pop("max_depth"))
        threads = int(rest.pop("nthread"))
        min_rows = rest.pop("min_child_weight") / _HESSIAN_PER_ROW[objective]
        return BoosterParams(
            objective=objective,
            n_classes=n_classes,
            learning_rate=rest.pop("learning_rate"),
            num_leaves=rest.pop("max_leaves"),
            max_depth=-1 if depth == 0 else depth,
            min_child_samples=int(round(min_rows)),
            subsample=rest.pop("subsample"),
            colsample_bytree=rest.pop("colsample_bytree"),
            reg_alpha=rest.pop("alpha"),
            reg_lambda=rest.pop("lambda"),
            monotone_constraints=monotone,
            random_state=rest.pop("seed", None),
            n_jobs=threads or None,
            verbose=rest.pop("verbosity"),
            device=rest.pop("device"),
            extra=rest,
        )

    # -- training --------------------------------------------------------------------------
    @staticmethod
    def _set_features(booster: xgb.Booster, layout: Layout) -> xgb.Booster:
        # Continued training can drop feature types (xgboost#12527): always restate them.
        booster.feature_names = list(layout.names)
        booster.feature_types = layout.feature_types
        return booster

    def train(
        self,
        params: BoosterParams,
        layout: Layout,
        train: Matrix | Binned,
        *,
        num_rounds: int,
        valid: Matrix | Binned | None = None,
        early_stopping_rounds: int | None = None,
        init_model: xgb.Booster | None = None,
    ) -> Trained:
        """Boost with ``xgboost.train``; see :meth:`Backend.train`."""
        # bin() is the default one: it hands the rows back, never a Binned.
        assert isinstance(train, Matrix) and not isinstance(valid, Binned)
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
        init_model: xgb.Booster | None,
        copy: bool = True,
        matrices: tuple[xgb.DMatrix, xgb.DMatrix | None] | None = None,
    ) -> Trained:
        """:meth:`train`; without ``copy`` the booster is returned as trained (and cut to its
        best rounds), not copied through its bytes: the same trees, for a booster that is
        only used to predict. ``matrices``: :meth:`_matrices` of these rows, when the caller
        has them already (a QuantileDMatrix is read-only data; boosters keep their own
        prediction caches)."""
        native = self.native_params(params)
        base_rounds = 0 if init_model is None else init_model.num_boosted_rounds()
        es = valid is not None and early_stopping_rounds is not None
        if matrices is None:
            matrices = self._matrices(params, layout, train, valid if es else None)
        dtrain, dvalid = matrices
        evals: list[tuple[xgb.DMatrix, str]] = []
        if es:
            assert dvalid is not None
            evals.append((dvalid, "holdout"))
        # xgb.train copies xgb_model (through its raw bytes) before boosting.
        booster = xgb.train(
            native,
            dtrain,
            num_boost_round=num_rounds,
            evals=evals,
            early_stopping_rounds=early_stopping_rounds if evals else None,
            xgb_model=init_model,
            verbose_eval=False,
        )
        total = booster.num_boosted_rounds()
        if evals:
            # best_iteration is global (base rounds included) and 0-based.
            best = max(int(booster.best_iteration) + 1, base_rounds + 1)
            if best < total:
                booster = booster[:best]
            total = best
            # The kept model is exactly the chosen rounds: no early-stopping bookkeeping.
            booster.set_attr(best_iteration=None, best_score=None)
        booster = self._set_features(booster, layout)
        if copy:
            booster = self.from_bytes(self.to_bytes(booster))
        return Trained(booster=booster, n_rounds=total, n_new_rounds=total - base_rounds)

    def _matrices(
        self, params: BoosterParams, layout: Layout, train: Matrix, valid: Matrix | None
    ) -> tuple[xgb.DMatrix, xgb.DMatrix | None]:
        """The training QuantileDMatrix of :meth:`train`, and its evaluation one for ``valid``."""
        common = {
            "feature_names": list(layout.names),
            "feature_types": layout.feature_types,
            "enable_categorical": True,
        }
        dtrain = xgb.QuantileDMatrix(
            _to_device(train.X, layout, params.device),
            label=train.y,
            weight=train.weight,
            max_bin=int(params.extra.get("max_bin", 256)),
            **common,
        )
        if valid is None:
            return dtrain, None
        # An evaluation QuantileDMatrix must take the training matrix as its reference.
        dvalid = xgb.QuantileDMatrix(
            _to_device(valid.X, layout, params.device),
            label=valid.y,
            weight=valid.weight,
            ref=dtrain,
            max_bin=int(params.extra.get("max_bin", 256)),
            **common,
        )
        return dtrain, dvalid

    def refit(
        self,
        booster: xgb.Booster,
        params: BoosterParams,
        layout: Layout,
        data: Matrix,
        decay_rate: float,
    ) -> xgb.Booster:
        """Leaf refresh (``updater="refresh"``, ``refresh_leaf=1``) blended with the old leaves.

        XGBoost's refresh replaces every leaf (a leaf no row reaches becomes 0); we blend
        ``decay_rate * old + (1 - decay_rate) * refreshed`` on leaves that rows reach (their
        refreshed hessian sum is positive) and keep the old value elsewhere, matching the
        LightGBM backend. Unlike LightGBM, the refresh computes each tree's gradients from the
        fully refreshed earlier trees rather than the blended ones (an approximation when
        ``decay_rate > 0``). ``params.learning_rate`` must be the rate the trees were grown
        with: XGBoost rescales refreshed leaves by it.

        The blend is computed on the leaf values as the JSON model writes them, and stored as
        XGBoost reads the blended value back from JSON text (see :func:`_blend_leaves`).
        """
        return self._refit(booster, params, layout, data, decay_rate, None)

    def _refit(
        self,
        booster: xgb.Booster,
        params: BoosterParams,
        layout: Layout,
        data: Matrix,
        decay_rate: float,
        old: _Leaves | None,
    ) -> xgb.Booster:
        """:meth:`refit`, optionally given ``booster``'s leaves (:func:`_leaves`)."""
        # The refresh updater runs on CPU only (xgboost#7108), whatever the device.
        native = self.native_params(params.replace(device="cpu"))
        for key in ("tree_method", "grow_policy", "eval_metric"):
            native.pop(key, None)
        native.update({"process_type": "update", "updater": "refresh", "refresh_leaf": 1})
        matrix = xgb.DMatrix(
            data.X,
            label=data.y,
            weight=data.weight,
            feature_names=list(layout.names),
            feature_types=layout.feature_types,
            enable_categorical=True,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            refreshed = xgb.train(
                native,
                matrix,
                num_boost_round=booster.num_boosted_rounds(),
                xgb_model=booster,
                verbose_eval=False,
            )
        result = _blend_leaves(booster, refreshed, decay_rate, old)
        if result is None:  # a model layout the fast path does not know: through JSON
            result = _blend_leaves_json(booster, refreshed, decay_rate)
        return self.from_bytes(self.to_bytes(self._set_features(result, layout)))

    def session(
        self,
        base: xgb.Booster,
        layout: Layout,
        cache: MutableMapping[str, Any] | None = None,
        *,
        options: SessionOptions | None = None,
    ) -> Session:
        """A session that reads the base's leaves once per base model (see :class:`_Session`)."""
        return _Session(self, base, layout, cache, options=options)

    # -- prediction and files ----------------------------------------------------------------
    def predict(
        self,
        booster: xgb.Booster,
        X: np.ndarray | pd.DataFrame,
        layout: Layout,
        device: str = "cpu",
    ) -> np.ndarray:
        """Response-scale predictions (probabilities for classification)."""
        if booster.feature_types is None:
            self._set_features(booster, layout)
        if device == "cuda":
            # A loaded model carries no device: without this, XGBoost copies CuPy input back to
            # the host and predicts on the CPU (measured: 0.74 s instead of 0.01 s for 1M rows).
            booster.set_param({"device": "cuda"})
        out = booster.inplace_predict(_to_device(X, layout, device))
        if hasattr(out, "get"):  # CuPy array back to host memory
            out = out.get()
        out = np.asarray(out, dtype=np.float64)
        if out.ndim == 2:  # float32 softmax: make each row sum to 1 in float64
            out /= out.sum(axis=1, keepdims=True)
        return out

    def num_rounds(self, booster: xgb.Booster) -> int:
        """Boosting rounds in the model."""
        return int(booster.num_boosted_rounds())

    def to_bytes(self, booster: xgb.Booster) -> bytes:
        """XGBoost's UBJSON model format."""
        return bytes(booster.save_raw("ubj"))

    def from_bytes(self, data: bytes) -> xgb.Booster:
        """Load XGBoost's UBJSON (or JSON) model format."""
        return xgb.Booster(model_file=bytearray(data))

    @staticmethod
    def library_version() -> str:
        """``xgboost.__version__``."""
        return str(xgb.__version__)


# ----------------------------------------------------------------------------------------------
# refit: blending refreshed leaves with the old ones
# ----------------------------------------------------------------------------------------------

# A typed UBJSON array under a key, as XGBoost writes its model: the key (int64 length), then
# ``[$<type>#L<int64 count>`` and the big-endian items.
_UBJ_TYPES = {b"d": ">f4", b"l": ">i4"}


def _ubj_pattern(key: bytes) -> re.Pattern[bytes]:
    return re.compile(
        re.escape(b"L" + struct.pack(">q", len(key)) + key + b"[$") + rb"(.)#L(.{8})", re.DOTALL
    )


_UBJ_KEYS = {
    key: _ubj_pattern(key) for key in (b"left_children", b"sum_hessian", b"split_conditions")
}
_JSON_CONDITIONS = re.compile(r'"split_conditions":\[([^\]]*)\]')


def _ubj_arrays(raw: bytes | bytearray, key: bytes, dtype: str) -> list[tuple[int, int]] | None:
    """(data offset, item count) of each tree's array ``key`` in a UBJSON model, in order."""
    found = []
    for match in _UBJ_KEYS[key].finditer(raw):
        if _UBJ_TYPES.get(match.group(1)) != dtype:
            return None
        found.append((match.end(), struct.unpack(">q", match.group(2))[0]))
    return found


def _json_conditions(booster: xgb.Booster) -> list[np.ndarray]:
    """Each tree's ``split_conditions`` as ``json.loads`` reads them from the JSON model.

    XGBoost writes a float32 as its shortest decimal; Python reads that decimal as the
    nearest double (not the float32's exact value): the JSON blend
    (:func:`_blend_leaves_json`) computes on those, so the in-place blend does too.
    """
    text = bytes(booster.save_raw("json")).decode("utf-8")
    return [
        np.array(group.split(","), dtype=np.float64) if group else np.empty(0)
        for group in _JSON_CONDITIONS.findall(text)
    ]


@dataclass
class _Leaves:
    """A model's ``split_conditions`` (leaf values at leaves): exact float32 and as JSON reads."""

    exact: list[np.ndarray]
    as_json: list[np.ndarray]


def _leaves(booster: xgb.Booster) -> _Leaves | None:
    """The leaves of ``booster``; None when its UBJSON layout is not the expected one."""
    raw = bytes(booster.save_raw("ubj"))
    arrays = _ubj_arrays(raw, b"split_conditions", ">f4")
    as_json = _json_conditions(booster)
    if not arrays or len(arrays) != len(as_json):
        return None
    exact = [
        np.frombuffer(raw, dtype=">f4", count=n, offset=at).astype(np.float32) for at, n in arrays
    ]
    if any(len(e) != len(j) for e, j in zip(exact, as_json, strict=True)):
        return None
    return _Leaves(exact, as_json)


def _float32_from_json(values: np.ndarray) -> np.ndarray:
    """The float32 XGBoost reads from ``json.dumps`` of these doubles.

    ``json.dumps`` writes ``repr(v)``, the shortest decimal that reads back as ``v``; XGBoost
    rounds that decimal to float32 directly (correctly rounded). That is ``float32(v)`` except
    when ``v`` lies exactly halfway between two float32s: then the decimal, a hair above or
    below ``v``, decides (an exact tie rounds to even, as the cast does).
    """
    out = values.astype(np.float32)
    exact = out.astype(np.float64) == values
    toward = np.nextafter(out, np.where(values > out, np.float32(np.inf), np.float32(-np.inf)))
    with np.errstate(invalid="ignore", over="ignore"):
        halfway = ~exact & ((out.astype(np.float64) + toward.astype(np.float64)) / 2 == values)
    for i in np.flatnonzero(halfway).tolist():
        value = float(values[i])
        decimal, exact_value = Decimal(repr(value)), Decimal(value)
        if decimal != exact_value:
            up = decimal > exact_value
            low, high = sorted((out[i], toward[i]))
            out[i] = high if up else low
    return out


def _blend_leaves(
    booster: xgb.Booster, refreshed: xgb.Booster, decay_rate: float, old: _Leaves | None
) -> xgb.Booster | None:
    """``refreshed`` with ``decay * old + (1 - decay) * refreshed`` on reached leaves.

    The same model as :func:`_blend_leaves_json` (which edits the JSON model in Python and has
    XGBoost parse it back), edited in place in the binary (UBJSON) model instead: the blend is
    computed on the values as JSON reads them, and each blended value becomes the float32
    XGBoost reads from its JSON text (:func:`_float32_from_json`); every other number of the
    model is what the JSON round trip gives back (float32s survive their shortest decimal
    exactly). None when the model's layout is not the expected one.
    """
    if old is None:
        old = _leaves(booster)
    raw = bytearray(refreshed.save_raw("ubj"))
    conditions = _ubj_arrays(raw, b"split_conditions", ">f4")
    children = _ubj_arrays(raw, b"left_children", ">i4")
    hessians = _ubj_arrays(raw, b"sum_hessian", ">f4")
    if old is None or not conditions or children is None or hessians is None:
        return None
    new_json = _json_conditions(refreshed)
    counts = [n for _, n in conditions]
    if not (
        len(conditions) == len(children) == len(hessians) == len(new_json) == len(old.exact)
        and counts == [n for _, n in children] == [n for _, n in hessians]
        and counts == [len(v) for v in new_json] == [len(v) for v in old.exact]
    ):
        return None

    def gather(arrays: list[tuple[int, int]], dtype: str) -> np.ndarray:
        return np.concatenate(
            [np.frombuffer(raw, dtype=dtype, count=n, offset=at) for at, n in arrays]
        )

    is_leaf = gather(children, ">i4") == -1
    reached = is_leaf & (gather(hessians, ">f4").astype(np.float64) > 0)
    new_value = np.concatenate(new_json)
    old_value = np.concatenate(old.as_json)
    out = gather(conditions, ">f4").astype(np.float32)
    out[is_leaf & ~reached] = np.concatenate(old.exact)[is_leaf & ~reached]
    blended = decay_rate * old_value[reached] + (1.0 - decay_rate) * new_value[reached]
    out[reached] = _float32_from_json(blended)
    start = 0
    for at, n in conditions:
        raw[at : at + 4 * n] = out[start : start + n].astype(">f4").tobytes()
        start += n
    return xgb.Booster(model_file=raw)


def _blend_leaves_json(
    booster: xgb.Booster, refreshed: xgb.Booster, decay_rate: float
) -> xgb.Booster:
    """:func:`_blend_leaves` through the JSON model (the reference implementation)."""
    old = json.loads(bytes(booster.save_raw("json")))
    new = json.loads(bytes(refreshed.save_raw("json")))
    old_trees = old["learner"]["gradient_booster"]["model"]["trees"]
    new_trees = new["learner"]["gradient_booster"]["model"]["trees"]
    for old_tree, new_tree in zip(old_trees, new_trees, strict=True):
        is_leaf = np.asarray(new_tree["left_children"]) == -1
        old_value = np.asarray(old_tree["split_conditions"], dtype=np.float64)
        new_value = np.asarray(new_tree["split_conditions"], dtype=np.float64)
        reached = is_leaf & (np.asarray(new_tree["sum_hessian"], dtype=np.float64) > 0)
        blended = np.where(
            reached, decay_rate * old_value + (1.0 - decay_rate) * new_value, old_value
        )
        new_tree["split_conditions"] = np.where(is_leaf, blended, new_value).tolist()
    return xgb.Booster(model_file=bytearray(json.dumps(new).encode("utf-8")))


class _Session(Session):
    """XGBoost session: identical refits once (see :class:`Session`), the base's leaves read
    once per base model (kept in the session cache) for every refit of it, the training and
    evaluation matrices built once per set of rows, and candidates not copied."""

    backend: XGBoostBackend

    def __init__(
        self,
        backend: XGBoostBackend,
        base: xgb.Booster,
        layout: Layout,
        cache: MutableMapping[str, Any] | None = None,
        *,
        options: SessionOptions | None = None,
    ) -> None:
        super().__init__(backend, base, layout, cache, options=options)
        self._matrices: list[tuple[Matrix, Matrix | None, tuple[Any, ...], tuple[Any, Any]]] = []

    def _matrices_for(
        self, params: BoosterParams, train: Matrix, valid: Matrix | None
    ) -> tuple[xgb.DMatrix, xgb.DMatrix | None]:
        # What the matrices depend on besides the rows.
        key = (params.device, params.extra.get("max_bin", 256))
        for rows, holdout, known, matrices in self._matrices:
            if rows is train and holdout is valid and known == key:
                return matrices
        matrices = self.backend._matrices(params, self.layout, train, valid)
        self._matrices.append((train, valid, key, matrices))
        return matrices

    def at_rounds(self, booster: Any, n_rounds: int) -> Any | None:
        # Scoring-only boosters are cut to their best rounds: fewer rounds are a slice.
        grown = booster.num_boosted_rounds()
        if booster is self.base or not 1 <= n_rounds <= grown:
            return None
        return booster if n_rounds == grown else booster[:n_rounds]

    def _refit(self, params: BoosterParams, data: Matrix, decay_rate: float) -> Any:
        old = self.derived("xgboost.leaves", _leaves)
        return self.backend._refit(self.base, params, self.layout, data, decay_rate, old)

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
        return self.backend._train(
            params,
            self.layout,
            train,
            num_rounds=num_rounds,
            valid=valid,
            early_stopping_rounds=early_stopping_rounds,
            init_model=init_model,
            copy=not scoring_only,
            matrices=self._matrices_for(
                params, train, valid if early_stopping_rounds is not None else None
            ),
        )


# -- deltas: a model stored as what it changes in its base -----------------------------------
# JSON and UBJSON hold the same document (XGBoost's "Introduction to Model IO"), the trees
# under ``learner.gradient_booster.model.trees``. Rebuilding a model through the JSON document
# costs ~100 ms a load (dump, XGBoost's JSON parser, UBJSON writer) against ~7 ms for the
# native file, so a delta edits the UBJSON bytes: each tree is a byte span of the document;
# a delta keeps the bytes before and after the trees, and per tree nothing (the base's), the
# byte runs that changed (a refit's leaf values; same layout), or the tree's bytes (a new one).

_UBJ_FIXED = {b"i": 1, b"U": 1, b"C": 1, b"I": 2, b"l": 4, b"L": 8, b"d": 4, b"D": 8}
_UBJ_INTS = {b"i": ">b", b"U": ">B", b"I": ">h", b"l": ">i", b"L": ">q"}
_UBJ_TREES = (b"learner", b"gradient_booster", b"model", b"trees")


@dataclass(frozen=True)
class UBJModel:
    """A UBJSON model's bytes and where its trees lie (``spans[i]`` = start, end of tree i)."""

    raw: bytes
    spans: list[tuple[int, int]]


def _ubj_int(raw: bytes, pos: int) -> tuple[int, int]:
    marker = raw[pos : pos + 1]
    fmt = _UBJ_INTS[marker]
    size = _UBJ_FIXED[marker]
    return struct.unpack(fmt, raw[pos + 1 : pos + 1 + size])[0], pos + 1 + size


def _ubj_count(raw: bytes, pos: int) -> tuple[int | None, bytes | None, int]:
    """A container's optional ``$type`` and ``#count`` after its opening marker."""
    kind = None
    if raw[pos : pos + 1] == b"$":
        kind, pos = raw[pos + 1 : pos + 2], pos + 2
    if raw[pos : pos + 1] == b"#":
        count, pos = _ubj_int(raw, pos + 1)
        return count, kind, pos
    if kind is not None:
        raise ValueError("a typed UBJSON container without a count")
    return None, None, pos


def _ubj_skip(raw: bytes, pos: int) -> int:
    """The position after the UBJSON value at ``pos``."""
    marker = raw[pos : pos + 1]
    if marker in _UBJ_FIXED:
        return pos + 1 + _UBJ_FIXED[marker]
    if marker in (b"T", b"F", b"Z", b"N"):
        return pos + 1
    if marker in (b"S", b"H"):
        size, pos = _ubj_int(raw, pos + 1)
        return pos + size
    if marker == b"[":
        return _ubj_items(raw, pos)[1]
    if marker == b"{":
        pos = _ubj_entries(raw, pos, None)[1]
        return pos
    raise ValueError(f"unexpected UBJSON marker {marker!r} at {pos}")


def _ubj_items(raw: bytes, pos: int) -> tuple[list[tuple[int, int]], int]:
    """Spans of an array's items (none for a typed array) and the position after it."""
    count, kind, pos = _ubj_count(raw, pos + 1)
    if kind is not None and count is not None:
        if kind not in _UBJ_FIXED:
            raise ValueError(f"typed UBJSON array of {kind!r}")
        return [], pos + count * _UBJ_FIXED[kind]
    spans: list[tuple[int, int]] = []
    while (count is None and raw[pos : pos + 1] != b"]") or (
        count is not None and len(spans) < count
    ):
        end = _ubj_skip(raw, pos)
        spans.append((pos, end))
        pos = end
    return spans, pos + 1 if count is None else pos


def _ubj_entries(raw: bytes, pos: int, wanted: bytes | None) -> tuple[int | None, int]:
    """Position of key ``wanted``'s value in the object at ``pos`` (None: not there), and
    the position after the object (or after that value when found)."""
    count, kind, pos = _ubj_count(raw, pos + 1)
    if kind is not None:
        raise ValueError("a typed UBJSON object")
    seen = 0
    while (count is None and raw[pos : pos + 1] != b"}") or (count is not None and seen < count):
        size, pos = _ubj_int(raw, pos)
        key, pos = raw[pos : pos + size], pos + size
        if key == wanted:
            return pos, pos
        pos = _ubj_skip(raw, pos)
        seen += 1
    return None, pos + 1 if count is None else pos


def ubj_model(data: bytes) -> UBJModel | None:
    """The trees' byte spans of a UBJSON model; None when it is not laid out as expected."""
    raw = bytes(data)
    try:
        pos: int | None = 0
        for key in _UBJ_TREES:
            if pos is None or raw[pos : pos + 1] != b"{":
                return None
            pos = _ubj_entries(raw, pos, key)[0]
        if pos is None or raw[pos : pos + 1] != b"[":
            return None
        spans = _ubj_items(raw, pos)[0]
    except (KeyError, ValueError, struct.error):
        return None
    return UBJModel(raw, spans) if spans else None


def _byte_runs(old: bytes, new: bytes) -> list[list[Any]] | None:
    """``new`` as ``[offset, hex bytes]`` runs over ``old`` of the same length (gaps under 8
    bytes merged); None when most bytes changed."""
    a, b = np.frombuffer(old, dtype=np.uint8), np.frombuffer(new, dtype=np.uint8)
    at = np.flatnonzero(a != b)
    if 2 * at.size > b.size:
        return None
    runs: list[list[Any]] = []
    if at.size == 0:
        return runs
    breaks = np.flatnonzero(np.diff(at) > 8)
    starts = np.concatenate([at[:1], at[breaks + 1]])
    ends = np.concatenate([at[breaks], at[-1:]]) + 1
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        runs.append([start, new[start:end].hex()])
    return runs


def ubj_delta(base: UBJModel, full: UBJModel) -> dict[str, Any]:
    """Model ``full`` as what it changes in ``base`` (JSON-ready; bytes as hex)."""
    trees: list[Any] = []
    for index, (start, end) in enumerate(full.spans):
        block = full.raw[start:end]
        if index < len(base.spans):
            old = base.raw[slice(*base.spans[index])]
            if block == old:
                trees.append(None)
                continue
            runs = _byte_runs(old, block) if len(old) == len(block) else None
            if runs is not None:
                trees.append({"runs": runs})
                continue
        trees.append(block.hex())
    return {
        "head": full.raw[: full.spans[0][0]].hex(),
        "tail": full.raw[full.spans[-1][1] :].hex(),
        "trees": trees,
    }


def apply_ubj_delta(base: UBJModel, delta: Mapping[str, Any]) -> bytes:
    """The UBJSON model bytes :func:`ubj_delta` described, rebuilt from ``base``.

    Raises
    ------
    ValueError
        The delta rewrites a tree the base does not have, or holds bad hex.
    """
    parts = [bytes.fromhex(delta["head"])]
    for index, entry in enumerate(delta["trees"]):
        if isinstance(entry, str):
            parts.append(bytes.fromhex(entry))
            continue
        if index >= len(base.spans):
            raise ValueError(f"the delta rewrites tree {index}, which the base does not have")
        old = base.raw[slice(*base.spans[index])]
        if entry is None:
            parts.append(old)
            continue
        block = bytearray(old)
        for offset, data in entry["runs"]:
            chunk = bytes.fromhex(data)
            block[int(offset) : int(offset) + len(chunk)] = chunk
        parts.append(bytes(block))
    parts.append(bytes.fromhex(delta["tail"]))
    return b"".join(parts)
