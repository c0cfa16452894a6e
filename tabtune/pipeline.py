"""The steps behind ``tabtune pretrain``, ``finetune``, ``predict`` and the demo.

Each function takes a validated :class:`~tabtune.config.Config`, does one job, and returns a
small result object; printing is left to the CLI. Models go through the
:class:`~tabtune.registry.ModelRegistry`, so every write is versioned and atomic.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import numpy as np
import pandas as pd

from tabtune.config import Config, TaskConfig
from tabtune.data.store import CampaignStore
from tabtune.errors import ConfigError, ModelIntegrityError, TabTuneInputError, ZeroTargetError
from tabtune.evaluation import task_predictions
from tabtune.features import (
    GROUP_COLUMN,
    TIME_COLUMN,
    TaskData,
    model_features,
    target_requirement,
    task_data,
)

# The estimator builders live in tabtune.model_factory; tuning and tests reach them here too.
from tabtune.memory import arrow_on_the_c_heap
from tabtune.model_factory import brand_estimator, estimator_class, global_estimator  # noqa: F401
from tabtune.registry import ModelRegistry
from tabtune.registry.locks import outside_a_refresh
from tabtune.task_definition import (
    DEFINITION_KEY,
    definition,
    definition_change,
    global_definition_error,
)
from tabtune.tasks.budget import (
    BudgetPlanner,
    fit_response,
    write_pooled_response,
)

if TYPE_CHECKING:  # pragma: no cover
    from tabtune.estimators import TabTuneClassifier, TabTuneRegressor
    from tabtune.registry import ModelRef

logger = logging.getLogger("tabtune")

MODEL_SUBDIR = "model"
#: Stored rows per batch of whole brands that ``pretrain`` reads and encodes at a time.
PRETRAIN_BATCH_ROWS = 150_000


@dataclass
class PretrainResult:
    """What ``pretrain`` did."""

    task: str
    model_id: str
    rows: int
    brands: int
    seconds: float
    holdout_score: float | None
    data_window: tuple[str, str]
    notices: list[str] = field(default_factory=list)


@dataclass
class BrandResult:
    """What adapting one brand did."""

    brand_id: str
    task: str
    rows: int
    strategy: str
    reason: str
    global_score: float | None
    adapted_score: float | None
    model_id: str | None
    seconds: float
    scores: dict[str, float] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return asdict(self)


def _folders_apart(cfg: Config) -> None:
    """A ConfigError when the config's folders overlap (:meth:`Config.folder_overlap`: an
    assignment inside a section is not checked against the others when made)."""
    if overlap := cfg.folder_overlap():
        raise ConfigError(overlap)


def store_for(cfg: Config):
    """The configured campaign store (refused when its folder overlaps another's)."""
    _folders_apart(cfg)
    return CampaignStore(cfg.data.store)


def registry_for(cfg: Config) -> ModelRegistry:
    """The configured model registry (refused when its folder overlaps another's)."""
    _folders_apart(cfg)
    return ModelRegistry(cfg.models_dir)


def load_task_data(
    cfg: Config,
    task: TaskConfig,
    *,
    brands: list[str] | str | None = None,
    start: Any = None,
    end: Any = None,
) -> TaskData:
    """Read rows from the store and turn them into ``task``'s model inputs."""
    return task_data(_read_rows(cfg, brands=brands, start=start, end=end), task)


def _read_rows(cfg: Config, *, brands: Any = None, start: Any = None, end: Any = None):
    """The store's rows; a clear error when there are none."""
    store = store_for(cfg)
    rows = store.read(brands=brands, start=start, end=end)
    if len(rows) == 0:
        raise TabTuneInputError(_no_rows_message(store, brands, start, end))
    return rows


def _no_rows_message(
    store: CampaignStore, brands: Any, start: Any, end: Any, what: str = "rows"
) -> str:
    """Why a read of the store found no ``what`` (rows, or rows with a usable target), and
    the fix: the window asked for and the one the store holds."""
    asked = []
    if brands is not None:
        asked.append(f"brands {brands!r}")
    if start is not None and end is not None:
        asked.append(f"dates {start} .. {end}")
    elif start is not None or end is not None:
        asked.append(f"dates up to {end}" if start is None else f"dates from {start}")
    where = f"for {' and '.join(asked)}" if asked else "at all"
    try:
        first, last = store.date_range()
    except TabTuneInputError:
        return f"no {what} in the store {store.root} {where}: load rows first (tabtune load)"
    return (
        f"no {what} in the store {store.root} {where}; it holds "
        f"{first.date()} .. {last.date()} for {len(store.brands())} brands: ask for dates inside "
        "that window, or brands it holds"
    )


def _window(data: TaskData) -> tuple[str, str]:
    dates = pd.to_datetime(data.X[TIME_COLUMN])
    return (str(dates.min().date()), str(dates.max().date()))


def _holdout(est: Any, key: str) -> float | None:
    scores = getattr(est, "holdout_scores_", None) or {}
    value = scores.get(key)
    return None if value is None or not np.isfinite(value) else float(value)


def pretrain_scheduler(cfg: Config, scheduler: str | None = None) -> str | None:
    """Where ``pretrain`` fits the global model: a Dask scheduler, or None for this process.

    The rule: an explicit ``scheduler`` (``"local"`` or ``"tcp://host:port"``) wins; without
    one, a config with ``refresh.executor: dask`` *and* a ``refresh.scheduler`` pretrains on
    that scheduler (so a refresh that runs its brands on a cluster pretrains there too);
    anything else (no scheduler, or ``executor: dask`` on a local cluster it starts itself)
    pretrains in this process.
    """
    if scheduler:
        return scheduler
    r = cfg.refresh
    return r.scheduler if r.executor == "dask" and r.scheduler else None


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _outside_a_refresh(
    fn: Callable[Concatenate[Config, _P], _R],
) -> Callable[Concatenate[Config, _P], _R]:
    """``fn(cfg, ...)`` refused while another process runs a refresh on ``cfg``'s registry
    (:func:`~tabtune.registry.locks.outside_a_refresh`), as the command line refuses it."""

    @functools.wraps(fn)
    def guarded(cfg: Config, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with outside_a_refresh(cfg.models_dir, f"tabtune.pipeline.{fn.__name__}"):
            return fn(cfg, *args, **kwargs)

    return guarded


@_outside_a_refresh
def pretrain(
    cfg: Config,
    task_name: str,
    *,
    end: Any = None,
    promote: bool = True,
    scheduler: str | None = None,
) -> PretrainResult:
    """Fit the global model of a task on the pooled store and publish it.

    ``cfg`` is used as given: ``tabtune pretrain`` and the refresh first apply the task's
    adopted tuning parameters (``tabtune.tuning.tuned_pretraining(cfg, task)[0]``; the tuning
    layer sits above this one), which a Python caller passes the same way.

    A regression task is pretrained from batches of whole brands read from the store two or
    three times (:meth:`~tabtune.estimators.TabTuneRegressor.fit_batches`): memory holds the
    float32 training matrix, one binned copy and one batch, not the pooled rows. A classification task reads every
    row at once (:meth:`fit`).

    Parameters
    ----------
    cfg : Config
    task_name : str
    end : date-like, optional
        Use rows up to this date (inclusive); default all.
    promote : bool, default True
        Make the new version the champion.
    scheduler : str, optional
        Pretrain on a Dask cluster (:mod:`tabtune.distributed`): ``"local"`` or
        ``"tcp://host:port"``; default: :func:`pretrain_scheduler`'s rule. LightGBM trains
        with ``lightgbm.dask``, XGBoost with ``xgboost.dask``.
    """
    task = cfg.task(task_name)
    t0 = time.perf_counter()
    where = pretrain_scheduler(cfg, scheduler)
    try:
        if where is not None:
            fitted = _fit_on_dask(cfg, task, end, where)
        else:
            fitted = _fit_here(cfg, task, end)
    except ZeroTargetError as exc:
        raise _task_zero_target_error(cfg, task, exc) from exc
    est = fitted.estimator
    manifest: dict[str, Any] = {
        "kind": "global",
        "task": task.model_dump(mode="json"),
        DEFINITION_KEY: definition(task),
        "data_window": list(fitted.window),
        "rows": fitted.rows,
        "features": model_features(est),
        "brands": fitted.brands,
        "metrics": {"holdout": _holdout(est, "global") or _holdout(est, "scratch")},
        "backend": cfg.backend,
    }
    if where is not None:
        manifest["trained_on"] = "dask"
    response = fitted.response

    def write(directory: Path) -> None:
        est.save(Path(directory) / MODEL_SUBDIR)
        if response is not None:
            write_pooled_response(response, directory)

    registry = registry_for(cfg)
    replaced = registry.resolve(task_name) if promote else None
    ref = registry.publish(task_name, write, manifest=manifest, promote=promote)
    older = _older_than_replaced(registry, replaced, fitted.window, task_name)
    return PretrainResult(
        task=task_name,
        model_id=ref.id,
        rows=fitted.rows,
        brands=manifest["brands"],
        seconds=time.perf_counter() - t0,
        holdout_score=manifest["metrics"]["holdout"],
        data_window=fitted.window,
        notices=[*fitted.notices, *older],
    )


def _older_than_replaced(
    registry: ModelRegistry, replaced: ModelRef | None, window: tuple[str, str], task_name: str
) -> list[str]:
    """A note when the new champion learnt rows ending before those of the global model it
    replaced (``pretrain --end`` for a back-test promoted a model of a few early days, and
    every brand was served by it from then on without a word; CLI red-team)."""
    if replaced is None:
        return []
    old_window = registry.manifest(replaced).get("data_window") or [None, None]
    if old_window[1] is None or str(window[1]) >= str(old_window[1]):
        return []
    return [
        f"this model learnt rows up to {window[1]}, older than those of {replaced.id} (up to "
        f"{old_window[1]}), which it replaces as the champion: the refresh and the decisions "
        f"use it from now on; `tabtune models rollback --task {task_name}` restores "
        f"{replaced.id}"
    ]


def _task_zero_target_error(
    cfg: Config,
    task: TaskConfig,
    exc: ZeroTargetError,
    *,
    brand: str | None = None,
    strategy: str | None = None,
) -> TabTuneInputError:
    """``exc`` (rows whose target a log-link objective cannot fit) in the task's terms.

    Parameters
    ----------
    cfg, task : the configuration and the task.
    exc : ZeroTargetError
        What the estimator refused.
    brand, strategy : str, optional
        The brand whose adaptation with ``strategy`` was refused; None: pretraining.
    """
    num, den = task.target.numerator, task.target.denominator
    target = f"{num} / {den}" if den else num
    why = (
        f"objective {exc.objective!r} models the log of the mean {target}, and a mean of zero "
        "has no log"
    )
    constant = cfg.data.constants.get(num)
    if constant is not None:
        check = (
            f"the config's `data.constants` sets {num} to {constant!r} on every row: map your "
            f"export's {num} column instead (`data.columns: {{{num}: <your column>}}`) and "
            "load the exports again into a new store (a new `data.store` folder: the stored "
            "rows keep their values)"
        )
    else:
        check = (
            f"check that your export has {num} (e.g. conversion values) and that `data.columns` "
            "maps it to the right column, then load the exports again into a new store (a new "
            "`data.store` folder: the stored rows keep their values)"
        )
    if brand is None:
        return TabTuneInputError(
            f"task {task.name!r}: the target {target} is zero on every usable row of the store "
            f"{cfg.data.store}, so there is nothing to learn ({why}). Fix: {check}; or set "
            f"`objective: squared_error` in the {task.name!r} task file."
        )
    return TabTuneInputError(
        f"brand {brand!r}, task {task.name!r}: the target {target} is zero on every usable row "
        f"of the brand, so strategy {strategy!r} cannot refit or grow trees on them ({why}). "
        "Fix: set `adaptation.strategy: auto` (or `global`): the global model then serves "
        f"the brand; or {check}."
    )


@dataclass
class _Fitted:
    """A fitted global estimator and what it was fitted on."""

    estimator: Any
    rows: int
    brands: int
    window: tuple[str, str]
    notices: list[str]
    response: Any


def _fit_here(cfg: Config, task: TaskConfig, end: Any) -> _Fitted:
    """The global estimator fitted in this process: a regression task from batches of whole
    brands read from the store two or three times
    (:meth:`~tabtune.estimators.TabTuneRegressor.fit_batches`),
    a classification task from every row at once (:meth:`fit`)."""
    est = global_estimator(cfg, task)
    source: _PooledSource
    if task.kind == "classification":
        in_memory = _InMemorySource(cfg, task, end)
        est.fit(*in_memory.rows_and_target())
        source = in_memory
    else:
        batches = _BrandBatches(cfg, task, end)
        with arrow_on_the_c_heap():  # lets the phases of the fit give freed pages back
            est.fit_batches(batches)
        source = batches
    logger.info("pretrained %s on %d rows of %d brands", task.name, source.rows, source.brands)
    return _Fitted(
        est,
        source.rows,
        source.brands,
        source.window(),
        source.all_notices(),
        source.pooled_response(),
    )


def _fit_on_dask(cfg: Config, task: TaskConfig, end: Any, scheduler: str) -> _Fitted:
    """The global estimator fitted on a Dask cluster (:func:`tabtune.distributed.pretrain_on_dask`)."""
    from tabtune.distributed import pretrain_on_dask  # imports Dask only when it is used

    logger.info("pretraining %s on Dask (%s)", task.name, scheduler)
    res = pretrain_on_dask(cfg, task.name, scheduler=scheduler, end=end)
    return _Fitted(res.estimator, res.rows, res.brands, res.data_window, res.notices, res.response)


class _PooledSource:
    """The pooled rows of ``pretrain``: their count, brands, window, notices and the budget
    task's pooled response."""

    def __init__(self, cfg: Config, task: TaskConfig, end: Any) -> None:
        self.cfg, self.task, self.end = cfg, task, end
        self.rows = 0
        self.brands = 0
        self.notices: list[str] = []
        self.left_out: list[str] = []  # brands without a row with a usable target
        self.dates: list[pd.Timestamp] = []
        self.daily: list[pd.DataFrame] = []  # the budget task's daily spend, per batch

    def record(self, rows: pd.DataFrame, data: TaskData) -> None:
        """Count a batch of whole brands (first pass only)."""
        self.rows += len(data)
        self.brands += int(data.X[GROUP_COLUMN].nunique())
        dates = pd.to_datetime(data.X[TIME_COLUMN])
        self.dates += [dates.min(), dates.max()]
        self.notices += [n for n in data.notices if n not in self.notices]
        self._note_left_out(rows, data)
        if self.task.name == "budget" and self.cfg.budget.response == "hill":
            # Daily spend and bid index are per brand (channel): a batch of whole brands gives
            # the pooled history's rows for them.
            planner = BudgetPlanner(config=self.cfg)
            planner.bid_reference_ = None
            self.daily.append(planner.observe(rows).spend_history_)

    def _note_left_out(self, rows: pd.DataFrame, data: TaskData) -> None:
        """Record the brands of ``rows`` without a row that has a usable target."""
        usable = set(data.X[GROUP_COLUMN].astype(str))
        self.left_out += sorted({str(b) for b in rows[GROUP_COLUMN].unique()} - usable)

    def all_notices(self) -> list[str]:
        """The notices, with one naming the brands left out for want of a usable target."""
        if not self.left_out:
            return list(self.notices)
        target = self.task.target
        needs = target_requirement(self.task)
        rule = (
            f"the target {target.numerator} / {target.denominator} needs {needs}"
            if needs is not None
            else f"the target {target.numerator} is missing"
        )
        shown = ", ".join(self.left_out[:10]) + (", ..." if len(self.left_out) > 10 else "")
        return [
            *self.notices,
            f"task {self.task.name!r}: {len(self.left_out)} brand(s) have no row with a usable "
            f"target ({rule}) and are left out of the global model: {shown}",
        ]

    def window(self) -> tuple[str, str]:
        """First and last date of the pooled rows."""
        return (str(min(self.dates).date()), str(max(self.dates).date()))

    def pooled_response(self) -> Any:
        """The ``budget`` task's pooled Hill response (else None)."""
        if not self.daily:
            return None
        days = pd.concat(self.daily, ignore_index=True)
        return fit_response(self.cfg, days)


class _InMemorySource(_PooledSource):
    """Every pooled row at once."""

    def rows_and_target(self) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
        rows = _read_rows(self.cfg, end=self.end)
        data = task_data(rows, self.task)
        self.record(rows, data)
        return data.X, data.y, data.weight


class _BrandBatches(_PooledSource):
    """Batches of whole brands' task inputs, read from the store; called once per pass."""

    def __init__(self, cfg: Config, task: TaskConfig, end: Any) -> None:
        super().__init__(cfg, task, end)
        self.store = store_for(cfg)
        counts = self.store.row_counts()
        if not counts:
            _read_rows(cfg, end=end)  # raises the empty store's error (how to get data)
        self.groups = brand_batches(counts, PRETRAIN_BATCH_ROWS)
        self.passes = 0

    def __call__(self) -> Iterator[tuple[pd.DataFrame, np.ndarray, np.ndarray | None]]:
        first = self.passes == 0
        self.passes += 1
        for brands in self.groups:
            rows = self.store.read(brands=brands, end=self.end)
            data = _batch_task_data(rows, self.task)
            if data is None:
                continue
            if first:
                self.record(rows, data)
            yield data.X, data.y, data.weight
        if first and self.rows == 0:
            raise TabTuneInputError(
                _no_rows_message(self.store, None, None, self.end, "rows with a usable target")
            )


def brand_batches(row_counts: dict[str, int], max_rows: int) -> list[list[str]]:
    """Brands (in the given order) grouped into batches of at most ``max_rows`` stored rows;
    a brand with more rows is a batch of its own."""
    batches: list[list[str]] = []
    size = 0
    for brand, count in row_counts.items():
        if not batches or size + count > max_rows:
            batches.append([])
            size = 0
        batches[-1].append(brand)
        size += count
    return batches


def _batch_task_data(rows: pd.DataFrame, task: TaskConfig) -> TaskData | None:
    """The task inputs of a batch of brands; None when it has no usable row (a batch with
    no row or no usable target is skipped, as the pooled rows would drop its rows)."""
    if len(rows) == 0:
        return None
    try:
        return task_data(rows, task)
    except TabTuneInputError as exc:
        if "no rows with a usable target" in str(exc):  # task_data's message for that case
            return None
        raise


def load_model(ref: ModelRef, task: TaskConfig) -> TabTuneRegressor | TabTuneClassifier:
    """Load the estimator stored in a registry version."""
    return estimator_class(task).load(Path(ref.path) / MODEL_SUBDIR)


def load_global(cfg: Config, task_name: str) -> tuple[ModelRef, Any]:
    """The verified global champion of a task, loaded; a clear error when there is none."""
    task = cfg.task(task_name)
    registry = registry_for(cfg)
    ref = registry.resolve(task_name)
    if ref is None and registry.versions(task_name) and _champion_named(registry, task_name):
        raise damaged_global_error(task_name)  # not "run pretrain first" (CLI red-team)
    if ref is None:
        raise TabTuneInputError(
            f"no global model for task {task_name!r} in {cfg.models_dir}; run `tabtune pretrain` first"
        )
    check_global_definition(cfg, task_name, ref)
    return ref, load_model(ref, task)


def _brand_rows(cfg: Config, brand: str, rows: pd.DataFrame | None, end: Any) -> pd.DataFrame:
    """The brand's rows (``rows``, or read from the store up to ``end``); refused when there
    are none, or when ``rows`` hold another brand's (a champion trained on another brand's
    rows was published and promoted; Python red-team)."""
    if rows is None:
        rows = store_for(cfg).read(brands=[brand], end=end)
    elif "brand_id" in rows.columns and (other := set(rows["brand_id"].astype(str)) - {brand}):
        raise TabTuneInputError(
            f"rows hold brand(s) {sorted(other)[:5]} besides {brand!r}: pass only its rows "
            f"(rows[rows['brand_id'] == {brand!r}]); nothing was published"
        )
    if len(rows) == 0:
        raise TabTuneInputError(_no_brand_rows(cfg, brand, end))
    return rows


def _no_brand_rows(cfg: Config, brand: str, end: Any) -> str:
    """Why a brand has no rows to adapt on: none stored, or none up to ``end``."""
    stored = store_for(cfg).read(brands=[brand], columns=["date"])["date"] if end else None
    if stored is None or not len(stored):
        return f"brand {brand!r} has no rows in the store {cfg.data.store}"
    return (
        f"brand {brand!r} has no rows up to --end {end} (its rows start on "
        f"{stored.min().date()}); pass a later --end, or leave it out"
    )


def _champion_named(registry: ModelRegistry, task_name: str) -> bool:
    """Whether the task's global champion pointer names a version (or is unreadable): a
    version published without promotion is no damage."""
    try:
        return registry.champion(task_name) is not None
    except ModelIntegrityError:
        return True


def damaged_global_error(task_name: str) -> TabTuneInputError:
    """The error for a task whose global model has versions of which none verifies."""
    return TabTuneInputError(
        f"no version of the global {task_name} model verifies (damaged files; `tabtune models "
        "list` shows which); nothing was written. fix: `tabtune models rollback --task "
        f"{task_name} --version <one that verifies>`, or `tabtune pretrain --task {task_name}` "
        "for a new one"
    )


def check_global_definition(cfg: Config, task_name: str, ref: ModelRef) -> None:
    """Refuse a global model pretrained for another definition of the task or another
    backend (:func:`~tabtune.task_definition.definition_change`)."""
    manifest = registry_for(cfg).manifest(ref)
    change = definition_change(manifest, cfg.task(task_name), cfg.backend)
    if change is not None:
        raise TabTuneInputError(global_definition_error(ref.id, task_name, change))


@_outside_a_refresh
def finetune_brand(
    cfg: Config,
    task_name: str,
    brand: str,
    *,
    base: Any = None,
    base_ref: ModelRef | None = None,
    rows: pd.DataFrame | None = None,
    end: Any = None,
    promote: bool = True,
) -> BrandResult:
    """Adapt the global model of a task to one brand and publish the brand's model.

    The adapted estimator chooses its strategy on the brand's newest rows (see
    ``TabTuneRegressor``). A brand below ``adaptation.min_rows_to_adapt`` gets no new trees:
    the global model's trees with its context and level offset (and segment offsets where its
    folds show them), published like any brand's model, as the nightly refresh serves it.
    """
    task = cfg.task(task_name)
    t0 = time.perf_counter()
    if base is None:
        base_ref, base = load_global(cfg, task_name)
    rows = _brand_rows(cfg, brand, rows, end)
    data = task_data(rows, task, features=model_features(base))
    est = brand_estimator(cfg, task, base)
    try:
        est.fit(data.X, data.y, sample_weight=data.weight)
    except ZeroTargetError as exc:
        raise _task_zero_target_error(cfg, task, exc, brand=brand, strategy=est.strategy) from exc
    strategy = str(est.strategy_)
    reason = str(getattr(est, "strategy_reason_", ""))
    manifest: dict[str, Any] = {
        "kind": "brand",
        "brand_id": brand,
        "task": task.model_dump(mode="json"),
        DEFINITION_KEY: definition(task),
        "base_model": base_ref.id if base_ref is not None else None,
        "base_model_sha256": getattr(est, "base_model_id_", None),
        "strategy": strategy,
        "reason": reason,
        "data_window": list(_window(data)),
        "rows": len(data),
        "metrics": {"holdout": dict(getattr(est, "holdout_scores_", {}) or {})},
    }
    if promote:  # what `models rollback` returns to (None: the global model served)
        try:
            champion = registry_for(cfg).champion(task_name, brand=brand)
        except ModelIntegrityError:  # unreadable pointer: nothing recorded, rollback guesses
            pass
        else:
            manifest["champion_before"] = None if champion is None else champion.id

    def write_brand(directory: Path) -> None:
        est.save(directory / MODEL_SUBDIR)

    ref = registry_for(cfg).publish(
        task_name,
        write_brand,
        brand=brand,
        manifest=manifest,
        promote=promote,
    )
    model_id = ref.id
    scores = {k: float(v) for k, v in (getattr(est, "holdout_scores_", {}) or {}).items()}
    return BrandResult(
        brand_id=brand,
        task=task_name,
        rows=len(data),
        strategy=strategy,
        reason=reason,
        global_score=_holdout(est, "global"),
        adapted_score=_holdout(est, strategy),
        model_id=model_id,
        seconds=time.perf_counter() - t0,
        scores=scores,
        notices=list(data.notices),
    )


def champion_change(
    registry: ModelRegistry, ref: ModelRef, task: TaskConfig, backend: str | None
) -> str | None:
    """What differs between the definition of the task a brand version was adapted for (and
    the backend of the global model it was adapted from) and ``task`` (and ``backend``); None
    when nothing does or nothing is known. After a switch to XGBoost a LightGBM champion's
    choice could not be refitted in the refresh, and it served for good (refresh red-team)."""
    manifest = dict(registry.manifest(ref))
    base = manifest.get("base_model")
    if backend is not None and isinstance(base, str) and "backend" not in manifest:
        try:
            manifest["backend"] = registry.manifest(registry.from_id(base)).get("backend")
        except (KeyError, ValueError, OSError, ModelIntegrityError, TabTuneInputError):
            pass  # its global model collected or damaged: the definition alone is compared
    return definition_change(manifest, task, backend)


def model_for_brand(cfg: Config, task_name: str, brand: str) -> tuple[str, Any]:
    """The model that serves a brand: its champion when it has one (adapted for the task's
    definition and from the config's backend), else the global champion."""
    task = cfg.task(task_name)
    registry = registry_for(cfg)
    ref = registry.resolve(task_name, brand=brand)
    change = None if ref is None else champion_change(registry, ref, task, cfg.backend)
    if ref is not None and change is None:
        return ref.id, load_model(ref, task)
    if ref is not None:
        logger.warning(
            "brand %s: its champion %s was adapted for another definition of task %r or "
            "backend (%s); "
            "the global model serves it until a refresh or finetune adapts it again",
            brand, ref.id, task_name, change,
        )  # fmt: skip
    gref, model = load_global(cfg, task_name)
    return gref.id, model


def predict_rows(
    cfg: Config, task_name: str, rows: pd.DataFrame, history: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Predict a task for contract rows, each brand with the model that serves it.

    ``history``: earlier contract rows of the same brands (the store's). Features computed from
    a row's own past (the bid task's reference bid, the budget task's trailing spend) are
    computed over them too, as training and ``tabtune bids`` compute them: the history of a
    brand up to its last row in ``rows``, less the brand-days ``rows`` hold (theirs replace
    the stored ones), so a file with gaps between its days predicts each stored row as the
    store does. Without it those features come
    from ``rows`` alone, and the same stored row is predicted differently with another window.

    Returns the model inputs' identifying columns with ``prediction`` and ``model_id``.
    """
    task = cfg.task(task_name)
    brands = sorted({str(b) for b in rows[GROUP_COLUMN].unique()}) if len(rows) else []
    serving = {b: model_for_brand(cfg, task_name, b) for b in brands}
    # the serving models' features: one the rows lack is refused by name, not dropped with a
    # warning and then refused by the model
    wanted = [f for _, m in serving.values() for f in (model_features(m) or [])]
    features = list(dict.fromkeys(wanted)) if wanted else None
    asked = _brand_days(rows)
    # only the columns the rows have: the history never supplies a feature the rows lack
    # (a file without bids is refused by name, not predicted with missing bids)
    earlier = _history_around(history, rows, asked)
    earlier = earlier[[c for c in earlier.columns if c in rows.columns]]
    data = task_data(
        pd.concat([earlier, rows], ignore_index=True, sort=False) if len(earlier) else rows,
        task,
        require_target=False,
        features=features,
    )
    if len(earlier):  # the history only fed the features: predict the rows asked for
        data = data.take(_brand_days(data.X).isin(asked).to_numpy())
    out = data.X[[GROUP_COLUMN, TIME_COLUMN]].copy()
    for col in ("channel", "campaign_id", "audience", "device"):
        if col in data.rows.columns:
            out[col] = data.rows[col].to_numpy()
    out["prediction"] = np.nan
    out["model_id"] = ""
    for brand, idx in data.X.groupby(GROUP_COLUMN, sort=True).groups.items():
        model_id, model = serving[str(brand)]
        # what the refresh serves: P(class 1) for a classifier, not its 0/1 label
        out.loc[idx, "prediction"] = task_predictions(model, data.X.loc[idx], task.kind)
        out.loc[idx, "model_id"] = model_id
    return out


def _brand_days(frame: pd.DataFrame) -> pd.Series:
    """Each row's brand and day, as one text key (``brand|YYYY-MM-DD``)."""
    days = pd.to_datetime(frame[TIME_COLUMN]).dt.strftime("%Y-%m-%d")
    return frame[GROUP_COLUMN].astype(str) + "|" + days


def _history_around(
    history: pd.DataFrame | None, rows: pd.DataFrame, asked: pd.Series
) -> pd.DataFrame:
    """The rows of ``history`` of the brands of ``rows``, up to each brand's last date there,
    except the brand-days ``rows`` hold (``asked``: theirs replace the stored ones), so a
    stored row predicts the same from a file with gaps between its days (the stored days in
    between feed each row's past) as from the store."""
    if history is None or len(history) == 0:
        return pd.DataFrame()
    last = pd.to_datetime(rows[TIME_COLUMN]).groupby(rows[GROUP_COLUMN].astype(str)).max()
    ends = history[GROUP_COLUMN].astype(str).map(last)
    keep = (pd.to_datetime(history[TIME_COLUMN]) <= ends) & ~_brand_days(history).isin(set(asked))
    return history.loc[keep.to_numpy()]
