"""Tuning: search spaces, rolling-origin folds, pruning, storages, resume and parallel workers.

Every test tunes the real estimator on a small simulated history (6 brands x 120 days).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.trial import TrialState

from tabtune import tuning
from tabtune.cli.tune import run_tuning_cli
from tabtune.config import BID_TASK, Config, load_config
from tabtune.errors import ConfigError, TabTuneInputError
from tabtune.features import TaskData, task_data
from tabtune.params import section_params
from tabtune.tuning import (
    ERROR_ATTR,
    FOLDS_ATTR,
    ROLE_ATTR,
    ROLE_DEFAULTS,
    ROLE_WARM_START,
    WORKER_ATTR,
    apply_params,
    best_params,
    bucket_for_rows,
    default_params,
    parse_storage,
    resolve_search_space,
    rolling_origin_folds,
    tune_adaptation,
    tune_brand,
    tune_global,
)

REPO = Path(__file__).resolve().parents[1]

# Small enough that a trial takes well under a second, wide enough to hold the defaults.
SMALL_SPACE = {
    "n_estimators": {"low": 10, "high": 40},
    "num_leaves": {"low": 4, "high": 31},
    "min_child_samples": {"low": 5, "high": 50},
    "adapt_n_estimators": {"low": 5, "high": 40},
}


def make_config(tmp_path: Path, **tuning_overrides) -> Config:
    """A small config whose store, models and tuning database live under ``tmp_path``."""
    tuning_section = {
        "storage": f"sqlite:///{tmp_path}/nested/dir/tuning.db",
        "n_trials": 3,
        "timeout": None,
        "n_folds": 2,
        "search_space": SMALL_SPACE,
        **tuning_overrides,
    }
    return Config.model_validate(
        {
            "data": {"store": str(tmp_path / "store"), "truth_dir": str(tmp_path / "truth")},
            "models_dir": str(tmp_path / "models"),
            "device": "cpu",
            "tasks": {"bid": BID_TASK},
            "model": {
                "n_estimators": 30,
                "learning_rate": 0.1,
                "num_leaves": 15,
                "min_child_samples": 20,
                "early_stopping_rounds": 10,
            },
            "adaptation": {"adapt_n_estimators": 20, "min_rows_to_adapt": 100},
            "tuning": tuning_section,
        }
    )


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    from tabtune.data.synth import simulate

    return simulate(n_brands=6, n_days=120, seed=3).observations


@pytest.fixture(scope="module")
def data(rows: pd.DataFrame) -> TaskData:
    return task_data(rows, Config.model_validate({"tasks": {"bid": BID_TASK}}).task("bid"))


@pytest.fixture
def no_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any estimator is built: errors must come before any trial."""

    def forbidden(*args, **kwargs):
        raise AssertionError("an estimator was built before the configuration was checked")

    monkeypatch.setattr("tabtune.pipeline.global_estimator", forbidden)
    monkeypatch.setattr("tabtune.pipeline.brand_estimator", forbidden)


def _study(cfg: Config, name: str = "bid:global") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=tuning.open_storage(cfg.tuning.storage))


# ----------------------------------------------------------------------------- search spaces
def test_default_spaces_hold_the_configured_defaults() -> None:
    cfg = Config()
    for scope in ("global", "adapt"):
        space = resolve_search_space(cfg, scope)
        defaults = default_params(cfg, list(space))
        for name, sp in space.items():
            widened, value = sp.including(defaults[name])
            assert widened == sp, f"default {name}={defaults[name]!r} outside {sp}"
            # reg_alpha's default 0 is the one value a log scale cannot hold: 1e-8 stands in
            assert value == defaults[name] or (name == "reg_alpha" and value == 1e-8)
    assert set(resolve_search_space(cfg, "global")) == set(tuning.GLOBAL_SPACE)
    assert set(resolve_search_space(cfg, "brand")) == set(tuning.ADAPT_SPACE)


def test_config_overrides_merge_replace_and_disable() -> None:
    cfg = Config.model_validate(
        {
            "tuning": {
                "search_space": {
                    "learning_rate": {"high": 0.1},  # merged into the default range
                    "max_depth": {"low": 3, "high": 8},  # choices replaced by a range
                    "strategy": {"choices": ["refit", "continue"]},
                    "num_leaves": None,  # not tuned
                }
            }
        }
    )
    space = resolve_search_space(cfg, "global")
    assert space["learning_rate"].low == 0.01 and space["learning_rate"].high == 0.1
    assert space["learning_rate"].log
    assert space["max_depth"].integer and (space["max_depth"].low, space["max_depth"].high) == (
        3,
        8,
    )
    assert "num_leaves" not in space
    assert resolve_search_space(cfg, "adapt")["strategy"].choices == ("refit", "continue")


def test_search_space_is_read_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            {"tuning": {"search_space": {"learning_rate": {"low": 0.02, "high": 0.2, "log": True}}}}
        )
    )
    cfg = load_config(path)
    assert cfg.tuning.search_space == {"learning_rate": {"low": 0.02, "high": 0.2, "log": True}}
    path.write_text(yaml.safe_dump({"tuning": {"search_space": {"learning_rate": [0.1]}}}))
    with pytest.raises(ConfigError, match="tuning.search_space.learning_rate"):
        load_config(path)


@pytest.mark.parametrize(
    ("search_space", "storage", "needle"),
    [
        (
            {"learnin_rate": {"low": 0.01, "high": 0.1}},
            None,
            "unknown parameter(s) ['learnin_rate']",
        ),
        ({"num_leaves": {"low": 64, "high": 64}}, None, "empty range"),
        ({"learning_rate": {"low": 0.3, "high": 0.1}}, None, "empty range"),
        (
            {"reg_alpha": {"low": 0.0, "high": 1.0, "log": True}},
            None,
            "log-scale range needs low > 0",
        ),
        ({"subsample": {"low": 0.5, "high": 1.5}}, None, "not a valid subsample"),
        ({"num_leaves": {"low": 4.5, "high": 9}}, None, "integer"),
        ({"strategy": {"choices": []}}, None, "non-empty list"),
        ({"strategy": {"choices": ["refit", "magic"]}}, None, "not a valid strategy"),
        ({"learning_rate": {"lo": 0.1, "high": 0.2}}, None, "unknown key(s) ['lo']"),
        ({}, "sqlite:///:memory:", "needs a database file"),
        ({}, "journal:", "journal storage needs a file"),
        ({}, "redis://localhost/0", "unsupported storage"),
        ({}, "postgresql:///", "needs a host and a database"),
        ({}, "not a url", "cannot parse"),
    ],
)
def test_bad_config_fails_before_any_trial(
    tmp_path: Path, data: TaskData, no_fit: None, search_space, storage, needle: str
) -> None:
    cfg = make_config(tmp_path, search_space=search_space)
    with pytest.raises(ConfigError) as info:
        tune_global(cfg, "bid", n_trials=2, storage=storage, data=data)
    assert needle in str(info.value)
    assert not (tmp_path / "nested").exists(), "no storage may be created for a bad config"


def test_bad_budget_and_scope(tmp_path: Path, data: TaskData, no_fit: None) -> None:
    cfg = make_config(tmp_path)
    # the Python names first: a Python caller passed n_trials, not --trials (API red-team)
    with pytest.raises(TabTuneInputError, match=r"^n_trials \(tabtune tune --trials\)"):
        tune_global(cfg, "bid", n_trials=0, data=data)
    with pytest.raises(TabTuneInputError, match=r"^timeout \(tabtune tune --timeout\)"):
        tune_global(cfg, "bid", timeout=-1, data=data)
    with pytest.raises(ConfigError, match="cannot serve 2 parallel workers"):
        tune_global(cfg, "bid", n_trials=2, n_jobs=2, data=data)
    with pytest.raises(TabTuneInputError, match="unknown bucket"):
        tune_adaptation(cfg, "bid", "huge", data=data)
    with pytest.raises(TabTuneInputError, match="unknown scope"):
        best_params(cfg, "bid", "everything")
    with pytest.raises(TabTuneInputError, match="unknown tuning scope"):
        run_tuning_cli(cfg, task="bid", scope="brand:")


def test_storage_urls() -> None:
    assert parse_storage("sqlite:///models/tuning.db").path == Path("models/tuning.db")
    assert parse_storage("sqlite:////abs/t.db").path == Path("/abs/t.db")
    assert parse_storage("journal:models/t.journal").kind == "journal"
    spec = parse_storage("postgresql+psycopg2://u:secret@db.example:5432/optuna")
    assert spec.kind == "rdb" and "secret" not in spec.display
    assert not parse_storage("sqlite:///t.db").parallel_safe


def test_a_missing_database_driver_gets_a_hint_that_works(monkeypatch) -> None:
    # SQLAlchemy 2's postgresql:// wants psycopg 3; the hint said psycopg2-binary (already
    # installed), and postgresql+psycopg:// was refused by the config (tune/predict red-team)
    from tabtune.config import TuningConfig
    from tabtune.tuning import storage

    monkeypatch.setattr(storage, "_importable", lambda driver: driver == "psycopg2")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"pip install 'psycopg\[binary\]', or name the "
                           r"installed driver: postgresql\+psycopg2://"):  # fmt: skip
            parse_storage("postgresql://u@db.example/optuna")
    for url in ("postgresql+psycopg://u@h/db", "mysql+pymysql://u@h/db"):
        assert TuningConfig(storage=url).storage == url  # the spellings the hints give


def test_buckets_and_apply_params() -> None:
    assert [bucket_for_rows(n) for n in (0, 999, 1000, 9999, 10000)] == [
        "small",
        "small",
        "medium",
        "medium",
        "large",
    ]
    cfg = apply_params(Config(), {"learning_rate": 0.2, "strategy": "refit"})
    assert cfg.model.learning_rate == 0.2 and cfg.adaptation.strategy == "refit"
    assert Config().model.learning_rate == 0.05
    with pytest.raises(ConfigError):
        apply_params(Config(), {"learning_rate": 5.0})


# ----------------------------------------------------------------------------- folds
@settings(max_examples=200, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 60), min_size=1, max_size=80),
    n_folds=st.integers(1, 4),
    horizon=st.one_of(st.none(), st.integers(1, 6)),
)
def test_folds_never_validate_before_training(offsets, n_folds, horizon) -> None:
    dates = pd.Timestamp("2024-01-01") + pd.to_timedelta(offsets, unit="D")
    try:
        folds = rolling_origin_folds(dates, n_folds, horizon=horizon)
    except TabTuneInputError:
        n_unique = len(set(offsets))
        h = horizon or max(1, int(n_unique * 0.2) // n_folds)
        assert n_unique - n_folds * h < 1  # refused only when no training date would remain
        return
    values = np.asarray(dates.to_numpy())
    assert len(folds) == n_folds
    for fold in folds:
        assert len(fold.train) > 0 and len(fold.valid) > 0
        assert values[fold.train].max() < values[fold.valid].min()
        assert (values[fold.valid] >= fold.cut).all() and (values[fold.valid] < fold.end).all()
        # expanding window: training holds every row dated before the cut
        assert set(fold.train) == set(np.flatnonzero(values < fold.cut))
    for earlier, later in zip(folds, folds[1:]):
        assert earlier.end <= later.cut  # validation windows are consecutive and disjoint
        assert set(earlier.train) < set(later.train)


def test_fold_horizon_counts_distinct_dates() -> None:
    dates = pd.to_datetime(["2024-01-05", "2024-01-01", "2024-01-02", "2024-01-02", "2024-01-04"])
    folds = rolling_origin_folds(dates, 2, horizon=1)
    assert [f.cut for f in folds] == [pd.Timestamp("2024-01-04"), pd.Timestamp("2024-01-05")]
    assert sorted(folds[0].train) == [1, 2, 3] and list(folds[0].valid) == [4]
    assert list(folds[1].valid) == [0]


# ----------------------------------------------------------------------------- SQLite study
def test_sqlite_study_resumes_with_the_defaults_first(tmp_path: Path, data: TaskData) -> None:
    cfg = make_config(tmp_path)
    first = tune_global(cfg, "bid", n_trials=3, data=data)
    assert (tmp_path / "nested" / "dir" / "tuning.db").exists()
    assert first.n_trials == 3 and first.n_new == 3

    second = tune_global(cfg, "bid", n_trials=2, data=data)
    assert second.n_trials == 5 and second.n_new == 2

    study = _study(cfg)
    trials = study.get_trials()
    assert trials[0].user_attrs[ROLE_ATTR] == ROLE_DEFAULTS
    configured = default_params(cfg, list(trials[0].params))
    assert trials[0].params == {**configured, "reg_alpha": 1e-8}  # 0 on a log scale: 1e-8
    assert tuning.StudySpec.from_study(study).defaults == trials[0].params
    assert trials[0].state == TrialState.COMPLETE
    assert sum(t.user_attrs.get(ROLE_ATTR) == ROLE_DEFAULTS for t in trials) == 1
    assert second.default_value == pytest.approx(trials[0].value)
    assert second.best_value <= second.default_value
    assert second.gain_pct >= 0
    # every trial is scored on the same 2 folds, reported fold by fold
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert sorted(t.intermediate_values) == [0, 1]
            assert t.value == pytest.approx(np.mean(t.user_attrs["tabtune:fold_scores"]))
    assert best_params(cfg, "bid", "global") == second.best_params
    assert best_params(cfg, "bid", "adapt:small") is None
    # another backend's trials must not land in this study
    with pytest.raises(ConfigError, match="holds lightgbm trials"):
        tune_global(cfg.model_copy(update={"backend": "xgboost"}), "bid", n_trials=1, data=data)
    assert len(_study(cfg).get_trials()) == 5


def test_a_study_of_another_loss_or_backend_is_neither_extended_nor_applied(
    tmp_path: Path, data: TaskData, caplog
) -> None:
    """A study tuned with another objective (or backend) was extended, its trials "beating"
    the defaults on another scale, and its parameters applied to every pretraining; an adopted
    defaults trial was announced as tuned parameters (red-team)."""
    import logging

    from tabtune.tuning.scopes import tuned_pretraining

    cfg = make_config(tmp_path, min_gain=0.99)  # nothing beats the defaults by 99%
    tune_global(cfg, "bid", n_trials=2, data=data)
    assert best_params(cfg, "bid", "global") == _study(cfg).get_trials()[0].params
    assert tuned_pretraining(cfg, "bid") == (cfg, {})  # the defaults stay, said as such
    squared = cfg.model_copy(deep=True)
    squared.tasks["bid"] = squared.tasks["bid"].model_copy(update={"objective": "squared_error"})
    with pytest.raises(ConfigError, match="another definition of task 'bid'.*objective"):
        tune_global(squared, "bid", n_trials=1, data=data)
    assert len(_study(cfg).get_trials()) == 2
    with caplog.at_level(logging.WARNING, logger="tabtune"):
        assert best_params(squared, "bid", "global") is None
    assert "its parameters are not used" in caplog.text
    xgb = cfg.model_copy(update={"backend": "xgboost"})
    assert best_params(xgb, "bid", "global") is None and tuned_pretraining(xgb, "bid")[1] == {}
    assert best_params(cfg, "bid", "global") is not None  # the study's own config: applied


def test_best_params_does_not_create_a_storage(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    assert best_params(cfg, "bid", "global") is None
    assert best_params(cfg, "bid", "global", storage=f"journal:{tmp_path}/x.journal") is None
    assert not (tmp_path / "nested").exists() and not (tmp_path / "x.journal").exists()


def test_two_processes_creating_one_new_storage_both_open_it(tmp_path: Path) -> None:
    # red-team F10: two `tune` started together on a fresh SQLite storage race to create its
    # tables; the loser showed SQLAlchemy's raw text ("table studies already exists [SQL: ...")
    import threading

    errors: list[str] = []

    def open_it(url: str, barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            storage = tuning.open_storage(url)
            optuna.create_study(study_name="s", storage=storage, load_if_exists=True)
        except Exception as exc:  # noqa: BLE001 - every failure is the finding
            errors.append(f"{type(exc).__name__}: {exc}")

    for i in range(8):  # the race is lost in about half of the fresh storages
        url, barrier = f"sqlite:///{tmp_path}/race{i}/tuning.db", threading.Barrier(2)
        threads = [threading.Thread(target=open_it, args=(url, barrier)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors, errors


def test_a_storage_that_stays_in_the_race_is_named_without_sqlalchemy_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from tabtune.tuning import storage as storage_module

    def racing(*args, **kwargs):
        raise OperationalError(
            "CREATE TABLE studies (...)", {}, Exception("table studies already exists")
        )

    monkeypatch.setattr(storage_module, "CREATE_RETRY_SECONDS", 0.0)
    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    with pytest.raises(ConfigError) as info:
        tuning.open_storage(f"sqlite:///{tmp_path}/t.db")
    text = str(info.value)
    assert "being created by another process" in text and "run the command again" in text
    assert "table studies already exists" in text
    assert "[SQL:" not in text and "sqlalche.me" not in text, text


def test_a_run_counts_only_the_trials_it_added(
    tmp_path: Path, data: TaskData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # red-team F10: the summary's "added by this run" counted the trials another process
    # added to the same study meanwhile
    from tabtune.tuning import scopes

    cfg = make_config(tmp_path)

    class Crowded(scopes.Objective):
        """Another process adds a finished trial to the study while this run scores one."""

        def __call__(self, trial: optuna.Trial) -> float:
            if trial.number == 0:
                _study(cfg).add_trial(optuna.trial.create_trial(value=1e9))
            return super().__call__(trial)

    monkeypatch.setattr(scopes, "Objective", Crowded)
    result = tune_global(cfg, "bid", n_trials=2, data=data)
    assert result.n_trials == 3 and result.n_new == 2, result


def test_pruning_stops_clearly_bad_trials(tmp_path: Path, data: TaskData) -> None:
    # Two of the three learning rates are ~1e-4: 30 trees barely move off the mean, so those
    # trials are far worse than the good one (the default, 0.1) from the first, cheapest fold.
    space = {
        "learning_rate": {"choices": [0.1, 0.0001, 0.0002]},
        **{name: None for name in tuning.GLOBAL_SPACE if name != "learning_rate"},
    }
    cfg = make_config(tmp_path, search_space=space, n_folds=3)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3)
    result = tune_global(cfg, "bid", n_trials=10, data=data, pruner=pruner)
    trials = _study(cfg).get_trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert result.n_pruned == len(pruned) >= 2
    assert all(t.params["learning_rate"] < 0.001 for t in pruned)
    assert all(len(t.intermediate_values) < 3 for t in pruned)  # stopped before the last fold
    assert trials[0].state == TrialState.COMPLETE  # the defaults are never pruned
    assert all(t.state == TrialState.COMPLETE for t in trials if t.params["learning_rate"] == 0.1)
    assert result.best_params["learning_rate"] == 0.1


# ----------------------------------------------------------------------------- adaptation
def test_adaptation_bucket_study_and_brand_warm_start(tmp_path: Path, data: TaskData) -> None:
    cfg = make_config(tmp_path)
    small = tune_adaptation(cfg, "bid", "small", n_trials=2, data=data)
    study = _study(cfg, "bid:adapt:small")
    spec = tuning.StudySpec.from_study(study)
    counts = data.X["brand_id"].value_counts()
    assert spec.brands == sorted(b for b in counts.index if counts[b] < 1000)
    assert spec.base_params["learning_rate"] == cfg.model.learning_rate
    assert small.n_trials == 2 and small.best_value <= small.default_value

    # warm start: the bucket study's best (planted here, so it differs from the defaults)
    planted = {**small.default_params, "strategy": "refit", "refit_decay_rate": 0.25}
    study.add_trial(
        optuna.trial.create_trial(
            params=planted,
            distributions=study.get_trials()[0].distributions,
            value=small.best_value / 2,
        )
    )
    brand = spec.brands[-1]
    result = tune_brand(cfg, "bid", brand, n_trials=3, data=data)
    trials = _study(cfg, f"bid:brand:{brand}").get_trials()
    assert trials[0].user_attrs[ROLE_ATTR] == ROLE_DEFAULTS
    assert trials[1].user_attrs[ROLE_ATTR] == ROLE_WARM_START
    assert trials[1].params == planted
    assert result.n_trials == 3
    # a rerun does not queue the same warm start again
    tune_brand(cfg, "bid", brand, n_trials=1, data=data)
    trials = _study(cfg, f"bid:brand:{brand}").get_trials()
    assert sum(t.user_attrs.get(ROLE_ATTR) == ROLE_WARM_START for t in trials) == 1
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert best_params(cfg, "bid", f"brand:{brand}") == _adopted(complete).params
    # what a refresh night reads once: every adaptation and brand study of the task
    from tabtune.config import AdaptationConfig

    night = tuning.adopted_adaptations(cfg, "bid")
    for scope in ("adapt:small", f"brand:{brand}"):
        own = best_params(cfg, "bid", scope) or {}
        wanted = {k: v for k, v in own.items() if k in AdaptationConfig.model_fields}
        assert night.get(scope, {}) == wanted, scope
    assert set(night) <= {"adapt:small", f"brand:{brand}"}
    assert not any(k.startswith("brand:") for k in tuning.adopted_adaptations(cfg, "bid", []))
    assert tuning.adopted_adaptations(cfg, "budget") == {}


def _adopted(complete, min_gain=0.01):
    """The oracle of the adoption rule: the lowest mean among the trials that beat the
    defaults on every fold and by ``min_gain`` on average, else the defaults."""
    (defaults,) = [t for t in complete if t.user_attrs.get(ROLE_ATTR) == ROLE_DEFAULTS]
    base = defaults.user_attrs[FOLDS_ATTR]
    winners = [
        t
        for t in complete
        if t is not defaults
        and t.value < defaults.value * (1 - min_gain)
        and all(a < b for a, b in zip(t.user_attrs.get(FOLDS_ATTR, []), base))
        and len(t.user_attrs.get(FOLDS_ATTR, [])) == len(base)
    ]
    return min(winners, key=lambda t: t.value) if winners else defaults


def test_a_mean_gain_that_a_fold_contradicts_is_not_adopted(tmp_path: Path, data: TaskData):
    """Of trials with lower mean fold loss than the defaults, only one lower on every fold and
    by at least ``tuning.min_gain`` (1%) on average is adopted; with none such, the defaults
    are (and the gain is 0)."""
    cfg = make_config(tmp_path, n_folds=3)
    result = tune_global(cfg, "bid", n_trials=1, data=data)  # the defaults trial only
    study = _study(cfg)
    (defaults,) = study.get_trials()
    base = defaults.user_attrs[FOLDS_ATTR]
    dist = defaults.distributions

    def plant(params, folds):
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=dist,
                value=float(np.mean(folds)),
                user_attrs={FOLDS_ATTR: folds},
            )
        )

    lr = dict(defaults.params)
    # much lower on average, but worse on the first fold
    plant({**lr, "learning_rate": 0.2}, [base[0] * 1.01, base[1] * 0.5, base[2] * 0.5])
    assert best_params(cfg, "bid", "global") == defaults.params
    # lower on every fold but by 0.5% only: below tuning.min_gain
    plant({**lr, "learning_rate": 0.08}, [b * 0.995 for b in base])
    assert best_params(cfg, "bid", "global") == defaults.params
    # 2% lower on every fold: adopted, though its mean is above the first one's
    plant({**lr, "learning_rate": 0.07}, [b * 0.98 for b in base])
    assert best_params(cfg, "bid", "global")["learning_rate"] == 0.07
    # with tuning.min_gain 0 the 0.5% trial would do, and the 2% one is still lower
    cfg.tuning.min_gain = 0.0
    assert best_params(cfg, "bid", "global")["learning_rate"] == 0.07
    assert result.gain_pct == 0.0


# ----------------------------------------------------------------------------- crashes
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_dead_workers_trials_are_failed_and_lost_defaults_requeued(
    tmp_path: Path, data: TaskData
) -> None:
    cfg = make_config(tmp_path)
    storage = tuning.open_storage(cfg.tuning.storage)
    study = optuna.create_study(study_name="bid:global", storage=storage)
    # what a run killed inside its first trial leaves behind: the defaults, RUNNING forever
    defaults = {**default_params(cfg, list(resolve_search_space(cfg, "global"))), "reg_alpha": 1e-8}
    study.enqueue_trial(defaults, user_attrs={ROLE_ATTR: ROLE_DEFAULTS})
    zombie = study.ask()
    zombie.set_user_attr(WORKER_ATTR, f"{os.uname().nodename}|{_dead_pid()}|")
    alive = study.ask()  # a trial of a live worker (this process) must be left alone
    alive.set_user_attr(WORKER_ATTR, tuning._worker_identity())

    result = tune_global(cfg, "bid", n_trials=2, data=data)
    trials = _study(cfg).get_trials()
    assert trials[zombie.number].state == TrialState.FAIL
    assert trials[zombie.number].user_attrs[ERROR_ATTR] == "worker process died"
    assert trials[alive.number].state == TrialState.RUNNING
    requeued = trials[2]
    assert requeued.user_attrs[ROLE_ATTR] == ROLE_DEFAULTS and requeued.params == defaults
    assert requeued.state == TrialState.COMPLETE and result.default_value == requeued.value


_CHILD = """
import json, sys
from tabtune.config import Config
from tabtune.tuning import tune_global
cfg = Config.model_validate(json.loads(open(sys.argv[1]).read()))
tune_global(cfg, "bid", n_trials=500)
"""


def test_killed_run_resumes(tmp_path: Path, rows: pd.DataFrame) -> None:
    from tabtune.data.store import CampaignStore

    cfg = make_config(tmp_path)
    CampaignStore(cfg.data.store).append(rows)
    (tmp_path / "cfg.json").write_text(json.dumps(cfg.model_dump(mode="json")))
    (tmp_path / "child.py").write_text(_CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(tmp_path / "child.py"), str(tmp_path / "cfg.json")],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    storage = tuning.open_storage(cfg.tuning.storage)
    deadline = time.monotonic() + 90
    running: list[int] = []
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, "the tuning child exited on its own"
            try:
                trials = optuna.load_study(study_name="bid:global", storage=storage).get_trials()
            except KeyError:
                trials = []
            complete = [t for t in trials if t.state == TrialState.COMPLETE]
            running = [t.number for t in trials if t.state == TrialState.RUNNING]
            if len(complete) >= 3 and running:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the child did not complete 3 trials in time")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    before = _study(cfg).get_trials()
    n_complete = sum(t.state == TrialState.COMPLETE for t in before)
    zombies = [t.number for t in before if t.state == TrialState.RUNNING]
    assert zombies, "the kill should have left a RUNNING trial"

    result = tune_global(cfg, "bid", n_trials=2, pruner=optuna.pruners.NopPruner())
    after = _study(cfg).get_trials()
    assert len(after) == len(before) + 2
    assert result.n_complete == n_complete + 2
    assert all(after[n].state == TrialState.FAIL for n in zombies)
    assert not [t for t in after if t.state == TrialState.RUNNING]
    assert result.default_value is not None and result.best_value <= result.default_value


# ----------------------------------------------------------------------------- parallel
def test_journal_storage_two_worker_processes(tmp_path: Path, data: TaskData) -> None:
    cfg = make_config(tmp_path, storage=f"journal:{tmp_path}/nested/tuning.journal")
    result = tune_global(cfg, "bid", n_trials=6, n_jobs=2, data=data)
    assert result.n_new == 6 and result.n_trials == 6
    trials = _study(cfg).get_trials()
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert trials[0].user_attrs[ROLE_ATTR] == ROLE_DEFAULTS
    workers = {t.user_attrs[WORKER_ATTR].split("|")[1] for t in trials}
    assert len(workers) == 2 and str(os.getpid()) not in workers


# ----------------------------------------------------------------------------- CLI
def _stored_config(tmp_path: Path, rows: pd.DataFrame, **tuning_overrides) -> tuple[Config, Path]:
    """:func:`make_config` with ``rows`` in its store, written as a YAML file for the CLI."""
    from tabtune.data.store import CampaignStore

    cfg = make_config(tmp_path, **tuning_overrides)
    CampaignStore(cfg.data.store).append(rows)
    raw = cfg.model_dump(mode="json")
    raw["tasks"] = {"bid": str(REPO / "configs" / "tasks" / "bid.yaml")}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    return cfg, path


def test_cli_tune_prints_the_summary(tmp_path: Path, rows: pd.DataFrame, capsys) -> None:
    from tabtune.cli import EXIT_BAD_INPUT, EXIT_OK, main

    cfg, path = _stored_config(tmp_path, rows)
    assert main(["--config", str(path), "tune", "--trials", "2"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "bid:global" in out and "gain over defaults" in out and "learning_rate" in out
    # the loss is named, and the column is the adopted trial (the defaults unless a trial
    # wins on every fold), not "best" (numbers audit)
    assert "tweedie deviance (mean over time-ordered folds)" in out, out
    assert "adopted trial vs defaults" in out and "best trial" not in out
    # the storage's folder was created: said once, so that a mistyped path shows
    folder = tmp_path / "nested" / "dir"
    assert f"note: created the folder {folder} for tuning.storage" in " ".join(out.split())
    assert main(["--config", str(path), "tune", "--trials", "1"]) == EXIT_OK
    assert "created the folder" not in capsys.readouterr().out
    assert main(["--config", str(path), "tune", "--trials", "0"]) == EXIT_BAD_INPUT


@pytest.mark.parametrize("scheme", ["sqlite:///", "journal:"])
def test_a_storage_folder_that_cannot_be_created_is_named(
    tmp_path: Path, rows: pd.DataFrame, scheme: str, capsys
) -> None:
    # a file where the storage's folder should be: a traceback and "internal error" (exit 1)
    from tabtune.cli import EXIT_BAD_INPUT, main

    (tmp_path / "afile").write_text("x")
    url = f"{scheme}{tmp_path}/afile/sub/tuning.db"
    with pytest.raises(ConfigError) as info:
        tuning.open_storage(url)
    text = str(info.value)
    assert text.startswith(f"tuning.storage: {url}: its folder {tmp_path}/afile/sub")
    assert f"{tmp_path}/afile is a file, not a folder" in text and "point tuning.storage" in text
    _, path = _stored_config(tmp_path, rows, storage=url)
    capsys.readouterr()
    assert main(["--config", str(path), "tune", "--trials", "1"]) == EXIT_BAD_INPUT
    out = capsys.readouterr()
    assert "is a file, not a folder" in out.err and "Traceback" not in out.out + out.err


@pytest.mark.parametrize("objective", ["tweedie", "poisson", None])
def test_fold_loss_matches_the_task_loss(objective) -> None:
    """Folds are scored with the deviance of the loss the task trains with."""
    from sklearn.metrics import mean_poisson_deviance, mean_squared_error, mean_tweedie_deviance

    from tabtune.config import TaskConfig
    from tabtune.tuning import fold_loss as _fold_loss

    class Fixed:
        def __init__(self, mu):
            self.mu = mu

        def predict(self, X):
            return self.mu

    y = np.array([0.0, 0.5, 3.0, 10.0, 0.0])
    mu = np.array([0.2, 1.0, 2.0, 8.0, 0.05])
    task = TaskConfig(
        name="t", target={"numerator": "revenue"}, numeric=["spend"], objective=objective
    )
    got = _fold_loss(task, Fixed(mu), None, y).mean()
    expected = {
        "tweedie": mean_tweedie_deviance(y, mu, power=1.5),
        "poisson": mean_poisson_deviance(y, mu),
        None: mean_squared_error(y, mu),
    }[objective]
    assert got == pytest.approx(expected, rel=1e-12)


def test_search_spaces_are_the_parameter_table() -> None:
    for space, section in ((tuning.GLOBAL_SPACE, "model"), (tuning.ADAPT_SPACE, "adaptation")):
        rows = section_params(section)
        tuned = {name: row.tuning for name, row in rows.items() if row.tuning is not None}
        assert list(space) == list(tuned)
        for name, spec in space.items():
            assert spec == tuned[name].to_dict()
    cfg = Config()
    space = {**resolve_search_space(cfg, "global"), **resolve_search_space(cfg, "adapt")}
    for name, param in space.items():
        row = {**section_params("model"), **section_params("adaptation")}[name]
        assert param.integer == row.integer
        assert param.log == bool(row.tuning and row.tuning.log)
    defaults = default_params(cfg, list(space))
    assert defaults["adapt_learning_rate"] == section_params("model")["learning_rate"].default
    for name, value in defaults.items():
        row = {**section_params("model"), **section_params("adaptation")}[name]
        if name != "adapt_learning_rate":
            assert value == row.default


def test_pretraining_uses_the_global_studys_adopted_parameters(
    tmp_path: Path, rows: pd.DataFrame, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `tabtune tune` (scope global) adopted parameters that no command used: pretrain, the
    # decisions' first pretraining and the refresh's all pretrained with the config's model:
    import datetime as dt
    import json

    import tabtune.tuning.scopes as scopes
    from tabtune.cli import EXIT_OK, main
    from tabtune.refresh.global_model import ensure_global

    cfg, path = _stored_config(tmp_path, rows)
    adopted = {"num_leaves": 7, "learning_rate": 0.3, "n_estimators": cfg.model.n_estimators}
    monkeypatch.setattr(scopes, "best_params", lambda c, task, scope, **kw: dict(adopted))

    def params(model_id: str) -> dict:
        folder = Path(cfg.models_dir) / model_id / "model" / "manifest.json"
        return json.loads(folder.read_text())["params"]

    assert not scopes.storage_exists(cfg)  # no storage: the config's parameters
    assert main(["--config", str(path), "pretrain"]) == EXIT_OK
    assert params("global/bid/v0001")["num_leaves"] == cfg.model.num_leaves
    assert "tuning study" not in capsys.readouterr().out

    Path(cfg.tuning.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    Path(cfg.tuning.storage.removeprefix("sqlite:///")).touch()  # a storage exists
    assert main(["--config", str(path), "pretrain"]) == EXIT_OK
    used = params("global/bid/v0002")
    assert (used["num_leaves"], used["learning_rate"]) == (7, 0.3)
    out = " ".join(capsys.readouterr().out.split())
    assert "num_leaves=7, learning_rate=0.3" in out and "n_estimators" not in out, out

    ref, note, _ = ensure_global(cfg.model_copy(deep=True), "bid", dt.date(2099, 1, 1))
    assert ref.id == "global/bid/v0002" and not note  # a champion exists: nothing pretrained
    cfg.refresh.global_every_days = 1
    ref, note, _ = ensure_global(cfg, "bid", dt.date(2099, 1, 1))
    assert ref.id == "global/bid/v0003" and "num_leaves=7" in note, note
    assert params(ref.id)["num_leaves"] == 7


def test_a_trial_stopped_by_ctrl_c_logs_no_traceback() -> None:
    # Optuna logged the interrupted trial with an 11-line traceback before "interrupted"
    import logging
    import sys

    from tabtune.cli.tune import quiet_interrupted_trials

    quiet_interrupted_trials()
    handlers = logging.getLogger("optuna").handlers
    assert handlers, "optuna's own handler"

    def record(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException:
            info = sys.exc_info()
        return logging.LogRecord("optuna.study", logging.WARNING, "", 0, "Trial 3 failed", (), info)

    for handler in handlers:
        assert not handler.filter(record(KeyboardInterrupt()))
        assert handler.filter(record(ValueError("a real failure")))  # still logged


def test_changed_folds_are_named_for_an_existing_study(
    tmp_path: Path, data: TaskData, caplog: pytest.LogCaptureFixture
) -> None:
    # a changed tuning.n_folds was ignored by an existing study without a word
    cfg = make_config(tmp_path)
    tune_global(cfg, "bid", n_trials=1, data=data)
    with caplog.at_level("WARNING", logger="tabtune"):
        again = tune_global(make_config(tmp_path, n_folds=3), "bid", n_trials=1, data=data)
    assert "on the 2 folds" in caplog.text and "not the 3" in caplog.text, caplog.text
    assert again.n_trials == 2
    assert all(len(t.intermediate_values) <= 2 for t in _study(cfg).get_trials())
    assert "tuning.n_folds give now" in caplog.text, caplog.text
    # newer rows: the study keeps its window, and says so at WARNING (it was an INFO line,
    # hidden without -v, while pretrain applied parameters chosen on the old window)
    caplog.clear()
    dates = pd.to_datetime(data.X["date"])
    older = data.take((dates <= dates.max() - pd.Timedelta(days=7)).to_numpy())
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    tune_global(make_config(fresh), "bid", n_trials=1, data=older)
    with caplog.at_level("WARNING", logger="tabtune"):
        tune_global(make_config(fresh), "bid", n_trials=1, data=data)
        tune_global(make_config(fresh), "bid", n_trials=1, data=data)  # opened again
    assert caplog.text.count("scores its trials on the data up to") == 1, caplog.text


def test_adaptation_is_tuned_from_the_global_model_pretraining_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tune --scope adapt / brand:<id> built each fold's global model from the config's model:
    section, not from the global study's adopted parameters pretraining uses (red-team)."""
    import tabtune.tuning.scopes as scopes

    cfg = make_config(tmp_path)
    adopted = {"num_leaves": 7, "learning_rate": 0.3}
    monkeypatch.setattr(scopes, "tuned_pretraining", lambda c, task: (c, dict(adopted)))
    monkeypatch.setattr(scopes, "load_tuning_data", lambda *a: None)
    monkeypatch.setattr(scopes, "_rows_per_brand", lambda data: [50])
    seen = []
    monkeypatch.setattr(scopes, "tune_adaptation", lambda c, t, b, **kw: seen.append(kw) or b)
    monkeypatch.setattr(scopes, "tune_brand", lambda c, t, b, **kw: seen.append(kw) or b)
    assert scopes.tune_scope(cfg, "bid", "adapt") == ["small"]
    assert scopes.tune_scope(cfg, "bid", "brand:b001") == ["b001"]
    assert [kw["base_params"] for kw in seen] == [adopted, adopted]


def test_a_defaults_trial_failed_by_the_data_is_an_input_error() -> None:
    # tune on a store whose revenue is zero everywhere crashed with a RuntimeError traceback
    # (exit 1) where pretrain exits 2 naming the target (tune/predict red-team)
    from optuna.trial import TrialState, create_trial

    from tabtune.errors import TabTuneInputError
    from tabtune.tuning.keys import ERROR_ATTR, ROLE_ATTR, ROLE_DEFAULTS
    from tabtune.tuning.study import raise_if_broken

    def broken(error: str) -> optuna.Study:
        study = optuna.create_study(study_name="bid:global")
        study.add_trial(
            create_trial(
                state=TrialState.FAIL,
                user_attrs={ROLE_ATTR: ROLE_DEFAULTS, ERROR_ATTR: error},
            )
        )
        return study

    with pytest.raises(TabTuneInputError, match=r"^study bid:global: y \(the target\) is zero"):
        raise_if_broken(broken("ZeroTargetError: y (the target) is zero on every row"))
    with pytest.raises(RuntimeError, match="the defaults trial failed: MemoryError"):
        raise_if_broken(broken("MemoryError: out of memory"))  # a bug or the machine: exit 1


def test_a_damaged_journal_storage_is_a_config_error(tmp_path: Path) -> None:
    # a journal that is not Optuna's (or damaged mid-file) was a JSONDecodeError traceback,
    # exit 1, where a damaged SQLite file exits 2 (tune/predict red-team)
    from tabtune.errors import ConfigError

    journal = tmp_path / "j" / "t.journal"
    journal.parent.mkdir()
    journal.write_text('hello\n{"op_code": 0}\n')
    with pytest.raises(
        ConfigError, match=r"tuning.storage: the journal .*t.journal cannot be read"
    ):
        tuning.open_storage(f"journal:{journal}")
    # a last line cut short (a worker killed mid-write) is Optuna's to skip: it still opens
    journal.unlink()
    study = optuna.create_study(storage=tuning.open_storage(f"journal:{journal}"))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    journal.write_bytes(journal.read_bytes()[:-20])
    tuning.open_storage(f"journal:{journal}")


def test_the_summary_tells_interrupted_trials_from_failed_ones(
    tmp_path: Path, data: TaskData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # trials stopped by Ctrl-C or SIGTERM were counted as "failed" (tune/predict red-team);
    # the objective marks them, and only them (review: a guess from a missing error was wrong
    # both ways)
    from tabtune.cli.tune import summary_lines
    from tabtune.tuning import objective as objective_module
    from tabtune.tuning.keys import INTERRUPTED_ATTR

    cfg = make_config(tmp_path)

    def stop(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(objective_module.Objective, "_global_fold", stop)
    with pytest.raises(KeyboardInterrupt):
        tune_global(cfg, "bid", n_trials=1, data=data)
    (trial,) = _study(cfg).get_trials()
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs[INTERRUPTED_ATTR] == "KeyboardInterrupt"
    monkeypatch.undo()
    result = tune_global(cfg, "bid", n_trials=2, data=data)
    assert result.n_interrupted == 1
    first = summary_lines(result)[0]
    assert "1 failed, 1 of them stopped by Ctrl-C or SIGTERM)" in first, first
