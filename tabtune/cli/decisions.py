"""``tabtune bids`` and ``tabtune budget``: tomorrow's decisions for each brand, written as
Parquet under ``<outputs_dir>/<date>/`` (the day decided for) and shown as a table.

Each brand is served by its champion of the task (the global champion when it has none); the
global model is pretrained on the store first when the registry has none
(:func:`pretrain_global_if_missing`; the nightly refresh has its own, stricter
:func:`tabtune.refresh.ensure_global`). Outputs are filed like the store:
``<root>/brand_id=<id>/part-0.parquet`` without a ``brand_id`` column
(``pandas.read_parquet(root)`` restores it).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
from rich.console import Console

from tabtune.cli.brands import select_brands
from tabtune.cli.console import console, notes_printed_instead
from tabtune.cli.csv_out import check_csv_path, write_decisions_csv
from tabtune.cli.exit_codes import EXIT_OK
from tabtune.cli.tables import console_table
from tabtune.config import Config, TaskConfig, builtin_task_spec
from tabtune.data.limits import MAX_FUTURE_DAYS_ENV, latest_allowed_date
from tabtune.data.store import CampaignStore, atomic_write_parquet
from tabtune.errors import TabTuneInputError
from tabtune.features import GROUP_COLUMN, TIME_COLUMN
from tabtune.pipeline import (
    damaged_global_error,
    model_for_brand,
    pretrain,
    registry_for,
    store_for,
)
from tabtune.refresh import next_day_contexts
from tabtune.refresh.decisions import NO_BIDS_NOTE, decision_contexts, left_out_note
from tabtune.tasks.allocation import channel_bounds
from tabtune.tasks.bid import BidRecommender, as_timestamp, plot_biggest_contexts
from tabtune.tasks.bid_rules import unknown_target_brands_note
from tabtune.tasks.budget import BudgetPlanner, budget_planner, load_pooled_response
from tabtune.tasks.budget_notes import paused_channel_notes
from tabtune.tasks.response import HillResponse

__all__ = [
    "BIDS_STALE_DAYS",
    "cmd_bids",
    "cmd_budget",
    "check_decision_date",
    "decision_date",
    "pretrain_global_if_missing",
    "replaced_note",
    "run_bids",
    "run_bids_cli",
    "run_budget",
    "run_budget_cli",
    "stale_note",
    "write_brand_output",
]

#: ``bids`` notes a brand whose last stored day is more than this many days before the day
#: decided for (the window its reference bids come from); ``budget`` uses
#: ``budget.lookback_days``.
BIDS_STALE_DAYS = 28


# ---------------------------------------------------------------------------- shared
def decision_date(store: CampaignStore, date: Any, brands: Any = None) -> pd.Timestamp:
    """The day decided for: ``date`` when given (checked by :func:`check_decision_date` for
    ``brands``, default all), else the day after the store's last date."""
    if date is not None:
        day = as_timestamp(date, "--date")
        check_decision_date(store, day, brands)
        return day
    return pd.Timestamp(store.date_range()[1]).normalize() + pd.Timedelta(days=1)


def check_decision_date(store: CampaignStore, day: pd.Timestamp, brands: Any = None) -> None:
    """Refuse a ``--date`` after today plus ``TABTUNE_MAX_FUTURE_DAYS``
    (:func:`~tabtune.data.limits.latest_allowed_date`, the rule ``refresh --date`` follows)
    and after the default day (the day after the store's last day), or on or before the
    first day of the store (or of ``brands``): a typo in the year decided from old rows, or
    from none (exit 0). Raises TabTuneInputError naming the date, the limit and the fix."""
    latest = latest_allowed_date(store.max_future_days)
    if store.exists() and store.brands():
        # the default day (after the store's last day) is always allowed explicitly too
        first, last = (pd.Timestamp(d).normalize() for d in store.date_range())
        latest = max(latest, (last + pd.Timedelta(days=1)).date())
        if brands:  # the brands decided for: their own first day (--brands; review)
            first = store.read(brands=list(brands), columns=["date"])["date"].min().normalize()
        if day.normalize() <= first:  # a typo in the year: exit 0 with no decision, before
            raise TabTuneInputError(
                f"--date {day.date()} is on or before {first.date()}, the first stored day of "
                f"{'the brands decided for' if brands else 'the store'}: "
                "a decision is made from the rows before its day, and there are none; pass a "
                f"--date after {first.date()}, or leave --date out to decide for the day "
                "after the store's last day; nothing was written"
            )
    if day.date() > latest:
        raise TabTuneInputError(
            f"--date {day.date()} is after {latest.isoformat()}, the last day a decision may "
            f"be for (today plus {MAX_FUTURE_DAYS_ENV}): pass a --date up to {latest.isoformat()}, "
            "or leave --date out to decide for the day after the store's last day; "
            "nothing was written"
        )


def stale_note(
    brand: str, last: pd.Timestamp, day: pd.Timestamp, limit: int, rule: str
) -> str | None:
    """A note when ``brand``'s last stored day is more than ``limit`` days before ``day``.

    Parameters
    ----------
    brand : str
    last : Timestamp
        The brand's last stored day used for the decision.
    day : Timestamp
        The day decided for.
    limit : int
        Days the decision's rows may be old before the note is given.
    rule : str
        Where ``limit`` comes from, e.g. ``"budget.lookback_days"``.

    Returns
    -------
    str or None
        None when the rows are recent enough.
    """
    gap = int((day.normalize() - last.normalize()).days)
    if gap <= limit:
        return None
    return (
        f"{brand}: stale rows: its last stored day is {last.date()}, {gap} days before "
        f"{day.date()} (more than {limit}, {rule}); these decisions come from rows that old. "
        "Load newer rows (tabtune load) or pass an earlier --date"
    )


def write_brand_output(frame: pd.DataFrame, root: Path, brand: str) -> Path:
    """Write one brand's decisions to ``root/brand_id=<id>/part-0.parquet`` atomically.

    Like the campaign store, the file has no ``brand_id`` column: the folder name carries it
    (``pandas.read_parquet(root)`` or ``pyarrow.dataset`` with hive partitioning restores it).
    """
    path = Path(root) / f"brand_id={quote(str(brand), safe='')}" / "part-0.parquet"
    atomic_write_parquet(frame.drop(columns=[GROUP_COLUMN], errors="ignore"), path)
    return path


def replaced_note(root: Path, brands: list[str]) -> list[str]:
    """A note when brands' decision files under ``root`` exist already (from a refresh of the
    day before, or an earlier run of this command): they are replaced, and a refresh report
    that names them now points at the new ones."""
    there = [b for b in brands if (Path(root) / f"brand_id={quote(str(b), safe='')}").is_dir()]
    if not there:
        return []
    return [
        f"replaced the files of {len(there)} brand(s) under {root} written before (by a refresh "
        "of the day before, or an earlier run): a refresh report naming them now points at "
        "these"
    ]


def pretrain_global_if_missing(cfg: Config, task_name: str, con: Console) -> None:
    """Pretrain the task's global model on the whole store when the registry has none (and
    say so); refuse when it has versions but none verifies (a decision command must not
    replace a damaged global champion: the refresh's next night would run on another)."""
    registry = registry_for(cfg)
    if registry.resolve(task_name) is not None:  # verifies the model's files: once
        return
    if registry.versions(task_name):
        raise damaged_global_error(task_name)
    con.print(f"no global {task_name} model yet: pretraining it on the store first ...")
    from tabtune import tuning  # here: optuna loads only for a pretraining

    tuned_cfg, tuned = tuning.tuned_pretraining(cfg, task_name)
    if tuned:
        con.print(f"note: {tuning.tuned_note(tuned)}", markup=False)
    with notes_printed_instead():  # its notices are printed below as notes: said once
        res = pretrain(tuned_cfg, task_name)
    con.print(
        f"pretrained {res.model_id} on {res.rows:,} rows of {res.brands} brands "
        f"({res.seconds:.1f}s)"
    )
    for notice in res.notices:
        con.print(f"note: {notice}", markup=False)


def _decision_setup(
    cfg: Config, task: str, brands: Any, date: Any, positive: tuple[str, float | None]
) -> tuple[Any, Any, list[str], pd.Timestamp, Config]:
    """What ``bids`` and ``budget`` check and prepare before deciding, in this order: the
    brands, the decision date, the option that must be a positive number, the task (built in
    when the config lacks it) and its global model (pretrained when missing)."""
    con = console()
    store = store_for(cfg)
    chosen = select_brands(store, brands)
    day = decision_date(store, date, chosen if brands else None)
    flag, value = positive
    if value is not None and not (math.isfinite(value) and value > 0):
        raise TabTuneInputError(f"{flag} must be a positive number, got {value}")
    cfg = _with_task(cfg, task, builtin_task_spec(task))
    pretrain_global_if_missing(cfg, task, con)
    return con, store, chosen, day, cfg


def _with_task(cfg: Config, name: str, builtin: dict[str, Any]) -> Config:
    """``cfg`` with the built-in task ``name`` added when the configuration lacks it."""
    if name in cfg.tasks:
        return cfg
    return cfg.model_copy(update={"tasks": {**cfg.tasks, name: TaskConfig.model_validate(builtin)}})


def _source(model_id: str) -> str:
    return "brand" if model_id.startswith("brands/") else "global"


# ---------------------------------------------------------------------------- bids
def _bid_contexts(
    store: CampaignStore, brand: str, day: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp, list[str]]:
    """The brand's contexts with a bid on its last day before ``day``, moved to ``day``.

    Returns
    -------
    (contexts, recent, last, notes)
        The contexts (empty when the brand has none with a bid on ``last``), the brand's
        rows up to ``last`` (for the contexts' reference bids), its last day, and a note on
        the last day's contexts left out (:func:`~tabtune.refresh.decisions.left_out_note`).
    """
    last = pd.Timestamp(store.date_range(brand)[1]).normalize()
    if last >= day:
        last = day - pd.Timedelta(days=1)
    # every earlier row, as the refresh reads it: the reference is the last
    # REFERENCE_BID_ROWS *observations*, which a context seen every few days spreads over
    # more days than any fixed window (a 56-day one moved its bids by up to 25%)
    recent = store.read(brands=[brand], end=last)
    if not (pd.to_datetime(recent[TIME_COLUMN]) == last).any():
        return recent.iloc[0:0], recent, last, []
    every = next_day_contexts(recent, last.date())
    contexts = decision_contexts(every)
    return contexts.assign(date=day), recent, last, left_out_note(brand, every, contexts)


def _bid_plot(
    rec: BidRecommender,
    contexts: pd.DataFrame,
    recs: pd.DataFrame,
    history: pd.DataFrame,
    root: Path,
    brand: str,
    target: float,
) -> str:
    """The brand's bid plot (:func:`~tabtune.tasks.bid.plot_biggest_contexts`), or why not."""
    path = root / f"bids-{quote(str(brand), safe='')}.png"
    try:
        plot_biggest_contexts(
            rec,
            contexts,
            path,
            history=history,
            target_roas=target,
            recommendations=recs,
            title=f"{brand}: bid vs predicted value per click (6 biggest contexts)",
        )
    except TabTuneInputError as exc:  # matplotlib missing
        return f"{brand}: no plot ({exc})"
    return f"{brand}: plot {path}"


def _bid_row(brand: str, recs: pd.DataFrame, model_id: str) -> tuple[str, ...]:
    """One brand's line of the bids table."""
    raised = int((recs["change"] > 1e-9).sum())
    lowered = int((recs["change"] < -1e-9).sum())
    cur_roas = float(np.mean(recs["current_value_per_click"] / recs["current_bid"]))
    new_roas = float(np.mean(recs["predicted_roas"]))
    return (
        brand,
        f"{len(recs):,}",
        ", ".join(sorted(set(recs["reference"].astype(str)))),
        f"{100 * recs['change'].mean():+.1f}%",
        f"{raised}/{lowered}/{len(recs) - raised - lowered}",
        f"{cur_roas:.2f} -> {new_roas:.2f}",
        model_id,
    )


def run_bids(
    cfg: Config,
    *,
    brands: str | None = None,
    date: Any = None,
    target_roas: float | None = None,
    plots: bool = False,
    csv: str | None = None,
) -> int:
    """Recommend bids for each brand's latest contexts, write them and print a table.

    Each brand's contexts are its rows of its last day in the store (before ``date``), moved
    to the decision date, with reference bids from the store's earlier rows. Writes
    ``<outputs_dir>/<date>/bids/brand_id=<id>/part-0.parquet``.

    Parameters
    ----------
    cfg : Config
    brands : str, optional
        Comma-separated; default every brand of the store.
    date : date-like, optional
        The day the bids are for; default the day after the store's last date.
    target_roas : float, optional
        Default ``bids.target_roas``.
    plots : bool, default False
        Also write ``<outputs_dir>/<date>/plots/bids-<brand>.png``: bid vs predicted value
        per click for the brand's six biggest contexts.

    Returns
    -------
    int
        0.
    """
    csv_path = check_csv_path(csv, cfg)
    con, store, chosen, day, cfg = _decision_setup(
        cfg, "bid", brands, date, ("--target-roas", target_roas)
    )
    out_root = Path(cfg.outputs_dir) / str(day.date()) / "bids"
    plot_root = Path(cfg.outputs_dir) / str(day.date()) / "plots"
    target_of, shown = _bid_targets(cfg, target_roas, chosen)
    summary: list[tuple[str, ...]] = []
    notes = unknown_target_brands_note(cfg.bids, store.brands()) if target_roas is None else []
    references: set[str] = set()
    decided: list[tuple[str, BidRecommender, pd.DataFrame, pd.DataFrame, pd.DataFrame]] = []
    for brand in chosen:  # every brand is decided before anything is written
        contexts, recent, last, left_out = _bid_contexts(store, brand, day)
        stale = stale_note(brand, last, day, BIDS_STALE_DAYS, "the bids' reference window")
        notes.extend([stale] if stale else [])
        notes.extend(left_out)
        if len(contexts) == 0:
            summary.append(
                (brand, "0", "-", "-", "-", "-", f"no rows with a bid or clicks on {last.date()}")
            )
            continue
        model_id, est = model_for_brand(cfg, "bid", brand)
        rec = BidRecommender.from_estimator(
            est,
            config=cfg,
            model_id=model_id,
            source=_source(model_id),
            # a brand newer than the global model: "unknown brand" in its reasons
            known_brands=est.context_groups_ if _source(model_id) == "global" else None,
        )
        recs = rec.recommend(contexts, target_roas=target_of(brand), history=recent)
        decided.append((brand, rec, contexts, recs, recent))
        summary.append(_bid_row(brand, recs, model_id))
        references.update(recs["reference"].astype(str))
        notes.extend(_bid_notes(brand, recs, cfg.task("bid").categorical))
    plot_lines: list[str] = replaced_note(out_root, [d[0] for d in decided])
    for brand, rec, contexts, recs, recent in decided:
        write_brand_output(recs, out_root, brand)
        if plots:
            plot_lines.append(
                _bid_plot(rec, contexts, recs, recent, plot_root, brand, target_of(brand))
            )
    if csv_path is not None:
        plot_lines.append(write_decisions_csv({d[0]: d[3] for d in decided}, csv_path))
    _print_bids(con, day, shown, out_root, summary, references, [*notes, *plot_lines])
    return EXIT_OK


def _bid_targets(
    cfg: Config, target_roas: float | None, brands: Sequence[str]
) -> tuple[Callable[[str], float], str]:
    """Each brand's ROAS target (``--target-roas`` for all, else ``bids.target_roas_for``)
    and the targets as the table's title shows them."""
    if target_roas is not None:
        every = float(target_roas)
        return (lambda _brand: every), f"{every:g}"
    own = [b for b in brands if b in cfg.bids.target_roas_by_brand]
    extra = f"; {len(own)} brand(s) their own, bids.target_roas_by_brand" if own else ""
    return cfg.bids.target_roas_for, f"{cfg.bids.target_roas:g}{extra}"


def _print_bids(
    con: Console,
    day: pd.Timestamp,
    target: str,
    out_root: Path,
    summary: list[tuple[str, ...]],
    references: set[str],
    lines: list[str],
) -> None:
    """Print the bids table of :func:`run_bids`, then its notes and plot lines (``lines``)."""
    notes = list(lines)
    if "observed_cpc" in references:
        notes.insert(0, NO_BIDS_NOTE)
    title = f"bids for {day.date()} (target ROAS {target}) -> {out_root}"
    if references == {"observed_cpc"}:
        title = (
            f"target CPCs on the observed CPC for {day.date()} (target ROAS {target}) -> {out_root}"
        )
    con.print(
        console_table(
            title,
            [
                "brand",
                "contexts",
                "reference",
                "mean change",
                "up/down/same",
                "ROAS floor",
                "model",
            ],
            summary,
        )
    )
    con.print(
        "mean change and ROAS floor (predicted value per click / bid, current -> new): "
        "plain means over each brand's contexts, not weighted by clicks",
        markup=False,
    )
    for line in notes:
        con.print(line, markup=False)


def _bid_notes(brand: str, recs: pd.DataFrame, features: Sequence[str] = ()) -> list[str]:
    """The guard rails that set a brand's bids (clamps, caps, unreachable targets), counted."""
    reasons = recs["reason"].astype(str)
    railed = reasons[~reasons.isin(["roas target", "cpa target", "roas and cpa targets"])]
    counts = railed.value_counts()
    notes = [f"{brand}: {n} context(s): {reason}" for reason, n in counts.items()]
    notes.extend(_shared_context_note(brand, recs, features))
    if reasons.str.startswith(UNKNOWN_BRAND_PREFIX).any():
        notes.append(
            f"{brand}: the global model holds no brand context for it (the brand is newer than "
            "the global model, or none of its rows had a usable target: clicks), so it is "
            f"served without one: once it has rows with clicks, `tabtune finetune --brand "
            f"{brand}` adapts a model to them, or `tabtune pretrain` learns its context"
        )
    return notes


def _shared_context_note(brand: str, recs: pd.DataFrame, features: Sequence[str]) -> list[str]:
    """A note when several campaigns share a context (channel, audience, device) and the
    task's ``features`` lack ``campaign_id``: the model values them alike, and their bids
    differ by their own bids only."""
    context = [c for c in ("channel", "audience", "device") if c in recs.columns]
    if "campaign_id" not in recs.columns or "campaign_id" in features or not context:
        return []
    per_context = recs.groupby(context, observed=True, dropna=False)["campaign_id"].nunique()
    campaigns = int(per_context[per_context > 1].sum())
    if not campaigns:
        return []
    cpc = "reference" in recs and bool((recs["reference"] == "observed_cpc").all())
    own = "observed costs per click" if cpc else "bids"
    return [
        f"{brand}: {campaigns} campaign(s) share their {'/'.join(context)} with another: the "
        "task does not tell campaigns apart (its features lack campaign_id), so their bids "
        f"differ by their own {own} only; to learn them, add campaign_id to the categorical "
        "features of a task file of your own"
    ]


#: How a bid's reason starts for a brand the global model never saw (:mod:`tabtune.tasks.bid`).
UNKNOWN_BRAND_PREFIX = "unknown brand: global model"


def run_bids_cli(cfg: Config, args: argparse.Namespace) -> int:
    """:func:`run_bids` with ``args.brands``, ``date``, ``target_roas`` and ``plots``."""
    return run_bids(
        cfg,
        brands=getattr(args, "brands", None),
        date=getattr(args, "date", None),
        target_roas=getattr(args, "target_roas", None),
        plots=getattr(args, "plots", False),
        csv=getattr(args, "csv", None),
    )


# ---------------------------------------------------------------------------- budget
def _budget_plan(
    cfg: Config,
    store: CampaignStore,
    brand: str,
    day: pd.Timestamp,
    total: float | None,
    response: HillResponse | None = None,
) -> tuple[pd.DataFrame | None, str, list[str]]:
    """One brand's plan for ``day``, built by :func:`~tabtune.tasks.budget.budget_planner`.

    The brand's champion (or the global model) and ``response`` (the pooled Hill response
    stored with the global model) adapted to the brand's history up to the day before
    ``day``; recent spend and bounds come from its ``budget.lookback_days``.

    Returns
    -------
    (plan, model_id, notes)
        The plan, or None when the brand is skipped; the notes say why, and whether the
        brand's rows are stale (:func:`stale_note`).

    Raises
    ------
    TabTuneInputError
        ``total`` is given and does not fit the brand's bounds (:func:`_check_total`).
    """
    lookback = cfg.budget.lookback_days
    end = min(pd.Timestamp(store.date_range(brand)[1]).normalize(), day - pd.Timedelta(days=1))
    stale = stale_note(brand, end, day, lookback, "budget.lookback_days")
    notes = [stale] if stale else []
    rows = store.read(brands=[brand], end=end)
    recent = pd.to_datetime(rows[TIME_COLUMN]) >= end - pd.Timedelta(days=lookback - 1)
    if len(rows) == 0 or not recent.any():
        return None, "", [f"{brand}: no rows in the {lookback} days up to {end.date()}; skipped"]
    model_id, est = model_for_brand(cfg, "budget", brand)
    planner = budget_planner(
        cfg, rows, model=est, model_id=model_id, source=_source(model_id), response=response
    )
    if total is not None:
        _check_total(cfg, planner, brand, day, total)
    try:
        plan = planner.plan(total, day, brand=brand)
    except TabTuneInputError as exc:
        if total is not None:  # the user's --total cannot be planned for this brand
            raise TabTuneInputError(f"brand {brand!r}: {exc}") from None
        return None, model_id, [*notes, f"{brand}: {exc}; skipped"]
    paused = paused_channel_notes(rows, brand, day, plan["channel"])
    return plan, model_id, notes + _unplanned_channels(cfg, rows, brand, day, plan) + paused


def _check_total(
    cfg: Config, planner: BudgetPlanner, brand: str, day: pd.Timestamp, total: float
) -> None:
    """Refuse a ``--total`` outside the sums of the brand's channel bounds, with the fix.

    Raises
    ------
    TabTuneInputError
        Naming the brand, the bounds' sum against the total, and the ``--total`` that fits.
    """
    recent = planner.recent_spend(brand, day)
    if len(recent) == 0:
        return  # no bounds to check: the planner says why
    rho = cfg.budget.relative_bounds
    _, lower, upper = channel_bounds(recent, None, rho)
    lo, hi = float(lower.sum()), float(upper.sum())
    tol = 1e-9 * max(1.0, hi)
    if total < lo - tol:
        raise TabTuneInputError(
            f"brand {brand!r}: --total {total:,.2f} is below {lo:,.4f}, the sum of its "
            f"channels' lower bounds (recent spend {max(-100.0, -100 * rho):g}%, budget.relative_bounds): "
            f"raise --total to at least {math.ceil(lo * 100) / 100:.2f}"
        )
    if total > hi + tol:
        raise TabTuneInputError(
            f"brand {brand!r}: --total {total:,.2f} is above {hi:,.4f}, the sum of its "
            f"channels' upper bounds (recent spend +{100 * rho:g}%, budget.relative_bounds): "
            f"lower --total to at most {math.floor(hi * 100) / 100:.2f}"
        )


def _total_refusal(total: float, refused: dict[str, str], chosen: list[str], rho: float) -> str:
    """Why ``budget --total`` planned nothing: each refused brand, and the ways out."""
    others = [b for b in chosen if b not in refused]
    ways = []
    if any("relative_bounds" in reason for reason in refused.values()):
        ways.append(
            f"widen budget.relative_bounds (now {rho:g}: each channel may move that share of "
            "its recent spend)"
        )
    if others:
        ways.append(f"plan the other brands with --brands {','.join(others)}")
    lines = [
        f"budget --total {total:,.2f}: {len(refused)} of {len(chosen)} brand(s) cannot be "
        "planned with that total; nothing was written:",
        *(f"  {reason}" for reason in refused.values()),
    ]
    if ways:
        lines.append("Or " + ", or ".join(ways) + ".")
    return "\n".join(lines)


def _pretrained_note(cfg: Config, task: str, had_model: bool) -> str:
    """For a refusal after this command pretrained the task's missing global model: that the
    model stays published (a refusal otherwise writes nothing)."""
    ref = None if had_model else registry_for(cfg).resolve(task)
    if ref is None:
        return ""
    return (
        f"\nThe global {task} model {ref.id} was pretrained on the store first (there was "
        "none) and stays published: the next command uses it instead of pretraining again."
    )


def run_budget(
    cfg: Config,
    *,
    brands: str | None = None,
    date: Any = None,
    total: float | None = None,
    csv: str | None = None,
) -> int:
    """Plan each brand's day with its champion ``budget`` model, write the plans, print a table.

    Writes ``<outputs_dir>/<date>/budgets/brand_id=<id>/part-0.parquet``, once every brand is
    planned: when ``total`` does not fit some brand, nothing is written.

    Parameters
    ----------
    cfg : Config
    brands : str, optional
        Comma-separated; default every brand of the store.
    date : date-like, optional
        The day planned; default the day after the store's last date.
    total : float, optional
        The daily total; default each brand's recent daily spend (its spend in the last
        ``budget.lookback_days`` divided by the days with rows).

    Returns
    -------
    int
        0.

    Raises
    ------
    TabTuneInputError
        Unknown brands, an empty store, a bad date or total, or a total outside some brand's
        bounds (each such brand named, with the fixes).
    """
    had_model = registry_for(cfg).resolve("budget") is not None
    csv_path = check_csv_path(csv, cfg)
    con, store, chosen, day, cfg = _decision_setup(cfg, "budget", brands, date, ("--total", total))
    gref = registry_for(cfg).resolve("budget")
    response = load_pooled_response(None if gref is None else gref.path)
    out_root = Path(cfg.outputs_dir) / str(day.date()) / "budgets"
    summary, channels, notes = [], [], []
    plans: dict[str, pd.DataFrame] = {}
    refused: dict[str, str] = {}
    for brand in chosen:  # every brand is planned before anything is written
        try:
            plan, model_id, brand_notes = _budget_plan(cfg, store, brand, day, total, response)
        except TabTuneInputError as exc:
            if total is None:
                raise
            refused[brand] = str(exc)
            continue
        notes.extend(brand_notes)
        if plan is None:
            continue
        plans[brand] = plan
        summary.append(_plan_row(brand, plan, model_id))
        channels.extend(_plan_channel_rows(brand, plan))
        notes.extend(_plan_notes(cfg, brand, plan))
    if refused and total is not None:
        message = _total_refusal(total, refused, chosen, cfg.budget.relative_bounds)
        note = _pretrained_note(cfg, "budget", had_model)
        if note:
            message = message.replace("nothing was written", "no plan was written", 1) + note
        raise TabTuneInputError(message)
    notes.extend(replaced_note(out_root, list(plans)))
    for brand, plan in plans.items():
        write_brand_output(plan, out_root, brand)
    if csv_path is not None:
        notes.append(write_decisions_csv(plans, csv_path))
    _print_budget(con, day, out_root, summary, channels, notes)
    return EXIT_OK


def _plan_row(brand: str, plan: pd.DataFrame, model_id: str) -> tuple[str, ...]:
    """One brand's line of the budget table."""
    a = plan.attrs
    return (
        brand,
        str(len(plan)),
        f"{a['total']:,.2f}",
        f"{a['predicted_revenue']:,.2f}",
        f"{a['predicted_uplift']:+,.2f}"
        + (f" ({a['uplift_pct']:+.1f}%)" if math.isfinite(a["uplift_pct"]) else ""),
        model_id,
    )


def _print_budget(
    con: Console,
    day: pd.Timestamp,
    out_root: Path,
    summary: list[tuple[str, ...]],
    channels: list[tuple[str, ...]],
    notes: list[str],
) -> None:
    """Print the tables and notes of :func:`run_budget`."""
    con.print(
        console_table(
            f"budget plans for {day.date()} -> {out_root}",
            ["brand", "channels", "total", "predicted revenue", "uplift vs recent split", "model"],
            summary,
        )
    )
    if channels:
        con.print(
            console_table(
                "per channel: planned vs the recent split at this total (response: hill = "
                "bid-identified curve, hill-pooled = the pool's shape scaled to the brand, "
                "model = the budget model's curve)",
                ["brand", "channel", "recent split at total", "planned", "change", "response"],
                channels,
            )
        )
    for line in notes:
        con.print(line, markup=False)


def _plan_channel_rows(brand: str, plan: pd.DataFrame) -> list[tuple[str, ...]]:
    """One line per channel: the recent split at the plan's total, the plan, the change."""
    rows: list[tuple[str, ...]] = []
    for r in plan.itertuples(index=False):
        change = "-" if not np.isfinite(r.change) else f"{100 * r.change:+.1f}%"
        rows.append(
            (
                brand,
                str(r.channel),
                f"{r.habitual_spend:,.2f}",
                f"{r.spend:,.2f}",
                change,
                str(r.response),
            )
        )
    return rows


def _plan_notes(cfg: Config, brand: str, plan: pd.DataFrame) -> list[str]:
    """What a reader of a plan should know: one channel, channels at a guard rail."""
    notes = []
    if len(plan) == 1:
        notes.append(f"{brand}: one channel with recent spend: nothing to move between channels")
    rho = cfg.budget.relative_bounds
    tol = 1e-6 * max(1.0, float(plan["spend"].max()))
    for r in plan.itertuples(index=False):
        if len(plan) > 1 and r.upper > r.lower:
            if r.spend >= r.upper - tol:
                notes.append(
                    f"{brand}: {r.channel} at its upper bound (recent spend +{100 * rho:g}%, "
                    "budget.relative_bounds)"
                )
            elif r.spend <= r.lower + tol:
                notes.append(
                    f"{brand}: {r.channel} at its lower bound (recent spend {max(-100.0, -100 * rho):g}%, "
                    "budget.relative_bounds)"
                )
    return notes


def _unplanned_channels(
    cfg: Config, rows: pd.DataFrame, brand: str, day: pd.Timestamp, plan: pd.DataFrame
) -> list[str]:
    """A note for the channels of the brand's ``rows`` that the plan leaves out (no spend in
    the ``budget.lookback_days`` before ``day``: their bounds come from recent spend), and for
    a plan whose predicted revenue is zero."""
    missing = sorted(set(rows["channel"].astype(str)) - set(plan["channel"].astype(str)))
    notes = []
    if missing:
        notes.append(
            f"{brand}: {', '.join(missing)} not planned: no spend in the "
            f"{cfg.budget.lookback_days} days before {day.date()} (budget.lookback_days), and a "
            "channel's bounds come from its recent spend"
        )
    if float(plan.attrs.get("predicted_revenue", 1.0)) == 0.0:
        notes.append(
            f"{brand}: predicted revenue 0 on every channel (no revenue in its history): the "
            "plan cannot rank channels, check the export's revenue column"
        )
    return notes


def run_budget_cli(cfg: Config, args: argparse.Namespace) -> int:
    """:func:`run_budget` with ``args.brands``, ``date`` and ``total``."""
    return run_budget(
        cfg,
        brands=getattr(args, "brands", None),
        date=getattr(args, "date", None),
        total=getattr(args, "total", None),
        csv=getattr(args, "csv", None),
    )


def cmd_bids(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune bids``."""
    return run_bids_cli(cfg, args)


def cmd_budget(args: argparse.Namespace, cfg: Config) -> int:
    """``tabtune budget``."""
    return run_budget_cli(cfg, args)
