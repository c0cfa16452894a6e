"""``tabtune check``: whether each configured task's target can be fitted on the store.

A target zero on every usable row cannot be fitted by a log-link objective (Tweedie, Poisson:
pretrain and tune refuse it), and a classification target of one class has nothing to tell
apart; ``check`` said "no problems found" for both. The target columns are read once for every
configured task.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from tabtune.config import Config
from tabtune.data.check import DataCheck, Problem
from tabtune.data.store import CampaignStore
from tabtune.transfer.context import zero_target

__all__ = ["target_problems"]


def target_problems(cfg: Config, report: DataCheck) -> list[Problem]:
    """The configured tasks (that run on the store) whose target cannot be fitted.

    Parameters
    ----------
    cfg : Config
    report : DataCheck
        What :func:`~tabtune.data.check.check_data` found (the tasks that run, the columns).

    Returns
    -------
    list of Problem
    """
    problems = _text_features(cfg, report)
    present = set(report.columns)
    wanted: dict[str, tuple[str, str | None]] = {}
    for support in report.tasks:
        target = cfg.tasks[support.task].target if support.configured else None
        if target is None or not support.runs:
            continue
        if {target.numerator, target.denominator or target.numerator} <= present:
            wanted[support.task] = (target.numerator, target.denominator)  # not derived
    if not wanted:
        return problems
    columns = sorted({c for pair in wanted.values() for c in pair if c})
    values = CampaignStore(cfg.data.store).read(columns=columns)
    for name, (num, den) in wanted.items():
        what = _unfittable(cfg, name, values, num, den)
        if what is not None:
            problems.append(
                Problem(
                    what,
                    f"map the column that holds it (data.columns.{num}), or load "
                    "rows where it varies",
                )  # fmt: skip
            )
    return problems


def _text_features(cfg: Config, report: DataCheck) -> list[Problem]:
    """Numeric features of the tasks that run which the store holds as text that is not
    numbers (an extra column loaded from ``< 10%`` or ``--``): pretrain refuses them."""
    store = CampaignStore(cfg.data.store)
    schema = store.schema()
    problems = []
    for support in report.tasks:
        if not support.configured or not support.runs or schema is None:
            continue
        for col in cfg.tasks[support.task].numeric:
            if col not in schema.names or not pa.types.is_string(schema.field(col).type):
                continue
            text = store.read(columns=[col])[col].dropna()
            bad = text[pd.to_numeric(text, errors="coerce").isna()]
            if len(bad):
                shown = ", ".join(repr(v) for v in pd.unique(bad)[:3])
                problems.append(
                    Problem(
                        f"task {support.task!r}: its numeric feature {col!r} is stored as text, "
                        f"{len(bad):,} value(s) not numbers (e.g. {shown}): pretrain refuses it",
                        "load the column as plain numbers (clean it in the export: a percent "
                        "as a fraction, '--' as empty), or list it under the task's categorical "
                        "features",
                    )
                )
    return problems


def _unfittable(
    cfg: Config, name: str, values: pd.DataFrame, num: str, den: str | None
) -> str | None:
    """Why the task ``name``'s target cannot be fitted, or None."""
    task = cfg.tasks[name]
    y = pd.to_numeric(values[num], errors="coerce").to_numpy(dtype=float)
    usable = np.isfinite(y)
    weight = None
    if den:
        weight = pd.to_numeric(values[den], errors="coerce").to_numpy(dtype=float)
        usable &= weight > 0
    rule = f"{den} > 0" if den else "a value"
    if not usable.any():
        return f"task {name!r}: no row has {rule}, so no target can be read"
    if task.kind == "classification":
        positive = y[usable] > 0
        if den:  # a row of successes out of trials: both classes where 0 < num < den
            failures = y[usable] < weight[usable]  # type: ignore[index]
            one_class = not positive.any() or not failures.any()
        else:
            one_class = positive.all() or not positive.any()
        if one_class:
            return (
                f"task {name!r}: its target {num!r} is of one class on every row with {rule}: "
                "there is nothing to tell apart"
            )
        return None
    objective = task.objective or "squared_error"
    ratio = y[usable] / weight[usable] if weight is not None else y[usable]
    if zero_target(objective, ratio):
        return (
            f"task {name!r}: its target {num!r} is zero on every row with {rule}, and "
            f"objective {objective!r} models its log: pretrain and tune refuse it"
        )
    return None
