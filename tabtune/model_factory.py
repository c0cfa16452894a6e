"""Estimators built from the configuration: the global model's and a brand's.

One place turns the ``model:`` and ``adaptation:`` sections of a :class:`~tabtune.config.Config`
into unfitted :class:`~tabtune.estimators.TabTuneRegressor` / ``TabTuneClassifier`` objects;
the decision tasks, the pipeline steps, tuning and the refresh all build their models here.
"""

from __future__ import annotations

from typing import Any

from tabtune.config import Config, TaskConfig
from tabtune.estimators import TabTuneClassifier, TabTuneRegressor
from tabtune.features import GROUP_COLUMN, TIME_COLUMN

__all__ = ["brand_estimator", "estimator_class", "global_estimator"]


def estimator_class(task: TaskConfig) -> type[TabTuneRegressor] | type[TabTuneClassifier]:
    """The estimator class that serves a task's kind."""
    return TabTuneClassifier if task.kind == "classification" else TabTuneRegressor


def global_estimator(cfg: Config, task: TaskConfig) -> TabTuneRegressor | TabTuneClassifier:
    """An unfitted estimator for pretraining ``task`` with the configured parameters."""
    m = cfg.model
    params: dict[str, Any] = dict(
        backend=cfg.backend,
        device=cfg.device,
        group_column=GROUP_COLUMN,
        time_column=TIME_COLUMN,
        validation_fraction=cfg.adaptation.validation_fraction,
        n_estimators=m.n_estimators,
        learning_rate=m.learning_rate,
        num_leaves=m.num_leaves,
        max_depth=m.max_depth,
        min_child_samples=m.min_child_samples,
        subsample=m.subsample,
        colsample_bytree=m.colsample_bytree,
        reg_alpha=m.reg_alpha,
        reg_lambda=m.reg_lambda,
        early_stopping_rounds=m.early_stopping_rounds,
        regrow_on_all_rows=m.regrow_on_all_rows,
        early_stopping_max_rows=m.early_stopping_max_rows,
        random_state=m.random_state,
        n_jobs=m.n_jobs,
        backend_params=dict(m.backend_params) or None,
    )
    if task.monotone:
        params["monotone_constraints"] = dict(task.monotone)
    if task.objective:
        params["objective"] = task.objective
    return estimator_class(task)(**params)


def brand_estimator(
    cfg: Config, task: TaskConfig, base: TabTuneRegressor | TabTuneClassifier
) -> TabTuneRegressor | TabTuneClassifier:
    """An unfitted estimator that adapts ``base`` to one brand."""
    a = cfg.adaptation
    est = global_estimator(cfg, task)
    est.set_params(
        base_model=base,
        strategy=a.strategy,
        min_rows_to_adapt=a.min_rows_to_adapt,
        validation_fraction=a.validation_fraction,
        adapt_n_estimators=a.adapt_n_estimators,
        adapt_learning_rate=a.adapt_learning_rate,
        refit_decay_rate=a.refit_decay_rate,
        selection_folds=a.selection_folds,
        selection_margin=a.selection_margin,
        selection_margin_rows=a.selection_margin_rows,
        n_jobs=a.n_jobs,
    )
    return est
