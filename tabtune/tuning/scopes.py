"""The studies of each tuning scope: global model, adaptation per size bucket, one brand.

Three kinds of study, each stored under a fixed name so that rerunning adds trials:

- ``"{task}:global"`` tunes the global model's boosting parameters (``ModelConfig``);
- ``"{task}:adapt:{bucket}"`` tunes adaptation (``AdaptationConfig``) on many brands of one
  size bucket (``small`` < 1,000 task rows, ``medium`` < 10,000, ``large``);
- ``"{task}:brand:{brand}"`` tunes adaptation for one brand, warm-started from its bucket.

Each entry point builds a study's spec and search space, then runs its trials in this
process or in worker processes (:func:`tabtune.tuning.workers.run_parallel_workers`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from tabtune.config import AdaptationConfig, Config, ModelConfig
from tabtune.errors import TabTuneInputError
from tabtune.evaluation import rolling_origin_folds
from tabtune.features import GROUP_COLUMN, TIME_COLUMN, TaskData
from tabtune.progress import ProgressFactory, track
from tabtune.tuning.keys import (
    ROLE_ATTR,
    ROLE_DEFAULTS,
    ROLE_WARM_START,
    SPEC_ATTR,
    WARM_ATTR,
    chosen_trial,
    trial_role,
)
from tabtune.tuning.objective import Objective, load_tuning_data
from tabtune.tuning.spaces import (
    GLOBAL_SPACE,
    ParamSpace,
    apply_params,
    default_params,
    resolve_search_space,
    space_with_defaults,
)
from tabtune.tuning.storage import StorageSpec, check_parallel, open_storage, parse_storage
from tabtune.tuning.study import (
    StudySpec,
    TuningResult,
    default_pruner,
    make_sampler,
    new_run_id,
    prepare_study,
    quiet_optuna,
    raise_if_broken,
    spec_conflict,
    stop_when_defaults_fail,
    study_name,
    study_result,
    study_status,
)
from tabtune.tuning.workers import run_parallel_workers

__all__ = [
    "BUCKETS",
    "adopted_adaptations",
    "best_params",
    "bucket_for_rows",
    "tune_adaptation",
    "tune_brand",
    "tune_global",
    "tune_scope",
]

logger = logging.getLogger("tabtune")

#: Size buckets of brands by task rows: (name, exclusive upper bound).
BUCKETS: tuple[tuple[str, float], ...] = (("small", 1000), ("medium", 10000), ("large", math.inf))


def bucket_for_rows(n_rows: int) -> str:
    """The size bucket of a brand with ``n_rows`` task rows (``small``/``medium``/``large``)."""
    for name, upper in BUCKETS:
        if n_rows < upper:
            return name
    return BUCKETS[-1][0]  # pragma: no cover


def _data_end(data: TaskData) -> str:
    return str(pd.to_datetime(data.X[TIME_COLUMN]).max().date())


def _check_budget(n_trials: int | None, timeout: float | None, n_jobs: int) -> None:
    if n_trials is not None and (
        isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1
    ):
        raise TabTuneInputError(
            f"n_trials (tabtune tune --trials) must be a whole number >= 1, got {n_trials}"
        )
    if timeout is not None and not timeout > 0:
        raise TabTuneInputError(
            f"timeout (tabtune tune --timeout) must be > 0 seconds, got {timeout}"
        )
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


def _optimize_here(
    job: _Job,
    study: optuna.Study,
    n_trials: int,
    timeout: float | None,
    progress: ProgressFactory | None,
    run_id: str | None = None,
) -> None:
    """Run ``n_trials`` trials of the job's prepared study in this process, each recorded as
    the run ``run_id``'s."""
    objective = Objective(job.cfg, job.spec, job.data, job.space, run_id)
    study.sampler = make_sampler(job.cfg.tuning.seed + len(study.trials))
    study.pruner = job.pruner or default_pruner()
    with track(progress, job.name, n_trials) as update:

        def advance(st: optuna.Study, _trial: FrozenTrial) -> None:
            if progress is not None:
                update(advance=1, status=study_status(st))

        study.optimize(
            objective,
            n_trials=n_trials,
            timeout=timeout,
            catch=(Exception,),
            callbacks=[advance, stop_when_defaults_fail],
        )


def _run(
    job: _Job,
    n_trials: int | None,
    timeout: float | None,
    n_jobs: int,
    progress: ProgressFactory | None,
) -> TuningResult:
    """Prepare the job's study, run its trials here or in worker processes, and sum it up."""
    t0 = time.perf_counter()
    n_trials = n_trials if n_trials is not None else job.cfg.tuning.n_trials
    timeout = timeout if timeout is not None else job.cfg.tuning.timeout
    with quiet_optuna():
        study, spec = prepare_study(job.storage, job.name, job.spec)
        job.spec = spec
        job.space, _ = space_with_defaults(job.space, spec.defaults, job.name)
        run_id = new_run_id()  # counts this run's trials, not another process's
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
                run_id=run_id,
            )
        else:
            _optimize_here(job, study, n_trials, timeout, progress, run_id)
        raise_if_broken(study)
        return study_result(study, spec, job.storage, run_id, t0, job.cfg.tuning.min_gain)


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
    check_parallel(store, n_jobs)
    data = load_tuning_data(cfg, task_cfg, None, data)
    name = study_name(task, "global")
    space, defaults = space_with_defaults(space, default_params(cfg, list(space)), name)
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
    check_parallel(store, n_jobs)
    name = study_name(task, scope)
    base = default_params(cfg, list(GLOBAL_SPACE))
    if base_params:
        base.update(base_params)
    # validates the names and values; adapt_learning_rate=None follows the base's rate
    base_cfg = apply_params(cfg, base)
    space, defaults = space_with_defaults(space, default_params(base_cfg, list(space)), name)
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
    check_parallel(_storage_for(cfg, storage), n_jobs)
    data = load_tuning_data(cfg, task_cfg, None, data)
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
    check_parallel(store, n_jobs)
    data = load_tuning_data(cfg, task_cfg, None, data)
    counts = _rows_per_brand(data)
    if brand not in counts.index:
        raise TabTuneInputError(f"brand {brand!r} has no rows for task {task!r}")
    bucket = bucket_for_rows(int(counts[brand]))
    job = _adapt_job(
        cfg, task, f"brand:{brand}", bucket, [brand], storage, data, base_params, n_jobs
    )
    _enqueue_warm_start(job, warm_start_from or study_name(task, f"adapt:{bucket}"))
    job.pruner = pruner
    return _run(job, n_trials, timeout, n_jobs, progress)


def _enqueue_warm_start(job: _Job, source: str) -> None:
    """Queue the best parameters of study ``source`` in ``job``'s study, once.

    Nothing is queued when ``source`` has no complete trial, when its parameters are the
    defaults, or when they were already tried; the job's space is widened to hold them.
    """
    warm = _best_params_in(job.storage, source, job.cfg.tuning.min_gain, job.cfg, job.spec.task)
    if warm is None:
        return
    with quiet_optuna():
        study, spec = prepare_study(job.storage, job.name, job.spec)
        warm = {k: v for k, v in warm.items() if k in job.space}
        tried = [
            t.user_attrs.get(WARM_ATTR)
            for t in study.get_trials(deepcopy=False)
            if t.state != TrialState.FAIL
        ]
        if warm and warm != spec.defaults and warm not in tried:
            job.space, _ = space_with_defaults(job.space, {**spec.defaults, **warm}, job.name)
            study.enqueue_trial(
                warm,
                user_attrs={ROLE_ATTR: ROLE_WARM_START, WARM_ATTR: warm, "from": source},
            )
            logger.info("study %s: warm start from %s: %s", job.name, source, warm)


def _best_params_in(
    store: StorageSpec, name: str, min_gain: float, cfg: Config, task: str
) -> dict[str, Any] | None:
    """The adopted trial's parameters of study ``name`` (see :func:`best_params`); None also
    for a study whose trials were scored for another backend or definition of ``task`` than
    ``cfg``'s (:func:`~tabtune.tuning.study.spec_conflict`; said in a warning)."""
    chosen = _adopted_trial(store, name, min_gain, cfg, task)
    return None if chosen is None else dict(chosen.params)


def _adopted_trial(
    store: StorageSpec, name: str, min_gain: float, cfg: Config, task: str
) -> FrozenTrial | None:
    if store.path is not None and not store.path.exists():
        return None  # a file storage: do not create an empty database just to look
    with quiet_optuna():
        storage = open_storage(store)
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            return None
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        raw = study.user_attrs.get(SPEC_ATTR)
    if not complete:
        return None
    conflict = None if raw is None else spec_conflict(StudySpec(**raw), _dumped(cfg), task)
    if conflict is not None:
        if (store.display, name, conflict) not in _WARNED:
            _WARNED.add((store.display, name, conflict))
            logger.warning(
                "study %s in %s %s: its parameters are not used (the defaults stay); tune "
                "again into another tuning.storage, or delete the study",
                name,
                store.display,
                conflict,
            )
        return None
    chosen = chosen_trial(complete, min_gain)
    assert chosen is not None  # complete is not empty
    return chosen


#: (storage, study, conflict) already warned about in this process.
_WARNED: set[tuple[str, str, str]] = set()


def _dumped(cfg: Config) -> dict[str, Any]:
    """The parts of ``cfg`` a study's spec is compared on (backend and tasks), as JSON."""
    return {
        "backend": cfg.backend,
        "tasks": {name: t.model_dump(mode="json") for name, t in cfg.tasks.items()},
    }


def best_params(
    cfg: Config,
    task: str,
    scope: str,
    storage: str | None = None,
    *,
    defaults_as_none: bool = False,
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
    defaults_as_none : bool, default False
        None also when the adopted trial is the defaults' own.

    Returns
    -------
    dict or None
        Parameter name -> value (names as in the config sections; apply them with
        :func:`apply_params`), or None when the study or its storage does not exist, no
        trial has completed, or its trials were scored for another backend or definition of
        the task than ``cfg``'s (with a warning): those of the best trial that beats the defaults on every fold
        and by ``tuning.min_gain`` on average, else the defaults
        (:func:`~tabtune.tuning.keys.chosen_trial`).
    """
    if not (scope == "global" or scope.startswith(("adapt:", "brand:"))):
        raise TabTuneInputError(
            f"unknown scope {scope!r}; use 'global', 'adapt:<bucket>' or 'brand:<brand>'"
        )
    chosen = _adopted_trial(
        _storage_for(cfg, storage), study_name(task, scope), cfg.tuning.min_gain, cfg, task
    )
    if chosen is None or (defaults_as_none and trial_role(chosen) == ROLE_DEFAULTS):
        return None
    return dict(chosen.params)


def adopted_adaptations(
    cfg: Config, task: str, brands: Collection[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Scope (``adapt:<bucket>``, ``brand:<id>``) -> the ``adaptation`` parameters its study
    of ``task`` adopted (:func:`best_params`), for every such study in ``tuning.storage``:
    what a refresh night reads once and keeps (a study finished mid-night changed the
    parameters of the brands after it, and a resumed night's; refresh red-team). {} without
    a storage; ``brands``: only their brand studies (default: every one)."""
    if not storage_exists(cfg):
        return {}
    store = _storage_for(cfg, None)
    with quiet_optuna():
        names = optuna.get_all_study_names(storage=open_storage(store))
    out = {}
    for name in sorted(names):
        scope = name[len(task) + 1 :]
        if not name.startswith(f"{task}:") or not scope.startswith(("adapt:", "brand:")):
            continue
        if brands is not None and scope.startswith("brand:") and scope[6:] not in brands:
            continue
        params = best_params(cfg, task, scope) or {}
        adaptation = {k: v for k, v in params.items() if k in AdaptationConfig.model_fields}
        if adaptation:
            out[scope] = adaptation
    return out


def storage_exists(cfg: Config) -> bool:
    """Whether ``tuning.storage`` may hold studies (an SQLite or journal file must exist;
    opening one that does not would create it)."""
    url = cfg.tuning.storage
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :]).exists()
    if url.startswith("journal:"):
        return Path(url[len("journal:") :]).exists()
    return True


def tuned_pretraining(cfg: Config, task: str) -> tuple[Config, dict[str, Any]]:
    """``cfg`` with the parameters the task's global study adopted (``tabtune tune``), and
    those parameters: the ones that differ from ``cfg.model`` ({} when there is no study, no
    adopted trial, or the adopted trial is the defaults)."""
    if not storage_exists(cfg):
        return cfg, {}
    # adopted defaults: the config's stay (their trial's values may be clipped to the space)
    params = best_params(cfg, task, "global", defaults_as_none=True) or {}
    model = {
        k: v
        for k, v in params.items()
        if k in ModelConfig.model_fields and getattr(cfg.model, k) != v
    }
    return (apply_params(cfg, model), model) if model else (cfg, {})


def tuned_note(params: Mapping[str, Any]) -> str:
    """What a pretraining with :func:`tuned_pretraining`'s parameters says about them."""
    values = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )
    return (
        f"pretrained with the parameters the global tuning study adopted ({values}; `tabtune "
        "tune`); the config's model: gives the others"
    )


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
    # adaptation is tuned from the global model pretraining serves: the global study's
    # adopted parameters, where it has them (tuned_pretraining)
    base = tuned_pretraining(cfg, task)[1] or None
    kwargs["base_params"] = base
    if scope == "adapt" or scope.startswith("adapt:"):
        data = load_tuning_data(cfg, cfg.task(task), None, None)
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
