"""Contract rows -> model inputs ``(X, y, sample_weight)`` for one task.

The frame handed to an estimator keeps ``brand_id`` (the group column) and ``date`` (the time
column): the estimators use them for brand context and time ordering and never as raw
features. Category vocabularies are frozen by the estimator at pretraining, not here, so this
module is a pure function of the rows and the task definition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabtune.config import TaskConfig
from tabtune.errors import TabTuneInputError

__all__ = [
    "GROUP_COLUMN",
    "TIME_COLUMN",
    "TaskData",
    "calendar_features",
    "task_data",
    "feature_columns",
]

GROUP_COLUMN = "brand_id"
TIME_COLUMN = "date"
_SUMMABLE = ("spend", "clicks", "conversions", "revenue", "impressions")


@dataclass
class TaskData:
    """Model inputs for one task.

    Attributes
    ----------
    X : DataFrame
        ``brand_id``, ``date`` and the task's features, in time order.
    y : ndarray
        The target.
    weight : ndarray or None
        Sample weights (the target's denominator), or None.
    rows : DataFrame
        The (possibly aggregated) rows behind X, aligned with it, for reporting.
    """

    X: pd.DataFrame
    y: np.ndarray
    weight: np.ndarray | None
    rows: pd.DataFrame

    def __len__(self) -> int:
        return len(self.y)


def feature_columns(task: TaskConfig) -> list[str]:
    """The model feature columns of a task, in a fixed order."""
    return [*task.categorical, *task.numeric, *task.calendar]


def calendar_features(dates: pd.Series, names: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Numeric calendar features derived from a date column.

    Parameters
    ----------
    dates : Series
        Dates (anything ``pandas.to_datetime`` understands).
    names : sequence of str
        Which of ``day_of_week``, ``day_of_year``, ``month``, ``is_weekend``, ``week_of_year``,
        ``year`` to compute.
    """
    d = pd.to_datetime(dates)
    makers = {
        "day_of_week": lambda: d.dt.day_of_week,
        "day_of_year": lambda: d.dt.day_of_year,
        "month": lambda: d.dt.month,
        "is_weekend": lambda: (d.dt.day_of_week >= 5).astype(np.int8),
        "week_of_year": lambda: d.dt.isocalendar().week.astype(np.int16),
        "year": lambda: d.dt.year,
    }
    return pd.DataFrame({name: makers[name]().to_numpy() for name in names}, index=dates.index)


def _aggregate(rows: pd.DataFrame, keys: list[str], task: TaskConfig) -> pd.DataFrame:
    missing = [k for k in keys if k not in rows.columns]
    if missing:
        raise TabTuneInputError(
            f"task {task.name!r}: aggregate_by column(s) {missing} not in the data"
        )
    sums = [c for c in _SUMMABLE if c in rows.columns]
    firsts = [c for c in task.categorical if c not in keys and c in rows.columns]
    agg: dict[str, str] = {c: "sum" for c in sums}
    agg.update({c: "first" for c in firsts})
    out = rows.groupby(keys, sort=True, observed=True).agg(agg).reset_index()
    return out


def _with_spend_features(data: pd.DataFrame, task: TaskConfig) -> pd.DataFrame:
    """Add the budget task's trailing spend features when the task names one the data lacks."""
    from tabtune.tasks.spend_features import SPEND_FEATURE_COLUMNS, add_spend_features

    wanted = {*task.numeric, task.target.numerator, task.target.denominator}
    missing = [c for c in SPEND_FEATURE_COLUMNS if c in wanted and c not in data.columns]
    if not missing or "spend" not in data.columns:
        return data
    return add_spend_features(data.drop(columns=[c for c in SPEND_FEATURE_COLUMNS if c in data]))


def task_data(rows: pd.DataFrame, task: TaskConfig, *, require_target: bool = True) -> TaskData:
    """Build the model inputs of ``task`` from validated contract rows.

    Parameters
    ----------
    rows : DataFrame
        Rows that passed :func:`tabtune.data.schema.validate_campaigns`.
    task : TaskConfig
        The task definition.
    require_target : bool, default True
        When False (prediction), rows without a target are kept and ``y`` may hold NaN.

    Returns
    -------
    TaskData

    Raises
    ------
    TabTuneInputError
        When a feature or target column is missing (the message names it), or no row is left.
    """
    data = rows
    if task.aggregate_by:
        data = _aggregate(rows, list(task.aggregate_by), task)
    data = _with_spend_features(data, task)
    needed = [*task.categorical, *task.numeric, GROUP_COLUMN, TIME_COLUMN]
    if require_target:
        needed.append(task.target.numerator)
        if task.target.denominator:
            needed.append(task.target.denominator)
    missing = [c for c in dict.fromkeys(needed) if c not in data.columns]
    if missing:
        raise TabTuneInputError(
            f"task {task.name!r} needs column(s) {missing}, which the data does not have "
            f"(columns: {list(data.columns)})"
        )
    y: np.ndarray
    weight: np.ndarray | None = None
    if task.target.numerator in data.columns:
        num = data[task.target.numerator].to_numpy(dtype=float)
        if task.kind == "classification" and task.target.denominator and require_target:
            # Binomial rows: `num` successes out of `den` trials become one positive row
            # weighted by the successes and one negative row weighted by the failures.
            den = data[task.target.denominator].to_numpy(dtype=float)
            pos = np.clip(num, 0, den)
            data = pd.concat([data, data], ignore_index=True)
            y = np.r_[np.ones(len(pos)), np.zeros(len(pos))].astype(np.int64)
            weight = np.r_[pos, den - pos]
            keep = weight > 0
            data, y, weight = data.loc[keep], y[keep], weight[keep]
        elif task.target.denominator:
            den = data[task.target.denominator].to_numpy(dtype=float)
            keep = den > 0 if require_target else np.ones(len(data), dtype=bool)
            data = data.loc[keep]
            num, den = num[keep], den[keep]
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
            weight = den
        else:
            y = (num > 0).astype(np.int64) if task.kind == "classification" else num
    else:
        y = np.full(len(data), np.nan)
    if require_target and len(data) == 0:
        raise TabTuneInputError(f"task {task.name!r}: no rows with a usable target")
    order = np.argsort(pd.to_datetime(data[TIME_COLUMN]).to_numpy(), kind="stable")
    data = data.iloc[order].reset_index(drop=True)
    y = y[order]
    weight = weight[order] if weight is not None else None
    X = pd.DataFrame(
        {
            GROUP_COLUMN: data[GROUP_COLUMN].astype(str).to_numpy(),
            TIME_COLUMN: pd.to_datetime(data[TIME_COLUMN]).to_numpy(),
        }
    )
    for col in task.categorical:
        X[col] = data[col].astype(str).to_numpy()
    for col in task.numeric:
        X[col] = data[col].to_numpy(dtype=float)
    if task.calendar:
        cal = calendar_features(data[TIME_COLUMN], task.calendar)
        for col in task.calendar:
            X[col] = cal[col].to_numpy()
    return TaskData(X=X, y=y, weight=weight, rows=data)
