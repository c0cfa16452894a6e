"""Studies: the spec a study freezes, creating and loading it, and summing up its trials.

A study freezes what defines its problem when it is created (the data window, folds, brands,
default parameters and, for adaptation, the global parameters of the fold base models) in a
user attribute, so a rerun next week adds comparable trials instead of mixing two problems.
The configured defaults are always queued as a trial, which makes "gain over defaults" a
measurement on identical folds rather than a guess.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tabtune.errors import ConfigError, TabTuneInputError
from tabtune.tuning.keys import (
    ERROR_ATTR,
    FINISHED,
    INTERRUPTED_ATTR,
    ROLE_ATTR,
    ROLE_DEFAULTS,
    RUN_ATTR,
    SPEC_ATTR,
    chosen_trial,
    trial_role,
    trial_value,
)
from tabtune.tuning.storage import StorageSpec, open_storage, reap_dead_trials

__all__ = [
    "StudySpec",
    "TuningResult",
    "count_finished",
    "default_pruner",
    "make_sampler",
    "new_run_id",
    "prepare_study",
    "quiet_optuna",
    "spec_conflict",
    "raise_if_broken",
    "stop_when_defaults_fail",
    "study_name",
    "study_result",
    "study_status",
]

logger = logging.getLogger("tabtune")

_SPEC_VERSION = 1


def study_name(task: str, scope: str) -> str:
    """``"{task}:{scope}"``, e.g. ``"bid:global"``, ``"bid:adapt:small"``, ``"bid:brand:b001"``."""
    return f"{task}:{scope}"


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


@dataclass
class TuningResult:
    """What a tuning run found.

    Attributes
    ----------
    study_name : str
    storage : str
        The storage URL, password hidden.
    best_params, best_value : dict, float or None
        The trial tabtune adopts (:func:`~tabtune.tuning.keys.chosen_trial`: the best complete
        trial that beats the defaults on every fold and by ``tuning.min_gain`` on average, else
        the defaults; None when no trial completed).
    default_params, default_value : dict, float or None
        The defaults trial.
    gain_pct : float or None
        ``100 * (default_value - best_value) / default_value``: how much lower the best
        trial's loss is than the defaults' (0 when the defaults are best).
    n_trials : int
        Trials in the study, of every state.
    n_complete, n_pruned, n_failed : int
        Finished trials by state, in the whole study.
    n_interrupted : int
        Of the failed, those stopped by Ctrl-C, SIGTERM or SIGHUP (``tabtune:interrupted``;
        a trial a signal left running is failed by the next run's reaping).
    n_new : int
        Trials this run finished (not those another process added to the study meanwhile).
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
    n_interrupted: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return asdict(self)


def study_result(
    study: optuna.Study,
    spec: StudySpec,
    storage: StorageSpec,
    run_id: str,
    t0: float,
    min_gain: float = 0.0,
) -> TuningResult:
    """Sum up ``study`` after the run ``run_id`` that started at ``t0`` (the adopted trial:
    :func:`~tabtune.tuning.keys.chosen_trial` with ``min_gain``)."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = chosen_trial(complete, min_gain)
    defaults = next((t for t in complete if trial_role(t) == ROLE_DEFAULTS), None)
    default_value = None if defaults is None else float(trial_value(defaults))
    gain = None
    if best is not None and default_value:
        gain = 100.0 * (default_value - float(trial_value(best))) / default_value
    return TuningResult(
        study_name=study.study_name,
        storage=storage.display,
        best_params=None if best is None else dict(best.params),
        best_value=None if best is None else float(trial_value(best)),
        default_params=dict(spec.defaults),
        default_value=default_value,
        gain_pct=gain,
        n_trials=len(trials),
        n_complete=len(complete),
        n_pruned=sum(t.state == TrialState.PRUNED for t in trials),
        n_failed=sum(t.state == TrialState.FAIL for t in trials),
        n_new=count_finished(study, run_id),
        seconds=time.perf_counter() - t0,
        n_interrupted=sum(
            t.state == TrialState.FAIL and INTERRUPTED_ATTR in t.user_attrs for t in trials
        ),
    )


def default_pruner() -> optuna.pruners.BasePruner:
    """Median stopping rule on the fold-by-fold running mean, after 5 complete trials."""
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)


def make_sampler(seed: int) -> optuna.samplers.BaseSampler:
    """The TPE sampler every study uses, seeded."""
    return optuna.samplers.TPESampler(seed=seed)


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial at INFO; the progress bar and summary say it better."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


#: Keys of a task's definition that do not change its models' scores.
_TASK_NOTES = ("description",)


def spec_conflict(spec: StudySpec, config: Mapping[str, Any], task: str) -> str | None:
    """Why the trials of a study created with ``spec`` cannot be compared with, or applied
    to, a config dumped as ``config`` (``Config.model_dump(mode="json")``): another backend,
    or another definition of ``task`` (its loss, target or features), whose scores are on
    another scale; None when they can.
    """
    then, now = spec.config.get("backend"), config.get("backend")
    if then and now and then != now:
        return f"holds {then} trials, and the config trains {now}"
    before = (spec.config.get("tasks") or {}).get(task)
    after = (config.get("tasks") or {}).get(task)
    if not isinstance(before, dict) or not isinstance(after, dict):
        return None  # a study recorded before its config was
    changed = sorted(
        k
        for k in set(before) | set(after)
        if k not in _TASK_NOTES and before.get(k) != after.get(k)
    )
    if changed:
        return (
            f"was tuned for another definition of task {task!r} (changed since: "
            f"{', '.join(changed)})"
        )
    return None


def prepare_study(
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
        conflict = spec_conflict(spec, new_spec.config, new_spec.task)
        if conflict is not None:
            raise ConfigError(
                f"study {name} in {storage.display} {conflict}; tuning into it would mix two "
                "models' scores. Use another tuning.storage, or delete the study "
                f"(optuna.delete_study(study_name={name!r}, storage=...))"
            )
        if spec.defaults != new_spec.defaults:
            _warn_once(
                storage.display,
                "study %s: the configured defaults changed since it was created; gains are "
                "measured against the defaults recorded then: %s",
                name,
                spec.defaults,
            )
        if (spec.n_folds, spec.horizon) != (new_spec.n_folds, new_spec.horizon):
            why = (
                "tuning.n_folds"
                if spec.n_folds != new_spec.n_folds
                else "the data's dates (or adaptation.validation_fraction)"
            )
            _warn_once(storage.display,
                "study %s: scores every trial on the %d folds (horizon %d dates) recorded when "
                "it was created, not the %d (horizon %d) %s give now; a study's folds never "
                "change, so that its trials stay comparable: use another tuning.storage for a "
                "study on the new folds",
                name, spec.n_folds, spec.horizon, new_spec.n_folds, new_spec.horizon, why,
            )  # fmt: skip
        if spec.brands != new_spec.brands:
            _warn_once(
                storage.display,
                "study %s: scores the brands recorded when it was created (%s), not %s",
                name,
                spec.brands,
                new_spec.brands,
            )
        if spec.data_end != new_spec.data_end:
            _warn_once(storage.display,
                "study %s: scores its trials on the data up to %s (its window when created), "
                "not up to %s: its parameters, which pretrain applies, were chosen on that "
                "window; to tune on the newer rows, use another tuning.storage (or delete the "
                "study)",
                name, spec.data_end, new_spec.data_end,
            )  # fmt: skip
    reap_dead_trials(study)
    live = (TrialState.COMPLETE, TrialState.WAITING, TrialState.RUNNING)
    if not any(
        trial_role(t) == ROLE_DEFAULTS for t in study.get_trials(deepcopy=False, states=live)
    ):
        study.enqueue_trial(dict(spec.defaults), user_attrs={ROLE_ATTR: ROLE_DEFAULTS})
    return study, spec


def stop_when_defaults_fail(study: optuna.Study, trial: FrozenTrial) -> None:
    """A failing defaults trial means the problem itself is broken: stop instead of looping."""
    if trial.state == TrialState.FAIL and trial_role(trial) == ROLE_DEFAULTS:
        study.stop()


#: (storage, study, message) warned about in this process: a scope that opens its study twice
#: (a brand's warm start, then its run) warned twice.
_WARNED: set[tuple[str, ...]] = set()


def _warn_once(where: str, message: str, *args: Any) -> None:
    """``logger.warning(message, *args)`` once per process for the storage ``where``."""
    text = message % args
    if (where, text) not in _WARNED:
        _WARNED.add((where, text))
        logger.warning("%s", text)


def raise_if_broken(study: optuna.Study) -> None:
    """Raise when the defaults trial failed and no trial completed: the problem is broken."""
    trials = study.get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL and trial_role(t) == ROLE_DEFAULTS]
    if failed and not any(t.state == TrialState.COMPLETE for t in trials):
        error = str(failed[-1].user_attrs.get(ERROR_ATTR, "unknown error"))
        kind, _, message = error.partition(": ")
        if kind in _input_error_names():  # the data or config: exit 2, as pretrain does
            raise TabTuneInputError(f"study {study.study_name}: {message}")
        raise RuntimeError(f"study {study.study_name}: the defaults trial failed: {error}")


def _input_error_names() -> set[str]:
    """The names of :class:`TabTuneInputError` and its subclasses (a trial keeps its error as
    text: ``"ZeroTargetError: ..."``)."""
    names, todo = set(), [TabTuneInputError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def new_run_id() -> str:
    """A fresh id for one run of a study, recorded on the trials it scores."""
    return uuid.uuid4().hex


def count_finished(study: optuna.Study, run_id: str | None = None) -> int:
    """Trials of ``study`` that finished (complete, pruned or failed); with ``run_id``, only
    those the run scored (another process may add trials to the same study meanwhile)."""
    trials = study.get_trials(deepcopy=False, states=FINISHED)
    if run_id is None:
        return len(trials)
    return sum(t.user_attrs.get(RUN_ATTR) == run_id for t in trials)


def study_status(study: optuna.Study) -> str:
    """A short progress status: the lowest mean fold loss so far (not necessarily the
    adopted trial's, which must also win on every fold) and the trials pruned."""
    trials = study.get_trials(deepcopy=False, states=FINISHED)
    complete = [trial_value(t) for t in trials if t.state == TrialState.COMPLETE]
    pruned = sum(t.state == TrialState.PRUNED for t in trials)
    best = f"lowest {min(complete):.5g}" if complete else "no complete trial yet"
    return f"{best}, {pruned} pruned"
