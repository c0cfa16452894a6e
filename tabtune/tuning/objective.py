"""The tuning objective: one parameter set scored on a study's rolling-origin folds.

Every trial is scored on the same rolling-origin folds
(:func:`tabtune.evaluation.rolling_origin_folds`): fold *k* trains on the dates before ``cut_k``
and validates on ``[cut_k, cut_k + horizon)``, never on a random split. The score is the
weighted deviance of the task's loss (Tweedie or Poisson deviance, squared error, or log loss
for classification tasks) averaged over the folds; the running mean is reported after each fold,
so the median pruner stops bad trials after their first, cheapest fold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna
import pandas as pd

from tabtune import pipeline
from tabtune.config import Config, TaskConfig
from tabtune.errors import TabTuneInputError
from tabtune.evaluation import Fold, model_losses, rolling_origin_folds, score_objective
from tabtune.features import GROUP_COLUMN, TIME_COLUMN, TaskData
from tabtune.tuning.keys import (
    ERROR_ATTR,
    FOLDS_ATTR,
    INTERRUPTED_ATTR,
    ROLE_ATTR,
    ROLE_DEFAULTS,
    RUN_ATTR,
    WORKER_ATTR,
)
from tabtune.tuning.spaces import ParamSpace, apply_params
from tabtune.tuning.storage import worker_identity
from tabtune.tuning.study import StudySpec

__all__ = ["Objective", "fold_loss", "load_tuning_data"]


def fold_loss(task: TaskConfig, est: Any, X: pd.DataFrame, y: np.ndarray) -> np.ndarray:
    """Per-row loss, matching the task's training loss (:func:`tabtune.evaluation.model_losses`).

    Log loss for a classification task; for regression the deviance of the task's objective
    (Tweedie with power 1.5, or Poisson) or squared error. Scoring folds with the loss the
    model trains on keeps the heavy right tail of money targets from dominating the choice.
    """
    return model_losses(est, X, y, score_objective(task.objective, task.kind))


def load_tuning_data(cfg: Config, task: TaskConfig, end: Any, data: TaskData | None) -> TaskData:
    """``data`` when given, else the task's model inputs up to ``end`` read from the store."""
    if data is not None:
        return data
    return pipeline.load_task_data(cfg, task, end=end)


class Objective:
    """Scores one parameter set on the study's rolling-origin folds (an Optuna objective).

    Parameters
    ----------
    cfg : Config
    spec : StudySpec
        The study's frozen problem: data window, folds, brands, base parameters.
    data : TaskData
        The model inputs; rows after ``spec.data_end`` are ignored.
    space : mapping of str to ParamSpace
        What each trial suggests.
    run_id : str, optional
        Recorded on each trial it scores (:data:`~tabtune.tuning.keys.RUN_ATTR`), so that the
        run counts the trials it added (:func:`~tabtune.tuning.study.count_finished`).
    """

    def __init__(
        self,
        cfg: Config,
        spec: StudySpec,
        data: TaskData,
        space: Mapping[str, ParamSpace],
        run_id: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.run_id = run_id
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
        train, valid = fold.train, fold.valid  # the folds were cut on every row's date
        est = pipeline.global_estimator(cfg, self.task)
        est.fit(self.X.iloc[train], self.y[train], sample_weight=self._weights(train))
        loss = fold_loss(self.task, est, self.X.iloc[valid], self.y[valid])
        w = self._weights(valid)
        w = np.ones(len(valid)) if w is None else w
        return float(np.sum(w * loss)), float(np.sum(w))

    def _base(self, fold: Fold) -> Any:
        """The global model of a fold: pooled rows of every brand dated before the cut."""
        if fold.index not in self._bases:
            cfg = apply_params(self.cfg, self.spec.base_params)
            train = np.flatnonzero(self.dates < fold.cut.to_datetime64())
            est = pipeline.global_estimator(cfg, self.task)
            est.fit(self.X.iloc[train], self.y[train], sample_weight=self._weights(train))
            self._bases[fold.index] = est
        return self._bases[fold.index]

    def _adapt_fold(self, cfg: Config, fold: Fold) -> tuple[float, float]:
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
                est = pipeline.brand_estimator(cfg, self.task, base)
                est.fit(self.X.iloc[train], self.y[train], sample_weight=self._weights(train))
            loss = fold_loss(self.task, est, self.X.iloc[valid], self.y[valid])
            w = self._weights(valid)
            w = np.ones(len(valid)) if w is None else w
            total += float(np.sum(w * loss))
            weight += float(np.sum(w))
        return total, weight

    def __call__(self, trial: optuna.Trial) -> float:
        """Score ``trial``'s parameters: the mean fold loss, pruned between folds."""
        trial.set_user_attr(WORKER_ATTR, worker_identity())
        if self.run_id is not None:
            trial.set_user_attr(RUN_ATTR, self.run_id)
        prunable = trial.user_attrs.get(ROLE_ATTR) != ROLE_DEFAULTS
        scores: list[float] = []
        try:
            params = {name: space.suggest(trial) for name, space in self.space.items()}
            cfg = apply_params(
                self.cfg
                if self.spec.scope == "global"
                else apply_params(self.cfg, self.spec.base_params),
                params,
            )
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
            if not scores:
                raise TabTuneInputError("no fold had validation rows")
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr(ERROR_ATTR, f"{type(exc).__name__}: {exc}")
            raise
        except BaseException as exc:  # Ctrl-C, or SIGTERM / SIGHUP unwinding the command
            trial.set_user_attr(INTERRUPTED_ATTR, type(exc).__name__)
            raise
        return float(np.mean(scores))
