"""The refresh's promotion: the candidates scored out of time, the decision, the record.

:func:`challenge` builds tonight's challenger and scores it, the champion and the global model
on the newest days of the brand (:func:`holdout_mask`, :func:`evaluate`), with the challenger's
choice made on the days before them (a night that repeats the champion's choice scores it
prequentially instead, see :func:`prequential_totals`); :func:`decide_promotion` (or
:func:`same_recipe_decision`) decides; :func:`publish_challenger` publishes the challenger
unpromoted with the run it belongs to, which :func:`find_run_challenger` finds again when an
interrupted run resumes.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tabtune.config import Config, TaskConfig
from tabtune.errors import ModelIntegrityError
from tabtune.evaluation import loss_name, score_many, score_objective, time_window
from tabtune.features import TIME_COLUMN, TaskData
from tabtune.pipeline import MODEL_SUBDIR
from tabtune.refresh.challenger import (
    build_challenger,
    choice_to_repeat,
    choices_repeat,
    fit_brand_model,
    repeat_choice,
)
from tabtune.refresh.fingerprints import (
    RESTATED_REFIT_NOTE,
    current_fingerprint,
    learned_rows_changed,
    rows_fingerprint,
)
from tabtune.refresh.state import Decision, finite_or_none
from tabtune.task_definition import DEFINITION_KEY, definition

if TYPE_CHECKING:  # pragma: no cover
    from tabtune.registry import ModelRef, ModelRegistry

__all__ = [
    "Challenge",
    "challenge",
    "decide_promotion",
    "evaluate",
    "find_run_challenger",
    "holdout_mask",
    "prequential_totals",
    "publish_challenger",
    "same_recipe_decision",
]

logger = logging.getLogger("tabtune.refresh")


holdout_mask = time_window


def evaluate(
    models: Mapping[str, Any],
    data: TaskData,
    mask: np.ndarray,
    *,
    kind: str = "regression",
    objective: str | None = None,
) -> dict[str, float | None]:
    """Score every model on the same rows: the brand's evaluation window.

    Parameters
    ----------
    models : mapping of str to estimator or None
        Name (``champion``, ``challenger``, ``global``) -> fitted model; ``None`` is not scored.
        The same object under two names is predicted once.
    data : TaskData
        The brand's model inputs up to the run date.
    mask : ndarray of bool
        Rows of the window (:func:`~tabtune.evaluation.time_window`).
    kind : {"regression", "classification"}
    objective : str, optional
        The task's objective; the score is its own loss
        (:func:`~tabtune.evaluation.score_objective`: deviance, squared error or log loss).

    Returns
    -------
    dict of str to float or None
        The weighted loss per name (weights: the task's sample weights).
    """
    loss = score_objective(objective, kind)
    return score_many(models, data.X, data.y, mask, loss, data.weight)


def _recipe(selection: Mapping[str, Any] | None) -> tuple[str, int] | None:
    """A choice as (strategy, new trees), comparable between models; None when unknown."""
    if not selection or selection.get("strategy") is None:
        return None
    return str(selection["strategy"]), int(selection.get("n_new_trees") or 0)


@dataclass
class Challenge:
    """Tonight's challenger for one brand and the out-of-time scores it is promoted on.

    Attributes
    ----------
    challenger : estimator or None
        The model to publish and, if promoted, serve: the choice made on the rows before the
        window (or the champion's, repeated), fitted on every row; None until :meth:`final`
        with ``defer_final``.
    scores : dict
        ``champion``, ``challenger`` and ``global`` scored with the task's own loss: on the
        window, the challenger and the champion as fitted on the rows before it (out of time),
        the global model as it is; on a night repeating the champion's choice, prequentially
        (see :func:`prequential_totals`).
    same_recipe : bool
        The challenger repeats the champion's choice on the same global model: the same
        procedure on newer rows, so it replaces the champion without a contest.
    out_of_time : bool
        False when the brand's rows span too few days for a window with rows before it.
    notes : list of str
    prequential : dict or None
        Running sums of the prequential score on a night that repeats the champion's choice.
    selection : dict
        The choice the challenger repeats on every row.
    build : callable or None
        With ``defer_final``: fits the challenger (see :meth:`final`).
    """

    challenger: Any
    scores: dict[str, float | None]
    same_recipe: bool = False
    out_of_time: bool = True
    notes: list[str] = field(default_factory=list)
    #: On a night that repeats the champion's choice: the running sums of the prequential
    #: score (see :func:`prequential_totals`), kept in the challenger's manifest.
    prequential: dict[str, Any] | None = None
    #: The choice (``selection``: date, strategy, new trees) the challenger repeats.
    selection: dict[str, Any] = field(default_factory=dict)
    #: Fits the challenger on every row when ``challenger`` is None (``defer_final``).
    build: Callable[[], Any] | None = None
    #: Whether later nights may repeat a choice made tonight (so a losing one is kept).
    repeatable: bool = True
    #: Whether the choice was scored on the window against the champion tonight.
    contested: bool = False
    #: Why there was no contest tonight (a brand the global model serves, whose choice was
    #: contested recently): the global model keeps serving; None on other nights.
    no_contest: str | None = None
    #: Why the champion was not refitted tonight (:func:`refit_due`): it keeps serving as it
    #: is; None on other nights.
    no_refit: str | None = None

    def final(self) -> Any:
        """The challenger to publish, fitted on every row now if that was deferred."""
        if self.challenger is None and self.build is not None:
            self.challenger, self.build = self.build(), None
        return self.challenger


def challenge(
    cfg: Config,
    task: TaskConfig,
    glob: Any,
    data: TaskData,
    window: np.ndarray,
    *,
    date: dt.date,
    global_id: str,
    champion: Any = None,
    champion_manifest: Mapping[str, Any] | None = None,
    load_model_id: Callable[[str], Any] | None = None,
    previous_choice: Mapping[str, Any] | None = None,
    defer_final: bool = False,
    last_contest: dt.date | None = None,
    refit_now: bool = False,
) -> Challenge:
    """Build the challenger and score the candidates on days the challenger did not learn from.

    The challenger's choice (``auto``'s strategy and new trees, or the champion's choice
    repeated, see :func:`build_challenger`) is made on the rows before ``window`` and scored
    on it. The champion's own choice is fitted on the same rows from its own global model and
    scored on the same days (when it is the challenger's choice on the same global model, the
    two are one model). A champion whose choice cannot be repeated (no ``selection`` in its
    manifest, or a global model that no longer loads) is scored as it serves, with a note, as
    the global model is. Repeating the champion's choice: :func:`_repeat_night` or no fit.

    Parameters
    ----------
    cfg, task : the configuration and the task.
    glob : estimator
        Tonight's global model.
    data : TaskData
        The brand's rows up to the run date.
    window : ndarray of bool
        The evaluation window (:func:`~tabtune.evaluation.time_window`).
    date, global_id : date and str
        The run date; tonight's global model's registry id.
    champion, champion_manifest : estimator and mapping, optional
        The brand's champion (None: the global model is) and its manifest.
    load_model_id : callable, optional
        Loads a registry model by id (the champion's global model).
    previous_choice : mapping, optional
        The brand's newest challenger's. Without a brand champion, or once the champion's
        choice can no longer be repeated and this one is later, its choice (from tonight's
        global model) is repeated, so a brand whose challengers lose does not choose nightly.
    defer_final : bool
        Fit the challenger on every row only in :meth:`Challenge.final`.
    last_contest : date, optional
        The brand's latest contest. Without a champion, a choice repeated since is not
        contested before ``refresh.contest_every_days`` (:attr:`Challenge.no_contest`).
    refit_now : bool
        Refit a champion that repeats its choice tonight, whatever :func:`refit_due` says.

    Returns
    -------
    Challenge
    """
    manifest = champion_manifest or {}
    previous = manifest if champion is not None else previous_choice
    if previous is not None and previous.get("base_model") != global_id:
        previous = None  # a new global model: choose again
    if not np.any(~window):
        est = build_challenger(cfg, task, glob, data, date=date, previous=previous)
        return _in_sample(est, champion or glob, glob, data, window, task)
    early = data.take(~window)
    previous, repeat = _choice_tonight(
        cfg, task, early, date, global_id, previous, previous_choice, champion, manifest
    )
    if champion is not None and _prequential_ready(manifest, repeat, global_id):
        assert repeat is not None  # refitted on its schedule (refit_due), or kept as it is
        night = _repeat_night if refit_now or refit_due(cfg, manifest, data, date) else _no_refit
        return night(cfg, task, glob, data, champion, manifest, repeat, date)
    if champion is None and _contested_recently(cfg, repeat, date, last_contest):
        assert repeat is not None and last_contest is not None
        return _no_contest(cfg, task, glob, data, window, repeat, last_contest)
    return _contest(
        cfg, task, glob, data, window, early, date, global_id, champion, manifest,
        load_model_id, previous, defer_final,
    )  # fmt: skip


def _choice_tonight(
    cfg: Config,
    task: TaskConfig,
    early: TaskData,
    date: dt.date,
    global_id: str,
    previous: Mapping[str, Any] | None,
    previous_choice: Mapping[str, Any] | None,
    champion: Any,
    manifest: Mapping[str, Any],
) -> tuple[Mapping[str, Any] | None, dict[str, Any] | None]:
    """The manifest whose choice tonight follows and the choice repeated (None: choose)."""
    repeat = choice_to_repeat(cfg, task, early, date, previous)
    if (
        repeat is None
        and champion is not None
        and _later_choice(previous_choice, manifest, global_id)
    ):
        previous = previous_choice  # the champion's choice aged out: the later one is repeated
        repeat = choice_to_repeat(cfg, task, early, date, previous)
    return previous, repeat


def _contest(
    cfg: Config,
    task: TaskConfig,
    glob: Any,
    data: TaskData,
    window: np.ndarray,
    early: TaskData,
    date: dt.date,
    global_id: str,
    champion: Any,
    manifest: Mapping[str, Any],
    load_model_id: Callable[[str], Any] | None,
    previous: Mapping[str, Any] | None,
    defer_final: bool,
) -> Challenge:
    """:func:`challenge` when the choice is made (or repeated) on the rows before the window
    and scored on it, against the champion's choice fitted on the same rows."""
    objective = score_objective(task.objective, task.kind)
    # Fits on the rows before the window neither use nor replace the leaf cache (they see
    # other brand-context values than the fits on every row it serves: every row differs).
    uncached = cfg.model_copy(update={"cache_dir": None})
    scorer = build_challenger(uncached, task, glob, early, date=date, previous=previous)

    def on_every_row() -> Any:
        est = fit_brand_model(cfg, task, glob, data, repeat=scorer.selection_)
        est.selection_ = dict(scorer.selection_)
        est.strategy_reason_ = getattr(scorer, "strategy_reason_", "")
        est.holdout_scores_ = dict(getattr(scorer, "holdout_scores_", {}) or {})
        return est

    champ, same, notes = _champion_on_window(
        uncached, task, scorer, early, global_id, glob, champion, manifest, load_model_id
    )
    models = {"challenger": scorer, "global": glob, "champion": champ}
    scores = score_many(models, data.X, data.y, window, objective, data.weight)
    selection = dict(scorer.selection_)
    repeatable = choices_repeat(cfg, task, data)
    if defer_final:
        return Challenge(
            None, scores, same, notes=notes, selection=selection, build=on_every_row,
            repeatable=repeatable, contested=True,
        )  # fmt: skip
    return Challenge(
        on_every_row(), scores, same, notes=notes, selection=selection, repeatable=repeatable,
        contested=True,
    )  # fmt: skip


def _contested_recently(
    cfg: Config, repeat: Mapping[str, Any] | None, date: dt.date, last_contest: dt.date | None
) -> bool:
    """Whether the choice ``repeat`` (None: none, the brand chooses tonight) was contested
    fewer than ``refresh.contest_every_days`` days before ``date`` (on or after the day it
    was made)."""
    if repeat is None or last_contest is None:
        return False
    chosen = repeat.get("date")
    if chosen is not None and last_contest.isoformat() < str(chosen):
        return False  # the last contest was of an earlier choice
    return 0 <= (date - last_contest).days < cfg.refresh.contest_every_days


def _no_contest(
    cfg: Config,
    task: TaskConfig,
    glob: Any,
    data: TaskData,
    window: np.ndarray,
    repeat: Mapping[str, Any],
    last_contest: dt.date,
) -> Challenge:
    """:func:`challenge` on a night without a contest for a brand the global model serves:
    the global model (its champion) scored on the window as it serves."""
    objective = score_objective(task.objective, task.kind)
    scores = score_many({"global": glob}, data.X, data.y, window, objective, data.weight)
    scores["champion"], scores["challenger"] = scores["global"], None
    every = cfg.refresh.contest_every_days
    trees = int(repeat.get("n_new_trees") or 0)
    reason = (
        f"no contest tonight: the choice of {repeat.get('date')} ({repeat.get('strategy')}, "
        f"{trees} new tree{'' if trees == 1 else 's'}) was last contested on "
        f"{last_contest}; the global model serves; it contests again from "
        f"{last_contest + dt.timedelta(days=every)} (refresh.contest_every_days: {every}), or "
        "once the brand chooses again"
    )
    return Challenge(None, scores, selection=dict(repeat), no_contest=reason)


def _in_sample(
    est: Any, champion: Any, glob: Any, data: TaskData, window: np.ndarray, task: TaskConfig
) -> Challenge:
    """Scores of a brand whose rows span too few days for a window with days before it."""
    objective = score_objective(task.objective, task.kind)
    models = {"champion": champion, "challenger": est, "global": glob}
    scores = score_many(models, data.X, data.y, window, objective, data.weight)
    note = "the rows span too few days for a window with days before it: scored in sample"
    return Challenge(est, scores, out_of_time=False, notes=[note], selection=dict(est.selection_))


def _later_choice(
    newest: Mapping[str, Any] | None, champion: Mapping[str, Any], global_id: str
) -> bool:
    """Whether the brand's newest challenger (kept out) holds a choice made from tonight's
    global model later than the champion's: followed once the champion's own choice can no
    longer be repeated, so a brand whose new choices keep losing does not choose again on
    folds every night."""
    if newest is None or newest.get("base_model") != global_id:
        return False
    theirs = (newest.get("selection") or {}).get("date")
    mine = (champion.get("selection") or {}).get("date")
    return theirs is not None and (mine is None or str(theirs) > str(mine))


def _prequential_ready(
    manifest: Mapping[str, Any], repeat: Mapping[str, Any] | None, global_id: str
) -> bool:
    """Whether tonight repeats the champion's own choice (``repeat`` is its ``selection``)
    from tonight's global model, with the end of the rows it learned from recorded: then the
    night is scored prequentially."""
    window = manifest.get("data_window") or [None, None]
    selection = manifest.get("selection") or {}
    return (
        repeat is not None
        and manifest.get("base_model") == global_id
        and window[-1] is not None
        and _recipe(repeat) == _recipe(selection)
        and repeat.get("date") == selection.get("date")
    )


def prequential_totals(
    carried: Mapping[str, Any] | None,
    selection: Mapping[str, Any],
    date: dt.date,
    tonight: Mapping[str, Any],
) -> dict[str, Any]:
    """The prequential sums of a choice after tonight: ``carried`` (the champion's, when it
    belongs to the same choice: ``selection``'s date) plus ``tonight``'s (``rows``,
    ``weight``, and the weighted loss sums ``champion`` and ``global``). ``since``: the first
    day scored (``tonight``'s ``since``, default ``date``, unless carried); ``nights``: the
    nights that added to the sums."""
    chosen = selection.get("date")
    same = carried is not None and carried.get("selection_date") == chosen
    base: Mapping[str, Any] = carried if same and carried is not None else {}
    return {
        "selection_date": chosen,
        "since": base.get("since", tonight.get("since") or date.isoformat()),
        "nights": int(base.get("nights", 0)) + 1,
        "rows": int(base.get("rows", 0)) + int(tonight["rows"]),
        "weight": float(base.get("weight", 0.0)) + float(tonight["weight"]),
        "champion": float(base.get("champion", 0.0)) + float(tonight["champion"]),
        "global": float(base.get("global", 0.0)) + float(tonight["global"]),
    }


def _repeat_night(
    cfg: Config,
    task: TaskConfig,
    glob: Any,
    data: TaskData,
    champion: Any,
    manifest: Mapping[str, Any],
    repeat: Mapping[str, Any],
    date: dt.date,
) -> Challenge:
    """A night that repeats the champion's choice: one fit on every row, scored prequentially.

    The challenger is the champion's procedure on newer rows and replaces it without a
    contest, so no model is fitted on the rows before a window. Its score is that of the
    choice as it served: each night's champion on the rows that arrived after the rows it
    learned from, summed over the nights since the choice was made (the champion's manifest
    carries the sums); the global model is scored on the same rows.
    """
    est = repeat_choice(cfg, task, glob, data, repeat)
    scores, totals = _prequential_scores(task, glob, data, champion, manifest, repeat, date)
    note = (
        f"scored prequentially: each night's champion on the days after its rows, "
        f"{totals['rows']} rows of the days from {totals['since']}; the "
        "challenger repeats its choice on every row"
    )
    changed = learned_rows_changed(manifest, data)
    return Challenge(
        est,
        scores,
        same_recipe=True,
        notes=[note] + ([RESTATED_REFIT_NOTE] if changed else []),
        prequential=totals,
        selection=dict(est.selection_),
    )


def _prequential_scores(
    task: TaskConfig,
    glob: Any,
    data: TaskData,
    champion: Any,
    manifest: Mapping[str, Any],
    repeat: Mapping[str, Any],
    date: dt.date,
) -> tuple[dict[str, float | None], dict[str, Any]]:
    """The champion's and the global model's prequential scores after tonight, and the sums
    (:func:`prequential_totals`): the champion's carried sums plus both models on the rows
    after the last day the champion learned (``data_window``)."""
    objective = score_objective(task.objective, task.kind)
    learned_to = pd.Timestamp(str(manifest["data_window"][-1]))
    fresh = (pd.to_datetime(data.X[TIME_COLUMN]) > learned_to).to_numpy()
    weight = np.ones(len(data)) if data.weight is None else np.asarray(data.weight, dtype=float)
    total_weight = float(weight[fresh].sum())
    means = score_many(
        {"champion": champion, "global": glob}, data.X, data.y, fresh, objective, data.weight
    )
    tonight = {
        "rows": int(fresh.sum()),
        "weight": total_weight,
        # the first day scored (rows after the champion's, on a night after nights without a
        # refit, span several days)
        "since": (learned_to + pd.Timedelta(days=1)).date().isoformat(),
        **{k: 0.0 if v is None else v * total_weight for k, v in means.items()},
    }
    carried = (manifest.get("refresh") or {}).get("prequential")
    totals = prequential_totals(carried, repeat, date, tonight)
    if totals["weight"] <= 0:
        return {"champion": None, "challenger": None, "global": None}, totals
    champ = totals["champion"] / totals["weight"]
    return {
        "champion": champ,
        "challenger": champ,
        "global": totals["global"] / totals["weight"],
    }, totals


def refit_due(cfg: Config, manifest: Mapping[str, Any], data: TaskData, date: dt.date) -> bool:
    """Whether a champion that repeats its own choice is refitted tonight.

    Yes when ``refresh.refit_every_days`` is 1, when the newest day it learned
    (``data_window``) is ``refit_every_days`` or more days before ``date``, when the rows it
    has not learned reach ``refresh.refit_when_rows_grow`` of the rows it learned (``rows``):
    the rows after that day, or the brand's rows beyond those it learned when more (rows
    loaded late for earlier days count too), when the rows of the days it learned are no
    longer those it learned (restated values: :func:`learned_rows_changed`), or when its
    manifest lacks ``data_window`` or ``rows``.
    """
    every = cfg.refresh.refit_every_days
    window = manifest.get("data_window") or [None, None]
    learned = manifest.get("rows")
    if every <= 1 or window[-1] is None or not isinstance(learned, int) or learned <= 0:
        return True
    learned_to = pd.Timestamp(str(window[-1]))
    if (pd.Timestamp(date) - learned_to).days >= every:
        return True
    after = int((pd.to_datetime(data.X[TIME_COLUMN]) > learned_to).sum())
    if max(after, len(data) - learned) >= cfg.refresh.refit_when_rows_grow * learned:
        return True
    return learned_rows_changed(manifest, data)


def _no_refit(
    cfg: Config,
    task: TaskConfig,
    glob: Any,
    data: TaskData,
    champion: Any,
    manifest: Mapping[str, Any],
    repeat: Mapping[str, Any],
    date: dt.date,
) -> Challenge:
    """:func:`challenge` on a night the champion is not refitted (:func:`refit_due`): it keeps
    serving as it is, scored prequentially like a repeating night (nothing is stored: the
    next refit scores every row after the champion's, tonight's included)."""
    scores, totals = _prequential_scores(task, glob, data, champion, manifest, repeat, date)
    scores["challenger"] = None
    learned_to = pd.Timestamp(str(manifest["data_window"][-1])).date()
    every = cfg.refresh.refit_every_days
    share = cfg.refresh.refit_when_rows_grow
    reason = (
        f"no refit tonight: the champion learned the days up to {learned_to} and keeps serving; "
        f"it is refitted from {learned_to + dt.timedelta(days=every)} "
        f"(refresh.refit_every_days: {every}), or once its new rows reach {share:.0%} of the "
        f"{manifest.get('rows')} it learned (refresh.refit_when_rows_grow), or once the brand "
        "chooses its strategy again"
    )
    note = (
        f"scored prequentially: the champion on the days after its rows, {totals['rows']} rows "
        f"of the days from {totals['since']}"
    )
    return Challenge(
        None, scores, notes=[note], selection=dict(repeat), no_refit=reason, same_recipe=True
    )


def _champion_on_window(
    cfg: Config,
    task: TaskConfig,
    scorer: Any,
    early: TaskData,
    global_id: str,
    glob: Any,
    champion: Any,
    manifest: Mapping[str, Any],
    load_model_id: Callable[[str], Any] | None,
) -> tuple[Any, bool, list[str]]:
    """The model that stands for the champion on the window, whether it is the scorer's
    choice, and notes (see :func:`challenge`)."""
    if champion is None:
        return glob, False, []
    recipe = _recipe(manifest.get("selection"))
    base_id = manifest.get("base_model")
    if base_id == global_id and recipe is not None and recipe == _recipe(scorer.selection_):
        return scorer, True, []
    base = _champion_base(base_id, global_id, glob, load_model_id) if recipe else None
    if base is not None:
        return fit_brand_model(cfg, task, base, early, repeat=manifest["selection"]), False, []
    why = (
        "it was published without a recorded choice (e.g. by tabtune finetune)"
        if recipe is None
        else "its manifest names no global model"
        if base_id is None
        else f"its global model {base_id} does not load"
    )
    note = (
        f"the champion's choice cannot be fitted again ({why}): it is scored as it serves, on "
        "days it learned from"
    )
    return champion, False, [note]


def _champion_base(
    base_id: str | None, global_id: str, glob: Any, load_model_id: Callable[[str], Any] | None
) -> Any:
    """The global model the champion was adapted from, or None when it cannot be loaded."""
    if base_id == global_id:
        return glob
    if base_id is None or load_model_id is None:
        return None
    try:
        return load_model_id(base_id)
    except (ModelIntegrityError, OSError, KeyError, ValueError) as exc:
        logger.warning("the champion's global model %s does not load: %s", base_id, exc)
        return None


def same_recipe_decision(scores: Mapping[str, float | None], strategy: str | None) -> Decision:
    """Promote a challenger that repeats the champion's choice: the same procedure, newer rows."""
    chall = scores.get("challenger")
    shown = "" if chall is None else f"; out of time it scores {chall:.5g}"
    return Decision(
        "promoted",
        True,
        f"repeats the champion's choice ({strategy}) on newer rows{shown}",
    )


def decide_promotion(scores: Mapping[str, float | None], margin: float) -> Decision:
    """Promote the challenger only if it beats the champion's error by ``margin`` (a share).

    Parameters
    ----------
    scores : mapping
        ``champion`` and ``challenger`` holdout errors (lower is better).
    margin : float
        In [0, 1): the challenger must score below ``champion * (1 - margin)``. With 0 it must
        be strictly better; a tie keeps the champion.

    Returns
    -------
    Decision
        ``promoted`` or ``kept``, with the numbers in the reason.
    """
    champ, chall = scores.get("champion"), scores.get("challenger")
    if chall is None or champ is None or not (math.isfinite(chall) and math.isfinite(champ)):
        return Decision("kept", False, "no holdout rows with weight to compare on; champion kept")
    threshold = champ * (1.0 - margin)
    gain = (champ - chall) / champ if champ > 0 else 0.0
    if chall < threshold:
        return Decision(
            "promoted",
            True,
            f"challenger {chall:.5g} beats champion {champ:.5g} by {gain:.1%} "
            f"(margin {margin:.1%})",
        )
    return Decision(
        "kept",
        False,
        f"challenger {chall:.5g} vs champion {champ:.5g} ({gain:+.1%}) does not beat the "
        f"{margin:.1%} margin",
    )


def publish_challenger(
    registry: ModelRegistry,
    task: TaskConfig,
    brand: str,
    est: Any,
    data: TaskData,
    *,
    date: dt.date,
    global_id: str,
    champion_id: str | None,
    scores: Mapping[str, float | None] | None = None,
    same_recipe: bool = False,
    notes: Sequence[str] = (),
    prequential: Mapping[str, Any] | None = None,
    contested: bool = False,
) -> ModelRef:
    """Publish a challenger without promoting it.

    Its manifest records the run that built it (``refresh``: date, task, global model, the
    champion it was built against and the out-of-time scores of :func:`challenge`), so an
    interrupted run finds it again (:func:`find_run_challenger`) and decides as the first
    attempt would have, instead of publishing a second one.

    Returns
    -------
    ModelRef
        The new version.
    """
    dates = pd.to_datetime(data.X[TIME_COLUMN])
    run: dict[str, Any] = {
        "date": date.isoformat(),
        "task": task.name,
        "global_model": global_id,
        "champion_before": champion_id,
        "metric": loss_name(score_objective(task.objective, task.kind)),
        "scores": {k: finite_or_none(v) for k, v in (scores or {}).items()},
        "same_recipe": bool(same_recipe),
        "notes": list(notes),
        "contested": bool(contested),
    }
    if prequential is not None:
        run["prequential"] = dict(prequential)
    manifest = {
        "kind": "brand",
        "brand_id": brand,
        "task": task.model_dump(mode="json"),
        DEFINITION_KEY: definition(task),
        "base_model": global_id,
        "base_model_sha256": getattr(est, "base_model_id_", None),
        "strategy": str(est.strategy_),
        "reason": str(getattr(est, "strategy_reason_", "")),
        "selection": getattr(est, "selection_", None),
        "data_window": [str(dates.min().date()), str(dates.max().date())],
        "rows": len(data),
        "rows_fingerprint": rows_fingerprint(data),
        "metrics": {"holdout": dict(getattr(est, "holdout_scores_", {}) or {})},
        "refresh": run,
    }
    return registry.publish(
        task.name,
        lambda d: est.save(Path(d) / MODEL_SUBDIR),
        brand=brand,
        manifest=manifest,
        promote=False,
    )


def _learned_these_rows(manifest: Mapping[str, Any], data: TaskData) -> bool:
    """Whether a version was built from the brand's rows as they are now (an earlier attempt
    may have run before the day's rows were loaded, or before restated values replaced
    others): the same inputs' checksum, or for a version without one (of this version) as
    many rows up to the same last day."""
    fingerprint = current_fingerprint(manifest)
    if fingerprint is not None:
        return bool(fingerprint == rows_fingerprint(data))
    window = manifest.get("data_window") or [None, None]
    last = pd.to_datetime(data.X[TIME_COLUMN]).max()
    return manifest.get("rows") == len(data) and str(window[-1]) == str(last.date())


def find_run_challenger(
    registry: ModelRegistry,
    task: str,
    brand: str,
    date: dt.date,
    global_id: str,
    data: TaskData | None = None,
) -> tuple[ModelRef, dict[str, Any]] | None:
    """The challenger an earlier, interrupted attempt of this run already published.

    Looks, newest first, for a version whose manifest says it was built by the refresh of
    ``date`` from ``global_id``, and that verifies. With ``data`` (the brand's rows tonight),
    a version built from other rows (an attempt before the day's export was loaded, or from
    another file) is not reused: the brand is fitted again.

    Returns
    -------
    (ModelRef, manifest) or None
    """
    day = date.isoformat()
    for ref in reversed(registry.versions(task, brand)):
        try:
            manifest = registry.manifest(ref)
        except ModelIntegrityError:
            continue
        info = manifest.get("refresh") or {}
        ran = info.get("date")
        if ran == day and info.get("global_model") == global_id and info.get("task") == task:
            if data is not None and not _learned_these_rows(manifest, data):
                logger.info(
                    "%s: %s was built by an earlier attempt of this run from %s rows; the brand "
                    "has %d now: fitted again",
                    brand,
                    ref.id,
                    manifest.get("rows"),
                    len(data),
                )
                return None
            try:
                registry.verify(ref)
            except ModelIntegrityError as exc:
                logger.warning("ignoring the challenger of an earlier attempt: %s", exc)
                return None
            return ref, manifest
        if isinstance(ran, str) and ran < day:
            return None  # versions are in time order: older runs from here on
    return None
