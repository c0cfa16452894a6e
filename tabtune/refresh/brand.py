"""One brand of a refresh: the per-brand job the executors run (:func:`refresh_brand`).

Wires the steps for one brand and one date: load its rows, serve a cold start with the global
model's trees and the brand's offsets, or build, score and decide on a challenger (resuming an
interrupted attempt, keeping an unchanged champion), then write the outputs. Everything is recorded in a
:class:`~tabtune.refresh.state.BrandRecord`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tabtune.atomic import write_blocked
from tabtune.config import Config, TaskConfig
from tabtune.errors import ModelIntegrityError
from tabtune.features import TIME_COLUMN, TaskData, model_features, target_requirement
from tabtune.pipeline import champion_change, load_model, registry_for, store_for
from tabtune.refresh.challenger import (
    NIGHT_STUDIES,
    build_challenger,
    load_brand,
    tuned_adaptation,
    usable_rows,
)
from tabtune.refresh.day_checks import day_notes
from tabtune.refresh.decisions import write_decisions
from tabtune.refresh.promotion import (
    Challenge,
    challenge,
    decide_promotion,
    evaluate,
    find_run_challenger,
    holdout_mask,
    publish_challenger,
    same_recipe_decision,
)
from tabtune.refresh.state import BrandRecord, Decision, parse_date

if TYPE_CHECKING:  # pragma: no cover
    from tabtune.registry import ModelRef, ModelRegistry

__all__ = ["STALE_DAYS", "adaptation_error", "refresh_brand"]

logger = logging.getLogger("tabtune.refresh")


#: Models loaded by this process, least recently used first (a worker's cache).
_MODEL_CACHE: OrderedDict[tuple[str, str], Any] = OrderedDict()
#: Models a worker keeps loaded.
MODEL_CACHE_SIZE = 8


def _load_version(cfg: Config, task: TaskConfig, model_id: str) -> Any:
    """A registry model, from this process's cache of the :data:`MODEL_CACHE_SIZE` most
    recently used. The global model, used by every brand, stays loaded: the cache used to be
    cleared whole when full, so a worker re-read the global model every few brands, and that
    read grows with the store's brands (its brand-context table)."""
    key = (str(Path(cfg.models_dir).absolute()), model_id)
    if key in _MODEL_CACHE:
        _MODEL_CACHE.move_to_end(key)
        return _MODEL_CACHE[key]
    model = load_model(registry_for(cfg).from_id(model_id), task)
    _MODEL_CACHE[key] = model
    while len(_MODEL_CACHE) > MODEL_CACHE_SIZE:
        _MODEL_CACHE.popitem(last=False)
    return model


def _current_champion(
    registry: ModelRegistry, task_cfg: TaskConfig, brand: str, backend: str | None = None
) -> tuple[ModelRef | None, list[str]]:
    """The brand's verified champion (or a fallback), with notes on what was wrong; none when
    it was adapted for another definition of the task (it learnt another target) or, given
    ``backend``, from a global model of another backend (after a switch to XGBoost, a
    LightGBM champion's choice could not be refitted, and it served for good; refresh
    red-team)."""
    task, notes = task_cfg.name, []
    try:
        pointed = registry.champion(task, brand)
    except ModelIntegrityError as exc:
        pointed, notes = None, [f"champion pointer is broken: {exc}"]
    ref = registry.resolve(task, brand)
    change = None if ref is None else champion_change(registry, ref, task_cfg, backend)
    if ref is not None and change is not None:
        notes.append(
            f"champion {ref.id} was adapted for another definition of the task or backend "
            f"({change}); compared as if the brand had none"
        )
        return None, notes
    if ref is not None and ref.fallback_from:
        scope = ref.id.rsplit("/", 1)[0]
        notes.append(
            f"champion {scope}/{ref.fallback_from} failed verification; the previous version "
            f"{ref.id} is used"
        )
    elif ref is None and pointed is not None:
        notes.append(
            f"champion {pointed.id} failed verification, and the version it replaced was the "
            "global model or no longer verifies; compared with the global model"
        )
    return ref, notes


@contextlib.contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = round(timings.get(step, 0.0) + time.perf_counter() - t0, 4)


@dataclass(frozen=True)
class _Night:
    """What every step of one brand's night shares: the configuration and task, the run date,
    tonight's global model (its registry id and the loaded estimator), the brand's usable rows,
    their evaluation window (:func:`~tabtune.refresh.promotion.holdout_mask`) and the
    registry."""

    cfg: Config
    task: TaskConfig
    date: dt.date
    global_id: str
    glob: Any
    data: TaskData
    mask: np.ndarray
    registry: ModelRegistry
    #: The brand's latest contest on the window before tonight (the run's last report).
    last_contest: dt.date | None = None


def refresh_brand(
    cfg_data: Mapping[str, Any],
    task_name: str,
    brand: str,
    date: str,
    global_id: str,
    last_contest: str | None = None,
    studies: Mapping[str, Mapping[str, Any]] | None = None,
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
    last_contest : str, optional
        The date of the brand's latest contest on the window (``contested`` in the last run's
        report): a brand repeating a choice that lost contests again
        ``refresh.contest_every_days`` after it.
    studies : mapping, optional
        The adopted adaptation parameters the night read when it started (scope -> them,
        :func:`~tabtune.tuning.adopted_adaptations`): a study finished mid-night does not
        change them. None: the studies are read.

    Returns
    -------
    dict
        A :class:`BrandRecord` as a dict.
    """
    t_start = time.perf_counter()
    rec = BrandRecord(brand_id=brand, contested=_iso_date_or_none(last_contest))
    token = NIGHT_STUDIES.set(studies)
    try:
        _refresh_brand(
            Config.model_validate(dict(cfg_data)), task_name, parse_date(date), global_id, rec
        )
    except Exception as exc:  # noqa: BLE001 - failure isolation: one brand's error is recorded
        if write_blocked(exc):  # a full disk is no brand's failure: the night stops
            raise
        logger.warning(
            "brand %s failed: %s", brand, exc, exc_info=logger.isEnabledFor(logging.DEBUG)
        )
        error = f"{type(exc).__name__}: {exc}"
        if rec.status == "promoted":  # the champion moved before the failure (executors red-team)
            error += (
                f" (after {rec.model_id} was promoted: it is the brand's champion now; rerun "
                "the date to write its decisions)"
            )
        rec.status, rec.reason = "failed", error
    finally:
        NIGHT_STUDIES.reset(token)
    rec.seconds = round(time.perf_counter() - t_start, 4)
    return rec.to_dict()


def _iso_date_or_none(value: Any) -> str | None:
    """``value`` when it is a ``YYYY-MM-DD`` date (a report edited by hand may hold anything)."""
    try:
        return dt.date.fromisoformat(value).isoformat() if isinstance(value, str) else None
    except ValueError:
        return None


def _refresh_brand(
    cfg: Config, task_name: str, date: dt.date, global_id: str, rec: BrandRecord
) -> None:
    """The wiring of one brand; fills ``rec`` as it goes (so a failure keeps what was known)."""
    task = cfg.task(task_name)
    registry = registry_for(cfg)
    brand, t = rec.brand_id, rec.timings

    with _timed(t, "load"):
        rows = load_brand(store_for(cfg), brand, date)
        if len(rows) == 0:
            rec.status, rec.reason = "skipped", f"no rows up to {date}"
            return
        rec.notes.extend(_stale_note(rows, date) + day_notes(rows, date))
        glob = _load_version(cfg, task, global_id)
        data = usable_rows(rows, task, model_features(glob))
        rec.notes.extend(data.notices)
        rec.rows = len(data)
        mask = holdout_mask(data.X[TIME_COLUMN], cfg.adaptation.validation_fraction)
    last = None if rec.contested is None else dt.date.fromisoformat(rec.contested)
    night = _Night(cfg, task, date, global_id, glob, data, mask, registry, last)

    shrunk = _shrunk_history_champion(registry, task, rec, cfg.backend)
    if rec.rows == 0:
        _serve_without_target(night, rec)
    elif shrunk is not None:
        _keep_champion_of_shrunk_history(night, shrunk, rec)
    elif rec.rows < (min_rows := _min_rows_to_adapt(cfg, task, rec)):
        with _timed(t, "evaluate"):
            rec.scores = {
                "champion": None,
                "challenger": None,
                **evaluate({"global": glob}, data, mask, kind=task.kind, objective=task.objective),
            }
        try:
            _serve_small_brand(night, rec, min_rows)
        except Exception as exc:
            if not adaptation_error(exc):
                raise
            _serve_fallback(night, rec, exc)
    else:
        try:
            _adapt_and_decide(night, rec)
        except Exception as exc:
            if not adaptation_error(exc):
                raise  # an internal error: the brand fails (retried on the next run)
            _serve_fallback(night, rec, exc)

    assert rec.model_id is not None  # every branch above chose the serving model
    with _timed(t, "write"):
        serving = glob if rec.served_by == "global" else _load_version(cfg, task, rec.model_id)
        rec.outputs, notes = write_decisions(cfg, task, brand, date, serving, rec.model_id, rows)
        rec.notes.extend(notes)


#: A brand whose latest row is this many days or more before the run date is noted as stale.
STALE_DAYS = 7


def _stale_note(rows: pd.DataFrame, date: dt.date) -> list[str]:
    """A note when the brand's latest row is :data:`STALE_DAYS` or more days before the run
    date: its decisions re-date that day's contexts, which may no longer run."""
    last = pd.to_datetime(rows[TIME_COLUMN]).max().date()
    days = (date - last).days
    if days < STALE_DAYS:
        return []
    return [
        f"no rows since {last} ({days} days before {date}): tomorrow's decisions re-date the "
        f"contexts of {last}; load its recent rows, or leave it out of the refresh (--brands)"
    ]


def _serve_without_target(night: _Night, rec: BrandRecord) -> None:
    """A brand without a row whose target is usable (e.g. no click for value per click): its
    champion (else the global model) serves it, with the reason; nothing is fitted."""
    rule = target_requirement(night.task) or f"a {night.task.target.numerator}"
    champ_ref, notes = _current_champion(
        night.registry, night.task, rec.brand_id, night.cfg.backend
    )
    rec.notes.extend(notes)
    if champ_ref is None:
        rec.status, rec.served_by, rec.model_id = "cold_start", "global", night.global_id
        who = f"the global model {night.global_id}"
    else:
        rec.status, rec.served_by = "kept", "champion"
        rec.model_id = rec.champion_id = champ_ref.id
        who = f"its champion {champ_ref.id}"
    rec.reason = f"no row with a usable target (it needs {rule}); served by {who}"


def _serve_small_brand(night: _Night, rec: BrandRecord, min_rows: int) -> None:
    """A brand under ``min_rows_to_adapt`` (``min_rows``, a ``cold_start``): the global model's trees serve
    it, no new trees, conditioned on the brand's context and level offset (and its segment
    offsets where its folds show them), exactly as the estimator's ``fit`` serves it from
    Python (:func:`~tabtune.refresh.challenger.build_challenger`). That model is published and
    promoted as the brand's version, so ``tabtune predict`` and ``tabtune bids`` serve the
    same. A rerun of the date finds the version it published instead of publishing again; a
    champion that already learnt from every row keeps serving (``skipped``). Its choice is
    recorded with ``small: true``: a later contest refits it on the rows before the window
    (scored out of time), and it is never repeated instead of choosing again."""
    champ_ref, notes = _current_champion(
        night.registry, night.task, rec.brand_id, night.cfg.backend
    )
    rec.notes.extend(notes)
    earlier = find_run_challenger(
        night.registry, night.task.name, rec.brand_id, night.date, night.global_id, night.data
    )
    if earlier is not None:  # published by an interrupted attempt of this run
        ref, manifest = earlier
        rec.champion_id = manifest["refresh"].get("champion_before")
        rec.strategy = manifest.get("strategy")
        rec.scores = dict(manifest["refresh"].get("scores") or rec.scores)
    elif champ_ref is not None and _nothing_new(
        night.registry.manifest(champ_ref), night.data, night.global_id
    ):
        _keep_unchanged_champion(night, champ_ref, rec)
        return
    else:
        rec.champion_id = None if champ_ref is None else champ_ref.id
        with _timed(rec.timings, "train"):
            # no previous choice to repeat: the brand chooses
            est = build_challenger(night.cfg, night.task, night.glob, night.data, date=night.date)
            est.selection_["small"] = True
        with _timed(rec.timings, "evaluate"):
            window = evaluate(
                {"challenger": est},
                night.data,
                night.mask,
                kind=night.task.kind,
                objective=night.task.objective,
            )
            rec.scores["challenger"] = window["challenger"]
        with _timed(rec.timings, "train"):
            ref = publish_challenger(
                night.registry,
                night.task,
                rec.brand_id,
                est,
                night.data,
                date=night.date,
                global_id=night.global_id,
                champion_id=rec.champion_id,
                scores=rec.scores,
                notes=[SMALL_IN_SAMPLE_NOTE],
            )
        rec.strategy = str(est.strategy_)
    night.registry.promote(ref)
    rec.notes.append(SMALL_IN_SAMPLE_NOTE)
    extra = " and segment offsets" if rec.strategy == "segments" else ""
    rec.status, rec.served_by = "cold_start", "challenger"
    rec.model_id = rec.challenger_id = ref.id
    rec.reason = (
        f"{rec.rows} usable rows < min_rows_to_adapt={min_rows}; served by the global model's "
        f"trees with the brand's context, level offset{extra} (no new trees)"
    )


#: Why a cold-start brand's challenger score is not out of time.
SMALL_IN_SAMPLE_NOTE = (
    "cold start: the challenger (the global model's trees with the brand's offsets) learnt "
    "from every row, the window's too, so its score there is in sample"
)


def _min_rows_to_adapt(cfg: Config, task: TaskConfig, rec: BrandRecord) -> int:
    """The brand's ``min_rows_to_adapt``: its tuned value where a study has one, as the
    estimator that adapts it uses (:func:`~tabtune.refresh.challenger.tuned_adaptation`)."""
    return tuned_adaptation(cfg, task, rec.brand_id, rec.rows)[0].adaptation.min_rows_to_adapt


#: Modules whose errors mean "this brand's data cannot be fitted tonight" (e.g. LightGBM's
#: Tweedie objective on a brand whose labels are all zero), not a bug of tabtune.
_FIT_ERROR_MODULES = ("lightgbm", "xgboost", "catboost", "sklearn", "optuna")


def adaptation_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the brand's data cannot be adapted (rather than a bug).

    A value or arithmetic error, or an error of a boosting library, is the data's; anything
    else (a type error, a missing key, an I/O error) is an internal error.
    """
    module = type(exc).__module__ or ""
    return isinstance(exc, ValueError | ArithmeticError) or module.startswith(_FIT_ERROR_MODULES)


def _serve_fallback(night: _Night, rec: BrandRecord, exc: Exception) -> None:
    """The brand's data cannot be adapted: its champion (else the global model: also when
    the champion does not load) serves it tonight, as ``kept`` (champion) or ``cold_start``
    (global model), with the reason and a note; its decisions are written from that model."""
    error = f"{type(exc).__name__}: {exc}"
    logger.warning("brand %s: adapting failed (%s); serving a fallback", rec.brand_id, error)
    global_id = night.global_id
    try:
        champ_ref, _ = _current_champion(
            night.registry, night.task, rec.brand_id, night.cfg.backend
        )
        if champ_ref is not None:
            _load_version(night.cfg, night.task, champ_ref.id)  # serves only if it loads
    except Exception:  # noqa: BLE001 - the fallback of the fallback is the global model
        champ_ref = None
    if champ_ref is not None:
        rec.served_by, rec.model_id, rec.champion_id = "champion", champ_ref.id, champ_ref.id
        fallback, status = f"its champion {champ_ref.id}", "kept"
    else:
        rec.served_by, rec.model_id = "global", global_id
        fallback, status = f"the global model {global_id}", "cold_start"
    rec.status = status
    rec.reason = f"could not be adapted tonight ({error}); served by {fallback}"
    rec.notes.append(f"adaptation failed ({error}); served by {fallback}")


def _shrunk_history_champion(
    registry: ModelRegistry, task: TaskConfig, rec: BrandRecord, backend: str | None = None
) -> ModelRef | None:
    """The brand's champion when it was trained on more rows than the store now has.

    Appends never remove rows, so a brand with fewer rows than its champion saw has lost
    history (a file deleted or moved); it must not silently become a cold start.
    """
    try:
        champ_ref, _ = _current_champion(registry, task, rec.brand_id, backend)
        if champ_ref is None:
            return None
        trained_on = registry.manifest(champ_ref).get("rows")
    except Exception:  # noqa: BLE001 - judged again (and reported) by the normal path
        return None
    if isinstance(trained_on, int) and trained_on > rec.rows:
        return champ_ref
    return None


def _keep_champion_of_shrunk_history(night: _Night, champ_ref: ModelRef, rec: BrandRecord) -> None:
    """The store lost part of the brand's history: its champion keeps serving, reported."""
    _keep_unchanged_champion(night, champ_ref, rec)
    trained_on = night.registry.manifest(champ_ref).get("rows")
    rec.status = "kept"
    rec.reason = (
        f"the store has {rec.rows} usable rows of this brand but its champion {champ_ref.id} "
        f"was trained on {trained_on}: history is missing from the store; the champion keeps "
        "serving"
    )
    rec.notes.append(
        f"store history shrank from {trained_on} to {rec.rows} rows: restore the brand's "
        "store files (tabtune check / validate name damaged ones); not adapted until then"
    )


def _newest_challenger(registry: ModelRegistry, task: str, brand: str) -> Mapping[str, Any] | None:
    """The manifest of the brand's newest published version (a challenger the global model
    kept out), or None when there is none or it does not read."""
    versions = registry.versions(task, brand)
    if not versions:
        return None
    try:
        return registry.manifest(versions[-1])
    except ModelIntegrityError:
        return None


def _loaded_champion(
    night: _Night, champ_ref: ModelRef | None, rec: BrandRecord
) -> tuple[Any, ModelRef | None]:
    """The champion and its ref; (None, None) when it does not load (its own files verify,
    but the global model it is a delta on was damaged): the brand then contests tonight as a
    brand without a champion, instead of failing every night (registry red-team)."""
    if champ_ref is None:
        return None, None
    try:
        return _load_version(night.cfg, night.task, champ_ref.id), champ_ref
    except ModelIntegrityError as exc:
        rec.notes.append(
            f"its champion {champ_ref.id} cannot be loaded ({exc}): it contests tonight as a "
            "brand without one (the global model serves unless the challenger wins)"
        )
        return None, None


def _adapt_and_decide(night: _Night, rec: BrandRecord) -> None:
    """A brand with enough rows: build (or find again) the challenger, decide, fill ``rec``."""
    brand, t = rec.brand_id, rec.timings
    champ_ref, notes = _current_champion(night.registry, night.task, brand, night.cfg.backend)
    rec.notes.extend(notes)
    earlier = find_run_challenger(
        night.registry, night.task.name, brand, night.date, night.global_id, night.data
    )
    result, chall_ref = None, None
    if earlier is not None:
        chall_ref, champ_ref, same = _resumed(night.registry, earlier, rec)
        contested = bool(earlier[1]["refresh"].get("contested"))
    else:
        if champ_ref is not None and _nothing_new(
            night.registry.manifest(champ_ref), night.data, night.global_id
        ):
            _keep_unchanged_champion(night, champ_ref, rec)
            return
        with _timed(t, "train"):
            champion, loaded_ref = _loaded_champion(night, champ_ref, rec)
            lost = champ_ref is not None and loaded_ref is None  # it does not load
            champ_ref = loaded_ref
            result = challenge(
                night.cfg,
                night.task,
                night.glob,
                night.data,
                night.mask,
                date=night.date,
                global_id=night.global_id,
                champion=champion,
                champion_manifest=None if champ_ref is None else night.registry.manifest(champ_ref),
                load_model_id=lambda model_id: _load_version(night.cfg, night.task, model_id),
                previous_choice=_newest_challenger(night.registry, night.task.name, brand),
                defer_final=True,
                # a champion that fails verification (or does not load): contest tonight,
                # not after refresh.contest_every_days (registry red-team)
                last_contest=None if (notes or lost) else night.last_contest,
                # a stand-in for a champion that failed verification: replaced tonight
                refit_now=champ_ref is not None and bool(notes),
            )
            rec.scores, same, contested = result.scores, result.same_recipe, result.contested
            rec.notes.extend(result.notes)
        rec.strategy = str(result.selection.get("strategy"))
    rec.champion_id = None if champ_ref is None else champ_ref.id

    with _timed(t, "evaluate"):
        quiet = None if result is None else (result.no_contest or result.no_refit)
        if quiet is not None:
            decision = Decision("kept", False, quiet)
        elif same and champ_ref is not None:
            decision = same_recipe_decision(rec.scores, rec.strategy)
        else:
            decision = decide_promotion(rec.scores, night.cfg.refresh.promotion_margin)
    rec.status, rec.reason = decision.status, decision.reason
    if champ_ref is None and (result is None or result.no_contest is None):
        rec.reason += " (no brand champion yet: the champion is the global model)"
    chosen_tonight = (
        result is not None
        and result.repeatable
        and result.selection.get("date") == night.date.isoformat()
    )
    if result is not None and (decision.promote or chosen_tonight):
        # A challenger kept out is fitted on every row and published only when its choice was
        # made tonight and later nights may repeat it (from its manifest); otherwise it would
        # never serve, and its choice and scores are in this record.
        with _timed(t, "train"):
            chall_ref = _publish(night, result, rec)
    rec.challenger_id = None if chall_ref is None else chall_ref.id
    if decision.promote:
        assert chall_ref is not None  # published above, or by the attempt resumed
        night.registry.promote(chall_ref)
        rec.served_by, rec.model_id = "challenger", chall_ref.id
    elif champ_ref is None:
        rec.served_by, rec.model_id = "global", night.global_id
    else:
        rec.served_by, rec.model_id = "champion", champ_ref.id
    if contested:  # carried out: a failure before this line contests again next night
        rec.contested = night.date.isoformat()


def _publish(night: _Night, result: Challenge, rec: BrandRecord) -> ModelRef:
    """Tonight's challenger, fitted on every row if not yet, published unpromoted."""
    return publish_challenger(
        night.registry,
        night.task,
        rec.brand_id,
        result.final(),
        night.data,
        date=night.date,
        global_id=night.global_id,
        champion_id=rec.champion_id,
        scores=result.scores,
        same_recipe=result.same_recipe,
        notes=result.notes,
        prequential=result.prequential,
        contested=result.contested,
    )


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


def _keep_unchanged_champion(night: _Night, champ_ref: ModelRef, rec: BrandRecord) -> None:
    """No new rows since the champion was trained: it keeps serving (scored for the report)."""
    task = night.task
    champ = _load_version(night.cfg, task, champ_ref.id)
    with _timed(rec.timings, "evaluate"):
        rec.scores = {
            "challenger": None,
            **evaluate(
                {"champion": champ, "global": night.glob},
                night.data,
                night.mask,
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
