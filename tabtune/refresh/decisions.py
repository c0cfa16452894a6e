"""The refresh's outputs: the serving model's predictions and decisions for the next day.

:func:`write_decisions` writes, for the day after the run date, the predictions for the
brand's latest contexts (:func:`next_day_contexts`) and the task's decisions
(:data:`DECISIONS`: recommended bids for ``bid``, the channel budget plan for ``budget``),
with the brand's decision plot when ``refresh.plots`` is on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from tabtune.config import Config, TaskConfig
from tabtune.data.store import atomic_write_parquet
from tabtune.errors import TabTuneInputError
from tabtune.evaluation import task_predictions
from tabtune.features import TIME_COLUMN, model_features, task_data, with_bid_features
from tabtune.tasks import plots
from tabtune.tasks.budget_notes import paused_channel_notes

__all__ = ["DECISIONS", "decision_contexts", "next_day_contexts", "write_decisions"]

#: The note a brand's refresh (and ``tabtune bids``) records when its rows have no bids.
NO_BIDS_NOTE = (
    "bids: no 'bid' column, so the recommendations are target CPCs on the observed cost per "
    "click (spend / clicks; reference 'observed_cpc'), not a response to a bid change"
)


def left_out_note(brand: str, contexts: pd.DataFrame, kept: pd.DataFrame) -> list[str]:
    """A note naming how many of the brand's latest-day ``contexts`` get no bid (``kept`` are
    :func:`decision_contexts` of them): without a bid column, a context needs a click and
    spend on that day (its observed cost per click is the reference)."""
    left = len(contexts) - len(kept)
    if left <= 0:
        return []
    why = "a bid > 0" if "bid" in contexts.columns else "a click and spend (no bid column)"
    return [
        f"{brand}: {left} of its {len(contexts)} context(s) on its latest day lack {why}: no "
        "bid is written for them"
    ]


def decision_contexts(contexts: pd.DataFrame) -> pd.DataFrame:
    """The contexts a bid can be recommended for: a bid > 0, or without bids a click and spend
    (the observed cost per click is then the reference, :mod:`tabtune.tasks.bid`)."""
    if "bid" in contexts.columns and pd.to_numeric(contexts["bid"], errors="coerce").notna().any():
        return contexts[pd.to_numeric(contexts["bid"], errors="coerce") > 0]
    if not {"spend", "clicks"} <= set(contexts.columns):
        return contexts.iloc[0:0]
    ok = (pd.to_numeric(contexts["clicks"], errors="coerce") > 0) & (
        pd.to_numeric(contexts["spend"], errors="coerce") > 0
    )
    return contexts[ok]


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


def _outputs_path(cfg: Config, date: dt.date, kind: str, brand: str, task: str) -> Path:
    # filed under the decision date (the day after the run date), like `tabtune bids`/`budget`
    # another task's predictions go beside the bid task's, not inside them: reading
    # predictions/ as one dataset must not mix two targets in one column
    if kind == "predictions" and task != "bid":
        kind = f"predictions-{task}"
    folder = Path(cfg.outputs_dir) / (date + dt.timedelta(days=1)).isoformat() / kind
    return folder / f"brand_id={quote(brand, safe='')}" / "part-0.parquet"


def _bid_decisions(
    cfg: Config,
    brand: str,
    model: Any,
    model_id: str,
    rows: pd.DataFrame,
    date: dt.date,
    contexts: pd.DataFrame | None = None,
) -> pd.DataFrame | None:
    """Recommended bids for the brand's next-day contexts (``tabtune.tasks.bid``).

    ``contexts``: :func:`next_day_contexts` of ``rows`` with their reference bids computed
    from ``rows`` (:func:`~tabtune.features.with_bid_features`, the reference ``recommend``
    would compute from ``history=rows``); None: the contexts and their references are
    computed here.
    """
    # Imported here: write_decisions notes a decision module that does not import.
    from tabtune.tasks.bid import BidRecommender

    history: pd.DataFrame | None = None
    if contexts is None:
        contexts, history = next_day_contexts(rows, date), rows
    contexts = decision_contexts(contexts)
    if len(contexts) == 0:
        return None
    source = "brand" if model_id.startswith("brands/") else "global"
    rec = BidRecommender.from_estimator(model, config=cfg, model_id=model_id, source=source)
    target = cfg.bids.target_roas_for(brand)
    return rec.recommend(contexts.reset_index(drop=True), target_roas=target, history=history)


def _budget_decisions(
    cfg: Config,
    brand: str,
    model: Any,
    model_id: str,
    rows: pd.DataFrame,
    date: dt.date,
    contexts: pd.DataFrame | None = None,
) -> pd.DataFrame | None:
    """The brand's channel budget plan for the next day (``tabtune.tasks.budget``)."""
    planner = _budget_planner(cfg, model, model_id, rows, date)
    if planner is None:
        return None
    return planner.plan(None, pd.Timestamp(date + dt.timedelta(days=1)), brand=brand)


def _budget_planner(
    cfg: Config, model: Any, model_id: str, rows: pd.DataFrame, date: dt.date
) -> Any:
    """The brand's budget planner on its rows up to ``date`` (None: no rows in the
    ``budget.lookback_days`` before it), built by :func:`~tabtune.tasks.budget.budget_planner`
    like ``tabtune budget``'s: the serving model, and the Hill response stored with the global
    model adapted to the brand's history."""
    # Imported here: write_decisions notes a decision module that does not import.
    from tabtune.pipeline import registry_for
    from tabtune.tasks.budget import budget_planner, load_pooled_response

    stamps = pd.to_datetime(rows[TIME_COLUMN])
    since = pd.Timestamp(date) - pd.Timedelta(days=cfg.budget.lookback_days - 1)
    if not ((stamps >= since) & (stamps <= pd.Timestamp(date))).any():
        return None
    history = rows[(stamps <= pd.Timestamp(date)).to_numpy()]
    gref = registry_for(cfg).resolve("budget")
    source = "brand" if model_id.startswith("brands/") else "global"
    return budget_planner(
        cfg,
        history,
        model=model,
        model_id=model_id,
        source=source,
        response=load_pooled_response(None if gref is None else gref.path),
    )


#: task -> (output folder, decision step). A step returns the decisions for the day after the
#: run date, or None when the brand has nothing to decide on; its last argument is the
#: brand's next-day contexts as :func:`write_decisions` prepared them.
DECISIONS: dict[str, tuple[str, Callable[..., pd.DataFrame | None]]] = {
    "bid": ("bids", _bid_decisions),
    "budget": ("budgets", _budget_decisions),
}


def _write_brand_frame(frame: pd.DataFrame, path: Path) -> str:
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
    featured = None
    wanted = task.name == "bid" or {"reference_bid", "relative_bid"} & set(task.numeric)
    if "bid" in contexts.columns and "reference_bid" not in contexts.columns and wanted:
        # the contexts' reference bids come from the brand's earlier days, for the model's
        # features and the bids alike (computed once)
        contexts = featured = with_bid_features(contexts, history=rows)
    data = task_data(contexts, task, require_target=False, features=model_features(model))
    frame = data.X[["brand_id", TIME_COLUMN]].copy()
    for col in ("channel", "campaign_id", "audience", "device", *task.numeric):
        if col in data.rows.columns and col not in frame.columns:
            frame[col] = data.rows[col].to_numpy()
    frame["prediction"] = task_predictions(model, data.X, task.kind) if len(data.X) else []
    frame["model_id"] = model_id
    frame["task"] = task.name
    path = _outputs_path(cfg, date, "predictions", brand, task.name)
    outputs = {"predictions": _write_brand_frame(frame, path)}

    notes: list[str] = []
    if task.name not in DECISIONS:
        return outputs, notes
    kind, step = DECISIONS[task.name]
    try:
        decisions = step(cfg, brand, model, model_id, rows, date, featured)
    except ImportError as exc:
        notes.append(f"{kind} not written: the decision module is not available ({exc})")
        return outputs, notes
    except TabTuneInputError as exc:
        notes.append(f"{kind} not written: {exc}")
        return outputs, notes
    if decisions is not None and "reference" in decisions and len(decisions):
        if (decisions["reference"] == "observed_cpc").any():
            notes.append(NO_BIDS_NOTE)
    if decisions is not None and "response" in decisions and len(decisions):
        served = ", ".join(f"{c}: {r}" for c, r in zip(decisions["channel"], decisions["response"]))
        notes.append(f"budget response per channel: {served}")
        plan_day = pd.Timestamp(date + dt.timedelta(days=1))
        notes += paused_channel_notes(rows, brand, plan_day, decisions["channel"])
    if task.name == "bid":
        notes += left_out_note(brand, contexts, decision_contexts(contexts))
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
    day = date + dt.timedelta(days=1)
    root = Path(cfg.outputs_dir) / day.isoformat() / "plots"
    name = quote(str(brand), safe="")
    try:
        if task == "bid":
            # Imported here: a decision module that does not import is noted, not fatal.
            from tabtune.tasks.bid import BidRecommender, plot_biggest_contexts

            # the rows _bid_decisions recommended for
            contexts = decision_contexts(next_day_contexts(rows, date))
            source = "brand" if model_id.startswith("brands/") else "global"
            rec = BidRecommender.from_estimator(model, config=cfg, model_id=model_id, source=source)
            path = plot_biggest_contexts(
                rec,
                contexts.reset_index(drop=True),
                root / f"bids-{name}.png",
                history=rows,
                target_roas=cfg.bids.target_roas_for(brand),
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
