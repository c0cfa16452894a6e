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
:func:`~tabtune.tuning.workers.run_parallel_workers`; SQLite is refused for them (its FAQ warns
of "database is locked"). A worker that dies leaves a ``RUNNING`` trial behind: the next run
marks such trials ``FAIL`` when their process is gone (same host) and re-enqueues the defaults
if they were lost.

The package, one job per module (lower ones never import higher ones):

- :mod:`~tabtune.tuning.keys`: the attribute keys and trial roles written into studies;
- :mod:`~tabtune.tuning.spaces`: search spaces, default parameters, applying tuned ones;
- :mod:`~tabtune.tuning.storage`: storage URLs, opening them, failing dead workers' trials;
- :mod:`~tabtune.tuning.study`: the frozen study spec, creating a study, summing it up;
- :mod:`~tabtune.tuning.objective`: one parameter set scored on the rolling-origin folds;
- :mod:`~tabtune.tuning.workers`: trials run in parallel worker processes;
- :mod:`~tabtune.tuning.scopes`: the global, adaptation and brand studies and their results.
"""

from __future__ import annotations

from tabtune.evaluation import Fold, rolling_origin_folds
from tabtune.tuning.keys import (
    ERROR_ATTR,
    FOLDS_ATTR,
    ROLE_ATTR,
    ROLE_DEFAULTS,
    ROLE_WARM_START,
    RUN_ATTR,
    SPEC_ATTR,
    WARM_ATTR,
    WORKER_ATTR,
)
from tabtune.tuning.objective import fold_loss
from tabtune.tuning.scopes import (
    BUCKETS,
    adopted_adaptations,
    best_params,
    bucket_for_rows,
    storage_exists,
    tune_adaptation,
    tune_brand,
    tune_global,
    tune_scope,
    tuned_note,
    tuned_pretraining,
)
from tabtune.tuning.spaces import (
    ADAPT_SPACE,
    GLOBAL_SPACE,
    ParamSpace,
    Scope,
    apply_params,
    default_params,
    resolve_search_space,
)
from tabtune.tuning.storage import (
    StorageSpec,
    open_storage,
    parse_storage,
    reap_dead_trials,
    worker_identity,
)
from tabtune.tuning.study import StudySpec, TuningResult, default_pruner, study_name
from tabtune.tuning.workers import run_parallel_workers

__all__ = [
    "ADAPT_SPACE",
    "BUCKETS",
    "ERROR_ATTR",
    "FOLDS_ATTR",
    "GLOBAL_SPACE",
    "ROLE_ATTR",
    "ROLE_DEFAULTS",
    "ROLE_WARM_START",
    "RUN_ATTR",
    "SPEC_ATTR",
    "WARM_ATTR",
    "WORKER_ATTR",
    "Fold",
    "ParamSpace",
    "Scope",
    "StorageSpec",
    "StudySpec",
    "TuningResult",
    "apply_params",
    "adopted_adaptations",
    "best_params",
    "bucket_for_rows",
    "default_params",
    "default_pruner",
    "fold_loss",
    "open_storage",
    "parse_storage",
    "reap_dead_trials",
    "resolve_search_space",
    "rolling_origin_folds",
    "run_parallel_workers",
    "storage_exists",
    "study_name",
    "tune_adaptation",
    "tune_brand",
    "tune_global",
    "tune_scope",
    "tuned_note",
    "tuned_pretraining",
    "worker_identity",
]

#: The former private spelling of :func:`worker_identity`; tests/test_tuning.py reads it.
_worker_identity = worker_identity
