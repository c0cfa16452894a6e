"""The attribute keys and trial roles tabtune writes into Optuna studies and trials.

Every tuning module reads or writes these, and a study written by one version is read by the
next, so they live in one place below all of them.
"""

from __future__ import annotations

from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "ERROR_ATTR",
    "FINISHED",
    "FOLDS_ATTR",
    "ROLE_ATTR",
    "ROLE_DEFAULTS",
    "ROLE_WARM_START",
    "SPEC_ATTR",
    "WARM_ATTR",
    "WORKER_ATTR",
    "trial_role",
    "trial_value",
]

#: Study attribute holding the :class:`~tabtune.tuning.study.StudySpec` frozen at creation.
SPEC_ATTR = "tabtune:spec"
#: Trial attribute: why the trial was queued (:data:`ROLE_DEFAULTS`, :data:`ROLE_WARM_START`).
ROLE_ATTR = "tabtune:role"
#: Trial attribute: ``host|pid|start`` of the process that ran it.
WORKER_ATTR = "tabtune:worker"
#: Trial attribute: the fold scores so far.
FOLDS_ATTR = "tabtune:fold_scores"
#: Trial attribute: the error that failed it.
ERROR_ATTR = "tabtune:error"
#: Trial attribute: the warm-start parameters it evaluates.
WARM_ATTR = "tabtune:warm_params"
ROLE_DEFAULTS = "defaults"
ROLE_WARM_START = "warm_start"
#: The states of a trial that will not run again.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def trial_role(trial: FrozenTrial) -> str | None:
    """The role tabtune queued ``trial`` with, None for a sampler's proposal."""
    return trial.user_attrs.get(ROLE_ATTR)


def trial_value(trial: FrozenTrial) -> float:
    """The objective value of a complete trial (tabtune's studies have one objective).

    Raises
    ------
    ValueError
        For a trial without a value (one that did not complete).
    """
    if trial.value is None:
        raise ValueError(f"trial {trial.number} has no value: it did not complete")
    return trial.value
