"""Tuning on a PostgreSQL storage: the same study contract as SQLite, plus parallel workers.

Needs a server: ``eval "$(.ci/postgres.sh)"`` exports ``TABTUNE_TEST_PG_URL``. Without it the
tests skip, except under ``CI=true``, where a missing database is a failure, not a skip.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tabtune.config import BID_TASK, Config
from tabtune.features import TaskData, task_data
from tabtune.tuning import (
    ROLE_ATTR,
    ROLE_DEFAULTS,
    WORKER_ATTR,
    best_params,
    open_storage,
    parse_storage,
    tune_global,
)

ENV = "TABTUNE_TEST_PG_URL"


@pytest.fixture(scope="module")
def pg_url() -> str:
    url = os.environ.get(ENV)
    if not url:
        message = f'{ENV} is not set; start a server with: eval "$(.ci/postgres.sh)"'
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {message}", pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture(scope="module")
def data() -> TaskData:
    from tabtune.data.synth import simulate

    rows = simulate(n_brands=5, n_days=90, seed=11).observations
    return task_data(rows, Config.model_validate({"tasks": {"bid": BID_TASK}}).task("bid"))


def _config(tmp_path: Path, url: str) -> tuple[Config, str]:
    # a fresh task name per test: study names are "{task}:global" and the database outlives runs
    task = f"pg{uuid.uuid4().hex[:10]}"
    cfg = Config.model_validate(
        {
            "device": "cpu",
            "tasks": {task: {**BID_TASK, "name": task}},
            "model": {"n_estimators": 30, "num_leaves": 15, "early_stopping_rounds": 10},
            "tuning": {
                "storage": url,
                "n_folds": 2,
                "timeout": None,
                "search_space": {
                    "n_estimators": {"low": 10, "high": 40},
                    "num_leaves": {"low": 4, "high": 31},
                },
            },
        }
    )
    return cfg, task


def test_postgres_url_is_an_rdb_storage(pg_url: str) -> None:
    spec = parse_storage(pg_url)
    assert spec.kind == "rdb" and spec.parallel_safe
    assert "@" in spec.display and ":***@" in spec.display  # the password never shows


def test_postgres_study_resumes_with_the_defaults_first(
    tmp_path: Path, pg_url: str, data: TaskData
) -> None:
    cfg, task = _config(tmp_path, pg_url)
    first = tune_global(cfg, task, n_trials=2, data=data)
    second = tune_global(cfg, task, n_trials=2, data=data)
    assert (first.n_trials, second.n_trials) == (2, 4)
    study = optuna.load_study(study_name=f"{task}:global", storage=open_storage(pg_url))
    trials = study.get_trials()
    assert trials[0].user_attrs[ROLE_ATTR] == ROLE_DEFAULTS
    assert second.best_value <= second.default_value
    assert best_params(cfg, task, "global") == second.best_params
    optuna.delete_study(study_name=f"{task}:global", storage=open_storage(pg_url))


def test_postgres_two_worker_processes(tmp_path: Path, pg_url: str, data: TaskData) -> None:
    cfg, task = _config(tmp_path, pg_url)
    result = tune_global(cfg, task, n_trials=4, n_jobs=2, data=data)
    assert result.n_new == 4 and result.n_trials == 4
    study = optuna.load_study(study_name=f"{task}:global", storage=open_storage(pg_url))
    trials = study.get_trials()
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert len({t.user_attrs[WORKER_ATTR] for t in trials}) == 2
    optuna.delete_study(study_name=f"{task}:global", storage=open_storage(pg_url))
