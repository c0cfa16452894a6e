"""The refresh's run records and run state: what a run did and where it stands.

:class:`BrandRecord` (one brand), :class:`RunReport` (one date, ``runs/<D>/report.json``) and
:class:`Decision` (one promotion); the run state ``runs/<D>/state.json`` (:func:`new_state`,
:func:`record_brand`, :func:`pending_brands`), read and replaced atomically
(:func:`load_state`, :func:`save_state`), and the report built from it (:func:`build_report`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tabtune.atomic import atomic_write_bytes
from tabtune.errors import TabTuneInputError
from tabtune.report import IN_SAMPLE_STATUSES, JOURNAL_NAME, replay_journal, run_dir_for

__all__ = [
    "DONE_STATUSES",
    "REPORT_NAME",
    "STATE_FORMAT",
    "JOURNAL_NAME",
    "STATE_NAME",
    "run_started",
    "STATUSES",
    "STEPS",
    "BrandRecord",
    "Decision",
    "RunReport",
    "append_record",
    "build_report",
    "finite_or_none",
    "load_state",
    "new_state",
    "parse_date",
    "pending_brands",
    "record_brand",
    "replay_journal",
    "save_state",
    "state_problem",
]


STATUSES = ("promoted", "kept", "cold_start", "skipped", "failed")
#: Statuses that end a brand's work for a date; ``failed`` brands are retried on a rerun.
DONE_STATUSES = frozenset({"promoted", "kept", "cold_start", "skipped"})
STATE_FORMAT = 1
STATE_NAME = "state.json"
REPORT_NAME = "report.json"
#: The timed steps of a brand (:attr:`BrandRecord.timings`).
STEPS = ("load", "train", "evaluate", "write")


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
        The task's own loss (the run's ``metric``) of ``champion``, ``challenger`` and ``global``
        on the brand's newest days, out of time (see :func:`tabtune.refresh.challenge`;
        ``None`` where not computed). Without a brand champion, the champion is the global
        model.
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
    contested : str or None
        The date of the brand's latest contest on the window (tonight's when it contested),
        carried from night to night: a brand repeating a choice that lost contests again
        ``refresh.contest_every_days`` after it.
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
    contested: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (non-finite scores become ``None``)."""
        data = asdict(self)
        data["scores"] = {k: finite_or_none(v) for k, v in self.scores.items()}
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
    #: The loss the brands' scores are in (e.g. "tweedie deviance"); None in older reports.
    metric: str | None = None

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


def new_state(
    date: dt.date,
    task: str,
    *,
    started_at: str,
    global_model: str,
    global_note: str = "",
    metric: str | None = None,
) -> dict[str, Any]:
    """The state of a run that has not done any brand yet (``metric``: the scores' loss)."""
    return {
        "metric": metric,
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
        if r.status in IN_SAMPLE_STATUSES:
            continue  # its score on the window is in sample (it learnt from those rows)
        served = r.scores.get(r.served_by or "") if r.served_by else None
        base = r.scores.get("global")
        if served is not None and base:
            uplifts.append((base - served) / base)
    timings = {step: round(sum(r.timings.get(step, 0.0) for r in records), 3) for step in STEPS}
    timings["pretrain"] = round(float(state.get("global_seconds", 0.0)), 3)
    started, finished = state["started_at"], state.get("finished_at")
    # A resumed run's wall time is its last attempt's: the time since a killed attempt
    # started includes however long the run lay stopped.
    attempt = state.get("attempt_started_at") or started
    if attempt and finished:
        timings["wall"] = round(
            (
                dt.datetime.fromisoformat(finished) - dt.datetime.fromisoformat(attempt)
            ).total_seconds(),
            3,
        )
    summary = {
        "brands": len(records),
        **counts,
        "served_by_brand_model": sum(  # a failed brand served nothing tonight
            1
            for r in records
            if r.status != "failed" and r.model_id and r.model_id.startswith("brands/")
        ),
        "median_uplift_vs_global": float(np.median(uplifts)) if uplifts else None,
    }
    notes = [state["global_note"]] if state.get("global_note") else []
    notes += [str(n) for n in state.get("notes") or []]
    if state.get("attempt_started_at") and state["attempt_started_at"] != started:
        notes.append(
            f"resumed at {state['attempt_started_at']} (started {started}): the wall time "
            "counts the last attempt; the brands' timings count every attempt's brands"
        )
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
        metric=state.get("metric"),
    )


def load_state(path: Path) -> dict[str, Any] | None:
    """Read ``state.json`` with its journal (:func:`replay_journal`); ``None`` when the run
    never started.

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
    data = replay_journal(Path(path), data)
    problem = state_problem(data)
    if problem is not None:
        raise TabTuneInputError(
            f"run state {path} is damaged ({problem}); move it away to start the date over"
        )
    return data


def state_problem(state: Mapping[str, Any]) -> str | None:
    """What is wrong with the shape of a parsed ``state.json``, or None.

    Parameters
    ----------
    state : mapping
        The parsed file.

    Returns
    -------
    str or None
        E.g. ``"'global_model' is not a string"``.
    """
    for key in ("date", "task", "started_at", "global_model"):
        if not isinstance(state.get(key), str):
            return f"{key!r} is not a string"
    try:
        dt.date.fromisoformat(state["date"])
    except ValueError:
        return "'date' is not YYYY-MM-DD"
    brands = state.get("brands")
    if not isinstance(brands, dict):
        return "'brands' is not an object"
    for brand, record in brands.items():
        if not isinstance(record, dict) or record.get("brand_id") != brand:
            return f"the record of brand {str(brand)[:40]!r} does not name that brand"
        if record.get("status") not in STATUSES:
            return f"brand {brand!r} has status {record.get('status')!r}, not one of {STATUSES}"
        scores = record.get("scores") or {}
        if not isinstance(scores, dict) or not all(
            v is None or (isinstance(v, int | float) and not isinstance(v, bool))
            for v in scores.values()
        ):
            return f"brand {brand!r}: 'scores' is not an object of numbers"
        for key in ("model_id", "champion_id", "challenger_id"):
            if record.get(key) is not None and not isinstance(record[key], str):
                return f"brand {brand!r}: {key!r} is not a string"
        if not isinstance(record.get("notes") or [], list):
            return f"brand {brand!r}: 'notes' is not a list"
    if not isinstance(state.get("notes") or [], list):
        return "'notes' is not a list"
    return None


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n").encode("utf-8")


def _journal(path: Path) -> Path:
    return Path(path).with_name(JOURNAL_NAME)


def save_state(path: Path, state: Mapping[str, Any]) -> None:
    """Replace ``state.json`` atomically (readers and a killed run see old or new, never half),
    then drop the journal, whose records the state now holds (a run killed in between replays
    them again: the same records)."""
    atomic_write_bytes(path, _json_bytes(state))
    _journal(path).unlink(missing_ok=True)


def append_record(path: Path, state: Mapping[str, Any], record: BrandRecord) -> dict[str, Any]:
    """Record a brand: ``state`` with the record (:func:`record_brand`), and the record
    appended as one line to the journal beside ``state.json`` (``path``), flushed to disk.

    The line names its run (``started_at``), so a journal left by another run of the date is
    never replayed into this one (see :func:`replay_journal`).
    """
    line = json.dumps({"run": state["started_at"], "record": record.to_dict()}, allow_nan=False)
    with open(_journal(path), "ab") as fh:
        fh.write(line.encode("utf-8") + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    return record_brand(state, record)


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is missing or not finite (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def run_started(runs_dir: str | Path, day: dt.date, task: str) -> bool:
    """Whether a run of ``task`` for ``day`` was started: its folder holds a state (it
    resumes, or reports when finished)."""
    return (run_dir_for(runs_dir, day.isoformat(), task) / STATE_NAME).exists()
