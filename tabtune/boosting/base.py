"""The small backend interface, canonical parameters, device resolution and model files.

Everything above this package speaks tabtune's names (:class:`BoosterParams`) and calls a
:class:`Backend`; each backend module translates those names to its library's in ONE function
(``native_params``) with an inverse (``canonical_params``) that a round-trip test guards.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tabtune.atomic import publish_dir, staging_dir, write_durable
from tabtune.boosting.encoding import MatrixOrder
from tabtune.config_section import user_path
from tabtune.errors import ModelIntegrityError, TabTuneInputError
from tabtune.integrity import check_seal, seal
from tabtune.params import BACKENDS, CLASSIFICATION_OBJECTIVES, REGRESSION_OBJECTIVES, default

__all__ = [
    "AUTO_CUDA_MIN_ROWS",
    "BACKENDS",
    "Backend",
    "Binned",
    "BoosterParams",
    "Layout",
    "LeafMemory",
    "Matrix",
    "OBJECTIVES",
    "Session",
    "SessionOptions",
    "Trained",
    "cuda_available",
    "get_backend",
    "read_model_dir",
    "resolve_device",
    "sha256_hex",
    "write_model_dir",
]

logger = logging.getLogger("tabtune")

#: Canonical objectives. Regression: the first four; classification: the last two.
OBJECTIVES = (*REGRESSION_OBJECTIVES, *CLASSIFICATION_OBJECTIVES)
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class BoosterParams:
    """Booster parameters in tabtune's names (see ``TabTuneRegressor`` for their meaning).

    ``monotone_constraints`` is per model feature (context features included) or None;
    ``extra`` is the ``backend_params`` dict, passed to the library unchanged.
    """

    objective: str = "squared_error"
    n_classes: int = 1
    learning_rate: float = default("learning_rate")
    num_leaves: int = default("num_leaves")
    max_depth: int = default("max_depth")
    min_child_samples: int = default("min_child_samples")
    subsample: float = default("subsample")
    colsample_bytree: float = default("colsample_bytree")
    reg_alpha: float = default("reg_alpha")
    reg_lambda: float = default("reg_lambda")
    monotone_constraints: tuple[int, ...] | None = None
    random_state: int | None = default("random_state")
    n_jobs: int | None = default("n_jobs")
    verbose: int = default("verbose")
    device: str = "cpu"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> BoosterParams:
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Layout:
    """Model feature names in order and which of them are categorical (integer codes)."""

    names: tuple[str, ...]
    categorical: tuple[int, ...] = ()

    @property
    def feature_types(self) -> list[str]:
        """XGBoost-style feature types: ``"c"`` categorical, ``"q"`` numeric."""
        cats = set(self.categorical)
        return ["c" if i in cats else "q" for i in range(len(self.names))]


@dataclass
class Matrix:
    """Encoded rows for a backend: float64 features, target and optional weights."""

    X: np.ndarray
    y: np.ndarray | None = None
    weight: np.ndarray | None = None
    #: Where these rows stand among the time-ordered rows of the fit they belong to (a slice
    #: or an array of positions, one per row); None when unknown. A session's
    #: :class:`LeafMemory` is matched to rows through it.
    rows: slice | np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def time_positions(self) -> np.ndarray | None:
        """:attr:`rows` as an array of positions (None when unknown)."""
        if self.rows is None:
            return None
        if isinstance(self.rows, slice):
            start = self.rows.start or 0
            return np.arange(start, start + len(self), dtype=np.int64)
        return np.asarray(self.rows, dtype=np.int64)


@dataclass
class LeafMemory:
    """The base model's leaf index of each row of an earlier fit, with the features they were
    predicted from: what lets a later fit on the same rows plus new ones predict the base only
    on what changed (see :attr:`Session.memory`).

    Rows are in time order (the order of :attr:`Matrix.rows`).
    """

    #: ``(n, n_features)`` float64: the encoded rows the leaf indices were predicted from.
    X: np.ndarray
    #: ``(n, n_trees)`` unsigned integers: leaf of each row in each tree of the base.
    leaves: np.ndarray

    def __post_init__(self) -> None:
        if self.X.ndim != 2 or self.leaves.ndim != 2 or len(self.X) != len(self.leaves):
            raise ValueError("LeafMemory needs X (n, features) and leaves (n, trees)")


@dataclass(frozen=True)
class SessionOptions:
    """How a :class:`Session` works: given when it is created, never changed after.

    None of them changes a result; they decide what a session derives and keeps. A fit that
    needs other options later (another fold, a strategy chosen since) creates a session with
    ``dataclasses.replace(options, ...)``.
    """

    #: Threads for the predictions the session makes (None: the library's default, all
    #: cores); an adaptation gives its own ``n_jobs``, so that a brand fit on one thread also
    #: predicts the base on one thread. Predictions do not depend on it.
    n_threads: int | None = None
    #: The base's leaf indices of this brand's rows at an earlier fit (a backend that predicts
    #: leaf indices reuses those of rows whose path through the trees cannot have changed; the
    #: results are the same without it).
    memory: LeafMemory | None = None
    #: Whether :meth:`Session.remembered` is wanted for the rows fitted last: a backend then
    #: derives its predictions of the base from leaf indices, which it can remember.
    remember: bool = False
    #: Hint: whether refits of the base are coming for the rows the session sees (a backend
    #: may then derive per-row data that serves refits and predictions alike).
    refits_expected: bool = True


@dataclass
class Binned:
    """Rows already built into a backend's own training set (:meth:`Backend.bin`): what
    training reads, without the float features they were built from."""

    #: The backend's object (a constructed ``lightgbm.Dataset``).
    handle: Any
    n_rows: int

    def __len__(self) -> int:
        return self.n_rows


@dataclass
class Trained:
    """What a training call produced."""

    booster: Any
    n_rounds: int
    n_new_rounds: int


class Backend(ABC):
    """What tabtune needs from a gradient-boosting library.

    Boosters passed in are never modified; every method that changes a model returns a new
    booster.
    """

    name: ClassVar[str]
    model_file: ClassVar[str]
    #: Memory layout of the matrices this backend reads fastest.
    matrix_order: ClassVar[MatrixOrder] = "F"
    #: Whether :meth:`predict` prefers a DataFrame of columns (no copy of the features).
    columnar_predict: ClassVar[bool] = False

    @abstractmethod
    def native_params(self, params: BoosterParams) -> dict[str, Any]:
        """Translate canonical parameters to the library's parameter dict."""

    @abstractmethod
    def canonical_params(self, native: Mapping[str, Any]) -> BoosterParams:
        """Inverse of :meth:`native_params` (derived keys dropped)."""

    def bin(
        self,
        params: BoosterParams,
        layout: Layout,
        data: Matrix,
        reference: Binned | Matrix | None = None,
    ) -> Binned | Matrix:
        """``data`` built now into the training set :meth:`train` would build from it (with
        ``reference``'s bins for a validation set), so that the caller can drop the float rows
        before training. Training on the result gives the same model as training on ``data``.

        The default returns ``data`` itself (the backend builds its set when training).
        """
        return data

    @abstractmethod
    def train(
        self,
        params: BoosterParams,
        layout: Layout,
        train: Matrix | Binned,
        *,
        num_rounds: int,
        valid: Matrix | Binned | None = None,
        early_stopping_rounds: int | None = None,
        init_model: Any = None,
    ) -> Trained:
        """Boost ``num_rounds`` rounds (fewer with early stopping on ``valid``).

        With ``init_model`` the new rounds continue from it. With early stopping the returned
        booster is truncated to its best round, and holds at least one new round. ``train``
        and ``valid`` may be what :meth:`bin` returned.
        """

    @abstractmethod
    def refit(
        self, booster: Any, params: BoosterParams, layout: Layout, data: Matrix, decay_rate: float
    ) -> Any:
        """Re-estimate the leaf values of ``booster`` on ``data``, keeping its structure.

        Each leaf becomes ``decay_rate * old + (1 - decay_rate) * new``; a leaf that receives
        no rows keeps its old value.
        """

    @abstractmethod
    def predict(self, booster: Any, X: Any, layout: Layout, device: str = "cpu") -> Any:
        """Predictions on the response scale: mean (regression), P(class 1) for binary
        classification (shape ``(n,)``), class probabilities ``(n, K)`` for multiclass.

        ``X`` is an encoded matrix, or (when :attr:`columnar_predict`) a DataFrame of encoded
        columns named as the layout."""

    @abstractmethod
    def num_rounds(self, booster: Any) -> int:
        """Boosting rounds in a booster (a round holds one tree per class in multiclass)."""

    @abstractmethod
    def to_bytes(self, booster: Any) -> bytes:
        """The booster in the library's native file format."""

    @abstractmethod
    def from_bytes(self, data: bytes) -> Any:
        """Inverse of :meth:`to_bytes`."""

    @staticmethod
    @abstractmethod
    def library_version() -> str:
        """Version string of the library."""

    def copy(self, booster: Any) -> Any:
        """An independent copy (through the native format, never pickle)."""
        return self.from_bytes(self.to_bytes(booster))

    def session(
        self,
        base: Any,
        layout: Layout,
        cache: MutableMapping[str, Any] | None = None,
        *,
        options: SessionOptions | None = None,
    ) -> Session:
        """A :class:`Session` of fits that start from ``base``.

        ``cache`` is a dict kept with the base model across sessions: a session may store
        there what it derives from ``base`` alone (e.g. its serialised form), so that adapting
        many brands to one base derives it once. ``options`` default to
        ``SessionOptions()``.
        """
        return Session(self, base, layout, cache, options=options)


class Session:
    """Several fits from one base booster (never modified) that share their common work.

    :func:`tabtune.transfer.adapt` fits several strategies on the same rows: each refit or
    continued training of the base would predict the base on those rows again, and ``refit``
    and ``refit+continue`` refit the same rows twice. A session computes such things once.
    Its methods return exactly what the :class:`Backend` methods of the same name return
    (same model, same predictions); only the cost differs. Rows are recognised by identity:
    pass the same :class:`Matrix` object to share work for them. This default shares identical
    refits; backends extend it.
    """

    def __init__(
        self,
        backend: Backend,
        base: Any,
        layout: Layout,
        cache: MutableMapping[str, Any] | None = None,
        *,
        options: SessionOptions | None = None,
    ) -> None:
        self.backend = backend
        self.base = base
        self.layout = layout
        self.cache: MutableMapping[str, Any] = {} if cache is None else cache
        #: How the session works (see :class:`SessionOptions`), fixed at its creation.
        self.options = SessionOptions() if options is None else options
        self._refits: list[tuple[Matrix, BoosterParams, float, Any]] = []

    # The options, read as attributes. Setting one replaces :attr:`options` (for callers that
    # configure a session after creating it; tabtune itself gives the options at creation).
    @property
    def n_threads(self) -> int | None:
        """:attr:`SessionOptions.n_threads`."""
        return self.options.n_threads

    @n_threads.setter
    def n_threads(self, value: int | None) -> None:
        self.options = replace(self.options, n_threads=value)

    @property
    def memory(self) -> LeafMemory | None:
        """:attr:`SessionOptions.memory`."""
        return self.options.memory

    @memory.setter
    def memory(self, value: LeafMemory | None) -> None:
        self.options = replace(self.options, memory=value)

    @property
    def remember(self) -> bool:
        """:attr:`SessionOptions.remember`."""
        return self.options.remember

    @remember.setter
    def remember(self, value: bool) -> None:
        self.options = replace(self.options, remember=value)

    @property
    def refits_expected(self) -> bool:
        """:attr:`SessionOptions.refits_expected`."""
        return self.options.refits_expected

    @refits_expected.setter
    def refits_expected(self, value: bool) -> None:
        self.options = replace(self.options, refits_expected=value)

    def derived(self, key: str, compute: Callable[[Any], Any]) -> Any:
        """``compute(base)``, kept in :attr:`cache` under ``key`` while the base is the same."""
        hit = self.cache.get(key)
        if hit is None or hit[0] is not self.base:
            hit = (self.base, compute(self.base))
            self.cache[key] = hit
        return hit[1]

    def refit(self, params: BoosterParams, data: Matrix, decay_rate: float) -> Any:
        """:meth:`Backend.refit` of the base (computed once per rows, params and decay)."""
        for rows, p, decay, booster in self._refits:
            if rows is data and decay == decay_rate and p == params:
                return booster
        booster = self._refit(params, data, decay_rate)
        self._refits.append((data, params, decay_rate, booster))
        return booster

    def _refit(self, params: BoosterParams, data: Matrix, decay_rate: float) -> Any:
        return self.backend.refit(self.base, params, self.layout, data, decay_rate)

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
        """:meth:`Backend.train`; ``init_model`` is None, the base or one of :meth:`refit`'s.

        With ``scoring_only`` the booster is only used with :meth:`predict`: a backend may
        then skip what only a kept model needs (cutting the rounds early stopping grew past
        the best one, copying the model through its bytes), provided the booster predicts as
        the kept model would (``n_rounds`` counts the kept rounds).
        """
        return self.backend.train(
            params,
            self.layout,
            train,
            num_rounds=num_rounds,
            valid=valid,
            early_stopping_rounds=early_stopping_rounds,
            init_model=init_model,
        )

    def predict(self, booster: Any, data: Matrix) -> np.ndarray:
        """:meth:`Backend.predict` of ``booster`` on ``data.X``."""
        return np.asarray(self.backend.predict(booster, data.X, self.layout))

    def to_bytes(self, booster: Any) -> bytes:
        """:meth:`Backend.to_bytes` of a booster of this session: the same bytes; a backend
        may write the trees the booster shares with the base from the base's bytes."""
        return self.backend.to_bytes(booster)

    def remembered(self, data: Matrix) -> LeafMemory | None:
        """The base's leaf indices of ``data``'s rows (in time order) when the session
        computed them, to be given as :attr:`memory` to a later session on these rows plus
        new ones; None when it did not (this default never does)."""
        return None

    def at_rounds(self, booster: Any, n_rounds: int) -> Any | None:
        """A booster of :meth:`train` with ``scoring_only`` that predicts as its first
        ``n_rounds`` rounds, or None when it did not grow that many.

        Boosting is deterministic, so the first ``n_rounds`` rounds of a longer fit are the
        model a fit of exactly ``n_rounds`` rounds on the same rows gives: :meth:`predict` of
        the result gives what it would, without boosting again. The booster passed may be
        changed to do so (a scoring-only booster belongs to its caller). This default knows
        no cheap way and returns None.
        """
        return None


def get_backend(name: str) -> Backend:
    """The backend called ``name`` (``"lightgbm"`` or ``"xgboost"``), imported lazily."""
    if name == "lightgbm":
        from tabtune.boosting.lightgbm import LightGBMBackend

        return LightGBMBackend()
    if name == "xgboost":
        from tabtune.boosting.xgboost import XGBoostBackend

        return XGBoostBackend()
    raise TabTuneInputError(f"unknown backend {name!r}; expected one of {list(BACKENDS)}")


def check_extra_params(
    extra: Mapping[str, Any],
    generated: Mapping[str, Any],
    backend: str,
    aliases: Mapping[str, Collection[str]] | None = None,
    rounds: Collection[str] = (),
    known_only: bool = False,
) -> None:
    """Refuse ``backend_params`` keys that would silently override translated parameters.

    ``aliases`` (the library's parameter name -> its other spellings) catches a translated
    parameter under another spelling (``eta`` for ``learning_rate``); with ``known_only`` they
    are every name the library knows, and a key it does not know is refused. ``rounds``: the library's names for the round count and
    early stopping, which tabtune sets itself (``model.n_estimators``,
    ``early_stopping_rounds``).
    """
    canonical = {a: name for name, spellings in (aliases or {}).items() for a in spellings}
    canonical.update({name: name for name in aliases or {}})

    def name_of(key: str) -> str:
        return canonical.get(key, key)

    taken = {name_of(k) for k in generated}
    clash = sorted(
        k if name_of(k) == k else f"{k} ({name_of(k)})" for k in extra if name_of(k) in taken
    )
    if clash:
        raise TabTuneInputError(
            f"backend_params sets {clash}, which tabtune already sets for {backend} from its "
            "own constructor parameters; use those parameters instead"
        )
    counted = sorted(k for k in extra if name_of(k) in {name_of(r) for r in rounds})
    if counted:
        raise TabTuneInputError(
            f"backend_params sets {counted}: the round count and early stopping come from "
            "model.n_estimators and model.early_stopping_rounds (adaptation.adapt_n_estimators "
            "for new trees); set those instead"
        )
    unknown = sorted(k for k in extra if known_only and aliases and k not in canonical)
    if unknown:
        raise TabTuneInputError(
            f"backend_params sets {unknown}, which {backend} does not know (misspelt?); "
            f"see {backend}'s parameter list"
        )


def to_constraint_string(values: Sequence[int]) -> str:
    """``(0,1,-1)``: XGBoost's monotone-constraint spelling."""
    return "(" + ",".join(str(int(v)) for v in values) + ")"


# -- devices -----------------------------------------------------------------------------------


def _nvidia_device_present() -> bool:
    """Cheap first check: an NVIDIA driver or device node exists."""
    return Path("/proc/driver/nvidia").exists() or Path("/dev/nvidia0").exists()


@contextlib.contextmanager
def _quiet_lightgbm() -> Iterator[None]:
    """Silence LightGBM's native log while probing (it prints its [Fatal] line itself)."""
    import lightgbm.basic as lgb_basic

    saved = (lgb_basic._LOGGER, lgb_basic._INFO_METHOD_NAME, lgb_basic._WARNING_METHOD_NAME)

    class _Silent:
        def info(self, msg: str) -> None:
            pass

        def warning(self, msg: str) -> None:
            pass

    lgb_basic._LOGGER = _Silent()
    lgb_basic._INFO_METHOD_NAME = "info"
    lgb_basic._WARNING_METHOD_NAME = "warning"
    try:
        yield
    finally:
        (lgb_basic._LOGGER, lgb_basic._INFO_METHOD_NAME, lgb_basic._WARNING_METHOD_NAME) = saved


@functools.cache
def _cuda_usable(backend: str) -> bool:
    """Train a tiny model on the GPU; True when that works (cached per process)."""
    if not _nvidia_device_present():
        return False
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2))
    y = X[:, 0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if backend == "xgboost":
                import xgboost as xgb

                if not xgb.build_info().get("USE_CUDA", False):
                    return False
                xgb.train({"device": "cuda", "verbosity": 0}, xgb.DMatrix(X, y), 1)
            else:
                import lightgbm as lgb

                with _quiet_lightgbm():
                    lgb.train(
                        {"device_type": "cuda", "verbosity": -1, "min_data_in_leaf": 1},
                        lgb.Dataset(X, y),
                        1,
                    )
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False
    return True


def cuda_available(backend: str | None = None) -> bool:
    """Whether a usable GPU and a CUDA build of ``backend`` (any backend if None) exist."""
    if backend is None:
        return any(_cuda_usable(b) for b in BACKENDS)
    return _cuda_usable(backend)


_FALLBACK_LOGGED: set[str] = set()


#: ``device="auto"`` trains on CUDA only from this many training rows on. Measured on an H200
#: against 16 CPU cores (``python -m benchmarks.device``, docs/benchmarks.md): brand adaptation
#: (270-11,000 rows) ran 2.5-3.2x slower on the GPU, pretraining on 475k rows 1.07x slower,
#: 1M rows was a tie (1.0-1.3x faster), 4M rows 3.2x faster and 10M rows 7x faster. XGBoost
#: pays a fixed cost per round on the GPU that small data never earns back.
AUTO_CUDA_MIN_ROWS = 1_000_000


def resolve_device(device: str, backend: str, n_rows: int | None = None) -> str:
    """Resolve ``"auto"``/``"cpu"``/``"cuda"`` to the device a backend will use.

    ``"auto"`` gives ``"cuda"`` only when :func:`cuda_available` says so and the training set
    has at least :data:`AUTO_CUDA_MIN_ROWS` rows (when ``n_rows`` is given), else ``"cpu"``
    (the missing GPU is logged once per backend). ``"cuda"`` without a usable GPU build
    raises; with one, it is used whatever the size.

    Raises
    ------
    TabTuneInputError
        For ``"cuda"`` on a machine or build without CUDA, or an unknown device.
    """
    if device == "cpu":
        return "cpu"
    if device not in ("auto", "cuda"):
        raise TabTuneInputError(f"unknown device {device!r}; expected 'auto', 'cpu' or 'cuda'")
    if cuda_available(backend):
        if device == "auto" and n_rows is not None and n_rows < AUTO_CUDA_MIN_ROWS:
            return "cpu"
        return "cuda"
    if device == "cuda":
        hint = (
            "install the CUDA build of xgboost (the `xgboost` wheel, not `xgboost-cpu`)"
            if backend == "xgboost"
            else "build LightGBM with -DUSE_CUDA=ON"
        )
        raise TabTuneInputError(
            f"device='cuda' was requested but {backend} cannot train on a GPU here (no usable "
            f"GPU, or a CPU-only build: {hint}); use device='auto' or 'cpu'"
        )
    if backend not in _FALLBACK_LOGGED:
        _FALLBACK_LOGGED.add(backend)
        logger.info("device='auto': no usable CUDA GPU for %s, training on CPU", backend)
    return "cpu"


# -- model directories ---------------------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def write_model_dir(
    path: str | os.PathLike[str], model_file: str, model_bytes: bytes, manifest: Mapping[str, Any]
) -> Path:
    """Write ``model_file`` and ``manifest.json`` into directory ``path``, atomically.

    The files are written (and fsynced) into a temporary sibling directory which is then
    renamed into place (:func:`tabtune.atomic.publish_dir`), so a reader never sees half a
    model. An existing model directory at ``path`` is replaced (moved aside, then the new one
    renamed in; restored if that rename fails); any other existing non-empty directory is
    refused.

    Returns
    -------
    Path
        The model directory.
    """
    target = user_path(path)  # "~/models/acme" made a folder named "~"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):  # bare OSErrors from pathlib (red-team)
        raise TabTuneInputError(
            f"cannot save a model to {target}: a part of {target.parent} is a file, not a "
            "folder; choose another path"
        ) from None
    except PermissionError as exc:
        raise TabTuneInputError(
            f"cannot save a model to {target}: no permission to create {exc.filename}; "
            "choose a folder you can write to"
        ) from None
    if target.exists():
        if not target.is_dir():
            raise TabTuneInputError(f"cannot save a model to {target}: it is a file")
        if any(target.iterdir()) and not (target / MANIFEST).exists():
            raise TabTuneInputError(
                f"cannot save a model to {target}: it is a non-empty directory that holds no "
                "tabtune model"
            )
    body = dict(manifest)
    body["model_file"] = model_file
    body["model_sha256"] = sha256_hex(model_bytes)
    body = seal(body)  # manifest_sha256: the manifest is covered by a checksum too
    with staging_dir(target.parent, prefix=f".{target.name}.tmp-") as tmp:
        write_durable(tmp / model_file, model_bytes)
        write_durable(tmp / MANIFEST, json.dumps(body, indent=2, sort_keys=True).encode())
        publish_dir(tmp, target, replace=True)
    return target


def read_model_dir(path: str | os.PathLike[str]) -> tuple[dict[str, Any], bytes]:
    """Read and verify a model directory written by :func:`write_model_dir`.

    Returns
    -------
    manifest : dict
    model_bytes : bytes

    Raises
    ------
    TabTuneInputError
        When the directory or its manifest is missing or malformed.
    ModelIntegrityError
        When the model file's SHA-256 does not match the manifest, or the manifest's own
        ``manifest_sha256`` (:mod:`tabtune.integrity`) does not match its content.
    """
    root = user_path(path)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise TabTuneInputError(f"{root} is not a saved tabtune model: no {MANIFEST}")
    try:
        manifest = json.loads(manifest_path.read_text())
        model_file = manifest["model_file"]
        expected = manifest["model_sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(f"{manifest_path} is malformed: {exc}") from exc
    check_seal(manifest, str(manifest_path), legacy=manifest.get("format_version") == 1)
    if Path(model_file).name != model_file:
        raise ModelIntegrityError(f"{manifest_path} names an invalid model file {model_file!r}")
    model_path = root / model_file
    if not model_path.is_file():
        raise ModelIntegrityError(f"{root} lacks its model file {model_file}")
    data = model_path.read_bytes()
    actual = sha256_hex(data)
    if actual != expected:
        raise ModelIntegrityError(
            f"{model_path} failed its checksum: sha256 {actual} != {expected} in the manifest "
            "(the file was modified or truncated)"
        )
    return manifest, data
