"""The refresh of a date or a range of dates: lock, global model, brands, run state, report.

:func:`refresh` (one date) and :func:`refresh_range` (a backfill) hold the registry's refresh
lock, append new rows, make sure a global champion exists, run :func:`refresh_brand` for every
pending brand on the executor, record each brand in the run state as soon as it is done and
write the run report at the end. Then, unless ``registry.gc_after_refresh`` is off, the
registry's retention policy deletes the versions it does not keep (still under the lock).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from tabtune import tuning
from tabtune.atomic import write_blocked
from tabtune.config import Config
from tabtune.data.limits import check_brand_id, latest_allowed_date
from tabtune.data.load import check_against_store
from tabtune.data.restated import (
    check_restated,
    replace_restated,
    restated_days,
    stored_differently,
)
from tabtune.data.schema import validate_campaigns
from tabtune.data.store import check_brands
from tabtune.errors import ModelIntegrityError, TabTuneInputError
from tabtune.evaluation import loss_name, score_objective
from tabtune.features import TIME_COLUMN
from tabtune.parallel import Executor, make_executor
from tabtune.pipeline import check_global_definition, registry_for, store_for
from tabtune.progress import ProgressFactory, track
from tabtune.refresh.brand import refresh_brand
from tabtune.refresh.challenger import brand_studies
from tabtune.refresh.changed_rows import (
    brands_to_redo,
    changed_keys,
    check_run_order,
    finished_runs,
    input_without_the_day_note,
    stale_runs_note,
    unfinished_runs_note,
)
from tabtune.refresh.global_model import ensure_global
from tabtune.refresh.input_checks import (
    check_input_has_the_day,
    refuse_clock_times,
    refuse_rows_after_the_run,
    refuse_rows_before_history,
)
from tabtune.refresh.missing_days import missing_day_notes
from tabtune.refresh.state import (
    REPORT_NAME,
    STATE_NAME,
    BrandRecord,
    RunReport,
    append_record,
    build_report,
    load_state,
    new_state,
    parse_date,
    pending_brands,
    run_started,
    save_state,
)
from tabtune.registry import RegistryLockedError
from tabtune.registry.locks import REFRESH_LOCK
from tabtune.report import earlier_reports, load_history, run_dir_for, write_report
from tabtune.tasks.bid_rules import unknown_target_brands_note

if TYPE_CHECKING:  # pragma: no cover
    from tabtune.data.store import CampaignStore

__all__ = ["LOCK_NAME", "check_request", "refresh", "refresh_range"]

logger = logging.getLogger("tabtune.refresh")


#: The registry lock a refresh holds.
LOCK_NAME = REFRESH_LOCK


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _worker_config(cfg: Config) -> dict[str, Any]:
    """``cfg`` as plain JSON with absolute paths, for workers in other processes."""
    data = cfg.model_dump(mode="json")
    for key in ("models_dir", "runs_dir", "outputs_dir", "cache_dir"):
        if data[key] is not None:
            data[key] = str(Path(data[key]).absolute())
    for key in ("store", "truth_dir"):
        data["data"][key] = str(Path(data["data"][key]).absolute())
    return data


def check_store_has_rows(store: CampaignStore) -> None:
    """Refuse a refresh of a store without rows, naming the folder its relative path was read
    from: a nightly ``refresh --input`` run from another folder (cron runs in the home
    folder) made a new store of one day there and pretrained a global model on it.

    Raises
    ------
    TabTuneInputError
        The store has no brand with rows.
    """
    if store.brands():
        return
    where = "" if store.root.is_absolute() else f", read from the current folder {Path.cwd()}"
    raise TabTuneInputError(
        f"the campaign store {store.root}{where} holds no rows: a refresh adds a night to a "
        "store that `tabtune load` filled; fix: load the history first (tabtune load "
        "<export>), or run from the folder the config's relative paths mean (cron starts in "
        "the home folder; make the paths absolute); nothing was written"
    )


#: A run date more than this many days after the newest row (stored or given) is refused.
MAX_DAYS_PAST_DATA = 28
#: The same with the night's rows given (``--input``): a nightly file is the night's.
MAX_DAYS_PAST_INPUT = 7


def check_date_near_data(
    store: CampaignStore, day: dt.date, new_rows: pd.DataFrame | None, runs_dir: Path, task: str
) -> None:
    """Refuse a run date far after the newest row, the store's or the new rows', and after the
    task's finished nights (:data:`MAX_DAYS_PAST_DATA`, or :data:`MAX_DAYS_PAST_INPUT` with
    the night's rows given): a year typed wrong (2025 for 2024), or a day ten days ahead of
    the night's file, ran a night, and every correct night after it was refused as out of
    order. Nightly runs that went on while the rows stopped (a paused client) go on; a date
    whose run already exists is not refused (it resumes or reports).

    Raises
    ------
    TabTuneInputError
        Naming the date, the newest row and the fix.
    """
    if not store.brands() or run_started(runs_dir, day, task):
        return  # an empty store is refused by the session, with its own fix
    try:
        newest = store.date_range()[1].date()
    except (TabTuneInputError, OSError):  # a damaged brand file fails that brand alone, later
        return
    if new_rows is not None and "date" in new_rows and len(new_rows):
        given = pd.to_datetime(new_rows["date"], errors="coerce").max()
        newest = max(newest, given.date()) if pd.notna(given) else newest
    ran = [d for d, kind, _ in finished_runs(runs_dir) if kind == task and d < day]
    limit = MAX_DAYS_PAST_DATA if new_rows is None else MAX_DAYS_PAST_INPUT
    if (day - newest).days > limit and not (
        ran and (day - max(ran)).days <= limit
    ):  # nights that went on while the rows stopped (a paused client) go on
        raise TabTuneInputError(
            f"date={day} is {(day - newest).days} days after the newest row ({newest}, in the "
            "store and the rows given) and after every finished night: a mistyped date? A "
            f"night decides from the rows up to its date; fix: run the date the rows reach "
            f"(--date {newest}), or load the missing days first; nothing was done"
        )


def _select_brands(store: CampaignStore, date: dt.date, brands: Sequence[str] | None) -> list[str]:
    known = store.brands()
    if not known:
        check_store_has_rows(store)
    if brands is None:
        return [b for b in known if _has_rows_by(store, b, date)]
    wanted = list(dict.fromkeys(str(b) for b in brands))
    check_brands(wanted, known, store.root)
    return sorted(wanted)


def check_run_date(store: CampaignStore, day: dt.date, name: str) -> None:
    """Refuse a run date after the last day a campaign row may be dated (today plus
    ``TABTUNE_MAX_FUTURE_DAYS``, :func:`~tabtune.data.limits.latest_allowed_date`): a typo
    such as 2099 would otherwise write a run folder and decisions for that day.

    Raises
    ------
    TabTuneInputError
        Naming the date, the limit and the fix.
    """
    latest = latest_allowed_date(store.max_future_days)
    if day > latest:
        raise TabTuneInputError(
            f"{name}={day.isoformat()} is after {latest.isoformat()}, the last day campaign rows "
            "may be dated (today plus TABTUNE_MAX_FUTURE_DAYS): run the refresh for a day "
            "that has happened (usually the store's last day); nothing was done"
        )


def check_request(
    store: CampaignStore, brands: Sequence[str] | None, new_rows: pd.DataFrame | None
) -> None:
    """Check the brands asked for before anything is written (the new rows' brands count).

    Raises
    ------
    TabTuneInputError
        A brand id breaks the brand-id rule, or is neither in the store nor in ``new_rows``.
    """
    if brands is None:
        return
    if isinstance(brands, str):  # iterated as ['b', '0', '1'] (Python red-team)
        raise TabTuneInputError(
            f"brands={brands!r} is one string: pass a list of brand ids (brands=[{brands!r}])"
        )
    wanted = list(dict.fromkeys(str(b) for b in brands))
    if not wanted:  # an empty night reported 0 brands and 0 failures (Python red-team)
        raise TabTuneInputError(
            "brands names no brand: pass None to refresh every brand with rows, or the brands "
            "to refresh; nothing was done"
        )
    for brand in wanted:
        check_brand_id(brand, "brand")
    known = set(store.brands())
    if new_rows is not None and "brand_id" in new_rows:
        known |= {str(b) for b in new_rows["brand_id"].unique()}
    check_brands(wanted, sorted(known), store.root)


def _state_problem(
    state: dict[str, Any], date: dt.date, task: str, store_brands: Sequence[str], cfg: Config
) -> str | None:
    """Why a ``state.json`` does not belong to this run of this store and registry, or None."""
    if state.get("date") != date.isoformat():
        return f"it records the run of {state.get('date')}, not {date}"
    if state.get("task") != task:
        return f"it belongs to task {state.get('task')!r}, not {task!r}"
    reg = registry_for(cfg)
    global_id = str(state.get("global_model"))
    if not global_id.startswith(f"global/{task}/"):
        return f"its global model {global_id!r} is not a global model of task {task!r}"
    # A finished night's versions may since have been deleted by the retention policy.
    if not reg.was_published(global_id):
        return f"its global model {global_id} is not in the registry {reg.root}"
    unknown = sorted(set(state.get("brands", {})) - set(store_brands))
    if unknown:
        return f"it records brands the store does not have: {unknown[:5]}"
    for brand, record in state.get("brands", {}).items():
        for key in ("model_id", "champion_id", "challenger_id"):
            model_id = record.get(key)
            if model_id is None:
                continue
            if not reg.was_published(model_id):
                return f"brand {brand!r}: its {key} {model_id} is not in the registry {reg.root}"
    return None


def _missing_history_notes(
    cfg: Config, task: str, store_brands: Sequence[str], brands: Sequence[str] | None
) -> list[str]:
    """Notes on brands that have a champion of ``task`` but no rows in the store at all."""
    if brands is not None:
        return []
    try:
        rows = registry_for(cfg).list()
    except TabTuneInputError as exc:
        return [f"the registry could not be listed to look for brands without history: {exc}"]
    known = set(store_brands)
    notes = []
    for row in rows:
        if row["scope"] == "brand" and row["task"] == task and row["champion"]:
            if row["brand"] not in known:
                notes.append(
                    f"brand {row['brand']} has a champion ({row['id']}/{row['champion']}) but "
                    "no rows in the store: its history is missing; it was not refreshed and no "
                    "decisions were written for it. Restore its store folder (or retire the "
                    "brand's models)"
                )
    for note in notes:
        logger.warning("%s", note)
    return notes


def _no_rows_on_date_notes(
    store: CampaignStore, date: dt.date, run_dir: Path, task: str = "bid"
) -> list[str]:
    """A note when no stored row is dated ``date`` or later (the day's export was not
    loaded): the decisions for the next day re-date each brand's latest contexts."""
    try:
        latest = store.date_range()[1].date()
        # a backfill's night inside the store's days: is that very day there? (one read of
        # the date column, only then; a nightly run's newest day is its date)
        if latest > date and len(store.read(start=date, end=date, columns=["date"])):
            return []
    except Exception:  # noqa: BLE001 - a damaged partition fails in its own job, not here
        return []
    if latest == date:
        return []
    newest = (
        f"the newest are of {latest}" if latest < date else f"the store has days up to {latest}"
    )
    note = (
        f"no brand has rows dated {date} ({newest}): the day's export was "
        f"not loaded, so the decisions for {date + dt.timedelta(days=1)} re-date the contexts "
        f"of each brand's latest day. To redo the night with the day's rows: move {run_dir} "
        f"away, then `tabtune refresh --date {date}"
        + ("" if task == "bid" else f" --task {task}")
        + " --input FILE`"
    )
    logger.warning("%s", note)
    return [note]


def _has_rows_by(store: CampaignStore, brand: str, date: dt.date) -> bool:
    try:
        return store.date_range(brand)[0].date() <= date
    except Exception:  # noqa: BLE001 - a damaged partition fails in its own job, not the run
        return True


def _failure(brand: str, error: BaseException, contested: str | None = None) -> dict[str, Any]:
    """The record of a brand whose job died outside it (its latest contest carried)."""
    return BrandRecord(
        brand_id=brand,
        status="failed",
        reason=f"{type(error).__name__}: {error}",
        contested=contested,
    ).to_dict()


def _refresh_date(
    cfg: Config,
    date: dt.date,
    *,
    task: str,
    brands: Sequence[str] | None,
    executor: Executor,
    progress: ProgressFactory | None,
    notes: Sequence[str] = (),
    changed: pd.DataFrame | None = None,
) -> RunReport:
    """One date, with the lock held; ``notes`` (the session's append) go in its report;
    ``changed``: brand and day of the rows the session's append wrote (:func:`changed_keys`):
    brands an unfinished run already decided without them are done again."""
    run_dir = run_dir_for(cfg.runs_dir, date.isoformat(), task)
    state_path, report_path = run_dir / STATE_NAME, run_dir / REPORT_NAME
    store = store_for(cfg)
    selected = _select_brands(store, date, brands)
    state = load_state(state_path)
    if state is not None:
        problem = _state_problem(state, date, task, store.brands(), cfg)
        if problem is not None:
            raise TabTuneInputError(
                f"run state {state_path} does not belong to this run ({problem}); nothing was "
                "done. Move it away (or delete the run folder) to run the date again"
            )
    todo = pending_brands(state, selected)

    if state is not None and state.get("finished_at") and not todo:
        logger.info("refresh of %s (%s) already finished; nothing to do", date, task)
        _warn_unused(changed, date, task, run_dir)
        try:
            return RunReport.from_dict(json.loads(report_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            report = build_report(state)
            _write_report(cfg, run_dir, report)
            return report

    if state is None:
        state = _start_run(cfg, task, date, store, brands, notes)
        save_state(state_path, state)
    else:
        reg = registry_for(cfg)
        reg.verify(reg.from_id(state["global_model"]))  # the run's base must still be intact
        earlier = list(state.get("notes") or [])
        state = {
            **state,
            "finished_at": None,
            "attempt_started_at": _now(),
            "notes": earlier + [n for n in notes if n not in earlier],
        }
        state = _redo_changed_brands(state_path, state, changed, date, selected)
        todo = pending_brands(state, selected)
    cfg_data, contested = _worker_config(cfg), last_contests(cfg, task, date)
    gid, day, studies = state["global_model"], date.isoformat(), state.get("studies")
    jobs = {
        b: (cfg_data, task, b, day, gid, contested.get(b), brand_studies(studies, b)) for b in todo
    }
    with track(progress, f"refresh {task} {date}", len(jobs)) as update:
        for outcome in executor.run(refresh_brand, jobs):
            if outcome.error is not None and write_blocked(outcome.error):
                raise outcome.error  # a full disk: the night stops, resumable once space is freed
            data = (
                outcome.value
                if outcome.error is None
                else _failure(outcome.key, outcome.error, contested.get(outcome.key))
            )
            record = BrandRecord.from_dict(data)
            state = append_record(state_path, state, record)
            update(advance=1, status=f"{record.brand_id}: {record.status}")

    # The report goes first: a run killed between the two writes is finished again on rerun.
    finished = {**state, "finished_at": _now()}
    report = build_report(finished)
    _write_report(cfg, run_dir, report)
    save_state(state_path, finished)
    return report


def _warn_unused(changed: pd.DataFrame | None, date: dt.date, task: str, run_dir: Path) -> None:
    """Warn that rows just written up to a finished run's date are unused by it; how to redo."""
    unused = 0 if changed is None else int((changed["date"] <= pd.Timestamp(date)).sum())
    if unused:
        logger.warning(
            "the refresh of %s (%s) had already finished: the %d brand day(s) just written up "
            "to that day are stored, unused by its models and decisions (the nights from now on "
            "learn them); to decide %s again with them (when no later night has run), move %s out of "
            "the runs folder and rerun",
            date, task, unused, date + dt.timedelta(days=1), run_dir.absolute(),
        )  # fmt: skip


def _redo_changed_brands(
    state_path: Path,
    state: dict[str, Any],
    changed: pd.DataFrame | None,
    date: dt.date,
    selected: Sequence[str],
) -> dict[str, Any]:
    """The resumed ``state`` without the brands of this attempt an earlier one decided before
    their rows up to ``date`` changed (saved, with a note): they are done again with the rows."""
    recorded = list(state.get("brands", {}))
    redo = [] if changed is None else brands_to_redo(recorded, changed, date, selected)
    if not redo:
        return state
    note = (
        f"{len(redo)} brand(s) decided by an earlier attempt of this run before rows of theirs "
        f"up to {date} were written were done again: {', '.join(redo[:10])}"
        + (" ..." if len(redo) > 10 else "")
    )
    logger.warning("%s", note)
    kept = {b: r for b, r in state.get("brands", {}).items() if b not in redo}
    state = {**state, "brands": kept, "notes": [*state.get("notes", []), note]}
    save_state(state_path, state)
    return state


def last_contests(cfg: Config, task: str, date: dt.date) -> dict[str, str]:
    """Brand -> the date of its latest contest on the window (``contested``), from the
    newest run report of ``task`` before ``date`` that records one for the brand; only the
    reports of the ``refresh.contest_every_days`` days before ``date`` count, since an older
    contest is due again anyway (a brand without one contests tonight)."""
    since = date - dt.timedelta(days=cfg.refresh.contest_every_days)
    out: dict[str, str] = {}
    for report in earlier_reports(
        cfg.runs_dir, task, since=since.isoformat(), before=date.isoformat()
    ):
        for entry in report.get("brands", []):
            day, brand = entry.get("contested"), entry.get("brand_id")
            if isinstance(day, str) and isinstance(brand, str):
                out.setdefault(brand, day)
    return out


def _start_run(
    cfg: Config,
    task: str,
    date: dt.date,
    store: CampaignStore,
    brands: Sequence[str] | None,
    notes: Sequence[str],
) -> dict[str, Any]:
    """The state of a new run: tonight's global model (pretrained if needed) and the run's
    notes (brands without history, a day without rows, the session's)."""
    started = _now()
    gref, note, seconds = ensure_global(cfg, task, date)
    task_cfg = cfg.task(task)
    state = new_state(
        date,
        task,
        started_at=started,
        global_model=gref.id,
        global_note=note,
        metric=loss_name(score_objective(task_cfg.objective, task_cfg.kind)),
    )
    state["global_seconds"] = round(seconds, 3)
    # every brand's (a later attempt of the night may add brands: --brands split over cron lines)
    state["studies"] = tuning.adopted_adaptations(cfg, task)
    state["notes"] = (
        _missing_history_notes(cfg, task, store.brands(), brands)
        + _no_rows_on_date_notes(
            store, date, run_dir_for(cfg.runs_dir, date.isoformat(), task), task
        )
        + missing_day_notes(store, date, brands, task, cfg.runs_dir)
        + (unknown_target_brands_note(cfg.bids, store.brands()) if task == "bid" else [])
        + list(notes)
    )
    return state


def _write_report(cfg: Config, run_dir: Path, report: RunReport) -> None:
    data = report.to_dict()
    history = load_history(cfg.runs_dir, report.task, upto=report.date)
    history = [h for h in history if h.get("date") != report.date] + [data]
    write_report(run_dir, data, history=history)


@contextlib.contextmanager
def _refresh_session(
    cfg: Config,
    task: str,
    new_rows: pd.DataFrame | None,
    executor: Executor | str | None,
    days: Sequence[dt.date] = (),
) -> Iterator[tuple[Executor, list[str], pd.DataFrame | None]]:
    """Lock, append new rows, and provide the executor for the session's dates, with the
    notes the append leaves for the run reports (rows already stored with other values,
    finished runs that did not learn the rows written) and the brand and day of those rows
    (None without new rows)."""
    cfg.task(task)
    check_store_has_rows(store_for(cfg))  # before the lock: a refusal writes nothing
    with contextlib.ExitStack() as stack:
        try:
            # held exclusively, it marks this thread: its own pretraining passes
            stack.enter_context(registry_for(cfg).lock(LOCK_NAME, timeout=0))
        except RegistryLockedError as exc:
            raise RegistryLockedError(
                "another refresh is running, or a command that writes models, rows or "
                f"decisions (pretrain, finetune, bids, budget, load, synth); refused: {exc}"
            ) from None
        champion = registry_for(cfg).resolve(task)  # one pretrained for another task: refused
        if champion is not None:
            check_global_definition(cfg, task, champion)  # before the append writes
        if isinstance(executor, Executor):
            ex = executor
        else:  # created before the append, so a missing Dask is refused before any write
            r = cfg.refresh
            ex = stack.enter_context(
                make_executor(executor or r.executor, n_workers=r.n_workers, scheduler=r.scheduler)
            )
        notes: list[str] = []
        changed = None
        if new_rows is not None:
            store = store_for(cfg)
            refuse_clock_times(new_rows, cfg.data)  # as `refresh --input` refuses a file
            rows = validate_campaigns(
                new_rows,
                extra_columns=cfg.data.extra_columns,
                max_future_days=store.max_future_days,
            )
            # what `tabtune load` refuses or notes beside the store (brand ids spelled as
            # stored ones in another case or spacing, ...), before anything is written
            notes += check_against_store(store, rows, cfg.data)
            refuse_rows_before_history(store, rows)
            if days:
                refuse_rows_after_the_run(rows, max(days))
                check_input_has_the_day(store, days, rows, Path(cfg.runs_dir), task)
            restated = rows[stored_differently(store, rows)]
            replace = cfg.data.restated_rows == "replace"
            if len(restated) and replace:
                check_restated(store, restated)  # refused before the append writes
            changed = changed_keys(rows[~store.already_stored(rows)], restated if replace else None)
            result = store.append(rows, extra_columns=cfg.data.extra_columns, on_existing="skip")
            logger.info(
                "appended %d new rows (%d already stored)", result.rows_written, result.rows_skipped
            )
            notes += _warn_restated(cfg, restated)
            notes += stale_runs_note(cfg.runs_dir, changed, days)
        yield ex, notes, changed


def _warn_restated(cfg: Config, restated: pd.DataFrame) -> list[str]:
    """The new rows the store held with other values (validated, found before the append):
    kept (a warning) or, with ``data.restated_rows: replace``, written over the stored values
    (a note); the message, also for the run's report (empty: none)."""
    if not len(restated):
        return []
    if cfg.data.restated_rows == "replace":
        done = replace_restated(store_for(cfg), restated)
        if not done.rows_replaced:
            return []
        days = "; ".join(f"{b}: {', '.join(d)}" for b, d in done.days.items())
        message = (
            f"{done.rows_replaced} stored row(s) replaced by the new rows' values ({days}; "
            "data.restated_rows: replace)"
        )
        logger.info("%s", message)
        return [message]
    days = "; ".join(f"{b}: {', '.join(d)}" for b, d in restated_days(restated).items())
    message = (
        f"{len(restated)} new row(s) were already stored with other values ({days}); the "
        "stored values were kept (data.restated_rows: keep): set data.restated_rows: replace "
        "to take them (unless they are another source's rows with the same channel name: "
        "give those a channel of their own)"
    )
    logger.warning("%s", message)
    return [message]


def input_date_notes(new_rows: pd.DataFrame | None, last: dt.date) -> list[str]:
    """A note (also logged) when new rows are dated after the last run date: they are
    appended, and count from the refresh of their own date; a partial day appended early is
    kept as it was when its complete export comes (see `tabtune load`)."""
    if new_rows is None or TIME_COLUMN not in new_rows or not len(new_rows):
        return []
    dates = pd.to_datetime(new_rows[TIME_COLUMN], errors="coerce")
    after = dates > pd.Timestamp(last)
    if not after.any():
        return []
    message = (
        f"the new rows hold {int(after.sum())} row(s) dated after the run date {last} (from "
        f"{dates[after].min().date()} to {dates[after].max().date()}): they were appended and "
        "count from the refresh of their date; if a day among them was not complete, its later "
        "export will not replace it"
    )
    logger.warning("%s", message)
    return [message]


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
    """Run the nightly refresh of one task for one date (see :mod:`tabtune.refresh`).

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
        Bad date, unknown task or brand, bad new rows, empty store (all checked before
        anything is written), or a ``state.json`` of another date, task, store or registry.
    """
    day = parse_date(date)
    cfg.task(task)
    check_run_date(store_for(cfg), day, "date")
    check_run_order(cfg.runs_dir, task, [day])
    check_request(store_for(cfg), brands, new_rows)
    check_date_near_data(store_for(cfg), day, new_rows, Path(cfg.runs_dir), task)
    with _refresh_session(cfg, task, new_rows, executor, [day]) as (ex, notes, changed):
        notes += input_date_notes(new_rows, day) + input_without_the_day_note(
            new_rows, changed, day
        )
        notes += unfinished_runs_note(cfg.runs_dir, task, day)
        report = _refresh_date(
            cfg, day, task=task, brands=brands, executor=ex, progress=progress, notes=notes,
            changed=changed,
        )  # fmt: skip
        _collect_garbage(cfg)
        return report


def _collect_garbage(cfg: Config) -> None:
    """The retention policy at the end of a night (``registry.gc_after_refresh``); a failure
    is logged, never fails the night (the next one tries again)."""
    if not cfg.registry.gc_after_refresh:
        return
    try:
        result = registry_for(cfg).gc(cfg.registry.keep_versions)
    except (OSError, ModelIntegrityError, TabTuneInputError) as exc:
        logger.warning("registry garbage collection failed, nothing lost: %s", exc)
        return
    if result.deleted:
        logger.info(
            "retention: deleted %d old versions (%d bytes)",
            len(result.deleted),
            result.freed_bytes,
        )


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
    input_notes: Sequence[str] = (),
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
    input_notes : sequence of str
        What preparing ``new_rows`` from an export noted (policies applied, rows skipped):
        kept in the first night's report with the append's own notes.

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
    cfg.task(task)
    check_run_date(store_for(cfg), last, "to")
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    check_run_order(cfg.runs_dir, task, days)
    check_request(store_for(cfg), brands, new_rows)
    check_date_near_data(store_for(cfg), last, new_rows, Path(cfg.runs_dir), task)
    reports = []
    with _refresh_session(cfg, task, new_rows, executor, days) as (ex, notes, changed):
        notes[:0] = list(input_notes)  # a cron log is lost: the report keeps them
        notes += input_date_notes(new_rows, last) + unfinished_runs_note(cfg.runs_dir, task, first)
        if first == last:  # the command line's --date D
            notes += input_without_the_day_note(new_rows, changed, last)
        day = first
        while day <= last:
            # the append's notes go in the first night that runs (every night repeated them)
            report = _refresh_date(
                cfg, day, task=task, brands=brands, executor=ex, progress=progress, notes=notes,
                changed=changed,
            )  # fmt: skip
            if all(n in report.notes for n in notes):
                notes = []
            reports.append(report)
            _collect_garbage(cfg)
            if on_report is not None:
                on_report(report)
            day += dt.timedelta(days=1)
    return reports
