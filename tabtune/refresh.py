"""The nightly per-brand refresh: small steps, each testable alone, and thin wiring.

For a run date ``D`` and a task, :func:`refresh`

1. takes the registry's ``refresh`` lock (a second run at the same time is refused, naming the
   holder), then appends new rows to the store if given (idempotently);
2. makes sure a global champion exists (:func:`ensure_global`: pretrains on rows up to ``D`` if
   there is none; :func:`global_refresh_due` is the hook for re-pretraining on a schedule);
3. for every brand with data up to ``D``, in a worker (:func:`refresh_brand`):
   :func:`load_brand` -> :func:`build_challenger` (adapt the global champion on rows up to
   ``D``; published with ``promote=False``) -> :func:`evaluate` (champion, challenger and
   global model on the same newest window of the brand, :func:`holdout_mask`) ->
   :func:`decide_promotion` -> :func:`write_decisions` (predictions for the day after ``D``,
   plus recommended bids for the ``bid`` task or the channel budget plan for ``budget``);
   a brand below ``adaptation.min_rows_to_adapt`` rows is a ``cold_start`` served by the global
   model, and one without new rows since its champion was trained is ``skipped``;
4. records each brand in ``runs/<D>/state.json`` as soon as it is done (atomically), so a run
   killed at any point resumes where it stopped, and writes ``runs/<D>/report.json`` and
   ``report.html`` at the end.

Idempotency. A brand recorded as done in the state is never touched again, so rerunning a
finished date publishes nothing and rewrites nothing. A brand interrupted after its challenger
was published finds that version again (its manifest records the run date, the global base and
the champion it was built against) instead of publishing a second one, so a resumed run ends
with the same versions, champions and outputs as an uninterrupted one. Brands that failed are
retried on a rerun.

Runs of the default task (``bid``) live in ``runs/<D>/``; other tasks in ``runs/<D>/<task>/``.
Outputs are filed under the day they decide for, ``D + 1`` (as ``tabtune bids`` and ``tabtune
budget`` do): ``outputs/<D+1>/predictions/brand_id=<id>/part-0.parquet`` (``predictions/<task>/``
for other tasks), ``outputs/<D+1>/bids/...`` and ``outputs/<D+1>/budgets/...``; as in the store,
the folder carries ``brand_id`` (``pandas.read_parquet("outputs/<D+1>/bids")`` restores it) and
the ``date`` column is that day too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from tabtune.config import Config, TaskConfig
from tabtune.data.store import check_brands
from tabtune.errors import ModelIntegrityError, TabTuneInputError
from tabtune.evaluation import loss_name, predictions, score_many, score_objective, time_window
from tabtune.features import GROUP_COLUMN, TIME_COLUMN, TaskData, task_data, with_bid_features
from tabtune.parallel import Executor, make_executor
from tabtune.progress import ProgressFactory, track
from tabtune.report import load_history, run_dir_for, write_report

if TYPE_CHECKING:  # pragma: no cover
    from tabtune.data.store import CampaignStore
    from tabtune.registry import ModelRef, ModelRegistry

__all__ = [
    "DONE_STATUSES",
    "STATUSES",
    "BrandRecord",
    "Decision",
    "RunReport",
    "build_challenger",
    "build_report",
    "decide_promotion",
    "ensure_global",
    "evaluate",
    "find_run_challenger",
    "global_refresh_due",
    "holdout_mask",
    "load_brand",
    "load_state",
    "new_state",
    "next_day_contexts",
    "parse_date",
    "pending_brands",
    "publish_challenger",
    "record_brand",
    "refresh",
    "refresh_brand",
    "refresh_range",
    "save_state",
    "usable_rows",
    "write_decisions",
]

logger = logging.getLogger(__name__)

STATUSES = ("promoted", "kept", "cold_start", "skipped", "failed")
#: Statuses that end a brand's work for a date; ``failed`` brands are retried on a rerun.
DONE_STATUSES = frozenset({"promoted", "kept", "cold_start", "skipped"})
STATE_FORMAT = 1
STATE_NAME = "state.json"
REPORT_NAME = "report.json"
LOCK_NAME = "refresh"
_STEPS = ("load", "train", "evaluate", "write")


# ---------------------------------------------------------------------------- records


@dataclass
class BrandRecord:
    """What the refresh did for one brand on one date (one entry of ``report.json``).

    Attributes
    ----------
    brand_id : str
    status : str
        One of :data:`STATUSES`.
    reason : str
        Why, in words (the decision, the cold start, the error).
    rows : int
        Usable model rows of the brand up to the run date.
    strategy : str or None
        Adaptation strategy of the challenger.
    scores : dict
        Weighted MSE of ``champion``, ``challenger`` and ``global`` on the brand's holdout
        window (``None`` where not computed). Without a brand champion, the champion is the
        global model.
    model_id : str or None
        The model that serves the brand after the run.
    served_by : str or None
        Which of the scored models serves: ``"challenger"``, ``"champion"`` or ``"global"``.
    champion_id, challenger_id : str or None
        The champion the challenger was compared with, and the challenger.
    outputs : dict of str to str
        Output kind (``predictions``, ``bids``, ``budgets``) -> file written.
    notes : list of str
        Anything worth knowing that did not change the status (a corrupt champion replaced by
        the previous version, a decision step that is not available).
    timings : dict of str to float
        Seconds spent in ``load``, ``train``, ``evaluate`` and ``write``.
    seconds : float
        Wall time of the brand.
    """

    brand_id: str
    status: str = "failed"
    reason: str = ""
    rows: int = 0
    strategy: str | None = None
    scores: dict[str, float | None] = field(
        default_factory=lambda: {"champion": None, "challenger": None, "global": None}
    )
    model_id: str | None = None
    served_by: str | None = None
    champion_id: str | None = None
    challenger_id: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (non-finite scores become ``None``)."""
        data = asdict(self)
        data["scores"] = {k: _finite(v) for k, v in self.scores.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BrandRecord:
        """Rebuild a record from :meth:`to_dict` output (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class RunReport:
    """The outcome of one refresh date (``runs/<D>/report.json``)."""

    date: str
    task: str
    started_at: str
    finished_at: str | None
    global_model: str | None
    brands: list[BrandRecord]
    summary: dict[str, Any]
    timings: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[BrandRecord]:
        """Brands whose refresh failed."""
        return [b for b in self.brands if b.status == "failed"]

    @property
    def exit_code(self) -> int:
        """CLI exit code: 0, or 3 when some brands failed."""
        return 3 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view: the ``report.json`` layout."""
        data = asdict(self)
        data["brands"] = [b.to_dict() for b in self.brands]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunReport:
        """Rebuild a report from ``report.json``."""
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["brands"] = [BrandRecord.from_dict(b) for b in data.get("brands", [])]
        kwargs.setdefault("notes", [])
        return cls(**kwargs)


@dataclass(frozen=True)
class Decision:
    """The promotion decision for one brand."""

    status: str
    promote: bool
    reason: str


# ---------------------------------------------------------------------------- pure steps


def parse_date(value: Any, name: str = "date") -> dt.date:
    """A run date from a string (``YYYY-MM-DD``), date, datetime or Timestamp.

    Raises
    ------
    TabTuneInputError
        The value is not a date.
    """
    if isinstance(value, dt.datetime | pd.Timestamp):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise TabTuneInputError(f"{name}={value!r} is not a date (use YYYY-MM-DD)") from None


#: The refresh's evaluation window (:func:`tabtune.evaluation.time_window`).
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


def global_refresh_due(manifest: Mapping[str, Any], date: dt.date, every_days: int | None) -> bool:
    """Whether the global champion should be pretrained again for ``date``.

    The schedule hook: with ``every_days`` set, once the champion's data ends that many days
    before the run date. ``None`` (the default, until the config has
    ``refresh.global_every_days``) never re-pretrains.
    """
    if not every_days:
        return False
    window = manifest.get("data_window") or [None, None]
    try:
        end = parse_date(window[-1])
    except (TabTuneInputError, TypeError, IndexError):
        return True
    return (date - end).days >= int(every_days)


def next_day_contexts(rows: pd.DataFrame, date: dt.date) -> pd.DataFrame:
    """The contexts the day after ``date`` is planned for: the brand's latest day, re-dated.

    Parameters
    ----------
    rows : DataFrame
        The brand's contract rows up to ``date``.
    date : datetime.date
        The run date.

    Returns
    -------
    DataFrame
        The rows of the latest day up to ``date`` with ``date`` set to the next day.
    """
    stamps = pd.to_datetime(rows[TIME_COLUMN])
    upto = stamps <= pd.Timestamp(date)
    if not upto.any():
        return rows.iloc[0:0].copy()
    last = stamps[upto].max()
    out = rows.loc[(stamps == last).to_numpy()].copy()
    out[TIME_COLUMN] = pd.Timestamp(date + dt.timedelta(days=1))
    out[TIME_COLUMN] = out[TIME_COLUMN].astype(rows[TIME_COLUMN].dtype)
    return out.reset_index(drop=True)


def usable_rows(rows: pd.DataFrame, task: TaskConfig) -> TaskData:
    """A task's model inputs, keeping only rows with a usable target (possibly none)."""
    data = task_data(rows, task, require_target=False)
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
    )


# ---------------------------------------------------------------------------- run state


def new_state(
    date: dt.date, task: str, *, started_at: str, global_model: str, global_note: str = ""
) -> dict[str, Any]:
    """The state of a run that has not done any brand yet."""
    return {
        "format_version": STATE_FORMAT,
        "date": date.isoformat(),
        "task": task,
        "started_at": started_at,
        "finished_at": None,
        "global_model": global_model,
        "global_note": global_note,
        "brands": {},
    }


def pending_brands(state: Mapping[str, Any] | None, brands: Sequence[str]) -> list[str]:
    """Brands still to do: not recorded, or recorded as ``failed`` (retried)."""
    done = {} if state is None else state.get("brands", {})
    return [b for b in brands if done.get(b, {}).get("status") not in DONE_STATUSES]


def record_brand(state: Mapping[str, Any], record: BrandRecord) -> dict[str, Any]:
    """A copy of ``state`` with ``record`` stored for its brand."""
    brands = dict(state.get("brands", {}))
    brands[record.brand_id] = record.to_dict()
    return {**state, "brands": brands}


def build_report(state: Mapping[str, Any]) -> RunReport:
    """The run report of a state: brands sorted by id, counts per status, summed timings."""
    records = [BrandRecord.from_dict(r) for _, r in sorted(state.get("brands", {}).items())]
    counts = {status: 0 for status in STATUSES}
    for r in records:
        counts[r.status] = counts.get(r.status, 0) + 1
    uplifts = []
    for r in records:
        served = r.scores.get(r.served_by or "") if r.served_by else None
        base = r.scores.get("global")
        if served is not None and base:
            uplifts.append((base - served) / base)
    timings = {step: round(sum(r.timings.get(step, 0.0) for r in records), 3) for step in _STEPS}
    timings["pretrain"] = round(float(state.get("global_seconds", 0.0)), 3)
    started, finished = state.get("started_at"), state.get("finished_at")
    if started and finished:
        timings["wall"] = round(
            (
                dt.datetime.fromisoformat(finished) - dt.datetime.fromisoformat(started)
            ).total_seconds(),
            3,
        )
    summary = {
        "brands": len(records),
        **counts,
        "served_by_brand_model": sum(
            1 for r in records if r.model_id and r.model_id.startswith("brands/")
        ),
        "median_uplift_vs_global": float(np.median(uplifts)) if uplifts else None,
    }
    notes = [state["global_note"]] if state.get("global_note") else []
    return RunReport(
        date=state["date"],
        task=state["task"],
        started_at=started,
        finished_at=finished,
        global_model=state.get("global_model"),
        brands=records,
        summary=summary,
        timings=timings,
        notes=notes,
    )


def load_state(path: Path) -> dict[str, Any] | None:
    """Read ``state.json``; ``None`` when the run never started.

    Raises
    ------
    TabTuneInputError
        The file is not a state file (it is only ever replaced atomically, so this means it
        was edited or damaged by hand).
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise TabTuneInputError(
            f"run state {path} is unreadable ({exc}); move it away to start the date over"
        ) from None
    if not isinstance(data, dict) or data.get("format_version") != STATE_FORMAT:
        raise TabTuneInputError(
            f"run state {path} is not a tabtune state file (format_version "
            f"{data.get('format_version') if isinstance(data, dict) else '?'}); "
            "move it away to start the date over"
        )
    return data


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n").encode("utf-8")


def save_state(path: Path, state: Mapping[str, Any]) -> None:
    """Replace ``state.json`` atomically (readers and a killed run see old or new, never half)."""
    from tabtune.data.store import atomic_write_bytes

    atomic_write_bytes(path, _json_bytes(state))


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------------------- I/O steps


def load_brand(store: CampaignStore, brand: str, date: dt.date) -> pd.DataFrame:
    """A brand's contract rows up to and including ``date``."""
    return store.read(brands=[brand], end=date)


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
    brand = str(data.X[GROUP_COLUMN].iloc[0]) if len(data.X) else ""
    tuned, _ = tuned_adaptation(cfg, task, brand, len(data))
    repeat = repeated_selection(tuned, previous, date, n_rows=len(data))
    est = fit_brand_model(cfg, task, base, data, repeat=repeat)
    if repeat is not None:
        cfg = tuned
        est.strategy_reason_ = (
            f"repeats the choice of {repeat['date']} ({repeat['strategy']}, "
            f"{repeat['n_new_trees']} new trees) on today's rows; 'auto' chooses again after "
            f"{cfg.adaptation.reselect_every_days} days"
            + (
                ""
                if cfg.adaptation.reselect_when_rows_grow is None
                else f" or {100 * cfg.adaptation.reselect_when_rows_grow:g}% more rows"
            )
        )
        est.selection_ = dict(repeat)
    else:
        est.selection_ = {
            "date": None if date is None else date.isoformat(),
            "strategy": str(est.strategy_),
            "n_new_trees": int(est.n_new_trees_),
            "n_rows": len(data),
        }
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
    from tabtune.estimators import repeat_params
    from tabtune.pipeline import brand_estimator

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
    challenger : estimator
        The model to publish and, if promoted, serve: the choice made on the rows before the
        window, fitted again on every row.
    scores : dict
        ``champion``, ``challenger`` and ``global`` scored on the window with the task's own
        loss. The challenger and the champion are scored as fitted on the rows before the
        window only (out of time); the global model as it is.
    same_recipe : bool
        The challenger repeats the champion's choice on the same global model: the same
        procedure on newer rows, so it replaces the champion without a contest.
    out_of_time : bool
        False when the brand's rows span too few days for a window with rows before it.
    notes : list of str
    """

    challenger: Any
    scores: dict[str, float | None]
    same_recipe: bool = False
    out_of_time: bool = True
    notes: list[str] = field(default_factory=list)


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
) -> Challenge:
    """Build the challenger and score the candidates on days the challenger did not learn from.

    The challenger's choice (``auto``'s strategy and new trees, or the champion's choice
    repeated, see :func:`build_challenger`) is made on the rows before ``window`` and scored
    on it. The champion's own choice is fitted on the same rows from its own global model and
    scored on the same days (when it is the challenger's choice on the same global model, the
    two are one model). A champion whose choice cannot be repeated (no ``selection`` in its
    manifest, or a global model that no longer loads) is scored as it serves, with a note:
    it has learned from part of the window, which favours it. The global model is scored as
    it serves. The challenger to publish repeats the choice on every row.

    Parameters
    ----------
    cfg, task : the configuration and the task.
    glob : estimator
        Tonight's global model.
    data : TaskData
        The brand's rows up to the run date.
    window : ndarray of bool
        The evaluation window (:func:`~tabtune.evaluation.time_window`).
    date : date
        The run date.
    global_id : str
        Tonight's global model's registry id.
    champion : estimator, optional
        The brand's champion; None when the global model is the champion.
    champion_manifest : mapping, optional
        The champion's manifest.
    load_model_id : callable, optional
        Loads a registry model by id (the champion's global model).

    Returns
    -------
    Challenge
    """
    objective = score_objective(task.objective, task.kind)
    manifest = champion_manifest or {}
    previous = (
        manifest if champion is not None and manifest.get("base_model") == global_id else None
    )
    if not np.any(~window):
        est = build_challenger(cfg, task, glob, data, date=date, previous=previous)
        models = {"champion": champion or glob, "challenger": est, "global": glob}
        scores = score_many(models, data.X, data.y, window, objective, data.weight)
        note = "the rows span too few days for a window with days before it: scored in sample"
        return Challenge(est, scores, out_of_time=False, notes=[note])
    early = data.take(~window)
    scorer = build_challenger(cfg, task, glob, early, date=date, previous=previous)
    est = fit_brand_model(cfg, task, glob, data, repeat=scorer.selection_)
    est.selection_ = dict(scorer.selection_)
    est.strategy_reason_ = getattr(scorer, "strategy_reason_", "")
    est.holdout_scores_ = dict(getattr(scorer, "holdout_scores_", {}) or {})
    champ, same, notes = _champion_on_window(
        cfg, task, scorer, early, global_id, glob, champion, manifest, load_model_id
    )
    models = {"challenger": scorer, "global": glob, "champion": champ}
    scores = score_many(models, data.X, data.y, window, objective, data.weight)
    return Challenge(est, scores, same_recipe=same, notes=notes)


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
    note = (
        "the champion's choice cannot be fitted again (no recorded choice or its global model "
        "is gone): it is scored as it serves, on days it learned from"
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
    if not selection or selection.get("date") is None:
        return None
    made = dt.date.fromisoformat(str(selection["date"]))
    if not 0 <= (date - made).days < days:
        return None
    grow, chosen_on = a.reselect_when_rows_grow, selection.get("n_rows")
    if grow is not None and n_rows is not None and chosen_on is not None:
        if n_rows >= (1.0 + grow) * int(chosen_on):
            return None
    return dict(selection)


def tuned_adaptation(
    cfg: Config, task: TaskConfig, brand: str, n_rows: int
) -> tuple[Config, str | None]:
    """``cfg`` with the brand's tuned adaptation parameters, where a study has them.

    The brand's own study (``brand:<id>``) comes first, then its size bucket's
    (``adapt:<bucket>``); only ``adaptation`` settings are taken (the global champion is
    already fitted). Without a tuning storage or a completed trial, ``cfg`` is returned as is.

    Returns
    -------
    (Config, str or None)
        The config to adapt with and the scope its parameters came from (None: defaults).
    """
    from tabtune.config import AdaptationConfig

    if not _tuning_storage_exists(cfg):
        return cfg, None
    from tabtune.tuning import apply_params, best_params, bucket_for_rows

    for scope in (f"brand:{brand}", f"adapt:{bucket_for_rows(n_rows)}"):
        params = best_params(cfg, task.name, scope) or {}
        adaptation = {k: v for k, v in params.items() if k in AdaptationConfig.model_fields}
        if adaptation:
            return apply_params(cfg, adaptation), scope
    return cfg, None


def _tuning_storage_exists(cfg: Config) -> bool:
    """Whether a tuning storage may hold studies (an SQLite/journal file must exist)."""
    url = cfg.tuning.storage
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :]).exists()
    if url.startswith("journal:"):
        return Path(url[len("journal:") :]).exists()
    return True


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
    from tabtune.pipeline import MODEL_SUBDIR

    dates = pd.to_datetime(data.X[TIME_COLUMN])
    manifest = {
        "kind": "brand",
        "brand_id": brand,
        "task": task.model_dump(mode="json"),
        "base_model": global_id,
        "base_model_sha256": getattr(est, "base_model_id_", None),
        "strategy": str(est.strategy_),
        "reason": str(getattr(est, "strategy_reason_", "")),
        "selection": getattr(est, "selection_", None),
        "data_window": [str(dates.min().date()), str(dates.max().date())],
        "rows": len(data),
        "metrics": {"holdout": dict(getattr(est, "holdout_scores_", {}) or {})},
        "refresh": {
            "date": date.isoformat(),
            "task": task.name,
            "global_model": global_id,
            "champion_before": champion_id,
            "metric": loss_name(score_objective(task.objective, task.kind)),
            "scores": {k: _finite(v) for k, v in (scores or {}).items()},
            "same_recipe": bool(same_recipe),
            "notes": list(notes),
        },
    }
    return registry.publish(
        task.name,
        lambda d: est.save(Path(d) / MODEL_SUBDIR),
        brand=brand,
        manifest=manifest,
        promote=False,
    )


def find_run_challenger(
    registry: ModelRegistry, task: str, brand: str, date: dt.date, global_id: str
) -> tuple[ModelRef, dict[str, Any]] | None:
    """The challenger an earlier, interrupted attempt of this run already published.

    Looks, newest first, for a version whose manifest says it was built by the refresh of
    ``date`` from ``global_id``, and that verifies.

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
            try:
                registry.verify(ref)
            except ModelIntegrityError as exc:
                logger.warning("ignoring the challenger of an earlier attempt: %s", exc)
                return None
            return ref, manifest
        if isinstance(ran, str) and ran < day:
            return None  # versions are in time order: older runs from here on
    return None


def _outputs_path(cfg: Config, date: dt.date, kind: str, brand: str, task: str) -> Path:
    # filed under the decision date (the day after the run date), like `tabtune bids`/`budget`
    folder = Path(cfg.outputs_dir) / (date + dt.timedelta(days=1)).isoformat() / kind
    if kind == "predictions" and task != "bid":
        folder = folder / task
    return folder / f"brand_id={quote(brand, safe='')}" / "part-0.parquet"


def _bid_decisions(
    cfg: Config, brand: str, model: Any, model_id: str, rows: pd.DataFrame, date: dt.date
) -> pd.DataFrame | None:
    """Recommended bids for the brand's next-day contexts (``tabtune.tasks.bid``)."""
    from tabtune.tasks.bid import BidRecommender

    contexts = next_day_contexts(rows, date)
    if "bid" in contexts.columns:
        contexts = contexts[pd.to_numeric(contexts["bid"], errors="coerce") > 0]
    if len(contexts) == 0:
        return None
    source = "brand" if model_id.startswith("brands/") else "global"
    rec = BidRecommender.from_estimator(model, config=cfg, model_id=model_id, source=source)
    return rec.recommend(contexts.reset_index(drop=True), history=rows)


def _budget_decisions(
    cfg: Config, brand: str, model: Any, model_id: str, rows: pd.DataFrame, date: dt.date
) -> pd.DataFrame | None:
    """The brand's channel budget plan for the next day (``tabtune.tasks.budget``)."""

    planner = _budget_planner(cfg, model, model_id, rows, date)
    if planner is None:
        return None
    return planner.plan(None, pd.Timestamp(date + dt.timedelta(days=1)), brand=brand)


def _budget_planner(
    cfg: Config, model: Any, model_id: str, rows: pd.DataFrame, date: dt.date
) -> Any:
    """A budget planner on the brand's ``budget.lookback_days`` up to ``date`` (None: no rows)."""
    from tabtune.tasks.budget import BudgetPlanner

    since = pd.Timestamp(date) - pd.Timedelta(days=cfg.budget.lookback_days - 1)
    history = rows[pd.to_datetime(rows[TIME_COLUMN]) >= since]
    if len(history) == 0:
        return None
    source = "brand" if model_id.startswith("brands/") else "global"
    return BudgetPlanner.from_estimator(
        model, config=cfg, history=history, model_id=model_id, source=source
    )


#: task -> (output folder, decision step). A step returns the decisions for the day after the
#: run date, or None when the brand has nothing to decide on.
DECISIONS: dict[str, tuple[str, Callable[..., pd.DataFrame | None]]] = {
    "bid": ("bids", _bid_decisions),
    "budget": ("budgets", _budget_decisions),
}


def _write_brand_frame(frame: pd.DataFrame, path: Path) -> str:
    from tabtune.data.store import atomic_write_parquet

    # Like the store: the folder name carries brand_id (hive partitioning restores it).
    atomic_write_parquet(frame.drop(columns=["brand_id"], errors="ignore"), path)
    return str(path)


def write_decisions(
    cfg: Config,
    task: TaskConfig,
    brand: str,
    date: dt.date,
    model: Any,
    model_id: str,
    rows: pd.DataFrame,
) -> tuple[dict[str, str], list[str]]:
    """Write the brand's outputs for the day after ``date`` with the model that serves it.

    Always writes predictions for the brand's latest contexts (:func:`next_day_contexts`); for
    the ``bid`` task also recommended bids (``tabtune.tasks.bid``), for ``budget`` the channel
    budget plan (``tabtune.tasks.budget``). A decision step that cannot be imported, or that
    rejects the brand's data, is noted instead (predictions are still written).

    Returns
    -------
    (outputs, notes)
        Output kind -> path written, and notes.
    """
    contexts = next_day_contexts(rows, date)
    if "bid" in contexts.columns and {"reference_bid", "relative_bid"} & set(task.numeric):
        # the contexts' reference bids come from the brand's earlier days, as for its bids
        contexts = with_bid_features(contexts, history=rows)
    data = task_data(contexts, task, require_target=False)
    frame = data.X[["brand_id", TIME_COLUMN]].copy()
    for col in ("channel", "campaign_id", "audience", "device", *task.numeric):
        if col in data.rows.columns and col not in frame.columns:
            frame[col] = data.rows[col].to_numpy()
    frame["prediction"] = (
        predictions(model, data.X, score_objective(None, task.kind)) if len(data.X) else []
    )
    frame["model_id"] = model_id
    frame["task"] = task.name
    path = _outputs_path(cfg, date, "predictions", brand, task.name)
    outputs = {"predictions": _write_brand_frame(frame, path)}

    notes: list[str] = []
    if task.name not in DECISIONS:
        return outputs, notes
    kind, step = DECISIONS[task.name]
    try:
        decisions = step(cfg, brand, model, model_id, rows, date)
    except ImportError as exc:
        notes.append(f"{kind} not written: the decision module is not available ({exc})")
        return outputs, notes
    except TabTuneInputError as exc:
        notes.append(f"{kind} not written: {exc}")
        return outputs, notes
    if decisions is None or len(decisions) == 0:
        notes.append(f"{kind} not written: no contexts to decide on up to {date}")
    else:
        path = _outputs_path(cfg, date, kind, brand, task.name)
        outputs[kind] = _write_brand_frame(pd.DataFrame(decisions), path)
        if cfg.refresh.plots:
            plot, note = _decision_plot(
                cfg, task.name, brand, date, model, model_id, rows, pd.DataFrame(decisions)
            )
            if plot is not None:
                outputs["plot"] = plot
            if note:
                notes.append(note)
    return outputs, notes


def _decision_plot(
    cfg: Config,
    task: str,
    brand: str,
    date: dt.date,
    model: Any,
    model_id: str,
    rows: pd.DataFrame,
    decisions: pd.DataFrame,
) -> tuple[str | None, str | None]:
    """The brand's decision plot for the day after ``date`` (``refresh.plots``).

    ``decisions`` are the brand's bids or plan just written (the plot marks them).

    ``bid``: predicted value per click against the bid for the brand's six biggest contexts,
    the recommended bids and the target-ROAS line; ``budget``: each channel's predicted
    response curve with the planned and the recent spend. Written to
    ``outputs/<D+1>/plots/<bids|budget>-<brand>.png``.

    Returns
    -------
    (path, note)
        The PNG written (or None) and why not, when not.
    """
    from urllib.parse import quote

    from tabtune.tasks import plots

    day = date + dt.timedelta(days=1)
    root = Path(cfg.outputs_dir) / day.isoformat() / "plots"
    name = quote(str(brand), safe="")
    try:
        if task == "bid":
            from tabtune.tasks.bid import BidRecommender, plot_biggest_contexts

            contexts = next_day_contexts(rows, date)  # the rows _bid_decisions recommended for
            contexts = contexts[pd.to_numeric(contexts["bid"], errors="coerce") > 0]
            source = "brand" if model_id.startswith("brands/") else "global"
            rec = BidRecommender.from_estimator(model, config=cfg, model_id=model_id, source=source)
            path = plot_biggest_contexts(
                rec,
                contexts.reset_index(drop=True),
                root / f"bids-{name}.png",
                history=rows,
                target_roas=cfg.bids.target_roas,
                recommendations=decisions,
                title=f"{brand} {day}: bid vs predicted value per click (6 biggest contexts)",
            )
        elif task == "budget":
            planner = _budget_planner(cfg, model, model_id, rows, date)
            path = plots.plot_response_curves(
                planner.response_curves(pd.Timestamp(day), brand=brand),
                decisions,
                root / f"budget-{name}.png",
                title=f"{brand} {day}: predicted revenue against spend per channel",
            )
        else:
            return None, None
    except (ImportError, TabTuneInputError) as exc:
        return None, f"plot not written: {exc}"
    return str(path), None


def ensure_global(cfg: Config, task: str, date: dt.date) -> tuple[ModelRef, str, float]:
    """The global champion the run adapts from; pretrained on rows up to ``date`` if none.

    A champion that fails verification is replaced by the newest good older version (see
    :meth:`~tabtune.registry.ModelRegistry.resolve`). A published but never promoted version
    with data up to ``date`` (a pretraining interrupted between publish and promote) is
    promoted instead of pretraining again.

    Returns
    -------
    (ModelRef, note, seconds)
        The champion, what happened, and the pretraining time (0 when none).
    """
    from tabtune.pipeline import pretrain, registry_for

    reg = registry_for(cfg)
    ref = reg.resolve(task)
    every = getattr(cfg.refresh, "global_every_days", None)
    if ref is not None:
        note = ""
        if ref.fallback_from:
            note = (
                f"global champion {ref.fallback_from} of {task!r} failed verification; "
                f"using {ref.id}"
            )
        if not global_refresh_due(reg.manifest(ref), date, every):
            return ref, note, 0.0
        reason = f"global champion {ref.id} is older than {every} days; re-pretrained"
    else:
        for candidate in reversed(reg.versions(task)):
            try:
                reg.verify(candidate)
                window = reg.manifest(candidate).get("data_window") or [None]
                if window[-1] is None or parse_date(window[-1]) > date:
                    continue
            except (ModelIntegrityError, TabTuneInputError):
                continue
            reg.promote(candidate)
            return candidate, f"promoted unpromoted global version {candidate.id}", 0.0
        try:
            broken = reg.champion(task)
        except ModelIntegrityError:
            broken = "unreadable"
        reason = (
            f"no global champion for {task!r}"
            if broken is None
            else f"the global champion of {task!r} and every older version fail verification"
        ) + f"; pretrained on rows up to {date}"
    t0 = time.perf_counter()
    result = pretrain(cfg, task, end=date, promote=True)
    return reg.from_id(result.model_id), f"{reason}: {result.model_id}", time.perf_counter() - t0


# ---------------------------------------------------------------------------- one brand

_MODEL_CACHE: dict[tuple[str, str], Any] = {}


def _load_version(cfg: Config, task: TaskConfig, model_id: str) -> Any:
    from tabtune.pipeline import load_model, registry_for

    key = (str(Path(cfg.models_dir).absolute()), model_id)
    if key not in _MODEL_CACHE:
        if len(_MODEL_CACHE) > 8:
            _MODEL_CACHE.clear()
        _MODEL_CACHE[key] = load_model(registry_for(cfg).from_id(model_id), task)
    return _MODEL_CACHE[key]


def _current_champion(
    registry: ModelRegistry, task: str, brand: str
) -> tuple[ModelRef | None, list[str]]:
    """The brand's verified champion (or a fallback), with notes on what was wrong."""
    notes = []
    try:
        pointed = registry.champion(task, brand)
    except ModelIntegrityError as exc:
        pointed, notes = None, [f"champion pointer is broken: {exc}"]
    ref = registry.resolve(task, brand)
    if ref is not None and ref.fallback_from:
        scope = ref.id.rsplit("/", 1)[0]
        notes.append(
            f"champion {scope}/{ref.fallback_from} failed verification; the previous version "
            f"{ref.id} is used"
        )
    elif ref is None and pointed is not None:
        notes.append(
            f"champion {pointed.id} failed verification and no earlier version verifies; "
            "compared with the global model"
        )
    return ref, notes


@contextlib.contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = round(timings.get(step, 0.0) + time.perf_counter() - t0, 4)


def refresh_brand(
    cfg_data: Mapping[str, Any], task_name: str, brand: str, date: str, global_id: str
) -> dict[str, Any]:
    """Refresh one brand for one date: the per-brand job the executors run.

    A module-level function of plain arguments, so it can run in another process or on a
    Dask worker. Never raises for a problem of the brand: the error is returned as a
    ``failed`` record.

    Parameters
    ----------
    cfg_data : mapping
        ``Config.model_dump(mode="json")`` with absolute paths.
    task_name, brand, date, global_id : str
        The task, the brand, the run date (``YYYY-MM-DD``) and the global model to adapt.

    Returns
    -------
    dict
        A :class:`BrandRecord` as a dict.
    """
    t_start = time.perf_counter()
    rec = BrandRecord(brand_id=brand)
    try:
        _refresh_brand(
            Config.model_validate(dict(cfg_data)), task_name, parse_date(date), global_id, rec
        )
    except Exception as exc:  # noqa: BLE001 - failure isolation: one brand's error is recorded
        logger.warning(
            "brand %s failed: %s", brand, exc, exc_info=logger.isEnabledFor(logging.DEBUG)
        )
        rec.status, rec.reason = "failed", f"{type(exc).__name__}: {exc}"
    rec.seconds = round(time.perf_counter() - t_start, 4)
    return rec.to_dict()


def _refresh_brand(
    cfg: Config, task_name: str, date: dt.date, global_id: str, rec: BrandRecord
) -> None:
    """The wiring of one brand; fills ``rec`` as it goes (so a failure keeps what was known)."""
    from tabtune.pipeline import registry_for, store_for

    task = cfg.task(task_name)
    registry = registry_for(cfg)
    brand, t = rec.brand_id, rec.timings

    with _timed(t, "load"):
        rows = load_brand(store_for(cfg), brand, date)
        if len(rows) == 0:
            rec.status, rec.reason = "skipped", f"no rows up to {date}"
            return
        data = usable_rows(rows, task)
        rec.rows = len(data)
        glob = _load_version(cfg, task, global_id)
        mask = holdout_mask(data.X[TIME_COLUMN], cfg.adaptation.validation_fraction)

    if rec.rows < cfg.adaptation.min_rows_to_adapt:
        with _timed(t, "evaluate"):
            rec.scores = {
                "champion": None,
                "challenger": None,
                **evaluate({"global": glob}, data, mask, kind=task.kind, objective=task.objective),
            }
        rec.status, rec.served_by, rec.model_id = "cold_start", "global", global_id
        rec.reason = (
            f"{rec.rows} usable rows < min_rows_to_adapt={cfg.adaptation.min_rows_to_adapt}; "
            "served by the global model"
        )
    else:
        _adapt_and_decide(cfg, task, date, global_id, glob, data, mask, registry, rec)

    with _timed(t, "write"):
        serving = glob if rec.served_by == "global" else _load_version(cfg, task, rec.model_id)
        rec.outputs, notes = write_decisions(cfg, task, brand, date, serving, rec.model_id, rows)
        rec.notes.extend(notes)


def _adapt_and_decide(
    cfg: Config,
    task: TaskConfig,
    date: dt.date,
    global_id: str,
    glob: Any,
    data: TaskData,
    mask: np.ndarray,
    registry: ModelRegistry,
    rec: BrandRecord,
) -> None:
    brand, t = rec.brand_id, rec.timings
    champ_ref, notes = _current_champion(registry, task.name, brand)
    rec.notes.extend(notes)
    earlier = find_run_challenger(registry, task.name, brand, date, global_id)
    if earlier is not None:
        chall_ref, champ_ref, same = _resumed(registry, earlier, rec)
    else:
        if champ_ref is not None and _nothing_new(registry.manifest(champ_ref), data, global_id):
            _keep_unchanged_champion(cfg, task, glob, data, mask, champ_ref, rec)
            return
        with _timed(t, "train"):
            champion = None if champ_ref is None else _load_version(cfg, task, champ_ref.id)
            result = challenge(
                cfg,
                task,
                glob,
                data,
                mask,
                date=date,
                global_id=global_id,
                champion=champion,
                champion_manifest=None if champ_ref is None else registry.manifest(champ_ref),
                load_model_id=lambda model_id: _load_version(cfg, task, model_id),
            )
            rec.scores, same = result.scores, result.same_recipe
            rec.notes.extend(result.notes)
            chall_ref = publish_challenger(
                registry,
                task,
                brand,
                result.challenger,
                data,
                date=date,
                global_id=global_id,
                champion_id=None if champ_ref is None else champ_ref.id,
                scores=result.scores,
                same_recipe=same,
                notes=result.notes,
            )
        rec.strategy = str(result.challenger.strategy_)
    rec.challenger_id = chall_ref.id
    rec.champion_id = None if champ_ref is None else champ_ref.id

    with _timed(t, "evaluate"):
        if same and champ_ref is not None:
            decision = same_recipe_decision(rec.scores, rec.strategy)
        else:
            decision = decide_promotion(rec.scores, cfg.refresh.promotion_margin)
    rec.status, rec.reason = decision.status, decision.reason
    if champ_ref is None:
        rec.reason += " (no brand champion yet: the champion is the global model)"
    if decision.promote:
        registry.promote(chall_ref)
        rec.served_by, rec.model_id = "challenger", chall_ref.id
    elif champ_ref is None:
        rec.served_by, rec.model_id = "global", global_id
    else:
        rec.served_by, rec.model_id = "champion", champ_ref.id


def _resumed(
    registry: ModelRegistry, earlier: tuple[ModelRef, dict[str, Any]], rec: BrandRecord
) -> tuple[ModelRef, ModelRef | None, bool]:
    """Resuming: the challenger an interrupted attempt published, with its out-of-time scores.

    The comparison is with the champion it was built against, which may already have been
    replaced by it before the interruption. Returns the challenger, that champion (None: the
    global model) and whether the challenger repeats the champion's choice.
    """
    chall_ref, manifest = earlier
    info = manifest["refresh"]
    before = info.get("champion_before")
    champ_ref = None
    if before is not None:
        champ_ref = registry.from_id(before)
        registry.verify(champ_ref)
    rec.strategy = manifest.get("strategy")
    rec.scores = dict(info.get("scores") or {})
    rec.notes.extend(info.get("notes") or [])
    return chall_ref, champ_ref, bool(info.get("same_recipe"))


def _keep_unchanged_champion(
    cfg: Config,
    task: TaskConfig,
    glob: Any,
    data: TaskData,
    mask: np.ndarray,
    champ_ref: ModelRef,
    rec: BrandRecord,
) -> None:
    """No new rows since the champion was trained: it keeps serving (scored for the report)."""
    champ = _load_version(cfg, task, champ_ref.id)
    with _timed(rec.timings, "evaluate"):
        rec.scores = {
            "challenger": None,
            **evaluate(
                {"champion": champ, "global": glob},
                data,
                mask,
                kind=task.kind,
                objective=task.objective,
            ),
        }
    rec.status, rec.served_by = "skipped", "champion"
    rec.model_id = rec.champion_id = champ_ref.id
    rec.reason = f"no new rows since {champ_ref.id} was trained; it keeps serving"


def _nothing_new(manifest: Mapping[str, Any], data: TaskData, global_id: str) -> bool:
    """Whether the champion was built from this global model on every row the brand has."""
    window = manifest.get("data_window") or [None, None]
    last = pd.to_datetime(data.X[TIME_COLUMN]).max()
    try:
        covered = window[-1] is not None and pd.Timestamp(window[-1]) >= last
    except (TypeError, ValueError):
        return False
    return covered and manifest.get("base_model") == global_id and manifest.get("rows") == len(data)


# ---------------------------------------------------------------------------- wiring


def _worker_config(cfg: Config) -> dict[str, Any]:
    """``cfg`` as plain JSON with absolute paths, for workers in other processes."""
    data = cfg.model_dump(mode="json")
    for key in ("models_dir", "runs_dir", "outputs_dir", "cache_dir"):
        if data[key] is not None:
            data[key] = str(Path(data[key]).absolute())
    for key in ("store", "truth_dir"):
        data["data"][key] = str(Path(data["data"][key]).absolute())
    return data


def _select_brands(store: CampaignStore, date: dt.date, brands: Sequence[str] | None) -> list[str]:
    known = store.brands()
    if not known:
        raise TabTuneInputError(f"the campaign store {store.root} is empty; nothing to refresh")
    if brands is None:
        return [b for b in known if _has_rows_by(store, b, date)]
    wanted = list(dict.fromkeys(str(b) for b in brands))
    check_brands(wanted, known, store.root)
    return sorted(wanted)


def _has_rows_by(store: CampaignStore, brand: str, date: dt.date) -> bool:
    try:
        return store.date_range(brand)[0].date() <= date
    except Exception:  # noqa: BLE001 - a damaged partition fails in its own job, not the run
        return True


def _failure(brand: str, error: BaseException) -> dict[str, Any]:
    return BrandRecord(
        brand_id=brand, status="failed", reason=f"{type(error).__name__}: {error}"
    ).to_dict()


def _refresh_date(
    cfg: Config,
    date: dt.date,
    *,
    task: str,
    brands: Sequence[str] | None,
    executor: Executor,
    progress: ProgressFactory | None,
) -> RunReport:
    """One date, with the lock held."""
    from tabtune.pipeline import registry_for, store_for

    run_dir = run_dir_for(cfg.runs_dir, date.isoformat(), task)
    state_path, report_path = run_dir / STATE_NAME, run_dir / REPORT_NAME
    store = store_for(cfg)
    selected = _select_brands(store, date, brands)
    state = load_state(state_path)
    if state is not None and state.get("task") != task:
        raise TabTuneInputError(f"{state_path} belongs to task {state.get('task')!r}, not {task!r}")
    todo = pending_brands(state, selected)

    if state is not None and state.get("finished_at") and not todo:
        logger.info("refresh of %s (%s) already finished; nothing to do", date, task)
        try:
            return RunReport.from_dict(json.loads(report_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            report = build_report(state)
            _write_report(cfg, run_dir, report)
            return report

    if state is None:
        started = _now()
        gref, note, seconds = ensure_global(cfg, task, date)
        state = new_state(date, task, started_at=started, global_model=gref.id, global_note=note)
        state["global_seconds"] = round(seconds, 3)
        save_state(state_path, state)
    else:
        reg = registry_for(cfg)
        reg.verify(reg.from_id(state["global_model"]))  # the run's base must still be intact
        state = {**state, "finished_at": None}
    global_id = state["global_model"]

    cfg_data = _worker_config(cfg)
    jobs = {b: (cfg_data, task, b, date.isoformat(), global_id) for b in todo}
    with track(progress, f"refresh {task} {date}", len(jobs)) as update:
        for outcome in executor.run(refresh_brand, jobs):
            data = outcome.value if outcome.ok else _failure(outcome.key, outcome.error)
            record = BrandRecord.from_dict(data)
            state = record_brand(state, record)
            save_state(state_path, state)
            update(advance=1, status=f"{record.brand_id}: {record.status}")

    # The report goes first: a run killed between the two writes is finished again on rerun.
    finished = {**state, "finished_at": _now()}
    report = build_report(finished)
    _write_report(cfg, run_dir, report)
    save_state(state_path, finished)
    return report


def _write_report(cfg: Config, run_dir: Path, report: RunReport) -> None:
    data = report.to_dict()
    history = load_history(cfg.runs_dir, report.task, upto=report.date)
    history = [h for h in history if h.get("date") != report.date] + [data]
    write_report(run_dir, data, history=history)


@contextlib.contextmanager
def _refresh_session(
    cfg: Config, task: str, new_rows: pd.DataFrame | None, executor: Executor | str | None
) -> Iterator[Executor]:
    """Lock, append new rows, and provide the executor for the session's dates."""
    from tabtune.pipeline import registry_for, store_for
    from tabtune.registry import RegistryLockedError

    cfg.task(task)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(registry_for(cfg).lock(LOCK_NAME, timeout=0))
        except RegistryLockedError as exc:
            raise RegistryLockedError(f"another refresh is running; refused: {exc}") from None
        if new_rows is not None:
            result = store_for(cfg).append(
                new_rows, extra_columns=cfg.data.extra_columns, on_existing="skip"
            )
            logger.info(
                "appended %d new rows (%d already stored)", result.rows_written, result.rows_skipped
            )
        if isinstance(executor, Executor):
            yield executor
        else:
            r = cfg.refresh
            yield stack.enter_context(
                make_executor(executor or r.executor, n_workers=r.n_workers, scheduler=r.scheduler)
            )


def refresh(
    cfg: Config,
    date: Any,
    *,
    brands: Sequence[str] | None = None,
    task: str = "bid",
    new_rows: pd.DataFrame | None = None,
    executor: Executor | str | None = None,
    progress: ProgressFactory | None = None,
) -> RunReport:
    """Run the nightly refresh of one task for one date (see the module docstring).

    Parameters
    ----------
    cfg : Config
    date : str or date
        The run date ``D``: models use rows up to ``D``; outputs are for ``D + 1``.
    brands : sequence of str, optional
        Only these brands (each must be in the store); default every brand with data up to D.
    task : str, default "bid"
    new_rows : DataFrame, optional
        Campaign rows to append to the store first (validated; rows already stored are
        skipped).
    executor : Executor, {"inline", "process", "dask"} or None
        Where brands run; default ``cfg.refresh.executor``. An Executor instance is left open.
    progress : ProgressFactory, optional
        Reports each finished brand (:mod:`tabtune.progress`); default silent.

    Returns
    -------
    RunReport
        Also written to ``runs/<D>/report.json`` (and ``report.html``).

    Raises
    ------
    RegistryLockedError
        Another refresh holds the lock (the message names its pid and host).
    TabTuneInputError
        Bad date, unknown task or brand, bad new rows, empty store.
    """
    day = parse_date(date)
    with _refresh_session(cfg, task, new_rows, executor) as ex:
        return _refresh_date(cfg, day, task=task, brands=brands, executor=ex, progress=progress)


def refresh_range(
    cfg: Config,
    start: Any,
    end: Any,
    *,
    brands: Sequence[str] | None = None,
    task: str = "bid",
    new_rows: pd.DataFrame | None = None,
    executor: Executor | str | None = None,
    progress: ProgressFactory | None = None,
    on_report: Callable[[RunReport], None] | None = None,
) -> list[RunReport]:
    """Backfill: :func:`refresh` every date from ``start`` to ``end`` (inclusive), in order.

    The lock is held for the whole range and ``new_rows`` are appended once, first. Finished
    dates are not redone, so an interrupted backfill resumes where it stopped.

    Parameters
    ----------
    cfg : Config
    start, end : str or date
        First and last run date.
    brands, task, new_rows, executor, progress
        As for :func:`refresh`.
    on_report : callable, optional
        Called with each date's :class:`RunReport` as soon as it is done.

    Returns
    -------
    list of RunReport
        One per date, in order.

    Raises
    ------
    TabTuneInputError
        ``start`` is after ``end``, or as for :func:`refresh`.
    """
    first, last = parse_date(start, "from"), parse_date(end, "to")
    if first > last:
        raise TabTuneInputError(f"--from {first} is after --to {last}")
    reports = []
    with _refresh_session(cfg, task, new_rows, executor) as ex:
        day = first
        while day <= last:
            report = _refresh_date(
                cfg, day, task=task, brands=brands, executor=ex, progress=progress
            )
            reports.append(report)
            if on_report is not None:
                on_report(report)
            day += dt.timedelta(days=1)
    return reports
