"""Contract rows -> model inputs ``(X, y, sample_weight)`` for one task.

The frame handed to an estimator keeps ``brand_id`` (the group column) and ``date`` (the time
column): the estimators use them for brand context and time ordering and never as raw
features. Category vocabularies are frozen by the estimator at pretraining, not here, so this
module is a pure function of the rows and the task definition.

Two numeric features are derived from the rows when a task lists them and the rows lack them:
``reference_bid``, the geometric mean of the context's own bids on its last
:data:`REFERENCE_BID_ROWS` observations *before* the row's day (a context is
``(brand_id, channel, campaign_id, audience, device)``, those present; the row's own bid when the
context has no earlier row), and ``relative_bid = bid / reference_bid``. Splitting the bid this
way lets a model learn how value changes when a context moves its bid (``relative_bid``)
apart from how valuable contexts that habitually bid high are (``reference_bid``).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tabtune.config import TaskConfig
from tabtune.data.contract import CONTRACT_COLUMNS
from tabtune.errors import TabTuneInputError
from tabtune.spend_features import SPEND_FEATURE_COLUMNS, add_spend_features

logger = logging.getLogger("tabtune")

#: The attribute of the log records of notices a caller also returns (a dropped feature).
NOTICE_RECORD = "tabtune_notice"

__all__ = [
    "BID_CONTEXT",
    "GROUP_COLUMN",
    "REFERENCE_BID_ROWS",
    "TIME_COLUMN",
    "TaskData",
    "align_features",
    "calendar_features",
    "task_data",
    "feature_columns",
    "model_features",
    "reference_bids",
    "resolve_features",
    "with_bid_features",
]

GROUP_COLUMN = "brand_id"
TIME_COLUMN = "date"
_SUMMABLE = ("spend", "clicks", "conversions", "revenue", "impressions")
#: Columns that identify a bidding context (those present in the rows are used).
BID_CONTEXT = ("brand_id", "channel", "campaign_id", "audience", "device")
#: How many earlier observations of a context make its reference bid.
REFERENCE_BID_ROWS = 28
_BID_FEATURES = ("reference_bid", "relative_bid")
#: Derived features -> the input columns they are computed from (for messages).
_SOURCES: dict[str, tuple[str, ...]] = {
    **{name: ("bid",) for name in _BID_FEATURES},
    "relative_spend": ("spend",),
    "trailing_spend": ("spend",),
    "trailing_revenue": ("revenue",),
    "trailing_roas_ratio": ("spend", "revenue"),
}


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
    notices: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, mask: np.ndarray) -> TaskData:
        """The rows where ``mask`` is True (a boolean array aligned with the rows)."""
        mask = np.asarray(mask, dtype=bool)
        return TaskData(
            X=self.X.loc[mask].reset_index(drop=True),
            y=np.asarray(self.y)[mask],
            weight=None if self.weight is None else np.asarray(self.weight)[mask],
            rows=self.rows.loc[mask].reset_index(drop=True),
            notices=list(self.notices),
        )


def feature_columns(task: TaskConfig) -> list[str]:
    """The model feature columns of a task, in a fixed order."""
    return [*task.categorical, *task.numeric, *task.calendar]


def model_features(model: object) -> list[str] | None:
    """The task features a fitted estimator was trained with (``None`` when it does not say).

    The estimator's ``feature_names_in_`` without the group and time columns: a task's
    feature list is resolved against the data when the model is fitted
    (:func:`resolve_features`), so predicting must build the same columns.
    """
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return None
    return [str(c) for c in names if str(c) not in (GROUP_COLUMN, TIME_COLUMN)]


def align_features(X: pd.DataFrame, model: object) -> pd.DataFrame:
    """``X`` with exactly the columns ``model`` was fitted with, in its order.

    A model keeps the features it was trained with (``feature_names_in_``); inputs built for
    a task whose resolved features differ (a column added to or missing from the store since)
    are narrowed to them. Anything that is not a DataFrame is returned as it is.

    Raises
    ------
    TabTuneInputError
        When ``X`` lacks a column the model was trained with (the message names it).
    """
    names = getattr(model, "feature_names_in_", None)
    if names is None or not isinstance(X, pd.DataFrame):
        return X
    names = [str(c) for c in names]
    missing = [c for c in names if c not in X.columns]
    if missing:
        raise TabTuneInputError(
            f"{_learnt_features_missing(missing)}; or, when the data has them and the task "
            "file no longer lists them (its categorical/numeric), restore the task file or "
            "pretrain again with it: a model predicts with the features it learnt"
        )
    return X if list(X.columns) == names else X[names]


def _learnt_features_missing(missing: list[str]) -> str:
    """The start of the message for features a fitted model learnt that the rows lack: the
    features, the input columns they need (``bid`` for the derived bid features) and the fix."""
    sources = list(dict.fromkeys(c for f in missing for c in _SOURCES.get(f, (f,))))
    derived = [f for f in missing if f in _SOURCES]
    made = f" (tabtune derives {derived} from them)" if derived else ""
    return (
        f"the model was trained with feature(s) {missing}, which these rows do not have; "
        f"the rows need the column(s) {sources}{made}: add them to the rows or map them in "
        f"the config's `data.columns` (e.g. `{sources[0]}: <your column>`)"
    )


def _derivable(feature: str, columns: set[str]) -> bool:
    """Whether ``feature`` is in ``columns`` or derived from them (bid and spend features)."""
    if feature in columns:
        return True
    if feature in _BID_FEATURES:
        return "bid" in columns
    if feature in SPEND_FEATURE_COLUMNS:
        return "spend" in columns
    return False


def _missing_notice(task: TaskConfig, key: str, feature: str) -> str:
    """The one notice for a task feature the data lacks: which, where, and how to add it."""
    source = "bid" if feature in _BID_FEATURES else feature
    return (
        f"task {task.name!r}: feature {feature!r} dropped, the data has no {source!r} column "
        f"(to use it, map your export's column in the config: `data.columns: {{{source}: "
        f"<your column>}}`; to silence this, remove {feature!r} from `{key}` in the "
        f"{task.name!r} task file)"
    )


_NOTICED: set[str] = set()


def _refuse_unknown_feature(task: TaskConfig, key: str, feature: str, columns: set[str]) -> None:
    """Refuse a feature no data can give: not a contract column, not derived (bid and spend
    features) and not in the data (``chanel`` was dropped with a notice suggesting a mapping
    the config then refused)."""
    known = {*CONTRACT_COLUMNS, *_BID_FEATURES, *SPEND_FEATURE_COLUMNS}
    if feature in known:
        return
    near = difflib.get_close_matches(feature, sorted(known | columns), n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise TabTuneInputError(
        f"task {task.name!r}: feature {feature!r} ({key}) is not a column of the data, of the "
        f"contract or derived from one{hint}; fix: correct it in the task's {key} list; a "
        "column of your exports is kept with data.extra_columns, from a store's first load on "
        "(a store keeps the columns of its first load: tabtune check lists them)"
    )


def resolve_features(
    task: TaskConfig, columns: Iterable[str], features: Iterable[str] | None = None
) -> tuple[TaskConfig, list[str]]:
    """The task restricted to the features the data can give, and a notice per dropped one.

    Parameters
    ----------
    task : TaskConfig
    columns : iterable of str
        The data's columns.
    features : iterable of str, optional
        The features of an already fitted model (:func:`model_features`): the task is
        restricted to exactly these, and a feature the data lacks is kept (the error then
        names it, as the model cannot predict without it).

    Returns
    -------
    (TaskConfig, list of str)
        The resolved task (same name; ``categorical``/``numeric``/``calendar`` narrowed) and
        the notices. Each notice is also logged once per process as a warning. Target,
        ``brand_id`` and ``date`` columns are never dropped: a task cannot work without them.
    """
    cols = set(columns)
    keep = None if features is None else set(features)
    notices: list[str] = []
    update: dict[str, list[str]] = {}
    for key in ("categorical", "numeric", "calendar"):
        kept = []
        for feature in getattr(task, key):
            usable = key == "calendar" or _derivable(feature, cols)
            learnt = keep is not None and feature in keep
            # a feature the fitted model learnt is kept even when the data lacks it (the
            # error then names it): no notice saying it was dropped
            if not usable and not learnt:
                _refuse_unknown_feature(task, key, feature, cols)
                notices.append(_missing_notice(task, key, feature))
            if (keep is None and usable) or learnt:
                kept.append(feature)
        update[key] = kept
    for notice in notices:
        if notice not in _NOTICED:
            _NOTICED.add(notice)
            # the CLI prints these as notes (tabtune.cli.console.notes_printed_instead)
            logger.warning("%s", notice, extra={NOTICE_RECORD: True})
    if all(update[k] == list(getattr(task, k)) for k in update):
        return task, notices
    return task.model_copy(update=update), notices


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


def reference_bids(
    rows: pd.DataFrame, window: int = REFERENCE_BID_ROWS, bid_column: str = "bid"
) -> np.ndarray:
    """Each row's reference bid: its context's typical bid before the row's day.

    Parameters
    ----------
    rows : DataFrame
        ``date``, ``bid`` and the :data:`BID_CONTEXT` columns present.
    window : int, default :data:`REFERENCE_BID_ROWS`
        How many of the context's most recent earlier observations count.
    bid_column : str, default "bid"

    Returns
    -------
    ndarray
        The geometric mean of the context's valid bids (> 0) on its last ``window``
        observations dated strictly before the row (rows of the same day never count), in the
        rows' order; NaN where the context has no earlier valid bid.
    """
    n = len(rows)
    if n == 0:
        return np.empty(0)
    keys = [c for c in BID_CONTEXT if c in rows.columns]
    bid = pd.to_numeric(rows[bid_column], errors="coerce").to_numpy(dtype=float)
    days = pd.to_datetime(rows[TIME_COLUMN]).to_numpy().astype("datetime64[D]").astype(np.int64)
    if keys:
        gid = rows.groupby(keys, sort=False, observed=True, dropna=False).ngroup().to_numpy()
    else:
        gid = np.zeros(n, dtype=np.int64)
    order = np.lexsort((days, gid))
    g, d, b = gid[order], days[order], bid[order]
    ok = np.isfinite(b) & (b > 0)
    log_bid = np.where(ok, np.log(np.where(ok, b, 1.0)), 0.0)
    pos = np.arange(n)
    new_group = np.r_[True, g[1:] != g[:-1]]
    # sums of the valid log bids before each row, within its context only (so that a row's
    # reference does not move, by a rounding, when other contexts or later days are added):
    # the mean of any run of a context's rows is two look-ups
    inclusive = pd.Series(log_bid).groupby(np.cumsum(new_group), sort=False).cumsum().to_numpy()
    csum = np.where(new_group, 0.0, np.r_[0.0, inclusive[:-1]])
    ccnt = np.concatenate([[0], np.cumsum(ok)])
    new_day = new_group | np.r_[True, d[1:] != d[:-1]]
    group_start = np.maximum.accumulate(np.where(new_group, pos, 0))
    day_start = np.maximum.accumulate(np.where(new_day, pos, 0))  # first row of the row's day
    # the last `window` valid observations before the day: walk back over valid rows only
    valid_pos = np.flatnonzero(ok)
    k = ccnt[day_start]  # valid rows before the day (global count)
    first_k = np.maximum(k - window, ccnt[group_start])
    lo = np.where(first_k < k, valid_pos[np.minimum(first_k, max(len(valid_pos) - 1, 0))], 0)
    count = k - first_k
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ref_sorted = np.where(
            count > 0, np.exp((csum[day_start] - csum[lo]) / np.maximum(count, 1)), np.nan
        )  # lo and day_start lie in the row's context (count > 0)
    out = np.empty(n)
    out[order] = ref_sorted
    return out


def with_bid_features(
    rows: pd.DataFrame,
    window: int = REFERENCE_BID_ROWS,
    history: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``rows`` with ``reference_bid`` and ``relative_bid`` added where they are missing.

    A row whose context has no earlier bid is its own reference (``relative_bid`` 1).
    ``history`` (earlier rows of the same contexts, e.g. the store's rows before the day being
    planned) supplies the earlier bids when ``rows`` alone do not hold them.
    """
    out = rows.copy()
    bid = pd.to_numeric(out["bid"], errors="coerce").to_numpy(dtype=float)
    if "reference_bid" not in out.columns:
        if history is not None and len(history) and "bid" in history.columns:
            both = pd.concat([out, history], ignore_index=True, sort=False)
            ref = reference_bids(both, window)[: len(out)]
        else:
            ref = reference_bids(out, window)
        out["reference_bid"] = np.where(np.isfinite(ref), ref, bid)
    if "relative_bid" not in out.columns:
        ref = out["reference_bid"].to_numpy(dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["relative_bid"] = np.where(ref > 0, bid / np.where(ref > 0, ref, 1.0), np.nan)
    return out


def _aggregate(rows: pd.DataFrame, keys: list[str], task: TaskConfig) -> pd.DataFrame:
    missing = [k for k in keys if k not in rows.columns]
    if missing:
        raise TabTuneInputError(
            f"task {task.name!r}: aggregate_by column(s) {missing} not in the data"
        )
    sums = [c for c in _SUMMABLE if c in rows.columns]
    lost = [c for c in task.numeric if c in rows.columns and c not in (*sums, *keys)]
    if lost:
        raise TabTuneInputError(
            f"task {task.name!r}: numeric feature(s) {lost} are not amounts that add up over "
            f"the aggregate_by groups ({', '.join(_SUMMABLE)}); fix: add them to aggregate_by "
            "or remove them from numeric"
        )
    firsts = [c for c in task.categorical if c not in keys and c in rows.columns]
    groups = rows.groupby(keys, sort=True, observed=True)
    out = (
        groups.agg({c: "sum" for c in sums}).reset_index()
        if sums
        else groups.size().reset_index()[keys]
    )
    varying = [c for c in firsts if (groups[c].nunique(dropna=False) > 1).any()]
    # each group's value of a categorical: the one with the most spend (it kept the first row's,
    # silently); a brand in two verticals is legitimate, so it is said, not refused
    heavy = varying and "spend" in rows.columns
    order = rows.sort_values("spend", ascending=False, kind="stable") if heavy else rows
    for column in firsts:
        out[column] = order.groupby(keys, sort=True, observed=True)[column].first().to_numpy()
    if varying:
        notice = (
            f"task {task.name!r}: categorical feature(s) {varying} take several values within "
            f"an aggregate_by group ({', '.join(keys)}): each group takes its value "
            f"{'with the most spend' if heavy else 'of its first row'} (to keep them apart, "
            "add them to aggregate_by in a task file)"
        )
        if notice not in _NOTICED:
            _NOTICED.add(notice)
            logger.warning("%s", notice, extra={NOTICE_RECORD: True})
    return out


def _with_spend_features(data: pd.DataFrame, task: TaskConfig) -> pd.DataFrame:
    """Add the budget task's trailing spend features when the task names one the data lacks."""
    wanted = {*task.numeric, task.target.numerator, task.target.denominator}
    missing = [c for c in SPEND_FEATURE_COLUMNS if c in wanted and c not in data.columns]
    if not missing or "spend" not in data.columns:
        return data
    return add_spend_features(data.drop(columns=[c for c in SPEND_FEATURE_COLUMNS if c in data]))


def task_data(
    rows: pd.DataFrame,
    task: TaskConfig,
    *,
    require_target: bool = True,
    features: Iterable[str] | None = None,
    training: bool | None = None,
) -> TaskData:
    """Build the model inputs of ``task`` from validated contract rows.

    Parameters
    ----------
    rows : DataFrame
        Rows that passed :func:`tabtune.data.schema.validate_campaigns`.
    task : TaskConfig
        The task definition.
    require_target : bool, default True
        When False (prediction), rows without a target are kept and ``y`` may hold NaN.
    features : iterable of str, optional
        The features of the fitted model the inputs are for (:func:`model_features`). Default:
        the task's features the rows can give (:func:`resolve_features`); the others are
        dropped with a notice (``TaskData.notices``).
    training : bool, optional
        Rows to train on (default: ``require_target``): a classification task with a
        denominator gives each row as a positive and a negative row weighted by its successes
        and failures, as fitting needs; otherwise (prediction) one row per row, whose target
        is the ratio.

    Returns
    -------
    TaskData

    Raises
    ------
    TabTuneInputError
        When a target column (or a feature ``features`` names) is missing (the message names
        it), or no row is left.
    """
    task, notices = resolve_features(task, rows.columns, features)
    kept_features = set(feature_columns(task))
    data = rows
    if task.aggregate_by:
        data = _aggregate(rows, list(task.aggregate_by), task)
    wanted = [c for c in _BID_FEATURES if c in task.numeric and c not in data.columns]
    if wanted and "bid" in data.columns:
        data = with_bid_features(data)
    data = _with_spend_features(data, task)
    needed = [*task.categorical, *task.numeric, GROUP_COLUMN, TIME_COLUMN]
    if require_target:
        needed.append(task.target.numerator)
        if task.target.denominator:
            needed.append(task.target.denominator)
    missing = [c for c in dict.fromkeys(needed) if c not in data.columns]
    learnt = [c for c in missing if features is not None and c in kept_features]
    if learnt:
        raise TabTuneInputError(
            f"task {task.name!r}: {_learnt_features_missing(learnt)}; a model predicts with "
            "the features it learnt"
        )
    if missing:
        raise TabTuneInputError(
            f"task {task.name!r} needs column(s) {missing}, which the data does not have "
            f"(columns: {list(data.columns)}); map them in the config's `data.columns`"
        )
    data, y, weight = _target(
        data, task, require_target, require_target if training is None else training
    )
    if require_target and len(data) == 0:
        raise TabTuneInputError(f"task {task.name!r}: no rows with a usable target{_rule(task)}")
    order = np.argsort(pd.to_datetime(data[TIME_COLUMN]).to_numpy(), kind="stable")
    data = data.iloc[order].reset_index(drop=True)
    y = y[order]
    weight = weight[order] if weight is not None else None
    X = _model_inputs(data, task)
    return TaskData(X=X, y=y, weight=weight, rows=data, notices=notices)


def target_requirement(task: TaskConfig) -> str | None:
    """What a row needs for its target to be usable (``"clicks > 0"`` for a ratio target), or
    None when any row with the target has one; for messages."""
    den = task.target.denominator
    return f"{den} > 0" if den else None


def _rule(task: TaskConfig) -> str:
    """What makes a row's target usable, for messages (`` (...)``; empty: any row)."""
    needs = target_requirement(task)
    if needs is None:
        return ""
    return (
        f" (the target {task.target.numerator} / {task.target.denominator} needs {needs} on a row)"
    )


def _target(
    data: pd.DataFrame, task: TaskConfig, require_target: bool, training: bool
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray | None]:
    """The rows with a usable target, the target and the sample weights (:func:`task_data`)."""
    y: np.ndarray
    weight: np.ndarray | None = None
    binomial = task.kind == "classification" and task.target.denominator
    for role in ("numerator", "denominator"):
        column = getattr(task.target, role)
        if column in data.columns and not pd.api.types.is_numeric_dtype(data[column]):
            example = data[column].dropna().iloc[0] if data[column].notna().any() else None
            raise TabTuneInputError(
                f"task {task.name!r}: target.{role} {column!r} holds text (e.g. {example!r}), "
                "not numbers; fix: a numeric column as the target (revenue, conversions, "
                "clicks, ...), or kind: classification with a numeric numerator"
            )
    if task.target.numerator in data.columns:
        num = data[task.target.numerator].to_numpy(dtype=float)
        if binomial and training and task.target.denominator in data.columns:
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
    return data, y, weight


def _numeric_feature(values: pd.Series, task: str, column: str) -> np.ndarray:
    """A numeric feature's values as floats: numbers written as text read as numbers; other
    text (an extra column stored from an export's ``< 10%`` or ``--``) refused by name, not
    a ValueError from NumPy. Missing values stay NaN (the models read them as missing)."""
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype=float)
    numbers = pd.to_numeric(values, errors="coerce")
    bad = (numbers.isna() & values.notna()).to_numpy()
    if bad.any():
        shown = ", ".join(repr(v) for v in pd.unique(values[bad])[:3])
        raise TabTuneInputError(
            f"task {task!r}: numeric feature {column!r} holds {int(bad.sum()):,} value(s) that "
            f"are not numbers (e.g. {shown}); fix: load the column as plain numbers (clean "
            "it in the export: a percent as a fraction, '--' as empty), or list it under the "
            "task's categorical features"
        )
    return numbers.to_numpy(dtype=float)


def _model_inputs(data: pd.DataFrame, task: TaskConfig) -> pd.DataFrame:
    """``brand_id``, ``date`` and the task's features of time-ordered rows."""
    # One constructor call: setting the columns one by one cost a refresh ~4 ms a call.
    columns: dict[str, np.ndarray] = {
        GROUP_COLUMN: data[GROUP_COLUMN].astype(str).to_numpy(),
        TIME_COLUMN: pd.to_datetime(data[TIME_COLUMN]).to_numpy(),
    }
    for col in task.categorical:
        columns[col] = data[col].astype(str).to_numpy()
    for col in task.numeric:
        columns[col] = _numeric_feature(data[col], task.name, col)
    if task.calendar:
        cal = calendar_features(data[TIME_COLUMN], task.calendar)
        for col in task.calendar:
            columns[col] = cal[col].to_numpy()
    return pd.DataFrame(columns)
