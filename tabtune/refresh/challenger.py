"""The refresh's challenger: one brand's rows adapted from the global champion.

:func:`load_brand` and :func:`usable_rows` give the brand's model inputs up to the run date;
:func:`build_challenger` adapts the global champion to them (:func:`fit_brand_model`), with the
brand's tuned adaptation parameters where a study has them (:func:`tuned_adaptation`) and the
champion's strategy choice repeated while it is recent (:func:`repeated_selection`).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

# tuning is used through its module so that its functions are looked up at call time.
from tabtune import tuning
from tabtune.config import AdaptationConfig, Config, TaskConfig
from tabtune.estimators import repeat_params
from tabtune.features import GROUP_COLUMN, TaskData, task_data
from tabtune.pipeline import brand_estimator

if TYPE_CHECKING:  # pragma: no cover
    from tabtune.data.store import CampaignStore

__all__ = [
    "NIGHT_STUDIES",
    "brand_studies",
    "build_challenger",
    "choice_to_repeat",
    "choices_repeat",
    "fit_brand_model",
    "leaf_cache_dir",
    "load_brand",
    "repeat_choice",
    "repeated_selection",
    "tuned_adaptation",
    "usable_rows",
]

logger = logging.getLogger("tabtune.refresh")


def load_brand(store: CampaignStore, brand: str, date: dt.date) -> pd.DataFrame:
    """A brand's contract rows up to and including ``date``."""
    return store.read(brands=[brand], end=date)


def usable_rows(
    rows: pd.DataFrame, task: TaskConfig, features: list[str] | None = None
) -> TaskData:
    """A task's model inputs, keeping only rows with a usable target (possibly none).

    ``features``: those of the model the inputs are for (:func:`~tabtune.features.task_data`).
    The rows are those a fit learns (``training``): a classification task with a denominator
    gives its positive and negative rows, as ``finetune`` and pretraining do.
    """
    data = task_data(rows, task, require_target=False, features=features, training=True)
    keep = np.isfinite(np.asarray(data.y, dtype=float))
    if data.weight is not None:
        keep &= np.asarray(data.weight, dtype=float) > 0
    if keep.all():
        return data
    idx = np.flatnonzero(keep)
    return TaskData(
        X=data.X.iloc[idx].reset_index(drop=True),
        y=np.asarray(data.y)[idx],
        weight=None if data.weight is None else np.asarray(data.weight)[idx],
        rows=data.rows.iloc[idx].reset_index(drop=True),
        notices=list(data.notices),
    )


def leaf_cache_dir(cfg: Config, task: TaskConfig) -> Path:
    """Where a refresh keeps the global model's leaf indices of each brand's rows
    (:class:`tabtune.leaf_cache.LeafCache`) for ``task``; needs ``cfg.cache_dir``."""
    if cfg.cache_dir is None:
        raise ValueError("cache_dir is null: the refresh keeps no leaf cache")
    return Path(cfg.cache_dir) / "leaves" / task.name


def repeated_selection(
    cfg: Config,
    previous: Mapping[str, Any] | None,
    date: dt.date | None,
    n_rows: int | None = None,
) -> dict[str, Any] | None:
    """The champion's strategy choice to repeat tonight, or None to choose again.

    A choice is repeated when the adaptation strategy is ``auto``, ``reselect_every_days`` is
    set and the champion (``previous``: its manifest, given only when it was adapted from
    tonight's global model) made its choice (the manifest's ``selection``) fewer than
    ``reselect_every_days`` days before ``date``, on rows that ``n_rows`` (the brand's rows
    tonight) does not exceed by ``reselect_when_rows_grow`` or more. A brand whose history
    grows fast (a young one, one that just passed ``min_rows_to_adapt``) thus chooses again
    sooner; choosing costs several times a repeat (docs/benchmarks.md, transfer cost).
    """
    a = cfg.adaptation
    days = a.reselect_every_days
    if a.strategy != "auto" or days is None or previous is None or date is None:
        return None
    selection = previous.get("selection")
    if not selection or selection.get("date") is None or selection.get("small"):
        return None  # no choice recorded, or one made under min_rows_to_adapt: choose again
    made = dt.date.fromisoformat(str(selection["date"]))
    if not 0 <= (date - made).days < days:
        return None
    grow, chosen_on = a.reselect_when_rows_grow, selection.get("n_rows")
    if grow is not None and n_rows is not None and chosen_on is not None:
        if n_rows >= (1.0 + grow) * int(chosen_on):
            return None
    return dict(selection)


#: The adopted adaptation parameters of the refresh night this brand job belongs to
#: (:func:`~tabtune.tuning.adopted_adaptations`, read when the night started and kept in its
#: state); None outside a night: the studies are read.
NIGHT_STUDIES: contextvars.ContextVar[Mapping[str, Mapping[str, Any]] | None] = (
    contextvars.ContextVar("NIGHT_STUDIES", default=None)
)


def brand_studies(
    studies: Mapping[str, Mapping[str, Any]] | None, brand: str
) -> dict[str, Mapping[str, Any]] | None:
    """The scopes of a night's studies (:data:`NIGHT_STUDIES`) one brand's job needs: its own
    and the size buckets' (every brand's went into every job: O(brands^2) to ship)."""
    if studies is None:
        return None
    wanted = [f"brand:{brand}", *(f"adapt:{name}" for name, _ in tuning.BUCKETS)]
    return {k: studies[k] for k in wanted if k in studies}


def tuned_adaptation(
    cfg: Config, task: TaskConfig, brand: str, n_rows: int
) -> tuple[Config, str | None]:
    """``cfg`` with the brand's tuned adaptation parameters, where a study has them.

    The brand's own study (``brand:<id>``) comes first, then its size bucket's
    (``adapt:<bucket>``); only ``adaptation`` settings are taken (the global champion is
    already fitted). Without a tuning storage or a completed trial, ``cfg`` is returned as is.
    In a refresh night, the studies as the night read them when it started
    (:data:`NIGHT_STUDIES`).

    Returns
    -------
    (Config, str or None)
        The config to adapt with and the scope its parameters came from (None: defaults).
    """
    night = NIGHT_STUDIES.get()
    if night is None and not tuning.storage_exists(cfg):
        return cfg, None
    for scope in (f"brand:{brand}", f"adapt:{tuning.bucket_for_rows(n_rows)}"):
        if night is not None:  # the parameters the night read when it started
            adaptation = dict(night.get(scope) or {})
        else:
            params = tuning.best_params(cfg, task.name, scope) or {}
            adaptation = {k: v for k, v in params.items() if k in AdaptationConfig.model_fields}
        if adaptation:
            return tuning.apply_params(cfg, adaptation), scope
    return cfg, None


def build_challenger(
    cfg: Config,
    task: TaskConfig,
    base: Any,
    data: TaskData,
    *,
    date: dt.date | None = None,
    previous: Mapping[str, Any] | None = None,
) -> Any:
    """Adapt the global champion to one brand's rows (seeded, so deterministic).

    With ``adaptation.strategy: auto`` the choice among strategies costs a fit per candidate
    and fold. A refresh makes it again only every ``adaptation.reselect_every_days``, or once
    the brand's rows have grown by ``adaptation.reselect_when_rows_grow``: when ``previous``
    (the champion's manifest) holds a choice made from the same global model fewer days
    before ``date`` on not much fewer rows, the challenger repeats it on the rows given, in
    one fit with the champion's number of new trees and no holdout (see
    :func:`repeated_selection`).

    Parameters
    ----------
    cfg : Config
        ``adaptation`` and ``model`` settings.
    task : TaskConfig
    base : TabTuneRegressor or TabTuneClassifier
        The fitted global model.
    data : TaskData
        The brand's model inputs up to the run date.
    date : date, optional
        The run date.
    previous : mapping, optional
        The manifest of the brand's champion, if any.

    Returns
    -------
    TabTuneRegressor or TabTuneClassifier
        The fitted challenger (``strategy_`` says how it was adapted); ``selection_`` holds
        the choice it was built with (date, strategy, new trees).
    """
    repeat = choice_to_repeat(cfg, task, data, date, previous)
    if repeat is not None:
        return repeat_choice(cfg, task, base, data, repeat)
    est = fit_brand_model(cfg, task, base, data)
    est.selection_ = {
        "date": None if date is None else date.isoformat(),
        "strategy": str(est.strategy_),
        "n_new_trees": int(est.n_new_trees_),
        "n_rows": len(data),
    }
    return est


def _tuned(cfg: Config, task: TaskConfig, data: TaskData) -> Config:
    """``cfg`` with the adaptation settings tuned for the brand of ``data``
    (:func:`tuned_adaptation`)."""
    brand = str(data.X[GROUP_COLUMN].iloc[0]) if len(data.X) else ""
    return tuned_adaptation(cfg, task, brand, len(data))[0]


def choice_to_repeat(
    cfg: Config,
    task: TaskConfig,
    data: TaskData,
    date: dt.date | None,
    previous: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """The choice :func:`build_challenger` repeats on ``data`` tonight (None: it chooses
    again), with the brand's tuned adaptation settings (:func:`repeated_selection`)."""
    return repeated_selection(_tuned(cfg, task, data), previous, date, n_rows=len(data))


def choices_repeat(cfg: Config, task: TaskConfig, data: TaskData) -> bool:
    """Whether a choice made for this brand tonight may be repeated on later nights (the
    brand's tuned strategy is ``auto`` and ``reselect_every_days`` is set)."""
    a = _tuned(cfg, task, data).adaptation
    return a.strategy == "auto" and a.reselect_every_days is not None


def repeat_choice(
    cfg: Config, task: TaskConfig, base: Any, data: TaskData, repeat: Mapping[str, Any]
) -> Any:
    """``base`` adapted to ``data`` by repeating a choice in one fit (see
    :func:`build_challenger`), with its ``selection_`` and ``strategy_reason_``."""
    est = fit_brand_model(cfg, task, base, data, repeat=repeat)
    a = _tuned(cfg, task, data).adaptation
    est.strategy_reason_ = (
        f"repeats the choice of {repeat['date']} ({repeat['strategy']}, "
        f"{repeat['n_new_trees']} new trees) on today's rows; 'auto' chooses again after "
        f"{a.reselect_every_days} days"
        + (
            ""
            if a.reselect_when_rows_grow is None
            else f" or {100 * a.reselect_when_rows_grow:g}% more rows"
        )
    )
    est.selection_ = dict(repeat)
    return est


def fit_brand_model(
    cfg: Config,
    task: TaskConfig,
    base: Any,
    data: TaskData,
    *,
    repeat: Mapping[str, Any] | None = None,
) -> Any:
    """Adapt ``base`` to one brand's rows, choosing a strategy or repeating a choice.

    Parameters
    ----------
    cfg, task : the configuration and the task.
    base : TabTuneRegressor or TabTuneClassifier
        The fitted global model to adapt.
    data : TaskData
        The brand's rows to learn from.
    repeat : mapping, optional
        A choice to repeat (``strategy`` and ``n_new_trees``, as in a manifest's
        ``selection``): one fit with that many new trees and no holdout. None: the
        configured ``adaptation.strategy`` (``auto`` chooses on rolling folds).

    Returns
    -------
    TabTuneRegressor or TabTuneClassifier
        Fitted (seeded, so deterministic).
    """
    brand = str(data.X[GROUP_COLUMN].iloc[0]) if len(data.X) else ""
    cfg, scope = tuned_adaptation(cfg, task, brand, len(data))
    est = brand_estimator(cfg, task, base)
    if cfg.cache_dir is not None:
        # The global model's leaf indices of the brand's rows, kept for tomorrow's fit.
        est.set_params(leaf_cache=os.fspath(leaf_cache_dir(cfg, task)))
    if repeat is not None:
        est.set_params(**repeat_params(str(repeat["strategy"]), int(repeat["n_new_trees"])))
    est.fit(data.X, data.y, sample_weight=data.weight)
    if scope is not None:
        logger.info("brand %s: adaptation parameters tuned in study %s:%s", brand, task.name, scope)
    return est
