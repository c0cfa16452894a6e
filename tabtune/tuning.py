"""Optuna tuning of pretraining and adaptation: search spaces, time-ordered CV, pruning, storage.

Three kinds of study, each stored under a fixed name so that rerunning adds trials:

- ``"{task}:global"`` tunes the global model's boosting parameters (``ModelConfig``);
- ``"{task}:adapt:{bucket}"`` tunes adaptation (``AdaptationConfig``) on many brands of one
  size bucket (``small`` < 1,000 task rows, ``medium`` < 10,000, ``large``);
- ``"{task}:brand:{brand}"`` tunes adaptation for one brand, warm-started from its bucket.

Every trial is scored on the same rolling-origin folds: fold *k* trains on the dates before
``cut_k`` and validates on ``[cut_k, cut_k + horizon)``, never on a random split. The score is
the weighted deviance of the task's loss (Tweedie or Poisson deviance, squared error, or log
loss for classification tasks) averaged over the folds;
the running mean is reported after each fold, so the median pruner stops bad trials after
their first, cheapest fold. The configured defaults are always the first trial, which makes
"gain over defaults" a measurement on identical folds rather than a guess.

A study freezes what defines its problem when it is created (the data window, folds, brands,
default parameters and, for adaptation, the global parameters of the fold base models) in a
user attribute, so a rerun next week adds comparable trials instead of mixing two problems.

Storage URLs: ``sqlite:///models/tuning.db`` (the default: one process, resumable),
``journal:<path>`` (several processes on one machine) and ``postgresql[+psycopg2]://...``
(several machines). Parallel workers are separate processes started with
:func:`run_parallel_workers`; SQLite is refused for them (its FAQ warns of "database is
locked"). A worker that dies leaves a ``RUNNING`` trial behind: the next run marks such trials
``FAIL`` when their process is gone (same host) and re-enqueues the defaults if they were lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError

from tabtune.config import AdaptationConfig, Config, ModelConfig, TaskConfig
from tabtune.errors import ConfigError, TabTuneInputError
from tabtune.evaluation import Fold, model_losses, rolling_origin_folds, score_objective
from tabtune.features import GROUP_COLUMN, TIME_COLUMN, TaskData
from tabtune.params import section_params
from tabtune.progress import ProgressFactory, track

__all__ = [
    "ADAPT_SPACE",
    "BUCKETS",
    "GLOBAL_SPACE",
    "Fold",
    "ParamSpace",
    "StorageSpec",
    "StudySpec",
    "TuningResult",
    "apply_params",
    "best_params",
    "bucket_for_rows",
    "default_params",
    "default_pruner",
    "open_storage",
    "parse_storage",
    "reap_dead_trials",
    "resolve_search_space",
    "rolling_origin_folds",
    "run_parallel_workers",
    "study_name",
    "tune_adaptation",
    "tune_brand",
    "tune_global",
    "tune_scope",
]

logger = logging.getLogger("tabtune")

# -------------------------------------------------------------------------- search spaces
#: Default search space of the global model (from :data:`tabtune.params.PARAMETERS`); each
#: entry overridable by ``tuning.search_space``.
GLOBAL_SPACE: dict[str, dict[str, Any]] = {
    p.name: p.tuning.to_dict() for p in section_params("model").values() if p.tuning is not None
}

#: Default search space of adaptation (from :data:`tabtune.params.PARAMETERS`).
ADAPT_SPACE: dict[str, dict[str, Any]] = {
    p.name: p.tuning.to_dict()
    for p in section_params("adaptation").values()
    if p.tuning is not None
}

_SECTION_OF = {**dict.fromkeys(GLOBAL_SPACE, "model"), **dict.fromkeys(ADAPT_SPACE, "adaptation")}
_INT_PARAMS = frozenset(
    name
    for section in ("model", "adaptation")
    for name, p in section_params(section).items()
    if name in _SECTION_OF and p.integer
)
_SPEC_KEYS = frozenset({"low", "high", "log", "choices"})

#: Size buckets of brands by task rows: (name, exclusive upper bound).
BUCKETS: tuple[tuple[str, float], ...] = (("small", 1000), ("medium", 10000), ("large", math.inf))

Scope = Literal["global", "adapt", "brand"]

# Attribute keys written by tabtune into studies and trials.
SPEC_ATTR = "tabtune:spec"
ROLE_ATTR = "tabtune:role"
WORKER_ATTR = "tabtune:worker"
FOLDS_ATTR = "tabtune:fold_scores"
ERROR_ATTR = "tabtune:error"
WARM_ATTR = "tabtune:warm_params"
ROLE_DEFAULTS = "defaults"
ROLE_WARM_START = "warm_start"
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
_SPEC_VERSION = 1


@dataclass(frozen=True)
class ParamSpace:
    """The range one parameter is searched over.

    Parameters
    ----------
    name : str
        The parameter, named as in ``ModelConfig`` / ``AdaptationConfig``.
    low, high : float or int, optional
        Inclusive bounds of a numeric range.
    log : bool, default False
        Search ``[low, high]`` on a log scale.
    choices : tuple, optional
        The values of a categorical parameter (instead of a range).
    integer : bool, default False
        Suggest integers.
    """

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None
    integer: bool = False

    def suggest(self, trial: optuna.Trial) -> Any:
        """Draw this parameter's value for ``trial``."""
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a point of the space."""
        if self.choices is not None:
            return value in self.choices
        return value is not None and self.low <= value <= self.high

    def including(self, value: Any) -> tuple[ParamSpace, Any]:
        """The space widened to hold ``value``, and the value to evaluate for it.

        Zero on a log scale cannot be represented; it is evaluated as ``low`` (1e-8 in the
        default regularisation spaces, indistinguishable from 0 in practice).
        """
        if self.contains(value):
            return self, value
        if self.choices is not None:
            return replace(self, choices=(*self.choices, value)), value
        if self.log and value <= 0:
            return self, self.low
        return replace(self, low=min(self.low, value), high=max(self.high, value)), value

    def to_dict(self) -> dict[str, Any]:
        """The config spelling: ``{low, high, log}`` or ``{choices}``."""
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "log": self.log}


def _check_value(name: str, value: Any, where: str) -> None:
    section = ModelConfig if _SECTION_OF[name] == "model" else AdaptationConfig
    try:
        section.model_validate({name: value})
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"]
        raise ConfigError(f"{where}: {value!r} is not a valid {name}: {msg}") from None


def _param_space(name: str, override: Mapping[str, Any] | None) -> ParamSpace:
    where = f"tuning.search_space.{name}"
    default = GLOBAL_SPACE.get(name) or ADAPT_SPACE[name]
    raw = dict(default)
    if override:
        unknown = sorted(set(override) - _SPEC_KEYS)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key(s) {unknown}; write {{low, high, log}} or {{choices: [...]}}"
            )
        if "choices" in override:
            if set(override) - {"choices"}:
                raise ConfigError(f"{where}: give either choices or low/high/log, not both")
            raw = {"choices": override["choices"]}
        elif "choices" in raw:
            raw = dict(override)
        else:
            raw.update(override)
    if "choices" in raw:
        choices = raw["choices"]
        if not isinstance(choices, list | tuple) or len(choices) == 0:
            raise ConfigError(f"{where}: choices must be a non-empty list")
        for value in choices:
            _check_value(name, value, where)
        return ParamSpace(name, choices=tuple(choices), integer=name in _INT_PARAMS)
    if "low" not in raw or "high" not in raw:
        raise ConfigError(f"{where}: a range needs both low and high")
    low, high, log = raw["low"], raw["high"], bool(raw.get("log", False))
    for bound in (low, high):
        if isinstance(bound, bool) or not isinstance(bound, int | float):
            raise ConfigError(f"{where}: bounds must be numbers, got {bound!r}")
        if name in _INT_PARAMS and float(bound) != int(bound):
            raise ConfigError(f"{where}: {name} is an integer; got bound {bound!r}")
        _check_value(name, int(bound) if name in _INT_PARAMS else bound, where)
    if low >= high:
        raise ConfigError(f"{where}: empty range, low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log-scale range needs low > 0 (got {low})")
    if name in _INT_PARAMS:
        return ParamSpace(name, int(low), int(high), log, integer=True)
    return ParamSpace(name, float(low), float(high), log)


def resolve_search_space(cfg: Config, scope: Scope) -> dict[str, ParamSpace]:
    """The search space of a scope: the defaults in code overridden by ``tuning.search_space``.

    Every override is checked, whichever scope is asked for, so a typo fails the first time
    anything is tuned.

    Parameters
    ----------
    cfg : Config
    scope : {"global", "adapt", "brand"}
        ``"global"`` gives the boosting parameters, the others the adaptation parameters.

    Returns
    -------
    dict of str to ParamSpace
        Parameter name -> space; a parameter overridden with ``null`` is left out (not tuned).

    Raises
    ------
    ConfigError
        For an unknown parameter or key, an empty range (``low >= high``), a log range with
        ``low <= 0``, a bound or choice outside what the config section accepts, or a space
        with nothing left to tune.
    """
    overrides = cfg.tuning.search_space
    unknown = sorted(set(overrides) - set(_SECTION_OF))
    if unknown:
        raise ConfigError(
            f"tuning.search_space: unknown parameter(s) {unknown}; tunable parameters are "
            f"{sorted(GLOBAL_SPACE)} (global) and {sorted(ADAPT_SPACE)} (adaptation)"
        )
    spaces = {
        name: _param_space(name, overrides.get(name))
        for name in _SECTION_OF
        if not (name in overrides and overrides[name] is None)
    }
    names = GLOBAL_SPACE if scope == "global" else ADAPT_SPACE
    space = {name: spaces[name] for name in names if name in spaces}
    if not space:
        raise ConfigError(f"tuning.search_space: every {scope} parameter is disabled (null)")
    return space


def default_params(cfg: Config, names: Sequence[str]) -> dict[str, Any]:
    """The configured values of tunable parameters (the defaults trial).

    ``adapt_learning_rate: null`` means "the global model's learning rate", so that is the
    value the defaults trial evaluates.
    """
    out: dict[str, Any] = {}
    for name in names:
        section = cfg.model if _SECTION_OF[name] == "model" else cfg.adaptation
        value = getattr(section, name)
        if name == "adapt_learning_rate" and value is None:
            value = cfg.model.learning_rate
        out[name] = value
    return out


def apply_params(cfg: Config, params: Mapping[str, Any]) -> Config:
    """A copy of ``cfg`` with tuned parameters set in ``model`` / ``adaptation``.

    Parameters
    ----------
    cfg : Config
    params : mapping
        Parameter name -> value, as :func:`best_params` returns them.

    Returns
    -------
    Config
        A new, validated config; ``cfg`` is not changed.

    Raises
    ------
    ConfigError
        For an unknown name or a value the section rejects.
    """
    unknown = sorted(set(params) - set(_SECTION_OF))
    if unknown:
        raise ConfigError(f"unknown tuned parameter(s) {unknown}")
    model = {k: v for k, v in params.items() if _SECTION_OF[k] == "model"}
    adapt = {k: v for k, v in params.items() if _SECTION_OF[k] == "adaptation"}
    try:
        return cfg.model_copy(
            update={
                "model": ModelConfig.model_validate({**cfg.model.model_dump(), **model}),
                "adaptation": AdaptationConfig.model_validate(
                    {**cfg.adaptation.model_dump(), **adapt}
                ),
            }
        )
    except ValidationError as exc:
        raise ConfigError(f"tuned parameters {dict(params)} are invalid: {exc}") from None


# -------------------------------------------------------------------------- folds and scores
def _fold_loss(task: TaskConfig, est: Any, X: pd.DataFrame, y: np.ndarray) -> np.ndarray:
    """Per-row loss, matching the task's training loss (:func:`tabtune.evaluation.model_losses`).

    Log loss for a classification task; for regression the deviance of the task's objective
    (Tweedie with power 1.5, or Poisson) or squared error. Scoring folds with the loss the
    model trains on keeps the heavy right tail of money targets from dominating the choice.
    """
    return model_losses(est, X, y, score_objective(task.objective, task.kind))


def bucket_for_rows(n_rows: int) -> str:
    """The size bucket of a brand with ``n_rows`` task rows (``small``/``medium``/``large``)."""
    for name, upper in BUCKETS:
        if n_rows < upper:
            return name
    return BUCKETS[-1][0]  # pragma: no cover


def study_name(task: str, scope: str) -> str:
    """``"{task}:{scope}"``, e.g. ``"bid:global"``, ``"bid:adapt:small"``, ``"bid:brand:b001"``."""
    return f"{task}:{scope}"


# -------------------------------------------------------------------------- storage
@dataclass(frozen=True)
class StorageSpec:
    """A checked storage URL.

    Attributes
    ----------
    url : str
        As given.
    kind : {"sqlite", "journal", "rdb"}
    path : Path or None
        The file of a SQLite or journal storage.
    display : str
        The URL with any password hidden, for messages.
    """

    url: str
    kind: Literal["sqlite", "journal", "rdb"]
    path: Path | None
    display: str

    @property
    def parallel_safe(self) -> bool:
        """Whether several processes may write to it at once (not SQLite)."""
        return self.kind != "sqlite"


def parse_storage(url: str) -> StorageSpec:
    """Check a storage URL without touching the storage.

    Parameters
    ----------
    url : str
        ``sqlite:///<path>``, ``journal:<path>``, ``postgresql[+driver]://user@host/db`` or
        ``mysql[+driver]://...``.

    Returns
    -------
    StorageSpec

    Raises
    ------
    ConfigError
        For any other scheme, a missing path or database name, an in-memory SQLite database
        (nothing to resume), or a database driver that is not installed.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"tuning.storage: empty storage URL {url!r}")
    if url.startswith("journal:"):
        path = url[len("journal:") :]
        if not path:
            raise ConfigError(
                "tuning.storage: journal storage needs a file, e.g. journal:models/tuning.journal"
            )
        return StorageSpec(url, "journal", Path(path), url)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"tuning.storage: cannot parse {url!r}: {exc}") from None
    display = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not url.startswith("sqlite:///") or not parsed.database or parsed.database == ":memory:":
            raise ConfigError(
                f"tuning.storage: {display!r} needs a database file, e.g. sqlite:///models/tuning.db"
            )
        return StorageSpec(url, "sqlite", Path(parsed.database), display)
    if backend not in ("postgresql", "mysql"):
        raise ConfigError(
            f"tuning.storage: unsupported storage {display!r}; use sqlite:///<file>, "
            "journal:<file> or postgresql://user@host/db"
        )
    if not parsed.database or not parsed.host:
        raise ConfigError(f"tuning.storage: {display!r} needs a host and a database name")
    try:
        parsed.get_dialect().import_dbapi()
    except (ImportError, NoSuchModuleError) as exc:
        hint = "pip install psycopg2-binary" if backend == "postgresql" else "pip install pymysql"
        raise ConfigError(
            f"tuning.storage: the driver for {display!r} is not installed ({exc}); {hint}"
        ) from None
    return StorageSpec(url, "rdb", None, display)


def open_storage(storage: str | StorageSpec) -> optuna.storages.BaseStorage:
    """Open (creating if needed) an Optuna storage.

    SQLite and journal files get their parent folder created. PostgreSQL/MySQL storages get a
    heartbeat, so a trial whose worker died on another machine is failed after a few minutes.

    Raises
    ------
    ConfigError
        For a bad URL, or a database that cannot be reached or opened.
    """
    spec = storage if isinstance(storage, StorageSpec) else parse_storage(storage)
    if spec.kind == "journal":
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        spec.path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(spec.path)))
    from sqlalchemy.exc import SQLAlchemyError

    kwargs: dict[str, Any] = {}
    if spec.kind == "sqlite":
        spec.path.parent.mkdir(parents=True, exist_ok=True)
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    else:
        kwargs.update(
            engine_kwargs={"pool_pre_ping": True}, heartbeat_interval=60, grace_period=300
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(spec.url, **kwargs)
    except SQLAlchemyError as exc:
        raise ConfigError(
            f"tuning.storage: cannot open {spec.display}: {type(exc).__name__}: {exc}"
        ) from None


# -------------------------------------------------------------------------- worker liveness
def _process_start(pid: int) -> str | None:
    """The kernel's start time of a process (guards against pid reuse), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def _worker_identity() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}|{pid}|{_process_start(pid) or ''}"


def _worker_alive(identity: str) -> bool | None:
    """True/False for a worker on this host, None when it ran elsewhere (cannot tell)."""
    host, _, rest = identity.partition("|")
    pid_text, _, start = rest.partition("|")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
    except (OSError, IndexError):
        pass
    current = _process_start(pid)
    return not (start and current and current != start)


def reap_dead_trials(study: optuna.Study, *, stale_after: float = 3600.0) -> list[int]:
    """Mark ``RUNNING`` trials whose worker process is gone as ``FAIL``.

    Optuna leaves the trial of a killed process ``RUNNING`` forever (journal and SQLite have
    no heartbeat). A trial's worker is recorded when it starts; on this host a dead process is
    detected at once. A trial without a recorded worker (killed in the instant between its
    creation and the first line of the objective) is failed once older than ``stale_after``
    seconds. Trials of workers on other hosts are left to the RDB heartbeat.

    Returns
    -------
    list of int
        The numbers of the trials marked failed.
    """
    reaped = []
    now = datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get(WORKER_ATTR)
        if owner is not None:
            dead = _worker_alive(str(owner)) is False
        else:
            started = trial.datetime_start or now
            dead = (now - started).total_seconds() > stale_after
        if not dead:
            continue
        storage = study._storage
        storage.set_trial_user_attr(trial._trial_id, ERROR_ATTR, "worker process died")
        if storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
            reaped.append(trial.number)
    if reaped:
        logger.warning(
            "study %s: marked %d trial(s) left RUNNING by dead workers as FAIL: %s",
            study.study_name,
            len(reaped),
            reaped,
        )
    return reaped


# -------------------------------------------------------------------------- study spec
@dataclass
class StudySpec:
    """What defines a study's problem, frozen when the study is created.

    Attributes
    ----------
    task, scope : str
        The task, and ``"global"``, ``"adapt"`` or ``"brand"``.
    bucket : str or None
        The size bucket of an adaptation or brand study.
    brands : list of str
        The brands an adaptation or brand study scores (empty for global).
    data_end : str
        ISO date of the newest row used; later rows are ignored on every rerun.
    n_folds, horizon : int
        Rolling-origin folds (``horizon`` in distinct dates).
    defaults : dict
        The default parameters, evaluated as the first trial.
    base_params : dict
        For adaptation: the global model's parameters used for each fold's base model.
    space : dict
        The search space at creation, in the config spelling (for the record; a rerun
        searches the space configured then).
    config : dict
        The whole configuration at creation, so a worker on another machine can rebuild it.
    """

    task: str
    scope: str
    data_end: str
    n_folds: int
    horizon: int
    defaults: dict[str, Any]
    bucket: str | None = None
    brands: list[str] = field(default_factory=list)
    base_params: dict[str, Any] = field(default_factory=dict)
    space: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    version: int = _SPEC_VERSION

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return json.loads(json.dumps(asdict(self), default=str))

    @classmethod
    def from_study(cls, study: optuna.Study) -> StudySpec:
        """The spec stored in a study by tabtune."""
        raw = study.user_attrs.get(SPEC_ATTR)
        if raw is None:
            raise TabTuneInputError(
                f"study {study.study_name!r} was not created by tabtune (no {SPEC_ATTR} attribute)"
            )
        return cls(**raw)


# -------------------------------------------------------------------------- objective
class _Objective:
    """Scores one parameter set on the study's rolling-origin folds."""

    def __init__(
        self,
        cfg: Config,
        spec: StudySpec,
        data: TaskData,
        space: Mapping[str, ParamSpace],
    ) -> None:
        self.cfg = cfg
        self.task = cfg.task(spec.task)
        self.spec = spec
        self.space = dict(space)
        end = pd.Timestamp(spec.data_end)
        dates = pd.to_datetime(data.X[TIME_COLUMN])
        keep = (dates <= end).to_numpy()
        self.X = data.X.loc[keep].reset_index(drop=True)
        self.y = np.asarray(data.y)[keep]
        self.w = None if data.weight is None else np.asarray(data.weight)[keep]
        self.dates = pd.to_datetime(self.X[TIME_COLUMN]).dt.normalize().to_numpy()
        if spec.scope == "global":
            fold_dates = self.dates
        else:
            mask = self.X[GROUP_COLUMN].astype(str).isin(spec.brands).to_numpy()
            if not mask.any():
                raise TabTuneInputError(
                    f"none of the brands {spec.brands} has rows up to {end.date()}"
                )
            fold_dates = self.dates[mask]
            self.brand_rows = {
                b: np.flatnonzero((self.X[GROUP_COLUMN].astype(str) == b).to_numpy())
                for b in spec.brands
            }
        self.folds = rolling_origin_folds(fold_dates, spec.n_folds, horizon=spec.horizon)
        self._bases: dict[int, Any] = {}

    def _weights(self, idx: np.ndarray) -> np.ndarray | None:
        return None if self.w is None else self.w[idx]

    def _global_fold(self, cfg: Config, fold: Fold) -> tuple[float, float]:
        from tabtune.pipeline import global_estimator

        train, valid = fold.train, fold.valid  # the folds were cut on every row's date
        est = global_estimator(cfg, self.task)
        est.fit(self.X.iloc[train], self.y[train], sample_weight=self._weights(train))
        loss = _fold_loss(self.task, est, self.X.iloc[valid], self.y[valid])
        w = self._weights(valid)
        w = np.ones(len(valid)) if w is None else w
        return float(np.sum(w * loss)), float(np.sum(w))

    def _base(self, fold: Fold) -> Any:
        """The global model of a fold: pooled rows of every brand dated before the cut."""
        if fold.index not in self._bases:
            from tabtune.pipeline import global_estimator

            cfg = apply_params(self.cfg, self.spec.base_params)
            train = np.flatnonzero(self.dates < fold.cut.to_datetime64())
            est = global_estimator(cfg, self.task)
            est.fit(self.X.iloc[train], self.y[train], sample_weight=self._weights(train))
            self._bases[fold.index] = est
        return self._bases[fold.index]

    def _adapt_fold(self, cfg: Config, fold: Fold) -> tuple[float, float]:
        from tabtune.pipeline import brand_estimator

        base = self._base(fold)
        cut, end = fold.cut.to_datetime64(), fold.end.to_datetime64()
        total, weight = 0.0, 0.0
        for brand in self.spec.brands:
            rows = self.brand_rows[brand]
            d = self.dates[rows]
            train, valid = rows[d < cut], rows[(d >= cut) & (d < end)]
            if len(valid) == 0:
                continue
            if len(train) == 0:  # a brand new since the cut is served by the global model
                est = base
            else:
                est = brand_estimator(cfg, self.task, base)
                est.fit(self.X.iloc[train], self.y[train], sample_weight=self._weights(train))
            loss = _fold_loss(self.task, est, self.X.iloc[valid], self.y[valid])
            w = self._weights(valid)
            w = np.ones(len(valid)) if w is None else w
            total += float(np.sum(w * loss))
            weight += float(np.sum(w))
        return total, weight

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr(WORKER_ATTR, _worker_identity())
        params = {name: space.suggest(trial) for name, space in self.space.items()}
        cfg = apply_params(
            self.cfg
            if self.spec.scope == "global"
            else apply_params(self.cfg, self.spec.base_params),
            params,
        )
        prunable = trial.user_attrs.get(ROLE_ATTR) != ROLE_DEFAULTS
        scores: list[float] = []
        try:
            for fold in self.folds:
                if self.spec.scope == "global":
                    total, weight = self._global_fold(cfg, fold)
                else:
                    total, weight = self._adapt_fold(cfg, fold)
                if weight <= 0:
                    continue
                score = total / weight
                if not np.isfinite(score):
                    raise FloatingPointError(f"fold {fold.index}: loss is {score}")
                scores.append(score)
                running = float(np.mean(scores))
                trial.report(running, step=fold.index)
                trial.set_user_attr(FOLDS_ATTR, scores)
                last = fold.index == self.folds[-1].index
                if prunable and not last and trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after fold {fold.index}: mean {running:.6g}")
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr(ERROR_ATTR, f"{type(exc).__name__}: {exc}")
            raise
        if not scores:
            raise TabTuneInputError("no fold had validation rows")
        return float(np.mean(scores))


# -------------------------------------------------------------------------- result
@dataclass
class TuningResult:
    """What a tuning run found.

    Attributes
    ----------
    study_name : str
    storage : str
        The storage URL, password hidden.
    best_params, best_value : dict, float or None
        The best complete trial of the whole study (None when no trial completed).
    default_params, default_value : dict, float or None
        The defaults trial.
    gain_pct : float or None
        ``100 * (default_value - best_value) / default_value``: how much lower the best
        trial's loss is than the defaults' (0 when the defaults are best).
    n_trials : int
        Trials in the study, of every state.
    n_complete, n_pruned, n_failed : int
        Finished trials by state, in the whole study.
    n_new : int
        Trials this run finished.
    seconds : float
    """

    study_name: str
    storage: str
    best_params: dict[str, Any] | None
    best_value: float | None
    default_params: dict[str, Any]
    default_value: float | None
    gain_pct: float | None
    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int
    n_new: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return asdict(self)


def _role(trial: FrozenTrial) -> str | None:
    return trial.user_attrs.get(ROLE_ATTR)


def _result(
    study: optuna.Study, spec: StudySpec, storage: StorageSpec, n_before: int, t0: float
) -> TuningResult:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    finished = sum(t.state in _FINISHED for t in trials)
    best = min(complete, key=lambda t: t.value) if complete else None
    defaults = next((t for t in complete if _role(t) == ROLE_DEFAULTS), None)
    default_value = None if defaults is None else float(defaults.value)
    gain = None
    if best is not None and default_value:
        gain = 100.0 * (default_value - float(best.value)) / default_value
    return TuningResult(
        study_name=study.study_name,
        storage=storage.display,
        best_params=None if best is None else dict(best.params),
        best_value=None if best is None else float(best.value),
        default_params=dict(spec.defaults),
        default_value=default_value,
        gain_pct=gain,
        n_trials=len(trials),
        n_complete=len(complete),
        n_pruned=sum(t.state == TrialState.PRUNED for t in trials),
        n_failed=sum(t.state == TrialState.FAIL for t in trials),
        n_new=finished - n_before,
        seconds=time.perf_counter() - t0,
    )


# -------------------------------------------------------------------------- study setup
def default_pruner() -> optuna.pruners.BasePruner:
    """Median stopping rule on the fold-by-fold running mean, after 5 complete trials."""
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)


def _sampler(seed: int) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(seed=seed)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial at INFO; the progress bar and summary say it better."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _space_with_defaults(
    space: Mapping[str, ParamSpace], defaults: Mapping[str, Any], study: str
) -> tuple[dict[str, ParamSpace], dict[str, Any]]:
    """Widen spaces so the defaults are points of them; the defaults as they are evaluated."""
    out_space, out_defaults = {}, {}
    for name, sp in space.items():
        widened, value = sp.including(defaults[name])
        if widened != sp:
            logger.info(
                "study %s: search space of %s widened to include its default %r", study, name, value
            )
        elif value != defaults[name]:
            logger.debug(
                "study %s: default %s=%r is not on the log scale; the defaults trial uses %r",
                study,
                name,
                defaults[name],
                value,
            )
        out_space[name], out_defaults[name] = widened, value
    return out_space, out_defaults


def _prepare_study(
    storage: StorageSpec, name: str, new_spec: StudySpec
) -> tuple[optuna.Study, StudySpec]:
    """Create the study (or load it), record its spec once, reap dead trials, queue defaults."""
    study = optuna.create_study(
        study_name=name,
        storage=open_storage(storage),
        direction="minimize",
        load_if_exists=True,
    )
    raw = study.user_attrs.get(SPEC_ATTR)
    if raw is None:
        study.set_user_attr(SPEC_ATTR, new_spec.to_json())
        spec = new_spec
    else:
        spec = StudySpec(**raw)
        then, now = spec.config.get("backend"), new_spec.config.get("backend")
        if then and now and then != now:
            raise ConfigError(
                f"study {name} in {storage.display} holds {then} trials; tuning {now} into it "
                "would mix two models' scores. Use another tuning.storage, or delete the study "
                f"(optuna.delete_study(study_name={name!r}, storage=...))"
            )
        if spec.defaults != new_spec.defaults:
            logger.warning(
                "study %s: the configured defaults changed since it was created; gains are "
                "measured against the defaults recorded then: %s",
                name,
                spec.defaults,
            )
        if spec.brands != new_spec.brands:
            logger.warning(
                "study %s: scores the brands recorded when it was created (%s), not %s",
                name,
                spec.brands,
                new_spec.brands,
            )
        if spec.data_end != new_spec.data_end:
            logger.info(
                "study %s: uses data up to %s (its window when created), not %s",
                name,
                spec.data_end,
                new_spec.data_end,
            )
    reap_dead_trials(study)
    live = (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
    if not any(_role(t) == ROLE_DEFAULTS for t in study.get_trials(deepcopy=False, states=live)):
        study.enqueue_trial(dict(spec.defaults), user_attrs={ROLE_ATTR: ROLE_DEFAULTS})
    return study, spec


def _load_data(cfg: Config, task: TaskConfig, end: Any, data: TaskData | None) -> TaskData:
    if data is not None:
        return data
    from tabtune.pipeline import load_task_data

    return load_task_data(cfg, task, end=end)


def _data_end(data: TaskData) -> str:
    return str(pd.to_datetime(data.X[TIME_COLUMN]).max().date())


def _check_budget(n_trials: int | None, timeout: float | None, n_jobs: int) -> None:
    if n_trials is not None and n_trials < 1:
        raise TabTuneInputError(f"--trials must be >= 1, got {n_trials}")
    if timeout is not None and not timeout > 0:
        raise TabTuneInputError(f"--timeout must be > 0 seconds, got {timeout}")
    if n_jobs < 1:
        raise TabTuneInputError(f"n_jobs must be >= 1, got {n_jobs}")


@dataclass
class _Job:
    """One tuning run's inputs, shared by the in-process path and the worker processes."""

    cfg: Config
    storage: StorageSpec
    name: str
    spec: StudySpec
    space: dict[str, ParamSpace]
    data: TaskData
    pruner: optuna.pruners.BasePruner | None = None


def _stop_when_defaults_fail(study: optuna.Study, trial: FrozenTrial) -> None:
    """A failing defaults trial means the problem itself is broken: stop instead of looping."""
    if trial.state == TrialState.FAIL and _role(trial) == ROLE_DEFAULTS:
        study.stop()


def _raise_if_broken(study: optuna.Study) -> None:
    trials = study.get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL and _role(t) == ROLE_DEFAULTS]
    if failed and not any(t.state == TrialState.COMPLETE for t in trials):
        error = failed[-1].user_attrs.get(ERROR_ATTR, "unknown error")
        raise RuntimeError(f"study {study.study_name}: the defaults trial failed: {error}")


def _finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=_FINISHED))


def _status(study: optuna.Study) -> str:
    trials = study.get_trials(deepcopy=False, states=_FINISHED)
    complete = [t.value for t in trials if t.state == TrialState.COMPLETE]
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    best = f"best {min(complete):.5g}" if complete else "no complete trial yet"
    return f"{best}, {pruned} pruned"


def _run(
    job: _Job,
    n_trials: int | None,
    timeout: float | None,
    n_jobs: int,
    progress: ProgressFactory | None,
) -> TuningResult:
    t0 = time.perf_counter()
    n_trials = n_trials if n_trials is not None else job.cfg.tuning.n_trials
    timeout = timeout if timeout is not None else job.cfg.tuning.timeout
    with _quiet_optuna():
        study, spec = _prepare_study(job.storage, job.name, job.spec)
        job.spec = spec
        job.space, _ = _space_with_defaults(job.space, spec.defaults, job.name)
        n_before = _finished(study)
        if n_jobs > 1:
            run_parallel_workers(
                job.storage.url,
                job.name,
                n_jobs,
                n_trials,
                cfg=job.cfg,
                timeout=timeout,
                data=job.data,
                progress=progress,
                pruner=job.pruner,
            )
        else:
            objective = _Objective(job.cfg, spec, job.data, job.space)
            study.sampler = _sampler(job.cfg.tuning.seed + len(study.trials))
            study.pruner = job.pruner or default_pruner()
            with track(progress, job.name, n_trials) as update:

                def advance(st: optuna.Study, _trial: FrozenTrial) -> None:
                    if progress is not None:
                        update(advance=1, status=_status(st))

                study.optimize(
                    objective,
                    n_trials=n_trials,
                    timeout=timeout,
                    catch=(Exception,),
                    callbacks=[advance, _stop_when_defaults_fail],
                )
        _raise_if_broken(study)
        return _result(study, spec, job.storage, n_before, t0)


# -------------------------------------------------------------------------- public entry points
def _storage_for(cfg: Config, storage: str | None) -> StorageSpec:
    return parse_storage(storage if storage is not None else cfg.tuning.storage)


def _horizon(dates: Any, cfg: Config) -> int:
    """Distinct dates per validation window: ``validation_fraction`` of them over the folds."""
    n_dates = pd.to_datetime(pd.Series(np.asarray(dates))).dt.normalize().nunique()
    horizon = max(1, int(n_dates * cfg.adaptation.validation_fraction) // cfg.tuning.n_folds)
    rolling_origin_folds(dates, cfg.tuning.n_folds, horizon=horizon)  # enough history?
    return horizon


def tune_global(
    cfg: Config,
    task: str,
    n_trials: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    *,
    n_jobs: int = 1,
    data: TaskData | None = None,
    progress: ProgressFactory | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> TuningResult:
    """Tune the global model of a task (study ``"{task}:global"``).

    Parameters
    ----------
    cfg : Config
    task : str
        A configured task.
    n_trials : int, optional
        Trials this run adds (split among the workers); default ``tuning.n_trials``.
    timeout : float, optional
        Seconds, checked between trials; default ``tuning.timeout``.
    storage : str, optional
        Storage URL; default ``tuning.storage``.
    n_jobs : int, default 1
        Worker processes; more than one needs a journal or PostgreSQL storage.
    data : TaskData, optional
        The pooled model inputs; default read from the configured store.
    progress : ProgressFactory, optional
        Reports each finished trial (:mod:`tabtune.progress`); default silent.
    pruner : optuna.pruners.BasePruner, optional
        Default :func:`default_pruner` (median rule, after 5 complete trials).

    Returns
    -------
    TuningResult

    Raises
    ------
    ConfigError
        For a bad search space or storage, before any trial runs.
    TabTuneInputError
        For missing data or too little history for the folds.
    RuntimeError
        When the defaults trial fails (the message carries its error).
    """
    _check_budget(n_trials, timeout, n_jobs)
    job = _global_job(cfg, task, storage, data, n_jobs)
    job.pruner = pruner
    return _run(job, n_trials, timeout, n_jobs, progress)


def _global_job(
    cfg: Config, task: str, storage: str | None, data: TaskData | None, n_jobs: int
) -> _Job:
    task_cfg = cfg.task(task)
    space = resolve_search_space(cfg, "global")
    store = _storage_for(cfg, storage)
    _check_parallel(store, n_jobs)
    data = _load_data(cfg, task_cfg, None, data)
    name = study_name(task, "global")
    space, defaults = _space_with_defaults(space, default_params(cfg, list(space)), name)
    spec = StudySpec(
        task=task,
        scope="global",
        data_end=_data_end(data),
        n_folds=cfg.tuning.n_folds,
        horizon=_horizon(data.X[TIME_COLUMN], cfg),
        defaults=defaults,
        space={name: sp.to_dict() for name, sp in space.items()},
        config=cfg.model_dump(mode="json"),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return _Job(cfg, store, name, spec, space, data)


def _check_parallel(store: StorageSpec, n_jobs: int) -> None:
    if n_jobs > 1 and not store.parallel_safe:
        raise ConfigError(
            f"tuning.storage: {store.display} is SQLite, which cannot serve {n_jobs} parallel "
            "workers ('database is locked'); use journal:models/tuning.journal (one machine) "
            "or postgresql://... (several)"
        )


def _rows_per_brand(data: TaskData, end: str | None = None) -> pd.Series:
    X = data.X
    if end is not None:
        X = X.loc[pd.to_datetime(X[TIME_COLUMN]) <= pd.Timestamp(end)]
    return X[GROUP_COLUMN].astype(str).value_counts().sort_index()


def _adapt_job(
    cfg: Config,
    task: str,
    scope: str,
    bucket: str,
    brands: list[str],
    storage: str | None,
    data: TaskData,
    base_params: Mapping[str, Any] | None,
    n_jobs: int,
) -> _Job:
    space = resolve_search_space(cfg, "adapt")
    store = _storage_for(cfg, storage)
    _check_parallel(store, n_jobs)
    name = study_name(task, scope)
    base = default_params(cfg, list(GLOBAL_SPACE))
    if base_params:
        base.update(base_params)
    # validates the names and values; adapt_learning_rate=None follows the base's rate
    base_cfg = apply_params(cfg, base)
    space, defaults = _space_with_defaults(space, default_params(base_cfg, list(space)), name)
    brand_dates = data.X.loc[data.X[GROUP_COLUMN].astype(str).isin(brands), TIME_COLUMN]
    spec = StudySpec(
        task=task,
        scope="adapt" if scope.startswith("adapt:") else "brand",
        bucket=bucket,
        brands=list(brands),
        data_end=_data_end(data),
        n_folds=cfg.tuning.n_folds,
        horizon=_horizon(brand_dates, cfg),
        defaults=defaults,
        space={name: sp.to_dict() for name, sp in space.items()},
        base_params=base,
        config=cfg.model_dump(mode="json"),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return _Job(cfg, store, name, spec, space, data)


def _select_brands(counts: pd.Series, bucket: str, max_brands: int) -> list[str]:
    chosen = [b for b, n in counts.items() if bucket_for_rows(int(n)) == bucket]
    if len(chosen) > max_brands:  # evenly spaced over the sorted ids: deterministic, spread out
        picks = np.linspace(0, len(chosen) - 1, max_brands).round().astype(int)
        chosen = [chosen[i] for i in sorted(set(picks))]
    return chosen


def tune_adaptation(
    cfg: Config,
    task: str,
    bucket: str,
    brands: Sequence[str] | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    *,
    max_brands: int = 20,
    base_params: Mapping[str, Any] | None = None,
    n_jobs: int = 1,
    data: TaskData | None = None,
    progress: ProgressFactory | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> TuningResult:
    """Tune adaptation on the brands of a size bucket (study ``"{task}:adapt:{bucket}"``).

    Each fold pretrains a global model on every brand's rows before the cut (once per
    process, then cached), adapts it to each chosen brand's rows before the cut, and scores
    the brands' rows in the validation window together.

    Parameters
    ----------
    cfg : Config
    task : str
    bucket : {"small", "medium", "large"}
    brands : sequence of str, optional
        Brands to score; default up to ``max_brands`` of the bucket's brands, spread evenly
        over their sorted ids. Frozen in the study when it is created.
    n_trials, timeout, storage, n_jobs, data, progress, pruner
        As in :func:`tune_global`.
    max_brands : int, default 20
    base_params : mapping, optional
        Global-model parameters for the fold base models (e.g. ``best_params(cfg, task,
        "global")``); default the configured ``model`` section.

    Returns
    -------
    TuningResult
    """
    _check_budget(n_trials, timeout, n_jobs)
    names = [b[0] for b in BUCKETS]
    if bucket not in names:
        raise TabTuneInputError(f"unknown bucket {bucket!r}; buckets are {names}")
    task_cfg = cfg.task(task)
    resolve_search_space(cfg, "adapt")
    _check_parallel(_storage_for(cfg, storage), n_jobs)
    data = _load_data(cfg, task_cfg, None, data)
    counts = _rows_per_brand(data)
    if brands is None:
        chosen = _select_brands(counts, bucket, max_brands)
    else:
        chosen = [str(b) for b in brands]
        unknown = [b for b in chosen if b not in counts.index]
        if unknown:
            raise TabTuneInputError(f"brand(s) {unknown} have no rows for task {task!r}")
    if not chosen:
        raise TabTuneInputError(f"no brand of task {task!r} is in the {bucket!r} bucket")
    job = _adapt_job(
        cfg, task, f"adapt:{bucket}", bucket, chosen, storage, data, base_params, n_jobs
    )
    job.pruner = pruner
    return _run(job, n_trials, timeout, n_jobs, progress)


def tune_brand(
    cfg: Config,
    task: str,
    brand: str,
    n_trials: int | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    *,
    warm_start_from: str | None = None,
    base_params: Mapping[str, Any] | None = None,
    n_jobs: int = 1,
    data: TaskData | None = None,
    progress: ProgressFactory | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> TuningResult:
    """Tune adaptation for one brand (study ``"{task}:brand:{brand}"``).

    The defaults run first, then the best parameters of the brand's bucket study (when that
    study has a complete trial), then the sampler's proposals.

    Parameters
    ----------
    cfg : Config
    task, brand : str
    warm_start_from : str, optional
        A study whose best parameters are tried second; default ``"{task}:adapt:{bucket}"``
        of the brand's size bucket.
    n_trials, timeout, storage, base_params, n_jobs, data, progress, pruner
        As in :func:`tune_adaptation`.

    Returns
    -------
    TuningResult
    """
    _check_budget(n_trials, timeout, n_jobs)
    task_cfg = cfg.task(task)
    resolve_search_space(cfg, "brand")
    store = _storage_for(cfg, storage)
    _check_parallel(store, n_jobs)
    data = _load_data(cfg, task_cfg, None, data)
    counts = _rows_per_brand(data)
    if brand not in counts.index:
        raise TabTuneInputError(f"brand {brand!r} has no rows for task {task!r}")
    bucket = bucket_for_rows(int(counts[brand]))
    job = _adapt_job(
        cfg, task, f"brand:{brand}", bucket, [brand], storage, data, base_params, n_jobs
    )
    source = warm_start_from or study_name(task, f"adapt:{bucket}")
    warm = _best_params_in(store, source)
    if warm is not None:
        with _quiet_optuna():
            study, spec = _prepare_study(store, job.name, job.spec)
            warm = {k: v for k, v in warm.items() if k in job.space}
            tried = [
                t.user_attrs.get(WARM_ATTR)
                for t in study.get_trials(deepcopy=False)
                if t.state != TrialState.FAIL
            ]
            if warm and warm != spec.defaults and warm not in tried:
                job.space, _ = _space_with_defaults(job.space, {**spec.defaults, **warm}, job.name)
                study.enqueue_trial(
                    warm,
                    user_attrs={ROLE_ATTR: ROLE_WARM_START, WARM_ATTR: warm, "from": source},
                )
                logger.info("study %s: warm start from %s: %s", job.name, source, warm)
    job.pruner = pruner
    return _run(job, n_trials, timeout, n_jobs, progress)


def _best_params_in(store: StorageSpec, name: str) -> dict[str, Any] | None:
    if store.kind != "rdb" and not store.path.exists():
        return None  # do not create an empty database just to look
    with _quiet_optuna():
        storage = open_storage(store)
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            return None
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    return dict(min(complete, key=lambda t: t.value).params)


def best_params(
    cfg: Config, task: str, scope: str, storage: str | None = None
) -> dict[str, Any] | None:
    """The best complete trial's parameters of a study, for the refresh to use.

    Parameters
    ----------
    cfg : Config
    task : str
    scope : str
        ``"global"``, ``"adapt:<bucket>"`` or ``"brand:<brand>"``.
    storage : str, optional
        Default ``tuning.storage``.

    Returns
    -------
    dict or None
        Parameter name -> value (names as in the config sections; apply them with
        :func:`apply_params`), or None when the study or its storage does not exist or no
        trial has completed. The defaults are a trial, so these never scored worse than the
        defaults on the study's folds.
    """
    if not (scope == "global" or scope.startswith(("adapt:", "brand:"))):
        raise TabTuneInputError(
            f"unknown scope {scope!r}; use 'global', 'adapt:<bucket>' or 'brand:<brand>'"
        )
    return _best_params_in(_storage_for(cfg, storage), study_name(task, scope))


# -------------------------------------------------------------------------- parallel workers
@dataclass
class _WorkerArgs:
    """What a worker process needs; plain data, sent to the child by multiprocessing."""

    storage: str
    study_name: str
    n_trials: int
    timeout: float | None
    config: dict[str, Any]
    data_path: str | None
    seed: int
    threads: int
    pruner: optuna.pruners.BasePruner | None = None


def _write_data(data: TaskData, path: Path) -> None:
    frame = data.X.copy()
    frame["__y__"] = np.asarray(data.y)
    if data.weight is not None:
        frame["__weight__"] = np.asarray(data.weight)
    frame.to_parquet(path, index=False)


def _read_data(path: str | Path) -> TaskData:
    frame = pd.read_parquet(path)
    y = frame.pop("__y__").to_numpy()
    weight = frame.pop("__weight__").to_numpy() if "__weight__" in frame else None
    return TaskData(X=frame, y=y, weight=weight, rows=frame)


def _worker_main(args: _WorkerArgs) -> None:
    # Set before the boosting library loads its OpenMP runtime in this fresh process.
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = Config.model_validate(args.config)
    storage = parse_storage(args.storage)
    study = optuna.load_study(
        study_name=args.study_name,
        storage=open_storage(storage),
        sampler=_sampler(args.seed),
        pruner=args.pruner or default_pruner(),
    )
    spec = StudySpec.from_study(study)
    task = cfg.task(spec.task)
    data = (
        _read_data(args.data_path) if args.data_path else _load_data(cfg, task, spec.data_end, None)
    )
    space, _ = _space_with_defaults(
        resolve_search_space(cfg, "global" if spec.scope == "global" else "adapt"),
        spec.defaults,
        args.study_name,
    )
    study.optimize(
        _Objective(cfg, spec, data, space),
        n_trials=args.n_trials,
        timeout=args.timeout,
        catch=(Exception,),
        callbacks=[_stop_when_defaults_fail],
    )


def _stop_workers(procs: Sequence[multiprocessing.process.BaseProcess]) -> None:
    """Terminate workers still running; their trials are reaped by the next run."""
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=10)


def run_parallel_workers(
    storage: str,
    study_name: str,
    n_workers: int,
    n_trials: int,
    *,
    cfg: Config | None = None,
    timeout: float | None = None,
    data: TaskData | None = None,
    progress: ProgressFactory | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> int:
    """Run trials of an existing study in ``n_workers`` separate processes.

    The study must exist (``tune_*`` creates it, records its spec and queues the defaults
    before starting workers). ``n_trials`` is the total, split as evenly as possible, so the
    study grows by exactly ``n_trials`` unless the timeout ends it first. Each worker gets
    ``cpu_count // n_workers`` OpenMP threads.

    Parameters
    ----------
    storage : str
        A journal or PostgreSQL/MySQL URL (SQLite is refused).
    study_name : str
    n_workers, n_trials : int
    cfg : Config, optional
        Default: the configuration recorded in the study when it was created.
    timeout : float, optional
        Seconds per worker, checked between trials.
    data : TaskData, optional
        Handed to the workers through a temporary Parquet file; default each worker reads
        the configured store.
    progress : ProgressFactory, optional
        Reports the trials finished so far (:mod:`tabtune.progress`); default silent.
    pruner : optuna.pruners.BasePruner, optional
        Default :func:`default_pruner`.

    Returns
    -------
    int
        Trials the workers finished.

    Raises
    ------
    ConfigError
        For SQLite or a bad URL.
    RuntimeError
        When a worker process exits with an error.
    """
    store = parse_storage(storage)
    _check_parallel(store, max(n_workers, 2))
    if n_workers < 1 or n_trials < 1:
        raise TabTuneInputError(
            f"need n_workers >= 1 and n_trials >= 1, got {n_workers}, {n_trials}"
        )
    with _quiet_optuna():
        study = optuna.load_study(study_name=study_name, storage=open_storage(store))
    spec = StudySpec.from_study(study)
    config = cfg.model_dump(mode="json") if cfg is not None else spec.config
    before = _finished(study)
    shares = [n_trials // n_workers + (i < n_trials % n_workers) for i in range(n_workers)]
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    seed0 = int(config.get("tuning", {}).get("seed", 0)) + len(study.trials)
    ctx = multiprocessing.get_context("spawn")  # no fork after OpenMP has started threads
    with contextlib.ExitStack() as stack:
        data_path = None
        if data is not None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="tabtune-tune-"))
            data_path = str(Path(folder) / "data.parquet")
            _write_data(data, Path(data_path))
        procs: list[multiprocessing.process.BaseProcess] = []
        stack.callback(_stop_workers, procs)  # on error or Ctrl-C in the parent
        for i, share in enumerate(s for s in shares if s > 0):
            args = _WorkerArgs(
                storage=storage,
                study_name=study_name,
                n_trials=share,
                timeout=timeout,
                config=config,
                data_path=data_path,
                seed=seed0 + 7919 * (i + 1),
                threads=threads,
                pruner=pruner,
            )
            proc = ctx.Process(target=_worker_main, args=(args,), name=f"tabtune-tune-{i}")
            proc.start()
            procs.append(proc)
        update = stack.enter_context(track(progress, study_name, n_trials))
        while any(p.is_alive() for p in procs):
            if progress is not None:
                update(completed=_finished(study) - before, status=_status(study))
            multiprocessing.connection.wait([p.sentinel for p in procs], timeout=0.5)
        for p in procs:
            p.join()
        if progress is not None:
            update(completed=_finished(study) - before, status=_status(study))
    failed = [(p.name, p.exitcode) for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"tuning worker(s) failed: {failed} (see their errors above)")
    return _finished(study) - before


# -------------------------------------------------------------------------- scopes
def tune_scope(
    cfg: Config,
    task: str,
    scope: str = "global",
    *,
    n_trials: int | None = None,
    timeout: float | None = None,
    n_jobs: int = 1,
    progress: ProgressFactory | None = None,
) -> list[TuningResult]:
    """Run the studies of a tuning scope (what ``tabtune tune --scope`` runs).

    Parameters
    ----------
    cfg : Config
    task : str
    scope : str, default "global"
        ``"global"``, ``"adapt:<bucket>"``, ``"adapt"`` (every bucket that has brands) or
        ``"brand:<brand>"``.
    n_trials, timeout, n_jobs, progress
        Per study, as in :func:`tune_global`.

    Returns
    -------
    list of TuningResult
        One per study, in order.

    Raises
    ------
    ConfigError, TabTuneInputError
        Bad search space, storage, budget, scope or data.
    """
    _check_budget(n_trials, timeout, n_jobs)
    kwargs: dict[str, Any] = dict(
        n_trials=n_trials, timeout=timeout, n_jobs=n_jobs, progress=progress
    )
    if scope == "global":
        return [tune_global(cfg, task, **kwargs)]
    if scope == "adapt" or scope.startswith("adapt:"):
        data = _load_data(cfg, cfg.task(task), None, None)
        if scope == "adapt":
            present = {bucket_for_rows(int(n)) for n in _rows_per_brand(data)}
            buckets = [name for name, _ in BUCKETS if name in present]
        else:
            buckets = [scope.split(":", 1)[1]]
        return [tune_adaptation(cfg, task, b, data=data, **kwargs) for b in buckets]
    if scope.startswith("brand:") and scope.split(":", 1)[1]:
        return [tune_brand(cfg, task, scope.split(":", 1)[1], **kwargs)]
    raise TabTuneInputError(
        f"unknown tuning scope {scope!r}; use global, adapt, adapt:<bucket> or brand:<brand>"
    )
