"""``tabtune check``: what the configured data supports, and the fix for each problem.

:func:`check_data` reads the store's columns and its brand x date x channel keys (not the whole
table) and returns a :class:`DataCheck`: per task (the configured ones and the built-in ones),
the columns it uses and the ones the store lacks; brands per size bucket (served by the global
model below ``adaptation.min_rows_to_adapt`` rows, adapted above); date coverage; brands without
rows in the store's last 28 days; brands with one channel (a budget plan moves spend between
channels). It prints nothing: the command line shows it (``tabtune check`` adds whether each
configured task's target can be fitted: :mod:`tabtune.cli.target_check`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from tabtune.config import BUILTIN_TASKS, builtin_task
from tabtune.data.contract import CONTRACT_COLUMNS
from tabtune.data.load import spelling_groups
from tabtune.data.store import CampaignStore
from tabtune.data.store_check import MEASURE_COLUMNS
from tabtune.data.units import money_unit_notes, spend_spike_notes

if TYPE_CHECKING:  # pragma: no cover - the config imports the data layer, not the reverse
    from tabtune.config import Config, TaskConfig

__all__ = ["DERIVED_FEATURES", "INACTIVE_DAYS", "DataCheck", "Problem", "TaskSupport", "check_data"]

INACTIVE_DAYS = 28
"""A brand without rows in the store's last this-many days is reported inactive."""

DERIVED_FEATURES: dict[str, tuple[str, ...]] = {
    "reference_bid": ("bid",),
    "relative_bid": ("bid",),
    "relative_spend": ("spend",),
    "trailing_roas_ratio": ("spend", "revenue"),
    "trailing_revenue": ("revenue",),
}
"""Features tabtune derives from the rows -> the stored columns each needs."""


@dataclass(frozen=True)
class Problem:
    """One thing the data cannot support yet, and how to fix it."""

    what: str
    fix: str


@dataclass(frozen=True)
class TaskSupport:
    """Whether a task can run on the store, and which of its columns the store lacks.

    Attributes
    ----------
    task : str
    configured : bool
        Listed in the config's ``tasks:`` (else a built-in task the config does not use).
    runs : bool
        The target's columns are present and at least one feature is left.
    uses : list of str
        Stored columns the task reads (target, features, the sources of derived features).
    missing : list of str
        Features (or target columns) whose columns the store lacks.
    """

    task: str
    configured: bool
    runs: bool
    uses: list[str]
    missing: list[str]


@dataclass
class DataCheck:
    """What :func:`check_data` found (see the module docstring)."""

    store: Path
    rows: int
    columns: list[str]
    first: pd.Timestamp
    last: pd.Timestamp
    min_rows_to_adapt: int
    tasks: list[TaskSupport] = field(default_factory=list)
    rows_per_brand: dict[str, int] = field(default_factory=dict)
    global_served: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    inactive: dict[str, pd.Timestamp] = field(default_factory=dict)
    one_channel: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def _sources(feature: str) -> tuple[str, ...]:
    return DERIVED_FEATURES.get(feature, (feature,))


def _task_support(name: str, task: TaskConfig, columns: set[str], configured: bool) -> TaskSupport:
    target = [task.target.numerator]
    if task.target.denominator:
        target.append(task.target.denominator)
    features = [*task.categorical, *task.numeric]
    uses: list[str] = []
    missing: list[str] = []
    for column in [*target, *features]:
        need = _sources(column)
        uses.extend(c for c in need if c in columns)
        if not all(c in columns for c in need):
            missing.append(column)
    target_ok = all(t not in missing for t in target)
    left = [f for f in features if f not in missing] + list(task.calendar)
    uses = list(dict.fromkeys([*uses, "date"] if task.calendar else uses))
    return TaskSupport(name, configured, target_ok and bool(left), uses, missing)


def _task_paths(cfg: Config) -> dict[str, str]:
    """Task name -> the file a fix should name: the one the config names, else the built-in
    task's editable copy."""
    path_of = {
        name: f"a copy of the packaged task tabtune/configs/tasks/{name}.yaml (set tasks.{name} "
        "to the copy's path)"
        for name in BUILTIN_TASKS
    }
    for name in cfg.tasks:
        path_of[name] = cfg.task_file(name) or path_of.get(name, "its task file")
    return path_of


def _task_problems(support: TaskSupport, path_of: dict[str, str]) -> list[Problem]:
    if not support.missing or not support.configured:
        return []
    where = path_of.get(support.task, "its task file")
    columns = sorted({c for f in support.missing for c in _sources(f)})
    what = (
        f"task {support.task!r}: the store has no column(s) {columns} for "
        f"{', '.join(support.missing)}" + ("" if support.runs else " (the task cannot run)")
    )
    shared = [c for c in columns if c not in MEASURE_COLUMNS]  # a measure is per row
    constant = f", or data.constants.<name> for {shared}" if shared else ""
    fix = (
        f"map an export column to each (data.columns.<name>{constant}) and "
        "load every export again into a new store (a new data.store folder: a store's columns "
        f"are fixed by its first load), or remove them from {where}"
    )
    return [Problem(what, fix)]


def check_data(cfg: Config) -> DataCheck:
    """Check what the configured store supports.

    Parameters
    ----------
    cfg : Config
        The configuration: store, tasks and ``adaptation.min_rows_to_adapt``.

    Returns
    -------
    DataCheck

    Raises
    ------
    TabTuneInputError
        The store is empty (the message says to run ``tabtune load``).
    """

    store = CampaignStore(cfg.data.store)
    schema = store.schema()
    if schema is None:
        store.date_range()  # raises the store's "empty: run tabtune load" error
    columns = list(schema.names) if schema is not None else []
    keys = store.read(columns=["brand_id", "date", "channel"])
    first, last = keys["date"].min(), keys["date"].max()
    report = DataCheck(
        cfg.data.store, len(keys), columns, first, last, cfg.adaptation.min_rows_to_adapt
    )
    present = set(columns)
    tasks = {name: (task, True) for name, task in cfg.tasks.items()}
    for name in BUILTIN_TASKS:
        tasks.setdefault(name, (builtin_task(name), False))
    path_of = _task_paths(cfg)
    for name, (task, configured) in tasks.items():
        support = _task_support(name, task, present, configured)
        report.tasks.append(support)
        report.problems.extend(_task_problems(support, path_of))

    per_brand = keys.groupby("brand_id", sort=True)
    counts = per_brand.size()
    report.rows_per_brand = {str(b): int(n) for b, n in counts.items()}
    small = counts < cfg.adaptation.min_rows_to_adapt
    report.global_served = [str(b) for b in counts.index[small]]
    report.adapted = [str(b) for b in counts.index[~small]]
    if report.global_served:
        report.problems.append(
            Problem(
                f"{len(report.global_served)} brand(s) have fewer than "
                f"{cfg.adaptation.min_rows_to_adapt} rows and are served by the global model's "
                "trees (no new trees: only their context, level and segment offsets)",
                "load more history for them, or lower adaptation.min_rows_to_adapt",
            )
        )
    latest = per_brand["date"].max()
    cutoff = last - pd.Timedelta(days=INACTIVE_DAYS - 1)
    report.inactive = {str(b): d for b, d in latest.items() if d < cutoff}
    if report.inactive:
        report.problems.append(
            Problem(
                f"{len(report.inactive)} brand(s) have no rows in the store's last "
                f"{INACTIVE_DAYS} days ({cutoff.date()} .. {last.date()})",
                "load their recent rows (tabtune load), or leave them out of the refresh "
                "(tabtune refresh --brands ...)",
            )
        )
    grouped = {c for task, on in tasks.values() if on for c in task.aggregate_by or ()}
    report.problems.extend(_unused_column_problems(report.tasks, columns, path_of, grouped))
    report.problems.extend(_unit_problems(store, present))
    report.problems.extend(_case_problems(keys))
    channels = per_brand["channel"].unique()
    report.one_channel = {str(b): str(c[0]) for b, c in channels.items() if len(c) == 1}
    report.problems.extend(_one_channel_problems(report.one_channel))
    return report


def _one_channel_problems(one_channel: dict[str, str]) -> list[Problem]:
    """Brands with one channel: a budget plan has nothing to move between."""
    if not one_channel:
        return []
    return [
        Problem(
            f"{len(one_channel)} brand(s) have one channel: a budget plan has nothing to move "
            "spend between",
            "load their other channels' rows (an export per channel can set it with "
            "data.constants.channel in its own config)",
        )
    ]


def _unused_column_problems(
    tasks: list[TaskSupport], columns: list[str], path_of: dict[str, str], grouped: set[str]
) -> list[Problem]:
    """Stored columns outside the contract (``data.extra_columns``) that no configured task
    uses (as a feature, or in ``aggregate_by``: ``grouped``): listing a column there keeps it
    in the store, it does not make it a feature, and a user who expects it in the models was
    told nothing."""
    used = grouped | {c for t in tasks if t.configured for c in t.uses}
    unused = [c for c in columns if c not in CONTRACT_COLUMNS and c not in used]
    if not unused:
        return []
    names = [t.task for t in tasks if t.configured and t.runs]
    where = path_of.get(names[0], "a task file") if names else "a task file"
    return [
        Problem(
            f"stored column(s) {unused} (data.extra_columns) are not a feature of any configured "
            f"task ({', '.join(names) or 'none runs'}): the models do not see them",
            f"to learn from them, add each to the numeric: (numbers) or categorical: (text) "
            f"list of {where}; else leave them out of data.extra_columns",
        )
    ]


#: A brand's median bid / cost per click beyond this (or below its inverse) is another unit.
BID_UNIT_RATIO = 100.0


def _unit_problems(store: CampaignStore, columns: set[str]) -> list[Problem]:
    """Bids, and amounts (:func:`~tabtune.data.units.money_unit_notes`), in another unit;
    days of a channel's spend far above its usual (:func:`~tabtune.data.units.spend_spike_notes`)."""
    problems = _bid_unit_problems(store) if {"bid", "spend", "clicks"} <= columns else []
    amounts = store.read(columns=["brand_id", "date", "channel", "spend", "clicks", "revenue"])
    for note in money_unit_notes(amounts) + spend_spike_notes(amounts):
        text, _, fix = note.partition("? ")
        problems.append(Problem(text + "?", fix))
    return problems


def _bid_unit_problems(store: CampaignStore) -> list[Problem]:
    """Brands whose bids and costs per click look like different units (e.g. bids in micros).

    A bid is a price per click like the observed cost per click (spend / clicks), which an
    auction keeps at or below the bid: a brand whose median bid is :data:`BID_UNIT_RATIO` times
    its median cost per click (or less than its inverse) has one of the two in another unit.
    """
    rows = store.read(columns=["brand_id", "bid", "spend", "clicks"])
    ok = (rows["clicks"] > 0) & (rows["spend"] > 0) & (rows["bid"] > 0)
    rows = rows[ok.to_numpy()]
    if not len(rows):
        return []
    ratio = (rows["bid"] / (rows["spend"] / rows["clicks"])).groupby(rows["brand_id"]).median()
    odd = ratio[(ratio > BID_UNIT_RATIO) | (ratio < 1.0 / BID_UNIT_RATIO)]
    if not len(odd):
        return []
    shown = ", ".join(f"{b} ({r:.3g}x)" for b, r in list(odd.sort_values().items())[:10])
    return [
        Problem(
            f"{len(odd)} brand(s) have bids {BID_UNIT_RATIO:g}x or more away from their cost "
            f"per click (spend / clicks), median bid / cost per click: {shown}: bids or costs "
            "in another unit (micros?)",
            "scale the column when loading (data.scale, e.g. {bid: 0.000001} for micros) and "
            "load the exports into a new store",
        )
    ]


def _case_problems(keys: pd.DataFrame) -> list[Problem]:
    """Stored brand ids or channels that differ from another only in case or surrounding
    spaces (``ACME`` beside ``acme``): one brand or channel under two spellings, which ``load``
    now refuses (brands) or notes (channels) but a store loaded before may hold."""
    problems = []
    for column, fix in (
        ("brand_id", "load every export into a new store (a new data.store folder), each brand "
         "spelled one way; on macOS and Windows such brand folders are one folder"),
        ("channel", "spell each channel one way in the exports and load them into a new store"),
    ):  # fmt: skip
        twins = spelling_groups(list(keys[column].unique()))
        if twins:
            shown = "; ".join(" vs ".join(repr(v) for v in g) for g in twins[:10])
            problems.append(
                Problem(
                    f"{len(twins)} {column} value(s) are stored under spellings that differ only "
                    f"in case or spaces: {shown}: the models take them for different ones",
                    fix,
                )
            )
    return problems
